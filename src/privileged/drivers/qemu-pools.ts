// SPDX-License-Identifier: Apache-2.0
// Storage pools of the qemu driver (helper side): directory pools over real directories, per tenant. A tenant's pool
// lives under TENANT_ROOT/<tenant>/ (root 0700), a host admin's under one of the admin roots; host admins' pools are
// shared (tenants may use their volumes, read-only, as base images). Volumes are the files of the directory that pass
// disk.ts's open checks (rescanned on every read, as libvirt's refresh); raw ones are made by ftruncate, qcow2 by
// createQcow2, never by exec. Pool definitions are durable records in the helper's state log.
// Pool names are unique per tenant: every tenant (and the host) may have its own `default`, which the helper provisions
// itself (the host's at start, a tenant's when the front end first asks for it), so clients such as virt-manager find
// one and never try to make one.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  VG_ERR_ACCESS_DENIED,
  VG_ERR_CONFIG_UNSUPPORTED,
  VG_ERR_DOMAIN_ARG,
  VG_ERR_DOMAIN_STATE,
  VG_ERR_LIMIT,
  VG_ERR_NOT_SUPPORTED,
  VG_ERR_NO_STORAGE_POOL,
  VG_ERR_NO_STORAGE_VOL,
  VG_ERR_STORAGE_FAILED,
} from '../../common/errors';
import { uuidFromString, uuidToString } from '../../common/uuid';
import { XdrReader, XdrWriter } from '../../common/xdr';
import {
  DEFAULT_POOL,
  NO_PERMS,
  type PoolConfig,
  type PoolRecord,
  StorageLimits,
  type VolumeConfig,
  type VolumeRecord,
  isStorageName,
  pathProblem,
  pathWithin,
  poolConfigCodec,
  volumeConfigCodec,
} from '../../ipc/objects/storage';
import { checkTenantName } from '../../ipc/shared';
import { checkPoolDir, createPoolFile, openPoolDisk, openPoolFile } from '../qemu/disk';
import { QCOW2_MAX_SIZE, QCOW2_PREALLOC_MAX_SIZE, type Qcow2Header, createQcow2, looksLikeQcow2, parseQcow2Header } from '../qemu/qcow2';
import { DriverError, driverError } from './driver';
import { PoolEvent, type StoragePoolDriver } from './storage-driver';
import type { StorageContext } from './test-storage';

export interface QemuPoolsOptions {
  tenantRoot: string; // a tenant's pools: TENANT_ROOT/<tenant>/... (e.g. /var/lib/virtgate/pools)
  adminRoots: readonly string[]; // a host admin's pools: anywhere below one of these (e.g. /var/lib/libvirt/images)
  // The helper's journal, for the pools it makes on its own (no request of the front end's begins them).
  journal?: (rec: { uuid: string; name: string; tenant: string; path: string }) => void;
}

const HEAD = 64 * 1024; // header bytes read to describe a volume
const Resize = { ALLOCATE: 1, DELTA: 2, SHRINK: 4 } as const;

interface Pool {
  config: PoolConfig;
  tenant: string;
  active: boolean;
  persistent: boolean;
  autostart: boolean;
}

const hex = (u: Buffer): string => uuidToString(u);

function checked<T>(codec: { encode(w: XdrWriter, v: T): void; decode(r: XdrReader): T }, v: T): T {
  const w = new XdrWriter();
  codec.encode(w, v);
  const r = new XdrReader(w.finish());
  const out = codec.decode(r);
  r.ensureConsumed();
  return out;
}

