// SPDX-License-Identifier: Apache-2.0
// Handlers for the procedures of ../../protocol/procs/storage.ts: storage pools and volumes. Client XML is parsed
// here (../xml/storage.ts) and only typed configs go to the helper; every call's objects are the helper's records, so
// policy decides on real names and tenants, and a pool or volume the caller may not see answers "not found".
import {
  VG_ERR_ARG_INVALID,
  VG_ERR_DOMAIN_STATE,
  VG_ERR_INTERNAL,
  VG_ERR_NO_STORAGE_POOL,
  VG_ERR_NO_STORAGE_VOL,
  VG_ERR_NOT_SUPPORTED,
} from '../../common/errors';
import { uuidToString } from '../../common/uuid';
import { type ObjectEvent, Op } from '../../ipc/program';
import { DEFAULT_POOL, LIBVIRT_POOL_TYPES, type PoolRecord, StorageLimits, type VolumeRecord, isStorageName } from '../../ipc/objects/storage';
import { encodeEvent } from '../../protocol/messages';
import { ListPoolsFlags, PS, PoolEventId, PoolState, type RemotePool, type RemoteVol, STORAGE_LIST_MAX, VolStreamFlags } from '../../protocol/procs/storage';
import type { ByteSink, ByteSource } from '../streams';
import { registerObjectEventKind } from '../object-events';
import { formatPoolXml, formatVolumeXml, parsePoolXml, parseVolumeXml } from '../xml/storage';
import { type CallObject, type Entry, type HandlerContext, checkFlags, entry } from './common';

// ---------- objects as policy sees them ----------

export const poolObject = (p: PoolRecord): CallObject => ({ kind: 'storage_pool', name: p.config.name, uuid: uuidToString(p.config.uuid), tenant: p.tenant });
export const volObject = (v: VolumeRecord): CallObject => ({ kind: 'storage_vol', name: `${v.pool}/${v.config.name}`, tenant: v.tenant });

const remotePool = (p: PoolRecord): RemotePool => ({ name: p.config.name, uuid: p.config.uuid });
const remoteVol = (v: VolumeRecord): RemoteVol => ({ pool: v.pool, name: v.config.name, key: v.key });

const noPool = (how: string, what: string) => VG_ERR_NO_STORAGE_POOL(`: no storage pool with matching ${how} '${what}'`);
const noVol = (how: string, what: string) => VG_ERR_NO_STORAGE_VOL(`: no storage vol with matching ${how} '${what}'`);

// What a call's resolver found, for its handler (one helper round trip, not two). Keyed by the decoded arguments.
const resolved = new WeakMap<object, { pool?: PoolRecord; vol?: VolumeRecord; from?: VolumeRecord }>();

// ---------- helper records: from the front end's mirror when it is synced, else by a helper call ----------
// Pool and volume records carry their typed configs, so their XML is formatted from the mirrored record too.

// Pool names are unique per tenant (qemu: every tenant has its own `default`). A name means, in this order: the
// pool of the given uuid when it bears that name (a remote_nonnull_storage_pool from a listing), the session's own
// tenant's pool, the host's (shared) one, else the only one of that name the caller may see. Nothing visible: the
// first of that name (the caller's visibility check then answers "no storage pool" and notes the denial).
async function poolByName(ctx: HandlerContext, name: string, uuid?: Buffer): Promise<PoolRecord> {
  if (!isStorageName(name)) throw noPool('name', name);
  const tenant = ctx.session.tenant;
  let all = await allPools(ctx);
  if (tenant !== '' && name === DEFAULT_POOL && !all.some((p) => p.config.name === name && p.tenant === tenant)) {
    const made = await provisionDefault(ctx);
    if (made) all = [...all, made];
  }
  const named = all.filter((p) => p.config.name === name);
  const pick =
    (uuid && named.find((p) => p.config.uuid.equals(uuid))) ??
    named.find((p) => p.tenant === tenant) ??
    named.find((p) => p.tenant === '') ??
    onlyVisible(ctx, named) ??
    named[0];
  if (!pick) throw noPool('name', name);
  return pick;
}

function onlyVisible(ctx: HandlerContext, pools: PoolRecord[]): PoolRecord | undefined {
  const seen = pools.filter((p) => ctx.canSee(poolObject(p)));
  if (seen.length > 1)
    throw VG_ERR_NO_STORAGE_POOL(`: no storage pool with matching name '${seen[0].config.name}' (${seen.length} tenants have one: look it up by uuid)`);
  return seen[0];
}

