// SPDX-License-Identifier: Apache-2.0
// Domain snapshots and checkpoints ("moments") over the helper IPC, pure: the typed moment the front end parses client
// XML into, its strict codec, and the SNAPSHOT_READ / SNAPSHOT_WRITE action groups (both kinds of moment).
// The helper never sees snapshot or checkpoint XML; the <domain> of a redefinition travels as text in `xml` (part E
// of issue 12 turns it into a typed DomainDef, as for define).
import { VG_ERR_IPC_VALIDATION } from '../../common/errors';
import type { XdrReader, XdrWriter } from '../../common/xdr';
import { action, actionGroup } from '../actions';
import { type Codec, checkRange, nothing, rec, uuidCodec } from '../shared';
import { type DomainDef, domainDefCodec } from './domain-def';

export const MomentLimits = {
  NAME_MAX: 128, // bytes; libvirt sets none, virsh's default names are 10-digit epochs
  DESCRIPTION_MAX: 64 * 1024,
  DISKS_MAX: 256, // a domain's disks, at most
  PATH_MAX: 4096,
  MOMENTS_MAX: 16384, // REMOTE_DOMAIN_SNAPSHOT_LIST_MAX = REMOTE_DOMAIN_CHECKPOINT_LIST_MAX
} as const;

export const MomentKind = { SNAPSHOT: 0, CHECKPOINT: 1 } as const;
export type MomentKindCode = (typeof MomentKind)[keyof typeof MomentKind];

// virDomainSnapshotLocation (snapshots: default no internal external manual) / virDomainCheckpointType (default no bitmap)
export const SNAPSHOT_LOCATIONS = ['default', 'no', 'internal', 'external', 'manual'] as const;
export const CHECKPOINT_TYPES = ['default', 'no', 'bitmap'] as const;
// virDomainSnapshotState: its strings, indexed by value (0 = none given)
export const SNAPSHOT_STATES = ['nostate', 'running', 'blocked', 'paused', 'shutdown', 'shutoff', 'crashed', 'pmsuspended', 'disk-snapshot'] as const;
export const SnapshotState = { RUNNING: 1, PAUSED: 3, SHUTOFF: 5, DISK_SNAPSHOT: 8 } as const;
export const Location = { DEFAULT: 0, NO: 1, INTERNAL: 2, EXTERNAL: 3, MANUAL: 4 } as const;
export const DISK_SOURCE_TYPES = ['file', 'block', 'network'] as const; // virStorageType a disk snapshot may name

// Snapshot and checkpoint names: the domain-name character rule, up to NAME_MAX bytes (they name records and logs).
const MOMENT_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.+:@-]*$/;
export const MOMENT_NAME_RULE = `1-${MomentLimits.NAME_MAX} characters of [A-Za-z0-9_.+:@-], not starting with . + : @ or -`;
export const isMomentName = (s: string): boolean => Buffer.byteLength(s) <= MomentLimits.NAME_MAX && MOMENT_NAME_RE.test(s);
// Disk target names as libvirt writes them (vda, hdc, sdaa, ...).
export const isDiskTarget = (s: string): boolean => s.length >= 1 && s.length <= 32 && /^[A-Za-z0-9_-]+$/.test(s);
export const isAbsPath = (s: string): boolean =>
  s.startsWith('/') && Buffer.byteLength(s) <= MomentLimits.PATH_MAX && !s.includes('\0') && !/(^|\/)\.\.(\/|$)/.test(s);

export interface MomentDisk {
  name: string; // the domain disk's target
  location: number; // snapshots: Location; checkpoints: index in CHECKPOINT_TYPES
  sourceType: string; // '' = none; else DISK_SOURCE_TYPES
  source: string; // external snapshot file (absolute) or ''
  driver: string; // <driver type=...> of an external snapshot, or ''
  bitmap: string; // checkpoints: bitmap name, or ''
}

// One snapshot or checkpoint as the client described it (create) or as the helper holds it (get).
export interface Moment {
  name: string; // '' = none given (the helper names it after its creation time)
  description: string | null;
  parent: string; // '' = none (redefine / get only)
  creationTime: bigint; // seconds; -1 = none given (redefine requires one)
  state: number; // SNAPSHOT_STATES index; 0 = none given
  memory: number; // Location of the memory state (snapshots)
  memoryFile: string; // '' = none
  disks: MomentDisk[];
  def: DomainDef | null; // the domain it keeps (null = none), typed: the front end parses and formats its XML
}

// ---------- codecs (both ends reject the same inputs) ----------

const bad = (field: string, why: string) => VG_ERR_IPC_VALIDATION(field, why);

function momentName(r: XdrReader, field: string, allowEmpty: boolean): string {
  const s = r.string(MomentLimits.NAME_MAX, field);
  if (s === '' && allowEmpty) return s;
  if (!isMomentName(s)) throw bad(field, `moment names are ${MOMENT_NAME_RULE}`);
  return s;
}

function text(r: XdrReader, max: number, field: string): string {
  const s = r.string(max, field);
  if (s.includes('\0')) throw bad(field, 'contains NUL');
  return s;
}

function path(r: XdrReader, field: string): string {
  const s = r.string(MomentLimits.PATH_MAX, field);
  if (s !== '' && !isAbsPath(s)) throw bad(field, 'must be an absolute path without ..');
  return s;
}

