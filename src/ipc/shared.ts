// SPDX-License-Identifier: Apache-2.0
// What every IPC op's codec shares, pure: limits, field validators, common value shapes and their codecs.
import { VG_ERR_IPC_VALIDATION } from '../common/errors';
import { XdrReader, XdrWriter } from '../common/xdr';
import { NAME_LIMITS, NAME_RULE, isTenantName } from '../common/names';
import type { ObjectStateChange } from './objects/object-state';

export const IPC_VERSION = 2; // 2: ops grouped by object with typed actions

export const IpcLimits = {
  // front end -> helper: one encoded domain definition (XML_MAX bytes of content in at most 20000 elements of ~24 bytes
  // of framing each) plus headroom; the attacker-adjacent direction stays small
  REQUEST_MAX: 1024 * 1024,
  ANSWER_MAX: 16 * 1024 * 1024, // helper -> front end: a full domain list fits
  FRAME_MIN: 12, // length + op + id
  // Domain XML the front end parses (and the content of one definition the helper decodes): twice libvirt's 134 KB
  // test domain (libvirt itself takes up to its 4 MiB string maximum).
  XML_MAX: 256 * 1024,
  NAME_MAX: 64, // domain name bytes
  DOMAINS_MAX: 16384, // REMOTE_DOMAIN_LIST_MAX
  IDENTITY_MAX: 256, // user / tenant names carried for the helper's journal
  REQUEST_ID_MAX: 64,
  DETAIL_MAX: 1024, // error detail text
  MEMORY_KIB_MAX: 1n << 40n, // 1 PiB in KiB
  VCPUS_MAX: 4096,
  CELLS_MAX: 1024, // REMOTE_NODE_MAX_CELLS
} as const;

export const AnswerStatus = { OK: 0, ERROR: 1 } as const;

// Domain lifecycle actions carried by DOMAIN_CONTROL.
export const ControlAction = {
  START: 0,
  SHUTDOWN: 1,
  DESTROY: 2,
  SUSPEND: 3,
  RESUME: 4,
  REBOOT: 5,
} as const;
export type ControlActionCode = (typeof ControlAction)[keyof typeof ControlAction];
export const CONTROL_ACTIONS = Object.values(ControlAction) as ControlActionCode[];

export const LookupKind = { NAME: 0, UUID: 1, ID: 2 } as const;

// ---------- field validators (used by decoders, so both ends reject the same inputs) ----------

// Conservative domain-name charset: no '/', no control characters, no leading dot or dash.
const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.+:@-]*$/;

export function checkDomainName(name: string, field = 'name'): string {
  if (Buffer.byteLength(name) > IpcLimits.NAME_MAX || !NAME_RE.test(name)) {
    throw VG_ERR_IPC_VALIDATION(field, 'domain names are 1-64 characters of [A-Za-z0-9_.+:@-], not starting with . + : @ or -');
  }
  return name;
}

// Tenant names: '' = none (host-level), else the shared rule of common/names (the policy parser uses the same one).
export function checkTenantName(tenant: string, field = 'tenant'): string {
  if (!isTenantName(tenant)) throw VG_ERR_IPC_VALIDATION(field, `tenant names are empty or ${NAME_RULE}`);
  return tenant;
}

// '' (no tenant) is left out of decoded summaries: `tenant ?? ''` reads both the same.
export const tenantField = (t: string): { tenant?: string } => (t === '' ? {} : { tenant: t });

export function checkUuid(uuid: Buffer, field = 'uuid'): Buffer {
  if (uuid.length !== 16) throw VG_ERR_IPC_VALIDATION(field, 'must be 16 bytes');
  return uuid;
}

export function checkRange(v: number, min: number, max: number, field: string): number {
  if (!Number.isInteger(v) || v < min || v > max) throw VG_ERR_IPC_VALIDATION(field, `must be an integer in [${min}, ${max}]`);
  return v;
}

export const AUDIT_HEAD_MAX = 80;
const AUDIT_HEAD_RE = /^([0-9]{1,15}:[0-9a-f]{64})?$/;

export function checkAuditHead(s: string): string {
  if (!AUDIT_HEAD_RE.test(s)) throw VG_ERR_IPC_VALIDATION('actor.auditHead', 'must be SEQ:SHA256 or empty');
  return s;
}

export function checkIdentityText(s: string, field: string): string {
  // Printable, no newlines: it ends up in the helper's line-oriented journal.
  if (!/^[\x20-\x7e]*$/.test(s)) throw VG_ERR_IPC_VALIDATION(field, 'must be printable ASCII');
  return s;
}

export { uuidFromString, uuidToString } from '../common/uuid';

// ---------- shared value shapes ----------

