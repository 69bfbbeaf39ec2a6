// SPDX-License-Identifier: Apache-2.0
// sd_notify(3) without a package: one unix datagram to $NOTIFY_SOCKET. Node has no datagram unix sockets, so the
// three libc calls go through koffi (sandbox boundary); socket, sendto and close are in both seccomp allowlists.
import { koffi } from './libc';

const AF_UNIX = 1;
const SOCK_DGRAM_CLOEXEC = 2 | 0o2000000;
const MSG_DONTWAIT_NOSIGNAL = 0x40 | 0x4000; // never block on a full systemd queue, never die of SIGPIPE
const SUN_PATH_MAX = 108;

export interface UnixDatagramLibc {
  socket: (domain: number, type: number, proto: number) => number;
  sendto: (fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, addrlen: number) => number;
  close: (fd: number) => number;
}
let libc: UnixDatagramLibc | null = null;

// The three libc calls of a unix datagram sender (also journald.ts); bound once, before any seccomp filter goes on.
export function unixDatagramLibc(): UnixDatagramLibc {
  if (libc) return libc;
  const lib = koffi().load('libc.so.6');
  libc = {
    socket: lib.func('int socket(int domain, int type, int protocol)') as UnixDatagramLibc['socket'],
    sendto: lib.func('intptr_t sendto(int fd, const uint8_t *buf, size_t len, int flags, const uint8_t *addr, uint32_t addrlen)') as UnixDatagramLibc['sendto'],
    close: lib.func('int close(int fd)') as UnixDatagramLibc['close'],
  };
  return libc;
}

// struct sockaddr_un for a path, or for the abstract namespace when it starts with '@' (no trailing NUL there).
export function sockaddrUn(target: string, what = 'NOTIFY_SOCKET'): { addr: Buffer; len: number } {
  const abstract = target.startsWith('@');
  const name = Buffer.from(abstract ? target.slice(1) : target);
  if (name.length + 1 > SUN_PATH_MAX) throw new Error(`${what} too long: ${target}`);
  if (name.length === 0 || name.includes(0)) throw new Error(`${what}: unusable unix socket address: ${target}`);
  const addr = Buffer.alloc(2 + SUN_PATH_MAX);
  addr.writeUInt16LE(AF_UNIX, 0);
  name.copy(addr, abstract ? 3 : 2);
  return { addr, len: 2 + name.length + 1 };
}

export class SdNotifier {
  readonly target: string | null;

  // Takes NOTIFY_SOCKET out of the environment, as sd_notify's unset_environment does, so no child sends in our name.
  static fromEnv(env: Record<string, string | undefined> = process.env): SdNotifier {
    const target = env.NOTIFY_SOCKET || null;
    delete env.NOTIFY_SOCKET;
    const n = new SdNotifier(target);
    if (target) unixDatagramLibc(); // dlopen and symbol look-ups now, before any seccomp filter goes on
    return n;
  }

  constructor(target: string | null) {
    if (target !== null && !target.startsWith('/') && !target.startsWith('@')) throw new Error(`NOTIFY_SOCKET: not a unix socket address: ${target}`);
    this.target = target;
  }

  // Sends "KEY=value" lines; false (never a throw) when not under systemd or the datagram could not be sent: a
  // notification is a courtesy to the service manager, never a reason to stop serving.
  notify(...lines: string[]): boolean {
    if (!this.target) return false;
    const { addr, len } = sockaddrUn(this.target);
    const c = unixDatagramLibc();
    const msg = Buffer.from(lines.map((l) => l.replace(/\n/g, ' ')).join('\n'));
    const fd = c.socket(AF_UNIX, SOCK_DGRAM_CLOEXEC, 0);
    if (fd < 0) return false;
    try {
      return c.sendto(fd, msg, msg.length, MSG_DONTWAIT_NOSIGNAL, addr, len) === msg.length;
    } finally {
      c.close(fd);
    }
  }
}
