// SPDX-License-Identifier: Apache-2.0
// The launcher's socket server (launcher boundary): SOCK_SEQPACKET, SO_PEERCRED allow-list on every connection, one
// message per request, descriptors received with it and always closed here once the request is done. Requests run one
// at a time (a spawn's slot and uuid checks must not race another spawn's).
import {
  type LauncherAnswer,
  LauncherCodecError,
  LauncherErrorCode,
  LauncherLimits,
  type LauncherRequest,
  decodeRequest,
  encodeAnswer,
  peekId,
} from '../ipc/launcher';
import { FdPassError, type Watch, acceptPeers, closeFd, closeFds, recvMsg, sendMsg, shutdownFd, watchReadable } from '../sandbox/fdpass';
import { type LauncherCore, LauncherFailure } from './launcher';
import { createTap } from './tap';

const MAX_CONNECTIONS = 4; // the helper needs one; the rest is slack for its restarts

export interface LauncherServerOptions {
  core: LauncherCore;
  allowUids: readonly number[];
  log: (line: string) => void;
}

interface Conn {
  fd: number;
  watch: Watch;
  peer: string;
  closed: boolean;
}

export class LauncherServer {
  readonly #o: LauncherServerOptions;
  readonly #listenFd: number;
  readonly #listenWatch: Watch;
  readonly #conns = new Set<Conn>();
  #queue: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(listenFd: number, o: LauncherServerOptions) {
    this.#o = o;
    this.#listenFd = listenFd;
    this.#listenWatch = watchReadable(listenFd, () => this.#accept());
  }

  get connections(): number {
    return this.#conns.size;
  }

  #accept(): void {
    acceptPeers(this.#listenFd, this.#o.log, (fd, cred) => {
      const peer = `pid ${cred.pid} uid ${cred.uid}`;
      const refuse = (why: string): void => {
        this.#o.log(`refused ${peer}: ${why}`);
        try {
          sendMsg(fd, encodeAnswer({ id: 0, ok: false, error: { code: LauncherErrorCode.PEER_REFUSED, message: why } }));
        } catch {
          // it may have gone already
        }
        closeFd(fd);
      };
      if (!this.#o.allowUids.includes(cred.uid)) return refuse(`uid ${cred.uid} is not allowed to use the launcher`);
      if (this.#conns.size >= MAX_CONNECTIONS) return refuse(`too many connections (${MAX_CONNECTIONS})`);
      const c: Conn = { fd, peer, closed: false, watch: { close: () => undefined } };
      c.watch = watchReadable(fd, () => this.#readable(c));
      this.#conns.add(c);
      this.#o.log(`connection from ${peer}`);
    });
  }

  #readable(c: Conn): void {
    while (!c.closed) {
      let m;
      try {
        m = recvMsg(c.fd, LauncherLimits.MESSAGE_MAX, LauncherLimits.FDS_MAX);
      } catch (e) {
        const why = e instanceof FdPassError && e.op === 'truncated' ? e.message : `receive failed: ${(e as Error).message}`;
        this.#fatal(c, 0, why);
        return;
      }
      if (m === 'again') return;
      if (m === 'eof') {
        this.#close(c, 'closed by peer');
        return;
      }
      const { data, fds } = m;
      let req: LauncherRequest;
      try {
        req = decodeRequest(data);
      } catch (e) {
        closeFds(fds);
        if (!(e instanceof LauncherCodecError)) throw e;
        this.#fatal(c, peekId(data), e.message);
        return;
      }
      if (req.op !== 'spawn' && fds.length) {
        closeFds(fds);
        this.#fatal(c, req.id, `${req.op} carries no descriptors (${fds.length} sent)`);
        return;
      }
      this.#queue = this.#queue.then(() => this.#run(c, req, fds));
    }
  }

  // A message that is not this protocol: answer why, then end the connection (the peer is not behaving).
  #fatal(c: Conn, id: number, why: string): void {
    this.#o.log(`${c.peer}: malformed request: ${why}; closing`);
    this.#send(c, { id, ok: false, error: { code: LauncherErrorCode.MALFORMED, message: why } });
    this.#close(c, 'malformed request');
  }

  async #run(c: Conn, req: LauncherRequest, fds: number[]): Promise<void> {
    let answer: LauncherAnswer;
    let passFds: number[] = []; // descriptors that go back with the answer (a tap), closed here once sent
    try {
      const result = await this.#dispatch(req, fds);
      if (req.op === 'tap') {
        const { fd, ifname } = result as { fd: number; ifname: string };
        passFds = [fd];
        this.#o.log(`tap ${ifname} on bridge ${req.bridge} for ${c.peer}`);
        answer = { id: req.id, ok: true, result: { ifname } };
      } else answer = { id: req.id, ok: true, result };
    } catch (e) {
      const f = e instanceof LauncherFailure ? e : new LauncherFailure(LauncherErrorCode.INTERNAL, (e as Error).message);
      this.#o.log(`${req.op}${'vm' in req ? ` ${req.vm}` : ''} refused (${f.code}): ${f.message}`);
      answer = { id: req.id, ok: false, error: { code: f.code, message: f.message } };
    } finally {
      closeFds(fds); // the child has its own copies; ours must not leak
    }
    if (!c.closed) this.#send(c, answer, passFds);
    closeFds(passFds);
  }

  async #dispatch(req: LauncherRequest, fds: number[]): Promise<unknown> {
    const core = this.#o.core;
    switch (req.op) {
      case 'spawn':
        return core.spawn(req, fds);
      case 'signal':
        core.signal(req.vm, req.signal);
        return {};
      case 'list':
        return { vms: core.list() };
      case 'limits':
        core.limits(req.vm, { memoryBytes: req.memoryBytes, pids: req.pids });
        return {};
      case 'cleanup':
        await core.cleanup(req.vm);
        return {};
      case 'tap':
        return createTap(req.bridge);
    }
  }

  #send(c: Conn, a: LauncherAnswer, fds: readonly number[] = []): void {
    try {
      sendMsg(c.fd, encodeAnswer(a), fds);
    } catch (e) {
      this.#close(c, `send failed: ${(e as Error).message}`);
    }
  }

  #close(c: Conn, why: string): void {
    if (c.closed) return;
    c.closed = true;
    c.watch.close(true);
    this.#conns.delete(c);
    this.#o.log(`connection from ${c.peer} ended: ${why}`);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    shutdownFd(this.#listenFd);
    this.#listenWatch.close(true);
    for (const c of [...this.#conns]) this.#close(c, 'launcher stopping');
    await this.#queue;
  }
}
