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
import { NAME_LIMITS } from '../common/names';
import {
  type Actor,
  type Codec,
  type DomainSummary,
  type LookupKey,
  type StreamItem,
  type ControlActionCode,
  IpcLimits,
  CPU_FILE_MAX,
  CPU_FILE_RE,
  AnswerStatus,
  objectEventCodec,
  checkRange,
  checkTenantName,
  empty,
  nothing,
  factsCodec,
  getFlags,
  infoCodec,
  lookupCodec,
  setFlags,
  summaryCodec,
  uuidCodec,
  CONTROL_ACTIONS,
} from './shared';

export * from './shared';
export { actionOf } from './actions';
import { action, actionGroup, actionOf } from './actions';
import { DOMAIN_READ_EXTRA, DOMAIN_WRITE_EXTRA } from './objects/domain-extra';
import { CONSOLE_ACTIONS } from './objects/console';
import { GRAPHICS_ACTIONS, screenshotAnswer } from './objects/graphics';
import { type DomainDef, defField } from './objects/domain-def';
import { NETWORK_READ, NETWORK_WRITE } from './objects/network';
import { POOL_READ, POOL_WRITE, VOLUME_READ, VOLUME_WRITE } from './objects/storage';
import { HOST_READ, IFACE_READ, IFACE_WRITE, NODEDEV_READ, NODEDEV_WRITE } from './objects/host-objects';
import { SNAPSHOT_READ, SNAPSHOT_WRITE } from './objects/snapshot';
import { SAVE_ACTIONS } from './objects/save-image';
import { objectStateChangeCodec } from './objects/object-state';

const READ = false;
const WRITE = true;

// ---------- request and answer bodies ----------

const helloReq: Codec<{ version: number }> = { encode: (w, v) => w.u32(v.version), decode: (r) => ({ version: r.u32('version') }) };

const helloAns: Codec<{ version: number; driver: string }> = {
  encode: (w, v) => w.u32(v.version).string(v.driver, 16),
  decode: (r) => ({ version: r.u32('version'), driver: r.string(16, 'driver') }),
};

const lookupReq: Codec<{ key: LookupKey }> = {
  encode: (w, v) => lookupCodec.encode(w, v.key),
  decode: (r) => ({ key: lookupCodec.decode(r) }),
};

const uuidReq: Codec<{ uuid: Buffer }> = { encode: (w, v) => uuidCodec.encode(w, v.uuid), decode: (r) => ({ uuid: uuidCodec.decode(r) }) };

const xmlReq: Codec<{ uuid: Buffer; inactive: boolean }> = {
  encode: (w, v) => (uuidCodec.encode(w, v.uuid), w.bool(v.inactive)),
  decode: (r) => ({ uuid: uuidCodec.decode(r), inactive: r.bool('inactive') }),
};

// define and createXml: the typed definition the front end parsed from the client's XML (./objects/domain-def.ts);
// the helper never sees domain XML text.
const defineReq: Codec<{ def: DomainDef }> = defField;

// removeManagedSave: VIR_DOMAIN_UNDEFINE_MANAGED_SAVE (without it a managed-save image refuses the undefine);
// removeSnapshots: VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA (without it snapshots refuse the undefine of a shut-off VM).
const undefineReq: Codec<{ uuid: Buffer; removeManagedSave: boolean; removeSnapshots: boolean }> = {
  encode: (w, v) => (uuidCodec.encode(w, v.uuid), w.bool(v.removeManagedSave), w.bool(v.removeSnapshots)),
  decode: (r) => ({ uuid: uuidCodec.decode(r), removeManagedSave: r.bool('removeManagedSave'), removeSnapshots: r.bool('removeSnapshots') }),
};

const controlReq: Codec<{ uuid: Buffer; control: ControlActionCode }> = {
  encode: (w, v) => (uuidCodec.encode(w, v.uuid), w.i32(v.control)),
  decode: (r) => ({ uuid: uuidCodec.decode(r), control: r.enumOf(CONTROL_ACTIONS, 'control') }),
};

