// SPDX-License-Identifier: Apache-2.0
// Disk confinement, second layer (helper side): opens a pool volume and its whole backing chain as descriptors for
// QEMU, which gets no host path at all. Rules (docs/disks.md):
//   path   a plain file name in a pool directory the helper knows (root-owned, not group/world writable);
//   open   openat2 BENEATH|NO_SYMLINKS|NO_MAGICLINKS|NO_XDEV; a regular file, owned by root, one link, on the pool
//          directory's filesystem (checked on an O_PATH descriptor first, so a FIFO or device is never opened, and
//          again on the real one);
//   format declared, never probed: a raw file with the qcow2 magic is refused; a qcow2 header is parsed: no external
//          data file, no encryption, a backing file only as a plain name in the same pool (or, from a base pool, as
//          that base pool's absolute path + a plain name), its format declared raw or qcow2, at most MAX_CHAIN
//          images, no loops; every backing layer read-only, each its own descriptor.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { VG_ERR_RESOURCE_DENIED, VG_ERR_STORAGE_FAILED } from '../../common/errors';
import { O_CLOEXEC, O_PATH, RESOLVE, getStatusFlags, openat2, setStatusFlags } from '../../sandbox/files';
import { DriverError, driverError } from '../drivers/driver';
import { INCOMPAT, Qcow2FormatError, looksLikeQcow2, parseQcow2Header } from './qcow2';

export interface DiskLayer {
  fd: number;
  format: 'raw' | 'qcow2';
  readOnly: boolean;
  name: string; // the file's full path, for messages
}

export interface PoolDiskRequest {
  poolDir: string;
  name: string;
  format: 'raw' | 'qcow2';
  readOnly: boolean;
  basePools: string[]; // shared pools a backing file may live in (opened read-only)
}

export const MAX_CHAIN = 8; // images in one chain, the top included
const NAME_MAX = 255; // bytes, the filesystem's own limit
const HEAD_READ = 4096; // enough for any header's fixed part; the rest of the first cluster is read when needed
const FIRST_CLUSTER_MAX = 2 * 1024 * 1024; // the largest cluster QEMU accepts (cluster_bits 21)

// The rule names every refusal carries, so a message says which line of docs/disks.md refused it.
export const RULE = {
  NAME: 'plain name',
  POOL: 'pool directory',
  BENEATH: 'beneath the pool',
  SYMLINK: 'no symlinks',
  XDEV: 'same filesystem',
  REGULAR: 'regular file',
  OWNER: 'owned by root',
  LINKS: 'one link',
  FORMAT: 'declared format',
  HEADER: 'qcow2 header',
  BACKING: 'backing file in the pool',
  DATA_FILE: 'no external data file',
  ENCRYPTION: 'no encryption',
  DEPTH: 'chain depth',
  LOOP: 'no loops',
  BASE: 'base pools read-only',
} as const;

const { O_RDONLY, O_RDWR, O_NOCTTY, O_NONBLOCK, O_DIRECTORY, O_NOFOLLOW, O_CREAT, O_EXCL } = fs.constants;
const RESOLVE_POOL = RESOLVE.BENEATH | RESOLVE.NO_SYMLINKS | RESOLVE.NO_MAGICLINKS | RESOLVE.NO_XDEV;

const refuse = (file: string, rule: string, why: string): DriverError => driverError(VG_ERR_RESOURCE_DENIED, `disk '${file}' refused (rule: ${rule}): ${why}`);

// A plain file name, or why not.
export function plainNameProblem(name: string): string | null {
  if (name === '') return 'the name is empty';
  if (name === '.' || name === '..') return `'${name}' is not a file name`;
  if (name.includes('/')) return 'the name contains /';
  if (name.includes('\0')) return 'the name contains NUL';
  if (Buffer.byteLength(name, 'utf8') > NAME_MAX) return `the name is longer than ${NAME_MAX} bytes`;
  if (/[\x00-\x1f\x7f]/.test(name)) return 'the name contains a control character';
  return null;
}

interface Pool {
  dir: string; // as given, resolved
  fd: number; // O_DIRECTORY descriptor
  dev: bigint;
}

