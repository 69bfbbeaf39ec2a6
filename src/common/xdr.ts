// SPDX-License-Identifier: Apache-2.0
// Strict XDR (RFC 4506) reader and writer: pure bytes in, values out; shared by the libvirt protocol and the helper IPC.
import { VgError } from './errors';

const PAD = [0, 3, 2, 1] as const;

export class XdrDecodeError extends VgError {
  constructor(what: string, detail: string) {
    super('VG_ERR_XDR_DECODE', `cannot decode ${what}: ${detail}`);
  }
}

export class XdrEncodeError extends VgError {
  constructor(what: string, detail: string) {
    super('VG_ERR_XDR_ENCODE', `cannot encode ${what}: ${detail}`);
  }
}

// Every read is bounds-checked; padding must be zero; variable lengths are capped by the caller's max.
export class XdrReader {
  readonly #buf: Buffer;
  #pos: number;
  readonly #end: number;

  constructor(buf: Buffer, start = 0, end = buf.length) {
    this.#buf = buf;
    this.#pos = start;
    this.#end = end;
  }

  get offset(): number {
    return this.#pos;
  }

  get remaining(): number {
    return this.#end - this.#pos;
  }

  #need(n: number, what: string): void {
    if (this.#end - this.#pos < n) throw new XdrDecodeError(what, `need ${n} bytes, have ${this.#end - this.#pos}`);
  }

  u32(what = 'u32'): number {
    this.#need(4, what);
    const v = this.#buf.readUInt32BE(this.#pos);
    this.#pos += 4;
    return v;
  }

  i32(what = 'i32'): number {
    this.#need(4, what);
    const v = this.#buf.readInt32BE(this.#pos);
    this.#pos += 4;
    return v;
  }

  u64(what = 'u64'): bigint {
    this.#need(8, what);
    const v = this.#buf.readBigUInt64BE(this.#pos);
    this.#pos += 8;
    return v;
  }

  i64(what = 'i64'): bigint {
    this.#need(8, what);
    const v = this.#buf.readBigInt64BE(this.#pos);
    this.#pos += 8;
    return v;
  }

  bool(what = 'bool'): boolean {
    const v = this.u32(what);
    if (v > 1) throw new XdrDecodeError(what, `boolean must be 0 or 1, got ${v}`);
    return v === 1;
  }

  // An XDR enum/int constrained to a closed set.
  enumOf<T extends number>(allowed: readonly T[], what = 'enum'): T {
    const v = this.i32(what);
    if (!allowed.includes(v as T)) throw new XdrDecodeError(what, `value ${v} not allowed`);
    return v as T;
  }

  #padding(len: number, what: string): void {
    const pad = PAD[len & 3];
    this.#need(pad, what);
    for (let i = 0; i < pad; i++) {
      if (this.#buf[this.#pos + i] !== 0) throw new XdrDecodeError(what, 'non-zero padding');
    }
    this.#pos += pad;
  }

  opaqueFixed(len: number, what = 'opaque'): Buffer {
    this.#need(len, what);
    const out = this.#buf.subarray(this.#pos, this.#pos + len);
    this.#pos += len;
    this.#padding(len, what);
    return out;
  }

  opaque(max: number, what = 'opaque'): Buffer {
    const len = this.u32(what);
    if (len > max) throw new XdrDecodeError(what, `length ${len} exceeds maximum ${max}`);
    return this.opaqueFixed(len, what);
  }

  string(max: number, what = 'string'): string {
    const len = this.u32(what);
    if (len > max) throw new XdrDecodeError(what, `length ${len} exceeds maximum ${max}`);
    this.#need(len, what);
    const s = this.#buf.toString('utf8', this.#pos, this.#pos + len);
    this.#pos += len;
    this.#padding(len, what);
    return s;
  }

  // Optional data: a u32 presence flag (0 or 1) then the value.
  optional<T>(read: (r: XdrReader) => T, what = 'optional'): T | null {
    return this.bool(what) ? read(this) : null;
  }

