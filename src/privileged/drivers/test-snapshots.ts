// SPDX-License-Identifier: Apache-2.0
// Domain snapshots and checkpoints of the test driver, as libvirt 9.0's test driver keeps them (testDomainSnapshot*,
// testDomainCheckpoint*): metadata only, a tree per domain, one current moment of each kind (helper side).
// Typed moments in (the front end parsed the XML, the <domain> each one keeps included: a typed DomainDef, checked by
// its codec). Persisted as one record per domain.
import {
  VG_ERR_CONFIG_UNSUPPORTED,
  VG_ERR_DOMAIN_ARG,
  VG_ERR_DOMAIN_INTERNAL,
  VG_ERR_DOMAIN_STATE,
  VG_ERR_LIMIT,
  VG_ERR_NO_DOMAIN,
  VG_ERR_NO_CHECKPOINT,
  VG_ERR_NO_SNAPSHOT,
  VG_ERR_OP_UNSUPPORTED,
  VG_ERR_RESOURCE_DENIED,
  VG_ERR_SNAPSHOT_EXISTS,
  VG_ERR_SNAPSHOT_RISKY,
  VG_ERR_STORAGE,
  VG_ERR_XML_INVALID,
} from '../../common/errors';
import {
  Location,
  type Moment,
  type MomentDisk,
  MomentKind,
  type MomentKindCode,
  MomentLimits,
  SnapshotState,
  isAbsPath,
  isDiskTarget,
  isMomentName,
} from '../../ipc/objects/snapshot';
import { type DomainDef, domainDefFromJson, domainDefToJson } from '../../ipc/objects/domain-def';
import { driverError } from './driver';
import type { ObjectRecords } from './object-context';

export interface SnapshotDriver {
  list(uuid: Buffer, kind: MomentKindCode, from: string, flags: number): string[];
  get(uuid: Buffer, kind: MomentKindCode, name: string): { moment: Moment; current: boolean };
  current(uuid: Buffer, kind: MomentKindCode): string; // '' = none
  create(uuid: Buffer, kind: MomentKindCode, m: Moment, flags: number, tenant: string): string;
  delete(uuid: Buffer, kind: MomentKindCode, name: string, flags: number, tenant: string): void;
  revert(uuid: Buffer, name: string, flags: number, tenant: string): void;
  count(uuid: Buffer, kind: MomentKindCode): number;
}

// What the moments need of one domain, and the state changes a revert or a halting snapshot makes (test-driver.ts).
export interface MomentDomainView {
  def: DomainDef; // the live definition while active, else the config
  active: boolean;
  persistent: boolean;
  state: number; // virDomainState
}

export type RevertTarget = 'shutoff' | 'running' | 'paused';

export interface MomentAccess {
  get(uuid: Buffer): MomentDomainView; // throws the driver's "no domain" error
  nowMs(): number;
  halt(uuid: Buffer): void; // stop, reason and event "from snapshot"
  // Stop if active, take `def` as the definition, then run or pause: each step with its "from snapshot" event.
  revert(uuid: Buffer, def: DomainDef, target: RevertTarget, forceStartEvent: boolean): void;
  // The domain confinement a define gets: a tenant's kept definition may name only its own or shared volumes/networks.
  confine(def: DomainDef, tenant: string): void;
}

