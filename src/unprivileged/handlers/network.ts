// SPDX-License-Identifier: Apache-2.0
// Handlers for the procedures of ../../protocol/procs/network.ts. Client XML is parsed here into a typed config; the
// helper answers with its records (real name and tenant), on which policy, lists and events decide per network.
import { VG_ERR_ARG_INVALID, VG_ERR_DOMAIN_INTERNAL, VG_ERR_NO_NETWORK, type VgError, isVgError } from '../../common/errors';
import { uuidToString } from '../../common/uuid';
import { type NetworkConfig, type NetworkKey, type NetworkSummary, isNetworkName } from '../../ipc/objects/network';
import { Op } from '../../ipc/program';
import type { ObjectEvent } from '../../ipc/program';
import type { PolicyObject } from '../../policy/authorizer';
import { encodeEvent } from '../../protocol/messages';
import { NETWORK_LIST_MAX, NETWORK_XML_INACTIVE, NetworkEventId, NetworkListFlags as F, PN, type RemoteNetwork } from '../../protocol/procs/network';
import { registerObjectEventKind } from '../object-events';
import { formatNetworkXml, parseNetworkXml, parseUpdateItem } from '../xml/network';
import { type CallObject, type Entry, type HandlerContext, checkFlags, entry } from './common';

export const networkObject = (n: { name: string; uuid: Buffer; tenant: string }): PolicyObject => ({
  kind: 'network',
  name: n.name,
  uuid: uuidToString(n.uuid),
  tenant: n.tenant,
});
const toRemote = (n: NetworkSummary): RemoteNetwork => ({ name: n.name, uuid: Buffer.from(n.uuid) });
// libvirt's test driver finds most networks by name: its "not found" names the name the client sent.
const notFound = (name: string) => VG_ERR_NO_NETWORK(`: no network with matching name '${name}'`);
const notFoundUuid = (uuid: Buffer) => VG_ERR_NO_NETWORK(`: no network with matching uuid '${uuidToString(uuid)}'`);

// ---------- helper records: from the front end's mirror when it is synced, else by a helper call ----------

const list = async (ctx: HandlerContext): Promise<NetworkSummary[]> =>
  ctx.mirror.objects.networks() ?? (await ctx.helper.act(Op.NETWORK_READ_REQ, 'list', {})).networks;

// The helper's record of a network, or this call's "not found" (the helper's own wording names the uuid).
async function lookup(ctx: HandlerContext, key: NetworkKey, absent: () => VgError): Promise<NetworkSummary> {
  const mirrored = ctx.mirror.objects.network(key);
  if (mirrored === null) throw absent();
  if (mirrored) return mirrored;
  try {
    return (await ctx.helper.act(Op.NETWORK_READ_REQ, 'lookup', { key })).network;
  } catch (e) {
    if (isVgError(e) && e.code === 'VG_ERR_NO_NETWORK') throw absent();
    throw e;
  }
}

// The network a call names (by uuid, as libvirt's remote driver identifies it). Its XML and bridge name stay helper
// reads (`get`): the mirror holds summaries, not configs.
const record = (ctx: HandlerContext, net: RemoteNetwork): Promise<NetworkSummary> => lookup(ctx, { uuid: net.uuid }, () => notFound(net.name));

async function get(ctx: HandlerContext, uuid: Buffer, inactive: boolean): Promise<{ network: NetworkSummary; config: NetworkConfig }> {
  const a = await ctx.helper.act(Op.NETWORK_READ_REQ, 'get', { uuid, inactive });
  return { network: a.network, config: a.config };
}

const write = async (ctx: HandlerContext, action: 'undefine' | 'start' | 'destroy', net: RemoteNetwork): Promise<NetworkSummary> =>
  (await ctx.helper.act(Op.NETWORK_WRITE_REQ, action, { actor: ctx.actor(), uuid: net.uuid })).network;

// A call naming a network is decided on the helper's record of it; one the caller may not getattr answers "not found".
const named = { objects: async (ctx: HandlerContext, args: { net: RemoteNetwork }): Promise<CallObject[]> => [networkObject(await record(ctx, args.net))] };
// Lookups and lists decide per network in the handler (ctx.canSee).
const filtered = { objects: async (): Promise<CallObject[]> => [] };
// define/create: the new network, named as the parser reads it, in the session's tenant. XML that does not parse is
// refused by the handler, after the intent is on record.
const fresh = {
  objects: async (ctx: HandlerContext, args: { xml: string }): Promise<CallObject[]> => {
    let name = '*';
    try {
      name = parseNetworkXml(args.xml).name;
    } catch {
      // the handler answers with the parser's error
    }
    return [{ kind: 'network', name, tenant: ctx.actor().tenant, fresh: true }];
  },
};

const visible = async (ctx: HandlerContext): Promise<NetworkSummary[]> => (await list(ctx)).filter((n) => ctx.canSee(networkObject(n), 'network:getattr'));