// A volume's pool: the one its key (path) names when that volume bears these names, else by name as above.
async function poolOfVol(ctx: HandlerContext, vol: RemoteVol): Promise<PoolRecord> {
  const byKey = vol.key ? ctx.mirror.objects.volumeByPath(vol.key) : undefined;
  const uuid = byKey && byKey.pool === vol.pool && byKey.config.name === vol.name ? byKey.poolUuid : undefined;
  return poolByName(ctx, vol.pool, uuid);
}

async function allPools(ctx: HandlerContext): Promise<PoolRecord[]> {
  return ctx.mirror.objects.pools() ?? (await ctx.helper.act(Op.POOL_READ_REQ, 'list', {})).pools;
}

// The session tenant's `default` pool, made by the helper on first need (qemu driver; a caller who could see it).
async function provisionDefault(ctx: HandlerContext): Promise<PoolRecord | null> {
  const tenant = ctx.session.tenant;
  if (tenant === '' || (await ctx.facts()).driver !== 'qemu') return null;
  if (!ctx.canSee({ kind: 'storage_pool', name: DEFAULT_POOL, tenant }, 'storage_pool:getattr')) return null;
  try {
    return (await ctx.helper.act(Op.POOL_READ_REQ, 'defaultFor', { tenant })).pool;
  } catch {
    return null; // e.g. its directory is another pool's: listings go on without it, a lookup answers "no storage pool"
  }
}

async function poolByUuid(ctx: HandlerContext, uuid: Buffer): Promise<PoolRecord> {
  const mirrored = ctx.mirror.objects.poolByUuid(uuid);
  if (mirrored === null) throw noPool('uuid', uuidToString(uuid));
  return mirrored ?? (await ctx.helper.act(Op.POOL_READ_REQ, 'byUuid', { uuid })).pool;
}

const notActive = (pool: PoolRecord) => VG_ERR_DOMAIN_STATE(`storage pool '${pool.config.name}' is not active`);

async function volByName(ctx: HandlerContext, pool: PoolRecord, name: string): Promise<VolumeRecord> {
  if (!isStorageName(name)) {
    if (!pool.active) throw notActive(pool);
    throw noVol('name', name);
  }
  // The helper's order: the pool must exist and run, then the volume must exist.
  const now = ctx.mirror.objects.poolByUuid(pool.config.uuid);
  if (now === null) throw noPool('uuid', uuidToString(pool.config.uuid));
  if (now) {
    if (!now.active) throw notActive(now);
    const vol = ctx.mirror.objects.volumeByName(now.config.uuid, name);
    if (vol === null) throw noVol('name', name);
    if (vol) return vol;
  }
  return (await ctx.helper.act(Op.VOLUME_READ_REQ, 'byName', { pool: pool.config.uuid, name })).vol;
}

// By key or by path (the same text for every served pool type), over running pools.
async function volByPath(ctx: HandlerContext, how: 'key' | 'path', what: string): Promise<VolumeRecord> {
  const mirrored = ctx.mirror.objects.volumeByPath(what);
  if (mirrored === null) throw noVol(how, what);
  if (mirrored) return mirrored;
  return how === 'key'
    ? (await ctx.helper.act(Op.VOLUME_READ_REQ, 'byKey', { key: what })).vol
    : (await ctx.helper.act(Op.VOLUME_READ_REQ, 'byPath', { path: what })).vol;
}

// A lookup the caller may see, else the same "not found" as no object at all.
function visiblePool(ctx: HandlerContext, p: PoolRecord, how: string, what: string): PoolRecord {
  if (!ctx.canSee(poolObject(p))) {
    ctx.noteHidden?.(poolObject(p));
    throw noPool(how, what);
  }
  return p;
}
function visibleVol(ctx: HandlerContext, v: VolumeRecord, how: string, what: string): VolumeRecord {
  if (!ctx.canSee(volObject(v))) {
    ctx.noteHidden?.(volObject(v));
    throw noVol(how, what);
  }
  return v;
}

async function poolOf(ctx: HandlerContext, args: { pool: RemotePool }): Promise<PoolRecord> {
  return resolved.get(args)?.pool ?? visiblePool(ctx, await poolByName(ctx, args.pool.name, args.pool.uuid), 'name', args.pool.name);
}
async function volOf(ctx: HandlerContext, args: { vol: RemoteVol }): Promise<VolumeRecord> {
  const r = resolved.get(args)?.vol;
  if (r) return r;
  const pool = visiblePool(ctx, await poolOfVol(ctx, args.vol), 'name', args.vol.pool);
  return visibleVol(ctx, await volByName(ctx, pool, args.vol.name), 'name', args.vol.name);
}

