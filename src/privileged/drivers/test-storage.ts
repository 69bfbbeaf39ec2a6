// SPDX-License-Identifier: Apache-2.0
// Storage pools and volumes of the test driver (helper side): libvirt's test:///default storage simulated, as its
// test_driver.c does it (capacity and allocation bookkeeping), with tenancy, confined target paths and durable records
// (one per pool and per volume, JSON through the state log). A volume's bytes (upload/download; libvirt's test driver
// has none) live in a sparse file under the helper's state dir, created by the first upload; none reads as zeroes.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  VG_ERR_ACCESS_DENIED,
  VG_ERR_DOMAIN_ARG,
  VG_ERR_DOMAIN_INTERNAL,
  VG_ERR_DOMAIN_STATE,
  VG_ERR_LIMIT,
  VG_ERR_NO_STORAGE_POOL,
  VG_ERR_NOT_SUPPORTED,
  VG_ERR_NO_STORAGE_VOL,
  VG_ERR_STORAGE_FAILED,
} from '../../common/errors';
import { uuidFromString, uuidToString } from '../../common/uuid';
import { XdrReader, XdrWriter } from '../../common/xdr';
import {
  NO_PERMS,
  type PoolConfig,
  type PoolRecord,
  StorageLimits,
  type VolumeChunk,
  type VolumeConfig,
  type VolumeRecord,
  pathWithin,
  poolConfigCodec,
  volumeConfigCodec,
} from '../../ipc/objects/storage';
import { checkTenantName } from '../../ipc/shared';
import { driverError } from './driver';
import { PoolEvent, type StoragePoolDriver } from './storage-driver';

// What the helper gives an object driver (the shape of object-context.ts's ObjectDriverContext).
export interface StorageContext {
  readonly records: {
    load(type: string): Map<string, string>;
    put(type: string, key: string, json: string | null): void; // null deletes; throws before anything changes
  };
  readonly firstStart: boolean;
  warn(msg: string): void;
  emit(ev: { type: 'pool'; name: string; uuid: Buffer; tenant: string; event: number; detail: number }): void;
}

export const POOL_CAPACITY = 100n * 1024n * 1024n * 1024n; // test_driver.c defaultPoolCap: every pool has 100 GiB
// Where pools may live. XXX: a qemu driver takes these from its configuration.
export const DEFAULT_POOL_ROOTS = ['/default-pool', '/var/lib/libvirt', '/var/lib/virtgate', '/srv/virtgate'];
const NOT_AVAILABLE = 'name, uuid or target path is not available';
const Resize = { ALLOCATE: 1, DELTA: 2, SHRINK: 4 } as const;

// test:///default's one pool (test_driver.c defaultPoolXML): shared, running, empty.
const DEFAULT_POOL: PoolConfig = {
  type: 'dir',
  name: 'default-pool',
  uuid: uuidFromString('dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566')!,
  source: { hosts: [], devices: [], dir: '', format: '', protocolVer: '', vendor: '', product: '' },
  targetPath: '/default-pool',
  perms: NO_PERMS,
  cow: '',
};

const SOURCES_LOGICAL = `<sources>
  <source>
    <device path='/dev/sda20'/>
    <name>testvg1</name>
    <format type='lvm2'/>
  </source>
  <source>
    <device path='/dev/sda21'/>
    <name>testvg2</name>
    <format type='lvm2'/>
  </source>
</sources>
`;

interface Vol {
  config: VolumeConfig;
  path: string; // = key
}

// An upload in progress: bytes go to a staging file, the volume changes only at commit. `whole`: the upload covers the
// volume from 0 to its capacity, so the staging file becomes the volume (a rename); else it holds just the range
// [offset, offset + length) and is copied in at commit.
interface Upload {
  requestId: string;
  tenant: string;
  pool: Buffer;
  name: string;
  offset: bigint;
  length: bigint;
  at: bigint; // bytes received (data and holes)
  whole: boolean;
  fd: number;
  staging: string;
  touched: number; // ms: an upload idle for UPLOAD_IDLE_MS is dropped (its front end went away without ending it)
}

const UPLOAD_IDLE_MS = 10 * 60_000;
const HOLE_SCAN_MAX = 16 * 1024 * 1024; // zeroes one read request may scan before it answers (bounds the helper's turn)
const COPY_CHUNK = 1024 * 1024;
const ZEROES = Buffer.alloc(COPY_CHUNK);
const isZero = (b: Buffer): boolean => b.equals(ZEROES.subarray(0, b.length));

