// SPDX-License-Identifier: Apache-2.0
// systemd-journald's native protocol: one AF_UNIX SOCK_DGRAM datagram per entry (Node has no unix datagrams: koffi).
import { koffi } from './libc';

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const MSG_NOSIGNAL = 0x4000;
const SUN_PATH_MAX = 107;

interface Lib {
  socket: (d: number, t: number, p: number) => number;
  sendto: (fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, alen: number) => number;
  close: (fd: number) => number;
}
let lib: Lib | null = null;
function bind(): Lib {
  if (lib) return lib;
  const c = koffi().load('libc.so.6');
  lib = {
    socket: c.func('int socket(int domain, int type, int protocol)') as Lib['socket'],
    sendto: c.func('intptr_t sendto(int fd, void *buf, size_t len, int flags, void *addr, uint32_t alen)') as Lib['sendto'],
    close: c.func('int close(int fd)') as Lib['close'],
  };
  return lib;
}

// Field names: uppercase letters, digits, underscore; not starting with an underscore (trusted fields are journald's).
const FIELD = /^[A-Z0-9][A-Z0-9_]{0,63}$/;

// KEY=value\n for single-line values; KEY\n<u64 LE length>value\n otherwise (the protocol's binary-safe form).
export function encodeEntry(fields: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(fields)) {
    if (!FIELD.test(k)) continue;
    const val = Buffer.from(v);
    if (!val.includes(0x0a)) {
      parts.push(Buffer.from(`${k}=`), val, Buffer.from('\n'));
    } else {
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(val.length));
      parts.push(Buffer.from(`${k}\n`), len, val, Buffer.from('\n'));
    }
  }
  return Buffer.concat(parts);
}

export class JournalSocket {
  readonly path: string;
  #fd = -1;
  #addr: Buffer;
  dropped = 0; // entries the socket refused (journald gone, full, or too big)

  constructor(path: string) {
    const p = Buffer.from(path);
    if (p.length === 0 || p.length > SUN_PATH_MAX || p.includes(0)) throw new Error(`unusable journal socket path: ${path}`);
    this.path = path;
    this.#addr = Buffer.alloc(2 + p.length + 1);
    this.#addr.writeUInt16LE(AF_UNIX, 0);
    p.copy(this.#addr, 2);
  }

  // Never blocks the event loop: a full journal drops the entry (counted) instead of stalling the daemon.
  send(fields: Record<string, string>): boolean {
    const l = bind();
    if (this.#fd < 0) {
      this.#fd = l.socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (this.#fd < 0) return (void this.dropped++, false);
    }
    const buf = encodeEntry(fields);
    const n = l.sendto(this.#fd, buf, buf.length, MSG_NOSIGNAL, this.#addr, this.#addr.length);
    if (n !== buf.length) {
      this.dropped++;
      return false;
    }
    return true;
  }

  close(): void {
    if (this.#fd >= 0) bind().close(this.#fd);
    this.#fd = -1;
  }
}
