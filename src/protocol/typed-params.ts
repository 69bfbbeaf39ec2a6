// SPDX-License-Identifier: Apache-2.0
// remote_typed_param (remote_protocol.x) codec and libvirt's virTypedParamsValidate checks, pure.
import { XdrDecodeError, XdrEncodeError, type XdrReader, type XdrWriter } from '../common/xdr';
import type { Codec } from './types';

// virTypedParameterType
export const TypedParamType = { INT: 1, UINT: 2, LLONG: 3, ULLONG: 4, DOUBLE: 5, BOOLEAN: 6, STRING: 7 } as const;
export type TypedParamTypeCode = (typeof TypedParamType)[keyof typeof TypedParamType];

export type TypedParam =
  | { field: string; type: 1 | 2; value: number } // int, uint
  | { field: string; type: 3 | 4; value: bigint } // llong, ullong
  | { field: string; type: 5; value: number } // double
  | { field: string; type: 6; value: boolean }
  | { field: string; type: 7; value: string };

export const FIELD_LENGTH = 80; // VIR_TYPED_PARAM_FIELD_LENGTH, NUL included
const STRING_MAX = 4 * 1024 * 1024; // REMOTE_STRING_MAX
const TYPE_NAMES = ['', 'int', 'uint', 'llong', 'ullong', 'double', 'boolean', 'string'] as const;
export const typeName = (t: number): string => TYPE_NAMES[t] ?? `type ${t}`;

// The REMOTE_*_PARAMETERS_MAX bounds (remote_protocol.x).
export const ParamLimits = {
  SCHEDULER: 16,
  BLKIO: 16,
  MEMORY: 16,
  NUMA: 16,
  DOMAIN_STATS: 262144, // REMOTE_CONNECT_GET_ALL_DOMAIN_STATS_MAX
} as const;

export const tpInt = (field: string, value: number): TypedParam => ({ field, type: 1, value });
export const tpUint = (field: string, value: number): TypedParam => ({ field, type: 2, value });
export const tpLlong = (field: string, value: bigint): TypedParam => ({ field, type: 3, value });
export const tpUllong = (field: string, value: bigint): TypedParam => ({ field, type: 4, value });
export const tpBool = (field: string, value: boolean): TypedParam => ({ field, type: 6, value });
export const tpString = (field: string, value: string): TypedParam => ({ field, type: 7, value });

// struct remote_typed_param { remote_nonnull_string field; union switch (int type) { INT int i; UINT unsigned ui;
// LLONG hyper l; ULLONG unsigned hyper ul; DOUBLE double d; BOOLEAN int b; STRING remote_nonnull_string s; } }
export const typedParamCodec: Codec<TypedParam> = {
  encode(w: XdrWriter, p: TypedParam) {
    if (Buffer.byteLength(p.field) >= FIELD_LENGTH) throw new XdrEncodeError('typed param field', `'${p.field}' too long`);
    w.string(p.field, FIELD_LENGTH).i32(p.type);
    switch (p.type) {
      case 1:
        w.i32(p.value);
        return;
      case 2:
        w.u32(p.value);
        return;
      case 3:
        w.i64(p.value);
        return;
      case 4:
        w.u64(p.value);
        return;
      case 5: {
        const b = Buffer.alloc(8);
        b.writeDoubleBE(p.value);
        w.opaqueFixed(b, 8);
        return;
      }
      case 6:
        w.i32(p.value ? 1 : 0);
        return;
      case 7:
        w.string(p.value, STRING_MAX);
        return;
    }
  },
  decode(r: XdrReader): TypedParam {
    const field = r.string(FIELD_LENGTH, 'typed param field');
    // libvirt copies the name into char[80]: 79 bytes and the NUL at most; an embedded NUL would truncate it.
    if (Buffer.byteLength(field) >= FIELD_LENGTH || field.includes('\0'))
      throw new XdrDecodeError('typed param field', `parameter ${field.slice(0, 80)} too big for destination`);
    const type = r.i32('typed param type');
    switch (type) {
      case 1:
        return { field, type, value: r.i32(field) };
      case 2:
        return { field, type, value: r.u32(field) };
      case 3:
        return { field, type, value: r.i64(field) };
      case 4:
        return { field, type, value: r.u64(field) };
      case 5:
        return { field, type, value: r.opaqueFixed(8, field).readDoubleBE(0) };
      case 6: {
        const b = r.i32(field);
        if (b !== 0 && b !== 1) throw new XdrDecodeError(field, `boolean out of range: ${b}`);
        return { field, type, value: b === 1 };
      }
      case 7: {
        const s = r.string(STRING_MAX, field);
        if (s.includes('\0')) throw new XdrDecodeError(field, 'string contains NUL');
        return { field, type, value: s };
      }
      default:
        throw new XdrDecodeError('typed param', `unknown parameter type: ${type}`);
    }
  },
};

// remote_typed_param params<max>
export const typedParams = (max: number): Codec<TypedParam[]> => ({
  encode: (w, v) => void w.array(v, max, typedParamCodec.encode),
  decode: (r) => r.array(max, typedParamCodec.decode, 'typed params'),
});

// virTypedParamsValidate: every field known, of its one type, at most once. Returns the first problem as libvirt
// words it ({ kind: 'unsupported' } is VIR_ERR_ARGUMENT_UNSUPPORTED, { kind: 'invalid' } VIR_ERR_INVALID_ARG), or null.
export function validateTypedParams(
  params: readonly TypedParam[],
  allowed: Readonly<Record<string, TypedParamTypeCode>>,
): { kind: 'unsupported' | 'invalid'; message: string } | null {
  const sorted = [...params].sort((a, b) => (a.field < b.field ? -1 : a.field > b.field ? 1 : 0));
  for (let i = 0; i < sorted.length; i++) {
    const p = sorted[i];
    const want = Object.prototype.hasOwnProperty.call(allowed, p.field) ? allowed[p.field] : undefined;
    if (want === undefined) return { kind: 'unsupported', message: `parameter '${p.field}' not supported` };
    if (i > 0 && sorted[i - 1].field === p.field) return { kind: 'invalid', message: `parameter '${p.field}' occurs multiple times` };
    if (p.type !== want) return { kind: 'invalid', message: `invalid type '${typeName(p.type)}' for parameter '${p.field}', expected '${typeName(want)}'` };
  }
  return null;
}
