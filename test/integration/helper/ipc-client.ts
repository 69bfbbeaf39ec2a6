// SPDX-License-Identifier: Apache-2.0
// Test-only raw helper IPC client: sends arbitrary bytes, collects decoded answers, notices when the helper hangs up.
import * as net from 'node:net';
import { FrameDecoder } from '../../../src/common/framing';
import { IPC_VERSION, IpcLimits, Op, decodeAnswer, encodeRequest } from '../../../src/ipc/program';
import type { AnswerFrame, RequestOp, Requests } from '../../../src/ipc/program';

// Each use gets a fresh request id: the helper refuses an id it has already executed (replay).
let requestIds = 0;
export const ACTOR = {
  user: 'alice',
  tenant: 'acme',
  get requestId(): string {
    return `r-${process.pid}-${++requestIds}`;
  },
};

export class RawClient {
  readonly sock: net.Socket;
  readonly answers: AnswerFrame[] = [];
  readonly closed: Promise<void>;
  #waiters: (() => void)[] = [];
  #decoder = new FrameDecoder({ min: 16, max: IpcLimits.ANSWER_MAX });
  #id = 1;
  isClosed = false;

  private constructor(sock: net.Socket) {
    this.sock = sock;
    this.closed = new Promise((resolve) => sock.on('close', () => ((this.isClosed = true), this.#wake(), resolve())));
    sock.on('error', () => {});
    sock.on('data', (c: Buffer) => {
      for (const f of this.#decoder.push(c)) this.answers.push(decodeAnswer(f));
      this.#wake();
    });
  }

  static connect(path: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(path);
      s.once('connect', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  send(buf: Buffer): void {
    this.sock.write(buf);
  }

  request<K extends RequestOp>(op: K, body: Requests[K]): number {
    const id = this.#id++;
    this.send(encodeRequest(op, id, body));
    return id;
  }

  // Resolves with the n-th answer (0-based) or rejects if the connection closes first.
  async answer(n: number, timeoutMs = 5000): Promise<AnswerFrame> {
    const deadline = Date.now() + timeoutMs;
    while (this.answers.length <= n) {
      if (this.isClosed) throw new Error(`connection closed after ${this.answers.length} answers`);
      if (Date.now() > deadline) throw new Error('timed out waiting for an answer');
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        setTimeout(r, 50).unref();
      });
    }
    return this.answers[n];
  }

  async call<K extends RequestOp>(op: K, body: Requests[K]): Promise<AnswerFrame> {
    const n = this.answers.length;
    this.request(op, body);
    return this.answer(n);
  }

  async hello(): Promise<AnswerFrame> {
    return this.call(Op.HELLO_REQ, { version: IPC_VERSION });
  }

  // True if the helper closed the connection within the timeout.
  async closesWithin(ms = 3000): Promise<boolean> {
    return Promise.race([this.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())]);
  }

  end(): void {
    this.sock.destroy();
  }
}