const setMemoryReq: Codec<{ uuid: Buffer; memoryKiB: bigint; live: boolean; config: boolean; max: boolean }> = {
  encode: (w, v) => (uuidCodec.encode(w, v.uuid), w.u64(v.memoryKiB), setFlags(w, v)),
  decode: (r) => {
    const uuid = uuidCodec.decode(r);
    const memoryKiB = r.u64('memory');
    if (memoryKiB < 1n || memoryKiB > IpcLimits.MEMORY_KIB_MAX) throw VG_ERR_IPC_VALIDATION('memory', 'out of range');
    return { uuid, memoryKiB, ...getFlags(r) };
  },
};

const setVcpusReq: Codec<{ uuid: Buffer; nvcpus: number; live: boolean; config: boolean; max: boolean }> = {
  encode: (w, v) => (uuidCodec.encode(w, v.uuid), w.u32(v.nvcpus), setFlags(w, v)),
  decode: (r) => ({ uuid: uuidCodec.decode(r), nvcpus: checkRange(r.u32('nvcpus'), 1, IpcLimits.VCPUS_MAX, 'nvcpus'), ...getFlags(r) }),
};

const setTenantReq: Codec<{ uuid: Buffer; tenant: string }> = {
  encode: (w, v) => (uuidCodec.encode(w, v.uuid), w.string(v.tenant, 64)),
  decode: (r) => ({ uuid: uuidCodec.decode(r), tenant: checkTenantName(r.string(NAME_LIMITS.TENANT_MAX, 'tenant')) }),
};

const listAns: Codec<{ domains: DomainSummary[] }> = {
  encode: (w, v) => w.array(v.domains, IpcLimits.DOMAINS_MAX, summaryCodec.encode),
  decode: (r) => ({ domains: r.array(IpcLimits.DOMAINS_MAX, summaryCodec.decode, 'domains') }),
};

// The definition asked for and, for a running domain's live one, its id (the front end writes the XML).
const xmlAns: Codec<{ def: DomainDef; id: number | null }> = {
  encode: (w, v) => (defField.encode(w, v), w.optional(v.id, (w2, id) => void w2.i32(id))),
  decode: (r) => ({ ...defField.decode(r), id: r.optional((r2) => checkRange(r2.i32('id'), 1, 0x7fffffff, 'id')) }),
};

const screenshotReq: Codec<{ uuid: Buffer; screen: number }> = {
  encode: (w, v) => (uuidCodec.encode(w, v.uuid), w.u32(v.screen)),
  decode: (r) => ({ uuid: uuidCodec.decode(r), screen: checkRange(r.u32('screen'), 0, 255, 'screen') }),
};

// Domain reads and writes, one typed action each; other files' actions (stats, tuning, ...) join the same groups.
export const DOMAIN_READ = actionGroup('DOMAIN_READ', READ, {
  list: action(0, nothing, listAns),
  lookup: action(1, lookupReq, summaryCodec),
  info: action(2, uuidReq, infoCodec),
  xml: action(3, xmlReq, xmlAns),
  screenshot: action(4, screenshotReq, screenshotAnswer), // bytes or a memfd's token; the front end streams them to the client
  ...DOMAIN_READ_EXTRA,
});

// A new VM belongs to the actor's tenant; only setTenant ever moves one (the front end lets host admins ask).
export const DOMAIN_WRITE = actionGroup('DOMAIN_WRITE', WRITE, {
  define: action(0, defineReq, summaryCodec),
  createXml: action(1, defineReq, summaryCodec),
  undefine: action(2, undefineReq, nothing),
  control: action(3, controlReq, summaryCodec),
  setMemory: action(4, setMemoryReq, nothing),
  setVcpus: action(5, setVcpusReq, nothing),
  setTenant: action(6, setTenantReq, summaryCodec),
  ...DOMAIN_WRITE_EXTRA,
  ...SAVE_ACTIONS, // save and restore to a client-named file: 160..191
  ...CONSOLE_ACTIONS, // a VM's console, handed over as a descriptor: 128..135
  ...GRAPHICS_ACTIONS, // a VM's VNC display, handed over as a descriptor: 136..143
});

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
        .bool(sn.cpuClock)
        .optional(sn.cpuFile ?? null, (w3, f) => w3.string(f, CPU_FILE_MAX));
    });
    w.optional(v.removed, (w2, u) => uuidCodec.encode(w2, u));
    w.bool(v.synced ?? false);
    w.optional(v.objectEvent, objectEventCodec.encode);
    w.optional(v.objectState, objectStateChangeCodec.encode);
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
      cpuFile: r2.optional((r3) => {
        const f = r3.string(CPU_FILE_MAX, 'cpuFile');
        if (!CPU_FILE_RE.test(f) || f.includes('/../') || f.includes('/./')) throw VG_ERR_IPC_VALIDATION('cpuFile', 'not a cgroup CPU accounting file');
        return f;
      }),
    })),
    removed: r.optional((r2) => uuidCodec.decode(r2)),
    synced: r.bool('synced'),
    objectEvent: r.optional(objectEventCodec.decode),
    objectState: r.optional(objectStateChangeCodec.decode),
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

