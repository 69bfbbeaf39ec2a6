// SPDX-License-Identifier: Apache-2.0
// Domain reads: lists, lookups and per-domain facts. Answered from the mirror when it is synced, else by the helper.
import { VG_ERR_ARG_INVALID, VG_ERR_NO_DOMAIN } from '../../common/errors';
import { type DomainInfo, type DomainSummary, IpcLimits, type LookupKey, LookupKind, Op, checkDomainName, uuidToString } from '../../ipc/program';
import { AffectFlags, DomainState, ListAllFlags, VcpuFlags, XmlFlags } from '../../protocol/constants';
import { P, type ProcDef } from '../../protocol/procs/remote';
import type { RemoteDomain } from '../../protocol/types';
import { bufferSource } from '../streams';
import { type Entry, type HandlerContext, checkFlags, entry, toRemote } from './common';
import { formatDomainXml } from '../xml/domain';
import { screenshotSource } from './graphics';

// ---------- lists ----------

async function listVisible(ctx: HandlerContext): Promise<DomainSummary[]> {
  const domains = ctx.mirror.list() ?? (await ctx.helper.act(Op.DOMAIN_READ_REQ, 'list', {})).domains;
  return domains.filter((d) => ctx.visible(d));
}

const isActive = (d: DomainSummary): boolean => d.id !== -1;

// virConnectListAllDomains filter groups: within a group any flag matches; groups combine with AND.
export function matchesListFlags(d: DomainSummary, flags: number): boolean {
  const F = ListAllFlags;
  const group = (mask: number, test: () => boolean): boolean => (flags & mask) === 0 || test();
  const autostart = (d as Partial<DomainInfo>).autostart === true;
  const managedSave = (d as Partial<DomainInfo>).hasManagedSave === true;
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
    // Autostart and managed save are in the mirror's entries (DomainInfo); the test driver has no snapshots or checkpoints.
    group(F.MANAGEDSAVE | F.NO_MANAGEDSAVE, () => ((flags & F.MANAGEDSAVE) !== 0 && managedSave) || ((flags & F.NO_MANAGEDSAVE) !== 0 && !managedSave)) &&
    group(F.HAS_SNAPSHOT | F.NO_SNAPSHOT, () => (flags & F.NO_SNAPSHOT) !== 0) &&
    group(F.HAS_CHECKPOINT | F.NO_CHECKPOINT, () => (flags & F.NO_CHECKPOINT) !== 0) &&
    group(F.AUTOSTART | F.NO_AUTOSTART, () => ((flags & F.AUTOSTART) !== 0 && autostart) || ((flags & F.NO_AUTOSTART) !== 0 && !autostart))
  );
}

const ALL_LIST_FLAGS = Object.values(ListAllFlags).reduce((a, b) => a | b, 0);

const listHandlers: Entry[] = [
  entry(P.CONNECT_LIST_ALL_DOMAINS, async (ctx, { needResults, flags }) => {
    checkFlags(flags, ALL_LIST_FLAGS, 'virConnectListAllDomains');
    const doms = (await listVisible(ctx)).filter((d) => matchesListFlags(d, flags));
    return { domains: needResults ? doms.map(toRemote) : [], ret: doms.length };
  }),
  entry(P.CONNECT_NUM_OF_DOMAINS, async (ctx) => ({ num: (await listVisible(ctx)).filter(isActive).length })),
  entry(P.CONNECT_LIST_DOMAINS, async (ctx, { maxids }) => {
    if (maxids < 0 || maxids > IpcLimits.DOMAINS_MAX) throw VG_ERR_ARG_INVALID('maxids out of range');
    return {
      ids: (await listVisible(ctx))
        .filter(isActive)
        .map((d) => d.id)
        .slice(0, maxids),
    };
  }),
  entry(P.CONNECT_NUM_OF_DEFINED_DOMAINS, async (ctx) => ({ num: (await listVisible(ctx)).filter((d) => !isActive(d)).length })),
  entry(P.CONNECT_LIST_DEFINED_DOMAINS, async (ctx, { maxnames }) => {
    if (maxnames < 0 || maxnames > IpcLimits.DOMAINS_MAX) throw VG_ERR_ARG_INVALID('maxnames out of range');
    return {
      names: (await listVisible(ctx))
        .filter((d) => !isActive(d))
        .map((d) => d.name)
        .slice(0, maxnames),
    };
  }),
];