// Resolvers: the objects a call acts on, as the helper records them (the dispatcher decides each permission on them).
const onPool = {
  objects: async (ctx: HandlerContext, args: { pool: RemotePool }): Promise<CallObject[]> => {
    const pool = await poolByName(ctx, args.pool.name, args.pool.uuid);
    resolved.set(args, { pool });
    return [poolObject(pool)];
  },
};
const onVol = {
  objects: async (ctx: HandlerContext, args: { vol: RemoteVol }): Promise<CallObject[]> => {
    const pool = await poolOfVol(ctx, args.vol);
    if (!ctx.canSee(poolObject(pool))) return [poolObject(pool)]; // the dispatcher answers "no storage pool"
    const vol = await volByName(ctx, pool, args.vol.name);
    resolved.set(args, { pool, vol });
    return [volObject(vol)];
  },
};

// What the caller may see; a tenant's own pool hides the host's pool of the same name (names are per tenant).
async function listPools(ctx: HandlerContext): Promise<PoolRecord[]> {
  const tenant = ctx.session.tenant;
  let pools = await allPools(ctx);
  if (tenant !== '' && !pools.some((p) => p.config.name === DEFAULT_POOL && p.tenant === tenant)) {
    const made = await provisionDefault(ctx);
    if (made) pools = [...pools, made];
  }
  const own = new Set(tenant === '' ? [] : pools.filter((p) => p.tenant === tenant).map((p) => p.config.name));
  return pools.filter((p) => !(p.tenant === '' && own.has(p.config.name)) && ctx.canSee(poolObject(p), 'storage_pool:getattr'));
}

// `pool` is running (activePool); the mirror holds the volumes of running pools.
async function listVols(ctx: HandlerContext, pool: PoolRecord): Promise<VolumeRecord[]> {
  const vols = ctx.mirror.objects.volumes(pool.config.uuid) ?? (await ctx.helper.act(Op.VOLUME_READ_REQ, 'list', { uuid: pool.config.uuid })).vols;
  return vols.filter((v) => ctx.canSee(volObject(v), 'storage_vol:getattr'));
}

const POOL_TYPE_FLAGS: Record<string, number> = { dir: ListPoolsFlags.DIR, fs: ListPoolsFlags.FS, netfs: ListPoolsFlags.NETFS };
const TYPE_MASK = ListPoolsFlags.ALL & ~63; // every pool-type bit

// virConnectListAllStoragePools filter groups: within a group any flag matches; groups combine with AND.
export function matchesPoolFlags(p: PoolRecord, flags: number): boolean {
  const F = ListPoolsFlags;
  const group = (mask: number, test: () => boolean): boolean => (flags & mask) === 0 || test();
  return (
    group(F.ACTIVE | F.INACTIVE, () => ((flags & F.ACTIVE) !== 0 && p.active) || ((flags & F.INACTIVE) !== 0 && !p.active)) &&
    group(F.PERSISTENT | F.TRANSIENT, () => ((flags & F.PERSISTENT) !== 0 && p.persistent) || ((flags & F.TRANSIENT) !== 0 && !p.persistent)) &&
    group(F.AUTOSTART | F.NO_AUTOSTART, () => ((flags & F.AUTOSTART) !== 0 && p.autostart) || ((flags & F.NO_AUTOSTART) !== 0 && !p.autostart)) &&
    group(TYPE_MASK, () => (flags & POOL_TYPE_FLAGS[p.config.type]) !== 0)
  );
}

function maxNames(n: number): number {
  if (n < 0 || n > STORAGE_LIST_MAX) throw VG_ERR_ARG_INVALID(`maxnames must be in [0, ${STORAGE_LIST_MAX}]`);
  return n;
}

