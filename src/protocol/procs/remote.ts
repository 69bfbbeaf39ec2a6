// SPDX-License-Identifier: Apache-2.0
// REMOTE program 0x20008086 v1: the procedures virtgate serves, as data (number, codecs, class, ACL), pure.
// Numbers, argument shapes and @acl annotations follow libvirt 9.0's src/remote/remote_protocol.x.
import { Limits } from '../constants';
import {
  type Codec,
  type RemoteDomain,
  XdrVoid,
  domainCodec,
  int,
  nonnullString,
  optDomainCodec,
  optString,
  struct,
  uchar,
  uhyper,
  uint,
  ushort,
  uuid,
} from '../types';

// read: changes nothing; write: changes hypervisor state (audited, refused on read-only sockets);
// session: connection bookkeeping (open, close, features, events, auth).
export type ProcClass = 'read' | 'write' | 'session';

// One @acl line: the permission applies always, or when (flags & mask) != 0, or with `unless` when (flags & mask) == 0.
export interface AclRule {
  perm: string;
  whenFlags?: number;
  unlessFlags?: number;
}

export interface ProcDef<A = unknown, R = unknown> {
  proc: number;
  name: string;
  args: Codec<A>;
  ret: Codec<R>;
  cls: ProcClass;
  acl: readonly AclRule[]; // empty = `@acl: none`
  aclFilter?: string; // list filters: per-object permission
  needAuth: boolean; // false only for AUTH_*
  message?: boolean; // server -> client MESSAGE (events), never a CALL
}

const table = new Map<number, ProcDef>();

function defineProc<A, R>(d: Omit<ProcDef<A, R>, 'needAuth'> & { needAuth?: boolean }): ProcDef<A, R> {
  if (table.has(d.proc)) throw new Error(`duplicate procedure ${d.proc}`);
  const def: ProcDef<A, R> = { needAuth: true, ...d };
  table.set(d.proc, def as ProcDef);
  return def;
}

const acl = (...perms: (string | AclRule)[]): AclRule[] => perms.map((p) => (typeof p === 'string' ? { perm: p } : p));

const dom = struct<{ dom: RemoteDomain }>(['dom', domainCodec]);
const domFlags = struct<{ dom: RemoteDomain; flags: number }>(['dom', domainCodec], ['flags', uint]);
const retDom = struct<{ dom: RemoteDomain }>(['dom', domainCodec]);
const retInt = <K extends string>(k: K) => struct<Record<K, number>>([k, int] as never);
const str = nonnullString();

// Inline char arrays (4 bytes per character).
const charArray = (max: number): Codec<string> => ({ encode: (w, v) => void w.charArray(v, max), decode: (r) => r.charArray(max) });
const charFixed = (n: number): Codec<string> => ({ encode: (w, v) => void w.charArrayFixed(v, n), decode: (r) => r.charArrayFixed(n) });
const array = <T>(max: number, c: Codec<T>): Codec<T[]> => ({
  encode: (w, v) => void w.array(v, max, c.encode),
  decode: (r) => r.array(max, c.decode),
});

const saslData: Codec<Buffer> = { encode: (w, v) => void w.charBytes(v, Limits.SASL_DATA_MAX), decode: (r) => r.charBytes(Limits.SASL_DATA_MAX, 'sasl data') };

const AFFECT_LIVE = 1;
const AFFECT_CONFIG = 2;