// ---------- lookups (an object the caller may not see answers "no domain", never "denied") ----------

async function lookup(ctx: HandlerContext, key: LookupKey, procedure: string): Promise<{ dom: RemoteDomain }> {
  const m = ctx.mirror.lookup(key);
  if (m === null) throw VG_ERR_NO_DOMAIN('');
  const d = m ?? (await ctx.helper.act(Op.DOMAIN_READ_REQ, 'lookup', { key }));
  if (!ctx.visible(d)) {
    await ctx.hiddenLookup?.(d, procedure); // same answer as no VM at all, but the attempt is on record
    throw VG_ERR_NO_DOMAIN('');
  }
  return { dom: toRemote(d) };
}

const lookupHandlers: Entry[] = [
  entry(P.DOMAIN_LOOKUP_BY_NAME, async (ctx, { name }) => {
    try {
      checkDomainName(name);
    } catch {
      throw VG_ERR_NO_DOMAIN(''); // a name the helper would refuse cannot exist
    }
    return lookup(ctx, { kind: LookupKind.NAME, name }, P.DOMAIN_LOOKUP_BY_NAME.name);
  }),
  entry(P.DOMAIN_LOOKUP_BY_UUID, async (ctx, { uuid }) => lookup(ctx, { kind: LookupKind.UUID, uuid }, P.DOMAIN_LOOKUP_BY_UUID.name)),
  entry(P.DOMAIN_LOOKUP_BY_ID, async (ctx, { id }) => {
    if (id < 0) throw VG_ERR_NO_DOMAIN('');
    return lookup(ctx, { kind: LookupKind.ID, id }, P.DOMAIN_LOOKUP_BY_ID.name);
  }),
];

// ---------- one domain's facts ----------

// Reads come from the mirror when it can answer (no helper round trip), else from the helper itself.
async function info(ctx: HandlerContext, dom: RemoteDomain): Promise<DomainInfo> {
  const d = ctx.mirror.info(dom.uuid);
  if (d === null) throw VG_ERR_NO_DOMAIN(`: no domain with matching uuid '${uuidToString(dom.uuid)}'`);
  return d ?? ctx.helper.act(Op.DOMAIN_READ_REQ, 'info', { uuid: dom.uuid });
}

// A fact of one domain: answered now when the mirror holds the domain (the dispatcher's fast path), else by the
// handler, from the mirror or the helper. Both give the same answer; errors (flags, no domain) come from the handler.
// `flags`: the flags the API accepts (checked first, as libvirt does), or none for APIs without flags.
function infoEntry<A extends { dom: RemoteDomain; flags?: number }, R>(
  def: ProcDef<A, R>,
  answer: (d: DomainInfo, args: A) => R,
  flags?: { allowed: number; api: string },
): Entry {
  const check = (args: A): void => {
    if (flags) checkFlags(args.flags ?? 0, flags.allowed, flags.api);
  };
  return entry(def, async (ctx, args) => (check(args), answer(await info(ctx, args.dom), args)), {
    now: (ctx, args) => {
      check(args);
      const d = ctx.mirror.info(args.dom.uuid);
      return d ? answer(d, args) : undefined;
    },
  });
}

