// SPDX-License-Identifier: Apache-2.0
// Client side of one libvirt RPC connection, transport-free: bytes in through push(), bytes out through onWrite.
import { EventEmitter } from 'node:events';
import { VG_ERR_CLIENT_CLOSED, VG_ERR_CLIENT_TIMEOUT, VG_ERR_HEADER, VgError, VirErr, VirFrom } from '../common/errors';
import { FrameDecoder } from '../common/framing';
import { KeepaliveProc, Limits, MessageStatus, MessageType, Program } from '../protocol/constants';
import { type Header, decodeHeader } from '../protocol/header';
import { decodeBody, encodeCall, encodeKeepalive } from '../protocol/messages';
import { type ProcDef, lookupProc } from '../protocol/procs/remote';
import { type RemoteError, errorCodec } from '../protocol/types';

const REMOTE_VERS = 1;

export interface RpcClientOptions {
  onWrite(buf: Buffer): void;
  timeoutMs?: number; // default per-call timeout; 0 or absent = none (libvirt has none)
}

export interface CallOptions {
  timeoutMs?: number;
}

// A server -> client MESSAGE from the REMOTE program (events), decoded with the procedure table.
export interface RpcEvent {
  proc: number;
  name: string;
  body: unknown;
}

// An error reply from the server: the libvirt fields ride along, the message is the server's own.
export class RemoteCallError extends VgError {
  readonly remote: RemoteError;
  readonly proc: number;

  constructor(proc: number, e: RemoteError) {
    super('VG_ERR_CLIENT_REMOTE', e.message ?? `unknown error (code ${e.code})`, e.code, e.domain);
    this.name = 'RemoteCallError';
    this.remote = e;
    this.proc = proc;
  }
}

// libvirt's client turns the daemon's "unknown procedure" reply into NO_SUPPORT (virnetclientprogram.c:155-165).
export function isNoSupport(err: unknown): boolean {
  if (!(err instanceof RemoteCallError)) return false;
  if (err.virCode === VirErr.NO_SUPPORT) return true;
  const { remote } = err;
  return (
    remote.code === VirErr.RPC && (remote.domain === VirFrom.RPC || remote.domain === VirFrom.REMOTE) && (remote.message ?? '').startsWith('unknown procedure')
  );
}

type Body = ReturnType<typeof decodeHeader>['body'];

interface Pending {
  proc: number;
  settle(h: Header, body: Body): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout | null;
}

// Pending calls always fail with VG_ERR_CLIENT_CLOSED; the underlying reason is its message and `cause`.
function closedError(reason: Error | null): VgError {
  if (reason === null) return VG_ERR_CLIENT_CLOSED('connection closed by peer');
  if ((reason as VgError).code === 'VG_ERR_CLIENT_CLOSED') return reason as VgError;
  const err = VG_ERR_CLIENT_CLOSED(reason.message);
  err.cause = reason;
  return err;
}

// Events: 'event' (RpcEvent), 'close' (Error | null): the transport must end the socket on 'close'.
export class RpcClient extends EventEmitter {
  readonly #onWrite: (buf: Buffer) => void;
  readonly #timeoutMs: number;
  readonly #frames = new FrameDecoder({ min: Limits.FRAME_MIN, max: Limits.MESSAGE_MAX });
  readonly #pending = new Map<number, Pending>();
  // Timed-out calls: a late reply is dropped instead of being taken for a protocol error.
  readonly #abandoned = new Map<number, number>();
  #serial = 0;
  #closed: VgError | null = null; // what every pending and later call rejects with

  constructor(opts: RpcClientOptions) {
    super();
    if (typeof opts?.onWrite !== 'function') throw new TypeError('RpcClient: onWrite must be a function');
    if (opts.timeoutMs !== undefined && !(Number.isInteger(opts.timeoutMs) && opts.timeoutMs >= 0)) {
      throw new TypeError('RpcClient: timeoutMs must be a non-negative integer');
    }
    this.#onWrite = opts.onWrite;
    this.#timeoutMs = opts.timeoutMs ?? 0;
  }

  get closed(): boolean {
    return this.#closed !== null;
  }

  get inFlight(): number {
    return this.#pending.size;
  }

