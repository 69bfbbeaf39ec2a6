// SPDX-License-Identifier: Apache-2.0
// libvirt's REPLY_WITH_FDS on a client's unix socket (front end): each descriptor goes with its own 1-byte sendmsg
// (virNetSocketSendFD), after the reply's bytes. Node's net.Socket cannot send ancillary data: the raw fd can.
import type * as net from 'node:net';
import { FdPassError, closeFd, sendMsg } from '../sandbox/fdpass';

const RETRY_MS = 5; // the socket buffer was full (the client is slow to read): try again shortly
const TRIES_MAX = 2000; // ~10 s of a client not reading at all

export function closeFds(fds: readonly number[]): void {
  for (const fd of fds) closeFd(fd);
}

// Sends every fd (closing ours as each goes) and calls done once; on an error the rest are closed unsent.
export function sendReplyFds(sock: net.Socket, fds: number[], done: (err: Error | null) => void): void {
  const raw = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof raw !== 'number' || raw < 0 || sock.destroyed) {
    closeFds(fds);
    return done(new Error('the client socket has no descriptor'));
  }
  let i = 0;
  let tries = 0;
  const step = (): void => {
    while (i < fds.length) {
      try {
        sendMsg(raw, Buffer.from([0]), [fds[i]]);
      } catch (e) {
        if (e instanceof FdPassError && e.errno === 11 && ++tries < TRIES_MAX && !sock.destroyed) {
          setTimeout(step, RETRY_MS);
          return;
        }
        closeFds(fds.slice(i));
        return done(e as Error);
      }
      closeFd(fds[i++]);
    }
    done(null);
  };
  step();
}