const infoHandlers: Entry[] = [
  infoEntry(P.DOMAIN_GET_INFO, (d) => ({ state: d.state, maxMem: d.maxMemKiB, memory: d.memoryKiB, nrVirtCpu: d.nrVirtCpu, cpuTime: d.cpuTimeNs })),
  infoEntry(P.DOMAIN_GET_STATE, (d) => ({ state: d.state, reason: d.reason }), { allowed: 0, api: 'virDomainGetState' }),
  infoEntry(P.DOMAIN_GET_OS_TYPE, (d) => ({ type: d.osType })),
  infoEntry(P.DOMAIN_GET_AUTOSTART, (d) => ({ autostart: d.autostart ? 1 : 0 })),
  infoEntry(P.DOMAIN_IS_ACTIVE, (d) => ({ active: d.id !== -1 ? 1 : 0 })),
  infoEntry(P.DOMAIN_IS_PERSISTENT, (d) => ({ persistent: d.persistent ? 1 : 0 })),
  infoEntry(P.DOMAIN_GET_MAX_VCPUS, (d) => ({ num: d.maxVcpus })),
  infoEntry(P.DOMAIN_GET_VCPUS_FLAGS, (d, { flags }) => ({ num: flags & VcpuFlags.MAXIMUM ? d.maxVcpus : d.nrVirtCpu }), {
    allowed: AffectFlags.LIVE | AffectFlags.CONFIG | VcpuFlags.MAXIMUM,
    api: 'virDomainGetVcpusFlags',
  }),
  infoEntry(P.DOMAIN_HAS_MANAGED_SAVE_IMAGE, (d) => ({ result: d.hasManagedSave ? 1 : 0 }), { allowed: 0, api: 'virDomainHasManagedSaveImage' }),
  infoEntry(P.DOMAIN_GET_SECURITY_LABEL, (d) => ({ label: d.securityLabel, enforcing: d.securityEnforcing ? 1 : 0 })),
  infoEntry(P.DOMAIN_GET_MESSAGES, () => ({ msgs: [] }), { allowed: 3, api: 'virDomainGetMessages' }),
  entry(P.DOMAIN_GET_XML_DESC, async (ctx, { dom, flags }) => {
    checkFlags(flags, XmlFlags.SECURE | XmlFlags.INACTIVE | XmlFlags.UPDATE_CPU | XmlFlags.MIGRATABLE, 'virDomainGetXMLDesc');
    // INACTIVE picks the definition (the helper's choice); the XML is written here: SECURE shows graphics passwords,
    // UPDATE_CPU and MIGRATABLE change nothing for the test driver's definitions (as in libvirt's test driver).
    const { def, id } = await ctx.helper.act(Op.DOMAIN_READ_REQ, 'xml', { uuid: dom.uuid, inactive: (flags & XmlFlags.INACTIVE) !== 0 });
    // A running VM's display: the VNC proxy's port for remote users when it serves one (docs/remote-display.md).
    const vncListen = id !== null ? (ctx.remoteDisplay?.(dom.uuid) ?? null) : null;
    return { xml: formatDomainXml(def, id, { secure: (flags & XmlFlags.SECURE) !== 0, vncListen }) };
  }),
];

const screenshotHandlers: Entry[] = [
  // The image goes to the client as a stream after the reply (libvirt's @readstream), paced by the client's reading.
  entry(P.DOMAIN_SCREENSHOT, async (ctx, { dom, screen, flags }) => {
    checkFlags(flags, 0, 'virDomainScreenshot');
    const shot = await ctx.helper.act(Op.DOMAIN_READ_REQ, 'screenshot', { uuid: dom.uuid, screen });
    // QEMU's screen comes as a sealed memfd (graphics.ts); the test driver's small image as bytes.
    ctx.openDownload(shot.token ? await screenshotSource(ctx, shot.token) : bufferSource(shot.data));
    return { mime: shot.mime };
  }),
];

export const domainReadHandlers: Entry[] = [...listHandlers, ...lookupHandlers, ...infoHandlers, ...screenshotHandlers];