// virNetworkObjMatch: within a group any flag matches; groups combine with AND.
export function matchesNetworkFlags(n: NetworkSummary, flags: number): boolean {
  const group = (mask: number, ok: () => boolean): boolean => (flags & mask) === 0 || ok();
  return (
    group(F.ACTIVE | F.INACTIVE, () => ((flags & F.ACTIVE) !== 0 && n.active) || ((flags & F.INACTIVE) !== 0 && !n.active)) &&
    group(F.PERSISTENT | F.TRANSIENT, () => ((flags & F.PERSISTENT) !== 0 && n.persistent) || ((flags & F.TRANSIENT) !== 0 && !n.persistent)) &&
    group(F.AUTOSTART | F.NO_AUTOSTART, () => ((flags & F.AUTOSTART) !== 0 && n.autostart) || ((flags & F.NO_AUTOSTART) !== 0 && !n.autostart))
  );
}
const ALL_FLAGS = Object.values(F).reduce((a, b) => a | b, 0);

function maxOf(n: number, what: string): number {
  if (n < 0 || n > NETWORK_LIST_MAX) throw VG_ERR_ARG_INVALID(`${what} > REMOTE_NETWORK_LIST_MAX`);
  return n;
}

async function define(ctx: HandlerContext, xml: string): Promise<{ net: RemoteNetwork }> {
  const config = parseNetworkXml(xml);
  return { net: toRemote((await ctx.helper.act(Op.NETWORK_WRITE_REQ, 'define', { actor: ctx.actor(), config })).network) };
}

async function create(ctx: HandlerContext, xml: string): Promise<{ net: RemoteNetwork }> {
  const config = parseNetworkXml(xml);
  return { net: toRemote((await ctx.helper.act(Op.NETWORK_WRITE_REQ, 'create', { actor: ctx.actor(), config })).network) };
}

// ---------- events: the hub sends each to the sessions whose policy lets them see the network ----------

registerObjectEventKind('network', {
  permission: 'network:getattr',
  object: (ev: ObjectEvent) => networkObject(ev),
  frames: (callbackID, eventID, ev) =>
    eventID === NetworkEventId.LIFECYCLE && ev.event >= 0
      ? [encodeEvent(PN.NETWORK_EVENT_LIFECYCLE, { callbackID, net: { name: ev.name, uuid: ev.uuid }, event: ev.event, detail: ev.detail })]
      : [],
});

