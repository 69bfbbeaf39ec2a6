// SPDX-License-Identifier: Apache-2.0
// Front-end procedure handlers: libvirt calls in, helper IPC requests out. Every REMOTE procedure has one entry.
import { VG_ERR_CONN_ALREADY_OPEN, VG_ERR_CONN_URI, VG_ERR_NO_DOMAIN, VG_ERR_ARG_INVALID, VG_ERR_FLAGS_UNSUPPORTED } from '../../common/errors';
import {
  type Actor,
  type ControlActionCode,
  ControlAction,
  type DomainInfo,
  type DomainSummary,
  IpcLimits,
  type LookupKey,
  LookupKind,
  type NodeFacts,
  Op,
  checkDomainName,
  uuidToString,
} from '../../ipc/program';
import { AffectFlags, ConnectFlags, DomainEventId, DomainState, Feature, ListAllFlags, MemoryFlags, VcpuFlags, XmlFlags } from '../../protocol/constants';
import { P, type ProcDef } from '../../protocol/procs/remote';
import type { RemoteDomain } from '../../protocol/types';
import type { AuthService } from '../auth';
import type { DomainMirror } from '../domain-mirror';
import type { HelperClient } from '../helper-client';
import { authHandlers } from './auth';
import { metadataHandlers } from './metadata';
import type { EventRegistration, Session } from '../session';

export interface HandlerContext {
  session: Session;
  auth: AuthService | null;
  mirror: DomainMirror; // committed domain state: reads are answered here when it is synced
  helper: Pick<HelperClient, 'call'>; // audited writes get a wrapper that records the intent first
  facts(): Promise<NodeFacts>;
  actor(): Actor;
  nextCallbackId(): number;
  // Per-object filter for lists and events (policy aclfilter); true = visible.
  visible(d: DomainSummary): boolean;
  // A lookup found a VM the caller may not see: recorded as a denial (VG_ERR_NO_DOMAIN), rate-limited per connection.
  hiddenLookup?(d: DomainSummary, procedure: string): Promise<void>;
}

type Handler<A, R> = (ctx: HandlerContext, args: A) => Promise<R>;

const handlers = new Map<number, Handler<unknown, unknown>>();

function on<A, R>(def: ProcDef<A, R>, h: Handler<A, R>): void {
  handlers.set(def.proc, h as Handler<unknown, unknown>);
}

export function handlerFor(proc: number): Handler<unknown, unknown> | undefined {
  return handlers.get(proc);
}

export function handledProcs(): number[] {
  return [...handlers.keys()];
}

const toRemote = (d: DomainSummary): RemoteDomain => ({ name: d.name, uuid: d.uuid, id: d.id });
// Reads come from the mirror when it can answer (no helper round trip), else from the helper itself.
async function info(ctx: HandlerContext, dom: RemoteDomain): Promise<DomainInfo> {
  const d = ctx.mirror.info(dom.uuid);
  if (d === null) throw VG_ERR_NO_DOMAIN(`: no domain with matching uuid '${uuidToString(dom.uuid)}'`);
  return d ?? ctx.helper.call(Op.DOMAIN_INFO_REQ, { uuid: dom.uuid });
}

function checkFlags(flags: number, allowed: number, fn: string): void {
  if ((flags & ~allowed) !== 0) throw VG_ERR_FLAGS_UNSUPPORTED((flags & ~allowed).toString(16), fn);
}

// ---------- connection ----------

// AUTH_LIST and the SASL exchange live in ./auth (the only calls allowed before login).
for (const [def, h] of authHandlers) on(def, h as unknown as Handler<unknown, unknown>);
// DOMAIN_SET_METADATA (the VM's tenant, host admins only) lives in ./metadata.
for (const [def, h] of metadataHandlers) on(def, h as unknown as Handler<unknown, unknown>);

on(P.CONNECT_SUPPORTS_FEATURE, async (ctx, { feature }) => {
  switch (feature) {
    case Feature.PROGRAM_KEEPALIVE:
      ctx.session.keepaliveRequested = true; // libvirtd starts its own pings only for clients that ask
      return { supported: 1 };
    case Feature.REMOTE:
    case Feature.REMOTE_EVENT_CALLBACK:
    case Feature.REMOTE_CLOSE_CALLBACK:
      return { supported: 1 };
    default:
      return { supported: 0 };
  }
});

