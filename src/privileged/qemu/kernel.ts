// SPDX-License-Identifier: Apache-2.0
// Kernel and initrd for direct boot (helper side): copied into a sealed memfd that QEMU opens as /proc/self/fd/N, so
// the jailed QEMU (its own uid, no host paths) can read them and nobody can change them after the copy.
// Which paths a session may name is the driver's rule (a host admin's, or a volume of the tenant's pool); this file
// adds a floor of its own: the file must be readable by every host user, since the guest gets its bytes verbatim (an
// initrd of /etc/shadow would hand the shadow file to the guest).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { VG_ERR_RESOURCE_DENIED, VG_ERR_STORAGE_FAILED } from '../../common/errors';
import { AT_FDCWD, MFD, O_CLOEXEC, RESOLVE, SEAL, addSeals, memfdCreate, openat2 } from '../../sandbox/files';
import { driverError } from '../drivers/driver';

export const BOOT_FILE_MAX = 256 * 1024 * 1024; // a distribution kernel is ~10 MiB, an initrd ~100 MiB at most
const CHUNK = 1024 * 1024;
export const BOOT_SEALS = SEAL.SEAL | SEAL.SHRINK | SEAL.GROW | SEAL.WRITE;

const refuse = (what: string, file: string, why: string): Error => driverError(VG_ERR_RESOURCE_DENIED, `${what} '${file}' refused: ${why}`);

// A sealed memfd holding a copy of the world-readable regular file at absolute `file`.
export function kernelMemfd(file: string, what: 'kernel' | 'initrd'): number {
  if (!path.isAbsolute(file) || path.normalize(file) !== file || file.includes('\0')) throw refuse(what, file, 'the path must be absolute and normalised');
  let fd: number;
  try {
    // No magic links (/proc/*/fd/*, /proc/*/root): the name must be a real path. O_NONBLOCK: a FIFO never blocks.
    fd = openat2(AT_FDCWD, file, fs.constants.O_RDONLY | fs.constants.O_NOCTTY | fs.constants.O_NONBLOCK | O_CLOEXEC, RESOLVE.NO_MAGICLINKS);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    if (code === 'ELOOP' || code === 'EXDEV') throw refuse(what, file, 'the path goes through a /proc magic link');
    throw driverError(VG_ERR_STORAGE_FAILED, `cannot open ${what} '${file}': ${code}`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw refuse(what, file, 'not a regular file');
    if ((st.mode & 0o004) === 0) throw refuse(what, file, 'not readable by every host user (the guest would get a private file)');
    return memfdFromFd(fd, what, file);
  } finally {
    fs.closeSync(fd);
  }
}

// A sealed memfd copy of an already-checked descriptor (e.g. a pool volume from openPoolDisk); `fd` stays open.
export function memfdFromFd(fd: number, what: 'kernel' | 'initrd', file: string): number {
  const st = fs.fstatSync(fd);
  if (!st.isFile()) throw refuse(what, file, 'not a regular file');
  if (st.size === 0) throw refuse(what, file, 'the file is empty');
  if (st.size > BOOT_FILE_MAX) throw refuse(what, file, `${st.size} bytes, more than ${BOOT_FILE_MAX}`);
  const mfd = memfdCreate(`virtgate-${what}`, MFD.CLOEXEC | MFD.ALLOW_SEALING);
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    let pos = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, 0, CHUNK, pos);
      if (n === 0) break;
      pos += n;
      // The file may grow while copied: the cap holds for what is copied, not for what fstat said.
      if (pos > BOOT_FILE_MAX) throw refuse(what, file, `more than ${BOOT_FILE_MAX} bytes`);
      let off = 0;
      while (off < n) off += fs.writeSync(mfd, buf, off, n - off, pos - n + off);
    }
    if (pos === 0) throw refuse(what, file, 'the file is empty');
    addSeals(mfd, BOOT_SEALS);
    return mfd;
  } catch (e) {
    fs.closeSync(mfd);
    throw e;
  }
}
