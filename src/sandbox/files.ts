// SPDX-License-Identifier: Apache-2.0
// File calls Node lacks, bound through koffi on first use (sandbox boundary): openat2(2) with its RESOLVE_* rules,
// memfd_create(2), fcntl(2) seals and status flags. Each throws an Error carrying the errno name in `code`, as Node's
// own fs errors do, so callers match on code.
import { constants as osConstants } from 'node:os';
import { koffi } from './libc';

// open_how.resolve bits (linux/openat2.h).
export const RESOLVE = {
  NO_XDEV: 0x01, // no crossing of mount points (bind mounts included)
  NO_MAGICLINKS: 0x02, // no /proc/*/fd/* style links
  NO_SYMLINKS: 0x04, // no symlinks at all, the last component included
  BENEATH: 0x08, // no escape from dirfd: no '..' above it, no absolute path
  IN_ROOT: 0x10,
  CACHED: 0x20,
} as const;

// memfd_create(2) flags and fcntl(2) seals (linux/memfd.h, linux/fcntl.h).
export const MFD = { CLOEXEC: 0x1, ALLOW_SEALING: 0x2 } as const;
export const SEAL = { SEAL: 0x1, SHRINK: 0x2, GROW: 0x4, WRITE: 0x8, FUTURE_WRITE: 0x10 } as const;
const F_GETFL = 3;
const F_SETFL = 4;
const F_ADD_SEALS = 1024 + 9;
const F_GET_SEALS = 1024 + 10;
const SYS_OPENAT2 = 437; // x86_64 and every architecture on the generic table; glibc 2.36 has no wrapper
const OPEN_HOW_SIZE = 24; // struct open_how { u64 flags; u64 mode; u64 resolve; }
export const AT_FDCWD = -100;
// Open flags Node's fs.constants lacks (asm-generic/fcntl.h, x86_64).
export const O_CLOEXEC = 0o2000000;
export const O_PATH = 0o10000000;

type Syscall = (nr: number, ...typed: unknown[]) => number;
type Fcntl = (fd: number, cmd: number, ...typed: unknown[]) => number;
type MemfdCreate = (name: string, flags: number) => number;
let fns: { syscall: Syscall; fcntl: Fcntl; memfdCreate: MemfdCreate } | null = null;

function bind(): NonNullable<typeof fns> {
  if (fns) return fns;
  const k = koffi();
  const libc = k.load('libc.so.6');
  fns = {
    syscall: libc.func('long syscall(long number, ...)') as Syscall,
    fcntl: libc.func('int fcntl(int fd, int cmd, ...)') as Fcntl,
    memfdCreate: libc.func('int memfd_create(const char *name, unsigned int flags)') as MemfdCreate,
  };
  return fns;
}

const ERRNO_NAMES = new Map<number, string>(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));

function fail(call: string, what: string): never {
  const n = koffi().errno();
  const code = ERRNO_NAMES.get(n) ?? `E${n}`;
  const e = new Error(`${call} ${what}: ${code}`) as NodeJS.ErrnoException;
  e.code = code;
  e.errno = -n;
  e.syscall = call;
  throw e;
}

// openat2(dirfd, name, {flags, mode, resolve}): the new descriptor, or throws with the errno name in `code`
// (ELOOP: a symlink under NO_SYMLINKS; EXDEV: an escape under BENEATH or a mount crossed under NO_XDEV).
export function openat2(dirfd: number, name: string, flags: number, resolve: number, mode = 0): number {
  if (name.includes('\0')) throw Object.assign(new Error('openat2: name contains NUL'), { code: 'EINVAL' });
  const how = Buffer.alloc(OPEN_HOW_SIZE);
  how.writeBigUInt64LE(BigInt(flags >>> 0), 0);
  how.writeBigUInt64LE(BigInt(mode), 8);
  how.writeBigUInt64LE(BigInt(resolve), 16);
  const fd = bind().syscall(SYS_OPENAT2, 'int', dirfd, 'str', name, 'void *', how, 'size_t', OPEN_HOW_SIZE);
  if (fd < 0) fail('openat2', `'${name}'`);
  return Number(fd);
}

export function memfdCreate(name: string, flags: number): number {
  const fd = bind().memfdCreate(name, flags);
  if (fd < 0) fail('memfd_create', `'${name}'`);
  return fd;
}

export function addSeals(fd: number, seals: number): void {
  if (bind().fcntl(fd, F_ADD_SEALS, 'int', seals) < 0) fail('fcntl', 'F_ADD_SEALS');
}

export function getSeals(fd: number): number {
  const s = bind().fcntl(fd, F_GET_SEALS);
  if (s < 0) fail('fcntl', 'F_GET_SEALS');
  return s;
}

export function getStatusFlags(fd: number): number {
  const s = bind().fcntl(fd, F_GETFL);
  if (s < 0) fail('fcntl', 'F_GETFL');
  return s;
}

export function setStatusFlags(fd: number, flags: number): void {
  if (bind().fcntl(fd, F_SETFL, 'int', flags) < 0) fail('fcntl', 'F_SETFL');
}