// Who asked, as the front end claims it. Permissions are the front end's to decide (its policy); the helper journals
// user and request id, and enforces one rule of its own, the tenant boundary: the tenant is the one a new VM gets, a
// define/create that clashes with another tenant's VM is "not available", and a VM is never redefined across tenants.
export interface Actor {
  user: string;
  tenant: string;
  requestId: string;
  // The front end's audit record of this write (its intent), as `SEQ:SHA256-OF-LINE`; '' when audit is off. The helper
  // journals it, which anchors the audit chain's head outside the front end's reach (verify --cross-check).
  auditHead?: string;
}

export interface DomainSummary {
  name: string;
  uuid: Buffer;
  id: number; // -1 while inactive
  state: number; // virDomainState
  reason: number;
  persistent: boolean;
  tenant?: string; // the tenant the VM belongs to; absent = none
}

export interface DomainInfo extends DomainSummary {
  maxMemKiB: bigint;
  memoryKiB: bigint;
  nrVirtCpu: number;
  maxVcpus: number;
  cpuTimeNs: bigint;
  autostart: boolean;
  osType: string;
  hasManagedSave: boolean;
  securityLabel: string;
  securityEnforcing: boolean;
}

export interface NodeFacts {
  driver: string; // 'test' or 'qemu': the URI scheme this helper serves
  uri: string; // canonical URI, e.g. test:///default
  hvType: string; // CONNECT_GET_TYPE
  hvVersion: bigint; // CONNECT_GET_VERSION
  hostname: string;
  model: string;
  memoryKiB: bigint;
  cpus: number;
  mhz: number;
  nodes: number;
  sockets: number;
  cores: number;
  threads: number;
  capabilitiesXml: string;
  securityModel: string;
  securityDoi: string;
  maxVcpus: number; // CONNECT_GET_MAX_VCPUS
  cellsFreeBytes: bigint[]; // NODE_GET_CELLS_FREE_MEMORY: per NUMA cell, in order
  freeMemoryBytes: bigint; // NODE_GET_FREE_MEMORY
}

// Lifecycle events of the other object types (networks, storage pools, node devices) with libvirt's event/detail
// numbers; a pool refresh is event -1. `tenant` is the object's ('' = shared or host-level).
export const OBJECT_EVENT_TYPES = ['network', 'pool', 'nodedev'] as const;
export type ObjectEventType = (typeof OBJECT_EVENT_TYPES)[number];
export interface ObjectEvent {
  type: ObjectEventType;
  name: string;
  uuid: Buffer; // all zero for objects without one (node devices)
  tenant: string;
  event: number;
  detail: number;
}

export const OBJECT_NAME_MAX = 255;
// Names of networks, pools, volumes, interfaces and node devices: printable, no '/', not '.' or '..'.
export function checkObjectName(name: string, field = 'name'): string {
  if (
    Buffer.byteLength(name) > OBJECT_NAME_MAX ||
    name === '' ||
    name === '.' ||
    name === '..' ||
    !/^[\x21-\x7e][\x20-\x7e]*$/.test(name) ||
    name.includes('/')
  ) {
    throw VG_ERR_IPC_VALIDATION(field, 'object names are 1-255 printable characters without "/", not "." or ".."');
  }
  return name;
}

export const objectEventCodec: Codec<ObjectEvent> = {
  encode(w, e) {
    w.u32(OBJECT_EVENT_TYPES.indexOf(e.type)).string(e.name, OBJECT_NAME_MAX).opaqueFixed(e.uuid, 16).string(e.tenant, NAME_LIMITS.TENANT_MAX);
    w.i32(e.event).i32(e.detail);
  },
  decode(r) {
    const t = r.u32('objectEvent.type');
    const type = OBJECT_EVENT_TYPES[t];
    if (type === undefined) throw VG_ERR_IPC_VALIDATION('objectEvent.type', `unknown type ${t}`);
    return {
      type,
      name: checkObjectName(r.string(OBJECT_NAME_MAX, 'objectEvent.name')),
      uuid: Buffer.from(r.opaqueFixed(16, 'objectEvent.uuid')),
      tenant: checkTenantName(r.string(NAME_LIMITS.TENANT_MAX, 'objectEvent.tenant')),
      event: checkRange(r.i32('objectEvent.event'), -1, 64, 'objectEvent.event'),
      detail: checkRange(r.i32('objectEvent.detail'), 0, 64, 'objectEvent.detail'),
    };
  },
};

export interface LifecycleEvent {
  domain: DomainSummary;
  event: number;
  detail: number;
}

