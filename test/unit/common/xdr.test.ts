// SPDX-License-Identifier: Apache-2.0
import fc from 'fast-check';
import { XdrReader, XdrWriter } from '../../../src/common/xdr';

describe('XdrReader strictness', () => {
  test('reads big-endian integers and hypers', () => {
    const r = new XdrReader(Buffer.from('ffffffff0000000100000000000000ff', 'hex'));
    expect(r.i32()).toBe(-1);
    expect(r.u32()).toBe(1);
    expect(r.u64()).toBe(255n);
    r.ensureConsumed();
  });

  test('refuses a short buffer at every offset', () => {
    const w = new XdrWriter();
    w.string('hello', 100).u64(7n).i32(-5);
    const full = w.finish();
    for (let cut = 0; cut < full.length; cut++) {
      const r = new XdrReader(full.subarray(0, cut));
      expect(() => {
        r.string(100);
        r.u64();
        r.i32();
      }).toThrow(expect.objectContaining({ code: 'VG_ERR_XDR_DECODE' }));
    }
  });

  test('refuses non-zero padding', () => {
    const b = Buffer.from('00000001' + '41' + '000100', 'hex');
    expect(() => new XdrReader(b).string(10)).toThrow(/non-zero padding/);
  });

  test('refuses a string longer than its maximum before reading it', () => {
    const b = Buffer.from('7fffffff', 'hex');
    expect(() => new XdrReader(b).string(4096)).toThrow(/exceeds maximum 4096/);
  });

  test('refuses array counts the payload cannot hold', () => {
    const b = Buffer.from('00001000', 'hex'); // 4096 elements, no bytes
    expect(() => new XdrReader(b).array(16384, (r) => r.u32())).toThrow(/larger than the remaining payload/);
    expect(() => new XdrReader(Buffer.from('00010000', 'hex')).array(16384, (r) => r.u32())).toThrow(/exceeds maximum/);
  });

  test('booleans must be 0 or 1', () => {
    expect(() => new XdrReader(Buffer.from('00000002', 'hex')).bool()).toThrow(/0 or 1/);
  });

  test('ensureConsumed reports trailing bytes', () => {
    const r = new XdrReader(Buffer.from('0000000100000002', 'hex'));
    r.u32();
    expect(() => r.ensureConsumed()).toThrow(/4 trailing bytes/);
  });

  test('char arrays use one 4-byte word per character, count includes NUL', () => {
    const w = new XdrWriter();
    w.charArray('testSecurity', 257);
    const b = w.finish();
    expect(b.readUInt32BE(0)).toBe(13);
    expect(b.length).toBe(4 + 13 * 4);
    expect(new XdrReader(b).charArray(257)).toBe('testSecurity');
  });

  test('writer refuses out-of-range values', () => {
    expect(() => new XdrWriter().u32(-1)).toThrow(/cannot encode u32/);
    expect(() => new XdrWriter().i32(2 ** 31)).toThrow(/cannot encode i32/);
    expect(() => new XdrWriter().string('x'.repeat(11), 10)).toThrow(/exceeds maximum/);
    expect(() => new XdrWriter().u64(-1n)).toThrow(/cannot encode u64/);
    expect(() => new XdrWriter().u64(2n ** 64n)).toThrow(/cannot encode u64/);
  });

  test('u64 is exact on both sides of 2^32 and 2^53 (two encodings: below 2^53 and BigInt)', () => {
    for (const v of [0n, 1n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 32n + 1n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n]) {
      const b = new XdrWriter(8).u64(v).finish();
      expect(b.readBigUInt64BE(0)).toBe(v);
      expect(new XdrReader(b).u64()).toBe(v);
    }
  });

  test('property: strings and hypers round-trip through writer and reader', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), (s, h, i) => {
        const b = new XdrWriter(8).string(s, 4096).u64(h).i32(i).finish();
        expect(b.length % 4).toBe(0);
        const r = new XdrReader(b);
        expect(r.string(4096)).toBe(s);
        expect(r.u64()).toBe(h);
        expect(r.i32()).toBe(i);
        r.ensureConsumed();
      }),
    );
  });

  test('property: decoding random bytes never throws anything but a decode error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const r = new XdrReader(Buffer.from(bytes));
        try {
          r.string(16);
          r.array(8, (x) => x.opaque(8));
          r.ensureConsumed();
        } catch (e) {
          expect((e as { code?: string }).code).toBe('VG_ERR_XDR_DECODE');
        }
      }),
    );
  });
});

describe('char<> carrying raw bytes (SASL data)', () => {
  test('one signed char per word, round trip, NUL and high bytes kept', () => {
    const data = Buffer.from([0x00, 0x41, 0x7f, 0x80, 0xe9, 0xff]);
    const b = new XdrWriter().charBytes(data, 65536).finish();
    expect(b.toString('hex')).toBe('00000006' + '00000000' + '00000041' + '0000007f' + 'ffffff80' + 'ffffffe9' + 'ffffffff');
    expect(new XdrReader(b).charBytes(65536).equals(data)).toBe(true);
    // libvirt peers may also send high bytes unsigned; both decode the same.
    expect(new XdrReader(Buffer.from('00000001000000e9', 'hex')).charBytes(10)[0]).toBe(0xe9);
  });

  test('counts over the maximum and out-of-range words are refused', () => {
    expect(() => new XdrReader(Buffer.from('00010001', 'hex')).charBytes(65536)).toThrow(/exceeds maximum/);
    expect(() => new XdrReader(Buffer.from('0000000100000100', 'hex')).charBytes(10)).toThrow(/out of range/);
  });
});