  call<A, R>(def: ProcDef<A, R>, args: A, opts: CallOptions = {}): Promise<R> {
    if (this.#closed) return Promise.reject(this.#closed);
    const serial = this.#serial;
    let frame: Buffer;
    try {
      frame = encodeCall(def, serial, args);
    } catch (err) {
      return Promise.reject(err);
    }
    this.#serial = (this.#serial + 1) >>> 0;
    return new Promise<R>((resolve, reject) => {
      const timeoutMs = opts.timeoutMs ?? this.#timeoutMs;
      const p: Pending = {
        proc: def.proc,
        settle: (h, body) => {
          if (h.status === MessageStatus.ERROR) reject(new RemoteCallError(def.proc, decodeBody(errorCodec, body, 'remote_error')));
          else resolve(decodeBody(def.ret, body, `${def.name} reply`));
        },
        reject,
        timer: null,
      };
      if (timeoutMs > 0) {
        p.timer = setTimeout(() => {
          this.#pending.delete(serial);
          this.#abandoned.set(serial, def.proc);
          reject(VG_ERR_CLIENT_TIMEOUT(timeoutMs));
        }, timeoutMs);
      }
      this.#pending.set(serial, p);
      this.#onWrite(frame);
    });
  }

  push(chunk: Buffer): void {
    if (this.#closed) return;
    let frames: Buffer[];
    try {
      frames = this.#frames.push(chunk);
    } catch (err) {
      this.close(err as Error);
      return;
    }
    for (const frame of frames) {
      if (this.#closed) return;
      try {
        this.#dispatch(frame);
      } catch (err) {
        this.close(err as Error);
      }
    }
  }

  // The transport saw EOF: a partial frame left in the decoder means the server truncated a message.
  end(): void {
    if (this.#frames.buffered > 0) {
      this.close(VG_ERR_HEADER(`connection ended inside a frame (${this.#frames.buffered} bytes buffered)`));
    } else {
      this.close(null);
    }
  }

  // Idempotent. `reason` null means an orderly close; pending calls reject either way.
  close(reason: Error | null = null): void {
    if (this.#closed) return;
    const err = closedError(reason);
    this.#closed = err;
    for (const p of this.#pending.values()) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(err);
    }
    this.#pending.clear();
    this.#abandoned.clear();
    this.emit('close', reason);
  }

  #dispatch(frame: Buffer): void {
    const { header: h, body } = decodeHeader(frame);
    if (h.prog === Program.KEEPALIVE) return this.#keepalive(h);
    if (h.prog !== Program.REMOTE || h.vers !== REMOTE_VERS) throw VG_ERR_HEADER(`unexpected program 0x${h.prog.toString(16)} version ${h.vers}`);
    if (h.type === MessageType.MESSAGE) return this.#event(h, body);
    if (h.type !== MessageType.REPLY) throw VG_ERR_HEADER(`unexpected message type ${h.type} from server`);
    if (h.status === MessageStatus.CONTINUE) throw VG_ERR_HEADER('stream replies are not supported');
    const p = this.#pending.get(h.serial);
    if (!p) {
      if (this.#abandoned.get(h.serial) === h.proc) {
        this.#abandoned.delete(h.serial);
        return;
      }
      throw VG_ERR_HEADER(`reply for unknown serial ${h.serial} (proc ${h.proc})`);
    }
    // libvirt matches a reply on serial and procedure; a mismatch means the stream is out of step.
    if (p.proc !== h.proc) throw VG_ERR_HEADER(`reply serial ${h.serial} carries proc ${h.proc}, expected ${p.proc}`);
    this.#pending.delete(h.serial);
    if (p.timer) clearTimeout(p.timer);
    try {
      p.settle(h, body);
    } catch (err) {
      // A bad payload fails that call only; the framing is intact.
      p.reject(err as Error);
    }
  }

  #keepalive(h: Header): void {
    if (h.type !== MessageType.MESSAGE) throw VG_ERR_HEADER(`keepalive message of type ${h.type}`);
    if (h.proc === KeepaliveProc.PING) this.#onWrite(encodeKeepalive(KeepaliveProc.PONG));
    // PONG needs no action: any traffic proves the peer is alive.
  }

  #event(h: Header, body: Body): void {
    const def = lookupProc(h.proc);
    // Events we have no codec for are skipped, as libvirt's client does for unknown event procedures.
    if (!def?.message) return;
    const decoded = decodeBody(def.ret, body, `${def.name} event`);
    this.emit('event', { proc: h.proc, name: def.name, body: decoded } satisfies RpcEvent);
  }
}