on(P.CONNECT_OPEN, async (ctx, { name, flags }) => {
  if (ctx.session.opened) throw VG_ERR_CONN_ALREADY_OPEN();
  // 0x4: the remote driver's autostart bit, sent by virsh run as a non-root user; meaningless to a system daemon.
  checkFlags(flags, ConnectFlags.RO | ConnectFlags.NO_ALIASES | 0x4, 'virConnectOpen');
  // Claimed before the await: pipelined calls behind the open must see it, read-only flag included.
  ctx.session.opened = true;
  if (flags & ConnectFlags.RO) ctx.session.readOnly = true;
  let facts: NodeFacts;
  try {
    facts = await ctx.facts();
    if (name !== null && name !== '' && !uriMatches(name, facts)) throw VG_ERR_CONN_URI(facts.driver, name);
  } catch (e) {
    ctx.session.opened = false;
    throw e;
  }
  ctx.session.uri = facts.uri;
});

// We serve one host: accept the driver's canonical URI, with or without query parameters.
function uriMatches(name: string, facts: NodeFacts): boolean {
  const base = name.split('?')[0];
  return base === facts.uri || base === `${facts.driver}://` || base === `${facts.driver}:///`;
}

on(P.CONNECT_CLOSE, async (ctx) => {
  ctx.session.opened = false;
  ctx.session.events.clear();
});
on(P.CONNECT_REGISTER_CLOSE_CALLBACK, async (ctx) => void (ctx.session.closeCallbackRegistered = true));
on(P.CONNECT_UNREGISTER_CLOSE_CALLBACK, async (ctx) => void (ctx.session.closeCallbackRegistered = false));
on(P.CONNECT_IS_SECURE, async (ctx) => ({ secure: ctx.session.secure ? 1 : 0 }));
on(P.CONNECT_GET_TYPE, async (ctx) => ({ type: (await ctx.facts()).hvType }));
on(P.CONNECT_GET_VERSION, async (ctx) => ({ hvVer: (await ctx.facts()).hvVersion }));
on(P.CONNECT_GET_LIB_VERSION, async () => ({ libVer: 9000000n })); // the libvirt API level we speak
on(P.CONNECT_GET_HOSTNAME, async (ctx) => ({ hostname: (await ctx.facts()).hostname }));
on(P.CONNECT_GET_URI, async (ctx) => ({ uri: (await ctx.facts()).uri }));
on(P.CONNECT_GET_CAPABILITIES, async (ctx) => ({ capabilities: (await ctx.facts()).capabilitiesXml }));
on(P.NODE_GET_INFO, async (ctx) => {
  const f = await ctx.facts();
  return { model: f.model, memory: f.memoryKiB, cpus: f.cpus, mhz: f.mhz, nodes: f.nodes, sockets: f.sockets, cores: f.cores, threads: f.threads };
});
on(P.NODE_GET_SECURITY_MODEL, async (ctx) => {
  const f = await ctx.facts();
  return { model: f.securityModel, doi: f.securityDoi };
});

// ---------- lists ----------

async function listVisible(ctx: HandlerContext): Promise<DomainSummary[]> {
  const domains = ctx.mirror.list() ?? (await ctx.helper.call(Op.DOMAIN_LIST_REQ, {})).domains;
  return domains.filter((d) => ctx.visible(d));
}

const isActive = (d: DomainSummary): boolean => d.id !== -1;