// VIR_DOMAIN_SNAPSHOT_CREATE_* and the subset the test driver accepts (REDEFINE CURRENT HALT QUIESCE ATOMIC LIVE VALIDATE).
export const SnapCreate = { REDEFINE: 1, CURRENT: 2, NO_METADATA: 4, HALT: 8, DISK_ONLY: 16, QUIESCE: 64, VALIDATE: 512 } as const;
export const SNAP_CREATE_ALLOWED = 1 | 2 | 8 | 64 | 128 | 256 | 512;
export const CKP_CREATE_ALLOWED = 1 | 2; // REDEFINE, QUIESCE
const CKP_REDEFINE = 1;
// VIR_DOMAIN_SNAPSHOT_LIST_*: ROOTS/DESCENDANTS 1, METADATA 2, LEAVES 4, NO_LEAVES 8, NO_METADATA 16, INACTIVE 32,
// ACTIVE 64, DISK_ONLY 128, INTERNAL 256, EXTERNAL 512, TOPOLOGICAL 1024; checkpoints: 1, TOPOLOGICAL 2, LEAVES 4, NO_LEAVES 8.
export const SNAP_LIST_ALLOWED = 0x7ff;
export const CKP_LIST_ALLOWED = 0xf;
const DELETE_CHILDREN = 1;
const DELETE_METADATA_ONLY = 2;
const DELETE_CHILDREN_ONLY = 4;
export const SNAP_DELETE_ALLOWED = DELETE_CHILDREN | DELETE_CHILDREN_ONLY; // testDomainSnapshotDelete
export const CKP_DELETE_ALLOWED = DELETE_CHILDREN | DELETE_METADATA_ONLY | DELETE_CHILDREN_ONLY;
const REVERT_RUNNING = 1;
const REVERT_PAUSED = 2;
export const REVERT_ALLOWED = 7; // RUNNING PAUSED FORCE
const MOMENTS_PER_DOMAIN_MAX = 1024; // keeps one domain's record (each moment holds a domain XML) well bounded
const RECORD = 'moments';
const RECORD_MAX = 16 * 1024 * 1024; // bytes of one domain's record: each moment keeps a whole domain XML

interface Stored extends Moment {
  seq: number; // creation order: what lists follow
}

interface Tree {
  moments: Map<string, Stored>;
  current: string | null;
}

interface DomainMoments {
  snapshots: Tree;
  checkpoints: Tree;
}

const emptyTree = (): Tree => ({ moments: new Map(), current: null });
const uuidKey = (uuid: Buffer): string => {
  const h = uuid.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};

function checkFlags(flags: number, allowed: number, fn: string): void {
  if ((flags & ~allowed) !== 0) throw driverError(VG_ERR_DOMAIN_ARG, `unsupported flags (0x${(flags & ~allowed).toString(16)}) in function ${fn}`);
}

export class TestSnapshots implements SnapshotDriver {
  readonly #access: MomentAccess;
  readonly #records: ObjectRecords;
  readonly #byDomain = new Map<string, DomainMoments>();
  #seq = 0;

