// SPDX-License-Identifier: Apache-2.0
// Handlers for the procedures of ../../protocol/procs/host-objects.ts.
import type { Entry } from './common';

export const hostObjectHandlers: Entry[] = [];
