// SPDX-License-Identifier: Apache-2.0
// Raw unix sockets through koffi: SOCK_SEQPACKET with SCM_RIGHTS descriptor passing (Node's net.Socket drops ancillary
// data) and plain listeners whose fd is handed to QEMU. Readiness comes from libuv (koffi.node.poll): nothing blocks the
// event loop or parks a thread-pool thread (helper <-> launcher boundary).
import * as fs from 'node:fs';
import { koffi } from './libc';

// x86_64 Linux values (asm-generic/socket.h, bits/socket.h).
export const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_SEQPACKET = 5;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const SO_PEERCRED = 17;
const SO_TYPE = 3;
const MSG_TRUNC = 0x20;
const MSG_CTRUNC = 0x8;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const MSG_CMSG_CLOEXEC = 0x40000000;
const SHUT_RDWR = 2;
const F_GETFD = 1;
const EAGAIN = 11;
const EINTR = 4;
const ECONNRESET = 104;
const SUN_PATH_MAX = 107; // sun_path is 108 bytes with its NUL
export const FDS_MAX = 64; // descriptors in one message; the kernel's own cap (SCM_MAX_FD) is 253
const CMSG_HDR = 16; // struct cmsghdr { size_t len; int level; int type; } on LP64
const MSGHDR_SIZE = 56; // struct msghdr on LP64

export class FdPassError extends Error {
  constructor(
    readonly op: string,
    readonly errno: number,
    detail?: string,
  ) {
    super(`${op}: ${detail ?? `errno ${errno}`}`);
    this.name = 'FdPassError';
  }
}

interface Lib {
  socket: (domain: number, type: number, proto: number) => number;
  bind: (fd: number, addr: Buffer, len: number) => number;
  listen: (fd: number, backlog: number) => number;
  accept4: (fd: number, addr: null, len: null, flags: number) => number;
  connect: (fd: number, addr: Buffer, len: number) => number;
  socketpair: (domain: number, type: number, proto: number, sv: Int32Array) => number;
  sendmsg: (fd: number, msg: Buffer, flags: number) => number;
  recvmsg: (fd: number, msg: Buffer, flags: number) => number;
  close: (fd: number) => number;
  shutdown: (fd: number, how: number) => number;
  fcntl: (fd: number, cmd: number, arg: number) => number;
  getsockopt: (fd: number, level: number, name: number, out: Buffer, len: number[]) => number;
  strerror: (e: number) => string;
}
let lib: Lib | null = null;

function bind(): Lib {
  if (lib) return lib;
  const k = koffi();
  const c = k.load('libc.so.6');
  lib = {
    socket: c.func('int socket(int domain, int type, int protocol)') as Lib['socket'],
    bind: c.func('int bind(int fd, void *addr, uint32_t len)') as Lib['bind'],
    listen: c.func('int listen(int fd, int backlog)') as Lib['listen'],
    accept4: c.func('int accept4(int fd, void *addr, void *len, int flags)') as Lib['accept4'],
    connect: c.func('int connect(int fd, void *addr, uint32_t len)') as Lib['connect'],
    socketpair: c.func('socketpair', 'int', ['int', 'int', 'int', k.out(k.pointer('int', 2))]) as Lib['socketpair'],
    sendmsg: c.func('intptr_t sendmsg(int fd, void *msg, int flags)') as Lib['sendmsg'],
    recvmsg: c.func('intptr_t recvmsg(int fd, void *msg, int flags)') as Lib['recvmsg'],
    close: c.func('int close(int fd)') as Lib['close'],
    shutdown: c.func('int shutdown(int fd, int how)') as Lib['shutdown'],
    fcntl: c.func('int fcntl(int fd, int cmd, int arg)') as Lib['fcntl'],
    getsockopt: c.func('getsockopt', 'int', ['int', 'int', 'int', 'void *', k.inout(k.pointer('uint32_t'))]) as Lib['getsockopt'],
    strerror: c.func('const char *strerror(int errnum)') as Lib['strerror'],
  };
  return lib;
}

function fail(op: string): never {
  const e = koffi().errno();
  throw new FdPassError(op, e, `${bind().strerror(e)} (errno ${e})`);
}

