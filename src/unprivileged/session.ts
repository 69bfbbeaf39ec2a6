// SPDX-License-Identifier: Apache-2.0
// One client connection's libvirt RPC state, transport-free: bytes in via push(), bytes out via onWrite [ssh2 Protocol].
import {
  VG_ERR_ARG_UNSUPPORTED,
  VG_ERR_CONN_NOT_OPEN,
  VG_ERR_HEADER,
  VG_ERR_NOT_SUPPORTED,
  VG_ERR_RPC_AUTH_REQUIRED,
  VG_ERR_RPC_PAYLOAD,
  VG_ERR_RPC_UNKNOWN_PROC,
  VG_ERR_RPC_UNKNOWN_PROGRAM,
  VG_ERR_STREAM,
  VgError,
} from '../common/errors';
import { type ClientStream, STREAM_HIGH_WATER, STREAM_IN_CONNECTION_MAX, STREAM_IN_HIGH_WATER, STREAM_STALL_MS, STREAMS_PER_CONNECTION } from './streams';
import { FrameDecoder } from '../common/framing';
import type { XdrReader } from '../common/xdr';
import { KeepaliveProc, Limits, MessageStatus, MessageType, PASSTHROUGH_PROGRAMS, PROGRAM_VERSION, Program } from '../protocol/constants';
import { type Header, decodeHeader } from '../protocol/header';
import { encodeErrorReply, encodeKeepalive } from '../protocol/messages';
import { PROC_NAMES } from '../protocol/proc-names';
import { type ProcDef, lookupProc } from '../protocol/procs/remote';
import { type RemoteError, remoteError } from '../protocol/types';
import type { SaslSession } from './sasl';

export const LARGE_MESSAGE = 1024 * 1024;

export interface Identity {
  user: string; // who, as proven by `method`
  method: 'none' | 'peercred' | 'x509' | 'sasl';
  saslUser?: string; // sasl: the user name proven by password; `user` equals it
  uid?: number;
  gid?: number;
  pid?: number;
  source: string; // unix peer or address:port
  dn?: string; // x509: verified client certificate subject, "O=acme,CN=alice"
  fingerprint?: string; // x509: SHA-256 of the client certificate, colon-separated hex
}

export type Transport = 'unix' | 'tcp' | 'tls';

export interface SessionOptions {
  id: number;
  transport?: Transport;
  authTypes?: number[]; // what AUTH_LIST answers; [0] = none, [1] = SASL required
  evidence?: Identity; // what the transport proved before any login (peer uid, certificate)
  readOnly: boolean;
  secure: boolean;
  identity: Identity | null; // null until authenticated
  maxMessageBytes: number; // authenticated, opened read-write connections
  maxPreOpenMessageBytes?: number; // until authenticated and opened (default: maxMessageBytes)
  maxReadOnlyMessageBytes?: number; // opened read-only (default: maxMessageBytes)
  maxEventRegistrations?: number; // event callbacks on this connection (default: unlimited)
  maxClientRequests: number; // calls in flight before we stop reading
  onWrite: (buf: Buffer) => void;
  // A REPLY_WITH_FDS: the transport writes buf, then each fd with a 1-byte sendmsg once buf is flushed, holding any
  // later write back until then, and closes the fds. Absent: this transport cannot pass descriptors.
  onWriteFds?: (buf: Buffer, fds: number[]) => void;
  closeFd?: (fd: number) => void; // descriptors a failed or closed call leaves behind
  queuedOut?: () => number; // bytes written and not yet sent to the client (stream pacing); 0 if absent
  streamHighWater?: number; // streams pace their output below this (default STREAM_HIGH_WATER)
  streamInHighWater?: number; // an upload's queued bytes before reading stops (default STREAM_IN_HIGH_WATER)
  streamInConnectionMax?: number; // all uploads' queued bytes before reading stops (default STREAM_IN_CONNECTION_MAX)
  streamStallMs?: number; // an upload silent this long fails (default STREAM_STALL_MS)
  onClose: (reason: string) => void;
  onBusy: (busy: boolean) => void; // pause/resume reading (backpressure)
  onLargeFrame?: () => void; // a message of LARGE_MESSAGE bytes or more was taken in (its memory is worth returning soon)
  // A call answered "unknown procedure" (unknownProgram undefined) or "unknown program" without dispatch: metrics, log.
  onUnknownProc?: (proc: number, unknownProgram?: number) => void;
  dispatch: (s: Session, call: Call) => Promise<Buffer>; // returns the encoded reply (or error reply)
  // The same pipeline run to its end in this turn, for a call that needs nothing asynchronous (a read the mirror
  // answers): the encoded reply, or null to take `dispatch`, having answered and recorded nothing.
  dispatchNow?: (s: Session, call: Call) => Buffer | null;
  now?: () => number; // the clock of lastRx (keepalive); injectable for tests, Date.now by default
}