const failed = (e: unknown, what: string): DriverError =>
  e instanceof DriverError ? e : driverError(VG_ERR_STORAGE_FAILED, `${what}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);

export class QemuPools implements StoragePoolDriver {
  readonly #ctx: StorageContext;
  readonly #opts: QemuPoolsOptions;
  readonly #pools = new Map<string, Pool>(); // by uuid string

  constructor(ctx: StorageContext, opts: QemuPoolsOptions) {
    for (const r of [opts.tenantRoot, ...opts.adminRoots]) if (pathProblem(r) !== null) throw new Error(`pool root '${r}' ${pathProblem(r)}`);
    this.#ctx = ctx;
    this.#opts = opts;
    this.#load();
    try {
      this.defaultPool('');
    } catch (e) {
      ctx.warn(`the host's storage pool '${DEFAULT_POOL}' was not provisioned: ${(e as Error).message}`);
    }
  }

  // `tenant`'s pool named `default` ('' = the host's), made when it has none: TENANT_ROOT/<tenant>/default, or
  // default/ below the first admin root; persistent, autostarted, running. Idempotent: an existing one (running or
  // not) is answered as it is. Refused when its directory is another pool's or lies in one.
  defaultPool(tenant: string): PoolRecord {
    checkTenantName(tenant);
    const have = this.#named(DEFAULT_POOL, tenant);
    if (have) return record(have);
    const root = tenant === '' ? this.#opts.adminRoots[0] : path.join(this.#opts.tenantRoot, tenant);
    if (root === undefined) throw driverError(VG_ERR_STORAGE_FAILED, 'no admin pool root');
    const config: PoolConfig = {
      type: 'dir',
      name: DEFAULT_POOL,
      uuid: uuidFromString(randomUUID())!,
      source: { hosts: [], devices: [], dir: '', format: '', protocolVer: '', vendor: '', product: '' },
      targetPath: path.join(root, DEFAULT_POOL),
      perms: NO_PERMS,
      cow: '',
    };
    this.#checkNew(config, tenant);
    const p: Pool = { config: checked(poolConfigCodec, config), tenant, active: false, persistent: true, autostart: true };
    this.#makeDir(p);
    p.active = true;
    this.#put(p);
    this.#opts.journal?.({ uuid: hex(config.uuid), name: DEFAULT_POOL, tenant, path: config.targetPath });
    this.#emit(p, PoolEvent.DEFINED);
    this.#emit(p, PoolEvent.STARTED);
    return record(p);
  }

  // Targets of the active shared (host admin) pools: what openPoolDisk takes as base pools.
  basePoolDirs(): string[] {
    return [...this.#pools.values()].filter((p) => p.tenant === '' && p.active).map((p) => p.config.targetPath);
  }

  // ---------- pools ----------

  listPools(): PoolRecord[] {
    return [...this.#pools.values()].map(record);
  }

  // Names are per tenant: `tenant`'s own pool of that name, else the host's (shared) one.
  poolByName(name: string, tenant = ''): PoolRecord {
    const p = this.#named(name, tenant) ?? (tenant !== '' ? this.#named(name, '') : undefined);
    if (p) return record(p);
    throw driverError(VG_ERR_NO_STORAGE_POOL, `: no storage pool with matching name '${name}'`);
  }

  poolByUuid(uuid: Buffer): PoolRecord {
    return record(this.#byUuid(uuid));
  }

  definePool(config: PoolConfig, tenant: string): PoolRecord {
    const old = this.#checkNew(config, tenant);
    if (old?.active) throw driverError(VG_ERR_DOMAIN_STATE, `storage pool '${old.config.name}' is active: stop it to redefine it`);
    const p: Pool = old ? { ...old, config, persistent: true } : { config, tenant, active: false, persistent: true, autostart: false };
    this.#put(p);
    this.#emit(p, PoolEvent.DEFINED);
    return record(p);
  }

  createPool(config: PoolConfig, tenant: string): PoolRecord {
    const old = this.#checkNew(config, tenant);
    if (old?.active) throw driverError(VG_ERR_DOMAIN_STATE, `pool is already active as '${old.config.name}'`);
    checkPoolDir(config.targetPath);
    const p: Pool = old ? { ...old, config, active: true } : { config, tenant, active: true, persistent: false, autostart: false };
    this.#put(p);
    this.#emit(p, PoolEvent.STARTED);
    return record(p);
  }

  // Makes the target directory: every missing component 0700 root, the existing ones checked not to be symlinks.
  buildPool(uuid: Buffer, tenant: string): PoolRecord {
    const p = this.#inactive(this.#owned(uuid, tenant));
    this.#makeDir(p);
    this.#emit(p, PoolEvent.CREATED);
    return record(p);
  }

  startPool(uuid: Buffer, tenant: string): PoolRecord {
    const p = this.#inactive(this.#owned(uuid, tenant));
    try {
      checkPoolDir(p.config.targetPath);
    } catch (e) {
      throw failed(e, `cannot start storage pool '${p.config.name}'`);
    }
    const next = { ...p, active: true };
    this.#put(next);
    this.#emit(next, PoolEvent.STARTED);
    return record(next);
  }

  destroyPool(uuid: Buffer, tenant: string): PoolRecord {
    const p = this.#active(this.#owned(uuid, tenant));
    const next = { ...p, active: false };
    if (p.persistent) this.#put(next);
    else this.#remove(p);
    this.#emit(next, PoolEvent.STOPPED);
    return record(next);
  }

  // Removes the (empty) target directory, as libvirt's dir pool does.
  deletePool(uuid: Buffer, tenant: string): PoolRecord {
    const p = this.#inactive(this.#owned(uuid, tenant));
    try {
      fs.rmdirSync(p.config.targetPath);
    } catch (e) {
      throw failed(e, `cannot delete storage pool directory '${p.config.targetPath}'`);
    }
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
    this.#put(next);
    return record(next);
  }

  findPoolSources(type: string): string {
    throw driverError(VG_ERR_NOT_SUPPORTED, `pool type '${type}' does not support source discovery`);
  }

  // ---------- volumes ----------

  listVolumes(pool: Buffer): VolumeRecord[] {
    const p = this.#active(this.#byUuid(pool));
    let names: string[];
    try {
      names = fs.readdirSync(p.config.targetPath).sort();
    } catch (e) {
      throw failed(e, `cannot read storage pool directory '${p.config.targetPath}'`);
    }
    const out: VolumeRecord[] = [];
    for (const n of names) {
      if (out.length >= StorageLimits.VOLUMES_MAX) break;
      const v = this.#describe(p, n, false);
      if (v) out.push(v);
    }
    return out;
  }

  volumeByName(pool: Buffer, name: string): VolumeRecord {
    const p = this.#active(this.#byUuid(pool));
    return this.#describe(p, name, true)!;
  }

  volumeByKey(key: string): VolumeRecord {
    return this.#find(key) ?? notFoundVol(`no storage vol with matching key '${key}'`);
  }

  volumeByPath(path: string): VolumeRecord {
    return this.#find(path) ?? notFoundVol(`no storage vol with matching path '${path}'`);
  }

  createVolume(pool: Buffer, config: VolumeConfig, tenant: string, opts: { preallocMetadata?: boolean } = {}): VolumeRecord {
    const p = this.#active(this.#owned(pool, tenant));
    const prealloc = opts.preallocMetadata === true;
    // libvirt's dir backend: metadata preallocation is a qcow2 thing (storage_util.c says the same for raw).
    if (prealloc && config.format !== 'qcow2') throw driverError(VG_ERR_CONFIG_UNSUPPORTED, 'metadata preallocation is not supported for raw volumes');
    if (prealloc && config.backing) throw driverError(VG_ERR_CONFIG_UNSUPPORTED, 'metadata preallocation of a volume with a backing store');
    if (config.type !== 'file') throw driverError(VG_ERR_CONFIG_UNSUPPORTED, `volume type '${config.type}' (only file)`);
    if (config.format !== 'raw' && config.format !== 'qcow2')
      throw driverError(VG_ERR_CONFIG_UNSUPPORTED, `volume format '${config.format}' (only raw and qcow2)`);
    if (!isStorageName(config.name)) throw driverError(VG_ERR_DOMAIN_ARG, `volume name '${config.name}'`);
    let backing: { backingFile: string; backingFormat: 'raw' | 'qcow2' } | undefined;
    if (config.backing) {
      if (config.format !== 'qcow2') throw driverError(VG_ERR_CONFIG_UNSUPPORTED, 'a backing store for a raw volume');
      backing = this.#backingFor(p, config.backing);
    }
    const size = config.format === 'qcow2' ? roundUp(config.capacity, 512n) : config.capacity;
    if (config.format === 'qcow2' && (size === 0n || size > QCOW2_MAX_SIZE))
      throw driverError(VG_ERR_DOMAIN_ARG, `qcow2 capacity must be 1 byte to ${QCOW2_MAX_SIZE} bytes`);
    if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw driverError(VG_ERR_DOMAIN_ARG, 'capacity too large');
    this.#countLimit(p);
    const file = path.join(p.config.targetPath, config.name);
    const fd = createPoolFile(p.config.targetPath, config.name);
    try {
      if (config.format === 'raw') fs.ftruncateSync(fd, Number(size));
      else if (prealloc && size > QCOW2_PREALLOC_MAX_SIZE)
        throw driverError(VG_ERR_CONFIG_UNSUPPORTED, `metadata preallocation of more than ${QCOW2_PREALLOC_MAX_SIZE} bytes`);
      else createQcow2(fd, size, { ...backing, preallocMetadata: prealloc });
      fs.fsyncSync(fd);
    } catch (e) {
      fs.closeSync(fd);
      fs.rmSync(file, { force: true });
      throw failed(e, `cannot create volume '${file}'`);
    }
    fs.closeSync(fd);
    if (backing) {
      // The new image must pass the rules it will be opened under; else it goes again.
      try {
        openPoolDisk({ poolDir: p.config.targetPath, name: config.name, format: 'qcow2', readOnly: true, basePools: this.basePoolDirs() }).forEach((l) =>
          fs.closeSync(l.fd),
        );
      } catch (e) {
        fs.rmSync(file, { force: true });
        throw e;
      }
    }
    return this.#describe(p, config.name, true)!;
  }

  cloneVolume(pool: Buffer, config: VolumeConfig): VolumeRecord {
    this.#byUuid(pool);
    throw driverError(VG_ERR_NOT_SUPPORTED, `cloning volumes (create '${config.name}' with a backing store instead)`);
  }

  deleteVolume(pool: Buffer, name: string, tenant: string): void {
    const p = this.#active(this.#owned(pool, tenant));
    this.#describe(p, name, true); // only a file that is a volume is removed
    try {
      fs.unlinkSync(path.join(p.config.targetPath, name));
    } catch (e) {
      throw failed(e, `cannot delete volume '${name}'`);
    }
  }

  // Raw volumes only: a qcow2's L1 table would have to grow (QEMU's job, not the helper's).
  resizeVolume(pool: Buffer, name: string, capacity: bigint, flags: number, tenant: string): VolumeRecord {
    const p = this.#active(this.#owned(pool, tenant));
    const v = this.#describe(p, name, true)!;
    if (v.config.format !== 'raw') throw driverError(VG_ERR_NOT_SUPPORTED, `resizing a ${v.config.format} volume`);
    const want = flags & Resize.DELTA ? v.config.capacity + capacity : capacity;
    if (want > BigInt(Number.MAX_SAFE_INTEGER)) throw driverError(VG_ERR_DOMAIN_ARG, 'capacity too large');
    if (want < v.config.capacity && !(flags & Resize.SHRINK))
      throw driverError(VG_ERR_DOMAIN_ARG, "Can't shrink capacity below current capacity unless shrink flag explicitly specified");
    const { fd } = openPoolFile(p.config.targetPath, name, false);
    try {
      fs.ftruncateSync(fd, Number(want));
      fs.fsyncSync(fd);
    } catch (e) {
      throw failed(e, `cannot resize volume '${name}'`);
    } finally {
      fs.closeSync(fd);
    }
    return this.#describe(p, name, true)!;
  }

  // Zeroes a volume by truncating it to nothing and back (sparse), keeping a qcow2's size and backing file.
  wipeVolume(pool: Buffer, name: string, tenant: string): VolumeRecord {
    const p = this.#active(this.#owned(pool, tenant));
    const v = this.#describe(p, name, true)!;
    const { fd } = openPoolFile(p.config.targetPath, name, false);
    try {
      fs.ftruncateSync(fd, 0);
      if (v.config.format === 'qcow2') {
        const b = v.config.backing;
        const backing = b
          ? { backingFile: b.path.startsWith(`${p.config.targetPath}/`) ? path.basename(b.path) : b.path, backingFormat: b.format as 'raw' | 'qcow2' }
          : {};
        createQcow2(fd, v.config.capacity, backing);
      } else fs.ftruncateSync(fd, Number(v.config.capacity));
      fs.fsyncSync(fd);
    } catch (e) {
      throw failed(e, `cannot wipe volume '${name}'`);
    } finally {
      fs.closeSync(fd);
    }
    return this.#describe(p, name, true)!;
  }

  // A disk path is usable by `tenant` when it names a file directly in an active pool of its own or a shared one.
  diskSourceAllowed(file: string, tenant: string): boolean {
    if (pathProblem(file) !== null) return false;
    const dir = path.dirname(file);
    for (const p of this.#pools.values())
      if (p.active && p.config.targetPath === dir && (p.tenant === '' || p.tenant === tenant || tenant === '') && isStorageName(path.basename(file)))
        return true;
    return false;
  }

  // ---------- internals ----------

  // A volume's record from its file; null (listing) or not found (lookups) for a file that is not a volume.
  #describe(p: Pool, name: string, must: boolean): VolumeRecord | null {
    const miss = (why: string): null => {
      if (must) notFoundVol(`no storage vol with matching name '${name}'${why ? ` (${why})` : ''}`);
      return null;
    };
    if (!isStorageName(name)) return miss('');
    let opened: { fd: number; st: fs.BigIntStats };
    try {
      opened = openPoolFile(p.config.targetPath, name, true);
    } catch (e) {
      return miss(e instanceof DriverError ? e.detail : (e as Error).message);
    }
    const { fd, st } = opened;
    try {
      const head = Buffer.alloc(Math.min(HEAD, Number(st.size)));
      fs.readSync(fd, head, 0, head.length, 0);
      let h: Qcow2Header | null = null;
      if (looksLikeQcow2(head)) {
        try {
          h = parseQcow2Header(head);
        } catch {
          h = null; // shown as raw; openPoolDisk refuses it as qcow2
        }
      }
      const backingPath = h?.backingFile ? (h.backingFile.startsWith('/') ? h.backingFile : `${p.config.targetPath}/${h.backingFile}`) : null;
      const config: VolumeConfig = {
        name,
        type: 'file',
        capacity: h ? h.size : st.size,
        allocation: st.blocks * 512n,
        format: h ? 'qcow2' : 'raw',
        perms: { ...NO_PERMS, mode: Number(st.mode & 0o777n), owner: Number(st.uid), group: Number(st.gid) },
        backing: backingPath ? { path: backingPath, format: h?.backingFormat ?? 'raw' } : null,
        compat: h ? (h.version === 3 ? '1.1' : '0.10') : '',
        nocow: false,
        features: h && h.version === 3 ? [] : null,
      };
      let valid: VolumeConfig;
      try {
        valid = checked(volumeConfigCodec, config);
      } catch {
        this.#ctx.warn(`storage volume '${name}' in '${p.config.targetPath}' not listed: its header names a backing file no volume may have`);
        return miss('unusable backing file');
      }
      const file = `${p.config.targetPath}/${name}`;
      return { config: valid, pool: p.config.name, poolUuid: p.config.uuid, poolType: p.config.type, key: file, path: file, tenant: p.tenant };
    } finally {
      fs.closeSync(fd);
    }
  }

  #find(file: string): VolumeRecord | undefined {
    if (pathProblem(file) !== null) return undefined;
    for (const p of this.#pools.values())
      if (p.active && p.config.targetPath === path.dirname(file)) return this.#describe(p, path.basename(file), false) ?? undefined;
    return undefined;
  }

  // A backing store: a volume of the same pool (stored as its plain name) or of a shared pool (its absolute path).
  #backingFor(p: Pool, b: { path: string; format: string }): { backingFile: string; backingFormat: 'raw' | 'qcow2' } {
    if (b.format !== 'raw' && b.format !== 'qcow2') throw driverError(VG_ERR_CONFIG_UNSUPPORTED, `backing format '${b.format}' (only raw and qcow2)`);
    const dir = path.dirname(b.path);
    const name = path.basename(b.path);
    if (dir === p.config.targetPath) return { backingFile: name, backingFormat: b.format };
    for (const q of this.#pools.values())
      if (q.active && q.tenant === '' && q.config.targetPath === dir) return { backingFile: b.path, backingFormat: b.format };
    throw driverError(VG_ERR_ACCESS_DENIED, `backing store '${b.path}' is neither in pool '${p.config.name}' nor in a shared pool`);
  }

  // Makes a pool's target directory: every missing component 0700 root, the existing ones checked not to be symlinks.
  #makeDir(p: Pool): void {
    const root = this.#rootOf(p.config.targetPath, p.tenant);
    try {
      fs.mkdirSync(root, { recursive: true, mode: 0o700 });
      let dir = root;
      for (const part of path.relative(root, p.config.targetPath).split('/').filter(Boolean)) {
        dir = path.join(dir, part);
        try {
          fs.mkdirSync(dir, { mode: 0o700 });
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
          if (!fs.lstatSync(dir).isDirectory()) throw driverError(VG_ERR_STORAGE_FAILED, `'${dir}' exists and is not a directory`);
        }
      }
      checkPoolDir(p.config.targetPath);
    } catch (e) {
      throw failed(e, `cannot build storage pool '${p.config.name}'`);
    }
  }

  #named(name: string, tenant: string): Pool | undefined {
    for (const p of this.#pools.values()) if (p.config.name === name && p.tenant === tenant) return p;
    return undefined;
  }

  #countLimit(p: Pool): void {
    let n = 0;
    try {
      n = fs.readdirSync(p.config.targetPath).length;
    } catch {
      /* listed as absent below */
    }
    if (n >= StorageLimits.VOLUMES_MAX) throw driverError(VG_ERR_LIMIT, `at most ${StorageLimits.VOLUMES_MAX} volumes in a pool`);
  }

  // The root a pool's target must lie in: TENANT_ROOT/<tenant> for a tenant, one of the admin roots for a host admin.
  #rootOf(target: string, tenant: string): string {
    if (tenant !== '') {
      const root = path.join(this.#opts.tenantRoot, tenant);
      if (target !== root && pathWithin(target, root)) return root;
      throw driverError(VG_ERR_DOMAIN_ARG, `storage pool target path '${target}' must lie below ${root}/`);
    }
    for (const r of this.#opts.adminRoots) if (pathWithin(target, r)) return r;
    throw driverError(VG_ERR_DOMAIN_ARG, `storage pool target path '${target}' is outside the allowed roots (${this.#opts.adminRoots.join(', ')})`);
  }

  #checkNew(c: PoolConfig, tenant: string): Pool | undefined {
    if (c.type !== 'dir') throw driverError(VG_ERR_CONFIG_UNSUPPORTED, `storage pool type '${c.type}' (only dir)`);
    const same = this.#pools.get(hex(c.uuid));
    const owner = same ? same.tenant : tenant;
    this.#rootOf(c.targetPath, owner);
    if (tenant === '' && pathWithin(c.targetPath, this.#opts.tenantRoot) && c.targetPath !== this.#opts.tenantRoot)
      throw driverError(VG_ERR_DOMAIN_ARG, `storage pool target path '${c.targetPath}' lies in the tenants' root`);
    const named = this.#named(c.name, owner); // names are unique per tenant
    const foreign = (p: Pool | undefined): boolean => p !== undefined && tenant !== '' && p.tenant !== tenant;
    if (foreign(same) || foreign(named)) throw driverError(VG_ERR_STORAGE_FAILED, 'name, uuid or target path is not available');
    for (const p of this.#pools.values()) {
      if (p === same) continue;
      if (pathWithin(c.targetPath, p.config.targetPath) || pathWithin(p.config.targetPath, c.targetPath))
        throw driverError(
          VG_ERR_STORAGE_FAILED,
          foreign(p) ? 'name, uuid or target path is not available' : `Storage source conflict with pool: '${p.config.name}'`,
        );
    }
    if (same && same.config.name !== c.name)
      throw driverError(VG_ERR_STORAGE_FAILED, `pool '${same.config.name}' is already defined with uuid ${hex(same.config.uuid)}`);
    if (!same && named) throw driverError(VG_ERR_STORAGE_FAILED, `pool '${c.name}' already exists with uuid ${hex(named.config.uuid)}`);
    if (!same && this.#pools.size >= StorageLimits.POOLS_MAX) throw driverError(VG_ERR_LIMIT, `at most ${StorageLimits.POOLS_MAX} storage pools`);
    return same;
  }

  #byUuid(uuid: Buffer): Pool {
    const p = this.#pools.get(hex(uuid));
    if (!p) throw driverError(VG_ERR_NO_STORAGE_POOL, `: no storage pool with matching uuid '${hex(uuid)}'`);
    return p;
  }

  #owned(uuid: Buffer, tenant: string): Pool {
    const p = this.#byUuid(uuid);
    if (tenant === '' || p.tenant === tenant) return p;
    if (p.tenant === '') throw driverError(VG_ERR_ACCESS_DENIED, 'a shared storage pool is changed by host administrators only');
    throw driverError(VG_ERR_NO_STORAGE_POOL, `: no storage pool with matching uuid '${hex(uuid)}'`);
  }

  #active(p: Pool): Pool {
    if (!p.active) throw driverError(VG_ERR_DOMAIN_STATE, `storage pool '${p.config.name}' is not active`);
    return p;
  }

  #inactive(p: Pool): Pool {
    if (p.active) throw driverError(VG_ERR_DOMAIN_STATE, `storage pool '${p.config.name}' is active`);
    return p;
  }

  #put(p: Pool): void {
    const json = { config: { ...p.config, uuid: hex(p.config.uuid) }, tenant: p.tenant, active: p.active, persistent: p.persistent, autostart: p.autostart };
    this.#ctx.records.put('qemupool', hex(p.config.uuid), JSON.stringify(json));
    this.#pools.set(hex(p.config.uuid), p);
  }

  #remove(p: Pool): void {
    this.#ctx.records.put('qemupool', hex(p.config.uuid), null);
    this.#pools.delete(hex(p.config.uuid));
  }

  #emit(p: Pool, event: number): void {
    this.#ctx.emit({ type: 'pool', name: p.config.name, uuid: p.config.uuid, tenant: p.tenant, event, detail: 0 });
  }

  // Records that fail their checks are skipped loudly; a pool whose directory went bad is loaded inactive.
  #load(): void {
    for (const [key, text] of this.#ctx.records.load('qemupool')) {
      try {
        const o = JSON.parse(text) as { config: PoolConfig & { uuid: string }; tenant: string; active: boolean; persistent: boolean; autostart: boolean };
        const config = checked(poolConfigCodec, { ...o.config, uuid: uuidFromString(o.config.uuid) ?? Buffer.alloc(0) });
        const tenant = checkTenantName(String(o.tenant));
        this.#rootOf(config.targetPath, tenant);
        let active = o.active === true || (o.autostart === true && o.persistent === true);
        if (active)
          try {
            checkPoolDir(config.targetPath);
          } catch (e) {
            this.#ctx.warn(`storage pool '${config.name}' not started: ${(e as Error).message}`);
            active = false;
          }
        this.#pools.set(hex(config.uuid), { config, tenant, active, persistent: o.persistent === true, autostart: o.autostart === true });
      } catch (e) {
        this.#ctx.warn(`storage pool record ${key} skipped: ${(e as Error).message}`);
      }
    }
  }
}

function notFoundVol(detail: string): never {
  throw driverError(VG_ERR_NO_STORAGE_VOL, `: ${detail}`);
}

const roundUp = (v: bigint, to: bigint): bigint => ((v + to - 1n) / to) * to;

function record(p: Pool): PoolRecord {
  let capacity = 0n;
  let available = 0n;
  if (p.active)
    try {
      const s = fs.statfsSync(p.config.targetPath, { bigint: true });
      capacity = s.blocks * s.bsize;
      available = s.bavail * s.bsize;
    } catch {
      /* gone since start: reported empty */
    }
  return {
    config: p.config,
    tenant: p.tenant,
    active: p.active,
    persistent: p.persistent,
    autostart: p.persistent ? p.autostart : false,
    capacity,
    allocation: capacity - available,
    available,
  };
}
