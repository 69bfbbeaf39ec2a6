// SPDX-License-Identifier: Apache-2.0
// The helper IPC program, pure: op numbers, limits, per-op codecs; every decoder validates every field.
//
// Frame (all big-endian):
//   u32 length   (whole frame, this word included)
//   u32 op       (even = request from the front end, odd = answer from the helper)
//   u32 id       (request id chosen by the front end, echoed in answers)
//   answers only: u32 status (0 = ok, 1 = error) ; error body = { string code; string detail }
//   payload      (op-specific, below)
import { createHash } from 'node:crypto';
import { VG_ERR_IPC_VALIDATION, errorCatalogue } from '../common/errors';
import { XdrReader, XdrWriter } from '../common/xdr';
import { NAME_LIMITS, NAME_RULE, isTenantName } from '../common/names';

export const IPC_VERSION = 1;

export const IpcLimits = {
  REQUEST_MAX: 64 * 1024, // front end -> helper: the attacker-adjacent direction stays small
  ANSWER_MAX: 16 * 1024 * 1024, // helper -> front end: a full domain list fits
  FRAME_MIN: 12, // length + op + id
  XML_MAX: 60 * 1024, // domain XML accepted by the helper (fits in REQUEST_MAX with headroom)
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
const CONTROL_ACTIONS = Object.values(ControlAction) as ControlActionCode[];

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
const tenantField = (t: string): { tenant?: string } => (t === '' ? {} : { tenant: t });

export function checkUuid(uuid: Buffer, field = 'uuid'): Buffer {
  if (uuid.length !== 16) throw VG_ERR_IPC_VALIDATION(field, 'must be 16 bytes');
  return uuid;
}

function checkRange(v: number, min: number, max: number, field: string): number {
  if (!Number.isInteger(v) || v < min || v > max) throw VG_ERR_IPC_VALIDATION(field, `must be an integer in [${min}, ${max}]`);
  return v;
}

const AUDIT_HEAD_MAX = 80;
const AUDIT_HEAD_RE = /^([0-9]{1,15}:[0-9a-f]{64})?$/;

function checkAuditHead(s: string): string {
  if (!AUDIT_HEAD_RE.test(s)) throw VG_ERR_IPC_VALIDATION('actor.auditHead', 'must be SEQ:SHA256 or empty');
  return s;
}

function checkIdentityText(s: string, field: string): string {
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
}

// One subscription answer: a lifecycle event, a domain's new state, a domain's removal, or the end of the initial
// sync (every domain has been sent once). Snapshots of a change always precede the answer of the request that made it.
export interface StreamItem {
  event: LifecycleEvent | null;
  snapshot?: DomainSnapshot | null;
  removed?: Buffer | null;
  synced?: boolean;
}

export type LookupKey = { kind: 0; name: string } | { kind: 1; uuid: Buffer } | { kind: 2; id: number };

// ---------- codecs ----------

interface Codec<T> {
  encode(w: XdrWriter, v: T): void;
  decode(r: XdrReader): T;
}

const empty: Codec<Record<string, never>> = { encode() {}, decode: () => ({}) };

const uuidCodec = {
  encode: (w: XdrWriter, u: Buffer) => w.opaqueFixed(checkUuid(u), 16),
  decode: (r: XdrReader) => Buffer.from(r.opaqueFixed(16, 'uuid')),
};

const actorCodec: Codec<Actor> = {
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

function xmlField(r: XdrReader): string {
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

const infoCodec: Codec<DomainInfo> = {
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

const factsCodec: Codec<NodeFacts> = {
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

const lookupCodec: Codec<LookupKey> = {
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

const setFlags = (w: XdrWriter, v: { live: boolean; config: boolean; max: boolean }): void => {
  w.bool(v.live).bool(v.config).bool(v.max);
};
const getFlags = (r: XdrReader) => ({ live: r.bool('live'), config: r.bool('config'), max: r.bool('max') });

// ---------- request bodies ----------

const helloReq: Codec<{ version: number }> = { encode: (w, v) => w.u32(v.version), decode: (r) => ({ version: r.u32('version') }) };

const lookupReq: Codec<{ key: LookupKey }> = {
  encode: (w, v) => lookupCodec.encode(w, v.key),
  decode: (r) => ({ key: lookupCodec.decode(r) }),
};

const uuidReq: Codec<{ uuid: Buffer }> = { encode: (w, v) => uuidCodec.encode(w, v.uuid), decode: (r) => ({ uuid: uuidCodec.decode(r) }) };

const xmlReq: Codec<{ uuid: Buffer; inactive: boolean }> = {
  encode: (w, v) => (uuidCodec.encode(w, v.uuid), w.bool(v.inactive)),
  decode: (r) => ({ uuid: uuidCodec.decode(r), inactive: r.bool('inactive') }),
};

// DOMAIN_DEFINE and DOMAIN_CREATE_XML
const defineReq: Codec<{ actor: Actor; xml: string }> = {
  encode: (w, v) => (actorCodec.encode(w, v.actor), w.string(v.xml, IpcLimits.XML_MAX)),
  decode: (r) => ({ actor: actorCodec.decode(r), xml: xmlField(r) }),
};

const undefineReq: Codec<{ actor: Actor; uuid: Buffer }> = {
  encode: (w, v) => (actorCodec.encode(w, v.actor), uuidCodec.encode(w, v.uuid)),
  decode: (r) => ({ actor: actorCodec.decode(r), uuid: uuidCodec.decode(r) }),
};

const controlReq: Codec<{ actor: Actor; uuid: Buffer; action: ControlActionCode }> = {
  encode: (w, v) => (actorCodec.encode(w, v.actor), uuidCodec.encode(w, v.uuid), w.i32(v.action)),
  decode: (r) => ({ actor: actorCodec.decode(r), uuid: uuidCodec.decode(r), action: r.enumOf(CONTROL_ACTIONS, 'action') }),
};

const setMemoryReq: Codec<{ actor: Actor; uuid: Buffer; memoryKiB: bigint; live: boolean; config: boolean; max: boolean }> = {
  encode: (w, v) => (actorCodec.encode(w, v.actor), uuidCodec.encode(w, v.uuid), w.u64(v.memoryKiB), setFlags(w, v)),
  decode: (r) => {
    const actor = actorCodec.decode(r);
    const uuid = uuidCodec.decode(r);
    const memoryKiB = r.u64('memory');
    if (memoryKiB < 1n || memoryKiB > IpcLimits.MEMORY_KIB_MAX) throw VG_ERR_IPC_VALIDATION('memory', 'out of range');
    return { actor, uuid, memoryKiB, ...getFlags(r) };
  },
};

const setVcpusReq: Codec<{ actor: Actor; uuid: Buffer; nvcpus: number; live: boolean; config: boolean; max: boolean }> = {
  encode: (w, v) => (actorCodec.encode(w, v.actor), uuidCodec.encode(w, v.uuid), w.u32(v.nvcpus), setFlags(w, v)),
  decode: (r) => ({
    actor: actorCodec.decode(r),
    uuid: uuidCodec.decode(r),
    nvcpus: checkRange(r.u32('nvcpus'), 1, IpcLimits.VCPUS_MAX, 'nvcpus'),
    ...getFlags(r),
  }),
};

const setTenantReq: Codec<{ actor: Actor; uuid: Buffer; tenant: string }> = {
  encode: (w, v) => (actorCodec.encode(w, v.actor), uuidCodec.encode(w, v.uuid), w.string(v.tenant, 64)),
  decode: (r) => ({ actor: actorCodec.decode(r), uuid: uuidCodec.decode(r), tenant: checkTenantName(r.string(NAME_LIMITS.TENANT_MAX, 'tenant')) }),
};

// ---------- answer bodies ----------

const helloAns: Codec<{ version: number; driver: string }> = {
  encode: (w, v) => w.u32(v.version).string(v.driver, 16),
  decode: (r) => ({ version: r.u32('version'), driver: r.string(16, 'driver') }),
};

const listAns: Codec<{ domains: DomainSummary[] }> = {
  encode: (w, v) => w.array(v.domains, IpcLimits.DOMAINS_MAX, summaryCodec.encode),
  decode: (r) => ({ domains: r.array(IpcLimits.DOMAINS_MAX, summaryCodec.decode, 'domains') }),
};

const xmlAns: Codec<{ xml: string }> = {
  encode: (w, v) => w.string(v.xml, 4 * 1024 * 1024),
  decode: (r) => ({ xml: r.string(4 * 1024 * 1024, 'xml') }),
};

// One ack answer, then one answer per lifecycle event, all with the subscribing request's id; the last answer of the
// initial sync has synced = true.
const streamAns: Codec<StreamItem> = {
  encode: (w, v) => {
    w.optional(v.event, (w2, e) => {
      summaryCodec.encode(w2, e.domain);
      w2.i32(e.event).i32(e.detail);
    });
    w.optional(v.snapshot, (w2, sn) => {
      infoCodec.encode(w2, sn.info);
      w2.u64(sn.cpuBaseNs)
        .optional(sn.cpuSinceMs, (w3, ms) => w3.u64(BigInt(ms)))
        .bool(sn.cpuClock);
    });
    w.optional(v.removed, (w2, u) => uuidCodec.encode(w2, u));
    w.bool(v.synced ?? false);
  },
  decode: (r) => ({
    event: r.optional((r2) => ({
      domain: summaryCodec.decode(r2),
      event: checkRange(r2.i32('event'), 0, 16, 'event'),
      detail: checkRange(r2.i32('detail'), 0, 16, 'detail'),
    })),
    snapshot: r.optional((r2) => ({
      info: infoCodec.decode(r2),
      cpuBaseNs: r2.u64('cpuBase'),
      cpuSinceMs: r2.optional((r3) => Number(r3.u64('cpuSince'))),
      cpuClock: r2.bool('cpuClock'),
    })),
    removed: r.optional((r2) => uuidCodec.decode(r2)),
    synced: r.bool('synced'),
  }),
};

// ---------- the op table: the one place an op is declared ----------

// Each op is a mirrored pair, X_REQ even and X_ANS = X_REQ + 1 [openssh mm_/mm_answer_], with the codec of each
// direction and whether it changes hypervisor state (a write: the helper journals it and refuses a replayed request id).
// The op enum, the body types, the codec maps and the request -> answer pairing both ends use are derived from it.
// test/unit/ipc/op-table-pin.test.ts pins it: a new op is a reviewed change to that test too.
interface OpSpec<Q extends number, A extends number, Req, Ans> {
  readonly req: Q;
  readonly ans: A;
  readonly write: boolean;
  readonly request: Codec<Req>;
  readonly answer: Codec<Ans>;
}

const READ = false;
const WRITE = true;
const spec = <Q extends number, A extends number, Req, Ans>(req: Q, ans: A, write: boolean, request: Codec<Req>, answer: Codec<Ans>): OpSpec<Q, A, Req, Ans> =>
  Object.freeze({ req, ans, write, request, answer });

export const OPS = Object.freeze({
  HELLO: spec(0, 1, READ, helloReq, helloAns),
  NODE_FACTS: spec(2, 3, READ, empty, factsCodec),
  DOMAIN_LIST: spec(4, 5, READ, empty, listAns),
  DOMAIN_LOOKUP: spec(6, 7, READ, lookupReq, summaryCodec),
  DOMAIN_INFO: spec(8, 9, READ, uuidReq, infoCodec),
  DOMAIN_XML: spec(10, 11, READ, xmlReq, xmlAns),
  DOMAIN_DEFINE: spec(12, 13, WRITE, defineReq, summaryCodec),
  DOMAIN_CREATE_XML: spec(14, 15, WRITE, defineReq, summaryCodec),
  DOMAIN_UNDEFINE: spec(16, 17, WRITE, undefineReq, empty),
  DOMAIN_CONTROL: spec(18, 19, WRITE, controlReq, summaryCodec),
  DOMAIN_SET_MEMORY: spec(20, 21, WRITE, setMemoryReq, empty),
  DOMAIN_SET_VCPUS: spec(22, 23, WRITE, setVcpusReq, empty),
  EVENTS_SUBSCRIBE: spec(24, 25, READ, empty, streamAns), // one ack, then the event stream under the same id
  // Host-admin reassignment of a VM's tenant (`virtgate vm set-tenant`); the front end decides who may ask.
  DOMAIN_SET_TENANT: spec(26, 27, WRITE, setTenantReq, summaryCodec),
});

type OpTable = typeof OPS;
export type OpBase = keyof OpTable;
type CodecOf<C> = C extends Codec<infer T> ? T : never;
type ByReq = { [N in OpBase as OpTable[N]['req']]: OpTable[N] };

export type OpNames = { readonly [N in OpBase as `${N}_REQ`]: OpTable[N]['req'] } & { readonly [N in OpBase as `${N}_ANS`]: OpTable[N]['ans'] };
export type OpCode = OpNames[keyof OpNames];
// Request op -> request body; answer op -> answer body; request op -> its answer op and answer body.
export type Requests = { [N in OpBase as OpTable[N]['req']]: CodecOf<OpTable[N]['request']> };
export type Answers = { [N in OpBase as OpTable[N]['ans']]: CodecOf<OpTable[N]['answer']> };
export type RequestOp = keyof Requests;
export type AnswerOp = keyof Answers;
export type AnswerOpOf<K extends RequestOp> = ByReq[K]['ans'];
export type AnswerOf<K extends RequestOp> = CodecOf<ByReq[K]['answer']>;

const SPECS: readonly OpTable[OpBase][] = Object.values(OPS);

// A table that breaks the frame's rules (even requests, odd answers, no number twice) is a bug: refuse to load.
for (const s of SPECS) {
  if (s.req % 2 !== 0 || s.ans !== s.req + 1 || SPECS.filter((t) => t.req === s.req).length !== 1) throw new Error(`IPC op table: bad pair ${s.req}/${s.ans}`);
}

export const Op: OpNames = Object.freeze(
  Object.fromEntries(
    Object.entries(OPS).flatMap(([n, s]) => [
      [`${n}_REQ`, s.req],
      [`${n}_ANS`, s.ans],
    ]),
  ),
) as OpNames;

export const REQUEST_OPS: readonly number[] = SPECS.map((s) => s.req);
const REQUEST_SET: ReadonlySet<number> = new Set(REQUEST_OPS);
const ANSWER_SET: ReadonlySet<number> = new Set(SPECS.map((s) => s.ans));
const ANSWER_OF: ReadonlyMap<number, AnswerOp> = new Map(SPECS.map((s) => [s.req, s.ans]));
const WRITE_OPS: ReadonlySet<number> = new Set(SPECS.filter((s) => s.write).map((s) => s.req));

// The answer op that pairs with a request op: the helper answers with it, the front end accepts only it.
export function answerOpOf<K extends RequestOp>(op: K): AnswerOpOf<K> {
  const ans = ANSWER_OF.get(op);
  if (ans === undefined) throw VG_ERR_IPC_VALIDATION('op', `unknown request op ${op}`);
  return ans as AnswerOpOf<K>;
}

// Whether a request op changes hypervisor state (journaled, replay-checked by the helper).
export const isWriteOp = (op: number): boolean => WRITE_OPS.has(op);

export const requestCodecs = Object.freeze(Object.fromEntries(SPECS.map((s) => [s.req, s.request]))) as { readonly [K in RequestOp]: Codec<Requests[K]> };
export const answerCodecs = Object.freeze(Object.fromEntries(SPECS.map((s) => [s.ans, s.answer]))) as { readonly [K in AnswerOp]: Codec<Answers[K]> };

// `Op.DOMAIN_CONTROL_REQ` -> 'DOMAIN_CONTROL_REQ': the name both processes write in their records.
const OP_NAME = new Map<number, string>(Object.entries(Op).map(([k, v]) => [v as number, k]));
export const opName = (op: number): string => OP_NAME.get(op) ?? `op-${op}`;
// ---------- whole frames ----------

export interface RequestFrame<K extends RequestOp = RequestOp> {
  op: K;
  id: number;
  body: Requests[K];
}

export type AnswerFrame =
  { op: AnswerOp; id: number; ok: true; body: Answers[AnswerOp] } | { op: AnswerOp; id: number; ok: false; code: string; detail: string };

export function isRequestOp(op: number): op is RequestOp {
  return REQUEST_SET.has(op);
}

export function encodeRequest<K extends RequestOp>(op: K, id: number, body: Requests[K]): Buffer {
  const w = new XdrWriter(128);
  const at = w.reserveU32();
  w.u32(op).u32(id);
  requestCodecs[op].encode(w, body);
  w.patchU32(at, w.length);
  const out = w.finish();
  if (out.length > IpcLimits.REQUEST_MAX) throw VG_ERR_IPC_VALIDATION('frame', `request of ${out.length} bytes exceeds ${IpcLimits.REQUEST_MAX}`);
  return out;
}

// What a write asks the helper to do, as one digest: the request encoded with its actor blanked. Both ends compute it
// (the front end for its audit intent, the helper for its journal), so cross-check can tell a replayed or altered
// request from the one the audit log allowed.
const BLANK_ACTOR: Actor = { user: '', tenant: '', requestId: '', auditHead: '' };

export function requestDigest<K extends RequestOp>(op: K, body: Requests[K]): string {
  const b = body as Requests[K] & { actor?: Actor };
  const blank = b.actor ? ({ ...b, actor: BLANK_ACTOR } as Requests[K]) : body;
  return createHash('sha256')
    .update(encodeRequest(op, 0, blank))
    .digest('hex');
}

// Throws VG_ERR_IPC_* or VG_ERR_XDR_DECODE on anything malformed: the helper then closes the connection.
export function decodeRequest(frame: Buffer): RequestFrame {
  const r = new XdrReader(frame, 4);
  const op = r.u32('op');
  const id = r.u32('id');
  if (!isRequestOp(op)) throw VG_ERR_IPC_VALIDATION('op', `unknown request op ${op}`);
  const body = requestCodecs[op].decode(r);
  r.ensureConsumed('request');
  return { op, id, body } as RequestFrame;
}

export function encodeAnswer<K extends AnswerOp>(op: K, id: number, body: Answers[K]): Buffer {
  const w = new XdrWriter(128);
  const at = w.reserveU32();
  w.u32(op).u32(id).u32(AnswerStatus.OK);
  answerCodecs[op].encode(w, body);
  w.patchU32(at, w.length);
  return w.finish();
}

export function encodeAnswerError(op: AnswerOp, id: number, code: string, detail: string): Buffer {
  const w = new XdrWriter(128);
  const at = w.reserveU32();
  w.u32(op)
    .u32(id)
    .u32(AnswerStatus.ERROR)
    .string(code, 64)
    .string(detail.slice(0, IpcLimits.DETAIL_MAX), IpcLimits.DETAIL_MAX * 4);
  w.patchU32(at, w.length);
  return w.finish();
}

export function decodeAnswer(frame: Buffer): AnswerFrame {
  const r = new XdrReader(frame, 4);
  const op = r.u32('op');
  const id = r.u32('id');
  if (!ANSWER_SET.has(op)) throw VG_ERR_IPC_VALIDATION('op', `unknown answer op ${op}`);
  const status = r.u32('status');
  if (status === AnswerStatus.OK) {
    const body = answerCodecs[op as AnswerOp].decode(r);
    r.ensureConsumed('answer');
    return { op: op as AnswerOp, id, ok: true, body };
  }
  if (status !== AnswerStatus.ERROR) throw VG_ERR_IPC_VALIDATION('status', String(status));
  const code = r.string(64, 'code');
  const detail = r.string(IpcLimits.DETAIL_MAX * 4, 'detail');
  r.ensureConsumed('answer');
  // Only catalogue codes cross the boundary; anything else becomes a generic internal error.
  return { op: op as AnswerOp, id, ok: false, code: errorCatalogue().has(code) ? code : 'VG_ERR_INTERNAL', detail };
}