interface Pool {
  config: PoolConfig;
  pending: PoolConfig | null; // a redefinition of an active pool, applied when it stops (libvirt's newDef)
  tenant: string;
  active: boolean;
  persistent: boolean;
  autostart: boolean;
  allocation: bigint;
  vols: Map<string, Vol>;
}

const hexUuid = (u: Buffer): string => uuidToString(u);
const volKey = (poolUuid: Buffer, name: string): string =>
  createHash('sha256')
    .update(`${hexUuid(poolUuid)}/${name}`)
    .digest('hex');

// Validate a config by a round trip through the IPC codec: records on disk get the same checks as requests.
function checked<T>(codec: { encode(w: XdrWriter, v: T): void; decode(r: XdrReader): T }, v: T): T {
  const w = new XdrWriter();
  codec.encode(w, v);
  const r = new XdrReader(w.finish());
  const out = codec.decode(r);
  r.ensureConsumed();
  return out;
}

function poolJson(p: Pool): unknown {
  const c = p.config;
  return {
    config: { ...c, uuid: hexUuid(c.uuid) },
    pending: p.pending ? { ...p.pending, uuid: hexUuid(p.pending.uuid) } : null,
    tenant: p.tenant,
    active: p.active,
    persistent: p.persistent,
    autostart: p.autostart,
  };
}

function volJson(pool: Pool, v: Vol): unknown {
  const c = v.config;
  return { pool: hexUuid(pool.config.uuid), config: { ...c, capacity: String(c.capacity), allocation: String(c.allocation) } };
}

function poolFromJson(j: unknown): Pool {
  const o = j as { config: PoolConfig & { uuid: string }; pending: (PoolConfig & { uuid: string }) | null } & Record<string, unknown>;
  const cfg = (c: PoolConfig & { uuid: string }): PoolConfig => checked(poolConfigCodec, { ...c, uuid: uuidFromString(c.uuid) ?? Buffer.alloc(0) });
  if (typeof o.active !== 'boolean' || typeof o.persistent !== 'boolean' || typeof o.autostart !== 'boolean') throw new Error('pool record: bad flags');
  return {
    config: cfg(o.config),
    pending: o.pending ? cfg(o.pending) : null,
    tenant: checkTenantName(String(o.tenant)),
    active: o.active,
    persistent: o.persistent,
    autostart: o.autostart,
    allocation: 0n,
    vols: new Map(),
  };
}

function volFromJson(j: unknown): { pool: string; config: VolumeConfig } {
  const o = j as { pool: string; config: VolumeConfig & { capacity: string; allocation: string } };
  const config = checked(volumeConfigCodec, { ...o.config, capacity: BigInt(o.config.capacity), allocation: BigInt(o.config.allocation) });
  return { pool: String(o.pool), config };
}

// A disk path may be used by `tenant` only when it is a volume of one of its pools or of a shared pool. Pure.
export function diskSourceAllowedIn(pools: Iterable<{ tenant: string; vols: Iterable<{ path: string }> }>, path: string, tenant: string): boolean {
  for (const p of pools) {
    if (p.tenant !== '' && p.tenant !== tenant) continue;
    for (const v of p.vols) if (v.path === path) return true;
  }
  return false;
}

export class TestStorage implements StoragePoolDriver {
  readonly #ctx: StorageContext;
  readonly #roots: readonly string[];
  readonly #pools = new Map<string, Pool>(); // by uuid string
  readonly #dataDir: string | null;
  readonly #uploads = new Map<number, Upload>();
  #nextUpload = 1;

  // dataDir: where volumes' bytes live (null: no volume has bytes; upload and download are refused).
  constructor(ctx: StorageContext, roots: readonly string[] = DEFAULT_POOL_ROOTS, dataDir: string | null = null) {
    this.#ctx = ctx;
    this.#roots = roots;
    this.#dataDir = dataDir;
    this.#load();
    if (dataDir) this.#sweepStaging(dataDir);
  }

  // ---------- pools: reads ----------

