// SPDX-License-Identifier: Apache-2.0
// Front end -> helper: multiplexed, bounded IPC client over the helper's unix socket; reconnects when the helper restarts.
// Reconnecting is prompt: the socket's directory is watched, so a new helper's socket is tried the moment it appears
// (a restarted helper is usually answering within a few hundred milliseconds of its predecessor's death); between
// events the client retries with a short, capped backoff. While the helper is away it says so in the log: at once,
// then every `waitLogMs`.
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { VG_ERR_HELPER_BUSY, VG_ERR_HELPER_TIMEOUT, VG_ERR_HELPER_UNAVAILABLE, VgError, errorCatalogue } from '../common/errors';
import { FrameDecoder } from '../common/framing';
import {
  type ActionAnswerOf,
  type ActionFields,
  type ActionName,
  type AnswerFrame,
  type AnswerOf,
  type Answers,
  IPC_VERSION,
  IpcLimits,
  type DomainSnapshot,
  type LifecycleEvent,
  type StreamItem,
  Op,
  type RequestOp,
  type Requests,
  actionOf,
  answerOpOf,
  decodeAnswer,
  encodeRequest,
  isWriteOp,
  opName,
  requestName,
} from '../ipc/program';

interface Pending {
  op: RequestOp;
  action: string | undefined; // a grouped op's answer must echo it
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | null;
  started: bigint; // hrtime at write, for `observe`
}

export interface HelperClientOptions {
  socketPath: string;
  maxInFlight?: number; // calls beyond this fail fast with VG_ERR_HELPER_BUSY
  reconnectMinMs?: number;
  reconnectMaxMs?: number; // the backoff's cap; a change to the socket's directory retries at once whatever the backoff
  waitLogMs?: number; // while the helper is away, "still waiting" is logged this often
  watch?: boolean; // watch the socket's directory (default true; without it only the backoff brings the helper back)
  log?: (msg: string) => void;
  // A call unanswered this long fails with VG_ERR_HELPER_TIMEOUT (a write's outcome is then unknown: the helper's
  // journal says whether it ran); its late answer is dropped. 0 = no limit.
  readTimeoutMs?: number;
  writeTimeoutMs?: number;
  // Each answered call's round trip (request written to answer read), by request name (`DOMAIN_READ_REQ.info`): metrics.
  observe?: (op: string, seconds: number) => void;
}

type ResolvedOptions = Required<Omit<HelperClientOptions, 'observe'>> & Pick<HelperClientOptions, 'observe'>;

// Events: 'snapshot' (DomainSnapshot), 'removed' (uuid), 'lifecycle' (LifecycleEvent), 'objectEvent' (ObjectEvent),
// 'objectState' (ObjectStateChange), 'up' (driver name, after the initial sync), 'down' (reason).
export class HelperClient extends EventEmitter {
  readonly #opts: ResolvedOptions;
  #sock: net.Socket | null = null;
  #ready = false;
  #closed = false;
  #nextId = 1;
  #pending = new Map<number, Pending>();
  // Calls that timed out: their answers may still come and are dropped (still in flight for the helper, so counted).
  readonly #abandoned = new Map<number, RequestOp>();
  #waiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  #eventsId = 0;
  #retryMs: number;
  #retryTimer: NodeJS.Timeout | null = null;
  #watcher: fs.FSWatcher | null = null;
  #waitingSince: number | null = null; // when the helper was found away (null: connected, or never tried)
  #waitTimer: NodeJS.Timeout | null = null;
  #lastError = '';
  driver = '';