export interface Call {
  header: Header;
  def: ProcDef;
  body: XdrReader;
  args?: Record<string, unknown> | null; // decoded by dispatchNow before it passed the call on (null: malformed)
}

// What goes out in one write: the replies to the calls of one read (answered in that turn by dispatchNow, or refused
// at once). Past this size a message goes on its own (no big copies).
const BATCH_MAX = 16 * 1024;

export interface EventRegistration {
  callbackID: number;
  eventID: number;
  domUuid: Buffer | null; // null = all domains
  legacy: boolean; // registered through 167 (events sent as 107)
}

// Who wants to know when a registration comes or goes (the EventHub's index of interested connections).
export interface RegistrationWatcher {
  added(s: Session, reg: EventRegistration): void;
  removed(s: Session, reg: EventRegistration): void;
}

// The connection's event callbacks by callbackID; every change is told to the watcher, so handlers keep using a Map.
export class EventRegistry extends Map<number, EventRegistration> {
  #session: Session | null = null;
  #watcher: RegistrationWatcher | null = null;

  watch(session: Session, watcher: RegistrationWatcher): void {
    this.#session = session;
    this.#watcher = watcher;
    for (const reg of this.values()) watcher.added(session, reg);
  }

  override set(id: number, reg: EventRegistration): this {
    const old = this.get(id);
    if (old && this.#watcher) this.#watcher.removed(this.#session!, old);
    super.set(id, reg);
    this.#watcher?.added(this.#session!, reg);
    return this;
  }

  override delete(id: number): boolean {
    const old = this.get(id);
    if (!old) return false;
    super.delete(id);
    this.#watcher?.removed(this.#session!, old);
    return true;
  }

  override clear(): void {
    const all = [...this.values()];
    super.clear();
    if (this.#watcher) for (const reg of all) this.#watcher.removed(this.#session!, reg);
  }
}

export class Session {
  readonly id: number;
  readonly secure: boolean; // unix socket or TLS: CONNECT_IS_SECURE
  #readOnly: boolean;
  #identity: Identity | null;
  // Open streams by the serial of the call that opened them; `pending` until that call's reply has gone out.
  readonly #streams = new Map<number, ClientStream>();
  readonly #pendingStreams = new Map<number, ClientStream>();
  readonly #replyFds = new Map<number, number[]>(); // by call serial: descriptors its reply carries
  #relieved: (() => void)[] = [];
  readonly #inbound = new Map<ClientStream, number>(); // uploads' bytes received and not yet written to their sinks
  #inboundTotal = 0;
  #opened = false;
  notOpenSince = Date.now(); // when the connection last had no successful CONNECT_OPEN (0 = open): openTimeout
  tenant = ''; // chosen explicitly by the client (RBAC issue); empty = none
  uri = '';
  keepaliveRequested = false;
  closeCallbackRegistered = false;
  readonly events = new EventRegistry();
  readonly maxEventRegistrations: number;
  lastRx = Date.now();
  readonly openedAt = Date.now();
  readonly transport: Transport;
  readonly authTypes: number[];
  readonly evidence: Identity | null;
  saslOffered: string[] | null = null; // mechanisms sent by AUTH_SASL_INIT
  sasl: SaslSession | null = null; // login in progress
  partialSince = 0; // when the current incomplete frame started (0 = none): slow-loris deadline
  loginRecordSeen = false; // a SASL login's record has been claimed for this session
  loginDurable: Promise<void> | null = null; // the login's audit record: calls beyond AUTH_* wait until it is durable
  readonly denialLog = { since: 0, recorded: 0, suppressed: 0 }; // per-connection budget for denial records
  readonly #opts: SessionOptions;
  readonly #decoder: FrameDecoder;
  #inFlight = 0;
  #busy = false;
  // Whole messages read but not yet dispatched: a 64 KiB read can hold ~1,600 small calls, and dispatching them all at
  // once would be a burst of work no other client can interleave with. At most maxClientRequests run; the rest wait
  // here (bounded by what one read brings, since reading stops while any wait) and go as earlier calls finish.
  #waiting: Buffer[] = [];
  #waitingAt = 0;
  #closed = false;
  // Messages held for one write until push() returns (null outside it).
  #batch: Buffer[] | null = null;
  #batchBytes = 0;
  #readPausedAt = 0; // when we stopped reading this connection (backpressure), 0 = reading

  constructor(opts: SessionOptions) {
    this.#opts = opts;
    if (opts.now) this.lastRx = opts.now();
    this.id = opts.id;
    this.#readOnly = opts.readOnly;
    this.secure = opts.secure;
    this.#identity = opts.identity;
    this.transport = opts.transport ?? (opts.secure ? 'unix' : 'tcp');
    this.authTypes = opts.authTypes ?? [0];
    this.evidence = opts.evidence ?? opts.identity;
    this.maxEventRegistrations = opts.maxEventRegistrations ?? Number.MAX_SAFE_INTEGER;
    this.#decoder = new FrameDecoder({ min: Limits.FRAME_MIN, max: this.#maxFrame(), skipAfter: fdBytesAfter });
  }

  // The largest message this connection may send now: small until it is authenticated and opened (libvirt sends no
  // large message before CONNECT_OPEN), then the read-only or the full limit. Never above maxMessageBytes.
  #maxFrame(): number {
    const o = this.#opts;
    const pick = !this.#opened || !this.#identity ? o.maxPreOpenMessageBytes : this.#readOnly ? o.maxReadOnlyMessageBytes : undefined;
    return Math.min(pick ?? o.maxMessageBytes, o.maxMessageBytes);
  }

  #applyLimit(): void {
    this.#decoder?.setMax(this.#maxFrame());
  }

