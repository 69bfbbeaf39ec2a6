// SPDX-License-Identifier: Apache-2.0
// The few RFB (VNC, RFC 6143) handshake messages the VNC proxy speaks, pure: bytes in, bytes to send and a verdict out.
// Nothing here sees a socket. Both parsers hold at most their handshake's fixed size: a client cannot make them buffer.
//
// Outer side: a network client, RFB 3.8 with exactly one security type, VeNCrypt (19), subtype X509None (260):
//   S: "RFB 003.008\n"               C: "RFB 003.008\n"
//   S: u8 1, u8 19                   C: u8 19
//   S: u8 0, u8 2  (VeNCrypt 0.2)    C: u8 0, u8 2
//   S: u8 0 (ok), u8 1, u32 260      C: u32 260
//   S: u8 1 (subtype accepted)       -> TLS (mutual x509); then, inside it, S: SecurityResult
// Inner side: QEMU's own VNC server, no authentication (it is reached only through a descriptor the helper hands out):
//   S: "RFB 003.008\n"               C: "RFB 003.008\n"
//   S: u8 n, n types (None=1 among)  C: u8 1
//   S: u32 0 (SecurityResult ok)     -> ClientInit/ServerInit and the rest pass through untouched
// SecurityResult (3.8): u32 0 = ok; u32 1, u32 length, reason (ASCII) = failed.

export const RFB_VERSION_38 = Buffer.from('RFB 003.008\n', 'latin1');
export const SEC_NONE = 1;
export const SEC_VENCRYPT = 19;
export const VENCRYPT_X509NONE = 260;
// Every byte a client may send before TLS: version (12) + type (1) + VeNCrypt version (2) + subtype (4).
export const PRE_TLS_CLIENT_BYTES = 19;
export const REASON_MAX = 256; // what we put in a SecurityResult
const INNER_REASON_MAX = 1024; // what we accept from QEMU's failure messages
const INNER_MAX = 12 + 1 + 255 + 4 + 4 + INNER_REASON_MAX;

// 'more': wait for bytes; 'tls': start the TLS handshake now (the outer side); 'ready': the inner handshake is done,
// `rest` holds what followed it; 'fail': close (after sending `send`), `reason` says why.
export interface Step {
  send: Buffer[];
  next: 'more' | 'tls' | 'ready' | 'fail';
  reason?: string;
  rest?: Buffer;
}

export function securityResult(failure?: string): Buffer {
  if (failure === undefined) return Buffer.alloc(4);
  const text = Buffer.from(failure.replace(/[^\x20-\x7e]/g, '?').slice(0, REASON_MAX), 'latin1');
  const b = Buffer.alloc(8 + text.length);
  b.writeUInt32BE(1, 0);
  b.writeUInt32BE(text.length, 4);
  text.copy(b, 8);
  return b;
}

const u8 = (...v: number[]): Buffer => Buffer.from(v);
const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0, 0);
  return b;
};

// The server side towards a network client, up to the start of TLS.
export class VencryptServerHandshake {
  #buf: Buffer = Buffer.alloc(0);
  #state: 'version' | 'type' | 'vencrypt' | 'subtype' | 'done' = 'version';
  #received = 0;

  greeting(): Buffer {
    return Buffer.from(RFB_VERSION_38);
  }