// struct sockaddr_un for a path; the kernel copies it, so the buffer may die after the call.
function sockaddr(path: string): { buf: Buffer; len: number } {
  const p = Buffer.from(path);
  if (p.length === 0 || p.length > SUN_PATH_MAX || p.includes(0))
    throw new FdPassError('sockaddr', 0, `unusable socket path (1-${SUN_PATH_MAX} bytes, no NUL): ${path}`);
  const buf = Buffer.alloc(2 + p.length + 1);
  buf.writeUInt16LE(AF_UNIX, 0);
  p.copy(buf, 2);
  return { buf, len: buf.length };
}

// Binds with a narrow umask so the socket is never briefly wider than `mode`, then sets `mode` exactly.
function bindPath(fd: number, path: string, mode: number): void {
  const { buf, len } = sockaddr(path);
  const old = process.umask(0o177);
  try {
    if (bind().bind(fd, buf, len) !== 0) fail(`bind ${path}`);
  } finally {
    process.umask(old);
  }
  fs.chmodSync(path, mode);
}

function withFd<T>(fd: number, f: () => T): T {
  try {
    return f();
  } catch (e) {
    bind().close(fd);
    throw e;
  }
}

// A listening SOCK_SEQPACKET socket (non-blocking, close-on-exec) at `path`, mode `mode`.
export function seqpacketListen(path: string, mode: number, backlog = 8): number {
  const l = bind();
  const fd = l.socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) fail('socket(AF_UNIX, SOCK_SEQPACKET)');
  return withFd(fd, () => {
    bindPath(fd, path, mode);
    if (l.listen(fd, backlog) !== 0) fail('listen');
    return fd;
  });
}

// A plain SOCK_STREAM listener (blocking, close-on-exec) whose raw fd is passed to QEMU (`-chardev socket,fd=N,server=on`).
export function bindUnixListener(path: string, mode: number, backlog = 1): number {
  const l = bind();
  const fd = l.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail('socket(AF_UNIX, SOCK_STREAM)');
  return withFd(fd, () => {
    bindPath(fd, path, mode);
    if (l.listen(fd, backlog) !== 0) fail('listen');
    return fd;
  });
}

// Connects a non-blocking SOCK_SEQPACKET socket. A unix connect completes at once or fails (EAGAIN: backlog full).
export function seqpacketConnect(path: string): number {
  const l = bind();
  const fd = l.socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) fail('socket(AF_UNIX, SOCK_SEQPACKET)');
  return withFd(fd, () => {
    const { buf, len } = sockaddr(path);
    if (l.connect(fd, buf, len) !== 0) fail(`connect ${path}`);
    return fd;
  });
}

// Connects a non-blocking SOCK_STREAM socket (a VM's console socket, whose raw fd is handed on). A unix connect
// completes at once or fails; EAGAIN (the listener's backlog is full) returns null so the caller may retry.
export function streamConnect(path: string): number | null {
  const l = bind();
  const fd = l.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) fail('socket(AF_UNIX, SOCK_STREAM)');
  return withFd(fd, () => {
    const { buf, len } = sockaddr(path);
    if (l.connect(fd, buf, len) === 0) return fd;
    if (koffi().errno() === EAGAIN) {
      l.close(fd);
      return null;
    }
    return fail(`connect ${path}`);
  });
}

// A connected pair of non-blocking, close-on-exec SOCK_STREAM sockets (a test console; a display's end for QEMU).
export function streamPair(): [number, number] {
  const sv = new Int32Array(2);
  if (bind().socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) !== 0) fail('socketpair');
  return [sv[0], sv[1]];
}

// The next pending connection (non-blocking, close-on-exec), or null when none is waiting.
export function acceptConn(listenFd: number): number | null {
  for (;;) {
    const fd = bind().accept4(listenFd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) return fd;
    const e = koffi().errno();
    if (e === EINTR) continue;
    if (e === EAGAIN) return null;
    fail('accept4');
  }
}