  get opened(): boolean {
    return this.#opened;
  }

  set opened(v: boolean) {
    this.#opened = v;
    this.notOpenSince = v ? 0 : this.notOpenSince || Date.now();
    this.#applyLimit();
  }

  get readOnly(): boolean {
    return this.#readOnly;
  }

  set readOnly(v: boolean) {
    this.#readOnly = v;
    this.#applyLimit();
  }

  get identity(): Identity | null {
    return this.#identity;
  }

  set identity(v: Identity | null) {
    this.#identity = v;
    this.#applyLimit();
  }

  // The largest message accepted now (tests and logs).
  get maxMessageBytes(): number {
    return this.#decoder.max;
  }

  // We stopped (or resumed) reading this connection: while we are the ones not reading, its partial-message deadline
  // does not run (the rest of the message may be sitting in our socket buffer).
  setReadPaused(paused: boolean): void {
    const now = Date.now();
    if (paused && !this.#readPausedAt) this.#readPausedAt = now;
    else if (!paused && this.#readPausedAt) {
      if (this.partialSince) this.partialSince += now - this.#readPausedAt;
      this.#readPausedAt = 0;
    }
  }

  get readPaused(): boolean {
    return this.#readPausedAt !== 0;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  // Bytes copied into large messages' buffers so far (see InputTurns).
  get largeBytesIn(): number {
    return this.#decoder.largeBytesIn;
  }

  // Bytes held for an incomplete frame: bounded by maxMessageBytes.
  get buffered(): number {
    return this.#decoder.buffered;
  }

  // libvirtd's keepalive, for a client that asked for it: ping after `interval` s of silence and every `interval` s
  // after that, drop after `count` unanswered pings, i.e. `interval × (count + 1)` s of silence. Called once a second
  // (the daemon's tick) with that tick's time; 'ping', 'close' or nothing to do.
  keepaliveDue(now: number, interval: number, count: number): 'ping' | 'close' | null {
    if (!this.keepaliveRequested || interval === 0) return null;
    const idle = (now - this.lastRx) / 1000;
    if (idle >= interval * (count + 1)) return 'close';
    if (idle >= interval && Math.floor(idle) % interval === 0) return 'ping';
    return null;
  }

  push(chunk: Buffer): void {
    if (this.#closed) return;
    this.lastRx = (this.#opts.now ?? Date.now)();
    let frames: Buffer[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (e) {
      this.close(`framing: ${(e as Error).message}`);
      return;
    }
    this.partialSince = this.#decoder.buffered === 0 ? 0 : this.partialSince || this.lastRx;
    this.#batch = [];
    try {
      for (const f of frames) {
        if (this.#closed) return;
        if (f.length >= LARGE_MESSAGE) this.#opts.onLargeFrame?.();
        if (this.#waitingAt < this.#waiting.length || this.#inFlight >= this.#opts.maxClientRequests) this.#waiting.push(f);
        else this.#onFrame(f);
      }
    } finally {
      this.#flushBatch();
    }
    this.#setBusy();
  }

  send(buf: Buffer): void {
    if (this.#closed) return;
    if (this.#batch && this.#batchBytes + buf.length <= BATCH_MAX) {
      this.#batch.push(buf);
      this.#batchBytes += buf.length;
      return;
    }
    this.#flushBatch(this.#batch !== null);
    this.#opts.onWrite(buf);
  }

  // Writes the messages held so far, in order; `more`: push() goes on and holds the next ones again.
  #flushBatch(more = false): void {
    const batch = this.#batch;
    this.#batch = more ? [] : null;
    this.#batchBytes = 0;
    if (!batch?.length || this.#closed) return;
    this.#opts.onWrite(batch.length === 1 ? batch[0] : Buffer.concat(batch));
  }

  queuedOut(): number {
    return this.#opts.queuedOut?.() ?? 0;
  }

  get streamHighWater(): number {
    return this.#opts.streamHighWater ?? STREAM_HIGH_WATER;
  }

  // Streams wait here while the client's output queue is over their high-water mark.
  whenRelieved(cb: () => void): void {
    this.#relieved.push(cb);
  }

  // The transport says the output queue drained (it no longer holds back reading this connection).
  outputRelieved(): void {
    const waiting = this.#relieved;
    this.#relieved = [];
    for (const cb of waiting) cb();
  }

  get streamInHighWater(): number {
    return this.#opts.streamInHighWater ?? STREAM_IN_HIGH_WATER;
  }

  get streamStallMs(): number {
    return this.#opts.streamStallMs ?? STREAM_STALL_MS;
  }

  // Uploads' queued bytes: over a stream's mark or the connection's, this connection is not read (libvirtd counts
  // stream packets as requests and stops reading at max_client_requests); reading resumes as they are written.
  inboundHeld(stream: ClientStream, bytes: number): void {
    this.#inboundTotal += bytes - (this.#inbound.get(stream) ?? 0);
    if (bytes > 0) this.#inbound.set(stream, bytes);
    else this.#inbound.delete(stream);
    this.#setBusy();
  }

  get inboundBytes(): number {
    return this.#inboundTotal;
  }

  #inboundFull(): boolean {
    if (this.#inboundTotal >= (this.#opts.streamInConnectionMax ?? STREAM_IN_CONNECTION_MAX)) return true;
    const mark = this.streamInHighWater;
    for (const n of this.#inbound.values()) if (n >= mark) return true;
    return false;
  }

  // A handler opens a stream for its call: it starts once the call's reply is sent, or is dropped if the call fails.
  openStream(stream: ClientStream): void {
    if (this.#streams.size + this.#pendingStreams.size >= STREAMS_PER_CONNECTION)
      throw VG_ERR_STREAM(`at most ${STREAMS_PER_CONNECTION} streams per connection`);
    this.#pendingStreams.set(stream.serial, stream);
  }

  // A handler's descriptors for its call's reply (REPLY_WITH_FDS); refused where the transport cannot pass them.
  replyWithFds(serial: number, fds: number[]): void {
    if (!this.#opts.onWriteFds || this.transport !== 'unix') {
      for (const fd of fds) this.#opts.closeFd?.(fd);
      throw VG_ERR_ARG_UNSUPPORTED('file descriptors can be passed only over a local unix socket');
    }
    this.#replyFds.set(serial, fds);
  }

  get canPassFds(): boolean {
    return !!this.#opts.onWriteFds && this.transport === 'unix';
  }

  #dropReplyFds(serial: number): void {
    const fds = this.#replyFds.get(serial);
    if (!fds) return;
    this.#replyFds.delete(serial);
    for (const fd of fds) this.#opts.closeFd?.(fd);
  }

  get openStreams(): number {
    return this.#streams.size;
  }

  // Called by a stream when it ends (finished, aborted, failed): its serial is free again.
  streamEnded(stream: ClientStream): void {
    if (this.#streams.get(stream.serial) === stream) this.#streams.delete(stream.serial);
  }

  close(reason: string): void {
    if (this.#closed) return;
    this.#flushBatch(); // replies made before the cause of the close still go out, as they would have unbatched
    this.#closed = true;
    this.#opts.onClose(reason); // may still read `buffered`
    this.#decoder.release();
    this.#waiting = [];
    this.events.clear();
    for (const st of [...this.#streams.values(), ...this.#pendingStreams.values()]) st.dispose();
    this.#streams.clear();
    this.#pendingStreams.clear();
    this.#inbound.clear();
    this.#inboundTotal = 0;
    for (const serial of [...this.#replyFds.keys()]) this.#dropReplyFds(serial);
    this.outputRelieved(); // pumps waiting on this connection see it closed and stop
  }

  #onFrame(frame: Buffer): void {
    let header: Header;
    let body: XdrReader;
    try {
      ({ header, body } = decodeHeader(frame));
    } catch (e) {
      // A header we cannot read gives no serial to reply to: close [ssh2 doFatalError].
      this.close(`header: ${(e as Error).message}`);
      return;
    }
    if (header.prog === Program.KEEPALIVE) {
      this.#onKeepalive(header, body);
      return;
    }
    if (header.type === MessageType.STREAM || header.type === MessageType.STREAM_HOLE) {
      // A packet for a stream this connection opened; others (a stream already closed) are dropped, as libvirtd does.
      const st = this.#streams.get(header.serial);
      if (st && st.proc === header.proc && header.prog === Program.REMOTE) st.receive(header.type, header.status, frame.subarray(28));
      return;
    }
    if (header.type === MessageType.CALL_WITH_FDS) {
      // Descriptors are never taken (the socket reader drops them unread; their bytes are skipped by the framing, see
      // fdBytesAfter): such a call is refused, not run without them.
      const def = header.prog === Program.REMOTE ? lookupProc(header.proc) : undefined;
      const api = def ? (PROC_NAMES.get(header.proc) ?? def.name) : 'this call';
      this.#replyError(header, VG_ERR_NOT_SUPPORTED(`${api}: virtgate does not accept file descriptors from clients`));
      return;
    }
    if (header.type !== MessageType.CALL) {
      // libvirtd ignores replies/messages from a client; so do we (keeps old clients working).
      return;
    }
    const passthrough = header.vers === 1 ? PASSTHROUGH_PROGRAMS.get(header.prog) : undefined;
    if (passthrough) {
      // Deliberately unserved (QEMU monitor/agent, LXC namespaces): refused in libvirtd's order, nothing runs.
      const api = passthrough.get(header.proc);
      if (this.#identity && !api) this.send(encodeErrorReply(header, unknownProcError(header.proc)));
      else this.#replyError(header, !this.#identity ? VG_ERR_RPC_AUTH_REQUIRED() : !this.#opened ? VG_ERR_CONN_NOT_OPEN() : VG_ERR_NOT_SUPPORTED(api!));
      return;
    }
    if (header.prog !== Program.REMOTE || header.vers !== PROGRAM_VERSION[Program.REMOTE]) {
      this.#opts.onUnknownProc?.(header.proc, header.prog);
      this.#replyError(header, VG_ERR_RPC_UNKNOWN_PROGRAM(header.prog, header.vers));
      return;
    }
    if (header.status !== MessageStatus.OK) {
      this.#replyError(header, VG_ERR_HEADER(`unexpected message status ${header.status}`));
      return;
    }
    const def = lookupProc(header.proc);
    if (!def || def.message) {
      this.#opts.onUnknownProc?.(header.proc);
      this.send(encodeErrorReply(header, unknownProcError(header.proc)));
      return;
    }
    const call: Call = { header, def, body };
    const now = this.#opts.dispatchNow?.(this, call);
    if (now) {
      this.send(now);
      return;
    }
    this.#inFlight++;
    this.#opts
      .dispatch(this, call)
      .then(
        (reply) => {
          const fds = this.#replyFds.get(header.serial);
          if (fds && !this.#closed && reply.readInt32BE(24) === MessageStatus.OK) {
            this.#replyFds.delete(header.serial);
            this.#opts.onWriteFds!(withFds(reply, fds.length), fds);
          } else {
            this.#dropReplyFds(header.serial);
            this.send(reply);
          }
          const st = this.#pendingStreams.get(header.serial);
          if (st) {
            this.#pendingStreams.delete(header.serial);
            this.#streams.set(header.serial, st);
            st.start();
          }
        },
        (e: Error) => {
          this.#dropReplyFds(header.serial);
          this.#pendingStreams.get(header.serial)?.dispose();
          this.#pendingStreams.delete(header.serial);
          this.#replyError(header, e instanceof VgError ? e : VG_ERR_RPC_PAYLOAD());
        },
      )
      .finally(() => {
        this.#inFlight--;
        while (!this.#closed && this.#waitingAt < this.#waiting.length && this.#inFlight < this.#opts.maxClientRequests) {
          const f = this.#waiting[this.#waitingAt++];
          this.#onFrame(f);
        }
        if (this.#waitingAt >= this.#waiting.length) {
          this.#waiting = [];
          this.#waitingAt = 0;
        }
        this.#setBusy();
      });
  }

  // Busy (stop reading) while maxClientRequests calls run, read messages wait their turn, or uploads hold too much.
  #setBusy(): void {
    if (this.#closed) return;
    const busy = this.#inFlight >= this.#opts.maxClientRequests || this.#waitingAt < this.#waiting.length || this.#inboundFull();
    if (busy !== this.#busy) {
      this.#busy = busy;
      this.#opts.onBusy(busy);
    }
  }

  #onKeepalive(header: Header, body: XdrReader): void {
    if (header.vers !== PROGRAM_VERSION[Program.KEEPALIVE] || header.type !== MessageType.MESSAGE || body.remaining !== 0) {
      this.close('malformed keepalive message');
      return;
    }
    if (header.proc === KeepaliveProc.PING) this.send(encodeKeepalive(KeepaliveProc.PONG));
    else if (header.proc !== KeepaliveProc.PONG) this.close(`unknown keepalive procedure ${header.proc}`);
  }

  #replyError(header: Header, e: VgError): void {
    this.send(encodeErrorReply(header, toRemoteError(e)));
  }
}

export const CALL_FDS_MAX = 32; // VIR_NET_MESSAGE_NUM_FDS_MAX

// A CALL_WITH_FDS message is followed on the stream by one byte per descriptor (each sent with its own sendmsg): the
// framing skips them. Wire: header (24 bytes after the length word) with type 4, then u32 nfds, then the payload.
export function fdBytesAfter(frame: Buffer): number {
  if (frame.length < 32 || frame.readInt32BE(16) !== MessageType.CALL_WITH_FDS) return 0;
  const n = frame.readUInt32BE(28);
  if (n > CALL_FDS_MAX) throw VG_ERR_HEADER(`${n} descriptors in one call, at most ${CALL_FDS_MAX}`);
  return n;
}

// The REPLY_WITH_FDS form of an encoded reply: type 5 and u32 nfds between the header and the payload.
export function withFds(reply: Buffer, nfds: number): Buffer {
  const out = Buffer.alloc(reply.length + 4);
  reply.copy(out, 0, 0, 28);
  out.writeUInt32BE(out.length, 0);
  out.writeInt32BE(MessageType.REPLY_WITH_FDS, 16);
  out.writeUInt32BE(nfds, 28);
  reply.copy(out, 32, 28);
  return out;
}

// libvirtd's answer for an unknown procedure (code, domain, and the text clients match by prefix to convert it to
// VIR_ERR_NO_SUPPORT), plus the API the number stands for, which a user can look up: "unknown procedure: 182
// (virDomainManagedSave)". A number libvirt never defined gets libvirtd's text alone.
export function unknownProcError(proc: number): RemoteError {
  const e = VG_ERR_RPC_UNKNOWN_PROC(proc);
  const name = PROC_NAMES.get(proc);
  const message = name ? `${e.message} (${name})` : e.message;
  return { code: e.virCode, domain: e.virDomain, message, level: 2, str1: '%s', str2: message, str3: null, int1: -1, int2: -1 };
}

export function toRemoteError(e: VgError): RemoteError {
  return remoteError(e.virCode, e.virDomain, e.message);
}