  constructor(opts: HelperClientOptions) {
    super();
    this.#opts = {
      maxInFlight: 4096,
      reconnectMinMs: 50,
      reconnectMaxMs: 500,
      waitLogMs: 10000,
      watch: true,
      log: () => {},
      readTimeoutMs: 30_000,
      writeTimeoutMs: 120_000,
      ...opts,
    };
    this.#retryMs = this.#opts.reconnectMinMs;
  }

  get ready(): boolean {
    return this.#ready;
  }

  get inFlight(): number {
    return this.#pending.size + this.#abandoned.size;
  }

  start(): void {
    this.#watch();
    this.#connect();
  }

  // Resolves once connected and HELLO answered; rejects after timeoutMs.
  waitReady(timeoutMs = 10000): Promise<void> {
    if (this.#ready) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(VG_ERR_HELPER_UNAVAILABLE()), timeoutMs);
      this.#waiters.push({
        resolve: () => (clearTimeout(t), resolve()),
        reject: (e) => (clearTimeout(t), reject(e)),
      });
    });
  }

  close(): void {
    this.#closed = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#stopWaiting();
    this.#watcher?.close();
    this.#watcher = null;
    this.#sock?.destroy();
    this.#failAll(VG_ERR_HELPER_UNAVAILABLE());
  }

  call<K extends RequestOp>(op: K, body: Requests[K]): Promise<AnswerOf<K>> {
    if (!this.#ready || !this.#sock) return Promise.reject(VG_ERR_HELPER_UNAVAILABLE());
    if (this.inFlight >= this.#opts.maxInFlight) return Promise.reject(VG_ERR_HELPER_BUSY());
    return this.#send(op, body, isWriteOp(op) ? this.#opts.writeTimeoutMs : this.#opts.readTimeoutMs) as Promise<AnswerOf<K>>;
  }

  // One action of a grouped op, typed: `act(Op.DOMAIN_READ_REQ, 'info', { uuid })` answers DomainInfo & { action }.
  act<K extends RequestOp, const A extends ActionName<K>>(op: K, action: A, fields: NoInfer<ActionFields<K, A>>): Promise<ActionAnswerOf<K, A>> {
    return this.call(op, { ...fields, action } as unknown as Requests[K]) as Promise<ActionAnswerOf<K, A>>;
  }

  #send(op: RequestOp, body: Requests[RequestOp], timeoutMs = 0): Promise<unknown> {
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 0xfffffffe ? 1 : this.#nextId + 1;
    const frame = encodeRequest(op, id, body as never);
    return new Promise((resolve, reject) => {
      const p: Pending = { op, action: actionOf(body), resolve, reject, timer: null, started: this.#opts.observe ? process.hrtime.bigint() : 0n };
      if (timeoutMs > 0) {
        p.timer = setTimeout(() => {
          if (this.#pending.get(id) !== p) return;
          this.#pending.delete(id);
          this.#abandoned.set(id, op);
          const what = requestName(op, body);
          this.#opts.log(`helper did not answer ${what} (request ${id}) within ${timeoutMs} ms; failing the call, dropping its late answer`);
          reject(VG_ERR_HELPER_TIMEOUT(what));
        }, timeoutMs);
        p.timer.unref();
      }
      this.#pending.set(id, p);
      this.#sock!.write(frame);
    });
  }

  // The helper (re)creates its socket by unlinking a stale one and binding a new one: each shows up as an event on the
  // directory. An event while no connection is up or being made tries at once, and resets the backoff (the bind may
  // precede the listen by a moment, then the next try follows after reconnectMinMs).
  #watch(): void {
    if (!this.#opts.watch || this.#watcher) return;
    const dir = path.dirname(this.#opts.socketPath);
    const base = path.basename(this.#opts.socketPath);
    try {
      this.#watcher = fs.watch(dir, { persistent: false }, (_type, name) => {
        if (name !== null && name.toString() !== base) return;
        this.#retryMs = this.#opts.reconnectMinMs;
        if (this.#sock || this.#closed) return; // connected, or a try is under way (its failure retries soon)
        if (this.#retryTimer) clearTimeout(this.#retryTimer);
        this.#retryTimer = null;
        this.#connect();
      });
      this.#watcher.on('error', (e: Error) => {
        this.#opts.log(`helper socket directory ${dir} no longer watched (${e.message}); reconnecting by backoff only`);
        this.#watcher?.close();
        this.#watcher = null;
      });
    } catch (e) {
      this.#opts.log(`cannot watch ${dir} for the helper socket (${(e as Error).message}); reconnecting by backoff only`);
    }
  }

  // Called on every failed try while the helper is away: the first logs at once, then a reminder every waitLogMs.
  #waiting(reason: string): void {
    this.#lastError = reason;
    if (this.#waitingSince !== null) return;
    this.#waitingSince = Date.now();
    this.#opts.log(`waiting for the helper at ${this.#opts.socketPath} (${reason})`);
    this.#waitTimer = setInterval(() => {
      const secs = Math.round((Date.now() - (this.#waitingSince ?? Date.now())) / 1000);
      this.#opts.log(`still waiting for the helper at ${this.#opts.socketPath} after ${secs} s (${this.#lastError})`);
    }, this.#opts.waitLogMs);
    this.#waitTimer.unref();
  }

  #stopWaiting(): number | null {
    const since = this.#waitingSince;
    this.#waitingSince = null;
    if (this.#waitTimer) clearInterval(this.#waitTimer);
    this.#waitTimer = null;
    return since === null ? null : Date.now() - since;
  }

  #connect(): void {
    if (this.#closed) return;
    this.#retryTimer = null;
    const sock = net.createConnection(this.#opts.socketPath);
    let failure = '';
    this.#sock = sock;
    const decoder = new FrameDecoder({ min: IpcLimits.FRAME_MIN, max: IpcLimits.ANSWER_MAX });
    sock.setNoDelay?.(true);
    sock.on('connect', () => {
      this.#send(Op.HELLO_REQ, { version: IPC_VERSION })
        .then((ans) => {
          const hello = ans as Answers[typeof Op.HELLO_ANS];
          if (hello.version !== IPC_VERSION) throw VG_ERR_HELPER_UNAVAILABLE();
          this.driver = hello.driver;
          return this.#subscribe();
        })
        .then(() => {
          this.#ready = true;
          this.#retryMs = this.#opts.reconnectMinMs;
          const waited = this.#stopWaiting();
          this.#opts.log(`helper connected (driver ${this.driver})${waited === null ? '' : ` after waiting ${waited} ms`}`);
          this.emit('up', this.driver);
          for (const w of this.#waiters.splice(0)) w.resolve();
        })
        .catch((e: Error) => {
          this.#opts.log(`helper handshake failed: ${e.message}`);
          failure = `handshake failed: ${e.message}`;
          sock.destroy();
        });
    });
    sock.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = decoder.push(chunk);
      } catch (e) {
        this.#opts.log(`helper sent a bad frame: ${(e as Error).message}`);
        sock.destroy();
        return;
      }
      for (const f of frames) this.#onFrame(f, sock);
    });
    sock.on('error', (e: NodeJS.ErrnoException) => (failure ||= e.code ?? e.message)); // 'close' follows and handles it
    sock.on('close', () => {
      if (this.#sock !== sock) return;
      const wasReady = this.#ready;
      this.#ready = false;
      this.#sock = null;
      this.#failAll(VG_ERR_HELPER_UNAVAILABLE());
      if (wasReady && !this.#closed) {
        this.#opts.log('helper connection lost; reconnecting');
        this.emit('down', 'connection lost');
      }
      if (this.#closed) return; // our own close(): nothing was lost and nothing reconnects
      if (wasReady) {
        // The helper just went away: its successor is tried at once (and again whenever its socket appears).
        this.#retryMs = this.#opts.reconnectMinMs;
        this.#connect();
        return;
      }
      this.#waiting(failure || 'connection closed');
      this.#retryTimer = setTimeout(() => this.#connect(), this.#retryMs);
      this.#retryMs = Math.min(this.#retryMs * 2, this.#opts.reconnectMaxMs);
    });
  }

  #subscribe(): Promise<void> {
    const id = this.#nextId++;
    this.#eventsId = id;
    this.emit('sync-start'); // snapshots of every domain follow; whatever was known before is stale
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { op: Op.EVENTS_SUBSCRIBE_REQ, action: undefined, resolve: () => resolve(), reject, timer: null, started: 0n });
      this.#sock!.write(encodeRequest(Op.EVENTS_SUBSCRIBE_REQ, id, {}));
    });
  }

  #onFrame(frame: Buffer, sock: net.Socket): void {
    let ans: AnswerFrame;
    try {
      ans = decodeAnswer(frame);
    } catch (e) {
      this.#opts.log(`helper answer undecodable: ${(e as Error).message}`);
      sock.destroy();
      return;
    }
    if (ans.id === this.#eventsId && ans.op === Op.EVENTS_SUBSCRIBE_ANS && ans.ok) {
      const item = ans.body as StreamItem;
      // Order matters: a domain's new state is applied before its lifecycle event is published, and both before
      // the answer to the request that caused them (the helper writes them in that order on this one socket).
      if (item.snapshot) this.emit('snapshot', item.snapshot satisfies DomainSnapshot);
      if (item.removed) this.emit('removed', item.removed);
      if (item.event) this.emit('lifecycle', item.event satisfies LifecycleEvent);
      if (item.objectEvent) this.emit('objectEvent', item.objectEvent);
      if (item.objectState) this.emit('objectState', item.objectState);
      if (!item.synced) return;
      // The end of the initial sync answers the subscribe request itself (handled below).
    }
    const late = this.#abandoned.get(ans.id);
    if (late !== undefined && ans.op === answerOpOf(late)) {
      this.#abandoned.delete(ans.id); // its caller was told "timed out" already
      return;
    }
    const p = this.#pending.get(ans.id);
    // An answer must pair with its request: the op's answer op, and a grouped op's own action.
    if (!p || ans.op !== answerOpOf(p.op) || (ans.ok && p.action !== undefined && actionOf(ans.body) !== p.action)) {
      this.#opts.log(`helper answered unknown request ${ans.id} op ${ans.op}`);
      sock.destroy();
      return;
    }
    this.#pending.delete(ans.id);
    if (p.timer) clearTimeout(p.timer);
    // The name is the op table's and the action one the request encoded with: a closed set of labels.
    if (p.started)
      this.#opts.observe?.(p.action === undefined ? opName(p.op) : `${opName(p.op)}.${p.action}`, Number(process.hrtime.bigint() - p.started) / 1e9);
    if (ans.ok) p.resolve(ans.body);
    else p.reject(helperError(ans.code, ans.detail));
  }

  #failAll(err: Error): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    this.#abandoned.clear();
    for (const p of pending) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(err);
    }
  }
}

// A driver error from the helper, formatted from our catalogue (the helper's text fills %s only).
function helperError(code: string, detail: string): VgError {
  const spec = errorCatalogue().get(code);
  if (!spec) return new VgError('VG_ERR_INTERNAL', 'internal error: unexpected helper answer');
  const msg = spec.format.includes('%s') ? spec.format.replace('%s', detail) : spec.format;
  return new VgError(code, msg, spec.virCode, spec.virDomain);
}