export const networkHandlers: Entry[] = [
  // ---------- lists ----------
  entry(PN.CONNECT_NUM_OF_NETWORKS, async (ctx) => ({ num: (await visible(ctx)).filter((n) => n.active).length }), filtered),
  entry(PN.CONNECT_NUM_OF_DEFINED_NETWORKS, async (ctx) => ({ num: (await visible(ctx)).filter((n) => !n.active).length }), filtered),
  entry(
    PN.CONNECT_LIST_NETWORKS,
    async (ctx, { maxnames }) => ({
      names: (await visible(ctx))
        .filter((n) => n.active)
        .map((n) => n.name)
        .slice(0, maxOf(maxnames, 'maxnames')),
    }),
    filtered,
  ),
  entry(
    PN.CONNECT_LIST_DEFINED_NETWORKS,
    async (ctx, { maxnames }) => ({
      names: (await visible(ctx))
        .filter((n) => !n.active)
        .map((n) => n.name)
        .slice(0, maxOf(maxnames, 'maxnames')),
    }),
    filtered,
  ),
  entry(
    PN.CONNECT_LIST_ALL_NETWORKS,
    async (ctx, { needResults, flags }) => {
      checkFlags(flags, ALL_FLAGS, 'virConnectListAllNetworks');
      const nets = (await visible(ctx)).filter((n) => matchesNetworkFlags(n, flags));
      return { nets: needResults ? nets.map(toRemote) : [], ret: nets.length };
    },
    filtered,
  ),

  // ---------- lookups: a network the caller may not see is absent, as one that does not exist ----------
  entry(
    PN.NETWORK_LOOKUP_BY_NAME,
    async (ctx, { name }) => {
      if (!isNetworkName(name)) throw notFound(name); // no network has such a name: nothing to ask the helper
      const n = await lookup(ctx, { name }, () => notFound(name));
      if (!ctx.canSee(networkObject(n), 'network:getattr')) {
        ctx.noteHidden?.(networkObject(n));
        throw notFound(name);
      }
      return { net: toRemote(n) };
    },
    filtered,
  ),
  entry(
    PN.NETWORK_LOOKUP_BY_UUID,
    async (ctx, { uuid }) => {
      const n = await lookup(ctx, { uuid }, () => notFoundUuid(uuid));
      if (!ctx.canSee(networkObject(n), 'network:getattr')) {
        ctx.noteHidden?.(networkObject(n));
        throw notFoundUuid(uuid);
      }
      return { net: toRemote(n) };
    },
    filtered,
  ),

  // ---------- per-network reads ----------
  entry(
    PN.NETWORK_GET_XML_DESC,
    async (ctx, { net, flags }) => {
      checkFlags(flags, NETWORK_XML_INACTIVE, 'virNetworkGetXMLDesc');
      return { xml: formatNetworkXml((await get(ctx, net.uuid, (flags & NETWORK_XML_INACTIVE) !== 0)).config) };
    },
    named,
  ),
  entry(
    PN.NETWORK_GET_BRIDGE_NAME,
    async (ctx, { net }) => {
      const { network, config } = await get(ctx, net.uuid, false);
      if (config.bridge.name === '') throw VG_ERR_DOMAIN_INTERNAL(`network '${network.name}' does not have a bridge name.`);
      return { name: config.bridge.name };
    },
    named,
  ),
  entry(PN.NETWORK_GET_AUTOSTART, async (ctx, { net }) => ({ autostart: (await record(ctx, net)).autostart ? 1 : 0 }), named),
  entry(PN.NETWORK_IS_ACTIVE, async (ctx, { net }) => ({ active: (await record(ctx, net)).active ? 1 : 0 }), named),
  entry(PN.NETWORK_IS_PERSISTENT, async (ctx, { net }) => ({ persistent: (await record(ctx, net)).persistent ? 1 : 0 }), named),

  // ---------- writes (audited by the dispatcher: cls 'write') ----------
  entry(PN.NETWORK_DEFINE_XML, async (ctx, { xml }) => define(ctx, xml), fresh),
  entry(
    PN.NETWORK_DEFINE_XML_FLAGS,
    async (ctx, { xml, flags }) => {
      checkFlags(flags, 1, 'virNetworkDefineXMLFlags'); // VALIDATE: the parser always validates
      return define(ctx, xml);
    },
    fresh,
  ),
  entry(PN.NETWORK_CREATE_XML, async (ctx, { xml }) => create(ctx, xml), fresh),
  entry(
    PN.NETWORK_CREATE_XML_FLAGS,
    async (ctx, { xml, flags }) => {
      checkFlags(flags, 1, 'virNetworkCreateXMLFlags');
      return create(ctx, xml);
    },
    fresh,
  ),
  entry(PN.NETWORK_UNDEFINE, async (ctx, { net }) => void (await write(ctx, 'undefine', net)), named),
  entry(PN.NETWORK_CREATE, async (ctx, { net }) => void (await write(ctx, 'start', net)), named),
  entry(PN.NETWORK_DESTROY, async (ctx, { net }) => void (await write(ctx, 'destroy', net)), named),
  entry(
    PN.NETWORK_SET_AUTOSTART,
    async (ctx, { net, autostart }) =>
      void (await ctx.helper.act(Op.NETWORK_WRITE_REQ, 'setAutostart', { actor: ctx.actor(), uuid: net.uuid, autostart: autostart !== 0 })),
    named,
  ),
  entry(
    PN.NETWORK_UPDATE,
    // libvirt's public virNetworkUpdate hands the driver (section, command) swapped, so on the wire `command` carries
    // the section and `section` the command; libvirtd swaps them back on the way in, as we do here.
    async (ctx, { net, command: section, section: command, parentIndex, xml, flags }) => {
      checkFlags(flags, 3, 'virNetworkUpdate');
      const n = await record(ctx, net);
      let live = (flags & 1) !== 0;
      let config = (flags & 2) !== 0;
      if (!live && !config) [live, config] = [n.active, !n.active]; // AFFECT_CURRENT
      // The snippet is checked against the config it changes: the persistent one for a config-only change.
      const base = (await get(ctx, n.uuid, !live)).config;
      if (parentIndex < -1 || parentIndex >= 16) throw VG_ERR_ARG_INVALID(`parentIndex ${parentIndex} out of range`);
      const item = parseUpdateItem(section, command, xml, base, parentIndex);
      await ctx.helper.act(Op.NETWORK_WRITE_REQ, 'update', { actor: ctx.actor(), uuid: n.uuid, command, parentIndex, live, config, item });
    },
    named,
  ),

  // ---------- events ----------
  entry(PN.CONNECT_NETWORK_EVENT_REGISTER_ANY, async (ctx, { eventID, net }) => {
    if (eventID < 0 || eventID >= NetworkEventId.LAST) throw VG_ERR_DOMAIN_INTERNAL(`unsupported network event ID ${eventID}`);
    const callbackID = ctx.nextCallbackId();
    ctx.objectEvents.register(ctx.session, 'network', eventID, callbackID, net ? net.uuid : null);
    return { callbackID };
  }),
  entry(PN.CONNECT_NETWORK_EVENT_DEREGISTER_ANY, async (ctx, { callbackID }) => {
    if (!ctx.objectEvents.deregister(ctx.session, 'network', callbackID)) throw VG_ERR_ARG_INVALID(`callback ${callbackID} not registered`);
  }),
];
