// SPDX-License-Identifier: Apache-2.0
// The bench's rows, in run order; a new row (TLS handshakes, audited writes/s, RBAC cost) is one file plus one line here.
import type { Row } from '../lib/ctx';
import { manyClients } from './many-clients';
import { pipelined } from './pipelined';
import { sequential } from './sequential';

export const ROWS: Row[] = [sequential, pipelined, manyClients];
