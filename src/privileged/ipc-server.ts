// SPDX-License-Identifier: Apache-2.0
// The helper's unix-socket server: peer uid check, framing, per-connection op-table state machine (root side of the IPC boundary).
import * as net from 'node:net';
import { FrameDecoder } from '../common/framing';
import {
  IpcLimits,
  Op,
  actionOf,
  answerOpOf,
  decodeRequest,
  encodeAnswer,
  encodeAnswerError,
  isRequestOp,
  opName,
  requestDigest,
  requestName,
} from '../ipc/program';
import type { Actor, AnswerOp, Answers, LifecycleEvent, ObjectEvent, RequestFrame } from '../ipc/program';
import type { HelperJournal, JournalBegin } from '../audit/journal';
import { UPLOAD_CONTINUATIONS } from '../ipc/objects/storage';
import { CONSOLE_CONTINUATIONS } from '../ipc/objects/console';
import { closeFd } from '../sandbox/fdpass';
import { peerCred, type PeerCred } from '../sandbox/peercred';
import type { FdKind } from '../ipc/fd-channel';
import { type AnswerContext, ProtocolViolation } from './answers/types';
import { DriverError, driverError } from './drivers/driver';
import type { FdChannelServer } from './fd-channel';
import { VG_ERR_DOMAIN_INTERNAL } from '../common/errors';
import type { Driver } from './drivers/driver';
import { JobQueue, jobKey } from './jobs';
import { OBJECT_STATE_OPS, ObjectStateFeed, changedByEvent, volumeScopeOfWrite } from './object-state';
import { OP_BY_REQ, OpFlag } from './op-table';

export interface IpcServerOptions {
  driver: Driver;
  allowUids: readonly number[];
  maxConnections?: number;
  partialFrameTimeoutMs?: number;
  log?: (line: string) => void;
  peerCred?: (socket: net.Socket) => PeerCred; // injectable so tests can play another uid
  journal?: HelperJournal | null; // the helper's own record of every write it executes (audit cross-check)
  jobs?: JobQueue; // writes to one object never overlap; shared by every connection
  fdChannel?: FdChannelServer | null; // descriptors to the front end (consoles, displays), paired by the peer's pid
}

const MAX_CONNECTIONS = 8; // one front end needs 1-2; the rest is slack for restarts
const PARTIAL_FRAME_TIMEOUT_MS = 30_000; // a started frame must finish; an idle connection may idle forever
const OUTPUT_MAX = 4 * IpcLimits.ANSWER_MAX; // a subscriber this far behind is dropped, not buffered without bound
const UPLOAD_CHUNK = 'VOLUME_WRITE_REQ.uploadChunk';

export class IpcServer {
  readonly #opts: Required<IpcServerOptions>;
  readonly #server: net.Server;
  readonly #conns = new Set<IpcConnection>();
  readonly #feeds = new Set<ObjectStateFeed>(); // every subscriber's object state, refreshed after each object write
  #seq = 0;