  push(chunk: Buffer): Step {
    if (this.#state === 'done') return fail('bytes after the handshake');
    this.#received += chunk.length;
    if (this.#received > PRE_TLS_CLIENT_BYTES) {
      this.#state = 'done';
      return fail(`more than ${PRE_TLS_CLIENT_BYTES} bytes before TLS`);
    }
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    const send: Buffer[] = [];
    for (;;) {
      const step = this.#step(send);
      if (step) return step;
    }
  }

  // One state's worth; null = that state is done and the next may already have its bytes.
  #step(send: Buffer[]): Step | null {
    const take = (n: number): Buffer | null => {
      if (this.#buf.length < n) return null;
      const b = this.#buf.subarray(0, n);
      this.#buf = this.#buf.subarray(n);
      return b;
    };
    const end = (s: Step): Step => {
      this.#state = 'done';
      return { ...s, send: [...send, ...s.send] };
    };
    switch (this.#state) {
      case 'version': {
        const v = take(12);
        if (!v) return { send, next: 'more' };
        // A client may answer an older version; VeNCrypt needs the 3.7+ type list and we speak only 3.8.
        if (!v.equals(RFB_VERSION_38)) return end(fail(`client protocol version ${printable(v)} (only RFB 003.008)`));
        send.push(u8(1, SEC_VENCRYPT));
        this.#state = 'type';
        return null;
      }
      case 'type': {
        const t = take(1);
        if (!t) return { send, next: 'more' };
        if (t[0] !== SEC_VENCRYPT) return end({ send: [securityResult('only VeNCrypt X509None is offered')], next: 'fail', reason: `security type ${t[0]}` });
        send.push(u8(0, 2));
        this.#state = 'vencrypt';
        return null;
      }
      case 'vencrypt': {
        const v = take(2);
        if (!v) return { send, next: 'more' };
        if (v[0] !== 0 || v[1] !== 2) return end({ send: [u8(1)], next: 'fail', reason: `VeNCrypt version ${v[0]}.${v[1]} (only 0.2)` });
        send.push(u8(0, 1), u32(VENCRYPT_X509NONE));
        this.#state = 'subtype';
        return null;
      }
      case 'subtype': {
        const s = take(4);
        if (!s) return { send, next: 'more' };
        const sub = s.readUInt32BE(0);
        if (sub !== VENCRYPT_X509NONE) return end({ send: [u8(0)], next: 'fail', reason: `VeNCrypt subtype ${sub} (only X509None, 260)` });
        // TLS takes the socket over from here: a byte already sent would be lost to it, and no honest client sends one
        // before it has read the acceptance below.
        if (this.#buf.length) return end(fail('bytes after the VeNCrypt subtype, before TLS'));
        return end({ send: [u8(1)], next: 'tls' });
      }
      default:
        return fail('bytes after the handshake');
    }
  }
}

// The client side towards QEMU's VNC server: version 3.8, security None, SecurityResult ok.
export class RfbNoAuthClient {
  #buf: Buffer = Buffer.alloc(0);
  #state: 'version' | 'types' | 'result' | 'done' = 'version';
  #received = 0;

  push(chunk: Buffer): Step {
    if (this.#state === 'done') return fail('bytes after the handshake');
    this.#received += chunk.length;
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    const send: Buffer[] = [];
    for (;;) {
      const step = this.#step(send);
      if (step) {
        if (step.next === 'more' && this.#received > INNER_MAX) return this.#end(send, fail('the VNC server sent too much before its SecurityResult'));
        return step;
      }
    }
  }

  #end(send: Buffer[], s: Step): Step {
    this.#state = 'done';
    return { ...s, send: [...send, ...s.send] };
  }

  // A failure's reason: u32 length + text, from `at`; undefined until all of it is here.
  #reason(at: number): string | undefined {
    if (this.#buf.length < at + 4) return undefined;
    const n = this.#buf.readUInt32BE(at);
    if (n > INNER_REASON_MAX) return printable(this.#buf.subarray(at + 4, at + 4 + Math.min(n, this.#buf.length - at - 4)).subarray(0, 64)) + '...';
    if (this.#buf.length < at + 4 + n) return undefined;
    return printable(this.#buf.subarray(at + 4, at + 4 + n));
  }

  #step(send: Buffer[]): Step | null {
    const more: Step = { send, next: 'more' };
    switch (this.#state) {
      case 'version': {
        if (this.#buf.length < 12) return more;
        const v = this.#buf.subarray(0, 12);
        if (!v.equals(RFB_VERSION_38)) return this.#end(send, fail(`VNC server protocol version ${printable(v)} (want RFB 003.008)`));
        this.#buf = this.#buf.subarray(12);
        send.push(Buffer.from(RFB_VERSION_38));
        this.#state = 'types';
        return null;
      }
      case 'types': {
        if (this.#buf.length < 1) return more;
        const n = this.#buf[0];
        if (n === 0) {
          const why = this.#reason(1);
          return why === undefined ? more : this.#end(send, fail(`the VNC server refused: ${why}`));
        }
        if (this.#buf.length < 1 + n) return more;
        const types = [...this.#buf.subarray(1, 1 + n)];
        this.#buf = this.#buf.subarray(1 + n);
        if (!types.includes(SEC_NONE)) return this.#end(send, fail(`the VNC server wants authentication (types ${types.join(',')})`));
        send.push(u8(SEC_NONE));
        this.#state = 'result';
        return null;
      }
      case 'result': {
        if (this.#buf.length < 4) return more;
        const r = this.#buf.readUInt32BE(0);
        if (r !== 0) {
          const why = this.#reason(4);
          return why === undefined ? more : this.#end(send, fail(`the VNC server's SecurityResult: ${why}`));
        }
        const rest = Buffer.from(this.#buf.subarray(4));
        this.#buf = Buffer.alloc(0);
        this.#state = 'done';
        return { send, next: 'ready', rest };
      }
      default:
        return fail('bytes after the handshake');
    }
  }
}

function fail(reason: string): Step {
  return { send: [], next: 'fail', reason };
}

function printable(b: Buffer): string {
  return JSON.stringify(b.toString('latin1').replace(/[^\x20-\x7e]/g, '?'));
}
