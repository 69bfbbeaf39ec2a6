// SPDX-License-Identifier: Apache-2.0
// QMP client over the helper-bound monitor socket; QEMU is untrusted: every line size-capped and shape-checked (helper side).
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import { sendMsg } from '../../../sandbox/fdpass';

export const QMP_LINE_MAX = 1024 * 1024; // 1 MiB: query-* answers of a large VM are tens of KiB
const GREETING_TIMEOUT_MS = 10_000; // QEMU answers ~70 ms after spawn (qemu-notes); TCG under load is slower
export const EXECUTE_TIMEOUT_MS = 10_000;
const PENDING_MAX = 64; // commands in flight on one monitor

export class QmpError extends Error {
  constructor(
    readonly qmpClass: string,
    readonly desc: string,
  ) {
    super(`${qmpClass}: ${desc}`);
    this.name = 'QmpError';
  }
}

export interface QmpEvent {
  event: string;
  data: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number } | null;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  cmd: string;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

// Events: 'event' (QmpEvent), 'close' (reason string; once). A protocol violation closes the connection.
export class QmpClient extends EventEmitter {
  readonly #sock: net.Socket;
  #buf = '';
  #bufBytes = 0;
  #nextId = 1;
  readonly #pending = new Map<string, Pending>();
  #greeted: ((v: unknown) => void) | null = null;
  #closed: string | null = null;
  #fdBusy: Promise<void> | null = null; // a command with a descriptor is being sent

