// SPDX-License-Identifier: Apache-2.0
// Storage pools and volumes over the helper IPC, pure: typed configs (the front end parsed the client's XML), their
// validators and codecs, and the POOL_READ / POOL_WRITE / VOLUME_READ / VOLUME_WRITE action groups. The helper never
// sees pool or volume XML: every field below is re-checked by its decoder.
import { VG_ERR_IPC_VALIDATION } from '../../common/errors';
import { NAME_LIMITS } from '../../common/names';
import type { XdrReader, XdrWriter } from '../../common/xdr';
import { action, actionGroup } from '../actions';
import { type Codec, checkRange, checkTenantName, uuidCodec } from '../shared';

export const StorageLimits = {
  NAME_MAX: 128, // pool and volume names, bytes
  PATH_MAX: 1024, // target and source paths, bytes
  TEXT_MAX: 256, // host names, labels, vendor/product, protocol version
  HOSTS_MAX: 8, // <source><host> entries
  DEVICES_MAX: 64, // <source><device> entries
  POOLS_MAX: 4096,
  VOLUMES_MAX: 16384, // REMOTE_STORAGE_VOL_LIST_MAX
  SIZE_MAX: (1n << 63n) - 1n, // off_t: libvirt's virStorageSize limit (LLONG_MAX)
  CHUNK_MAX: 256 * 1024, // volume bytes per VOLUME_READ.read / VOLUME_WRITE.uploadChunk: one stream packet, under REQUEST_MAX
  UPLOADS_MAX: 64, // uploads open in the helper at once (each holds a staging file and a descriptor)
} as const;

// The pool types virtgate serves: the local, file-backed ones (virt-install's `dir` pools first).
export const POOL_TYPES = ['dir', 'fs', 'netfs'] as const;
export type PoolType = (typeof POOL_TYPES)[number];
// <source><format type> per pool type (virStoragePoolFormatFileSystem / ...Net); dir pools have none.
export const POOL_FORMATS: Record<PoolType, readonly string[]> = {
  dir: [],
  fs: ['auto', 'ext2', 'ext3', 'ext4', 'ufs', 'iso9660', 'udf', 'gfs', 'gfs2', 'vfat', 'hfs+', 'xfs', 'ocfs2', 'vmfs'],
  netfs: ['auto', 'nfs', 'glusterfs', 'cifs'],
};
// virStorageVol type names, in enum order (VIR_STORAGE_VOL_FILE = 0 ...).
export const VOL_TYPES = ['file', 'block', 'dir', 'network', 'netdir', 'ploop'] as const;
export type VolType = (typeof VOL_TYPES)[number];
// virStorageFileFormat names a volume of a file pool may take ('none' is refused, as libvirt does).
export const VOL_FORMATS = ['raw', 'dir', 'bochs', 'cloop', 'dmg', 'iso', 'vpc', 'vdi', 'fat', 'vhd', 'ploop', 'cow', 'qcow', 'qcow2', 'qed', 'vmdk'] as const;
export const VOL_FEATURES = ['lazy_refcounts', 'extended_l2'] as const; // virStorageFileFeature, in bit order
const TRISTATE = ['', 'yes', 'no'] as const;

// Pool and volume names: no '/', no control characters, no leading dot or dash (stricter than libvirt, which only
// forbids '/' in pool names: names become Casbin objects and file names).
const STORAGE_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.+:@-]*$/;
export const STORAGE_NAME_RULE = `1-${StorageLimits.NAME_MAX} characters of [A-Za-z0-9_.+:@-], not starting with . + : @ or -`;

export const isStorageName = (s: string): boolean => Buffer.byteLength(s) <= StorageLimits.NAME_MAX && STORAGE_NAME_RE.test(s);

export function checkStorageName(s: string, field = 'name'): string {
  if (!isStorageName(s)) throw VG_ERR_IPC_VALIDATION(field, STORAGE_NAME_RULE);
  return s;
}