const spec = <Q extends number, A extends number, Req, Ans>(req: Q, ans: A, write: boolean, request: Codec<Req>, answer: Codec<Ans>): OpSpec<Q, A, Req, Ans> =>
  Object.freeze({ req, ans, write, request, answer });

export const OPS = Object.freeze({
  HELLO: spec(0, 1, READ, helloReq, helloAns),
  NODE_FACTS: spec(2, 3, READ, empty, factsCodec),
  DOMAIN_READ: spec(4, 5, READ, DOMAIN_READ.request, DOMAIN_READ.answer),
  DOMAIN_WRITE: spec(6, 7, WRITE, DOMAIN_WRITE.request, DOMAIN_WRITE.answer),
  EVENTS_SUBSCRIBE: spec(8, 9, READ, empty, streamAns), // one ack, then the event stream under the same id
  NETWORK_READ: spec(10, 11, READ, NETWORK_READ.request, NETWORK_READ.answer),
  NETWORK_WRITE: spec(12, 13, WRITE, NETWORK_WRITE.request, NETWORK_WRITE.answer),
  POOL_READ: spec(14, 15, READ, POOL_READ.request, POOL_READ.answer),
  POOL_WRITE: spec(16, 17, WRITE, POOL_WRITE.request, POOL_WRITE.answer),
  VOLUME_READ: spec(18, 19, READ, VOLUME_READ.request, VOLUME_READ.answer),
  VOLUME_WRITE: spec(20, 21, WRITE, VOLUME_WRITE.request, VOLUME_WRITE.answer),
  IFACE_READ: spec(22, 23, READ, IFACE_READ.request, IFACE_READ.answer),
  IFACE_WRITE: spec(24, 25, WRITE, IFACE_WRITE.request, IFACE_WRITE.answer),
  NODEDEV_READ: spec(26, 27, READ, NODEDEV_READ.request, NODEDEV_READ.answer),
  NODEDEV_WRITE: spec(28, 29, WRITE, NODEDEV_WRITE.request, NODEDEV_WRITE.answer),
  HOST_READ: spec(30, 31, READ, HOST_READ.request, HOST_READ.answer),
  SNAPSHOT_READ: spec(32, 33, READ, SNAPSHOT_READ.request, SNAPSHOT_READ.answer),
  SNAPSHOT_WRITE: spec(34, 35, WRITE, SNAPSHOT_WRITE.request, SNAPSHOT_WRITE.answer),
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

// `Op.DOMAIN_WRITE_REQ` -> 'DOMAIN_WRITE_REQ' (and with requestName, 'DOMAIN_WRITE_REQ.control'): the names both
// processes write in their records.
const OP_NAME = new Map<number, string>(Object.entries(Op).map(([k, v]) => [v as number, k]));
export const opName = (op: number): string => OP_NAME.get(op) ?? `op-${op}`;
// The name both processes record for one request: the op, and for a grouped op its action (`DOMAIN_WRITE_REQ.control`).
export const requestName = (op: number, body: unknown): string => {
  const a = actionOf(body);
  return a === undefined ? opName(op) : `${opName(op)}.${a}`;
};

// Grouped ops: one action's request fields and answer, for typed calls (HelperClient.act).
export type ActionName<K extends RequestOp> = Requests[K] extends { action: infer A } ? A : never;
export type ActionFields<K extends RequestOp, A> = Omit<Extract<Requests[K], { action: A }>, 'action'>;
export type ActionAnswerOf<K extends RequestOp, A> = Extract<AnswerOf<K>, { action: A }>;
// What an answer function returns for a grouped op: the answer without its action (the server echoes the request's).
export type BareAnswer<T> = T extends { action: unknown } ? Omit<T, 'action'> : T;
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