// The host of a netfs source spec (`<source><host name='...'/></source>`), '' when none is given.
function specHost(srcSpec: string | null): string {
  return (srcSpec && /<host\s+name\s*=\s*(['"])([A-Za-z0-9_.:[\]-]{1,255})\1/.exec(srcSpec)?.[2]) || '';
}

// ---------- pools ----------

// The pool a define/create names: the existing record (its tenant decides), or a new one of the caller's tenant.
const freshPool = {
  objects: async (ctx: HandlerContext, args: { xml: string }): Promise<CallObject[]> => {
    let name: string;
    let uuid: Buffer;
    try {
      ({ name, uuid } = parsePoolXml(args.xml));
    } catch {
      return [{ kind: 'storage_pool', name: '', tenant: ctx.actor().tenant, fresh: true }]; // the handler reports the XML error
    }
    // An existing pool's uuid names that pool, whoever's it is (another tenant's answers "no storage pool", nothing is
    // sent on). Otherwise names are per tenant: only the session tenant's pool of that name is redefined.
    const all = await allPools(ctx);
    const same = all.find((p) => p.config.uuid.equals(uuid));
    if (same) return [poolObject(same)];
    const own = isStorageName(name) ? all.find((p) => p.config.name === name && p.tenant === ctx.session.tenant) : undefined;
    return [own ? poolObject(own) : { kind: 'storage_pool', name, tenant: ctx.actor().tenant, fresh: true }];
  },
};

const poolHandlers: Entry[] = [
  entry(PS.CONNECT_NUM_OF_STORAGE_POOLS, async (ctx) => ({ num: (await listPools(ctx)).filter((p) => p.active).length })),
  entry(PS.CONNECT_LIST_STORAGE_POOLS, async (ctx, { maxnames }) => ({
    names: (await listPools(ctx))
      .filter((p) => p.active)
      .map((p) => p.config.name)
      .slice(0, maxNames(maxnames)),
  })),
  entry(PS.CONNECT_NUM_OF_DEFINED_STORAGE_POOLS, async (ctx) => ({ num: (await listPools(ctx)).filter((p) => !p.active).length })),
  entry(PS.CONNECT_LIST_DEFINED_STORAGE_POOLS, async (ctx, { maxnames }) => ({
    names: (await listPools(ctx))
      .filter((p) => !p.active)
      .map((p) => p.config.name)
      .slice(0, maxNames(maxnames)),
  })),
  entry(PS.CONNECT_LIST_ALL_STORAGE_POOLS, async (ctx, { needResults, flags }) => {
    checkFlags(flags, ListPoolsFlags.ALL, 'testConnectListAllStoragePools');
    const pools = (await listPools(ctx)).filter((p) => matchesPoolFlags(p, flags));
    return { pools: needResults ? pools.map(remotePool) : [], ret: pools.length };
  }),
  entry(PS.CONNECT_FIND_STORAGE_POOL_SOURCES, async (ctx, { type, srcSpec, flags }) => {
    checkFlags(flags, 0, 'testConnectFindStoragePoolSources');
    // An unknown type name: libvirt's test driver treats it as a type without discovery.
    if (!LIBVIRT_POOL_TYPES.includes(type)) throw VG_ERR_NOT_SUPPORTED(`pool type '${type}' does not support source discovery`);
    return { xml: (await ctx.helper.act(Op.POOL_WRITE_REQ, 'findSources', { actor: ctx.actor(), type, host: specHost(srcSpec) })).xml };
  }),
  entry(PS.STORAGE_POOL_LOOKUP_BY_NAME, async (ctx, { name }) => ({ pool: remotePool(visiblePool(ctx, await poolByName(ctx, name), 'name', name)) }), {
    objects: async () => [],
  }),
  entry(
    PS.STORAGE_POOL_LOOKUP_BY_UUID,
    async (ctx, { uuid }) => ({ pool: remotePool(visiblePool(ctx, await poolByUuid(ctx, uuid), 'uuid', uuidToString(uuid))) }),
    { objects: async () => [] },
  ),
  entry(PS.STORAGE_POOL_LOOKUP_BY_VOLUME, async (ctx, { vol }) => ({ pool: remotePool(visiblePool(ctx, await poolOfVol(ctx, vol), 'name', vol.pool)) }), {
    objects: async () => [],
  }),
  entry(
    PS.STORAGE_POOL_GET_INFO,
    async (ctx, args) => {
      const p = await poolOf(ctx, args);
      return { state: p.active ? PoolState.RUNNING : PoolState.INACTIVE, capacity: p.capacity, allocation: p.allocation, available: p.available };
    },
    onPool,
  ),
  entry(
    PS.STORAGE_POOL_GET_XML_DESC,
    async (ctx, args) => {
      checkFlags(args.flags, 0, 'testStoragePoolGetXMLDesc');
      return { xml: formatPoolXml(await poolOf(ctx, args)) };
    },
    onPool,
  ),
  entry(PS.STORAGE_POOL_GET_AUTOSTART, async (ctx, args) => ({ autostart: (await poolOf(ctx, args)).autostart ? 1 : 0 }), onPool),
  entry(PS.STORAGE_POOL_IS_ACTIVE, async (ctx, args) => ({ active: (await poolOf(ctx, args)).active ? 1 : 0 }), onPool),
  entry(PS.STORAGE_POOL_IS_PERSISTENT, async (ctx, args) => ({ persistent: (await poolOf(ctx, args)).persistent ? 1 : 0 }), onPool),

  entry(
    PS.STORAGE_POOL_DEFINE_XML,
    async (ctx, { xml, flags }) => {
      checkFlags(flags, 1, 'testStoragePoolDefineXML'); // VALIDATE: we always validate
      const config = parsePoolXml(xml);
      return { pool: remotePool((await ctx.helper.act(Op.POOL_WRITE_REQ, 'define', { actor: ctx.actor(), config })).pool) };
    },
    freshPool,
  ),
  entry(
    PS.STORAGE_POOL_CREATE_XML,
    async (ctx, { xml, flags }) => {
      checkFlags(flags, 0, 'testStoragePoolCreateXML');
      const config = parsePoolXml(xml);
      return { pool: remotePool((await ctx.helper.act(Op.POOL_WRITE_REQ, 'create', { actor: ctx.actor(), config })).pool) };
    },
    freshPool,
  ),
  entry(
    PS.STORAGE_POOL_CREATE,
    async (ctx, args) => {
      checkFlags(args.flags, 0, 'testStoragePoolCreate');
      await ctx.helper.act(Op.POOL_WRITE_REQ, 'start', { actor: ctx.actor(), uuid: (await poolOf(ctx, args)).config.uuid });
    },
    onPool,
  ),
  entry(
    PS.STORAGE_POOL_BUILD,
    async (ctx, args) => {
      checkFlags(args.flags, 0, 'testStoragePoolBuild');
      await ctx.helper.act(Op.POOL_WRITE_REQ, 'build', { actor: ctx.actor(), uuid: (await poolOf(ctx, args)).config.uuid });
    },
    onPool,
  ),
  entry(
    PS.STORAGE_POOL_DESTROY,
    async (ctx, args) => void (await ctx.helper.act(Op.POOL_WRITE_REQ, 'destroy', { actor: ctx.actor(), uuid: (await poolOf(ctx, args)).config.uuid })),
    onPool,
  ),
  entry(
    PS.STORAGE_POOL_DELETE,
    async (ctx, args) => {
      checkFlags(args.flags, 0, 'testStoragePoolDelete');
      await ctx.helper.act(Op.POOL_WRITE_REQ, 'delete', { actor: ctx.actor(), uuid: (await poolOf(ctx, args)).config.uuid });
    },
    onPool,
  ),
  entry(
    PS.STORAGE_POOL_UNDEFINE,
    async (ctx, args) => void (await ctx.helper.act(Op.POOL_WRITE_REQ, 'undefine', { actor: ctx.actor(), uuid: (await poolOf(ctx, args)).config.uuid })),
    onPool,
  ),
  entry(
    PS.STORAGE_POOL_REFRESH,
    async (ctx, args) => {
      checkFlags(args.flags, 0, 'testStoragePoolRefresh');
      await ctx.helper.act(Op.POOL_WRITE_REQ, 'refresh', { actor: ctx.actor(), uuid: (await poolOf(ctx, args)).config.uuid });
    },
    onPool,
  ),
  entry(
    PS.STORAGE_POOL_SET_AUTOSTART,
    async (ctx, args) =>
      void (await ctx.helper.act(Op.POOL_WRITE_REQ, 'setAutostart', {
        actor: ctx.actor(),
        uuid: (await poolOf(ctx, args)).config.uuid,
        autostart: args.autostart !== 0,
      })),
    onPool,
  ),
];

// ---------- volumes ----------

function activePool(p: PoolRecord, named: boolean): PoolRecord {
  // libvirt's two wordings: by name (testStoragePoolObjFindActiveByName) and listAllVolumes' own.
  if (!p.active) throw VG_ERR_DOMAIN_STATE(named ? `storage pool '${p.config.name}' is not active` : 'storage pool is not active');
  return p;
}

// A volume to be created in `pool`: policy sees POOL/NAME with the pool's tenant (volumes inherit it), and the audit
// record names it. A pool the caller may not see is returned instead, so the answer is "no storage pool".
async function newVol(ctx: HandlerContext, args: { pool: RemotePool; xml: string }): Promise<CallObject[]> {
  const pool = await poolByName(ctx, args.pool.name, args.pool.uuid);
  if (!ctx.canSee(poolObject(pool))) return [poolObject(pool)];
  resolved.set(args, { pool });
  let name = '';
  try {
    name = parseVolumeXml(args.xml, pool.config.type).name;
  } catch {
    /* the handler reports the XML error */
  }
  return [{ kind: 'storage_vol', name: `${pool.config.name}/${name}`, tenant: pool.tenant }];
}

const volHandlers: Entry[] = [
  entry(PS.STORAGE_POOL_NUM_OF_VOLUMES, async (ctx, args) => ({ num: (await listVols(ctx, activePool(await poolOf(ctx, args), true))).length }), onPool),
  entry(
    PS.STORAGE_POOL_LIST_VOLUMES,
    async (ctx, args) => ({
      names: (await listVols(ctx, activePool(await poolOf(ctx, args), true))).map((v) => v.config.name).slice(0, maxNames(args.maxnames)),
    }),
    onPool,
  ),
  entry(
    PS.STORAGE_POOL_LIST_ALL_VOLUMES,
    async (ctx, args) => {
      checkFlags(args.flags, 0, 'testStoragePoolListAllVolumes');
      const vols = await listVols(ctx, activePool(await poolOf(ctx, args), false));
      return { vols: args.needResults ? vols.map(remoteVol) : [], ret: vols.length };
    },
    onPool,
  ),
  entry(
    PS.STORAGE_VOL_LOOKUP_BY_NAME,
    async (ctx, { pool, name }) => {
      const p = visiblePool(ctx, await poolByName(ctx, pool.name, pool.uuid), 'name', pool.name);
      return { vol: remoteVol(visibleVol(ctx, await volByName(ctx, p, name), 'name', name)) };
    },
    { objects: async () => [] },
  ),
  entry(
    PS.STORAGE_VOL_LOOKUP_BY_KEY,
    async (ctx, { key }) => {
      if (Buffer.byteLength(key) > StorageLimits.PATH_MAX || !/^[\x20-\x7e]*$/.test(key)) throw noVol('key', key);
      return { vol: remoteVol(visibleVol(ctx, await volByPath(ctx, 'key', key), 'key', key)) };
    },
    { objects: async () => [] },
  ),
  entry(
    PS.STORAGE_VOL_LOOKUP_BY_PATH,
    async (ctx, { path }) => {
      if (Buffer.byteLength(path) > StorageLimits.PATH_MAX || !/^[\x20-\x7e]*$/.test(path)) throw noVol('path', path);
      return { vol: remoteVol(visibleVol(ctx, await volByPath(ctx, 'path', path), 'path', path)) };
    },
    { objects: async () => [] },
  ),
  entry(
    PS.STORAGE_VOL_GET_INFO,
    async (ctx, args) => {
      const v = await volOf(ctx, args);
      return { type: 0 /* VIR_STORAGE_VOL_FILE: every served pool type */, capacity: v.config.capacity, allocation: v.config.allocation };
    },
    onVol,
  ),
  entry(
    PS.STORAGE_VOL_GET_XML_DESC,
    async (ctx, args) => {
      checkFlags(args.flags, 0, 'testStorageVolGetXMLDesc');
      return { xml: formatVolumeXml(await volOf(ctx, args)) };
    },
    onVol,
  ),
  entry(PS.STORAGE_VOL_GET_PATH, async (ctx, args) => ({ name: (await volOf(ctx, args)).path }), onVol),

  entry(
    PS.STORAGE_VOL_CREATE_XML,
    async (ctx, args) => {
      // VALIDATE (4): we always validate. PREALLOC_METADATA (1): the qemu driver's pools honour it, as libvirt's dir
      // backend does (virt-install asks for it with every qcow2); libvirt's test driver refuses it.
      const qemu = (await ctx.facts()).driver === 'qemu';
      checkFlags(args.flags, qemu ? 5 : 4, qemu ? 'storageVolCreateXML' : 'testStorageVolCreateXML');
      const pool = activePool(await poolOf(ctx, args), true);
      const config = parseVolumeXml(args.xml, pool.config.type);
      const fields = { actor: ctx.actor(), pool: pool.config.uuid, config, prealloc: (args.flags & 1) !== 0 };
      return { vol: remoteVol((await ctx.helper.act(Op.VOLUME_WRITE_REQ, 'create', fields)).vol) };
    },
    { objects: newVol },
  ),
  entry(
    PS.STORAGE_VOL_CREATE_XML_FROM,
    async (ctx, args) => {
      checkFlags(args.flags, 4, 'testStorageVolCreateXMLFrom');
      const pool = activePool(await poolOf(ctx, args), true);
      const config = parseVolumeXml(args.xml, pool.config.type);
      const from = resolved.get(args)?.from ?? (await volOf(ctx, { vol: args.clonevol }));
      const fields = { actor: ctx.actor(), pool: pool.config.uuid, config, fromPool: from.poolUuid, from: from.config.name };
      return { vol: remoteVol((await ctx.helper.act(Op.VOLUME_WRITE_REQ, 'createFrom', fields)).vol) };
    },
    {
      // The new volume, its pool, and the source volume (which the caller must at least see).
      objects: async (ctx, args) => {
        const objects = await newVol(ctx, args);
        if (objects[0].kind !== 'storage_vol') return objects;
        const srcPool = await poolOfVol(ctx, args.clonevol);
        if (!ctx.canSee(poolObject(srcPool))) return [...objects, poolObject(srcPool)];
        const from = await volByName(ctx, srcPool, args.clonevol.name);
        resolved.set(args, { ...resolved.get(args), from });
        return [...objects, volObject(from)];
      },
    },
  ),
  entry(
    PS.STORAGE_VOL_DELETE,
    async (ctx, args) => {
      checkFlags(args.flags, 0, 'testStorageVolDelete');
      const v = await volOf(ctx, args);
      await ctx.helper.act(Op.VOLUME_WRITE_REQ, 'delete', { actor: ctx.actor(), pool: v.poolUuid, name: v.config.name });
    },
    onVol,
  ),
  entry(
    PS.STORAGE_VOL_WIPE,
    async (ctx, args) => {
      checkFlags(args.flags, 0, 'storageVolWipe');
      const v = await volOf(ctx, args);
      await ctx.helper.act(Op.VOLUME_WRITE_REQ, 'wipe', { actor: ctx.actor(), pool: v.poolUuid, name: v.config.name });
    },
    onVol,
  ),
  entry(
    PS.STORAGE_VOL_RESIZE,
    async (ctx, args) => {
      checkFlags(args.flags, 7, 'storageVolResize');
      if (args.capacity > StorageLimits.SIZE_MAX) throw VG_ERR_ARG_INVALID('capacity too large');
      const v = await volOf(ctx, args);
      await ctx.helper.act(Op.VOLUME_WRITE_REQ, 'resize', {
        actor: ctx.actor(),
        pool: v.poolUuid,
        name: v.config.name,
        capacity: args.capacity,
        flags: args.flags,
      });
    },
    onVol,
  ),
];

// ---------- volume bytes (streams) ----------

// A download's bytes: chunks of the volume read by the helper from `offset`, `length` bytes in all; with `sparse`,
// runs of zeroes come as holes. Each read is at most one helper answer's worth; a chunk is handed out a packet at a time.
export function volumeSource(helper: HandlerContext['helper'], v: VolumeRecord, offset: bigint, length: bigint, sparse: boolean): ByteSource {
  let at = offset;
  const end = offset + length;
  let pending: Buffer = Buffer.alloc(0);
  return {
    async read(max) {
      if (pending.length === 0) {
        if (at >= end) return null;
        const chunk = await helper.act(Op.VOLUME_READ_REQ, 'read', { pool: v.poolUuid, name: v.config.name, offset: at, length: end - at, sparse });
        if (chunk.hole > 0n) {
          if (chunk.hole > end - at) throw VG_ERR_INTERNAL('the helper answered a hole past the range');
          at += chunk.hole;
          return { hole: chunk.hole };
        }
        if (chunk.data.length === 0 || BigInt(chunk.data.length) > end - at) throw VG_ERR_INTERNAL('the helper answered a bad chunk');
        at += BigInt(chunk.data.length);
        pending = chunk.data;
      }
      const out = pending.subarray(0, max);
      pending = pending.subarray(out.length);
      return out;
    },
  };
}

const streamHandlers: Entry[] = [
  entry(
    PS.STORAGE_VOL_UPLOAD,
    async (ctx, args) => {
      checkFlags(args.flags, VolStreamFlags.SPARSE, 'storageVolUpload');
      const v = await volOf(ctx, args);
      const helper = ctx.continuation;
      if (!ctx.openUpload || !helper) throw VG_ERR_INTERNAL('uploads need a stream');
      const actor = ctx.actor();
      let handle = -1; // the helper's upload, once opened
      let at = 0n;
      const chunk = async (data: Buffer, hole: bigint): Promise<void> => {
        await helper.act(Op.VOLUME_WRITE_REQ, 'uploadChunk', { actor, handle, at, data, hole });
        at += hole > 0n ? hole : BigInt(data.length);
      };
      const sink: ByteSink = {
        async write(data) {
          for (let i = 0; i < data.length; i += StorageLimits.CHUNK_MAX) await chunk(data.subarray(i, i + StorageLimits.CHUNK_MAX), 0n);
        },
        hole: (n) => chunk(Buffer.alloc(0), n),
        finish: async () => void (await helper.act(Op.VOLUME_WRITE_REQ, 'uploadEnd', { actor, handle, commit: true })),
        abort: async () => {
          if (handle >= 0) await helper.act(Op.VOLUME_WRITE_REQ, 'uploadEnd', { actor, handle, commit: false });
        },
      };
      // The call's one audited helper write opens the upload (range and tenancy checked there); a failure after it (no
      // stream left on this connection, the reply not sent) ends the stream, which aborts the upload.
      const opened = await ctx.helper.act(Op.VOLUME_WRITE_REQ, 'upload', {
        actor,
        pool: v.poolUuid,
        name: v.config.name,
        offset: args.offset,
        length: args.length,
      });
      handle = opened.handle;
      const onEnd = (end: string, bytes: number, error?: { code: string }): void =>
        ctx.recordStreamEnd?.({
          procedure: 'storageVolUpload',
          object: volObject(v).name,
          objectTenant: v.tenant,
          offset: String(args.offset),
          bytes,
          end,
          ...(error ? { code: error.code } : {}),
        });
      try {
        ctx.openUpload(sink, { maxBytes: opened.length, sparse: (args.flags & VolStreamFlags.SPARSE) !== 0 }, onEnd);
      } catch (e) {
        await Promise.resolve(sink.abort()).catch(() => undefined);
        throw e;
      }
    },
    onVol,
  ),
  entry(
    PS.STORAGE_VOL_DOWNLOAD,
    async (ctx, args) => {
      checkFlags(args.flags, VolStreamFlags.SPARSE, 'storageVolDownload');
      const v = await volOf(ctx, args);
      const cap = v.config.capacity;
      if (args.offset > cap) throw VG_ERR_ARG_INVALID(`download offset ${args.offset} is past the end of volume '${v.config.name}' (${cap} bytes)`);
      // libvirt reads to the volume's end when the length is 0 or reaches past it.
      const length = args.length === 0n || args.length > cap - args.offset ? cap - args.offset : args.length;
      ctx.openDownload(volumeSource(ctx.helper, v, args.offset, length, (args.flags & VolStreamFlags.SPARSE) !== 0));
    },
    onVol,
  ),
];

// ---------- events ----------

registerObjectEventKind('pool', {
  permission: 'storage_pool:getattr',
  object: (ev: ObjectEvent) => ({ kind: 'storage_pool', name: ev.name, uuid: uuidToString(ev.uuid), tenant: ev.tenant }),
  frames(callbackID: number, eventID: number, ev: ObjectEvent): Buffer[] {
    const pool = { name: ev.name, uuid: ev.uuid };
    if (ev.event === -1) return eventID === PoolEventId.REFRESH ? [encodeEvent(PS.STORAGE_POOL_EVENT_REFRESH, { callbackID, pool })] : [];
    return eventID === PoolEventId.LIFECYCLE ? [encodeEvent(PS.STORAGE_POOL_EVENT_LIFECYCLE, { callbackID, pool, event: ev.event, detail: ev.detail })] : [];
  },
});

const eventHandlers: Entry[] = [
  entry(PS.CONNECT_STORAGE_POOL_EVENT_REGISTER_ANY, async (ctx, { eventID, pool }) => {
    if (eventID < 0 || eventID >= PoolEventId.LAST) throw VG_ERR_ARG_INVALID(`unsupported event ID ${eventID}`);
    let uuid: Buffer | null = null;
    if (pool) uuid = visiblePool(ctx, await poolByName(ctx, pool.name, pool.uuid), 'name', pool.name).config.uuid;
    const callbackID = ctx.nextCallbackId();
    ctx.objectEvents.register(ctx.session, 'pool', eventID, callbackID, uuid);
    return { callbackID };
  }),
  entry(PS.CONNECT_STORAGE_POOL_EVENT_DEREGISTER_ANY, async (ctx, { callbackID }) => {
    if (!ctx.objectEvents.deregister(ctx.session, 'pool', callbackID)) throw VG_ERR_ARG_INVALID(`callback ${callbackID} not registered`);
  }),
];

export const storageHandlers: Entry[] = [...poolHandlers, ...volHandlers, ...streamHandlers, ...eventHandlers];
