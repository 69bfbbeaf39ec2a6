// SPDX-License-Identifier: Apache-2.0
// Save images and core dumps at a client-named path (helper side): where a session may point the root helper, and
// the file format.
//
// Where: a host admin's session (no tenant) may use any absolute path, as libvirtd's root can; a tenant's session only
// files directly in STATE/saves/TENANT/ (created 0700 by the helper; no subdirectories). The IPC decoder has already
// refused relative and non-normalised paths, NUL and overlong ones.
// Writes never replace an existing file: O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600 (libvirt's test driver truncates with
// O_TRUNC; a root helper that truncates whatever a client names could destroy /etc/shadow on a typo, and a planted
// link or hard link in a tenant's directory could redirect it). A failed write removes the file it created.
// Reads take a regular file only (checked before opening, and again on the descriptor), opened with
// O_NOFOLLOW|O_NONBLOCK, at most IMAGE_MAX bytes.
// Format (ours, never XML): the line `virtgate-save-image 1`, then one line of JSON { state, def } where def is
// domainDefToJson's; read back through domainDefFromJson, which re-runs every check of the IPC codec.
import * as fs from 'node:fs';
import { dirname, join } from 'node:path';
import { VG_ERR_DOMAIN_INTERNAL, VG_ERR_RESOURCE_DENIED, VG_ERR_SAVE_IMAGE } from '../../common/errors';
import { isTenantName } from '../../common/names';
import { type DomainDef, domainDefFromJson, domainDefToJson } from '../../ipc/objects/domain-def';
import { savePathProblem } from '../../ipc/objects/save-image';
import { driverError } from './driver';

export const SAVE_MAGIC = 'virtgate-save-image 1\n';
// What libvirt's test driver writes as a guest's core dump: TEST_SAVE_MAGIC with its NUL (there is no guest memory).
export const DUMP_CONTENT = Buffer.from('TestGuestMagic\0', 'latin1');
export const IMAGE_MAX = 4 * 1024 * 1024; // a definition's JSON is at most a few times its 256 KiB of XML

export interface SaveImage {
  def: DomainDef;
  state: 'running' | 'paused'; // what the domain was doing when saved (restore runs it, as libvirt's test driver)
}