// Why a path is not a confined absolute path, or null when it is: absolute, normalized (no '//', no trailing '/',
// no '.' or '..' component), printable ASCII without quotes or '<>&' (it ends up in XML and in the helper's journal).
export function pathProblem(p: string): string | null {
  if (p.length === 0 || Buffer.byteLength(p) > StorageLimits.PATH_MAX) return `must be 1-${StorageLimits.PATH_MAX} bytes`;
  if (!/^[\x21-\x7e]+$/.test(p) || /["'<>&\\]/.test(p)) return 'must be printable ASCII without spaces, quotes, backslashes or <>&';
  if (!p.startsWith('/')) return 'must be absolute';
  if (p === '/') return 'must not be /';
  const parts = p.slice(1).split('/');
  if (parts.some((c) => c === '' || c === '.' || c === '..')) return "must be normalized (no '//', trailing '/', '.' or '..')";
  return null;
}

export function checkPath(p: string, field: string): string {
  const why = pathProblem(p);
  if (why !== null) throw VG_ERR_IPC_VALIDATION(field, why);
  return p;
}

// `path` is `root` or lies below it (both confined paths).
export const pathWithin = (path: string, root: string): boolean => path === root || path.startsWith(root.endsWith('/') ? root : `${root}/`);

function checkText(s: string, field: string, max: number = StorageLimits.TEXT_MAX): string {
  if (Buffer.byteLength(s) > max || !/^[\x20-\x7e]*$/.test(s)) throw VG_ERR_IPC_VALIDATION(field, `must be printable ASCII, at most ${max} bytes`);
  return s;
}

function checkEnum<T extends string>(v: string, allowed: readonly T[], field: string): T {
  if (!(allowed as readonly string[]).includes(v)) throw VG_ERR_IPC_VALIDATION(field, `must be one of ${allowed.join(', ') || '(none)'}`);
  return v as T;
}

function checkSize(v: bigint, field: string): bigint {
  if (v < 0n || v > StorageLimits.SIZE_MAX) throw VG_ERR_IPC_VALIDATION(field, 'must be in [0, 2^63-1] bytes');
  return v;
}

// ---------- typed configs ----------

// <permissions>: -1 / '' = absent.
export interface StoragePerms {
  mode: number;
  owner: number;
  group: number;
  label: string;
}
export const NO_PERMS: StoragePerms = Object.freeze({ mode: -1, owner: -1, group: -1, label: '' });

export interface PoolSource {
  hosts: { name: string; port: number }[]; // port 0 = none
  devices: { path: string; partSeparator: '' | 'yes' | 'no' }[];
  dir: string; // '' = none
  format: string; // '' for dir pools
  protocolVer: string;
  vendor: string;
  product: string;
}

export interface PoolConfig {
  type: PoolType;
  name: string;
  uuid: Buffer;
  source: PoolSource;
  targetPath: string;
  perms: StoragePerms;
  cow: '' | 'yes' | 'no'; // <features><cow state>
}

export interface VolumeConfig {
  name: string;
  type: VolType;
  capacity: bigint; // bytes
  allocation: bigint; // bytes
  format: string; // one of VOL_FORMATS
  perms: StoragePerms;
  backing: { path: string; format: string } | null;
  compat: string; // '' = none
  nocow: boolean;
  features: string[] | null; // null = no <features>; [] = empty <features/>
}

// ---------- codecs ----------

const permsCodec: Codec<StoragePerms> = {
  encode(w, p) {
    w.i32(p.mode).i32(p.owner).i32(p.group).string(p.label, StorageLimits.TEXT_MAX);
  },
  decode(r) {
    return {
      mode: checkRange(r.i32('perms.mode'), -1, 0o777, 'perms.mode'),
      owner: checkRange(r.i32('perms.owner'), -1, 0x7fffffff, 'perms.owner'),
      group: checkRange(r.i32('perms.group'), -1, 0x7fffffff, 'perms.group'),
      label: checkText(r.string(StorageLimits.TEXT_MAX, 'perms.label'), 'perms.label'),
    };
  },
};

const HOSTNAME_RE = /^[A-Za-z0-9_.:[\]-]{1,255}$/;

export const poolConfigCodec: Codec<PoolConfig> = {
  encode(w, c) {
    w.string(c.type, 16).string(c.name, StorageLimits.NAME_MAX);
    uuidCodec.encode(w, c.uuid);
    const s = c.source;
    w.array(s.hosts, StorageLimits.HOSTS_MAX, (w2, h) => void w2.string(h.name, StorageLimits.TEXT_MAX).u32(h.port));
    w.array(s.devices, StorageLimits.DEVICES_MAX, (w2, d) => void w2.string(d.path, StorageLimits.PATH_MAX).string(d.partSeparator, 4));
    w.string(s.dir, StorageLimits.PATH_MAX).string(s.format, 16).string(s.protocolVer, 16);
    w.string(s.vendor, StorageLimits.TEXT_MAX).string(s.product, StorageLimits.TEXT_MAX);
    w.string(c.targetPath, StorageLimits.PATH_MAX);
    permsCodec.encode(w, c.perms);
    w.string(c.cow, 4);
  },
  decode(r) {
    const type = checkEnum(r.string(16, 'pool.type'), POOL_TYPES, 'pool.type');
    const name = checkStorageName(r.string(StorageLimits.NAME_MAX, 'pool.name'), 'pool.name');
    const uuid = uuidCodec.decode(r);
    const hosts = r.array(
      StorageLimits.HOSTS_MAX,
      (r2) => {
        const h = r2.string(StorageLimits.TEXT_MAX, 'source.host');
        if (!HOSTNAME_RE.test(h)) throw VG_ERR_IPC_VALIDATION('source.host', 'must be a host name or address');
        return { name: h, port: checkRange(r2.u32('source.port'), 0, 65535, 'source.port') };
      },
      'source.hosts',
    );
    const devices = r.array(
      StorageLimits.DEVICES_MAX,
      (r2) => ({
        path: checkPath(r2.string(StorageLimits.PATH_MAX, 'source.device'), 'source.device'),
        partSeparator: checkEnum(r2.string(4, 'source.partSeparator'), TRISTATE, 'source.partSeparator'),
      }),
      'source.devices',
    );
    const dirText = r.string(StorageLimits.PATH_MAX, 'source.dir');
    const source: PoolSource = {
      hosts,
      devices,
      dir: dirText === '' ? '' : checkPath(dirText, 'source.dir'),
      format: checkEnum(r.string(16, 'source.format'), type === 'dir' ? [''] : POOL_FORMATS[type], 'source.format'),
      protocolVer: r.string(16, 'source.protocolVer'),
      vendor: checkText(r.string(StorageLimits.TEXT_MAX, 'source.vendor'), 'source.vendor'),
      product: checkText(r.string(StorageLimits.TEXT_MAX, 'source.product'), 'source.product'),
    };
    if (!/^[0-9.]*$/.test(source.protocolVer)) throw VG_ERR_IPC_VALIDATION('source.protocolVer', 'must be digits and dots');
    if (type === 'fs' && devices.length === 0) throw VG_ERR_IPC_VALIDATION('source.devices', 'an fs pool needs a device');
    if (type === 'netfs' && (hosts.length === 0 || source.dir === '')) throw VG_ERR_IPC_VALIDATION('source', 'a netfs pool needs a host and a dir');
    const targetPath = checkPath(r.string(StorageLimits.PATH_MAX, 'pool.targetPath'), 'pool.targetPath');
    const perms = permsCodec.decode(r);
    const cow = checkEnum(r.string(4, 'pool.cow'), TRISTATE, 'pool.cow');
    return { type, name, uuid, source, targetPath, perms, cow };
  },
};

export const volumeConfigCodec: Codec<VolumeConfig> = {
  encode(w, v) {
    w.string(v.name, StorageLimits.NAME_MAX).string(v.type, 16).u64(v.capacity).u64(v.allocation).string(v.format, 16);
    permsCodec.encode(w, v.perms);
    w.optional(v.backing, (w2, b) => void w2.string(b.path, StorageLimits.PATH_MAX).string(b.format, 16));
    w.string(v.compat, 16).bool(v.nocow);
    w.optional(v.features, (w2, f) => void w2.array(f, VOL_FEATURES.length, (w3, x) => void w3.string(x, 32)));
  },
  decode(r) {
    const name = checkStorageName(r.string(StorageLimits.NAME_MAX, 'vol.name'), 'vol.name');
    const type = checkEnum(r.string(16, 'vol.type'), VOL_TYPES, 'vol.type');
    const capacity = checkSize(r.u64('vol.capacity'), 'vol.capacity');
    const allocation = checkSize(r.u64('vol.allocation'), 'vol.allocation');
    const format = checkEnum(r.string(16, 'vol.format'), VOL_FORMATS, 'vol.format');
    const perms = permsCodec.decode(r);
    const backing = r.optional(
      (r2) => ({
        path: checkPath(r2.string(StorageLimits.PATH_MAX, 'vol.backing.path'), 'vol.backing.path'),
        format: checkEnum(r2.string(16, 'vol.backing.format'), VOL_FORMATS, 'vol.backing.format'),
      }),
      'vol.backing',
    );
    const compat = r.string(16, 'vol.compat');
    if (!/^([0-9]{1,5}\.[0-9]{1,5})?$/.test(compat)) throw VG_ERR_IPC_VALIDATION('vol.compat', 'must be N.M or empty');
    const nocow = r.bool('vol.nocow');
    const features = r.optional(
      (r2) => r2.array(VOL_FEATURES.length, (r3) => checkEnum(r3.string(32, 'vol.feature'), VOL_FEATURES, 'vol.feature'), 'vol.features'),
      'vol.features',
    );
    return { name, type, capacity, allocation, format, perms, backing, compat, nocow, features };
  },
};

// ---------- what the helper answers ----------

// A pool as the helper holds it: its config, its state and its tenant ('' = shared).
export interface PoolRecord {
  config: PoolConfig;
  tenant: string;
  active: boolean;
  persistent: boolean;
  autostart: boolean;
  capacity: bigint;
  allocation: bigint;
  available: bigint;
}

// A volume: its config, the pool it lives in (name, uuid), its key and path (both `<pool target>/<name>`) and its
// tenant (always its pool's).
export interface VolumeRecord {
  config: VolumeConfig;
  pool: string;
  poolUuid: Buffer;
  poolType: PoolType;
  key: string;
  path: string;
  tenant: string;
}

const tenantCodec: Codec<string> = {
  encode: (w, t) => void w.string(t, NAME_LIMITS.TENANT_MAX),
  decode: (r) => checkTenantName(r.string(NAME_LIMITS.TENANT_MAX, 'tenant')),
};

export const poolRecordCodec: Codec<PoolRecord> = {
  encode(w, p) {
    poolConfigCodec.encode(w, p.config);
    tenantCodec.encode(w, p.tenant);
    w.bool(p.active).bool(p.persistent).bool(p.autostart).u64(p.capacity).u64(p.allocation).u64(p.available);
  },
  decode(r) {
    return {
      config: poolConfigCodec.decode(r),
      tenant: tenantCodec.decode(r),
      active: r.bool('pool.active'),
      persistent: r.bool('pool.persistent'),
      autostart: r.bool('pool.autostart'),
      capacity: r.u64('pool.capacity'),
      allocation: r.u64('pool.allocation'),
      available: r.u64('pool.available'),
    };
  },
};

export const volumeRecordCodec: Codec<VolumeRecord> = {
  encode(w, v) {
    volumeConfigCodec.encode(w, v.config);
    w.string(v.pool, StorageLimits.NAME_MAX);
    uuidCodec.encode(w, v.poolUuid);
    w.string(v.poolType, 16).string(v.key, StorageLimits.PATH_MAX).string(v.path, StorageLimits.PATH_MAX);
    tenantCodec.encode(w, v.tenant);
  },
  decode(r) {
    return {
      config: volumeConfigCodec.decode(r),
      pool: checkStorageName(r.string(StorageLimits.NAME_MAX, 'vol.pool'), 'vol.pool'),
      poolUuid: uuidCodec.decode(r),
      poolType: checkEnum(r.string(16, 'vol.poolType'), POOL_TYPES, 'vol.poolType'),
      key: checkPath(r.string(StorageLimits.PATH_MAX, 'vol.key'), 'vol.key'),
      path: checkPath(r.string(StorageLimits.PATH_MAX, 'vol.path'), 'vol.path'),
      tenant: tenantCodec.decode(r),
    };
  },
};

// ---------- small field codecs for the actions ----------

type Fields<T> = { [K in keyof T]: [K, Codec<T[K]>] }[keyof T];
function fields<T extends object>(...fs: Fields<T>[]): Codec<T> {
  return {
    encode(w: XdrWriter, v: T) {
      for (const [k, c] of fs) c.encode(w, v[k]);
    },
    decode(r: XdrReader) {
      const out = {} as T;
      for (const [k, c] of fs) out[k] = c.decode(r);
      return out;
    },
  };
}

const nameF = (field: string): Codec<string> => ({
  encode: (w, v) => void w.string(v, StorageLimits.NAME_MAX),
  decode: (r) => checkStorageName(r.string(StorageLimits.NAME_MAX, field), field),
});
// Lookup keys from clients (a volume's key or path): bounded text; an unconfined one simply matches nothing.
const lookupTextF = (field: string): Codec<string> => ({
  encode: (w, v) => void w.string(v, StorageLimits.PATH_MAX),
  decode: (r) => checkText(r.string(StorageLimits.PATH_MAX, field), field, StorageLimits.PATH_MAX),
});
const uuidF: Codec<Buffer> = uuidCodec;
const boolF = (field: string): Codec<boolean> => ({ encode: (w, v) => void w.bool(v), decode: (r) => r.bool(field) });
const sizeF = (field: string): Codec<bigint> => ({ encode: (w, v) => void w.u64(v), decode: (r) => checkSize(r.u64(field), field) });
const u32F = (field: string, max: number): Codec<number> => ({ encode: (w, v) => void w.u32(v), decode: (r) => checkRange(r.u32(field), 0, max, field) });
const listF = <T>(max: number, c: Codec<T>, field: string): Codec<T[]> => ({
  encode: (w, v) => void w.array(v, max, c.encode),
  decode: (r) => r.array(max, c.decode, field),
});

// No fields (shared.ts's `empty` is typed Record<string, never>, which no answer with an `action` can satisfy).
const empty: Codec<object> = { encode() {}, decode: () => ({}) };
// Any name libvirt knows as a pool type (source discovery answers for types virtgate does not serve too).
export const LIBVIRT_POOL_TYPES = [
  'dir',
  'fs',
  'netfs',
  'logical',
  'disk',
  'iscsi',
  'iscsi-direct',
  'scsi',
  'mpath',
  'rbd',
  'sheepdog',
  'gluster',
  'zfs',
  'vstorage',
];
const typeF: Codec<string> = { encode: (w, v) => void w.string(v, 16), decode: (r) => checkEnum(r.string(16, 'type'), LIBVIRT_POOL_TYPES, 'type') };
const hostF: Codec<string> = {
  encode: (w, v) => void w.string(v, StorageLimits.TEXT_MAX),
  decode: (r) => {
    const h = r.string(StorageLimits.TEXT_MAX, 'host');
    if (h !== '' && !HOSTNAME_RE.test(h)) throw VG_ERR_IPC_VALIDATION('host', 'must be a host name or address');
    return h;
  },
};
const poolAns = fields<{ pool: PoolRecord }>(['pool', poolRecordCodec]);
const volAns = fields<{ vol: VolumeRecord }>(['vol', volumeRecordCodec]);
const byUuid = fields<{ uuid: Buffer }>(['uuid', uuidF]);

// The pool every tenant (and the host) has with the qemu driver (its name is unique per tenant).
export const DEFAULT_POOL = 'default';

// Pool lookups: by name or uuid. Reads carry no actor: the front end filters what the caller may see.
export const POOL_READ = actionGroup('POOL_READ', false, {
  list: action(0, empty, fields<{ pools: PoolRecord[] }>(['pools', listF(StorageLimits.POOLS_MAX, poolRecordCodec, 'pools')])),
  byName: action(1, fields<{ name: string }>(['name', nameF('name')]), poolAns),
  byUuid: action(2, byUuid, poolAns),
  // The tenant's pool named `default` ('' = the host's), which the helper makes (and journals) when the tenant has none
  // (qemu driver): every tenant finds one, so clients never try to make it themselves.
  defaultFor: action(3, fields<{ tenant: string }>(['tenant', tenantCodec]), poolAns),
});

// Pool writes: the helper checks the actor's tenant against the pool's (another tenant's pool is "not found").
export const POOL_WRITE = actionGroup('POOL_WRITE', true, {
  define: action(0, fields<{ config: PoolConfig }>(['config', poolConfigCodec]), poolAns),
  create: action(1, fields<{ config: PoolConfig }>(['config', poolConfigCodec]), poolAns), // define + start, transient
  build: action(2, byUuid, poolAns),
  start: action(3, byUuid, poolAns),
  destroy: action(4, byUuid, poolAns),
  delete: action(5, byUuid, poolAns),
  undefine: action(6, byUuid, empty),
  refresh: action(7, byUuid, poolAns),
  setAutostart: action(8, fields<{ uuid: Buffer; autostart: boolean }>(['uuid', uuidF], ['autostart', boolF('autostart')]), poolAns),
  // virConnectFindStoragePoolSources: a host probe (a real driver scans volume groups, NFS exports), journaled.
  findSources: action(
    9,
    fields<{ type: string; host: string }>(['type', typeF], ['host', hostF]),
    fields<{ xml: string }>(['xml', { encode: (w, v) => void w.string(v, 64 * 1024), decode: (r) => r.string(64 * 1024, 'sources') }]),
  ),
});

const chunkF: Codec<Buffer> = {
  encode: (w, v) => void w.opaque(v, StorageLimits.CHUNK_MAX),
  decode: (r) => Buffer.from(r.opaque(StorageLimits.CHUNK_MAX, 'data')),
};
const handleF: Codec<number> = { encode: (w, v) => void w.u32(v), decode: (r) => r.u32('handle') };

// A volume's bytes for a download: `length` (1 .. SIZE_MAX) is how far the caller wants to go from `offset`; the answer
// is either data (at most CHUNK_MAX bytes) or, when `sparse`, a hole (a run of zeroes the helper skipped), never both.
export interface VolumeChunk {
  data: Buffer;
  hole: bigint;
}

export const VOLUME_READ = actionGroup('VOLUME_READ', false, {
  list: action(0, byUuid, fields<{ vols: VolumeRecord[] }>(['vols', listF(StorageLimits.VOLUMES_MAX, volumeRecordCodec, 'vols')])),
  byName: action(1, fields<{ pool: Buffer; name: string }>(['pool', uuidF], ['name', nameF('name')]), volAns),
  byKey: action(2, fields<{ key: string }>(['key', lookupTextF('key')]), volAns),
  byPath: action(3, fields<{ path: string }>(['path', lookupTextF('path')]), volAns),
  read: action(
    4,
    fields<{ pool: Buffer; name: string; offset: bigint; length: bigint; sparse: boolean }>(
      ['pool', uuidF],
      ['name', nameF('name')],
      ['offset', sizeF('offset')],
      ['length', sizeF('length')],
      ['sparse', boolF('sparse')],
    ),
    fields<VolumeChunk>(['data', chunkF], ['hole', sizeF('hole')]),
  ),
});

const volRef = fields<{ pool: Buffer; name: string }>(['pool', uuidF], ['name', nameF('name')]);
export const VOLUME_WRITE = actionGroup('VOLUME_WRITE', true, {
  // prealloc: VIR_STORAGE_VOL_CREATE_PREALLOC_METADATA (qcow2 tables allocated up front).
  create: action(
    0,
    fields<{ pool: Buffer; config: VolumeConfig; prealloc: boolean }>(['pool', uuidF], ['config', volumeConfigCodec], ['prealloc', boolF('prealloc')]),
    volAns,
  ),
  // Clone `from` (a volume of `fromPool`) into `pool` as `config`.
  createFrom: action(
    1,
    fields<{ pool: Buffer; config: VolumeConfig; fromPool: Buffer; from: string }>(
      ['pool', uuidF],
      ['config', volumeConfigCodec],
      ['fromPool', uuidF],
      ['from', nameF('from')],
    ),
    volAns,
  ),
  delete: action(2, volRef, empty),
  // capacity: the new size (or the delta) in bytes; flags: VIR_STORAGE_VOL_RESIZE_* (ALLOCATE | DELTA | SHRINK).
  resize: action(
    3,
    fields<{ pool: Buffer; name: string; capacity: bigint; flags: number }>(
      ['pool', uuidF],
      ['name', nameF('name')],
      ['capacity', sizeF('capacity')],
      ['flags', u32F('flags', 7)],
    ),
    volAns,
  ),
  wipe: action(4, volRef, volAns),
  // virStorageVolUpload, in three steps. `upload` is the audited, journaled write (tenancy and range checked, a
  // staging file opened); the chunks and the final `uploadEnd` belong to it (same actor request id and tenant, checked
  // by the helper) and are not journaled one by one: see UPLOAD_CONTINUATIONS. Nothing reaches the volume before
  // `uploadEnd` with commit; an abort (or a chunk refused) leaves it as it was.
  upload: action(
    5,
    fields<{ pool: Buffer; name: string; offset: bigint; length: bigint }>(
      ['pool', uuidF],
      ['name', nameF('name')],
      ['offset', sizeF('offset')],
      ['length', sizeF('length')],
    ),
    fields<{ handle: number; length: bigint; vol: VolumeRecord }>(['handle', handleF], ['length', sizeF('length')], ['vol', volumeRecordCodec]),
  ),
  // `at`: where this chunk starts, relative to the upload's offset (chunks come in order); data, or a hole of `hole` bytes.
  uploadChunk: action(
    6,
    fields<{ handle: number; at: bigint; data: Buffer; hole: bigint }>(['handle', handleF], ['at', sizeF('at')], ['data', chunkF], ['hole', sizeF('hole')]),
    empty,
  ),
  uploadEnd: action(
    7,
    fields<{ handle: number; commit: boolean }>(['handle', handleF], ['commit', boolF('commit')]),
    fields<{ bytes: bigint }>(['bytes', sizeF('bytes')]),
  ),
});

// Writes that continue an upload whose `upload` request was journaled: the helper runs them without a journal line
// or a replay check of their own (they carry that request's id; a write per 256 KiB chunk would cost a journal line,
// a durable sync and a replay-index entry each). They act only on an open upload of the same request id and tenant.
export const UPLOAD_CONTINUATIONS: ReadonlySet<string> = new Set(['VOLUME_WRITE_REQ.uploadChunk', 'VOLUME_WRITE_REQ.uploadEnd']);
