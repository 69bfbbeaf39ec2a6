// SPDX-License-Identifier: Apache-2.0
// Handlers for the procedures of ../../protocol/procs/domain-extra.ts.
import type { Entry } from './common';

export const domainExtraHandlers: Entry[] = [];
