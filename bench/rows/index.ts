// SPDX-License-Identifier: Apache-2.0
// The bench's rows, in run order; a new row (TLS handshakes, audited writes/s, RBAC cost) is one file plus one line here.
// Recovery (kills processes of its own daemon) runs last. Many clients runs first: its per-connection RSS needs a front end whose heap the other rows have not yet inflated.
// The floor (row 0) runs next, before rows 1 and 2 that compare themselves to it.
import type { Row } from '../lib/ctx';
import { abuse } from './abuse';
import { auditedWrites } from './audited-writes';
import { bulkStats } from './bulk-stats';
import { decisionCostRow } from './decision-cost';
import { manyClients } from './many-clients';
import { qemuVms } from './qemu-vms';
import { pipelined } from './pipelined';
import { rbacOnOff } from './rbac-getinfo';
import { recovery } from './recovery';
import { sequential } from './sequential';
import { tlsHandshakes } from './tls-handshakes';
import { fleet } from './fleet';
import { floor } from './floor';

export const ROWS: Row[] = [
  manyClients,
  floor,
  sequential,
  pipelined,
  auditedWrites,
  decisionCostRow,
  rbacOnOff,
  tlsHandshakes,
  abuse,
  bulkStats,
  qemuVms,
  fleet,
  recovery,
];