// Accepts every pending connection and hands each to `onPeer` with its kernel-reported credentials (SO_PEERCRED); the
// caller decides whether to keep it. A connection whose credentials cannot be read is closed here.
export function acceptPeers(listenFd: number, log: (msg: string) => void, onPeer: (fd: number, cred: RawPeerCred) => void): void {
  for (;;) {
    let fd: number | null;
    try {
      fd = acceptConn(listenFd);
    } catch (e) {
      log(`accept: ${(e as Error).message}`);
      return;
    }
    if (fd === null) return;
    let cred: RawPeerCred;
    try {
      cred = peerCredFd(fd);
    } catch (e) {
      log(`refused a connection: ${(e as Error).message}`);
      closeFd(fd);
      continue;
    }
    onPeer(fd, cred);
  }
}

export function closeFd(fd: number): void {
  bind().close(fd);
}

export function closeFds(fds: readonly number[]): void {
  for (const fd of fds) bind().close(fd);
}

// Wakes a readiness watcher and makes the peer see end-of-file; the fd itself stays open until closeFd.
export function shutdownFd(fd: number): void {
  bind().shutdown(fd, SHUT_RDWR);
}

export function fdIsOpen(fd: number): boolean {
  return bind().fcntl(fd, F_GETFD, 0) >= 0;
}

export interface RawPeerCred {
  pid: number;
  uid: number;
  gid: number;
}

// SO_PEERCRED on a raw fd (peercred.ts does the same for a net.Socket): the kernel's word on who connected.
export function peerCredFd(fd: number): RawPeerCred {
  const out = Buffer.alloc(12);
  const len = [12];
  if (bind().getsockopt(fd, SOL_SOCKET, SO_PEERCRED, out, len) !== 0) fail('getsockopt(SO_PEERCRED)');
  if (len[0] !== 12) throw new FdPassError('getsockopt(SO_PEERCRED)', 0, `unexpected ucred size ${len[0]}`);
  return { pid: out.readInt32LE(0), uid: out.readUInt32LE(4), gid: out.readUInt32LE(8) };
}

// SO_TYPE: lets a receiver check that a descriptor it got is the kind of socket it expects.
export function socketType(fd: number): 'stream' | 'seqpacket' | 'other' | null {
  const out = Buffer.alloc(4);
  const len = [4];
  if (bind().getsockopt(fd, SOL_SOCKET, SO_TYPE, out, len) !== 0) return null;
  const t = out.readInt32LE(0);
  return t === SOCK_STREAM ? 'stream' : t === SOCK_SEQPACKET ? 'seqpacket' : 'other';
}

const align8 = (n: number): number => (n + 7) & ~7;

// struct msghdr { void *name; socklen_t namelen; struct iovec *iov; size_t iovlen; void *control; size_t controllen;
// int flags; } with one iovec { void *base; size_t len; }. The buffers must stay referenced until the call returns.
function msghdr(data: Buffer, control: Buffer | null): { msg: Buffer; iov: Buffer } {
  const k = koffi();
  const iov = Buffer.alloc(16);
  iov.writeBigUInt64LE(data.length ? k.address(data) : 0n, 0);
  iov.writeBigUInt64LE(BigInt(data.length), 8);
  const msg = Buffer.alloc(MSGHDR_SIZE);
  msg.writeBigUInt64LE(k.address(iov), 16);
  msg.writeBigUInt64LE(1n, 24);
  if (control) {
    msg.writeBigUInt64LE(k.address(control), 32);
    msg.writeBigUInt64LE(BigInt(control.length), 40);
  }
  return { msg, iov };
}