  private constructor(sock: net.Socket) {
    super();
    this.#sock = sock;
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => this.#onData(chunk));
    sock.on('error', (e) => this.#close(`socket error: ${e.message}`));
    sock.on('close', () => this.#close('monitor closed'));
  }

  // Connects to a monitor socket, reads the greeting, negotiates capabilities.
  static async connect(path: string, timeoutMs = GREETING_TIMEOUT_MS): Promise<QmpClient> {
    const sock = net.connect(path);
    const c = new QmpClient(sock);
    const greeting = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        c.#close('no QMP greeting in time');
        reject(new Error(`no QMP greeting within ${timeoutMs} ms`));
      }, timeoutMs);
      c.#greeted = (v) => (clearTimeout(timer), resolve(v));
      c.once('close', (why: string) => (clearTimeout(timer), reject(new Error(`QMP: ${why}`))));
    });
    await greeting;
    await c.execute('qmp_capabilities', undefined, timeoutMs);
    return c;
  }

  get closed(): boolean {
    return this.#closed !== null;
  }

  async execute(cmd: string, args?: Record<string, unknown>, timeoutMs = EXECUTE_TIMEOUT_MS): Promise<unknown> {
    // A descriptor command waiting for Node's queue to drain goes first: nothing may be written behind its back.
    while (this.#fdBusy) await this.#fdBusy;
    return this.#send(cmd, args, timeoutMs, (line) => void this.#sock.write(line));
  }

  #send(cmd: string, args: Record<string, unknown> | undefined, timeoutMs: number, write: (line: string) => void): Promise<unknown> {
    if (this.#closed) return Promise.reject(new Error(`QMP ${cmd}: ${this.#closed}`));
    if (this.#pending.size >= PENDING_MAX) return Promise.reject(new Error(`QMP ${cmd}: ${PENDING_MAX} commands already in flight`));
    const id = `vg-${this.#nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`QMP ${cmd}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer, cmd });
      try {
        write(`${JSON.stringify(args ? { execute: cmd, arguments: args, id } : { execute: cmd, id })}\n`);
      } catch (e) {
        this.#pending.delete(id);
        clearTimeout(timer);
        reject(new Error(`QMP ${cmd}: ${(e as Error).message}`));
      }
    });
  }

  // A command with one descriptor attached (getfd, add-fd): QEMU takes the SCM_RIGHTS fd that arrives with the
  // command's bytes. Node's own writes go first: the command is sent with sendmsg on the raw socket only once Node's
  // write queue is empty, so the command's bytes (and the fd) are never interleaved with a queued write.
  async executeWithFd(cmd: string, args: Record<string, unknown>, fd: number, timeoutMs = EXECUTE_TIMEOUT_MS): Promise<unknown> {
    if (this.#closed) throw new Error(`QMP ${cmd}: ${this.#closed}`);
    while (this.#fdBusy) await this.#fdBusy;
    let done!: () => void;
    this.#fdBusy = new Promise<void>((r) => (done = r));
    try {
      await this.#drained();
      const handle = (this.#sock as unknown as { _handle?: { fd?: number } })._handle;
      const raw = handle?.fd;
      if (typeof raw !== 'number' || raw < 0) throw new Error(`QMP ${cmd}: the monitor socket has no descriptor`);
      return await this.#send(cmd, args, timeoutMs, (line) => sendMsg(raw, Buffer.from(line), [fd]));
    } finally {
      this.#fdBusy = null;
      done();
    }
  }

  // Resolves once every byte Node was given for this socket is in the kernel.
  #drained(): Promise<void> {
    if (this.#sock.writableLength === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#sock.write('', (e) => (e ? reject(e) : resolve()));
    });
  }

  close(): void {
    this.#close('closed by the helper');
  }

  #close(why: string): void {
    if (this.#closed) return;
    this.#closed = why;
    this.#sock.destroy();
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(new Error(`QMP ${p.cmd}: ${why}`));
    }
    this.#pending.clear();
    this.emit('close', why);
  }

  #onData(chunk: string): void {
    if (this.#closed) return;
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf('\n', start);
      if (nl === -1) break;
      const line = this.#buf + chunk.slice(start, nl);
      this.#buf = '';
      this.#bufBytes = 0;
      start = nl + 1;
      if (Buffer.byteLength(line) > QMP_LINE_MAX) return this.#close(`QMP line longer than ${QMP_LINE_MAX} bytes`);
      if (line.trim() !== '') this.#line(line);
      if (this.#closed) return;
    }
    const rest = chunk.slice(start);
    this.#bufBytes += Buffer.byteLength(rest);
    if (this.#bufBytes > QMP_LINE_MAX) return this.#close(`QMP line longer than ${QMP_LINE_MAX} bytes`);
    this.#buf += rest;
  }

  #line(line: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      return this.#close('QMP sent a line that is not JSON');
    }
    if (!isObj(msg)) return this.#close('QMP sent a JSON value that is not an object');
    if ('QMP' in msg) {
      if (!this.#greeted || !isObj(msg.QMP)) return this.#close('unexpected or malformed QMP greeting');
      const g = this.#greeted;
      this.#greeted = null;
      return g(msg.QMP);
    }
    if (typeof msg.event === 'string') {
      if (!/^[A-Z0-9_]{1,64}$/.test(msg.event)) return this.#close('malformed QMP event name');
      const data = msg.data === undefined ? {} : msg.data;
      if (!isObj(data)) return this.#close(`QMP event ${msg.event}: data is not an object`);
      const ts = msg.timestamp;
      const timestamp =
        isObj(ts) && Number.isInteger(ts.seconds) && Number.isInteger(ts.microseconds)
          ? { seconds: ts.seconds as number, microseconds: ts.microseconds as number }
          : null;
      this.emit('event', { event: msg.event, data, timestamp } satisfies QmpEvent);
      return;
    }
    const id = msg.id;
    if (typeof id !== 'string') return this.#close('QMP answer without our id');
    const p = this.#pending.get(id);
    if (!p) return; // answered after its timeout: dropped
    this.#pending.delete(id);
    clearTimeout(p.timer);
    if ('return' in msg) return p.resolve(msg.return);
    const err = msg.error;
    if (isObj(err) && typeof err.class === 'string' && typeof err.desc === 'string')
      return p.reject(new QmpError(err.class.slice(0, 64), err.desc.slice(0, 512)));
    this.#close('QMP answer neither return nor error');
  }
}