  constructor(access: MomentAccess, records: ObjectRecords, warn: (msg: string) => void) {
    this.#access = access;
    this.#records = records;
    for (const [key, text] of records.load(RECORD)) {
      try {
        this.#byDomain.set(
          key,
          fromJson(JSON.parse(text) as unknown, () => ++this.#seq),
        );
      } catch (e) {
        warn(`snapshot record ${key} ignored: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }

  // ---------- reads ----------

  count(uuid: Buffer, kind: MomentKindCode): number {
    return this.#tree(uuid, kind, false)?.moments.size ?? 0;
  }

  list(uuid: Buffer, kind: MomentKindCode, from: string, flags: number): string[] {
    this.#access.get(uuid);
    const tree = this.#tree(uuid, kind, false) ?? emptyTree();
    if (from !== '') this.#find(tree, kind, from);
    const snap = kind === MomentKind.SNAPSHOT;
    flags &= snap ? SNAP_LIST_ALLOWED : CKP_LIST_ALLOWED;
    // LIST_ROOTS and LIST_DESCENDANTS share a bit with opposite senses: toggled on the metaroot, as libvirt does.
    const descendants = from === '' ? (flags & 1) === 0 : (flags & 1) !== 0;
    if (snap && (flags & (2 | 16)) === 16) return []; // NO_METADATA only: every moment here has metadata
    const children = (p: string) => sorted(tree).filter((m) => m.parent === p);
    const out: Stored[] = [];
    const walk = (p: string) => {
      for (const c of children(p)) {
        out.push(c);
        if (descendants) walk(c.name);
      }
    };
    walk(from);
    const leaves = flags & (4 | 8);
    let keep = out.filter((m) => leaves === 0 || leaves === 12 || (leaves === 4) === (children(m.name).length === 0));
    if (snap) {
      let status = flags & (32 | 64 | 128);
      if (status === 224) status = 0;
      let loc = flags & (256 | 512);
      if (loc === 768) loc = 0;
      keep = keep.filter((m) => {
        if (status !== 0) {
          if (!(status & 32) && m.state === SnapshotState.SHUTOFF) return false;
          if (!(status & 128) && m.state === SnapshotState.DISK_SNAPSHOT) return false;
          if (!(status & 64) && m.state !== SnapshotState.SHUTOFF && m.state !== SnapshotState.DISK_SNAPSHOT) return false;
        }
        if (loc & 256 && isExternal(m)) return false;
        if (loc & 512 && !isExternal(m)) return false;
        return true;
      });
    }
    return keep.map((m) => m.name);
  }

  get(uuid: Buffer, kind: MomentKindCode, name: string): { moment: Moment; current: boolean } {
    this.#access.get(uuid);
    const tree = this.#tree(uuid, kind, false) ?? emptyTree();
    const m = this.#find(tree, kind, name);
    const { seq: _, ...moment } = m;
    return { moment, current: tree.current === name };
  }

  current(uuid: Buffer, kind: MomentKindCode): string {
    this.#access.get(uuid);
    return this.#tree(uuid, kind, false)?.current ?? '';
  }

  // ---------- writes ----------

  create(uuid: Buffer, kind: MomentKindCode, spec: Moment, flags: number, tenant: string): string {
    const d = this.#own(uuid, tenant);
    const all = this.#all(uuid);
    const snap = kind === MomentKind.SNAPSHOT;
    checkFlags(flags, snap ? SNAP_CREATE_ALLOWED : CKP_CREATE_ALLOWED, snap ? 'testDomainSnapshotCreateXML' : 'testDomainCheckpointCreateXML');
    checkSpec(spec, tenant);
    const redefine = (flags & (snap ? SnapCreate.REDEFINE : CKP_REDEFINE)) !== 0;
    if (snap) {
      if (all.checkpoints.moments.size > 0) throw driverError(VG_ERR_OP_UNSUPPORTED, 'cannot create snapshot while checkpoint exists');
      if (!d.persistent && flags & SnapCreate.HALT) throw driverError(VG_ERR_DOMAIN_STATE, 'cannot halt after transient domain snapshot');
    } else {
      if (all.snapshots.moments.size > 0) throw driverError(VG_ERR_OP_UNSUPPORTED, 'cannot create checkpoint while snapshot exists');
      if (!d.active) throw driverError(VG_ERR_OP_UNSUPPORTED, 'cannot create checkpoint for inactive domain');
    }
    const tree = snap ? all.snapshots : all.checkpoints;
    const m: Stored = { ...spec, disks: spec.disks.map((x) => ({ ...x })), seq: 0 };
    let updateCurrent = !redefine || (snap && (flags & SnapCreate.CURRENT) !== 0);
    let existing: Stored | undefined;
    if (redefine) {
      if (m.name === '') throw driverError(VG_ERR_XML_INVALID, `a redefined ${snap ? 'snapshot' : 'checkpoint'} must have a name`);
      if (m.creationTime < 0n) throw driverError(VG_ERR_DOMAIN_INTERNAL, `missing creationTime from existing ${snap ? 'snapshot' : 'checkpoint'}`);
      if (snap && m.state === 0) throw driverError(VG_ERR_XML_INVALID, 'missing state from existing snapshot');
      let dom: DomainDef | null = null;
      if (m.def !== null) {
        dom = m.def;
        this.#access.confine(dom, tenant); // a redefinition must not smuggle a host disk in for a later revert
        if (dom.uuid !== uuidKey(uuid))
          throw driverError(VG_ERR_DOMAIN_ARG, `definition for ${snap ? 'snapshot' : 'checkpoint'} ${m.name} must use uuid ${uuidKey(uuid)}`);
        m.def = { ...dom, tenant: d.def.tenant };
      }
      checkCycles(tree, m);
      existing = tree.moments.get(m.name);
      if (snap) {
        const online = (s: number) => s === SnapshotState.RUNNING || s === SnapshotState.PAUSED;
        if (existing && online(existing.state) !== online(m.state))
          throw driverError(VG_ERR_DOMAIN_ARG, `cannot change between online and offline snapshot state in snapshot ${m.name}`);
        if (existing && (existing.state === SnapshotState.DISK_SNAPSHOT) !== (m.state === SnapshotState.DISK_SNAPSHOT))
          throw driverError(VG_ERR_DOMAIN_ARG, `cannot change between disk only and full system in snapshot ${m.name}`);
        const offline = m.state === SnapshotState.SHUTOFF || m.state === SnapshotState.DISK_SNAPSHOT;
        if (m.memory === Location.DEFAULT && m.memoryFile === '') m.memory = offline ? Location.NO : Location.INTERNAL;
        checkMemory(m, offline);
        const align = m.state === SnapshotState.DISK_SNAPSHOT || isExternal(m) ? Location.EXTERNAL : Location.INTERNAL;
        const base = dom ?? existing?.def ?? null;
        if (!base) throw driverError(VG_ERR_DOMAIN_INTERNAL, 'missing domain in snapshot');
        m.disks = alignSnapshotDisks(m, base, align);
      } else {
        const base = dom ?? existing?.def ?? null;
        if (base) m.disks = alignCheckpointDisks(m, base);
        // virDomainCheckpointRedefinePrep: a redefined current checkpoint stays current.
        if (existing && tree.current === m.name) updateCurrent = true;
      }
    } else {
      if (m.parent !== '' || m.creationTime !== -1n || m.state !== 0 || m.def !== null)
        throw driverError(VG_ERR_DOMAIN_ARG, 'parent, creation time, state and domain are only given with redefine');
      const now = BigInt(Math.floor(this.#access.nowMs() / 1000));
      m.creationTime = now;
      if (m.name === '') m.name = now.toString();
      if (tree.moments.has(m.name)) throw driverError(VG_ERR_SNAPSHOT_EXISTS, `domain moment ${m.name} already exists`);
      m.def = d.def;
      if (snap) {
        for (const x of m.disks)
          if (x.location === Location.MANUAL) throw driverError(VG_ERR_OP_UNSUPPORTED, "'manual' snapshot mode is not supported by the test driver");
        m.state = d.state;
        let align: number = Location.INTERNAL;
        if (m.memory === Location.EXTERNAL) align = Location.EXTERNAL;
        else m.memory = m.state === SnapshotState.SHUTOFF ? Location.NO : Location.INTERNAL;
        checkMemory(m, m.state === SnapshotState.SHUTOFF);
        m.disks = alignSnapshotDisks(m, d.def, align);
      } else m.disks = alignCheckpointDisks(m, d.def);
      m.parent = tree.current ?? '';
    }
    if (!existing && tree.moments.size >= MOMENTS_PER_DOMAIN_MAX) throw driverError(VG_ERR_LIMIT, `at most ${MOMENTS_PER_DOMAIN_MAX} moments per domain`);
    m.seq = existing?.seq ?? ++this.#seq;
    const moments = new Map(tree.moments);
    moments.set(m.name, m);
    const next: Tree = { moments, current: updateCurrent ? m.name : tree.current };
    this.#commit(uuid, all, snap ? { ...all, snapshots: next } : { ...all, checkpoints: next });
    if (snap && flags & SnapCreate.HALT && d.active) this.#access.halt(uuid);
    return m.name;
  }

  delete(uuid: Buffer, kind: MomentKindCode, name: string, flags: number, tenant: string): void {
    this.#own(uuid, tenant);
    const snap = kind === MomentKind.SNAPSHOT;
    checkFlags(flags, snap ? SNAP_DELETE_ALLOWED : CKP_DELETE_ALLOWED, snap ? 'testDomainSnapshotDelete' : 'testDomainCheckpointDelete');
    const all = this.#all(uuid);
    const tree = snap ? all.snapshots : all.checkpoints;
    const m = this.#find(tree, kind, name);
    const moments = new Map(tree.moments);
    let current = tree.current;
    if (flags & (DELETE_CHILDREN | DELETE_CHILDREN_ONLY)) {
      for (const dn of descendantsOf(tree, name)) {
        moments.delete(dn);
        if (current === dn) current = name; // the deleted subtree held the current one: its root becomes current
      }
    } else {
      // Children move up to the deleted moment's parent.
      for (const c of [...moments.values()]) if (c.parent === name) moments.set(c.name, { ...c, parent: m.parent });
    }
    if (!(flags & DELETE_CHILDREN_ONLY)) {
      if (current === name) current = m.parent !== '' && moments.has(m.parent) ? m.parent : null;
      moments.delete(name);
    }
    const next: Tree = { moments, current };
    this.#commit(uuid, all, snap ? { ...all, snapshots: next } : { ...all, checkpoints: next });
  }

  revert(uuid: Buffer, name: string, flags: number, tenant: string): void {
    checkFlags(flags, REVERT_ALLOWED, 'testDomainRevertToSnapshot');
    const d = this.#own(uuid, tenant);
    const all = this.#all(uuid);
    const m = this.#find(all.snapshots, MomentKind.SNAPSHOT, name);
    const online = m.state === SnapshotState.RUNNING || m.state === SnapshotState.PAUSED;
    if (!d.persistent && !online && (flags & (REVERT_RUNNING | REVERT_PAUSED)) === 0)
      throw driverError(VG_ERR_DOMAIN_STATE, 'transient domain needs to request run or pause to revert to inactive snapshot');
    if (m.def === null) throw driverError(VG_ERR_SNAPSHOT_RISKY, `snapshot '${m.name}' lacks domain '${d.def.name}' rollback info`);
    const def = { ...m.def, tenant: d.def.tenant };
    this.#access.confine(def, tenant); // again at revert: the rules may have changed since the snapshot was taken
    let target: RevertTarget;
    if (online) target = !(flags & REVERT_RUNNING) && (m.state === SnapshotState.PAUSED || flags & REVERT_PAUSED) ? 'paused' : 'running';
    else target = flags & REVERT_PAUSED ? 'paused' : flags & REVERT_RUNNING ? 'running' : 'shutoff';
    // Current first (the record), then the domain's own transitions, each durable with its event.
    this.#commit(uuid, all, { ...all, snapshots: { ...all.snapshots, current: m.name } });
    this.#access.revert(uuid, def, target, online);
  }

  // The domain is gone: its moments go with it.
  dropDomain(uuid: Buffer): void {
    const key = uuidKey(uuid);
    if (!this.#byDomain.has(key)) return;
    try {
      this.#records.put(RECORD, key, null);
    } catch {
      // The record stays on disk; it is dropped at the next start if its domain is gone (see pruneTo).
    }
    this.#byDomain.delete(key);
  }

  // At start: records of domains that no longer exist are removed.
  pruneTo(exists: (key: string) => boolean): void {
    for (const key of [...this.#byDomain.keys()]) {
      if (exists(key)) continue;
      this.#byDomain.delete(key);
      try {
        this.#records.put(RECORD, key, null);
      } catch {
        /* tried again at the next start */
      }
    }
  }

  // ---------- internals ----------

  // The helper's own tenant rule (the front end decided already): a tenant's session writes only its own VMs' moments.
  #own(uuid: Buffer, tenant: string): MomentDomainView {
    const d = this.#access.get(uuid);
    if (tenant !== '' && d.def.tenant !== tenant) throw driverError(VG_ERR_NO_DOMAIN, `: no domain with matching uuid '${uuidKey(uuid)}'`);
    return d;
  }

  #tree(uuid: Buffer, kind: MomentKindCode, create: boolean): Tree | undefined {
    const all = create ? this.#all(uuid) : this.#byDomain.get(uuidKey(uuid));
    return all && (kind === MomentKind.SNAPSHOT ? all.snapshots : all.checkpoints);
  }

  #all(uuid: Buffer): DomainMoments {
    return this.#byDomain.get(uuidKey(uuid)) ?? { snapshots: emptyTree(), checkpoints: emptyTree() };
  }

  #find(tree: Tree, kind: MomentKindCode, name: string): Stored {
    const m = tree.moments.get(name);
    if (m) return m;
    if (kind === MomentKind.SNAPSHOT) throw driverError(VG_ERR_NO_SNAPSHOT, `no domain snapshot with matching name '${name}'`);
    throw driverError(VG_ERR_NO_CHECKPOINT, `no domain checkpoint with matching name '${name}'`);
  }

  // Log first, then memory: a write the disk refused changes nothing.
  #commit(uuid: Buffer, _old: DomainMoments, next: DomainMoments): void {
    const key = uuidKey(uuid);
    const empty = next.snapshots.moments.size === 0 && next.checkpoints.moments.size === 0;
    const json = empty ? null : JSON.stringify(toJson(next));
    if (json !== null && json.length > RECORD_MAX) throw driverError(VG_ERR_LIMIT, `the snapshots of one domain take at most ${RECORD_MAX} bytes`);
    try {
      this.#records.put(RECORD, key, json);
    } catch (e) {
      throw driverError(VG_ERR_STORAGE, `${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (empty) this.#byDomain.delete(key);
    else this.#byDomain.set(key, next);
  }
}

// ---------- rules libvirt applies (snapshot_conf.c, checkpoint_conf.c, virdomainmomentobjlist.c) ----------

const sorted = (tree: Tree): Stored[] => [...tree.moments.values()].sort((a, b) => a.seq - b.seq);

function descendantsOf(tree: Tree, name: string): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    for (const c of sorted(tree)) {
      if (c.parent !== p) continue;
      out.push(c.name);
      walk(c.name);
    }
  };
  walk(name);
  return out;
}

const isExternal = (m: Moment): boolean => m.memory === Location.EXTERNAL || m.disks.some((x) => x.location === Location.EXTERNAL);

// The helper's own checks of the typed fields (the IPC decoder checked shapes; these are the semantic rules).
function checkSpec(m: Moment, tenant: string): void {
  if (m.name !== '' && !isMomentName(m.name)) throw driverError(VG_ERR_DOMAIN_ARG, 'snapshot name is malformed');
  if (m.description !== null && Buffer.byteLength(m.description) > MomentLimits.DESCRIPTION_MAX) throw driverError(VG_ERR_DOMAIN_ARG, 'description too long');
  const seen = new Set<string>();
  for (const x of m.disks) {
    if (!isDiskTarget(x.name)) throw driverError(VG_ERR_DOMAIN_ARG, 'disk name is malformed');
    if (x.source !== '' && !isAbsPath(x.source)) throw driverError(VG_ERR_DOMAIN_ARG, `disk snapshot image path '${x.source}' must be absolute`);
    seen.add(x.name);
  }
  // A tenant's session names no host file (the test driver writes none, a real one would).
  if (tenant !== '' && (m.memoryFile !== '' || m.disks.some((x) => x.source !== '')))
    throw driverError(VG_ERR_RESOURCE_DENIED, `tenant '${tenant}' may not name host files in a snapshot`);
}

function checkMemory(m: Moment, offline: boolean): void {
  if (m.memory === Location.MANUAL) throw driverError(VG_ERR_XML_INVALID, "'manual' memory snapshot mode not supported");
  if (m.memoryFile !== '' && m.memory === Location.DEFAULT) m.memory = Location.EXTERNAL;
  if (m.memoryFile !== '' && m.memory !== Location.EXTERNAL)
    throw driverError(VG_ERR_XML_INVALID, `memory filename '${m.memoryFile}' requires external snapshot`);
  if (m.memoryFile === '' && m.memory === Location.EXTERNAL) throw driverError(VG_ERR_XML_INVALID, 'external memory snapshots require a filename');
  if (offline && m.memory !== Location.DEFAULT && m.memory !== Location.NO)
    throw driverError(VG_ERR_XML_INVALID, 'memory state cannot be saved with offline or disk-only snapshot');
}

// virDomainMomentCheckCycles
function checkCycles(tree: Tree, m: Moment): void {
  if (m.parent === '') return;
  if (m.parent === m.name) throw driverError(VG_ERR_DOMAIN_ARG, `cannot set moment ${m.name} as its own parent`);
  let other = tree.moments.get(m.parent);
  if (!other) throw driverError(VG_ERR_DOMAIN_ARG, `parent ${m.parent} for moment ${m.name} not found`);
  while (other && other.parent !== '') {
    if (other.parent === m.name) throw driverError(VG_ERR_DOMAIN_ARG, `parent ${other.name} would create cycle to ${m.name}`);
    other = tree.moments.get(other.parent);
  }
}

const LOCATION_NAMES = ['default', 'no', 'internal', 'external', 'manual'];

// virDomainSnapshotAlignDisks(uniform_internal_snapshot = true): one entry per domain disk, in the domain's order.
function alignSnapshotDisks(m: Moment, dom: DomainDef, defaultLoc: number): MomentDisk[] {
  if (m.disks.length > dom.disks.length) throw driverError(VG_ERR_CONFIG_UNSUPPORTED, 'too many disk snapshot requests for domain');
  const requireMatch = defaultLoc === Location.INTERNAL;
  const given = new Map<string, MomentDisk>();
  for (const x of m.disks) {
    const dd = dom.disks.find((y) => y.target === x.name);
    if (!dd) throw driverError(VG_ERR_CONFIG_UNSUPPORTED, `no disk named '${x.name}'`);
    if (given.has(dd.target)) throw driverError(VG_ERR_CONFIG_UNSUPPORTED, `disk '${x.name}' specified twice`);
    const d = { ...x };
    if (d.location === Location.DEFAULT && (d.source !== '' || d.driver !== '')) d.location = Location.EXTERNAL;
    if (d.location === Location.DEFAULT) d.location = defaultLoc;
    // (a domain disk's own snapshot= attribute is not kept by domain-xml.ts: it counts as 'default' here)
    else if (requireMatch && d.location !== defaultLoc)
      throw driverError(VG_ERR_CONFIG_UNSUPPORTED, `disk '${x.name}' must use snapshot mode '${LOCATION_NAMES[defaultLoc]}'`);
    if (d.source !== '' && d.location !== Location.EXTERNAL)
      throw driverError(VG_ERR_CONFIG_UNSUPPORTED, `file '${d.source}' for disk '${d.name}' requires use of external snapshot mode`);
    given.set(dd.target, d);
  }
  return dom.disks.map((dd) => {
    const g = given.get(dd.target);
    if (g) {
      if (g.location === Location.EXTERNAL && g.source === '')
        throw driverError(VG_ERR_CONFIG_UNSUPPORTED, `source for disk '${g.name}' is not a regular file; refusing to generate external snapshot name`);
      return g;
    }
    const empty = dd.source === null;
    const location = empty ? Location.NO : defaultLoc;
    if (location === Location.EXTERNAL)
      throw driverError(VG_ERR_CONFIG_UNSUPPORTED, `source for disk '${dd.target}' is not a regular file; refusing to generate external snapshot name`);
    return { name: dd.target, location, sourceType: '', source: '', driver: '', bitmap: '' };
  });
}

// virDomainCheckpointAlignDisks: bitmap named after the checkpoint for every disk not opted out.
function alignCheckpointDisks(m: Moment, dom: DomainDef): MomentDisk[] {
  if (m.disks.length > dom.disks.length) throw driverError(VG_ERR_CONFIG_UNSUPPORTED, 'too many disk checkpoint requests for domain');
  if (dom.disks.length === 0) throw driverError(VG_ERR_CONFIG_UNSUPPORTED, 'domain must have at least one disk to perform checkpoints');
  const given = new Map<string, MomentDisk>();
  for (const x of m.disks) {
    const dd = dom.disks.find((y) => y.target === x.name);
    if (!dd) throw driverError(VG_ERR_CONFIG_UNSUPPORTED, `no disk named '${x.name}'`);
    if (given.has(dd.target)) throw driverError(VG_ERR_CONFIG_UNSUPPORTED, `disk '${x.name}' specified twice`);
    given.set(dd.target, { ...x });
  }
  return dom.disks.map((dd) => {
    const g = given.get(dd.target) ?? { name: dd.target, location: 0, sourceType: '', source: '', driver: '', bitmap: '' };
    if (g.location === 0) g.location = dd.source === null ? 1 : 2; // default: bitmap unless the drive is empty
    if (g.location === 2 && g.bitmap === '') g.bitmap = m.name;
    return g;
  });
}

// ---------- the record (our own file, still checked field by field) ----------

function toJson(d: DomainMoments): unknown {
  const tree = (t: Tree) => ({
    current: t.current,
    moments: sorted(t).map((m) => ({
      ...m,
      creationTime: m.creationTime.toString(),
      def: m.def === null ? null : (JSON.parse(domainDefToJson(m.def)) as unknown),
      seq: undefined,
    })),
  });
  return { snapshots: tree(d.snapshots), checkpoints: tree(d.checkpoints) };
}

function fromJson(j: unknown, nextSeq: () => number): DomainMoments {
  const o = j as { snapshots?: unknown; checkpoints?: unknown };
  const tree = (t: unknown): Tree => {
    const x = t as { current?: unknown; moments?: unknown };
    if (!x || !Array.isArray(x.moments)) throw new Error('bad record');
    const moments = new Map<string, Stored>();
    for (const r of x.moments as Record<string, unknown>[]) {
      const s = (v: unknown, what: string): string => {
        if (typeof v !== 'string') throw new Error(`bad ${what}`);
        return v;
      };
      const n = (v: unknown, what: string): number => {
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 16) throw new Error(`bad ${what}`);
        return v;
      };
      const name = s(r.name, 'name');
      if (!isMomentName(name)) throw new Error('bad name');
      const ct = s(r.creationTime, 'creationTime');
      if (!/^[0-9]{1,19}$/.test(ct)) throw new Error('bad creationTime');
      if (!Array.isArray(r.disks)) throw new Error('bad disks');
      moments.set(name, {
        name,
        description: r.description === null ? null : s(r.description, 'description'),
        parent: s(r.parent, 'parent'),
        creationTime: BigInt(ct),
        state: n(r.state, 'state'),
        memory: n(r.memory, 'memory'),
        memoryFile: s(r.memoryFile, 'memoryFile'),
        disks: (r.disks as Record<string, unknown>[]).map((dk) => ({
          name: s(dk.name, 'disk'),
          location: n(dk.location, 'location'),
          sourceType: s(dk.sourceType, 'type'),
          source: s(dk.source, 'source'),
          driver: s(dk.driver, 'driver'),
          bitmap: s(dk.bitmap, 'bitmap'),
        })),
        def: r.def === null || r.def === undefined ? null : domainDefFromJson(r.def as Record<string, unknown>),
        seq: nextSeq(),
      });
    }
    const current = x.current === null ? null : s2(x.current);
    return { moments, current: current !== null && moments.has(current) ? current : null };
  };
  return { snapshots: tree(o.snapshots), checkpoints: tree(o.checkpoints) };
}

function s2(v: unknown): string {
  if (typeof v !== 'string') throw new Error('bad current');
  return v;
}