// virConnectListAllDomains filter groups: within a group any flag matches; groups combine with AND.
export function matchesListFlags(d: DomainSummary, flags: number): boolean {
  const F = ListAllFlags;
  const group = (mask: number, test: () => boolean): boolean => (flags & mask) === 0 || test();
  return (
    group(F.ACTIVE | F.INACTIVE, () => ((flags & F.ACTIVE) !== 0 && isActive(d)) || ((flags & F.INACTIVE) !== 0 && !isActive(d))) &&
    group(F.PERSISTENT | F.TRANSIENT, () => ((flags & F.PERSISTENT) !== 0 && d.persistent) || ((flags & F.TRANSIENT) !== 0 && !d.persistent)) &&
    group(F.RUNNING | F.PAUSED | F.SHUTOFF | F.OTHER, () => {
      const s = d.state;
      return (
        ((flags & F.RUNNING) !== 0 && s === DomainState.RUNNING) ||
        ((flags & F.PAUSED) !== 0 && s === DomainState.PAUSED) ||
        ((flags & F.SHUTOFF) !== 0 && s === DomainState.SHUTOFF) ||
        ((flags & F.OTHER) !== 0 && s !== DomainState.RUNNING && s !== DomainState.PAUSED && s !== DomainState.SHUTOFF)
      );
    }) &&
    // The test driver has no managed save, snapshots or checkpoints, and autostart is off.
    group(F.MANAGEDSAVE | F.NO_MANAGEDSAVE, () => (flags & F.NO_MANAGEDSAVE) !== 0) &&
    group(F.HAS_SNAPSHOT | F.NO_SNAPSHOT, () => (flags & F.NO_SNAPSHOT) !== 0) &&
    group(F.HAS_CHECKPOINT | F.NO_CHECKPOINT, () => (flags & F.NO_CHECKPOINT) !== 0) &&
    group(F.AUTOSTART | F.NO_AUTOSTART, () => (flags & F.NO_AUTOSTART) !== 0)
  );
}

const ALL_LIST_FLAGS = Object.values(ListAllFlags).reduce((a, b) => a | b, 0);

on(P.CONNECT_LIST_ALL_DOMAINS, async (ctx, { needResults, flags }) => {
  checkFlags(flags, ALL_LIST_FLAGS, 'virConnectListAllDomains');
  const doms = (await listVisible(ctx)).filter((d) => matchesListFlags(d, flags));
  return { domains: needResults ? doms.map(toRemote) : [], ret: doms.length };
});
on(P.CONNECT_NUM_OF_DOMAINS, async (ctx) => ({ num: (await listVisible(ctx)).filter(isActive).length }));
on(P.CONNECT_LIST_DOMAINS, async (ctx, { maxids }) => {
  if (maxids < 0 || maxids > IpcLimits.DOMAINS_MAX) throw VG_ERR_ARG_INVALID('maxids out of range');
  return {
    ids: (await listVisible(ctx))
      .filter(isActive)
      .map((d) => d.id)
      .slice(0, maxids),
  };
});
on(P.CONNECT_NUM_OF_DEFINED_DOMAINS, async (ctx) => ({ num: (await listVisible(ctx)).filter((d) => !isActive(d)).length }));
on(P.CONNECT_LIST_DEFINED_DOMAINS, async (ctx, { maxnames }) => {
  if (maxnames < 0 || maxnames > IpcLimits.DOMAINS_MAX) throw VG_ERR_ARG_INVALID('maxnames out of range');
  return {
    names: (await listVisible(ctx))
      .filter((d) => !isActive(d))
      .map((d) => d.name)
      .slice(0, maxnames),
  };
});

// ---------- lookups (an object the caller may not see answers "no domain", never "denied") ----------

async function lookup(ctx: HandlerContext, key: LookupKey, procedure: string): Promise<{ dom: RemoteDomain }> {
  const m = ctx.mirror.lookup(key);
  if (m === null) throw VG_ERR_NO_DOMAIN('');
  const d = m ?? (await ctx.helper.call(Op.DOMAIN_LOOKUP_REQ, { key }));
  if (!ctx.visible(d)) {
    await ctx.hiddenLookup?.(d, procedure); // same answer as no VM at all, but the attempt is on record
    throw VG_ERR_NO_DOMAIN('');
  }
  return { dom: toRemote(d) };
}

on(P.DOMAIN_LOOKUP_BY_NAME, async (ctx, { name }) => {
  try {
    checkDomainName(name);
  } catch {
    throw VG_ERR_NO_DOMAIN(''); // a name the helper would refuse cannot exist
  }
  return lookup(ctx, { kind: LookupKind.NAME, name }, P.DOMAIN_LOOKUP_BY_NAME.name);
});
on(P.DOMAIN_LOOKUP_BY_UUID, async (ctx, { uuid }) => lookup(ctx, { kind: LookupKind.UUID, uuid }, P.DOMAIN_LOOKUP_BY_UUID.name));
on(P.DOMAIN_LOOKUP_BY_ID, async (ctx, { id }) => {
  if (id < 0) throw VG_ERR_NO_DOMAIN('');
  return lookup(ctx, { kind: LookupKind.ID, id }, P.DOMAIN_LOOKUP_BY_ID.name);
});