// A domain's full state as the helper committed it, so the front end can answer reads without a round trip.
// CPU time is `cpuBaseNs` plus wall time since `cpuSinceMs` while running; `cpuClock` false means the driver
// cannot promise that (a real hypervisor), and the front end must ask the helper for fresh figures instead.
export interface DomainSnapshot {
  info: DomainInfo;
  cpuBaseNs: bigint;
  cpuSinceMs: number | null;
  cpuClock: boolean;
  // With cpuClock false: a world-readable accounting file of the running VM the front end reads for live CPU time
  // (cgroup v1 cpuacct.usage in ns, or v2 cpu.stat's usage_usec), so GetInfo needs no helper hop; null: ask the helper.
  cpuFile?: string | null;
}

// Only a cgroup's CPU accounting file: the front end opens nothing else on the helper's word.
export const CPU_FILE_RE = /^\/sys\/fs\/cgroup\/(?:[A-Za-z0-9_.@:-]+\/){1,16}(?:cpuacct\.usage|cpu\.stat)$/;
export const CPU_FILE_MAX = 512;

// The CPU time in such a file, in ns: v1 cpuacct.usage holds ns; v2 cpu.stat has a usage_usec line. null: not that.
export function parseCgroupCpuNs(file: string, text: string): bigint | null {
  if (file.endsWith('/cpuacct.usage')) return /^[0-9]{1,20}\s*$/.test(text) ? BigInt(text.trim()) : null;
  const m = /^usage_usec ([0-9]{1,20})$/m.exec(text);
  return m ? BigInt(m[1]) * 1000n : null;
}

// One subscription answer: a lifecycle event, a domain's new state, a domain's removal, or the end of the initial
// sync (every domain has been sent once). Snapshots of a change always precede the answer of the request that made it.
export interface StreamItem {
  event: LifecycleEvent | null;
  snapshot?: DomainSnapshot | null;
  removed?: Buffer | null;
  synced?: boolean;
  objectEvent?: ObjectEvent | null;
  // A network's, pool's, volume's, interface's or node device's new committed state, or its removal.
  objectState?: ObjectStateChange | null;
}

export type LookupKey = { kind: 0; name: string } | { kind: 1; uuid: Buffer } | { kind: 2; id: number };

// ---------- codecs ----------

export interface Codec<T> {
  encode(w: XdrWriter, v: T): void;
  decode(r: XdrReader): T;
}

// A struct codec over named field codecs, in order.
type Fields<T> = { [K in keyof T]: { encode(w: XdrWriter, v: T[K]): void; decode(r: XdrReader): T[K] } };
export function rec<T extends object>(fields: Fields<T>): Codec<T> {
  const keys = Object.keys(fields) as (keyof T)[];
  return {
    encode(w, v) {
      for (const k of keys) fields[k].encode(w, v[k]);
    },
    decode(r) {
      const out = {} as T;
      for (const k of keys) out[k] = fields[k].decode(r);
      return out;
    },
  };
}

// No fields: an action without arguments or with a bare acknowledgement (joins `{ action }` cleanly).
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export const nothing: Codec<{}> = { encode() {}, decode: () => ({}) };
export const empty: Codec<Record<string, never>> = { encode() {}, decode: () => ({}) };

export const uuidCodec = {
  encode: (w: XdrWriter, u: Buffer) => w.opaqueFixed(checkUuid(u), 16),
  decode: (r: XdrReader) => Buffer.from(r.opaqueFixed(16, 'uuid')),
};

export const actorCodec: Codec<Actor> = {
  encode(w, a) {
    w.string(a.user, IpcLimits.IDENTITY_MAX).string(a.tenant, NAME_LIMITS.TENANT_MAX).string(a.requestId, IpcLimits.REQUEST_ID_MAX);
    w.string(a.auditHead ?? '', AUDIT_HEAD_MAX);
  },
  decode(r) {
    return {
      user: checkIdentityText(r.string(IpcLimits.IDENTITY_MAX, 'actor.user'), 'actor.user'),
      tenant: checkTenantName(r.string(NAME_LIMITS.TENANT_MAX, 'actor.tenant'), 'actor.tenant'), // refused before anything changes
      requestId: checkIdentityText(r.string(IpcLimits.REQUEST_ID_MAX, 'actor.requestId'), 'actor.requestId'),
      auditHead: checkAuditHead(r.string(AUDIT_HEAD_MAX, 'actor.auditHead')),
    };
  },
};

export function xmlField(r: XdrReader): string {
  const xml = r.string(IpcLimits.XML_MAX, 'xml');
  if (xml.includes('\0')) throw VG_ERR_IPC_VALIDATION('xml', 'contains NUL');
  return xml;
}