// One message, with its descriptors (SCM_RIGHTS) when there are any. A SEQPACKET send is all or nothing.
export function sendMsg(fd: number, data: Buffer, fds: readonly number[] = []): void {
  if (data.length === 0) throw new FdPassError('sendmsg', 0, 'empty message');
  if (fds.length > FDS_MAX) throw new FdPassError('sendmsg', 0, `${fds.length} descriptors, at most ${FDS_MAX}`);
  let control: Buffer | null = null;
  if (fds.length) {
    control = Buffer.alloc(CMSG_HDR + align8(4 * fds.length));
    control.writeBigUInt64LE(BigInt(CMSG_HDR + 4 * fds.length), 0);
    control.writeInt32LE(SOL_SOCKET, 8);
    control.writeInt32LE(SCM_RIGHTS, 12);
    fds.forEach((f, i) => control!.writeInt32LE(f, CMSG_HDR + 4 * i));
  }
  const { msg, iov } = msghdr(data, control);
  for (;;) {
    const n = Number(bind().sendmsg(fd, msg, MSG_NOSIGNAL | MSG_DONTWAIT));
    if (n === data.length) break;
    if (n < 0 && koffi().errno() === EINTR) continue;
    if (n >= 0) throw new FdPassError('sendmsg', 0, `short send ${n}/${data.length}`);
    fail('sendmsg');
  }
  void iov; // kept alive until here: msg points into it
}

export type Received = { data: Buffer; fds: number[] } | 'again' | 'eof';

// One message and the descriptors that came with it (close-on-exec). A message longer than maxBytes, or with more
// descriptors than maxFds, is refused whole: what came is closed and FdPassError(code 'truncated') is thrown.
export function recvMsg(fd: number, maxBytes: number, maxFds = FDS_MAX): Received {
  const data = Buffer.alloc(maxBytes + 1); // one spare byte: a message that fills it was too long
  const control = Buffer.alloc(CMSG_HDR + align8(4 * Math.min(maxFds, FDS_MAX)) + 64);
  const { msg, iov } = msghdr(data, control);
  let n: number;
  for (;;) {
    n = Number(bind().recvmsg(fd, msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
    if (n >= 0) break;
    const e = koffi().errno();
    if (e === EINTR) continue;
    if (e === EAGAIN) return 'again';
    // The peer closed with messages of ours unread: the kernel reports that once, before what it sent us is read.
    if (e === ECONNRESET) continue;
    fail('recvmsg');
  }
  void iov;
  const flags = msg.readInt32LE(48);
  const controlLen = Number(msg.readBigUInt64LE(40));
  const fds: number[] = [];
  for (let off = 0; off + CMSG_HDR <= controlLen;) {
    const len = Number(control.readBigUInt64LE(off));
    if (len < CMSG_HDR || off + len > controlLen) break;
    if (control.readInt32LE(off + 8) === SOL_SOCKET && control.readInt32LE(off + 12) === SCM_RIGHTS) {
      for (let p = off + CMSG_HDR; p + 4 <= off + len; p += 4) fds.push(control.readInt32LE(p));
    }
    off += align8(len);
  }
  if (n === 0 && fds.length === 0) return 'eof';
  if (flags & (MSG_TRUNC | MSG_CTRUNC) || n > maxBytes || fds.length > maxFds) {
    closeFds(fds);
    throw new FdPassError('truncated', 0, `message over ${maxBytes} bytes or ${maxFds} descriptors`);
  }
  return { data: data.subarray(0, n), fds };
}

export interface Watch {
  // Stops watching; with closeFd, the fd is closed once libuv has finished closing its handle (uv_close is
  // asynchronous: a new descriptor reusing the number before that makes koffi's poll() abort the process).
  close(closeFd?: boolean): void;
}

// XXX: koffi 3.3.4's PollHandle finalizer aborts Node 20 ("Error::New napi_get_last_error_info") when the GC collects
// a handle, closed or not. Every handle stays referenced for the life of the process: a few dozen bytes per connection.
const KEEP: unknown[] = [];

// Calls onReadable on the event loop whenever fd is readable (or hung up); libuv's poller, not a thread.
export function watchReadable(fd: number, onReadable: () => void): Watch {
  // An exception must not unwind through koffi's native callback: it is rethrown from a microtask instead.
  const h = koffi().node.poll(fd, { readable: true, disconnect: true }, () => {
    try {
      onReadable();
    } catch (e) {
      queueMicrotask(() => {
        throw e;
      });
    }
  });
  KEEP.push(h);
  let closed = false;
  return {
    close: (alsoFd = false) => {
      if (closed) return;
      closed = true;
      h.stop();
      h.close();
      if (alsoFd) setTimeout(() => bind().close(fd), 0); // timers run after this iteration's close callbacks
    },
  };
}
