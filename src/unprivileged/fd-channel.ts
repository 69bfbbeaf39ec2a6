// SPDX-License-Identifier: Apache-2.0
// The front end's end of the helper's descriptor channel (`<helperSocket>.fds`, SOCK_SEQPACKET, SCM_RIGHTS): the helper
// hands over a console or display descriptor tagged with a random token, the IPC answer carries the same token, and
// the handler claims the descriptor with take(token, kind). Either may arrive first. Unclaimed descriptors are closed
// after `unclaimedMs`; at most `maxPending` wait (more: the oldest is closed). The helper only sends: a message that is
// not one token + kind + exactly one descriptor closes the channel (it is reopened, the helper being still up).
import { VG_ERR_HELPER_TIMEOUT, VG_ERR_INTERNAL } from '../common/errors';
import { type FdKind, FD_MESSAGE_BYTES, decodeFdMessage } from '../ipc/fd-channel';
import { type Watch, closeFd, closeFds, recvMsg, seqpacketConnect, watchReadable } from '../sandbox/fdpass';

export interface FdChannelClientOptions {
  path: string;
  log?: (msg: string) => void;
  claimMs?: number; // take() waits this long for its descriptor (default 5 s)
  unclaimedMs?: number; // a descriptor nobody claims is closed after this (default 10 s)
  maxPending?: number; // descriptors waiting for their claim (default 64)
}

interface Arrived {
  fd: number;
  kind: FdKind;
  timer: NodeJS.Timeout;
}

interface Waiter {
  kind: FdKind;
  resolve: (fd: number) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class FdChannelClient {
  readonly #o: Required<FdChannelClientOptions>;
  #fd = -1;
  #watch: Watch | null = null;
  readonly #arrived = new Map<string, Arrived>();
  readonly #waiters = new Map<string, Waiter>();
  #closed = false;
  received = 0; // descriptors received (tests)

  constructor(o: FdChannelClientOptions) {
    this.#o = { log: () => undefined, claimMs: 5000, unclaimedMs: 10_000, maxPending: 64, ...o };
  }

  get connected(): boolean {
    return this.#fd >= 0;
  }

  get pending(): number {
    return this.#arrived.size;
  }

  // (Re)connects: called at start and whenever the helper (re)connects. A failure is logged; take() then times out.
  connect(): boolean {
    if (this.#closed) return false;
    this.#disconnect();
    try {
      this.#fd = seqpacketConnect(this.#o.path);
    } catch (e) {
      this.#o.log(`descriptor channel ${this.#o.path}: ${(e as Error).message}`);
      return false;
    }
    const fd = this.#fd;
    this.#watch = watchReadable(fd, () => this.#readable(fd));
    return true;
  }

  // The descriptor the helper sent with `token`; the caller owns it (and closes it).
  take(token: Buffer, kind: FdKind): Promise<number> {
    const key = token.toString('hex');
    const a = this.#arrived.get(key);
    if (a) {
      this.#arrived.delete(key);
      clearTimeout(a.timer);
      if (a.kind !== kind) {
        closeFd(a.fd);
        return Promise.reject(VG_ERR_INTERNAL(`descriptor of kind ${a.kind} where ${kind} was expected`));
      }
      return Promise.resolve(a.fd);
    }
    if (this.#waiters.has(key)) return Promise.reject(VG_ERR_INTERNAL('descriptor token claimed twice'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(key);
        reject(VG_ERR_HELPER_TIMEOUT('with the descriptor'));
      }, this.#o.claimMs);
      timer.unref?.();
      this.#waiters.set(key, { kind, resolve, reject, timer });
    });
  }

  #readable(fd: number): void {
    while (fd === this.#fd) {
      let m;
      try {
        m = recvMsg(fd, FD_MESSAGE_BYTES, 1);
      } catch (e) {
        return this.#broken(`receive failed: ${(e as Error).message}`);
      }
      if (m === 'again') return;
      if (m === 'eof') {
        this.#disconnect(); // the helper went away; reconnected when it is back
        return;
      }
      const msg = decodeFdMessage(m.data);
      if (!msg || m.fds.length !== 1) {
        closeFds(m.fds);
        return this.#broken(`malformed message (${m.data.length} bytes, ${m.fds.length} descriptors)`);
      }
      this.received++;
      this.#deliver(msg.token.toString('hex'), msg.kind, m.fds[0]);
    }
  }

  #deliver(key: string, kind: FdKind, fd: number): void {
    const w = this.#waiters.get(key);
    if (w) {
      this.#waiters.delete(key);
      clearTimeout(w.timer);
      if (w.kind !== kind) {
        closeFd(fd);
        w.reject(VG_ERR_INTERNAL(`descriptor of kind ${kind} where ${w.kind} was expected`));
      } else w.resolve(fd);
      return;
    }
    if (this.#arrived.size >= this.#o.maxPending) {
      const [oldKey, old] = this.#arrived.entries().next().value as [string, Arrived];
      this.#drop(oldKey, old);
    }
    const timer = setTimeout(() => {
      const a = this.#arrived.get(key);
      if (a) this.#drop(key, a);
    }, this.#o.unclaimedMs);
    timer.unref?.();
    this.#arrived.set(key, { fd, kind, timer });
  }

  #drop(key: string, a: Arrived): void {
    this.#arrived.delete(key);
    clearTimeout(a.timer);
    closeFd(a.fd);
  }

  #broken(why: string): void {
    this.#o.log(`descriptor channel: ${why}; reconnecting`);
    this.#disconnect();
    const t = setTimeout(() => this.connect(), 200);
    t.unref?.();
  }

  #disconnect(): void {
    if (this.#fd < 0) return;
    this.#watch?.close(true); // closes the fd once libuv is done with it
    this.#watch = null;
    this.#fd = -1;
  }

  close(): void {
    this.#closed = true;
    this.#disconnect();
    for (const [k, a] of [...this.#arrived]) this.#drop(k, a);
    for (const w of this.#waiters.values()) {
      clearTimeout(w.timer);
      w.reject(VG_ERR_INTERNAL('the descriptor channel closed'));
    }
    this.#waiters.clear();
  }
}