export const summaryCodec: Codec<DomainSummary> = {
  encode(w, d) {
    w.string(d.name, IpcLimits.NAME_MAX).opaqueFixed(d.uuid, 16).i32(d.id).i32(d.state).i32(d.reason).bool(d.persistent);
    w.string(d.tenant ?? '', 64);
  },
  decode(r) {
    return {
      name: checkDomainName(r.string(IpcLimits.NAME_MAX, 'name')),
      uuid: uuidCodec.decode(r),
      id: checkRange(r.i32('id'), -1, 0x7fffffff, 'id'),
      state: checkRange(r.i32('state'), 0, 7, 'state'),
      reason: checkRange(r.i32('reason'), 0, 64, 'reason'),
      persistent: r.bool('persistent'),
      ...tenantField(checkTenantName(r.string(NAME_LIMITS.TENANT_MAX, 'tenant'))),
    };
  },
};

export const infoCodec: Codec<DomainInfo> = {
  encode(w, d) {
    summaryCodec.encode(w, d);
    w.u64(d.maxMemKiB).u64(d.memoryKiB).u32(d.nrVirtCpu).u32(d.maxVcpus).u64(d.cpuTimeNs).bool(d.autostart);
    w.string(d.osType, 64).bool(d.hasManagedSave).string(d.securityLabel, 4096).bool(d.securityEnforcing);
  },
  decode(r) {
    return {
      ...summaryCodec.decode(r),
      maxMemKiB: r.u64('maxMem'),
      memoryKiB: r.u64('memory'),
      nrVirtCpu: r.u32('nrVirtCpu'),
      maxVcpus: r.u32('maxVcpus'),
      cpuTimeNs: r.u64('cpuTime'),
      autostart: r.bool('autostart'),
      osType: r.string(64, 'osType'),
      hasManagedSave: r.bool('hasManagedSave'),
      securityLabel: r.string(4096, 'securityLabel'),
      securityEnforcing: r.bool('securityEnforcing'),
    };
  },
};

export const factsCodec: Codec<NodeFacts> = {
  encode(w, f) {
    w.string(f.driver, 16).string(f.uri, 256).string(f.hvType, 32).u64(f.hvVersion).string(f.hostname, 256).string(f.model, 31);
    w.u64(f.memoryKiB).i32(f.cpus).i32(f.mhz).i32(f.nodes).i32(f.sockets).i32(f.cores).i32(f.threads);
    w.string(f.capabilitiesXml, 1024 * 1024)
      .string(f.securityModel, 256)
      .string(f.securityDoi, 256);
    w.i32(f.maxVcpus)
      .array(f.cellsFreeBytes, IpcLimits.CELLS_MAX, (w2, c) => void w2.u64(c))
      .u64(f.freeMemoryBytes);
  },
  decode(r) {
    return {
      driver: r.string(16, 'driver'),
      uri: r.string(256, 'uri'),
      hvType: r.string(32, 'hvType'),
      hvVersion: r.u64('hvVersion'),
      hostname: r.string(256, 'hostname'),
      model: r.string(31, 'model'),
      memoryKiB: r.u64('memory'),
      cpus: r.i32('cpus'),
      mhz: r.i32('mhz'),
      nodes: r.i32('nodes'),
      sockets: r.i32('sockets'),
      cores: r.i32('cores'),
      threads: r.i32('threads'),
      capabilitiesXml: r.string(1024 * 1024, 'capabilities'),
      securityModel: r.string(256, 'securityModel'),
      securityDoi: r.string(256, 'securityDoi'),
      maxVcpus: r.i32('maxVcpus'),
      cellsFreeBytes: r.array(IpcLimits.CELLS_MAX, (r2) => r2.u64('cell free memory'), 'cells'),
      freeMemoryBytes: r.u64('free memory'),
    };
  },
};

export const lookupCodec: Codec<LookupKey> = {
  encode(w, k) {
    w.u32(k.kind);
    if (k.kind === LookupKind.NAME) w.string(k.name, IpcLimits.NAME_MAX);
    else if (k.kind === LookupKind.UUID) uuidCodec.encode(w, k.uuid);
    else w.i32(k.id);
  },
  decode(r) {
    const kind = r.u32('lookup.kind');
    if (kind === LookupKind.NAME) return { kind, name: checkDomainName(r.string(IpcLimits.NAME_MAX, 'lookup.name')) };
    if (kind === LookupKind.UUID) return { kind, uuid: uuidCodec.decode(r) };
    if (kind === LookupKind.ID) return { kind, id: checkRange(r.i32('lookup.id'), 0, 0x7fffffff, 'lookup.id') };
    throw VG_ERR_IPC_VALIDATION('lookup.kind', `unknown kind ${kind}`);
  },
};

export const setFlags = (w: XdrWriter, v: { live: boolean; config: boolean; max: boolean }): void => {
  w.bool(v.live).bool(v.config).bool(v.max);
};
export const getFlags = (r: XdrReader) => ({ live: r.bool('live'), config: r.bool('config'), max: r.bool('max') });
