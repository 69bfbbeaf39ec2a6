// SPDX-License-Identifier: Apache-2.0
// The helper's client of virtgate-launcher (root side): one SOCK_SEQPACKET connection, requests with descriptors,
// answers matched by id, every answer checked against the codec. Reconnecting is the caller's job (on 'close').
import { EventEmitter } from 'node:events';
import {
  type LaunchedVm,
  type LauncherErrorCodeValue,
  type LauncherOp,
  type LauncherRequest,
  type LauncherResults,
  type LauncherSignal,
  LauncherLimits,
  type MemoryPidsLimits,
  type SpawnRequest,
  decodeAnswer,
  decodeResult,
  encodeRequest,
} from '../ipc/launcher';
import { type Watch, closeFd, closeFds, recvMsg, sendMsg, seqpacketConnect, shutdownFd, watchReadable } from '../sandbox/fdpass';

export type { LaunchedVm, SpawnRequest, LauncherSignal } from '../ipc/launcher';

const TIMEOUT_MS: Record<LauncherOp, number> = {
  spawn: 20_000, // the launcher itself gives up on a jail after 10 s
  signal: 5_000,
  list: 5_000,
  limits: 5_000,
  cleanup: 5_000,
  tap: 5_000,
};

// A refusal from the launcher (code: its stable error code), or a local failure: 'closed', 'timeout', 'protocol'.
export class LauncherError extends Error {
  constructor(
    readonly code: LauncherErrorCodeValue | 'closed' | 'timeout' | 'protocol',
    message: string,
  ) {
    super(message);
    this.name = 'LauncherError';
  }
}

interface Pending {
  op: LauncherOp;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

type Body<O extends LauncherOp> = Omit<Extract<LauncherRequest, { op: O }>, 'id' | 'op'>;

export class LauncherClient extends EventEmitter {
  readonly #fd: number;
  readonly #watch: Watch;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed = false;

  private constructor(fd: number) {
    super();
    this.#fd = fd;
    this.#watch = watchReadable(fd, () => this.#readable());
  }

  // Connects at once or fails (ENOENT, ECONNREFUSED: no launcher; EAGAIN: its backlog is full).
  static connect(socketPath: string): Promise<LauncherClient> {
    try {
      return Promise.resolve(new LauncherClient(seqpacketConnect(socketPath)));
    } catch (e) {
      return Promise.reject(new LauncherError('closed', `cannot connect to the launcher at ${socketPath}: ${(e as Error).message}`));
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  spawn(req: SpawnRequest, fds: readonly number[]): Promise<{ pid: number }> {
    if (fds.length > LauncherLimits.FDS_MAX)
      return Promise.reject(new LauncherError('protocol', `${fds.length} descriptors, at most ${LauncherLimits.FDS_MAX}`));
    return this.#call('spawn', req, fds);
  }

  async signal(vm: string, signal: LauncherSignal): Promise<void> {
    await this.#call('signal', { vm, signal });
  }

  async list(): Promise<LaunchedVm[]> {
    return (await this.#call('list', {})).vms;
  }

  async limits(vm: string, l: MemoryPidsLimits): Promise<void> {
    await this.#call('limits', { vm, ...l });
  }

  async cleanup(vm: string): Promise<void> {
    await this.#call('cleanup', { vm });
  }

  // A tap device on `bridge`: its name and its descriptor (the caller's to close once QEMU has its copy).
  async tap(bridge: string): Promise<{ ifname: string; fd: number }> {
    return this.#call('tap', { bridge });
  }

  // Descriptors are the caller's: they stay open here (the launcher gets its own copies) and the caller closes them.
  #call<O extends LauncherOp>(op: O, body: Body<O>, fds: readonly number[] = []): Promise<LauncherResults[O]> {
    if (this.#closed) return Promise.reject(new LauncherError('closed', 'launcher connection is closed'));
    const id = this.#nextId;
    this.#nextId = this.#nextId >= LauncherLimits.ID_MAX ? 1 : this.#nextId + 1;
    let msg: Buffer;
    try {
      msg = encodeRequest({ id, op, ...body } as LauncherRequest);
    } catch (e) {
      return Promise.reject(new LauncherError('protocol', (e as Error).message));
    }
    return new Promise<LauncherResults[O]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new LauncherError('timeout', `launcher did not answer ${op} within ${TIMEOUT_MS[op]} ms`));
      }, TIMEOUT_MS[op]);
      this.#pending.set(id, { op, resolve: resolve as (v: unknown) => void, reject, timer });
      try {
        sendMsg(this.#fd, msg, fds);
      } catch (e) {
        // The launcher may have refused this connection and closed it: its reason is still queued here, read it first.
        this.#readable();
        this.#shut(`send to the launcher failed: ${(e as Error).message}`);
      }
    });
  }

  #readable(): void {
    while (!this.#closed) {
      let m;
      try {
        m = recvMsg(this.#fd, LauncherLimits.MESSAGE_MAX, 1); // only a tap answer carries one
      } catch (e) {
        this.#shut(`receive failed: ${(e as Error).message}`);
        return;
      }
      if (m === 'again') return;
      if (m === 'eof') {
        this.#shut('launcher closed the connection');
        return;
      }
      let a;
      try {
        a = decodeAnswer(m.data);
      } catch (e) {
        closeFds(m.fds);
        this.#shut(`malformed answer: ${(e as Error).message}`);
        return;
      }
      const p0 = a.ok ? this.#pending.get(a.id) : undefined;
      // A descriptor only with a successful tap answer; anywhere else it is closed unused.
      const fd = p0?.op === 'tap' && m.fds.length === 1 ? m.fds[0] : -1;
      closeFds(m.fds.filter((x) => x !== fd));
      if (a.id === 0 && !a.ok) {
        // Not an answer to a request: the launcher refused this connection (or a message it could not read).
        this.#shut(`launcher refused: ${a.error.code}: ${a.error.message}`, a.error.code);
        return;
      }
      const p = this.#pending.get(a.id);
      if (!p) {
        if (fd >= 0) closeFd(fd);
        continue; // timed out already
      }
      this.#pending.delete(a.id);
      clearTimeout(p.timer);
      if (!a.ok) {
        p.reject(new LauncherError(a.error.code, a.error.message));
        continue;
      }
      try {
        const result = decodeResult(p.op, a.result);
        if (p.op === 'tap') {
          if (fd < 0) throw new Error('no tap descriptor came with it');
          (result as { fd: number }).fd = fd;
        }
        p.resolve(result);
      } catch (e) {
        if (fd >= 0) closeFd(fd);
        p.reject(new LauncherError('protocol', `bad ${p.op} answer: ${(e as Error).message}`));
      }
    }
  }

  #shut(why: string, code: LauncherError['code'] = 'closed'): void {
    if (this.#closed) return;
    this.#closed = true;
    shutdownFd(this.#fd);
    this.#watch.close(true);
    for (const [, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(new LauncherError(code, why));
    }
    this.#pending.clear();
    this.emit('close', why);
  }

  close(): void {
    this.#shut('closed by the helper');
  }
}