// ---------- domain reads ----------

on(P.DOMAIN_GET_INFO, async (ctx, { dom }) => {
  const d = await info(ctx, dom);
  return { state: d.state, maxMem: d.maxMemKiB, memory: d.memoryKiB, nrVirtCpu: d.nrVirtCpu, cpuTime: d.cpuTimeNs };
});
on(P.DOMAIN_GET_STATE, async (ctx, { dom, flags }) => {
  checkFlags(flags, 0, 'virDomainGetState');
  const d = await info(ctx, dom);
  return { state: d.state, reason: d.reason };
});
on(P.DOMAIN_GET_OS_TYPE, async (ctx, { dom }) => ({ type: (await info(ctx, dom)).osType }));
on(P.DOMAIN_GET_AUTOSTART, async (ctx, { dom }) => ({ autostart: (await info(ctx, dom)).autostart ? 1 : 0 }));
on(P.DOMAIN_IS_ACTIVE, async (ctx, { dom }) => ({ active: (await info(ctx, dom)).id !== -1 ? 1 : 0 }));
on(P.DOMAIN_IS_PERSISTENT, async (ctx, { dom }) => ({ persistent: (await info(ctx, dom)).persistent ? 1 : 0 }));
on(P.DOMAIN_GET_MAX_VCPUS, async (ctx, { dom }) => ({ num: (await info(ctx, dom)).maxVcpus }));
on(P.DOMAIN_GET_VCPUS_FLAGS, async (ctx, { dom, flags }) => {
  checkFlags(flags, AffectFlags.LIVE | AffectFlags.CONFIG | VcpuFlags.MAXIMUM, 'virDomainGetVcpusFlags');
  const d = await info(ctx, dom);
  return { num: flags & VcpuFlags.MAXIMUM ? d.maxVcpus : d.nrVirtCpu };
});
on(P.DOMAIN_HAS_MANAGED_SAVE_IMAGE, async (ctx, { dom, flags }) => {
  checkFlags(flags, 0, 'virDomainHasManagedSaveImage');
  return { result: (await info(ctx, dom)).hasManagedSave ? 1 : 0 };
});
on(P.DOMAIN_SNAPSHOT_NUM, async (ctx, { dom, flags }) => {
  await info(ctx, dom); // existence check: the test driver keeps no snapshots
  void flags;
  return { num: 0 };
});
on(P.DOMAIN_GET_SECURITY_LABEL, async (ctx, { dom }) => {
  const d = await info(ctx, dom);
  return { label: d.securityLabel, enforcing: d.securityEnforcing ? 1 : 0 };
});
on(P.DOMAIN_GET_MESSAGES, async (ctx, { dom, flags }) => {
  checkFlags(flags, 3, 'virDomainGetMessages');
  await info(ctx, dom);
  return { msgs: [] };
});
on(P.DOMAIN_GET_XML_DESC, async (ctx, { dom, flags }) => {
  checkFlags(flags, XmlFlags.SECURE | XmlFlags.INACTIVE | XmlFlags.UPDATE_CPU | XmlFlags.MIGRATABLE, 'virDomainGetXMLDesc');
  return ctx.helper.call(Op.DOMAIN_XML_REQ, { uuid: dom.uuid, inactive: (flags & XmlFlags.INACTIVE) !== 0 });
});

// ---------- domain writes ----------

function checkXml(xml: string): void {
  if (Buffer.byteLength(xml) > IpcLimits.XML_MAX) throw VG_ERR_ARG_INVALID(`domain XML larger than ${IpcLimits.XML_MAX} bytes`);
  if (xml.includes('\0')) throw VG_ERR_ARG_INVALID('domain XML contains NUL');
}

