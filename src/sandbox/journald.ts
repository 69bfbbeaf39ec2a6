// SPDX-License-Identifier: Apache-2.0
// systemd-journald's native protocol: one AF_UNIX SOCK_DGRAM datagram per entry (Node has no unix datagrams: koffi).
import { sockaddrUn, unixDatagramLibc } from './notify';

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const MSG_NOSIGNAL = 0x4000;

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
  readonly #addr: { addr: Buffer; len: number };
  dropped = 0; // entries the socket refused (journald gone, full, or too big)

  constructor(path: string) {
    this.#addr = sockaddrUn(path, 'journal socket');
    this.path = path;
  }

  // Never blocks the event loop: a full journal drops the entry (counted) instead of stalling the daemon.
  send(fields: Record<string, string>): boolean {
    const l = unixDatagramLibc();
    if (this.#fd < 0) {
      this.#fd = l.socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (this.#fd < 0) return (void this.dropped++, false);
    }
    const buf = encodeEntry(fields);
    const n = l.sendto(this.#fd, buf, buf.length, MSG_NOSIGNAL, this.#addr.addr, this.#addr.len);
    if (n !== buf.length) {
      this.dropped++;
      return false;
    }
    return true;
  }

  close(): void {
    if (this.#fd >= 0) unixDatagramLibc().close(this.#fd);
    this.#fd = -1;
  }
}