export function openPoolDisk(o: PoolDiskRequest): DiskLayer[] {
  const pools = new Map<string, Pool>();
  const layers: DiskLayer[] = [];
  const seen = new Set<string>(); // dev:ino of every layer, for loops
  try {
    let req: { dir: string; name: string; format: 'raw' | 'qcow2'; readOnly: boolean; base: boolean } = {
      dir: path.resolve(o.poolDir),
      name: o.name,
      format: o.format,
      readOnly: o.readOnly,
      base: false,
    };
    const bases = new Set(o.basePools.map((b) => path.resolve(b)));
    req.base = bases.has(req.dir);
    for (;;) {
      const file = path.join(req.dir, req.name);
      const display = plainNameProblem(req.name) === null ? file : `${req.dir}/${JSON.stringify(req.name)}`;
      if (layers.length >= MAX_CHAIN) throw refuse(display, RULE.DEPTH, `the backing chain holds more than ${MAX_CHAIN} images`);
      const why = plainNameProblem(req.name);
      if (why) throw refuse(display, RULE.NAME, why);
      let pool = pools.get(req.dir);
      if (!pool) {
        pool = openPool(req.dir, display);
        pools.set(req.dir, pool);
      }
      if (req.base && !req.readOnly) throw refuse(file, RULE.BASE, 'an image in a base pool is opened read-only only');
      const { fd, st } = openInPool(pool, req.name, req.readOnly, file);
      layers.push({ fd, format: req.format, readOnly: req.readOnly, name: file });
      const id = `${st.dev}:${st.ino}`;
      if (seen.has(id)) throw refuse(file, RULE.LOOP, 'the backing chain comes back to an image already in it');
      seen.add(id);

      const head = readHead(fd, Number(st.size), HEAD_READ, file);
      if (req.format === 'raw') {
        if (looksLikeQcow2(head)) throw refuse(file, RULE.FORMAT, 'declared raw but starts with the qcow2 magic (formats are declared, never probed)');
        break;
      }
      const h = parseHeader(fd, Number(st.size), head, file);
      if (h.externalDataFile !== null || (h.incompatible & INCOMPAT.EXTERNAL_DATA_FILE) !== 0n)
        throw refuse(file, RULE.DATA_FILE, `the image names an external data file${h.externalDataFile === null ? '' : ` '${h.externalDataFile}'`}`);
      if (h.cryptMethod !== 0) throw refuse(file, RULE.ENCRYPTION, `encryption method ${h.cryptMethod} is not supported`);
      if ((h.incompatible & INCOMPAT.CORRUPT) !== 0n) throw refuse(file, RULE.HEADER, 'the image is marked corrupt (repair it with qemu-img check -r)');
      if (h.backingFile === null) break;
      const next = backingTarget(h.backingFile, h.backingFormat, req.dir, bases, file);
      req = { ...next, readOnly: true };
    }
    return layers;
  } catch (e) {
    for (const l of layers) closeQuietly(l.fd);
    throw e instanceof DriverError ? e : driverError(VG_ERR_STORAGE_FAILED, `cannot open disk '${o.poolDir}/${o.name}': ${(e as Error).message}`);
  } finally {
    for (const p of pools.values()) closeQuietly(p.fd);
  }
}

// The QEMU arguments for one opened chain, in the form tested against QEMU 7.2 (test/unit/qemu/disk-qemu.test.ts):
// each layer its own fdset (`-add-fd`), a `file` node on `/dev/fdset/N` and a format node, deepest layer first, each
// qcow2 naming the next layer as "backing" and the last "backing": null, so QEMU never opens a file by name.
// `fd`: the descriptor number layers[0] has in QEMU (layers follow in order); `fdset`: the first fdset id to use;
// `node`: a prefix for node names (a letter, then up to 20 of [A-Za-z0-9_-]).
export function blockdevArgs(layers: readonly DiskLayer[], o: { fd: number; fdset: number; node: string }): { args: string[]; top: string } {
  if (!/^[A-Za-z][A-Za-z0-9_-]{0,20}$/.test(o.node)) throw new RangeError(`node prefix '${o.node}'`);
  if (layers.length === 0) throw new RangeError('no layers');
  const args: string[] = [];
  const fmt = (i: number): string => `${o.node}-l${i}`;
  for (let i = layers.length - 1; i >= 0; i--) {
    const l = layers[i];
    const file = `${o.node}-f${i}`;
    args.push('-add-fd', `fd=${o.fd + i},set=${o.fdset + i}`);
    args.push('-blockdev', JSON.stringify({ driver: 'file', filename: `/dev/fdset/${o.fdset + i}`, 'node-name': file, 'read-only': l.readOnly }));
    const f: Record<string, unknown> = { driver: l.format, file, 'node-name': fmt(i), 'read-only': l.readOnly };
    if (l.format === 'qcow2') f.backing = i + 1 < layers.length ? fmt(i + 1) : null;
    args.push('-blockdev', JSON.stringify(f));
  }
  return { args, top: fmt(0) };
}

