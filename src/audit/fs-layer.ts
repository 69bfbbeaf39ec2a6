// SPDX-License-Identifier: Apache-2.0
// The file operations the audit appender uses, as an injectable layer so tests can count syncs and inject ENOSPC/EIO.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';

export interface FileId {
  dev: number;
  ino: number;
  size: number;
}

export interface AuditFs {
  open(path: string, flags: number, mode: number): Promise<number>;
  read(fd: number, buf: Buffer, position: number): Promise<number>;
  write(fd: number, buf: Buffer, position: number): Promise<number>; // may write fewer bytes
  fdatasync(fd: number): Promise<void>;
  ftruncate(fd: number, len: number): Promise<void>;
  fstat(fd: number): Promise<FileId>;
  stat(path: string): Promise<FileId>; // rejects with ENOENT when the path is gone
  close(fd: number): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  fsyncDir(dir: string): Promise<void>;
}

const pRead = promisify(fs.read);
const pFdatasync = promisify(fs.fdatasync);
const pFsync = promisify(fs.fsync);
const pFstat = promisify(fs.fstat);
const pOpen = promisify(fs.open);
const pClose = promisify(fs.close);

const id = (s: fs.Stats): FileId => ({ dev: s.dev, ino: s.ino, size: s.size });

// The calls of every group commit other than fdatasync (the append, the anchor, the stat that checks the path still
// names our file, a cut-back) run inline: they reach the page cache in microseconds, and a thread-pool round trip
// costs more than that (a wakeup and an event-loop turn each, four per commit). fdatasync, which waits for the
// device, stays off the loop. (async: a throw still arrives as a rejection.)
export const nodeFs: AuditFs = {
  open: (p, flags, mode) => pOpen(p, flags, mode),
  read: async (fd, buf, position) => (await pRead(fd, buf, 0, buf.length, position)).bytesRead,
  write: async (fd, buf, position) => fs.writeSync(fd, buf, 0, buf.length, position),
  fdatasync: (fd) => pFdatasync(fd),
  ftruncate: async (fd, len) => fs.ftruncateSync(fd, len),
  fstat: async (fd) => id(await pFstat(fd)),
  stat: async (p) => id(fs.statSync(p)),
  close: (fd) => pClose(fd),
  rename: (a, b) => fs.promises.rename(a, b),
  fsyncDir: async (dir) => {
    const fd = await pOpen(dir, fs.constants.O_RDONLY, 0);
    try {
      await pFsync(fd);
    } finally {
      await pClose(fd);
    }
  },
};

// Writes all of buf at position, looping over short writes.
export async function writeAll(afs: AuditFs, fd: number, buf: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const n = await afs.write(fd, off === 0 ? buf : buf.subarray(off), position + off);
    if (n <= 0) throw Object.assign(new Error('write returned 0 bytes'), { code: 'EIO' });
    off += n;
  }
}

const CHUNK = 64 * 1024;

// The last newline-terminated line before `end` (without its newline) and where it starts; null if none.
export async function lastLine(afs: AuditFs, fd: number, end: number): Promise<{ line: string; start: number } | null> {
  if (end <= 0) return null;
  const parts: Buffer[] = [];
  let pos = end - 1; // the byte at end-1 is the newline of the line we want
  for (;;) {
    const from = Math.max(0, pos - CHUNK);
    const buf = Buffer.alloc(pos - from);
    if (buf.length) await afs.read(fd, buf, from);
    const nl = buf.lastIndexOf(0x0a);
    if (nl >= 0) {
      parts.unshift(buf.subarray(nl + 1));
      return { line: Buffer.concat(parts).toString('utf8'), start: from + nl + 1 };
    }
    parts.unshift(buf);
    if (from === 0) return { line: Buffer.concat(parts).toString('utf8'), start: 0 };
    pos = from;
  }
}

// Offset just after the last newline before `size` (0 if none): everything after it is a torn line.
export async function lastNewlineEnd(afs: AuditFs, fd: number, size: number): Promise<number> {
  let pos = size;
  while (pos > 0) {
    const from = Math.max(0, pos - CHUNK);
    const buf = Buffer.alloc(pos - from);
    await afs.read(fd, buf, from);
    const nl = buf.lastIndexOf(0x0a);
    if (nl >= 0) return from + nl + 1;
    pos = from;
  }
  return 0;
}

export async function firstLine(afs: AuditFs, fd: number, size: number): Promise<string | null> {
  let pos = 0;
  const parts: Buffer[] = [];
  while (pos < size) {
    const buf = Buffer.alloc(Math.min(CHUNK, size - pos));
    await afs.read(fd, buf, pos);
    const nl = buf.indexOf(0x0a);
    if (nl >= 0) {
      parts.push(buf.subarray(0, nl));
      return Buffer.concat(parts).toString('utf8');
    }
    parts.push(buf);
    pos += buf.length;
  }
  return null;
}

// Rotated files are FILE.<seq of their first record, 12 digits>, so they sort in chain order before FILE itself.
export function rotatedName(file: string, firstSeq: number): string {
  return `${file}.${String(firstSeq).padStart(12, '0')}`;
}

// FILE's rotated predecessors (oldest first), then FILE if it exists.
export function logFiles(file: string): string[] {
  const dir = path.dirname(file);
  const base = path.basename(file);
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const rotated = names.filter((n) => n.startsWith(base + '.') && /^\d{12}$/.test(n.slice(base.length + 1))).sort();
  const out = rotated.map((n) => path.join(dir, n));
  if (names.includes(base)) out.push(file);
  return out;
}

// Whole lines of a file, read in 1 MiB chunks (constant memory); `torn` gets the bytes after the last newline.
export function* readLines(file: string, torn?: (tail: string) => void): Generator<string> {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(1024 * 1024);
    let carry = Buffer.alloc(0);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      let chunk = buf.subarray(0, n);
      if (carry.length) chunk = Buffer.concat([carry, chunk]);
      let from = 0;
      for (;;) {
        const nl = chunk.indexOf(0x0a, from);
        if (nl < 0) break;
        yield chunk.toString('utf8', from, nl);
        from = nl + 1;
      }
      carry = Buffer.from(chunk.subarray(from));
    }
    if (carry.length && torn) torn(carry.toString('utf8'));
  } finally {
    fs.closeSync(fd);
  }
}