  constructor(opts: IpcServerOptions) {
    this.#opts = {
      maxConnections: MAX_CONNECTIONS,
      partialFrameTimeoutMs: PARTIAL_FRAME_TIMEOUT_MS,
      log: (line) => process.stderr.write(`virtgate-helper: ${line}\n`),
      peerCred,
      journal: null,
      jobs: new JobQueue(),
      fdChannel: null,
      ...opts,
    };
    // A front end's descriptor channel closed: what was handed to that process is treated as closed.
    this.#opts.fdChannel?.on('closed', (pid: number) => {
      for (const c of this.#conns) if (c.pid === pid) c.runCloseHooks('descriptor channel closed');
    });
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
    const conn = new IpcConnection(sock, `conn ${n} uid ${cred.uid} pid ${cred.pid}`, cred.pid, this.#opts, this.#feeds);
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
  readonly #feeds: Set<ObjectStateFeed>;
  #unsubscribe: (() => void) | null = null;
  #partialTimer: NodeJS.Timeout | null = null;
  #closed = false;
  readonly pid: number; // the peer's, from SO_PEERCRED: descriptors it asks for go to this process's channel
  readonly #closeHooks = new Map<string, () => void>();

  constructor(sock: net.Socket, label: string, pid: number, opts: Required<IpcServerOptions>, feeds: Set<ObjectStateFeed>) {
    this.#sock = sock;
    this.#label = label;
    this.pid = pid;
    this.#opts = opts;
    this.#feeds = feeds;
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
    this.runCloseHooks();
  }

  // What was handed to this connection's process ends (its IPC connection or descriptor channel closed).
  runCloseHooks(why = 'connection closed'): void {
    const hooks = [...this.#closeHooks];
    this.#closeHooks.clear();
    for (const [key, h] of hooks) {
      // On the journal: what this front end held ended without its own close (it died, or its channel closed).
      this.#opts.journal?.end(-1, 'RELEASED', undefined, { result: `${key} released: ${why} (${this.#label})` });
      try {
        h();
      } catch (e) {
        this.#opts.log(`${this.#label}: close hook failed: ${(e as Error).message}`);
      }
    }
  }

  #context(id: number): AnswerContext {
    return {
      driver: this.#opts.driver,
      subscribe: () => this.#subscribe(id),
      passFd: (fd: number, kind: FdKind) => {
        const ch = this.#opts.fdChannel;
        if (!ch) {
          closeFd(fd); // the helper's copy is closed whatever happens (passFd's promise)
          throw driverError(VG_ERR_DOMAIN_INTERNAL, 'no descriptor channel (this helper serves none)');
        }
        return ch.pass(this.pid, fd, kind);
      },
      onClose: (key: string, cb: (() => void) | null) => {
        if (cb && !this.#closed) this.#closeHooks.set(key, cb);
        else if (cb)
          queueMicrotask(cb); // the connection is gone already: what it was given ends at once
        else this.#closeHooks.delete(key);
      },
    };
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
    if (!this.#permitted.has(op)) return this.destroy(`${opName(op)} not permitted ${this.#helloDone ? 'again' : 'before HELLO'}`);
    let req: RequestFrame;
    try {
      req = decodeRequest(frame);
    } catch (e) {
      return this.destroy(`malformed ${opName(op)}: ${(e as Error).message}`);
    }
    const name = requestName(op, req.body);
    const entry = OP_BY_REQ.get(op);
    if (!entry) return this.destroy(`no table entry for ${name}`);
    if (entry.flags & OpFlag.ONCE) this.#permitted.delete(op);
    const ansOp: AnswerOp = answerOpOf(op);
    if (entry.flags & OpFlag.WRITE && UPLOAD_CONTINUATIONS.has(name)) {
      // Part of an upload journaled at its `upload` request (it carries that request's id): no line or replay check of
      // its own; the driver refuses it unless that upload is open for the same request id and tenant.
      this.#queueWrite(entry, name, req, ansOp, -1);
      return;
    }
    if (entry.flags & OpFlag.WRITE && CONSOLE_CONTINUATIONS.has(name)) {
      // The end of a console opened by an audited, journaled request: journaled as a result line of its own (no begin:
      // the cross-check reads begin lines as writes needing a front-end intent; the front end records a stream-end).
      this.#queueWrite(entry, name, req, ansOp, -1);
      return;
    }
    if (entry.flags & OpFlag.WRITE) {
      // A request id names one write, once: a reused one is a replay (a compromised front end, or someone on this
      // socket) and is refused before anything runs.
      const rid = (req.body as { actor?: { requestId: string } }).actor?.requestId ?? '';
      const journal = this.#opts.journal;
      if (journal?.seen(rid)) {
        this.#opts.log(`${this.#label}: REFUSED ${name}: request id ${JSON.stringify(rid)} was already executed (replay)`);
        this.#write(encodeAnswerError(ansOp, req.id, 'VG_ERR_IPC_REPLAY', rid));
        return;
      }
      if (journal) {
        // Journal first: the begin line is written now and made durable with this turn's batch; only then does the
        // driver run the write. A begin the disk refuses refuses the write (nothing runs), as the audit log does.
        let begun: number;
        try {
          begun = journal.begin(this.#beginOf(name, req));
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
          this.#opts.log(`${this.#label}: REFUSED ${name} request ${JSON.stringify(rid)}: helper journal unavailable (${code})`);
          this.#write(encodeAnswerError(ansOp, req.id, 'VG_ERR_STORAGE', `helper journal unavailable (${code}); write refused`));
          return;
        }
        journal.whenDurable(() => this.#queueWrite(entry, name, req, ansOp, begun));
        return;
      }
      this.#queueWrite(entry, name, req, ansOp, -1);
      return;
    }
    const ctx = this.#context(req.id);
    let result: unknown;
    try {
      result = entry.answer(ctx, req.body as never);
    } catch (e) {
      if (e instanceof ProtocolViolation) return this.destroy(e.message);
      return this.#write(this.#failure(name, ansOp, req.id, e).out);
    }
    if (result instanceof Promise) {
      // A read that waits on the hypervisor: answered when it completes; other requests go on meanwhile.
      result.then(
        (body: unknown) => this.#write(this.#encodeOk(ansOp, req, body)),
        (e: unknown) => (e instanceof ProtocolViolation ? this.destroy(e.message) : this.#write(this.#failure(name, ansOp, req.id, e).out)),
      );
      return;
    }
    this.#write(this.#encodeOk(ansOp, req, result));
    if (op === Op.HELLO_REQ && !this.#helloDone) {
      this.#helloDone = true;
      for (const e of OP_BY_REQ.values()) if (e.flags & OpFlag.AFTER_HELLO) this.#permitted.add(e.req);
    }
  }

  // A grouped op's answer echoes its request's action. An answer that cannot be encoded is a helper bug.
  #encodeOk(ansOp: AnswerOp, req: RequestFrame, body: unknown): Buffer {
    try {
      return encodeAnswer(ansOp, req.id, echoAction(req, body) as never);
    } catch (e) {
      return this.#failure(opName(req.op), ansOp, req.id, e).out;
    }
  }

  // A write joins its object's job queue; a helper bug while running it costs this connection, not the process.
  #queueWrite(entry: NonNullable<ReturnType<typeof OP_BY_REQ.get>>, name: string, req: RequestFrame, ansOp: AnswerOp, begun: number): void {
    this.#opts.jobs
      .run(jobKey(opName(req.op), req.body), () => this.#runWrite(entry, name, req, ansOp, begun))
      .catch((e: unknown) => this.destroy(`internal error: ${(e as Error).stack ?? String(e)}`));
  }

  #failure(name: string, ansOp: AnswerOp, id: number, e: unknown): { out: Buffer; result: string } {
    if (e instanceof DriverError) return { out: encodeAnswerError(ansOp, id, e.code, e.detail), result: e.code };
    this.#opts.log(`${this.#label}: ${name} failed: ${(e as Error).stack ?? String(e)}`);
    return { out: encodeAnswerError(ansOp, id, 'VG_ERR_INTERNAL', 'hypervisor helper failed to execute the request'), result: 'VG_ERR_INTERNAL' };
  }

  // Runs a write whose begin line is durable (begun >= 0) or that is not journaled (-1), then journals its end. It runs
  // even if this connection closed meanwhile: the journal says it was begun, so it must say how it ended. The answer
  // (success or error, which may depend on earlier writes) leaves once the driver's state and the end line are durable
  // (group commit: one fdatasync per event-loop turn serves the batch). Reads and the event stream are not held.
  async #runWrite(entry: NonNullable<ReturnType<typeof OP_BY_REQ.get>>, name: string, req: RequestFrame, ansOp: AnswerOp, begun: number): Promise<void> {
    let out: Buffer;
    let result = 'ok';
    let body: unknown;
    let executed = false;
    try {
      body = await entry.answer(this.#context(req.id), req.body as never);
      executed = true;
      out = encodeAnswer(ansOp, req.id, echoAction(req, body) as never);
    } catch (e) {
      if (executed) {
        // The change happened; only its answer cannot be encoded (a bug): the journal says so, never "failed".
        this.#opts.log(`${this.#label}: ${name} executed but its answer cannot be encoded: ${(e as Error).message}`);
        out = encodeAnswerError(ansOp, req.id, 'VG_ERR_HELPER_UNANSWERED', name);
      } else if (e instanceof ProtocolViolation) {
        if (begun >= 0) this.#journalEnd(begun, name, req, 'VG_ERR_PROTOCOL', undefined);
        return this.destroy(e.message);
      } else ({ out, result } = this.#failure(name, ansOp, req.id, e));
    }
    if (begun >= 0) this.#journalEnd(begun, name, req, result, body);
    else if (CONSOLE_CONTINUATIONS.has(name)) {
      const b = req.body as { actor?: Actor; uuid?: Buffer };
      this.#opts.journal?.end(-1, name, b.actor?.requestId, { result, uuid: b.uuid?.toString('hex') });
    }
    // Every subscriber hears the objects' new state before this answer leaves (read-your-writes in the front end).
    // An upload's chunks only fill its staging file: nothing committed, nothing to refresh (and a chunk names no
    // volume, so a refresh would walk every pool and volume once per 256 KiB).
    const types = name === UPLOAD_CHUNK ? undefined : OBJECT_STATE_OPS.get(req.op);
    if (types) {
      const scope = types.includes('volume') ? volumeScopeOfWrite(req.op, req.body) : null;
      for (const feed of [...this.#feeds]) {
        const r = feed.refresh(types, scope);
        if (r) await r.catch((e: unknown) => this.#opts.log(`${this.#label}: object state after ${name} not sent: ${(e as Error).message}`));
      }
    }
    const driver = this.#opts.driver;
    const journal = this.#opts.journal;
    const send = (): void => this.#write(out);
    const afterJournal = journal && begun >= 0 ? (): void => journal.whenDurable(send) : send;
    if (driver.whenDurable) driver.whenDurable(afterJournal);
    else afterJournal();
  }

  // The helper's own record of every write, with who the front end says asked (never used to decide).
  #beginOf(name: string, req: RequestFrame): JournalBegin {
    const body = req.body as { actor?: Actor; uuid?: Buffer; path?: unknown };
    return {
      op: name,
      uuid: Buffer.isBuffer(body.uuid) ? body.uuid.toString('hex') : undefined,
      path: typeof body.path === 'string' ? body.path : undefined,
      user: body.actor?.user,
      tenant: body.actor?.tenant,
      requestId: body.actor?.requestId,
      digest: requestDigest(req.op, req.body as never),
      auditHead: body.actor?.auditHead,
    };
  }

  #journalEnd(begun: number, name: string, req: RequestFrame, result: string, answer: unknown): void {
    const body = req.body as { actor?: Actor; uuid?: Buffer };
    const dom = answer as { name?: unknown; uuid?: unknown } | undefined;
    const uuid = Buffer.isBuffer(body.uuid) ? undefined : Buffer.isBuffer(dom?.uuid) ? dom.uuid.toString('hex') : undefined;
    this.#opts.journal!.end(begun, name, body.actor?.requestId, { result, uuid, name: typeof dom?.name === 'string' ? dom.name : undefined });
  }

  // Initial sync (every domain's state), then each committed change and lifecycle event, all under the subscribe id.
  #subscribe(id: number): void | Promise<void> {
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
    const feed = new ObjectStateFeed(this.#opts.driver, (objectState) => send({ event: null, objectState }));
    // The object's new state first, then its event (drivers emit after committing the change).
    const onObject = (objectEvent: ObjectEvent): void => {
      const { types, scope } = changedByEvent(objectEvent);
      const sent = feed.refresh(types, scope);
      if (!sent) return send({ event: null, objectEvent });
      sent.then(
        () => send({ event: null, objectEvent }),
        (e: unknown) => this.destroy(`object state before an event cannot be read: ${(e as Error).message}`),
      );
    };
    const offObjects = this.#opts.driver.onObjectEvent?.(onObject) ?? (() => undefined);
    this.#feeds.add(feed);
    this.#unsubscribe = () => (offLifecycle(), offChange(), offObjects(), this.#feeds.delete(feed));
    for (const snapshot of this.#opts.driver.snapshots()) send({ event: null, snapshot });
    return feed.syncAll();
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

// A grouped op's answer carries its request's action (the front end checks the pairing); other answers are as given.
function echoAction(req: RequestFrame, body: unknown): unknown {
  const action = actionOf(req.body);
  return action === undefined ? body : { ...(body as object), action };
}