  array<T>(max: number, read: (r: XdrReader) => T, what = 'array'): T[] {
    const n = this.u32(what);
    if (n > max) throw new XdrDecodeError(what, `count ${n} exceeds maximum ${max}`);
    // Each element takes at least 4 bytes: refuse counts the remaining bytes cannot hold before looping.
    if (n * 4 > this.remaining) throw new XdrDecodeError(what, `count ${n} larger than the remaining payload`);
    const out: T[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = read(this);
    return out;
  }

  // rpcgen `char x[N]`: one character per 4-byte word, NUL-terminated inside the array.
  charArrayFixed(n: number, what = 'char[]'): string {
    this.#need(n * 4, what);
    let s = '';
    for (let i = 0; i < n; i++) {
      const c = this.#buf.readInt32BE(this.#pos + i * 4);
      if (c < -128 || c > 255) throw new XdrDecodeError(what, `char out of range: ${c}`);
      if (c === 0) {
        // Everything after the NUL is ignored by C; we keep the prefix.
        s = this.#charsBefore(i);
        this.#pos += n * 4;
        return s;
      }
    }
    s = this.#charsBefore(n);
    this.#pos += n * 4;
    return s;
  }

  // rpcgen `char x<N>`: count (including the NUL) then one character per word.
  charArray(max: number, what = 'char<>'): string {
    const n = this.u32(what);
    if (n > max) throw new XdrDecodeError(what, `count ${n} exceeds maximum ${max}`);
    return this.charArrayFixed(n, what);
  }

  // rpcgen `char x<N>` carrying raw bytes (SASL data): count, then one signed char per word.
  charBytes(max: number, what = 'char<>'): Buffer {
    const n = this.u32(what);
    if (n > max) throw new XdrDecodeError(what, `count ${n} exceeds maximum ${max}`);
    this.#need(n * 4, what);
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) {
      const c = this.#buf.readInt32BE(this.#pos + i * 4);
      if (c < -128 || c > 255) throw new XdrDecodeError(what, `char out of range: ${c}`);
      out[i] = c & 0xff;
    }
    this.#pos += n * 4;
    return out;
  }

  #charsBefore(n: number): string {
    const bytes = Buffer.alloc(n);
    for (let i = 0; i < n; i++) bytes[i] = this.#buf.readInt32BE(this.#pos + i * 4) & 0xff;
    return bytes.toString('latin1');
  }

  ensureConsumed(what = 'message'): void {
    if (this.#pos !== this.#end) throw new XdrDecodeError(what, `${this.#end - this.#pos} trailing bytes`);
  }
}

export class XdrWriter {
  #buf: Buffer;
  #pos: number;

  constructor(initial = 256) {
    this.#buf = Buffer.allocUnsafe(initial);
    this.#pos = 0;
  }

  get length(): number {
    return this.#pos;
  }

