// SPDX-License-Identifier: Apache-2.0
// The helper's unix-socket server: peer uid check, framing, per-connection op-table state machine (root side of the IPC boundary).
import * as net from 'node:net';
import { FrameDecoder } from '../common/framing';
import { IpcLimits, Op, decodeRequest, encodeAnswer, encodeAnswerError, isRequestOp, requestDigest } from '../ipc/program';
import type { Actor, AnswerOp, Answers, LifecycleEvent, RequestFrame } from '../ipc/program';
import type { HelperJournal } from '../audit/journal';
import { peerCred, type PeerCred } from '../sandbox/peercred';
import { ProtocolViolation } from './answers/types';
import { DriverError } from './drivers/driver';
import type { Driver } from './drivers/driver';
import { OP_BY_REQ, OP_NAMES, OpFlag } from './op-table';

export interface IpcServerOptions {
  driver: Driver;
  allowUids: readonly number[];
  maxConnections?: number;
  partialFrameTimeoutMs?: number;
  log?: (line: string) => void;
  peerCred?: (socket: net.Socket) => PeerCred; // injectable so tests can play another uid
  journal?: HelperJournal | null; // the helper's own record of every write it executes (audit cross-check)
}

const MAX_CONNECTIONS = 8; // one front end needs 1-2; the rest is slack for restarts
const PARTIAL_FRAME_TIMEOUT_MS = 30_000; // a started frame must finish; an idle connection may idle forever
const OUTPUT_MAX = 4 * IpcLimits.ANSWER_MAX; // a subscriber this far behind is dropped, not buffered without bound

export class IpcServer {
  readonly #opts: Required<IpcServerOptions>;
  readonly #server: net.Server;
  readonly #conns = new Set<IpcConnection>();
  #seq = 0;