export const P = {
  CONNECT_OPEN: defineProc({
    proc: 1,
    name: 'connectOpen',
    cls: 'session',
    acl: acl('connect:getattr'),
    args: struct<{ name: string | null; flags: number }>(['name', optString('uri')], ['flags', uint]),
    ret: XdrVoid,
  }),
  CONNECT_CLOSE: defineProc({ proc: 2, name: 'connectClose', cls: 'session', acl: [], args: XdrVoid, ret: XdrVoid }),
  CONNECT_GET_TYPE: defineProc({
    proc: 3,
    name: 'connectGetType',
    cls: 'read',
    acl: acl('connect:getattr'),
    args: XdrVoid,
    ret: struct<{ type: string }>(['type', str]),
  }),
  CONNECT_GET_VERSION: defineProc({
    proc: 4,
    name: 'connectGetVersion',
    cls: 'read',
    acl: acl('connect:getattr'),
    args: XdrVoid,
    ret: struct<{ hvVer: bigint }>(['hvVer', uhyper]),
  }),
  CONNECT_GET_MAX_VCPUS: defineProc({
    proc: 5,
    name: 'connectGetMaxVcpus',
    cls: 'read',
    acl: acl('connect:read'),
    args: struct<{ type: string | null }>(['type', optString('type')]),
    ret: retInt('maxVcpus'),
  }),
  NODE_GET_INFO: defineProc({
    proc: 6,
    name: 'nodeGetInfo',
    cls: 'read',
    acl: acl('connect:read'),
    args: XdrVoid,
    ret: struct<{ model: string; memory: bigint; cpus: number; mhz: number; nodes: number; sockets: number; cores: number; threads: number }>(
      ['model', charFixed(Limits.NODE_MODEL_LEN)],
      ['memory', uhyper],
      ['cpus', int],
      ['mhz', int],
      ['nodes', int],
      ['sockets', int],
      ['cores', int],
      ['threads', int],
    ),
  }),
  CONNECT_GET_CAPABILITIES: defineProc({
    proc: 7,
    name: 'connectGetCapabilities',
    cls: 'read',
    acl: acl('connect:read'),
    args: XdrVoid,
    ret: struct<{ capabilities: string }>(['capabilities', str]),
  }),
  DOMAIN_CREATE: defineProc({ proc: 9, name: 'domainCreate', cls: 'write', acl: acl('domain:start'), args: dom, ret: XdrVoid }),
  DOMAIN_CREATE_XML: defineProc({
    proc: 10,
    name: 'domainCreateXml',
    cls: 'write',
    acl: acl('domain:write', 'domain:start'),
    args: struct<{ xml: string; flags: number }>(['xml', str], ['flags', uint]),
    ret: retDom,
  }),
  DOMAIN_DEFINE_XML: defineProc({
    proc: 11,
    name: 'domainDefineXml',
    cls: 'write',
    acl: acl('domain:write', 'domain:save'),
    args: struct<{ xml: string }>(['xml', str]),
    ret: retDom,
  }),
  DOMAIN_DESTROY: defineProc({ proc: 12, name: 'domainDestroy', cls: 'write', acl: acl('domain:stop'), args: dom, ret: XdrVoid }),
  DOMAIN_GET_XML_DESC: defineProc({
    proc: 14,
    name: 'domainGetXmlDesc',
    cls: 'read',
    acl: acl('domain:read', { perm: 'domain:read_secure', whenFlags: 1 }, { perm: 'domain:read_secure', whenFlags: 8 }),
    args: domFlags,
    ret: struct<{ xml: string }>(['xml', str]),
  }),
  DOMAIN_GET_AUTOSTART: defineProc({ proc: 15, name: 'domainGetAutostart', cls: 'read', acl: acl('domain:read'), args: dom, ret: retInt('autostart') }),
  DOMAIN_GET_INFO: defineProc({
    proc: 16,
    name: 'domainGetInfo',
    cls: 'read',
    acl: acl('domain:read'),
    args: dom,
    ret: struct<{ state: number; maxMem: bigint; memory: bigint; nrVirtCpu: number; cpuTime: bigint }>(
      ['state', uchar],
      ['maxMem', uhyper],
      ['memory', uhyper],
      ['nrVirtCpu', ushort],
      ['cpuTime', uhyper],
    ),
  }),
  DOMAIN_GET_MAX_VCPUS: defineProc({ proc: 18, name: 'domainGetMaxVcpus', cls: 'read', acl: acl('domain:read'), args: dom, ret: retInt('num') }),
  DOMAIN_GET_OS_TYPE: defineProc({
    proc: 19,
    name: 'domainGetOsType',
    cls: 'read',
    acl: acl('domain:read'),
    args: dom,
    ret: struct<{ type: string }>(['type', str]),
  }),
  CONNECT_LIST_DEFINED_DOMAINS: defineProc({
    proc: 21,
    name: 'connectListDefinedDomains',
    cls: 'read',
    acl: acl('connect:search_domains'),
    aclFilter: 'domain:getattr',
    args: struct<{ maxnames: number }>(['maxnames', int]),
    ret: struct<{ names: string[] }>(['names', array(Limits.DOMAIN_LIST_MAX, str)]),
  }),
  DOMAIN_LOOKUP_BY_ID: defineProc({
    proc: 22,
    name: 'domainLookupById',
    cls: 'read',
    acl: acl('domain:getattr'),
    args: struct<{ id: number }>(['id', int]),
    ret: retDom,
  }),
  DOMAIN_LOOKUP_BY_NAME: defineProc({
    proc: 23,
    name: 'domainLookupByName',
    cls: 'read',
    acl: acl('domain:getattr'),
    args: struct<{ name: string }>(['name', str]),
    ret: retDom,
  }),
  DOMAIN_LOOKUP_BY_UUID: defineProc({
    proc: 24,
    name: 'domainLookupByUuid',
    cls: 'read',
    acl: acl('domain:getattr'),
    args: struct<{ uuid: Buffer }>(['uuid', uuid]),
    ret: retDom,
  }),
  CONNECT_NUM_OF_DEFINED_DOMAINS: defineProc({
    proc: 25,
    name: 'connectNumOfDefinedDomains',
    cls: 'read',
    acl: acl('connect:search_domains'),
    aclFilter: 'domain:getattr',
    args: XdrVoid,
    ret: retInt('num'),
  }),
  DOMAIN_REBOOT: defineProc({
    proc: 27,
    name: 'domainReboot',
    cls: 'write',
    acl: acl('domain:init_control', { perm: 'domain:write', whenFlags: 2 }),
    args: domFlags,
    ret: XdrVoid,
  }),
  DOMAIN_RESUME: defineProc({ proc: 28, name: 'domainResume', cls: 'write', acl: acl('domain:suspend'), args: dom, ret: XdrVoid }),
  DOMAIN_SET_MEMORY: defineProc({
    proc: 31,
    name: 'domainSetMemory',
    cls: 'write',
    acl: acl('domain:write'),
    args: struct<{ dom: RemoteDomain; memory: bigint }>(['dom', domainCodec], ['memory', uhyper]),
    ret: XdrVoid,
  }),
  DOMAIN_SET_VCPUS: defineProc({
    proc: 32,
    name: 'domainSetVcpus',
    cls: 'write',
    acl: acl('domain:write'),
    args: struct<{ dom: RemoteDomain; nvcpus: number }>(['dom', domainCodec], ['nvcpus', uint]),
    ret: XdrVoid,
  }),
  DOMAIN_SHUTDOWN: defineProc({ proc: 33, name: 'domainShutdown', cls: 'write', acl: acl('domain:init_control'), args: dom, ret: XdrVoid }),
  DOMAIN_SUSPEND: defineProc({ proc: 34, name: 'domainSuspend', cls: 'write', acl: acl('domain:suspend'), args: dom, ret: XdrVoid }),
  DOMAIN_UNDEFINE: defineProc({ proc: 35, name: 'domainUndefine', cls: 'write', acl: acl('domain:delete'), args: dom, ret: XdrVoid }),
  CONNECT_LIST_DOMAINS: defineProc({
    proc: 37,
    name: 'connectListDomains',
    cls: 'read',
    acl: acl('connect:search_domains'),
    aclFilter: 'domain:getattr',
    args: struct<{ maxids: number }>(['maxids', int]),
    ret: struct<{ ids: number[] }>(['ids', array(Limits.DOMAIN_LIST_MAX, int)]),
  }),
  CONNECT_NUM_OF_DOMAINS: defineProc({
    proc: 51,
    name: 'connectNumOfDomains',
    cls: 'read',
    acl: acl('connect:search_domains'),
    aclFilter: 'domain:getattr',
    args: XdrVoid,
    ret: retInt('num'),
  }),
  CONNECT_GET_HOSTNAME: defineProc({
    proc: 59,
    name: 'connectGetHostname',
    cls: 'read',
    acl: acl('connect:getattr'),
    args: XdrVoid,
    ret: struct<{ hostname: string }>(['hostname', str]),
  }),
  CONNECT_SUPPORTS_FEATURE: defineProc({
    proc: 60,
    name: 'connectSupportsFeature',
    cls: 'session',
    acl: acl('connect:getattr'),
    args: struct<{ feature: number }>(['feature', int]),
    ret: retInt('supported'),
  }),
  AUTH_LIST: defineProc({
    proc: 66,
    name: 'authList',
    cls: 'session',
    acl: [],
    needAuth: false,
    args: XdrVoid,
    ret: struct<{ types: number[] }>(['types', array(Limits.AUTH_TYPE_LIST_MAX, int)]),
  }),
  // SASL: `data` is raw bytes sent as `char data<65536>` (4 bytes per byte); `nil` tells NULL from empty.
  AUTH_SASL_INIT: defineProc({
    proc: 67,
    name: 'authSaslInit',
    cls: 'session',
    acl: [],
    needAuth: false,
    args: XdrVoid,
    ret: struct<{ mechlist: string }>(['mechlist', str]),
  }),
  AUTH_SASL_START: defineProc({
    proc: 68,
    name: 'authSaslStart',
    cls: 'session',
    acl: [],
    needAuth: false,
    args: struct<{ mech: string; nil: number; data: Buffer }>(['mech', nonnullString('mech')], ['nil', int], ['data', saslData]),
    ret: struct<{ complete: number; nil: number; data: Buffer }>(['complete', int], ['nil', int], ['data', saslData]),
  }),
  AUTH_SASL_STEP: defineProc({
    proc: 69,
    name: 'authSaslStep',
    cls: 'session',
    acl: [],
    needAuth: false,
    args: struct<{ nil: number; data: Buffer }>(['nil', int], ['data', saslData]),
    ret: struct<{ complete: number; nil: number; data: Buffer }>(['complete', int], ['nil', int], ['data', saslData]),
  }),
  DOMAIN_EVENT_LIFECYCLE: defineProc({
    proc: 107,
    name: 'domainEventLifecycle',
    cls: 'session',
    acl: [],
    message: true,
    args: XdrVoid,
    ret: struct<{ dom: RemoteDomain; event: number; detail: number }>(['dom', domainCodec], ['event', int], ['detail', int]),
  }),
  NODE_GET_CELLS_FREE_MEMORY: defineProc({
    proc: 101,
    name: 'nodeGetCellsFreeMemory',
    cls: 'read',
    acl: acl('connect:read'),
    args: struct<{ startCell: number; maxcells: number }>(['startCell', int], ['maxcells', int]),
    ret: struct<{ cells: bigint[] }>(['cells', array(Limits.NODE_MAX_CELLS, uhyper)]),
  }),
  NODE_GET_FREE_MEMORY: defineProc({
    proc: 102,
    name: 'nodeGetFreeMemory',
    cls: 'read',
    acl: acl('connect:read'),
    args: XdrVoid,
    ret: struct<{ freeMem: bigint }>(['freeMem', uhyper]),
  }),
  CONNECT_GET_URI: defineProc({
    proc: 110,
    name: 'connectGetUri',
    cls: 'read',
    acl: acl('connect:getattr'),
    args: XdrVoid,
    ret: struct<{ uri: string }>(['uri', str]),
  }),
  DOMAIN_GET_SECURITY_LABEL: defineProc({
    proc: 121,
    name: 'domainGetSecurityLabel',
    cls: 'read',
    acl: acl('domain:read'),
    args: dom,
    ret: struct<{ label: string; enforcing: number }>(['label', charArray(Limits.SECURITY_LABEL_MAX)], ['enforcing', int]),
  }),
  NODE_GET_SECURITY_MODEL: defineProc({
    proc: 122,
    name: 'nodeGetSecurityModel',
    cls: 'read',
    acl: acl('connect:read'),
    args: XdrVoid,
    ret: struct<{ model: string; doi: string }>(['model', charArray(Limits.SECURITY_MODEL_MAX)], ['doi', charArray(Limits.SECURITY_DOI_MAX)]),
  }),
  CONNECT_IS_SECURE: defineProc({ proc: 149, name: 'connectIsSecure', cls: 'session', acl: [], args: XdrVoid, ret: retInt('secure') }),
  DOMAIN_IS_ACTIVE: defineProc({ proc: 150, name: 'domainIsActive', cls: 'read', acl: acl('domain:read'), args: dom, ret: retInt('active') }),
  DOMAIN_IS_PERSISTENT: defineProc({ proc: 151, name: 'domainIsPersistent', cls: 'read', acl: acl('domain:read'), args: dom, ret: retInt('persistent') }),
  CONNECT_GET_LIB_VERSION: defineProc({
    proc: 157,
    name: 'connectGetLibVersion',
    cls: 'read',
    acl: acl('connect:getattr'),
    args: XdrVoid,
    ret: struct<{ libVer: bigint }>(['libVer', uhyper]),
  }),
  CONNECT_DOMAIN_EVENT_REGISTER_ANY: defineProc({
    proc: 167,
    name: 'connectDomainEventRegisterAny',
    cls: 'session',
    acl: acl('connect:search_domains'),
    aclFilter: 'domain:getattr',
    args: struct<{ eventID: number }>(['eventID', int]),
    ret: XdrVoid,
  }),
  CONNECT_DOMAIN_EVENT_DEREGISTER_ANY: defineProc({
    proc: 168,
    name: 'connectDomainEventDeregisterAny',
    cls: 'session',
    acl: acl('connect:read'),
    args: struct<{ eventID: number }>(['eventID', int]),
    ret: XdrVoid,
  }),
  DOMAIN_HAS_MANAGED_SAVE_IMAGE: defineProc({
    proc: 183,
    name: 'domainHasManagedSaveImage',
    cls: 'read',
    acl: acl('domain:read'),
    args: domFlags,
    ret: retInt('result'),
  }),
  DOMAIN_SNAPSHOT_NUM: defineProc({ proc: 187, name: 'domainSnapshotNum', cls: 'read', acl: acl('domain:read'), args: domFlags, ret: retInt('num') }),
  DOMAIN_CREATE_WITH_FLAGS: defineProc({ proc: 196, name: 'domainCreateWithFlags', cls: 'write', acl: acl('domain:start'), args: domFlags, ret: retDom }),
  DOMAIN_SET_VCPUS_FLAGS: defineProc({
    proc: 199,
    name: 'domainSetVcpusFlags',
    cls: 'write',
    acl: acl(
      'domain:write',
      { perm: 'domain:save', unlessFlags: AFFECT_CONFIG | AFFECT_LIVE },
      { perm: 'domain:save', whenFlags: AFFECT_CONFIG },
      { perm: 'domain:write', whenFlags: 8 },
    ),
    args: struct<{ dom: RemoteDomain; nvcpus: number; flags: number }>(['dom', domainCodec], ['nvcpus', uint], ['flags', uint]),
    ret: XdrVoid,
  }),
  DOMAIN_GET_VCPUS_FLAGS: defineProc({
    proc: 200,
    name: 'domainGetVcpusFlags',
    cls: 'read',
    acl: acl('domain:read', { perm: 'domain:write', whenFlags: 8 }),
    args: domFlags,
    ret: retInt('num'),
  }),
  DOMAIN_SET_MEMORY_FLAGS: defineProc({
    proc: 204,
    name: 'domainSetMemoryFlags',
    cls: 'write',
    acl: acl('domain:write', { perm: 'domain:save', unlessFlags: AFFECT_CONFIG | AFFECT_LIVE }, { perm: 'domain:save', whenFlags: AFFECT_CONFIG }),
    args: struct<{ dom: RemoteDomain; memory: bigint; flags: number }>(['dom', domainCodec], ['memory', uhyper], ['flags', uint]),
    ret: XdrVoid,
  }),
  DOMAIN_GET_STATE: defineProc({
    proc: 212,
    name: 'domainGetState',
    cls: 'read',
    acl: acl('domain:read'),
    args: domFlags,
    ret: struct<{ state: number; reason: number }>(['state', int], ['reason', int]),
  }),
  DOMAIN_UNDEFINE_FLAGS: defineProc({ proc: 231, name: 'domainUndefineFlags', cls: 'write', acl: acl('domain:delete'), args: domFlags, ret: XdrVoid }),
  DOMAIN_DESTROY_FLAGS: defineProc({ proc: 234, name: 'domainDestroyFlags', cls: 'write', acl: acl('domain:stop'), args: domFlags, ret: XdrVoid }),
  DOMAIN_SHUTDOWN_FLAGS: defineProc({
    proc: 258,
    name: 'domainShutdownFlags',
    cls: 'write',
    acl: acl('domain:init_control', { perm: 'domain:write', whenFlags: 2 }),
    args: domFlags,
    ret: XdrVoid,
  }),
  CONNECT_LIST_ALL_DOMAINS: defineProc({
    proc: 273,
    name: 'connectListAllDomains',
    cls: 'read',
    acl: acl('connect:search_domains'),
    aclFilter: 'domain:getattr',
    args: struct<{ needResults: number; flags: number }>(['needResults', int], ['flags', uint]),
    ret: struct<{ domains: RemoteDomain[]; ret: number }>(['domains', array(Limits.DOMAIN_LIST_MAX, domainCodec)], ['ret', uint]),
  }),
  CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY: defineProc({
    proc: 316,
    name: 'connectDomainEventCallbackRegisterAny',
    cls: 'session',
    acl: acl('connect:search_domains'),
    aclFilter: 'domain:getattr',
    args: struct<{ eventID: number; dom: RemoteDomain | null }>(['eventID', int], ['dom', optDomainCodec]),
    ret: retInt('callbackID'),
  }),
  CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY: defineProc({
    proc: 317,
    name: 'connectDomainEventCallbackDeregisterAny',
    cls: 'session',
    acl: acl('connect:read'),
    args: struct<{ callbackID: number }>(['callbackID', int]),
    ret: XdrVoid,
  }),
  DOMAIN_EVENT_CALLBACK_LIFECYCLE: defineProc({
    proc: 318,
    name: 'domainEventCallbackLifecycle',
    cls: 'session',
    acl: [],
    message: true,
    args: XdrVoid,
    ret: struct<{ callbackID: number; dom: RemoteDomain; event: number; detail: number }>(
      ['callbackID', int],
      ['dom', domainCodec],
      ['event', int],
      ['detail', int],
    ),
  }),
  DOMAIN_DEFINE_XML_FLAGS: defineProc({
    proc: 350,
    name: 'domainDefineXmlFlags',
    cls: 'write',
    acl: acl('domain:write', 'domain:save'),
    args: struct<{ xml: string; flags: number }>(['xml', str], ['flags', uint]),
    ret: retDom,
  }),
  CONNECT_REGISTER_CLOSE_CALLBACK: defineProc({
    proc: 360,
    name: 'connectRegisterCloseCallback',
    cls: 'session',
    acl: acl('connect:getattr'),
    args: XdrVoid,
    ret: XdrVoid,
  }),
  CONNECT_UNREGISTER_CLOSE_CALLBACK: defineProc({
    proc: 361,
    name: 'connectUnregisterCloseCallback',
    cls: 'session',
    acl: acl('connect:getattr'),
    args: XdrVoid,
    ret: XdrVoid,
  }),
  DOMAIN_GET_MESSAGES: defineProc({
    proc: 426,
    name: 'domainGetMessages',
    cls: 'read',
    acl: acl('domain:read'),
    args: domFlags,
    ret: struct<{ msgs: string[] }>(['msgs', array(Limits.DOMAIN_MESSAGES_MAX, str)]),
  }),
  // Served for one element only: virtgate's tenant record (`virtgate vm set-tenant`). libvirt's @acl is domain:write
  // (+ domain:save for the persistent config); virtgate adds connect:write on `host`, which only host admins hold:
  // reassigning a VM's tenant is a host-wide act, never a tenant's own.
  DOMAIN_SET_METADATA: defineProc({
    proc: 264,
    name: 'domainSetMetadata',
    cls: 'write',
    acl: acl(
      'domain:write',
      { perm: 'domain:save', unlessFlags: AFFECT_CONFIG | AFFECT_LIVE },
      { perm: 'domain:save', whenFlags: AFFECT_CONFIG },
      'connect:write',
    ),
    args: struct<{ dom: RemoteDomain; type: number; metadata: string | null; key: string | null; uri: string | null; flags: number }>(
      ['dom', domainCodec],
      ['type', int],
      ['metadata', optString('metadata')],
      ['key', optString('key')],
      ['uri', optString('uri')],
      ['flags', uint],
    ),
    ret: XdrVoid,
  }),
} as const;

export function lookupProc(proc: number): ProcDef | undefined {
  return table.get(proc);
}

export function allProcs(): readonly ProcDef[] {
  return [...table.values()];
}

// The permissions one call needs, given its flags (libvirt's @acl semantics).
export function requiredPermissions(def: ProcDef, flags: number): string[] {
  const out: string[] = [];
  for (const rule of def.acl) {
    if (rule.whenFlags !== undefined && (flags & rule.whenFlags) === 0) continue;
    if (rule.unlessFlags !== undefined && (flags & rule.unlessFlags) !== 0) continue;
    if (!out.includes(rule.perm)) out.push(rule.perm);
  }
  return out;
}
