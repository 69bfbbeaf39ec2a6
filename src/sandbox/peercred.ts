// SPDX-License-Identifier: Apache-2.0
// SO_PEERCRED for a connected unix socket via koffi: the kernel's word on who is at the other end (helper boundary).
import type { Socket } from 'node:net';

export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
const UCRED_SIZE = 12; // int32 pid; uint32 uid; uint32 gid

type GetSockOpt = (fd: number, level: number, name: number, out: Record<string, number>, len: number[]) => number;

let getsockopt: GetSockOpt | null = null;

// Loaded once, on first use: koffi is native code we only pay for when a connection arrives.
function bind(): GetSockOpt {
  if (getsockopt) return getsockopt;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const koffi = require('koffi') as typeof import('koffi');
  // Anonymous struct: a named one would clash if this module is ever loaded twice in one process (jest).
  const ucred = koffi.struct({ pid: 'int32', uid: 'uint32', gid: 'uint32' });
  const libc = koffi.load('libc.so.6');
  const args = ['int', 'int', 'int', koffi.out(koffi.pointer(ucred)), koffi.inout(koffi.pointer('uint32'))];
  getsockopt = libc.func('getsockopt', 'int', args) as GetSockOpt;
  return getsockopt;
}

export function peerCred(socket: Socket): PeerCred {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('peerCred: socket has no file descriptor (not a connected unix socket?)');
  const out: Record<string, number> = {};
  const len = [UCRED_SIZE];
  if (bind()(fd, SOL_SOCKET, SO_PEERCRED, out, len) !== 0) throw new Error('peerCred: getsockopt(SO_PEERCRED) failed');
  if (len[0] !== UCRED_SIZE) throw new Error(`peerCred: unexpected ucred size ${len[0]}`);
  return { pid: out.pid, uid: out.uid, gid: out.gid };
}
