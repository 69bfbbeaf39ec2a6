// SPDX-License-Identifier: Apache-2.0
// Handlers for the procedures of ../../protocol/procs/storage.ts.
import type { Entry } from './common';

export const storageHandlers: Entry[] = [];
