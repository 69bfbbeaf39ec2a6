// SPDX-License-Identifier: Apache-2.0
// REPLY_WITH_FDS and CALL_WITH_FDS framing: the reply gains type 5 and a u32 count; a call's descriptor bytes (one
// per fd, after the message) are skipped wherever the reads split them; more than 32 closes the stream.
import { FrameDecoder } from '../../../src/common/framing';
import { CALL_FDS_MAX, fdBytesAfter, withFds } from '../../../src/unprivileged/session';

const msg = (type: number, body: Buffer): Buffer => {
  const b = Buffer.alloc(28 + body.length);
  b.writeUInt32BE(b.length, 0);
  b.writeUInt32BE(0x20008086, 4);
  b.writeUInt32BE(1, 8);
  b.writeInt32BE(249, 12);
  b.writeInt32BE(type, 16);
  b.writeUInt32BE(7, 20);
  body.copy(b, 28);
  return b;
};
const u32 = (n: number) => Buffer.from([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);

describe('descriptor framing', () => {
  test('withFds: type 5, nfds after the header, payload after it', () => {
    const reply = msg(1, Buffer.from('abcd'));
    const r = withFds(reply, 1);
    expect(r.length).toBe(reply.length + 4);
    expect(r.readUInt32BE(0)).toBe(r.length);
    expect(r.readInt32BE(16)).toBe(5);
    expect(r.readUInt32BE(28)).toBe(1);
    expect(r.subarray(32).toString()).toBe('abcd');
    expect(r.subarray(4, 16)).toEqual(reply.subarray(4, 16));
  });

  test('a CALL_WITH_FDS with 2 fds, then a call: the 2 fd bytes are skipped at every split point', () => {
    const call = msg(4, Buffer.concat([u32(2), Buffer.alloc(12, 1)]));
    const next = msg(0, Buffer.alloc(8, 2));
    const all = Buffer.concat([call, Buffer.from([0, 0]), next]);
    for (let cut = 0; cut <= all.length; cut++) {
      for (const cut2 of [cut, Math.min(all.length, cut + 1)]) {
        const d = new FrameDecoder({ min: 28, max: 4096, skipAfter: fdBytesAfter });
        const got = [...d.push(all.subarray(0, cut)), ...d.push(all.subarray(cut, cut2)), ...d.push(all.subarray(cut2))];
        expect(got.map((f) => f.readInt32BE(16))).toEqual([4, 0]);
        expect(got[1]).toEqual(next);
      }
    }
  });

  test(`more than ${CALL_FDS_MAX} descriptors poisons the decoder`, () => {
    const d = new FrameDecoder({ min: 28, max: 4096, skipAfter: fdBytesAfter });
    expect(() => d.push(msg(4, Buffer.concat([u32(CALL_FDS_MAX + 1), Buffer.alloc(12)])))).toThrow(/descriptors in one call/);
    expect(() => d.push(msg(0, Buffer.alloc(0)))).toThrow();
  });

  test('plain calls skip nothing', () => expect(fdBytesAfter(msg(0, u32(5)))).toBe(0));
});
