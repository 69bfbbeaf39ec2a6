// SPDX-License-Identifier: Apache-2.0
// Domain actions beyond define/lifecycle (stats, tuning, ...), spread into the DOMAIN_READ / DOMAIN_WRITE groups, pure.
// Their codes start at 32, clear of the core actions in ../program.ts.
import type { Actions } from '../actions';

export const DOMAIN_READ_EXTRA = {} satisfies Actions;
export const DOMAIN_WRITE_EXTRA = {} satisfies Actions;
