// SPDX-License-Identifier: Apache-2.0
// A raw libvirt wire client for malformed-input tests: send any bytes, collect decoded replies, see when the server closes.
import net from 'node:net';
import { FrameDecoder } from '../../src/common/framing';
import { XdrWriter } from '../../src/common/xdr';
import { type Header, decodeHeader, encodeMessage } from '../../src/protocol/header';
import { errorCodec, type RemoteError } from '../../src/protocol/types';

export interface RawReply {
  header: Header;
  error: RemoteError | null;
  body: Buffer;
}

export class RawClient {
  readonly sock: net.Socket;
  readonly replies: RawReply[] = [];
  closed = false;
  #waiters: (() => void)[] = [];

  private constructor(sock: net.Socket) {
    this.sock = sock;
    const dec = new FrameDecoder({ min: 28, max: 32 * 1024 * 1024 });
    sock.on('data', (c) => {
      for (const f of dec.push(c)) {
        const { header, body } = decodeHeader(f);
        const error = header.status === 1 ? errorCodec.decode(body) : null;
        this.replies.push({ header, error, body: f.subarray(28) });
      }
      this.#wake();
    });
    sock.on('close', () => {
      this.closed = true;
      this.#wake();
    });
    sock.on('error', () => {});
  }

  static connect(path: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection(path, () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  write(b: Buffer): void {
    this.sock.write(b);
  }

  call(proc: number, serial: number, body?: (w: XdrWriter) => void, over: Partial<Header> = {}): void {
    this.write(encodeMessage({ prog: 0x20008086, vers: 1, proc, type: 0, serial, status: 0, ...over }, body));
  }

  async waitReplies(n: number, timeoutMs = 5000): Promise<RawReply[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.replies.length < n && !this.closed && Date.now() < deadline) {
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        setTimeout(r, 50);
      });
    }
    return this.replies;
  }

  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.closed;
  }

  end(): void {
    this.sock.destroy();
  }
}

// AUTH_LIST + CONNECT_OPEN, ready for domain calls; returns the next free serial.
export async function openRaw(path: string): Promise<RawClient> {
  const c = await RawClient.connect(path);
  c.call(66, 0);
  c.call(1, 1, (w) => w.u32(1).string('test:///default', 4096).u32(0));
  await c.waitReplies(2);
  return c;
}
