// SPDX-License-Identifier: Apache-2.0
// XDR codecs for libvirt's shared remote types (remote_protocol.x, virnetprotocol.x), pure.
import { XdrDecodeError, type Codec, type XdrReader, type XdrWriter } from '../common/xdr';
import { Limits } from './constants';

export type { Codec };

// remote_nonnull_domain: { remote_nonnull_string name; remote_uuid uuid; int id }
export interface RemoteDomain {
  name: string;
  uuid: Buffer;
  id: number;
}

// remote_error (virNetMessageError); dom and net are always sent NULL.
export interface RemoteError {
  code: number;
  domain: number;
  message: string | null;
  level: number;
  str1: string | null;
  str2: string | null;
  str3: string | null;
  int1: number;
  int2: number;
}

export const XdrVoid: Codec<void> = { encode() {}, decode() {} };

export const nonnullString = (what = 'string'): Codec<string> => ({
  encode: (w, v) => void w.string(v, Limits.STRING_MAX),
  decode: (r) => r.string(Limits.STRING_MAX, what),
});

export const optString = (what = 'string'): Codec<string | null> => ({
  encode: (w, v) => void w.optional(v, (w2, s) => w2.string(s, Limits.STRING_MAX)),
  decode: (r) => r.optional((r2) => r2.string(Limits.STRING_MAX, what), what),
});

export const readUuid = (r: XdrReader): Buffer => Buffer.from(r.opaqueFixed(16, 'uuid'));
export const writeUuid = (w: XdrWriter, u: Buffer): void => void w.opaqueFixed(u, 16);

export const domainCodec: Codec<RemoteDomain> = {
  encode(w, d) {
    w.string(d.name, Limits.STRING_MAX);
    writeUuid(w, d.uuid);
    w.i32(d.id);
  },
  decode(r) {
    return { name: r.string(Limits.STRING_MAX, 'domain.name'), uuid: readUuid(r), id: r.i32('domain.id') };
  },
};

export const optDomainCodec: Codec<RemoteDomain | null> = {
  encode: (w, v) => void w.optional(v, domainCodec.encode),
  decode: (r) => r.optional(domainCodec.decode, 'domain'),
};

export const errorCodec: Codec<RemoteError> = {
  encode(w, e) {
    const s = (v: string | null): void => void w.optional(v, (w2, x) => w2.string(x, Limits.STRING_MAX));
    w.i32(e.code).i32(e.domain);
    s(e.message);
    w.i32(e.level);
    w.u32(0); // dom: NULL
    s(e.str1);
    s(e.str2);
    s(e.str3);
    w.i32(e.int1).i32(e.int2);
    w.u32(0); // net: NULL
  },
  decode(r) {
    const s = (): string | null => r.optional((r2) => r2.string(Limits.STRING_MAX, 'error string'), 'error string');
    const code = r.i32('error.code');
    const domain = r.i32('error.domain');
    const message = s();
    const level = r.i32('error.level');
    r.optional(domainCodec.decode, 'error.dom');
    const str1 = s();
    const str2 = s();
    const str3 = s();
    const int1 = r.i32('error.int1');
    const int2 = r.i32('error.int2');
    // remote_network: { nonnull_string name; uuid } when present
    r.optional((r2) => (r2.string(Limits.STRING_MAX, 'error.net'), readUuid(r2)), 'error.net');
    return { code, domain, message, level, str1, str2, str3, int1, int2 };
  },
};

// The fields libvirtd fills for a driver error (see libvirt-wire.md §7.1).
export function remoteError(code: number, domain: number, message: string): RemoteError {
  return { code, domain, message, level: 2, str1: message, str2: null, str3: null, int1: -1, int2: -1 };
}

// Small helper to declare struct codecs from ordered fields.
type FieldSpec<T> = { [K in keyof T]: [K, Codec<T[K]>] }[keyof T];

export function struct<T>(...fields: FieldSpec<T>[]): Codec<T> {
  return {
    encode(w, v) {
      for (const [k, c] of fields) c.encode(w, v[k]);
    },
    decode(r) {
      const out = {} as T;
      for (const [k, c] of fields) out[k] = c.decode(r);
      return out;
    },
  };
}

export const int: Codec<number> = { encode: (w, v) => void w.i32(v), decode: (r) => r.i32() };
export const uint: Codec<number> = { encode: (w, v) => void w.u32(v), decode: (r) => r.u32() };
export const hyper: Codec<bigint> = { encode: (w, v) => void w.i64(v), decode: (r) => r.i64() };
export const uhyper: Codec<bigint> = { encode: (w, v) => void w.u64(v), decode: (r) => r.u64() };
export const uuid: Codec<Buffer> = { encode: writeUuid, decode: readUuid };
// rpcgen encodes unsigned char / unsigned short in a full word; range-check on decode.
export const uchar: Codec<number> = {
  encode: (w, v) => void w.u32(v),
  decode: (r) => {
    const v = r.u32('unsigned char');
    if (v > 0xff) throw new XdrDecodeError('unsigned char', `out of range: ${v}`);
    return v;
  },
};
export const ushort: Codec<number> = {
  encode: (w, v) => void w.u32(v),
  decode: (r) => {
    const v = r.u32('unsigned short');
    if (v > 0xffff) throw new XdrDecodeError('unsigned short', `out of range: ${v}`);
    return v;
  },
};