export const momentDiskCodec: Codec<MomentDisk> = {
  encode: (w, d) =>
    void w
      .string(d.name, 32)
      .u32(d.location)
      .string(d.sourceType, 16)
      .string(d.source, MomentLimits.PATH_MAX)
      .string(d.driver, 32)
      .string(d.bitmap, MomentLimits.NAME_MAX),
  decode(r) {
    const name = r.string(32, 'disk.name');
    if (!isDiskTarget(name)) throw bad('disk.name', 'not a disk target name');
    const location = checkRange(r.u32('disk.location'), 0, SNAPSHOT_LOCATIONS.length - 1, 'disk.location');
    const sourceType = r.string(16, 'disk.type');
    if (sourceType !== '' && !(DISK_SOURCE_TYPES as readonly string[]).includes(sourceType)) throw bad('disk.type', 'unknown source type');
    const source = path(r, 'disk.source');
    const driver = r.string(32, 'disk.driver');
    if (driver !== '' && !/^[a-z0-9]{1,16}$/.test(driver)) throw bad('disk.driver', 'not a format name');
    const bitmap = momentName(r, 'disk.bitmap', true);
    return { name, location, sourceType, source, driver, bitmap };
  },
};

export const momentCodec: Codec<Moment> = {
  encode(w, m) {
    w.string(m.name, MomentLimits.NAME_MAX)
      .optional(m.description, (w2, s) => void w2.string(s, MomentLimits.DESCRIPTION_MAX))
      .string(m.parent, MomentLimits.NAME_MAX)
      .i64(m.creationTime)
      .u32(m.state)
      .u32(m.memory)
      .string(m.memoryFile, MomentLimits.PATH_MAX)
      .array(m.disks, MomentLimits.DISKS_MAX, momentDiskCodec.encode)
      .optional(m.def, domainDefCodec.encode);
  },
  decode(r) {
    const name = momentName(r, 'name', true);
    const description = r.optional((r2) => text(r2, MomentLimits.DESCRIPTION_MAX, 'description'), 'description');
    const parent = momentName(r, 'parent', true);
    const creationTime = r.i64('creationTime');
    if (creationTime < -1n) throw bad('creationTime', 'negative');
    const state = checkRange(r.u32('state'), 0, SNAPSHOT_STATES.length - 1, 'state');
    const memory = checkRange(r.u32('memory'), 0, SNAPSHOT_LOCATIONS.length - 1, 'memory');
    const memoryFile = path(r, 'memoryFile');
    const disks = r.array(MomentLimits.DISKS_MAX, momentDiskCodec.decode, 'disks');
    const def = r.optional(domainDefCodec.decode, 'def');
    return { name, description, parent, creationTime, state, memory, memoryFile, disks, def };
  },
};

const kindCodec = {
  encode: (w: XdrWriter, k: MomentKindCode) => void w.u32(k),
  decode: (r: XdrReader) => checkRange(r.u32('kind'), 0, 1, 'kind') as MomentKindCode,
};

const uuidF = { encode: uuidCodec.encode, decode: uuidCodec.decode };
const nameF = (field: string, allowEmpty = false) => ({
  encode: (w: XdrWriter, v: string) => void w.string(v, MomentLimits.NAME_MAX),
  decode: (r: XdrReader) => momentName(r, field, allowEmpty),
});
const boolF = (field: string) => ({ encode: (w: XdrWriter, v: boolean) => void w.bool(v), decode: (r: XdrReader) => r.bool(field) });
const u32F = (field: string, max: number) => ({
  encode: (w: XdrWriter, v: number) => void w.u32(v),
  decode: (r: XdrReader) => checkRange(r.u32(field), 0, max, field),
});
const names: Codec<{ names: string[] }> = {
  encode: (w, v) => void w.array(v.names, MomentLimits.MOMENTS_MAX, (w2, s) => void w2.string(s, MomentLimits.NAME_MAX)),
  decode: (r) => ({ names: r.array(MomentLimits.MOMENTS_MAX, (r2) => momentName(r2, 'names', false), 'names') }),
};

// The list filters the helper applies (libvirt's VIR_DOMAIN_SNAPSHOT_LIST_* / CHECKPOINT_LIST_* bits, checked by the
// front end against what the test driver accepts; the helper masks them again).
export const LIST_FLAGS_MAX = 0x7ff;

// Reads: `from` '' = the whole domain (libvirt's metaroot), else that moment's children (descendants with the flag).
export const SNAPSHOT_READ = actionGroup('SNAPSHOT_READ', false, {
  list: action(0, rec({ uuid: uuidF, kind: kindCodec, from: nameF('from', true), flags: u32F('flags', LIST_FLAGS_MAX) }), names),
  // One moment, with whether it is the current one; the <domain> it keeps comes back as text in `moment.xml`.
  get: action(
    1,
    rec({ uuid: uuidF, kind: kindCodec, name: nameF('name') }),
    rec({ moment: momentCodec, current: boolF('current') }) as Codec<{ moment: Moment; current: boolean }>,
  ),
  current: action(2, rec({ uuid: uuidF, kind: kindCodec }), rec({ name: nameF('name', true) })), // '' = none
});

// Writes. create: the moment as parsed by the front end (name '' = name it by the clock).
export const SNAPSHOT_WRITE = actionGroup('SNAPSHOT_WRITE', true, {
  create: action(0, rec({ uuid: uuidF, kind: kindCodec, moment: momentCodec, flags: u32F('flags', 0x3ff) }), rec({ name: nameF('name') })),
  // flags: VIR_DOMAIN_SNAPSHOT_DELETE_* / CHECKPOINT_DELETE_* (CHILDREN 1, METADATA_ONLY 2, CHILDREN_ONLY 4)
  delete: action(1, rec({ uuid: uuidF, kind: kindCodec, name: nameF('name'), flags: u32F('flags', 7) }), nothing),
  // flags: VIR_DOMAIN_SNAPSHOT_REVERT_* (RUNNING 1, PAUSED 2, FORCE 4, RESET_NVRAM 8)
  revert: action(2, rec({ uuid: uuidF, name: nameF('name'), flags: u32F('flags', 15) }), nothing),
});