const control = async (ctx: HandlerContext, dom: RemoteDomain, action: ControlActionCode): Promise<DomainSummary> =>
  ctx.helper.call(Op.DOMAIN_CONTROL_REQ, { actor: ctx.actor(), uuid: dom.uuid, action });

on(P.DOMAIN_DEFINE_XML, async (ctx, { xml }) => {
  checkXml(xml);
  return { dom: toRemote(await ctx.helper.call(Op.DOMAIN_DEFINE_REQ, { actor: ctx.actor(), xml })) };
});
on(P.DOMAIN_DEFINE_XML_FLAGS, async (ctx, { xml, flags }) => {
  checkFlags(flags, 1, 'virDomainDefineXMLFlags'); // VALIDATE: we always validate
  checkXml(xml);
  return { dom: toRemote(await ctx.helper.call(Op.DOMAIN_DEFINE_REQ, { actor: ctx.actor(), xml })) };
});
on(P.DOMAIN_CREATE_XML, async (ctx, { xml, flags }) => {
  checkFlags(flags, 0, 'virDomainCreateXML');
  checkXml(xml);
  return { dom: toRemote(await ctx.helper.call(Op.DOMAIN_CREATE_XML_REQ, { actor: ctx.actor(), xml })) };
});
on(P.DOMAIN_CREATE, async (ctx, { dom }) => void (await control(ctx, dom, ControlAction.START)));
on(P.DOMAIN_CREATE_WITH_FLAGS, async (ctx, { dom, flags }) => {
  checkFlags(flags, 0, 'virDomainCreateWithFlags');
  return { dom: toRemote(await control(ctx, dom, ControlAction.START)) };
});
on(P.DOMAIN_SUSPEND, async (ctx, { dom }) => void (await control(ctx, dom, ControlAction.SUSPEND)));
on(P.DOMAIN_RESUME, async (ctx, { dom }) => void (await control(ctx, dom, ControlAction.RESUME)));
on(P.DOMAIN_SHUTDOWN, async (ctx, { dom }) => void (await control(ctx, dom, ControlAction.SHUTDOWN)));
on(P.DOMAIN_SHUTDOWN_FLAGS, async (ctx, { dom, flags }) => {
  checkFlags(flags, 0x1f, 'virDomainShutdownFlags'); // mode hints; the simulated guest honours any
  await control(ctx, dom, ControlAction.SHUTDOWN);
});
on(P.DOMAIN_REBOOT, async (ctx, { dom, flags }) => {
  checkFlags(flags, 0x1f, 'virDomainReboot');
  await control(ctx, dom, ControlAction.REBOOT);
});
on(P.DOMAIN_DESTROY, async (ctx, { dom }) => void (await control(ctx, dom, ControlAction.DESTROY)));
on(P.DOMAIN_DESTROY_FLAGS, async (ctx, { dom, flags }) => {
  checkFlags(flags, 3, 'virDomainDestroyFlags'); // GRACEFUL, REMOVE_LOGS
  await control(ctx, dom, ControlAction.DESTROY);
});
const undefine = async (ctx: HandlerContext, dom: RemoteDomain): Promise<void> =>
  void (await ctx.helper.call(Op.DOMAIN_UNDEFINE_REQ, { actor: ctx.actor(), uuid: dom.uuid }));
on(P.DOMAIN_UNDEFINE, async (ctx, { dom }) => undefine(ctx, dom));
on(P.DOMAIN_UNDEFINE_FLAGS, async (ctx, { dom, flags }) => {
  // MANAGED_SAVE, SNAPSHOTS_METADATA, NVRAM, KEEP_NVRAM, CHECKPOINTS_METADATA, TPM, KEEP_TPM: nothing to remove here.
  checkFlags(flags, 0x7f, 'virDomainUndefineFlags');
  await undefine(ctx, dom);
});

function affect(flags: number): { live: boolean; config: boolean } {
  return { live: (flags & AffectFlags.LIVE) !== 0, config: (flags & AffectFlags.CONFIG) !== 0 };
}