  constructor(opts: IpcServerOptions) {
    this.#opts = {
      maxConnections: MAX_CONNECTIONS,
      partialFrameTimeoutMs: PARTIAL_FRAME_TIMEOUT_MS,
      log: (line) => process.stderr.write(`virtgate-helper: ${line}\n`),
      peerCred,
      journal: null,
      ...opts,
    };
    this.#server = net.createServer((sock) => this.#accept(sock));
    this.#server.on('error', (e) => this.#opts.log(`server error: ${e.message}`));
  }

  listen(socketPath: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(socketPath, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
  }

  get connections(): number {
    return this.#conns.size;
  }

  close(): Promise<void> {
    for (const c of this.#conns) c.destroy('server closing', false);
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #accept(sock: net.Socket): void {
    const n = ++this.#seq;
    const { log } = this.#opts;
    sock.on('error', () => sock.destroy()); // reported via 'close'; never let an EPIPE escape
    let cred: PeerCred;
    try {
      cred = this.#opts.peerCred(sock);
    } catch (e) {
      log(`conn ${n}: refused: ${(e as Error).message}`);
      sock.destroy();
      return;
    }
    if (!this.#opts.allowUids.includes(cred.uid)) {
      log(`conn ${n}: refused peer uid ${cred.uid} pid ${cred.pid}`);
      sock.destroy();
      return;
    }
    if (this.#conns.size >= this.#opts.maxConnections) {
      log(`conn ${n}: refused peer uid ${cred.uid} pid ${cred.pid}: ${this.#conns.size} connections already open`);
      sock.destroy();
      return;
    }
    const conn = new IpcConnection(sock, `conn ${n} uid ${cred.uid} pid ${cred.pid}`, this.#opts);
    this.#conns.add(conn);
    sock.on('close', () => {
      conn.destroy('peer closed', false);
      this.#conns.delete(conn);
    });
  }
}

class IpcConnection {
  readonly #sock: net.Socket;
  readonly #label: string;
  readonly #opts: Required<IpcServerOptions>;
  readonly #decoder = new FrameDecoder({ min: IpcLimits.FRAME_MIN, max: IpcLimits.REQUEST_MAX });
  readonly #permitted = new Set<number>();
  #helloDone = false;
  #unsubscribe: (() => void) | null = null;
  #partialTimer: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(sock: net.Socket, label: string, opts: Required<IpcServerOptions>) {
    this.#sock = sock;
    this.#label = label;
    this.#opts = opts;
    for (const e of OP_BY_REQ.values()) if (e.flags & OpFlag.PERMIT) this.#permitted.add(e.req);
    sock.on('data', (chunk: Buffer) => this.#onData(chunk));
  }

  // Logs once, drops the subscription, and kills the socket without flushing queued answers.
  destroy(reason: string, log = true): void {
    if (this.#closed) return;
    this.#closed = true;
    if (log) this.#opts.log(`${this.#label}: closing: ${reason}`);
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    if (this.#partialTimer) clearTimeout(this.#partialTimer);
    this.#sock.destroy();
  }

  #onData(chunk: Buffer): void {
    if (this.#closed) return;
    try {
      let frames: Buffer[];
      try {
        frames = this.#decoder.push(chunk);
      } catch (e) {
        this.destroy(`bad frame: ${(e as Error).message}`);
        return;
      }
      for (const f of frames) {
        this.#handle(f);
        if (this.#closed) return;
      }
      this.#armPartialTimer();
    } catch (e) {
      // A helper bug while serving one connection costs that connection, not the process.
      this.destroy(`internal error: ${(e as Error).stack ?? String(e)}`);
    }
  }

  #armPartialTimer(): void {
    if (this.#partialTimer) clearTimeout(this.#partialTimer);
    this.#partialTimer = null;
    if (this.#decoder.buffered === 0) return;
    this.#partialTimer = setTimeout(() => this.destroy(`partial frame stalled for ${this.#opts.partialFrameTimeoutMs} ms`), this.#opts.partialFrameTimeoutMs);
    this.#partialTimer.unref();
  }

  #handle(frame: Buffer): void {
    const op = frame.readUInt32BE(4);
    if (!isRequestOp(op)) return this.destroy(`unknown op ${op}`);
    const name = OP_NAMES.get(op) ?? String(op);
    if (!this.#permitted.has(op)) return this.destroy(`${name} not permitted ${this.#helloDone ? 'again' : 'before HELLO'}`);
    let req: RequestFrame;
    try {
      req = decodeRequest(frame);
    } catch (e) {
      return this.destroy(`malformed ${name}: ${(e as Error).message}`);
    }
    const entry = OP_BY_REQ.get(op);
    if (!entry) return this.destroy(`no table entry for ${name}`);
    if (entry.flags & OpFlag.ONCE) this.#permitted.delete(op);
    const ansOp = (op + 1) as AnswerOp;
    if (entry.flags & OpFlag.WRITE) {
      // A request id names one write, once: a reused one is a replay (a compromised front end, or someone on this
      // socket) and is refused before anything runs.
      const rid = (req.body as { actor?: { requestId: string } }).actor?.requestId ?? '';
      if (this.#opts.journal?.seen(rid)) {
        this.#opts.log(`${this.#label}: REFUSED ${name}: request id ${JSON.stringify(rid)} was already executed (replay)`);
        this.#write(encodeAnswerError(ansOp, req.id, 'VG_ERR_IPC_REPLAY', rid));
        return;
      }
    }
    let out: Buffer;
    let result = 'ok';
    let body: unknown;
    let executed = false;
    try {
      body = entry.answer({ driver: this.#opts.driver, subscribe: () => this.#subscribe(req.id) }, req.body as never);
      executed = true;
      out = encodeAnswer(ansOp, req.id, body as never);
    } catch (e) {
      if (executed) {
        // The change happened; only its answer cannot be encoded (a bug): the journal says so, never "failed".
        this.#opts.log(`${this.#label}: ${name} executed but its answer cannot be encoded: ${(e as Error).message}`);
        out = encodeAnswerError(ansOp, req.id, 'VG_ERR_HELPER_UNANSWERED', name);
      } else if (e instanceof ProtocolViolation) return this.destroy(e.message);
      else if (e instanceof DriverError) {
        result = e.code;
        out = encodeAnswerError(ansOp, req.id, e.code, e.detail);
      } else {
        this.#opts.log(`${this.#label}: ${name} failed: ${(e as Error).stack ?? String(e)}`);
        result = 'VG_ERR_INTERNAL';
        out = encodeAnswerError(ansOp, req.id, 'VG_ERR_INTERNAL', 'hypervisor helper failed to execute the request');
      }
    }
    if (entry.flags & OpFlag.WRITE) {
      this.#journal(name, req, result, body);
      // Group commit: a write's answer (success or error, which may depend on earlier writes) leaves only once every
      // change committed so far is durable; one fdatasync per event-loop turn serves the whole batch. Reads and
      // the event stream are not held back.
      const durable = this.#opts.driver.whenDurable?.bind(this.#opts.driver);
      if (durable) durable(() => this.#write(out));
      else this.#write(out);
    } else this.#write(out);
    if (op === Op.HELLO_REQ && !this.#helloDone) {
      this.#helloDone = true;
      for (const e of OP_BY_REQ.values()) if (e.flags & OpFlag.AFTER_HELLO) this.#permitted.add(e.req);
    }
  }

  // The helper's own record of every write it executed, with who the front end says asked (never used to decide).
  // Written before the answer leaves; a journal that cannot be written is logged, the write's answer still goes out.
  #journal(name: string, req: RequestFrame, result: string, answer: unknown): void {
    const j = this.#opts.journal;
    if (!j) return;
    const body = req.body as { actor?: Actor; uuid?: Buffer };
    const dom = answer as { name?: unknown; uuid?: unknown } | undefined;
    const uuid = Buffer.isBuffer(body.uuid) ? body.uuid : Buffer.isBuffer(dom?.uuid) ? dom.uuid : undefined;
    try {
      j.append({
        op: name,
        uuid: uuid?.toString('hex'),
        name: typeof dom?.name === 'string' ? dom.name : undefined,
        user: body.actor?.user,
        tenant: body.actor?.tenant,
        requestId: body.actor?.requestId,
        digest: requestDigest(req.op, req.body as never),
        auditHead: body.actor?.auditHead,
        result,
      });
    } catch (e) {
      this.#opts.log(`JOURNAL NOT WRITTEN for ${name} request ${body.actor?.requestId ?? '?'}: ${(e as Error).message}`);
    }
  }

  // Initial sync (every domain's state), then each committed change and lifecycle event, all under the subscribe id.
  #subscribe(id: number): void {
    // An item that cannot be encoded must never reach back into the driver's commit: the subscriber is dropped (it
    // reconnects and resyncs) and the change stands.
    const send = (item: Answers[typeof Op.EVENTS_SUBSCRIBE_ANS]): void => {
      if (this.#closed) return;
      let frame: Buffer;
      try {
        frame = encodeAnswer(Op.EVENTS_SUBSCRIBE_ANS, id, item);
      } catch (e) {
        this.destroy(`event stream item cannot be encoded: ${(e as Error).message}`);
        return;
      }
      this.#write(frame);
    };
    const offLifecycle = this.#opts.driver.onLifecycle((event: LifecycleEvent) => send({ event }));
    const offChange = this.#opts.driver.onChange((c) => send({ event: null, ...c }));
    this.#unsubscribe = () => (offLifecycle(), offChange());
    for (const snapshot of this.#opts.driver.snapshots()) send({ event: null, snapshot });
  }

  #write(buf: Buffer): void {
    if (this.#closed) return;
    if (this.#sock.writableLength > OUTPUT_MAX) return this.destroy(`peer not reading: ${this.#sock.writableLength} bytes queued`);
    if (!this.#sock.write(buf) && !this.#sock.isPaused()) {
      // Stop reading requests until the peer reads its answers.
      this.#sock.pause();
      this.#sock.once('drain', () => {
        if (!this.#closed) this.#sock.resume();
      });
    }
  }
}
