// SPDX-License-Identifier: Apache-2.0
// The op table is the helper's attack surface: pin its size and who may call what, when.
import { Op, REQUEST_OPS } from '../../../src/ipc/program';
import { OP_BY_REQ, OP_TABLE, OpFlag } from '../../../src/privileged/op-table';

test('the helper IPC has exactly 18 request ops, grouped by object (design cap: 32)', () => {
  expect(REQUEST_OPS.length).toBe(18);
  expect(REQUEST_OPS.length).toBeLessThanOrEqual(32);
});

test('every request op has exactly one table entry and nothing else does', () => {
  expect(OP_TABLE.map((e) => e.req).sort((a, b) => a - b)).toEqual([...REQUEST_OPS].sort((a, b) => a - b));
  expect(OP_BY_REQ.size).toBe(OP_TABLE.length);
});

test('only HELLO is permitted on a fresh connection, once', () => {
  expect(OP_TABLE.filter((e) => e.flags & OpFlag.PERMIT).map((e) => e.req)).toEqual([Op.HELLO_REQ]);
  expect(OP_BY_REQ.get(Op.HELLO_REQ)!.flags & OpFlag.ONCE).toBeTruthy();
  for (const e of OP_TABLE) if (e.req !== Op.HELLO_REQ) expect(e.flags & OpFlag.AFTER_HELLO).toBeTruthy();
});

test('EVENTS_SUBSCRIBE is once per connection; writes are exactly the state-changing ops', () => {
  expect(OP_TABLE.filter((e) => e.flags & OpFlag.ONCE).map((e) => e.req)).toEqual([Op.HELLO_REQ, Op.EVENTS_SUBSCRIBE_REQ]);
  expect(OP_TABLE.filter((e) => e.flags & OpFlag.WRITE).map((e) => e.req)).toEqual([
    Op.DOMAIN_WRITE_REQ,
    Op.NETWORK_WRITE_REQ,
    Op.POOL_WRITE_REQ,
    Op.VOLUME_WRITE_REQ,
    Op.IFACE_WRITE_REQ,
    Op.NODEDEV_WRITE_REQ,
    Op.SNAPSHOT_WRITE_REQ,
  ]);
});
