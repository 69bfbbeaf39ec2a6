// SPDX-License-Identifier: Apache-2.0
// The admin program's codecs: admin_nonnull_client layout in golden bytes, strict decoding of every argument shape.
import { XdrReader, XdrWriter } from '../../../src/common/xdr';
import { AdminArgs, adminClientCodec } from '../../../src/protocol/admin';

test('admin_nonnull_client: server name, u64 id, i64 timestamp, u32 transport', () => {
  const w = new XdrWriter();
  adminClientCodec.encode(w, { srv: 'virtgated', id: 7n, timestamp: 1700000000n, transport: 2 });
  const b = w.finish();
  expect(b.toString('hex')).toBe('00000009' + Buffer.from('virtgated').toString('hex') + '000000' + '0000000000000007' + '000000006553f100' + '00000002');
  expect(adminClientCodec.decode(new XdrReader(b))).toEqual({ srv: 'virtgated', id: 7n, timestamp: 1700000000n, transport: 2 });
});

test('arguments: truncated at every offset fails; optional string present or absent', () => {
  const w = new XdrWriter();
  adminClientCodec.encode(w, { srv: 'virtgated', id: 3n, timestamp: 1n, transport: 0 });
  w.u32(0);
  const full = w.finish();
  expect(AdminArgs.client(new XdrReader(full))).toMatchObject({ clnt: { id: 3n }, flags: 0 });
  for (let i = 0; i < full.length; i++) expect(() => AdminArgs.client(new XdrReader(full.subarray(0, i)))).toThrow();
  const some = new XdrWriter()
    .optional('1:rpc', (x, v) => void x.string(v, 1 << 22))
    .u32(0)
    .finish();
  expect(AdminArgs.optString(new XdrReader(some))).toEqual({ value: '1:rpc', flags: 0 });
  const none = new XdrWriter().u32(0).u32(0).finish();
  expect(AdminArgs.optString(new XdrReader(none))).toEqual({ value: null, flags: 0 });
  const badFlag = new XdrWriter().u32(2).u32(0).finish();
  expect(() => AdminArgs.optString(new XdrReader(badFlag))).toThrow();
});
