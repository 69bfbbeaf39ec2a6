// SPDX-License-Identifier: Apache-2.0
// The helper's descriptor channel (root side): a SOCK_SEQPACKET listener at `<helperSocket>.fds` over which the
// helper hands the front end descriptors (a VM's console socket, a display socket, a screenshot memfd) so their bytes
// never pass through the helper's event loop or IPC. Same uid allow list as the IPC socket, checked with SO_PEERCRED
// on every connection. A descriptor goes to the channel whose peer pid is the pid of the IPC connection that asked
// (both pids from the kernel): a front end receives only what it asked for. The front end never sends anything here:
// any message from it closes its channel.
//
// API (contract for issue 14, parts C/G/R): AnswerContext.passFd(fd, kind) -> 16-byte token (sends, closes the
// helper's copy; throws DriverError VG_ERR_DOMAIN_INTERNAL "no descriptor channel" when the asking process has none).
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { VG_ERR_DOMAIN_INTERNAL } from '../common/errors';
import { type FdKind, FD_TOKEN_BYTES, encodeFdMessage } from '../ipc/fd-channel';
import { type Watch, acceptPeers, closeFd, recvMsg, sendMsg, shutdownFd, watchReadable } from '../sandbox/fdpass';
import { driverError } from './drivers/driver';

const MAX_CHANNELS = 8; // as the IPC server's connections: one front end, slack for its restarts

interface Channel {
  fd: number;
  pid: number;
  uid: number;
  watch: Watch;
  closed: boolean;
}

export interface FdChannelServerOptions {
  allowUids: readonly number[];
  log: (line: string) => void;
}

// Events: 'closed' (pid): a channel ended; the helper treats what it handed that process as closed.
export class FdChannelServer extends EventEmitter {
  readonly #o: FdChannelServerOptions;
  readonly #listenFd: number;
  readonly #listenWatch: Watch;
  readonly #channels = new Set<Channel>();
  #closed = false;
  passed = 0; // descriptors handed out (tests, logs)

  constructor(listenFd: number, o: FdChannelServerOptions) {
    super();
    this.#o = o;
    this.#listenFd = listenFd;
    this.#listenWatch = watchReadable(listenFd, () => this.#accept());
  }

  get channels(): number {
    return this.#channels.size;
  }

  hasChannel(pid: number): boolean {
    return this.#find(pid) !== null;
  }

  // Sends fd to the channel of process `pid` and closes the helper's copy (also on failure); returns the token.
  pass(pid: number, fd: number, kind: FdKind): Buffer {
    try {
      const c = this.#find(pid);
      if (!c) throw driverError(VG_ERR_DOMAIN_INTERNAL, `no descriptor channel from the front end's process ${pid} (is it connected to the .fds socket?)`);
      const token = randomBytes(FD_TOKEN_BYTES);
      try {
        sendMsg(c.fd, encodeFdMessage(token, kind), [fd]);
      } catch (e) {
        this.#close(c, `send failed: ${(e as Error).message}`);
        throw driverError(VG_ERR_DOMAIN_INTERNAL, `the descriptor could not be handed over: ${(e as Error).message}`);
      }
      this.passed++;
      return token;
    } finally {
      closeFd(fd);
    }
  }

  // The newest open channel of that process (a front end that reconnected has closed its old one).
  #find(pid: number): Channel | null {
    let found: Channel | null = null;
    for (const c of this.#channels) if (c.pid === pid && !c.closed) found = c;
    return found;
  }

  #accept(): void {
    acceptPeers(
      this.#listenFd,
      (m) => this.#o.log(`fd channel: ${m}`),
      (fd, cred) => {
        if (!this.#o.allowUids.includes(cred.uid)) {
          this.#o.log(`fd channel: refused peer uid ${cred.uid} pid ${cred.pid}`);
          return closeFd(fd);
        }
        if (this.#channels.size >= MAX_CHANNELS) {
          this.#o.log(`fd channel: refused peer uid ${cred.uid} pid ${cred.pid}: ${this.#channels.size} channels already open`);
          return closeFd(fd);
        }
        const c: Channel = { fd, pid: cred.pid, uid: cred.uid, closed: false, watch: { close: () => undefined } };
        c.watch = watchReadable(fd, () => this.#readable(c));
        this.#channels.add(c);
      },
    );
  }

  // The front end only receives: end of file ends the channel, anything else is a violation and ends it too.
  #readable(c: Channel): void {
    if (c.closed) return;
    let m;
    try {
      m = recvMsg(c.fd, 64, 1);
    } catch (e) {
      this.#close(c, `receive failed: ${(e as Error).message}`);
      return;
    }
    if (m === 'again') return;
    if (m === 'eof') return this.#close(c, null);
    for (const f of m.fds) closeFd(f);
    this.#close(c, 'the front end sent a message on the descriptor channel');
  }

  #close(c: Channel, why: string | null): void {
    if (c.closed) return;
    c.closed = true;
    c.watch.close(true);
    this.#channels.delete(c);
    if (why) this.#o.log(`fd channel of pid ${c.pid}: closing: ${why}`);
    this.emit('closed', c.pid);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    shutdownFd(this.#listenFd);
    this.#listenWatch.close(true);
    for (const c of [...this.#channels]) this.#close(c, null);
  }
}