  listPools(): PoolRecord[] {
    return [...this.#pools.values()].map(record);
  }

  poolByName(name: string): PoolRecord {
    return record(this.#byName(name));
  }

  poolByUuid(uuid: Buffer): PoolRecord {
    return record(this.#byUuid(uuid));
  }

  // ---------- pools: writes ----------

  definePool(config: PoolConfig, tenant: string): PoolRecord {
    const old = this.#checkClash(config, tenant);
    if (!old) {
      this.#checkLimit();
      const p: Pool = { config, pending: null, tenant, active: false, persistent: true, autostart: false, allocation: 0n, vols: new Map() };
      this.#savePool(p);
      this.#pools.set(hexUuid(config.uuid), p);
      this.#emit(p, PoolEvent.DEFINED);
      return record(p);
    }
    // libvirt (virStoragePoolObjAssignDef): an active pool keeps its config until it stops; a transient one stays so.
    const next: Pool = old.active ? { ...old, pending: config, persistent: true } : { ...old, config, persistent: true };
    this.#savePool(next);
    this.#pools.set(hexUuid(config.uuid), next);
    this.#emit(next, PoolEvent.DEFINED);
    return record(next);
  }

  createPool(config: PoolConfig, tenant: string): PoolRecord {
    const old = this.#checkClash(config, tenant);
    if (old?.active) throw driverError(VG_ERR_DOMAIN_STATE, `pool is already active as '${old.config.name}'`);
    if (!old) this.#checkLimit();
    const next: Pool = old
      ? { ...old, config, active: true }
      : { config, pending: null, tenant, active: true, persistent: false, autostart: false, allocation: 0n, vols: new Map() };
    this.#savePool(next);
    this.#pools.set(hexUuid(config.uuid), next);
    this.#emit(next, PoolEvent.STARTED);
    return record(next);
  }

  buildPool(uuid: Buffer, tenant: string): PoolRecord {
    const p = this.#inactive(this.#owned(uuid, tenant));
    this.#emit(p, PoolEvent.CREATED);
    return record(p);
  }

  startPool(uuid: Buffer, tenant: string): PoolRecord {
    const p = this.#inactive(this.#owned(uuid, tenant));
    const next = { ...p, active: true };
    this.#replace(next);
    this.#emit(next, PoolEvent.STARTED);
    return record(next);
  }

  destroyPool(uuid: Buffer, tenant: string): PoolRecord {
    const p = this.#active(this.#owned(uuid, tenant));
    const next: Pool = { ...p, active: false, config: p.pending ?? p.config, pending: null };
    if (!p.persistent) this.#remove(p);
    else this.#replace(next);
    this.#emit(next, PoolEvent.STOPPED);
    return record(next);
  }

  deletePool(uuid: Buffer, tenant: string): PoolRecord {
    const p = this.#inactive(this.#owned(uuid, tenant));
    this.#emit(p, PoolEvent.DELETED);
    return record(p);
  }

  undefinePool(uuid: Buffer, tenant: string): void {
    const p = this.#inactive(this.#owned(uuid, tenant));
    this.#remove(p);
    this.#emit(p, PoolEvent.UNDEFINED);
  }

  refreshPool(uuid: Buffer, tenant: string): PoolRecord {
    const p = this.#active(this.#owned(uuid, tenant));
    this.#emit(p, PoolEvent.REFRESH);
    return record(p);
  }

  setPoolAutostart(uuid: Buffer, autostart: boolean, tenant: string): PoolRecord {
    const p = this.#owned(uuid, tenant);
    if (!p.persistent) throw driverError(VG_ERR_DOMAIN_ARG, 'pool has no config file');
    const next = { ...p, autostart };
    this.#replace(next);
    return record(next);
  }

  // test_driver.c testConnectFindStoragePoolSources: fixed answers ('dir', enum 0, is libvirt's "unknown type").
  findPoolSources(type: string, host: string): string {
    if (type === 'dir') throw driverError(VG_ERR_DOMAIN_INTERNAL, `unknown storage pool type ${type}`);
    if (type === 'logical') return SOURCES_LOGICAL;
    if (type === 'netfs') {
      if (host === '') throw driverError(VG_ERR_DOMAIN_ARG, 'hostname must be specified for netfs sources');
      return `<sources>\n  <source>\n    <host name='${host}'/>\n    <dir path='/testshare'/>\n    <format type='nfs'/>\n  </source>\n</sources>\n`;
    }
    throw driverError(VG_ERR_NOT_SUPPORTED, `pool type '${type}' does not support source discovery`);
  }

  // ---------- volumes ----------

  listVolumes(pool: Buffer): VolumeRecord[] {
    const p = this.#active(this.#byUuid(pool));
    return [...p.vols.values()].map((v) => volRecord(p, v));
  }

  volumeByName(pool: Buffer, name: string): VolumeRecord {
    const p = this.#active(this.#byUuid(pool));
    return volRecord(p, this.#vol(p, name));
  }

  volumeByKey(key: string): VolumeRecord {
    return this.#find(key) ?? notFoundVol(`no storage vol with matching key '${key}'`);
  }

  volumeByPath(path: string): VolumeRecord {
    return this.#find(path) ?? notFoundVol(`no storage vol with matching path '${path}'`);
  }

  createVolume(pool: Buffer, config: VolumeConfig, tenant: string): VolumeRecord {
    const p = this.#active(this.#owned(pool, tenant));
    return this.#addVolume(p, config);
  }

  cloneVolume(pool: Buffer, config: VolumeConfig, fromPool: Buffer, from: string, tenant: string): VolumeRecord {
    const p = this.#active(this.#owned(pool, tenant));
    if (p.vols.has(config.name)) throw driverError(VG_ERR_STORAGE_FAILED, 'storage vol already exists');
    // The source is read, not changed: the tenant's own pool or a shared one.
    const src = this.#active(this.#usable(fromPool, tenant));
    this.#vol(src, from);
    return this.#addVolume(p, config);
  }

  deleteVolume(pool: Buffer, name: string, tenant: string): void {
    const p = this.#active(this.#owned(pool, tenant));
    const v = this.#vol(p, name);
    this.#ctx.records.put('volume', volKey(p.config.uuid, name), null);
    p.vols.delete(name);
    p.allocation -= v.config.allocation;
    if (this.#dataDir) fs.rmSync(this.#dataFile(p, name), { force: true });
  }

  // Not in libvirt's test driver; the rules of its storage driver (storageVolResize).
  resizeVolume(pool: Buffer, name: string, capacity: bigint, flags: number, tenant: string): VolumeRecord {
    const p = this.#active(this.#owned(pool, tenant));
    const v = this.#vol(p, name);
    const cur = v.config;
    const want = flags & Resize.DELTA ? cur.capacity + capacity : capacity;
    if (want > StorageLimits.SIZE_MAX) throw driverError(VG_ERR_DOMAIN_ARG, 'capacity too large');
    if (want < cur.capacity && !(flags & Resize.SHRINK))
      throw driverError(VG_ERR_DOMAIN_ARG, "Can't shrink capacity below current capacity unless shrink flag explicitly specified");
    if (want < cur.allocation) throw driverError(VG_ERR_DOMAIN_ARG, "Can't shrink capacity below current allocation");
    const allocation = flags & Resize.ALLOCATE ? (want > cur.allocation ? want : cur.allocation) : cur.allocation;
    if (allocation - cur.allocation > POOL_CAPACITY - p.allocation) throw driverError(VG_ERR_STORAGE_FAILED, 'Not enough space left in storage pool');
    const next: Vol = { ...v, config: { ...cur, capacity: want, allocation } };
    this.#ctx.records.put('volume', volKey(p.config.uuid, name), JSON.stringify(volJson(p, next)));
    p.vols.set(name, next);
    p.allocation += allocation - cur.allocation;
    return volRecord(p, next);
  }

  // Nothing to overwrite in a simulation; the checks are the real driver's.
  wipeVolume(pool: Buffer, name: string, tenant: string): VolumeRecord {
    const p = this.#active(this.#owned(pool, tenant));
    return volRecord(p, this.#vol(p, name));
  }

  // ---------- volume bytes ----------

  // One chunk of a volume for a download: data at `offset` (at most CHUNK_MAX bytes, within `length`), or, when
  // `sparse`, the run of zeroes starting there (bounded by `length` and HOLE_SCAN_MAX) as a hole.
  readVolume(pool: Buffer, name: string, offset: bigint, length: bigint, sparse: boolean): VolumeChunk {
    const p = this.#active(this.#byUuid(pool));
    const v = this.#vol(p, name);
    const cap = v.config.capacity;
    if (length === 0n || offset + length > cap) throw driverError(VG_ERR_DOMAIN_ARG, `range ${offset}+${length} is outside the volume's ${cap} bytes`);
    const file = this.#dataFile(p, name);
    let size = 0n;
    let fd = -1;
    try {
      fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      size = BigInt(fs.fstatSync(fd).size);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw driverError(VG_ERR_STORAGE_FAILED, `cannot read volume '${name}'`);
    }
    try {
      const readAt = (at: bigint, n: number): Buffer => {
        const buf = Buffer.alloc(n); // past the file's end: zeroes, as for a volume without bytes
        if (fd >= 0 && at < size) fs.readSync(fd, buf, 0, Number(size - at < BigInt(n) ? size - at : BigInt(n)), Number(at));
        return buf;
      };
      const first = Number(length < BigInt(StorageLimits.CHUNK_MAX) ? length : BigInt(StorageLimits.CHUNK_MAX));
      const data = readAt(offset, first);
      if (!sparse || !isZero(data)) return { data, hole: 0n };
      // A hole: past the file's end at once, else chunk by chunk while the bytes are zero.
      const end = offset + length;
      let at = offset + BigInt(first);
      const scanEnd = offset + BigInt(HOLE_SCAN_MAX) < end ? offset + BigInt(HOLE_SCAN_MAX) : end;
      while (at < scanEnd) {
        if (at >= size) return { data: Buffer.alloc(0), hole: end - offset };
        const n = Number(scanEnd - at < BigInt(COPY_CHUNK) ? scanEnd - at : BigInt(COPY_CHUNK));
        const next = readAt(at, n);
        if (!isZero(next)) {
          let z = 0;
          while (z < next.length && next[z] === 0) z++;
          return { data: Buffer.alloc(0), hole: at + BigInt(z) - offset };
        }
        at += BigInt(n);
      }
      return { data: Buffer.alloc(0), hole: at - offset };
    } finally {
      if (fd >= 0) fs.closeSync(fd);
    }
  }

  // Opens an upload into a volume of a pool the tenant owns: `length` 0 = to the end of the volume (libvirt's rule).
  openUpload(
    pool: Buffer,
    name: string,
    offset: bigint,
    length: bigint,
    tenant: string,
    requestId: string,
  ): { handle: number; length: bigint; vol: VolumeRecord } {
    const dir = this.#dataDir;
    if (!dir) throw driverError(VG_ERR_NOT_SUPPORTED, 'storage pool does not support volume upload');
    const p = this.#active(this.#owned(pool, tenant));
    const v = this.#vol(p, name);
    const cap = v.config.capacity;
    if (offset > cap) throw driverError(VG_ERR_DOMAIN_ARG, `upload offset ${offset} is past the end of volume '${name}' (${cap} bytes)`);
    const len = length === 0n ? cap - offset : length;
    if (offset + len > cap)
      throw driverError(VG_ERR_DOMAIN_ARG, `upload of ${len} bytes at offset ${offset} extends past the end of volume '${name}' (${cap} bytes)`);
    if (requestId === '') throw driverError(VG_ERR_DOMAIN_ARG, 'an upload needs a request id');
    if (cap > BigInt(Number.MAX_SAFE_INTEGER)) throw driverError(VG_ERR_NOT_SUPPORTED, `upload into a volume of ${cap} bytes`);
    this.#expireUploads();
    for (const u of this.#uploads.values())
      if (u.pool.equals(pool) && u.name === name) throw driverError(VG_ERR_DOMAIN_STATE, `volume '${name}' has an upload in progress`);
    if (this.#uploads.size >= StorageLimits.UPLOADS_MAX) throw driverError(VG_ERR_LIMIT, `at most ${StorageLimits.UPLOADS_MAX} uploads at once`);
    const handle = this.#nextUpload++;
    const staging = path.join(dir, `${volKey(p.config.uuid, name)}.upload-${handle}`);
    let fd: number;
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      fd = fs.openSync(staging, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    } catch (e) {
      throw driverError(VG_ERR_STORAGE_FAILED, `cannot stage an upload (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    const whole = offset === 0n && len === cap;
    this.#uploads.set(handle, { requestId, tenant, pool, name, offset, length: len, at: 0n, whole, fd, staging, touched: Date.now() });
    return { handle, length: len, vol: volRecord(p, v) };
  }

  // The next chunk of an upload, in order: data, or a hole (nothing to write: the staging file starts sparse).
  uploadChunk(handle: number, at: bigint, data: Buffer, hole: bigint, tenant: string, requestId: string): void {
    const u = this.#upload(handle, tenant, requestId);
    if (data.length > 0 === hole > 0n) throw driverError(VG_ERR_DOMAIN_ARG, 'a chunk is data or a hole');
    if (at !== u.at) throw driverError(VG_ERR_DOMAIN_ARG, `chunk at ${at}, expected ${u.at}`);
    const n = data.length > 0 ? BigInt(data.length) : hole;
    if (u.at + n > u.length) throw driverError(VG_ERR_DOMAIN_ARG, `Too many bytes to write to stream: the upload is ${u.length} bytes`);
    if (data.length > 0) {
      const pos = Number(u.at); // the staging file holds the range from its start
      try {
        let done = 0;
        while (done < data.length) done += fs.writeSync(u.fd, data, done, data.length - done, pos + done);
      } catch (e) {
        this.#dropUpload(handle);
        throw driverError(VG_ERR_STORAGE_FAILED, `cannot write to volume '${u.name}' (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
    u.at += n;
    u.touched = Date.now();
  }

  // Commits (the volume takes the uploaded bytes; the rest keeps its content) or discards an upload.
  endUpload(handle: number, commit: boolean, tenant: string, requestId: string): bigint {
    const u = this.#upload(handle, tenant, requestId);
    if (!commit) {
      this.#dropUpload(handle);
      return u.at;
    }
    try {
      const p = this.#active(this.#byUuid(u.pool));
      const v = this.#vol(p, u.name);
      const target = this.#dataFile(p, u.name);
      if (u.whole) {
        // A short upload keeps the volume's old bytes after what was sent (as writing into it would).
        if (u.at < u.length) this.#copyTail(target, u.fd, u.at, u.length - u.at);
        fs.ftruncateSync(u.fd, Number(v.config.capacity));
        fs.fsyncSync(u.fd);
        fs.renameSync(u.staging, target);
      } else {
        const out = fs.openSync(target, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
        try {
          if (BigInt(fs.fstatSync(out).size) < v.config.capacity) fs.ftruncateSync(out, Number(v.config.capacity));
          this.#copyFd(u.fd, 0n, out, u.offset, u.at, false);
          fs.fsyncSync(out);
        } finally {
          fs.closeSync(out);
        }
        // XXX: a crash during this copy leaves the range partly written (libvirt writes in place: the same risk).
      }
      const dfd = fs.openSync(path.dirname(target), fs.constants.O_RDONLY);
      fs.fsyncSync(dfd);
      fs.closeSync(dfd);
    } catch (e) {
      this.#dropUpload(handle);
      if (e instanceof Error && e.name === 'DriverError') throw e;
      throw driverError(VG_ERR_STORAGE_FAILED, `cannot commit the upload to volume '${u.name}' (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    this.#dropUpload(handle);
    return u.at;
  }

  #upload(handle: number, tenant: string, requestId: string): Upload {
    const u = this.#uploads.get(handle);
    // Another request's (or another tenant's) upload is as absent as none.
    if (!u || u.requestId !== requestId || u.tenant !== tenant) throw driverError(VG_ERR_DOMAIN_STATE, 'no such upload in progress');
    return u;
  }

  #dropUpload(handle: number): void {
    const u = this.#uploads.get(handle);
    if (!u) return;
    this.#uploads.delete(handle);
    try {
      fs.closeSync(u.fd);
    } catch {
      /* already closed */
    }
    fs.rmSync(u.staging, { force: true });
  }

  #expireUploads(): void {
    const now = Date.now();
    for (const [h, u] of this.#uploads) if (now - u.touched > UPLOAD_IDLE_MS) this.#dropUpload(h);
  }

  // Staging files of a previous run are never committed.
  #sweepStaging(dir: string): void {
    let names: string[] = [];
    try {
      names = fs.readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) if (/\.upload-[0-9]+$/.test(n)) fs.rmSync(path.join(dir, n), { force: true });
  }

  #dataFile(p: Pool, name: string): string {
    if (!this.#dataDir) throw driverError(VG_ERR_NOT_SUPPORTED, 'volume data');
    return path.join(this.#dataDir, `${volKey(p.config.uuid, name)}.img`);
  }

  // The volume's old bytes [at, at + n) into a whole-volume staging file (zero chunks left out: sparse there already).
  #copyTail(from: string, fd: number, at: bigint, n: bigint): void {
    let src: number;
    try {
      src = fs.openSync(from, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return; // no bytes yet: zeroes
      throw e;
    }
    try {
      this.#copyFd(src, at, fd, at, n, true);
    } finally {
      fs.closeSync(src);
    }
  }

  #copyFd(src: number, srcAt: bigint, dst: number, dstAt: bigint, n: bigint, skipZero: boolean): void {
    const buf = Buffer.alloc(COPY_CHUNK);
    let done = 0n;
    while (done < n) {
      const want = Number(n - done < BigInt(COPY_CHUNK) ? n - done : BigInt(COPY_CHUNK));
      buf.fill(0, 0, want);
      fs.readSync(src, buf, 0, want, Number(srcAt + done)); // a short read (the source's end) leaves zeroes
      const chunk = buf.subarray(0, want);
      if (!(skipZero && isZero(chunk))) {
        let w = 0;
        while (w < want) w += fs.writeSync(dst, chunk, w, want - w, Number(dstAt + done) + w);
      }
      done += BigInt(want);
    }
  }

  diskSourceAllowed(path: string, tenant: string): boolean {
    return diskSourceAllowedIn(
      [...this.#pools.values()].map((p) => ({ tenant: p.tenant, vols: p.vols.values() })),
      path,
      tenant,
    );
  }

  // ---------- internals ----------

  #addVolume(p: Pool, config: VolumeConfig): VolumeRecord {
    if (p.vols.has(config.name)) throw driverError(VG_ERR_STORAGE_FAILED, 'storage vol already exists');
    if (p.allocation + config.allocation > POOL_CAPACITY)
      throw driverError(VG_ERR_DOMAIN_INTERNAL, `Not enough free space in pool for volume '${config.name}'`);
    let count = 0;
    for (const q of this.#pools.values()) count += q.vols.size;
    if (count >= StorageLimits.VOLUMES_MAX) throw driverError(VG_ERR_LIMIT, `at most ${StorageLimits.VOLUMES_MAX} volumes`);
    const v: Vol = { config, path: `${p.config.targetPath}/${config.name}` };
    this.#ctx.records.put('volume', volKey(p.config.uuid, config.name), JSON.stringify(volJson(p, v)));
    p.vols.set(config.name, v);
    p.allocation += config.allocation;
    return volRecord(p, v);
  }

  #find(keyOrPath: string): VolumeRecord | undefined {
    for (const p of this.#pools.values()) {
      if (!p.active) continue;
      for (const v of p.vols.values()) if (v.path === keyOrPath) return volRecord(p, v);
    }
    return undefined;
  }

  #byName(name: string): Pool {
    for (const p of this.#pools.values()) if (p.config.name === name) return p;
    throw driverError(VG_ERR_NO_STORAGE_POOL, `: no storage pool with matching name '${name}'`);
  }

  #byUuid(uuid: Buffer): Pool {
    const p = this.#pools.get(hexUuid(uuid));
    if (!p) throw driverError(VG_ERR_NO_STORAGE_POOL, `: no storage pool with matching uuid '${hexUuid(uuid)}'`);
    return p;
  }

  // A pool the acting tenant may change: its own (a host admin: any). Another tenant's is absent; a shared one is
  // visible to tenants but theirs to read only.
  #owned(uuid: Buffer, tenant: string): Pool {
    const p = this.#byUuid(uuid);
    if (tenant === '' || p.tenant === tenant) return p;
    if (p.tenant === '') throw driverError(VG_ERR_ACCESS_DENIED, 'a shared storage pool is changed by host administrators only');
    throw driverError(VG_ERR_NO_STORAGE_POOL, `: no storage pool with matching uuid '${hexUuid(uuid)}'`);
  }

  // A pool the acting tenant may read from (clone sources): its own or a shared one.
  #usable(uuid: Buffer, tenant: string): Pool {
    const p = this.#byUuid(uuid);
    if (tenant === '' || p.tenant === tenant || p.tenant === '') return p;
    throw driverError(VG_ERR_NO_STORAGE_POOL, `: no storage pool with matching uuid '${hexUuid(uuid)}'`);
  }

  #active(p: Pool): Pool {
    if (!p.active) throw driverError(VG_ERR_DOMAIN_STATE, `storage pool '${p.config.name}' is not active`);
    return p;
  }

  #inactive(p: Pool): Pool {
    if (p.active) throw driverError(VG_ERR_DOMAIN_STATE, `storage pool '${p.config.name}' is active`);
    return p;
  }

  #vol(p: Pool, name: string): Vol {
    const v = p.vols.get(name);
    if (!v) throw driverError(VG_ERR_NO_STORAGE_VOL, `: no storage vol with matching name '${name}'`);
    return v;
  }

  // virStoragePoolObjIsDuplicate + SourceFindDuplicate, with tenancy: another tenant's name, uuid or target path is
  // "not available" (its name is not told); target paths may not nest either (volume paths must stay unique).
  #checkClash(c: PoolConfig, tenant: string): Pool | undefined {
    const roots = this.#roots;
    if (!roots.some((r) => pathWithin(c.targetPath, r)))
      throw driverError(VG_ERR_DOMAIN_ARG, `storage pool target path '${c.targetPath}' is outside the allowed roots (${roots.join(', ')})`);
    const same = this.#pools.get(hexUuid(c.uuid));
    let named: Pool | undefined;
    for (const p of this.#pools.values()) if (p.config.name === c.name) named = p;
    const foreign = (p: Pool | undefined): boolean => p !== undefined && tenant !== '' && p.tenant !== tenant;
    if (foreign(same) || foreign(named)) throw driverError(VG_ERR_STORAGE_FAILED, NOT_AVAILABLE);
    for (const p of this.#pools.values()) {
      if (p.config.name === c.name) continue; // redefining itself
      if (pathWithin(c.targetPath, p.config.targetPath) || pathWithin(p.config.targetPath, c.targetPath)) {
        if (foreign(p)) throw driverError(VG_ERR_STORAGE_FAILED, NOT_AVAILABLE);
        throw driverError(VG_ERR_STORAGE_FAILED, `Storage source conflict with pool: '${p.config.name}'`);
      }
    }
    if (same) {
      if (same.config.name !== c.name)
        throw driverError(VG_ERR_STORAGE_FAILED, `pool '${same.config.name}' is already defined with uuid ${hexUuid(same.config.uuid)}`);
      // A pool's target may not move while it holds volumes: their paths (and keys) are derived from it.
      if (same.vols.size > 0 && same.config.targetPath !== c.targetPath)
        throw driverError(VG_ERR_STORAGE_FAILED, `pool '${c.name}' holds volumes: its target path cannot change`);
      return same;
    }
    if (named) throw driverError(VG_ERR_STORAGE_FAILED, `pool '${c.name}' already exists with uuid ${hexUuid(named.config.uuid)}`);
    return undefined;
  }

  #checkLimit(): void {
    if (this.#pools.size >= StorageLimits.POOLS_MAX) throw driverError(VG_ERR_LIMIT, `at most ${StorageLimits.POOLS_MAX} storage pools`);
  }

  #savePool(p: Pool): void {
    this.#ctx.records.put('pool', hexUuid(p.config.uuid), JSON.stringify(poolJson(p)));
  }

  #replace(p: Pool): void {
    this.#savePool(p);
    this.#pools.set(hexUuid(p.config.uuid), p);
  }

  #remove(p: Pool): void {
    // Volumes first: a crash in between leaves a pool without volumes, never volumes without a pool.
    for (const name of p.vols.keys()) this.#ctx.records.put('volume', volKey(p.config.uuid, name), null);
    this.#ctx.records.put('pool', hexUuid(p.config.uuid), null);
    this.#pools.delete(hexUuid(p.config.uuid));
  }

  #emit(p: Pool, event: number): void {
    this.#ctx.emit({ type: 'pool', name: p.config.name, uuid: p.config.uuid, tenant: p.tenant, event, detail: 0 });
  }

  #load(): void {
    if (this.#ctx.firstStart) {
      const p: Pool = { config: DEFAULT_POOL, pending: null, tenant: '', active: true, persistent: true, autostart: false, allocation: 0n, vols: new Map() };
      try {
        this.#savePool(p);
      } catch (e) {
        this.#ctx.warn(`default-pool could not be saved, served from memory: ${(e as Error).message}`);
      }
      this.#pools.set(hexUuid(DEFAULT_POOL.uuid), p);
      return;
    }
    // A record that fails its checks is skipped, loudly (the state log is the helper's own; only a bug writes one).
    for (const [key, json] of this.#ctx.records.load('pool')) {
      try {
        const p = poolFromJson(JSON.parse(json));
        this.#pools.set(hexUuid(p.config.uuid), p);
      } catch (e) {
        this.#ctx.warn(`storage pool record ${key} skipped: ${(e as Error).message}`);
      }
    }
    for (const [key, json] of this.#ctx.records.load('volume')) {
      try {
        const { pool, config } = volFromJson(JSON.parse(json));
        const p = this.#pools.get(pool);
        if (!p || p.vols.has(config.name)) throw new Error(p ? 'duplicate name' : 'no such pool');
        p.vols.set(config.name, { config, path: `${p.config.targetPath}/${config.name}` });
        p.allocation += config.allocation;
      } catch (e) {
        this.#ctx.warn(`storage volume record ${key} skipped: ${(e as Error).message}`);
      }
    }
  }
}

function notFoundVol(detail: string): never {
  throw driverError(VG_ERR_NO_STORAGE_VOL, `: ${detail}`);
}

function record(p: Pool): PoolRecord {
  return {
    config: p.config,
    tenant: p.tenant,
    active: p.active,
    persistent: p.persistent,
    autostart: p.persistent ? p.autostart : false,
    capacity: POOL_CAPACITY,
    allocation: p.allocation,
    available: POOL_CAPACITY - p.allocation,
  };
}

function volRecord(p: Pool, v: Vol): VolumeRecord {
  return { config: v.config, pool: p.config.name, poolUuid: p.config.uuid, poolType: p.config.type, key: v.path, path: v.path, tenant: p.tenant };
}