  #ensure(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.#buf.copy(next, 0, 0, this.#pos);
    this.#buf = next;
  }

  u32(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new XdrEncodeError('u32', String(v));
    this.#ensure(4);
    this.#buf.writeUInt32BE(v, this.#pos);
    this.#pos += 4;
    return this;
  }

  i32(v: number): this {
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new XdrEncodeError('i32', String(v));
    this.#ensure(4);
    this.#buf.writeInt32BE(v, this.#pos);
    this.#pos += 4;
    return this;
  }

  u64(v: bigint): this {
    if (typeof v === 'bigint') {
      // Below 2^53 (memory, CPU time, sizes): two u32 from one conversion, much cheaper than BigInt byte writes.
      const n = Number(v);
      if (n >= 0 && n <= Number.MAX_SAFE_INTEGER) {
        const hi = Math.floor(n / 0x100000000);
        this.#ensure(8);
        this.#buf.writeUInt32BE(hi, this.#pos);
        this.#buf.writeUInt32BE(n - hi * 0x100000000, this.#pos + 4);
        this.#pos += 8;
        return this;
      }
    }
    if (v < 0n || v > 0xffffffffffffffffn) throw new XdrEncodeError('u64', String(v));
    this.#ensure(8);
    this.#buf.writeBigUInt64BE(v, this.#pos);
    this.#pos += 8;
    return this;
  }

  i64(v: bigint): this {
    this.#ensure(8);
    this.#buf.writeBigInt64BE(v, this.#pos);
    this.#pos += 8;
    return this;
  }

  bool(v: boolean): this {
    return this.u32(v ? 1 : 0);
  }

  #pad(len: number): void {
    const pad = PAD[len & 3];
    this.#ensure(pad);
    this.#buf.fill(0, this.#pos, this.#pos + pad);
    this.#pos += pad;
  }

  opaqueFixed(b: Buffer | Uint8Array, len = b.length): this {
    if (b.length !== len) throw new XdrEncodeError('opaque', `expected ${len} bytes, got ${b.length}`);
    this.#ensure(len);
    this.#buf.set(b, this.#pos);
    this.#pos += len;
    this.#pad(len);
    return this;
  }

  opaque(b: Buffer | Uint8Array, max: number): this {
    if (b.length > max) throw new XdrEncodeError('opaque', `length ${b.length} exceeds maximum ${max}`);
    this.u32(b.length);
    return this.opaqueFixed(b);
  }

  string(s: string, max: number): this {
    const len = Buffer.byteLength(s, 'utf8');
    if (len > max) throw new XdrEncodeError('string', `length ${len} exceeds maximum ${max}`);
    this.u32(len);
    this.#ensure(len);
    this.#buf.write(s, this.#pos, len, 'utf8');
    this.#pos += len;
    this.#pad(len);
    return this;
  }

  optional<T>(v: T | null | undefined, write: (w: XdrWriter, v: T) => void): this {
    if (v === null || v === undefined) return this.u32(0);
    this.u32(1);
    write(this, v);
    return this;
  }

  array<T>(items: readonly T[], max: number, write: (w: XdrWriter, v: T) => void): this {
    if (items.length > max) throw new XdrEncodeError('array', `count ${items.length} exceeds maximum ${max}`);
    this.u32(items.length);
    for (const it of items) write(this, it);
    return this;
  }

  charArrayFixed(s: string, n: number): this {
    const bytes = Buffer.from(s, 'latin1');
    if (bytes.length > n) throw new XdrEncodeError('char[]', `length ${bytes.length} exceeds ${n}`);
    this.#ensure(n * 4);
    for (let i = 0; i < n; i++) {
      this.#buf.writeInt32BE(i < bytes.length ? bytes[i] : 0, this.#pos);
      this.#pos += 4;
    }
    return this;
  }

  // Count includes the trailing NUL, as libvirt sends it.
  charArray(s: string, max: number): this {
    const n = Buffer.byteLength(s, 'latin1') + 1;
    if (n > max) throw new XdrEncodeError('char<>', `length ${n} exceeds ${max}`);
    this.u32(n);
    return this.charArrayFixed(s, n);
  }

  // Raw bytes as rpcgen `char x<N>`; bytes >= 0x80 sign-extended, as C's signed char encodes them.
  charBytes(b: Buffer, max: number): this {
    if (b.length > max) throw new XdrEncodeError('char<>', `length ${b.length} exceeds ${max}`);
    this.u32(b.length);
    this.#ensure(b.length * 4);
    for (const byte of b) {
      this.#buf.writeInt32BE(byte > 127 ? byte - 256 : byte, this.#pos);
      this.#pos += 4;
    }
    return this;
  }

  // Reserve a u32 now, fill it later (frame lengths).
  reserveU32(): number {
    this.#ensure(4);
    const at = this.#pos;
    this.#pos += 4;
    return at;
  }

  patchU32(at: number, v: number): void {
    this.#buf.writeUInt32BE(v, at);
  }

  finish(): Buffer {
    return this.#buf.subarray(0, this.#pos);
  }
}

export interface Codec<T> {
  encode(w: XdrWriter, v: T): void;
  decode(r: XdrReader): T;
}
