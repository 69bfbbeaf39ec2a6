// SPDX-License-Identifier: Apache-2.0
import { FrameDecoder, LARGE_FRAME } from '../../../src/common/framing';

const frame = (payload: number): Buffer => {
  const b = Buffer.alloc(28 + payload, 0xab);
  b.writeUInt32BE(28 + payload, 0);
  return b;
};

describe('FrameDecoder', () => {
  test('splits concatenated frames and keeps a partial one', () => {
    const d = new FrameDecoder({ min: 28, max: 1024 });
    const all = Buffer.concat([frame(0), frame(4), frame(8)]);
    const out = d.push(all.subarray(0, 50));
    expect(out.map((f) => f.length)).toEqual([28]);
    expect(d.push(all.subarray(50)).map((f) => f.length)).toEqual([32, 36]);
    expect(d.buffered).toBe(0);
  });

  test('byte-at-a-time delivery yields the same frames', () => {
    const d = new FrameDecoder({ min: 28, max: 1024 });
    const all = Buffer.concat([frame(12), frame(0)]);
    const got: number[] = [];
    for (const byte of all) got.push(...d.push(Buffer.from([byte])).map((f) => f.length));
    expect(got).toEqual([40, 28]);
  });

  test.each([
    ['under the minimum', 27],
    ['zero', 0],
    ['over the maximum', 1025],
    ['huge', 0xffffffff],
  ])('a length %s is refused before anything is buffered', (_name, len) => {
    const d = new FrameDecoder({ min: 28, max: 1024 });
    const b = Buffer.alloc(4);
    b.writeUInt32BE(len >>> 0, 0);
    expect(() => d.push(b)).toThrow(expect.objectContaining({ code: 'VG_ERR_FRAME_LENGTH' }));
    expect(() => d.push(frame(0))).toThrow(); // poisoned: the caller must close
  });

  test('a large frame arriving in many chunks is assembled once, without quadratic copying', () => {
    const d = new FrameDecoder({ min: 28, max: 32 * 1024 * 1024 });
    const big = frame(8 * 1024 * 1024);
    let out: Buffer[] = [];
    for (let i = 0; i < big.length; i += 65536) out = out.concat(d.push(big.subarray(i, i + 65536)));
    expect(out).toHaveLength(1);
    expect(out[0].equals(big)).toBe(true);
  });

  test('pending counts the bytes still expected', () => {
    const d = new FrameDecoder({ min: 28, max: 1024 });
    d.push(frame(100).subarray(0, 30));
    expect(d.pending).toBe(98);
  });
});

describe('FrameDecoder limits that change and large frames', () => {
  test('setMax applies to the next length word, not to a frame already accepted', () => {
    const d = new FrameDecoder({ min: 28, max: 4096 });
    const f = frame(1000);
    expect(d.push(f.subarray(0, 10))).toEqual([]);
    d.setMax(100);
    expect(d.push(f.subarray(10)).map((x) => x.length)).toEqual([1028]);
    expect(() => d.push(frame(100))).toThrow(expect.objectContaining({ code: 'VG_ERR_FRAME_LENGTH' }));
  });

  test('a large partial frame is held in one buffer of its size and release() lets it go', () => {
    const d = new FrameDecoder({ min: 28, max: 32 * 1024 * 1024 });
    const big = frame(LARGE_FRAME * 4);
    d.push(big.subarray(0, 1000));
    d.push(big.subarray(1000, 70000));
    expect(d.buffered).toBe(70000);
    expect(d.pending).toBe(big.length - 70000);
    d.release();
    expect(d.buffered).toBe(0);
    expect(d.pending).toBe(0);
  });

  test('largeBytesIn counts the bytes copied into large frames only', () => {
    const d = new FrameDecoder({ min: 28, max: 32 * 1024 * 1024 });
    d.push(Buffer.concat([frame(0), frame(100)]));
    expect(d.largeBytesIn).toBe(0);
    const big = frame(LARGE_FRAME * 2);
    d.push(big.subarray(0, 5000));
    d.push(big.subarray(5000, 90000));
    expect(d.largeBytesIn).toBe(90000);
    d.push(Buffer.concat([big.subarray(90000), frame(3)]));
    expect(d.largeBytesIn).toBe(big.length);
  });

  test('a large frame followed by small ones in the same chunk', () => {
    const d = new FrameDecoder({ min: 28, max: 32 * 1024 * 1024 });
    const big = frame(LARGE_FRAME + 5);
    const all = Buffer.concat([big, frame(0), frame(3)]);
    const got = [...d.push(all.subarray(0, 100)), ...d.push(all.subarray(100))];
    expect(got.map((x) => x.length)).toEqual([big.length, 28, 31]);
    expect(got[0].equals(big)).toBe(true);
    expect(d.buffered).toBe(0);
  });
});
