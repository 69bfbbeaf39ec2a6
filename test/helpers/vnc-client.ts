// SPDX-License-Identifier: Apache-2.0
// A VeNCrypt X509None VNC client for tests (what gtk-vnc, i.e. virt-viewer and virt-manager, does for a remote
// display): RFB 3.8, security type 19, VeNCrypt 0.2, subtype 260, mutual TLS, SecurityResult, ClientInit/ServerInit.
import net from 'node:net';
import tls from 'node:tls';

// Reads exact byte counts from a stream; `detach` hands the socket on without having consumed more than asked.
export class ByteReader {
  #buf = Buffer.alloc(0);
  #want: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null;
  #ended: Error | null = null;
  readonly total = { bytes: 0 };
  readonly #onData = (b: Buffer): void => {
    this.total.bytes += b.length;
    this.#buf = Buffer.concat([this.#buf, b]);
    this.#pump();
  };
  readonly #onEnd = (): void => {
    this.#ended = new Error(`connection closed (${this.#buf.length} bytes unread)`);
    this.#pump();
  };

  constructor(readonly sock: net.Socket) {
    sock.on('data', this.#onData);
    sock.on('end', this.#onEnd);
    sock.on('close', this.#onEnd);
    sock.on('error', (e) => {
      this.#ended = e;
      this.#pump();
    });
  }

  #pump(): void {
    const w = this.#want;
    if (!w) return;
    if (this.#buf.length >= w.n) {
      this.#want = null;
      const b = this.#buf.subarray(0, w.n);
      this.#buf = this.#buf.subarray(w.n);
      w.resolve(b);
    } else if (this.#ended) {
      this.#want = null;
      w.reject(this.#ended);
    }
  }

  read(n: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.#want = { n, resolve, reject };
      this.#pump();
    });
  }

  // Everything until the peer closes (or ms pass).
  async rest(ms = 5000): Promise<Buffer> {
    const started = Date.now();
    while (!this.#ended && Date.now() - started < ms) await new Promise((r) => setTimeout(r, 20));
    const b = this.#buf;
    this.#buf = Buffer.alloc(0);
    return b;
  }

  get closed(): boolean {
    return this.#ended !== null;
  }

  detach(): net.Socket {
    if (this.#buf.length) throw new Error(`${this.#buf.length} bytes already read past the handshake`);
    this.sock.off('data', this.#onData);
    this.sock.off('end', this.#onEnd);
    this.sock.off('close', this.#onEnd);
    return this.sock;
  }
}

export interface VncCreds {
  ca: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

export type VncOutcome =
  | { result: 'ok'; width: number; height: number; name: string; sock: tls.TLSSocket; reader: ByteReader; greeting: string }
  | { result: 'refused'; reason: string; greeting: string } // SecurityResult failed, inside TLS
  | { result: 'closed'; stage: string; error: string; greeting: string }; // the server hung up (or TLS failed)

export function connect(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, host, () => resolve(s));
    s.once('error', reject);
  });
}

// The whole handshake, as a permitted client would do it; every way it can end is a value, not a throw.
export async function vncOpen(port: number, creds: VncCreds, host = '127.0.0.1'): Promise<VncOutcome> {
  const raw = await connect(port, host);
  let r = new ByteReader(raw);
  let stage = 'version';
  let greeting = '';
  try {
    greeting = (await r.read(12)).toString('latin1');
    raw.write('RFB 003.008\n');
    stage = 'security types';
    const n = (await r.read(1))[0];
    const types = [...(await r.read(n))];
    if (!types.includes(19)) throw new Error(`no VeNCrypt among ${types.join(',')}`);
    raw.write(Buffer.from([19]));
    stage = 'vencrypt version';
    const v = await r.read(2);
    if (v[0] !== 0 || v[1] !== 2) throw new Error(`VeNCrypt ${v[0]}.${v[1]}`);
    raw.write(Buffer.from([0, 2]));
    stage = 'subtypes';
    const [ok, count] = [...(await r.read(2))];
    if (ok !== 0) throw new Error(`VeNCrypt version refused (${ok})`);
    const subs = await r.read(4 * count);
    const list = Array.from({ length: count }, (_, i) => subs.readUInt32BE(4 * i));
    if (!list.includes(260)) throw new Error(`no X509None among ${list.join(',')}`);
    const pick = Buffer.alloc(4);
    pick.writeUInt32BE(260);
    raw.write(pick);
    stage = 'subtype ack';
    if ((await r.read(1))[0] !== 1) throw new Error('subtype refused');
    stage = 'tls';
    const sock = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const t = tls.connect({ socket: r.detach(), ca: creds.ca, cert: creds.cert, key: creds.key, host, servername: undefined }, () => resolve(t));
      t.once('error', reject);
      t.once('close', () => reject(new Error('closed during the TLS handshake')));
    });
    r = new ByteReader(sock);
    stage = 'security result';
    const res = (await r.read(4)).readUInt32BE(0);
    if (res !== 0) {
      const len = (await r.read(4)).readUInt32BE(0);
      const reason = (await r.read(len)).toString('latin1');
      sock.destroy();
      return { result: 'refused', reason, greeting };
    }
    stage = 'server init';
    sock.write(Buffer.from([1])); // ClientInit: shared
    const head = await r.read(24);
    const name = (await r.read(head.readUInt32BE(20))).toString('latin1');
    return { result: 'ok', width: head.readUInt16BE(0), height: head.readUInt16BE(2), name, sock, reader: r, greeting };
  } catch (e) {
    raw.destroy();
    return { result: 'closed', stage, error: (e as Error).message, greeting };
  }
}

// FramebufferUpdateRequest for the whole screen; incremental=false makes the server send all of it.
export function updateRequest(width: number, height: number, incremental = false): Buffer {
  const b = Buffer.alloc(10);
  b[0] = 3;
  b[1] = incremental ? 1 : 0;
  b.writeUInt16BE(width, 6);
  b.writeUInt16BE(height, 8);
  return b;
}
