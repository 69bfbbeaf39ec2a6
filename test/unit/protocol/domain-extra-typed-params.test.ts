// SPDX-License-Identifier: Apache-2.0
// remote_typed_param: golden bytes, strict decoding, and virTypedParamsValidate's answers.
import { XdrReader, XdrWriter } from '../../../src/common/xdr';
import { type TypedParam, typedParamCodec, typedParams, validateTypedParams } from '../../../src/protocol/typed-params';
import { hex } from '../../helpers/hex';

const enc = (ps: TypedParam[], max = 16) => {
  const w = new XdrWriter();
  typedParams(max).encode(w, ps);
  return w.finish();
};
const dec = (b: Buffer, max = 16) => {
  const r = new XdrReader(b);
  const v = typedParams(max).decode(r);
  r.ensureConsumed();
  return v;
};

const ALL: TypedParam[] = [
  { field: 'i', type: 1, value: -2 },
  { field: 'u', type: 2, value: 0xffffffff },
  { field: 'l', type: 3, value: -(1n << 62n) },
  { field: 'ul', type: 4, value: (1n << 64n) - 1n },
  { field: 'd', type: 5, value: 1.5 },
  { field: 'b', type: 6, value: true },
  { field: 'weight', type: 7, value: '/dev/sda,300' },
];

test('golden bytes: field, discriminant, value', () => {
  expect(enc([{ field: 'weight', type: 2, value: 50 }])).toEqual(
    hex('0000 0001 /* count */ 0000 0006 7765 6967 6874 0000 /* "weight" */ 0000 0002 /* UINT */ 0000 0032 /* 50 */'),
  );
});

test('every type round-trips', () => {
  expect(dec(enc(ALL))).toEqual(ALL);
});

test('truncation at every offset fails, never returns', () => {
  const b = enc(ALL);
  for (let i = 0; i < b.length; i++) expect(() => dec(b.subarray(0, i))).toThrow();
});

test('strict: unknown type, boolean out of range, too many, field too long', () => {
  const b = enc([{ field: 'x', type: 1, value: 1 }]);
  const bad = Buffer.from(b);
  bad.writeInt32BE(9, 12); // discriminant
  expect(() => dec(bad)).toThrow(/unknown parameter type: 9/);
  const bool = Buffer.from(enc([{ field: 'x', type: 6, value: true }]));
  bool.writeInt32BE(2, 16);
  expect(() => dec(bool)).toThrow(/boolean out of range/);
  expect(() => dec(enc(ALL, 16), 3)).toThrow(/exceeds maximum 3/);
  const w = new XdrWriter();
  w.u32(1).string('f'.repeat(80), 100).i32(1).i32(0);
  expect(() => dec(w.finish())).toThrow();
  expect(() => typedParamCodec.encode(new XdrWriter(), { field: 'f'.repeat(80), type: 1, value: 0 })).toThrow();
});

test("virTypedParamsValidate's answers", () => {
  const allowed = { hard_limit: 4, soft_limit: 4 } as const;
  expect(validateTypedParams([{ field: 'hard_limit', type: 4, value: 1n }], allowed)).toBeNull();
  expect(validateTypedParams([{ field: 'foo', type: 4, value: 1n }], allowed)).toEqual({ kind: 'unsupported', message: "parameter 'foo' not supported" });
  expect(validateTypedParams([{ field: 'hard_limit', type: 2, value: 1 }], allowed)).toEqual({
    kind: 'invalid',
    message: "invalid type 'uint' for parameter 'hard_limit', expected 'ullong'",
  });
  expect(
    validateTypedParams(
      [
        { field: 'soft_limit', type: 4, value: 1n },
        { field: 'soft_limit', type: 4, value: 2n },
      ],
      allowed,
    ),
  ).toEqual({ kind: 'invalid', message: "parameter 'soft_limit' occurs multiple times" });
  expect(validateTypedParams([{ field: 'toString', type: 4, value: 1n }], allowed)?.kind).toBe('unsupported');
});