async function setMemory(ctx: HandlerContext, dom: RemoteDomain, memory: bigint, flags: number): Promise<void> {
  if (memory < 1n || memory > IpcLimits.MEMORY_KIB_MAX) throw VG_ERR_ARG_INVALID(`memory ${memory} KiB out of range`);
  await ctx.helper.call(Op.DOMAIN_SET_MEMORY_REQ, {
    actor: ctx.actor(),
    uuid: dom.uuid,
    memoryKiB: memory,
    ...affect(flags),
    max: (flags & MemoryFlags.MAXIMUM) !== 0,
  });
}
on(P.DOMAIN_SET_MEMORY, async (ctx, { dom, memory }) => setMemory(ctx, dom, memory, AffectFlags.LIVE));
on(P.DOMAIN_SET_MEMORY_FLAGS, async (ctx, { dom, memory, flags }) => {
  checkFlags(flags, AffectFlags.LIVE | AffectFlags.CONFIG | MemoryFlags.MAXIMUM, 'virDomainSetMemoryFlags');
  await setMemory(ctx, dom, memory, flags);
});

async function setVcpus(ctx: HandlerContext, dom: RemoteDomain, nvcpus: number, flags: number): Promise<void> {
  if (nvcpus < 1 || nvcpus > IpcLimits.VCPUS_MAX) throw VG_ERR_ARG_INVALID(`vcpu count ${nvcpus} out of range`);
  await ctx.helper.call(Op.DOMAIN_SET_VCPUS_REQ, { actor: ctx.actor(), uuid: dom.uuid, nvcpus, ...affect(flags), max: (flags & VcpuFlags.MAXIMUM) !== 0 });
}
on(P.DOMAIN_SET_VCPUS, async (ctx, { dom, nvcpus }) => setVcpus(ctx, dom, nvcpus, AffectFlags.LIVE));
on(P.DOMAIN_SET_VCPUS_FLAGS, async (ctx, { dom, nvcpus, flags }) => {
  checkFlags(flags, AffectFlags.LIVE | AffectFlags.CONFIG | VcpuFlags.MAXIMUM, 'virDomainSetVcpusFlags');
  await setVcpus(ctx, dom, nvcpus, flags);
});

// ---------- events ----------

function register(ctx: HandlerContext, eventID: number, dom: RemoteDomain | null, legacy: boolean): EventRegistration {
  if (eventID < 0 || eventID >= DomainEventId.LAST) throw VG_ERR_ARG_INVALID(`unsupported event ID ${eventID}`);
  // Each callback costs memory here and one event frame per event: a connection holds at most maxEventRegistrations.
  const max = ctx.session.maxEventRegistrations;
  if (ctx.session.events.size >= max) throw VG_ERR_ARG_INVALID(`too many event callbacks on this connection (maxEventRegistrations = ${max})`);
  const reg: EventRegistration = { callbackID: ctx.nextCallbackId(), eventID, domUuid: dom ? dom.uuid : null, legacy };
  ctx.session.events.set(reg.callbackID, reg);
  return reg;
}

// Every event ID is accepted and remembered; only lifecycle (0) events are ever emitted.
on(P.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, async (ctx, { eventID, dom }) => ({ callbackID: register(ctx, eventID, dom, false).callbackID }));
on(P.CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY, async (ctx, { callbackID }) => {
  if (!ctx.session.events.delete(callbackID)) throw VG_ERR_ARG_INVALID(`callback ${callbackID} not registered`);
});
on(P.CONNECT_DOMAIN_EVENT_REGISTER_ANY, async (ctx, { eventID }) => {
  for (const r of ctx.session.events.values()) if (r.legacy && r.eventID === eventID) throw VG_ERR_ARG_INVALID(`event ${eventID} already registered`);
  register(ctx, eventID, null, true);
});
on(P.CONNECT_DOMAIN_EVENT_DEREGISTER_ANY, async (ctx, { eventID }) => {
  for (const [id, r] of ctx.session.events) {
    if (r.legacy && r.eventID === eventID) {
      ctx.session.events.delete(id);
      return;
    }
  }
  throw VG_ERR_ARG_INVALID(`event ${eventID} not registered`);
});

// Messages the server sends; a client calling them gets libvirtd's unknown-procedure answer (see Session).
export const SERVER_MESSAGES = [P.DOMAIN_EVENT_LIFECYCLE.proc, P.DOMAIN_EVENT_CALLBACK_LIFECYCLE.proc];
