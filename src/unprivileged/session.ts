// SPDX-License-Identifier: Apache-2.0
// One client connection's libvirt RPC state, transport-free: bytes in via push(), bytes out via onWrite [ssh2 Protocol].
import { VG_ERR_HEADER, VG_ERR_RPC_PAYLOAD, VG_ERR_RPC_UNKNOWN_PROC, VG_ERR_RPC_UNKNOWN_PROGRAM, VgError } from '../common/errors';
import { FrameDecoder } from '../common/framing';
import type { XdrReader } from '../common/xdr';
import { KeepaliveProc, Limits, MessageStatus, MessageType, PROGRAM_VERSION, Program } from '../protocol/constants';
import { type Header, decodeHeader } from '../protocol/header';
import { encodeErrorReply, encodeKeepalive } from '../protocol/messages';
import { type ProcDef, lookupProc } from '../protocol/procs/remote';
import { type RemoteError, remoteError } from '../protocol/types';
import type { SaslSession } from './sasl';

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
  maxMessageBytes: number;
  maxClientRequests: number; // calls in flight before we stop reading
  onWrite: (buf: Buffer) => void;
  onClose: (reason: string) => void;
  onBusy: (busy: boolean) => void; // pause/resume reading (backpressure)
  dispatch: (s: Session, call: Call) => Promise<Buffer>; // returns the encoded reply (or error reply)
}

export interface Call {
  header: Header;
  def: ProcDef;
  body: XdrReader;
}

export interface EventRegistration {
  callbackID: number;
  eventID: number;
  domUuid: Buffer | null; // null = all domains
  legacy: boolean; // registered through 167 (events sent as 107)
}

export class Session {
  readonly id: number;
  readOnly: boolean;
  readonly secure: boolean; // unix socket or TLS: CONNECT_IS_SECURE
  identity: Identity | null;
  opened = false;
  tenant = ''; // chosen explicitly by the client (RBAC issue); empty = none
  uri = '';
  keepaliveRequested = false;
  closeCallbackRegistered = false;
  readonly events = new Map<number, EventRegistration>();
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
  #closed = false;

  constructor(opts: SessionOptions) {
    this.#opts = opts;
    this.id = opts.id;
    this.readOnly = opts.readOnly;
    this.secure = opts.secure;
    this.identity = opts.identity;
    this.transport = opts.transport ?? (opts.secure ? 'unix' : 'tcp');
    this.authTypes = opts.authTypes ?? [0];
    this.evidence = opts.evidence ?? opts.identity;
    this.#decoder = new FrameDecoder({ min: Limits.FRAME_MIN, max: opts.maxMessageBytes });
  }

  get closed(): boolean {
    return this.#closed;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  // Bytes held for an incomplete frame: bounded by maxMessageBytes.
  get buffered(): number {
    return this.#decoder.buffered;
  }

  push(chunk: Buffer): void {
    if (this.#closed) return;
    this.lastRx = Date.now();
    let frames: Buffer[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (e) {
      this.close(`framing: ${(e as Error).message}`);
      return;
    }
    this.partialSince = this.#decoder.buffered === 0 ? 0 : this.partialSince || this.lastRx;
    for (const f of frames) {
      if (this.#closed) return;
      this.#onFrame(f);
    }
  }

  send(buf: Buffer): void {
    if (!this.#closed) this.#opts.onWrite(buf);
  }

  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#opts.onClose(reason);
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
    if (header.type !== MessageType.CALL) {
      // libvirtd ignores replies/messages from a client; so do we (keeps old clients working).
      return;
    }
    if (header.prog !== Program.REMOTE || header.vers !== PROGRAM_VERSION[Program.REMOTE]) {
      this.#replyError(header, VG_ERR_RPC_UNKNOWN_PROGRAM(header.prog, header.vers));
      return;
    }
    if (header.status !== MessageStatus.OK) {
      this.#replyError(header, VG_ERR_HEADER(`unexpected message status ${header.status}`));
      return;
    }
    const def = lookupProc(header.proc);
    if (!def || def.message) {
      this.send(encodeErrorReply(header, unknownProcError(header.proc)));
      return;
    }
    this.#inFlight++;
    if (this.#inFlight >= this.#opts.maxClientRequests && !this.#busy) {
      this.#busy = true;
      this.#opts.onBusy(true);
    }
    this.#opts
      .dispatch(this, { header, def, body })
      .then(
        (reply) => this.send(reply),
        (e: Error) => this.#replyError(header, e instanceof VgError ? e : VG_ERR_RPC_PAYLOAD()),
      )
      .finally(() => {
        this.#inFlight--;
        if (this.#busy && this.#inFlight < this.#opts.maxClientRequests) {
          this.#busy = false;
          this.#opts.onBusy(false);
        }
      });
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

// Exactly libvirtd's answer for an unknown procedure, so clients convert it to VIR_ERR_NO_SUPPORT.
export function unknownProcError(proc: number): RemoteError {
  const e = VG_ERR_RPC_UNKNOWN_PROC(proc);
  return { code: e.virCode, domain: e.virDomain, message: e.message, level: 2, str1: '%s', str2: e.message, str3: null, int1: -1, int2: -1 };
}

export function toRemoteError(e: VgError): RemoteError {
  return remoteError(e.virCode, e.virDomain, e.message);
}