// One file of a pool with the open checks (no format rules): what a pool driver lists, sizes and deletes. The
// caller closes `fd`.
export function openPoolFile(poolDir: string, name: string, readOnly: boolean): { fd: number; st: fs.BigIntStats } {
  const file = path.join(poolDir, name);
  const why = plainNameProblem(name);
  if (why) throw refuse(`${poolDir}/${JSON.stringify(name)}`, RULE.NAME, why);
  const pool = openPool(path.resolve(poolDir), file);
  try {
    return openInPool(pool, name, readOnly, file);
  } finally {
    closeQuietly(pool.fd);
  }
}

// A new, empty volume file (root, 0600) in a pool: O_CREAT|O_EXCL under the same openat2 rules, so neither an existing
// file nor a planted symlink is ever written through. The caller closes `fd`.
export function createPoolFile(poolDir: string, name: string): number {
  const file = path.join(poolDir, name);
  const why = plainNameProblem(name);
  if (why) throw refuse(`${poolDir}/${JSON.stringify(name)}`, RULE.NAME, why);
  const pool = openPool(path.resolve(poolDir), file);
  try {
    // 0600 masked by the umask is 0600 or less: no fchmod (Node's permission model refuses fd-based chmod anyway).
    return openat2(pool.fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, RESOLVE_POOL, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw driverError(VG_ERR_STORAGE_FAILED, `storage vol already exists: '${file}'`);
    if (e instanceof DriverError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw refuse(file, RULE.SYMLINK, 'the name is a symbolic link');
    if (code === 'EXDEV') throw refuse(file, RULE.XDEV, 'the name crosses a mount point');
    throw driverError(VG_ERR_STORAGE_FAILED, `cannot create '${file}': ${code ?? (e as Error).message}`);
  } finally {
    closeQuietly(pool.fd);
  }
}

// The pool directory rules alone (root-owned, not group/world writable), for a pool driver's start and refresh.
export function checkPoolDir(dir: string): void {
  closeQuietly(openPool(path.resolve(dir), dir).fd);
}

// Where a backing name may point: a plain name in the image's own pool, or an absolute path whose directory is exactly
// a base pool (images in a base pool name their own backing files by plain name too, as qemu-img writes them).
function backingTarget(
  backing: string,
  format: string | null,
  dir: string,
  bases: Set<string>,
  file: string,
): { dir: string; name: string; format: 'raw' | 'qcow2'; base: boolean } {
  const shown = JSON.stringify(backing);
  if (backing.includes(':'))
    // json:{...}, nbd:, file:, http: ... (QEMU parses a colon as a protocol prefix)
    throw refuse(file, RULE.BACKING, `backing file ${shown} is a protocol or json: name, not a file in the pool`);
  if (format === null) throw refuse(file, RULE.FORMAT, `backing file ${shown} has no declared format (write it with qemu-img -F)`);
  if (format !== 'raw' && format !== 'qcow2') throw refuse(file, RULE.FORMAT, `backing format '${format}' is not raw or qcow2`);
  if (backing.startsWith('/')) {
    const d = path.dirname(backing);
    const n = path.basename(backing);
    if (path.normalize(backing) === backing && bases.has(d) && plainNameProblem(n) === null) return { dir: d, name: n, format, base: true };
    throw refuse(file, RULE.BACKING, `backing file ${shown} is neither a plain name in the image's pool nor a file directly in a base pool`);
  }
  const why = plainNameProblem(backing);
  if (why) throw refuse(file, RULE.BACKING, `backing file ${shown}: ${why}; only a plain name in the image's own pool is allowed`);
  return { dir, name: backing, format, base: bases.has(dir) };
}

function openPool(dir: string, file: string): Pool {
  let fd: number;
  try {
    fd = fs.openSync(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC); // the directory itself is no symlink
  } catch (e) {
    throw refuse(file, RULE.POOL, `cannot open the pool directory: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const st = fs.fstatSync(fd, { bigint: true }); // exact st_dev and st_ino: 64-bit values lose bits as numbers
  if (st.uid !== 0n || (st.mode & 0o022n) !== 0n) {
    closeQuietly(fd);
    throw refuse(file, RULE.POOL, `the pool directory ${dir} must be owned by root and not group or world writable`);
  }
  return { dir, fd, dev: st.dev };
}

function openInPool(pool: Pool, name: string, readOnly: boolean, file: string): { fd: number; st: fs.BigIntStats } {
  // First an O_PATH descriptor: fstat without opening, so a FIFO never blocks and a device never sees an open.
  const pfd = tryOpen(pool, name, O_PATH | O_CLOEXEC, file);
  let pst: fs.BigIntStats;
  try {
    pst = fs.fstatSync(pfd, { bigint: true });
    checkStat(pst, pool, file);
  } finally {
    closeQuietly(pfd);
  }
  const fd = tryOpen(pool, name, (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, file);
  try {
    const st = fs.fstatSync(fd, { bigint: true });
    checkStat(st, pool, file);
    if (st.ino !== pst.ino || st.dev !== pst.dev) throw refuse(file, RULE.REGULAR, 'the file was replaced while being opened');
    setStatusFlags(fd, getStatusFlags(fd) & ~O_NONBLOCK);
    return { fd, st };
  } catch (e) {
    closeQuietly(fd);
    throw e;
  }
}

function tryOpen(pool: Pool, name: string, flags: number, file: string): number {
  try {
    return openat2(pool.fd, name, flags, RESOLVE_POOL);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw refuse(file, RULE.SYMLINK, 'the file is a symbolic link');
    if (code === 'EXDEV') throw refuse(file, RULE.XDEV, 'the name crosses a mount point or leaves the pool');
    if (code === 'ENOENT') throw driverError(VG_ERR_STORAGE_FAILED, `cannot open disk '${file}': No such file or directory`);
    throw driverError(VG_ERR_STORAGE_FAILED, `cannot open disk '${file}': ${code ?? (e as Error).message}`);
  }
}

function checkStat(st: fs.BigIntStats, pool: Pool, file: string): void {
  if (!st.isFile()) throw refuse(file, RULE.REGULAR, `not a regular file (${kind(st)})`);
  if (st.uid !== 0n) throw refuse(file, RULE.OWNER, `owned by uid ${st.uid}, not root`);
  if (st.nlink !== 1n) throw refuse(file, RULE.LINKS, `the file has ${st.nlink} links (a hard link could alias a file outside the pool)`);
  if (st.dev !== pool.dev) throw refuse(file, RULE.XDEV, 'the file is on another filesystem than the pool directory');
}

function kind(st: fs.BigIntStats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'unknown type';
}

function readHead(fd: number, size: number, want: number, file: string): Buffer {
  const n = Math.min(size, want);
  const buf = Buffer.alloc(n);
  let got = 0;
  while (got < n) {
    const r = fs.readSync(fd, buf, got, n - got, got);
    if (r === 0) break;
    got += r;
  }
  if (got < n) throw refuse(file, RULE.HEADER, `the file shrank while being read`);
  return buf;
}

function parseHeader(fd: number, size: number, head: Buffer, file: string): ReturnType<typeof parseQcow2Header> {
  try {
    if (!looksLikeQcow2(head)) throw new Qcow2FormatError('no qcow2 magic (declared qcow2)');
    if (head.length >= 24) {
      // The extensions and backing name may sit anywhere in the first cluster: read it whole when it is larger.
      const bits = head.readUInt32BE(20);
      const cluster = bits >= 9 && bits <= 21 ? 2 ** bits : HEAD_READ;
      if (cluster > head.length && size > head.length) head = readHead(fd, size, Math.min(cluster, FIRST_CLUSTER_MAX), file);
    }
    return parseQcow2Header(head);
  } catch (e) {
    if (e instanceof Qcow2FormatError) throw refuse(file, RULE.HEADER, e.why);
    throw e;
  }
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // already closed
  }
}