const { O_WRONLY, O_RDONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = fs.constants;

// strerror text as libvirt's virReportSystemError appends it.
const STRERROR: Record<string, string> = {
  ENOENT: 'No such file or directory',
  EEXIST: 'File exists',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  ENOSPC: 'No space left on device',
  EDQUOT: 'Disk quota exceeded',
  EISDIR: 'Is a directory',
  ENOTDIR: 'Not a directory',
  ELOOP: 'Too many levels of symbolic links',
  EROFS: 'Read-only file system',
  EIO: 'Input/output error',
  EFBIG: 'File too large',
  ENAMETOOLONG: 'File name too long',
};
const strerror = (e: unknown): string => {
  const code = (e as NodeJS.ErrnoException).code ?? '';
  return STRERROR[code] ?? code ?? 'error';
};

export class SaveImages {
  constructor(private readonly root: string) {} // STATE/saves

  // The directory a tenant's images live in (documented in README).
  dirOf(tenant: string): string {
    return join(this.root, tenant);
  }

  // Refuses a path outside the session's reach; for a tenant, makes sure its directory exists (0700, ours).
  #allow(path: string, tenant: string): void {
    const why = savePathProblem(path); // the decoder checked already; a driver call from elsewhere must not skip it
    if (why) throw driverError(VG_ERR_RESOURCE_DENIED, `save image path ${why}`);
    if (tenant === '') return;
    if (!isTenantName(tenant)) throw driverError(VG_ERR_RESOURCE_DENIED, 'tenant name is malformed');
    const dir = this.dirOf(tenant);
    if (dirname(path) !== dir)
      throw driverError(VG_ERR_RESOURCE_DENIED, `tenant '${tenant}' may save to and restore from files directly in ${dir}/ only, not '${path}'`);
    fs.mkdirSync(this.root, { recursive: true, mode: 0o700 });
    try {
      fs.mkdirSync(dir, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const st = fs.lstatSync(dir);
    if (!st.isDirectory() || (typeof process.getuid === 'function' && st.uid !== process.getuid()))
      throw driverError(VG_ERR_RESOURCE_DENIED, `${dir} is not the helper's own directory`);
  }

  // A new file holding the image; fsync'd before the answer. Throws libvirt's "open failed" / "write failed" text.
  write(path: string, tenant: string, image: SaveImage): void {
    const data = Buffer.from(`${SAVE_MAGIC}${JSON.stringify({ state: image.state, def: JSON.parse(domainDefToJson(image.def)) as object })}\n`);
    this.#create(path, tenant, data, (what, e) => `saving domain '${image.def.name}' to '${path}': ${what} failed: ${strerror(e)}`);
  }

  // A core dump of the test driver's guest: its magic bytes only (testDomainCoreDumpWithFormat), under the same rules.
  dump(path: string, tenant: string, name: string): void {
    this.#create(path, tenant, DUMP_CONTENT, (what, e) =>
      what === 'open'
        ? `domain '${name}' coredump: failed to open ${path}: ${strerror(e)}`
        : `domain '${name}' coredump: write failed: ${path}: ${strerror(e)}`,
    );
  }

  #create(path: string, tenant: string, data: Buffer, message: (what: 'open' | 'write', e: unknown) => string): void {
    this.#allow(path, tenant);
    let fd: number;
    try {
      fd = fs.openSync(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    } catch (e) {
      throw driverError(VG_ERR_SAVE_IMAGE, message('open', e));
    }
    try {
      let off = 0;
      while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off);
      fs.fsyncSync(fd);
    } catch (e) {
      fs.closeSync(fd);
      this.remove(path);
      throw driverError(VG_ERR_SAVE_IMAGE, message('write', e));
    }
    fs.closeSync(fd);
  }

  // Replaces an existing image (save-image-define): a new file next to it, then rename over it.
  replace(path: string, tenant: string, image: SaveImage): void {
    this.read(path, tenant); // must be an image now: a regular file the session may read, in our format
    const tmp = `${path}.vgtmp-${process.pid}-${Date.now()}`;
    if (Buffer.byteLength(tmp) > 4096) throw driverError(VG_ERR_SAVE_IMAGE, `saving domain '${image.def.name}' to '${path}': open failed: File name too long`);
    this.write(tmp, tenant, image);
    try {
      fs.renameSync(tmp, path);
    } catch (e) {
      this.remove(tmp);
      throw driverError(VG_ERR_SAVE_IMAGE, `saving domain '${image.def.name}' to '${path}': write failed: ${strerror(e)}`);
    }
  }

  // Only ever a file this helper has just created.
  remove(path: string): void {
    try {
      fs.unlinkSync(path);
    } catch {
      // already gone: nothing to undo
    }
  }

  read(path: string, tenant: string): SaveImage {
    this.#allow(path, tenant);
    const cannot = (e: unknown) => driverError(VG_ERR_SAVE_IMAGE, `cannot read domain image '${path}': ${strerror(e)}`);
    const notFile = () => driverError(VG_ERR_SAVE_IMAGE, `cannot read domain image '${path}': not a regular file`);
    // Looked at before it is opened: opening a device can act (a watchdog, a tape); then checked again on the fd.
    let seen: fs.Stats;
    try {
      seen = fs.lstatSync(path);
    } catch (e) {
      throw cannot(e);
    }
    if (seen.isDirectory()) throw cannot({ code: 'EISDIR' });
    if (seen.isSymbolicLink()) throw cannot({ code: 'ELOOP' }); // what O_NOFOLLOW answers
    if (!seen.isFile()) throw notFile();
    let fd: number;
    try {
      fd = fs.openSync(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    } catch (e) {
      throw cannot(e);
    }
    let buf: Buffer;
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile() || st.ino !== seen.ino || st.dev !== seen.dev) throw notFile(); // swapped in between
      if (st.size > IMAGE_MAX) throw cannot({ code: 'EFBIG' });
      buf = Buffer.alloc(st.size);
      let off = 0;
      while (off < buf.length) {
        const n = fs.readSync(fd, buf, off, buf.length - off, off);
        if (n === 0) break;
        off += n;
      }
      buf = buf.subarray(0, off);
    } catch (e) {
      if (e instanceof Error && 'detail' in e) throw e;
      throw cannot(e);
    } finally {
      fs.closeSync(fd);
    }
    return parseImage(buf, path);
  }
}

// Our own format, but from a file anyone with root (or a host admin's save) may have written: checked in full.
export function parseImage(buf: Buffer, path: string): SaveImage {
  const magic = Buffer.from(SAVE_MAGIC);
  if (buf.length < magic.length) throw driverError(VG_ERR_SAVE_IMAGE, `incomplete save header in '${path}'`);
  if (!buf.subarray(0, magic.length).equals(magic)) throw driverError(VG_ERR_DOMAIN_INTERNAL, 'mismatched header magic');
  const body = buf.subarray(magic.length).toString('utf8');
  if (!body.endsWith('\n')) throw driverError(VG_ERR_SAVE_IMAGE, `incomplete metadata in '${path}'`);
  try {
    const o = JSON.parse(body) as { state?: unknown; def?: unknown };
    if (o.state !== 'running' && o.state !== 'paused') throw new Error('bad state');
    if (typeof o.def !== 'object' || o.def === null || Array.isArray(o.def)) throw new Error('no definition');
    return { state: o.state, def: domainDefFromJson(o.def as Record<string, unknown>) };
  } catch (e) {
    const why = e instanceof Error && 'detail' in e ? String((e as { detail: unknown }).detail) : (e as Error).message;
    throw driverError(VG_ERR_DOMAIN_INTERNAL, `save image '${path}' is corrupt: ${why}`);
  }
}
