// SPDX-License-Identifier: Apache-2.0
// The connection and host facts: CONNECT_OPEN/CLOSE, features, versions, capabilities, NODE_*.
import { VG_ERR_ARG_INVALID, VG_ERR_CONN_ALREADY_OPEN, VG_ERR_CONN_URI } from '../../common/errors';
import { badDomainCapsField } from '../../ipc/objects/host-objects';
import { Op, type NodeFacts } from '../../ipc/program';
import { ConnectFlags, Feature, Limits } from '../../protocol/constants';
import { P } from '../../protocol/procs/remote';
import { type Entry, checkFlags, entry } from './common';

// We serve one host: accept the driver's canonical URI, with or without query parameters.
function uriMatches(name: string, facts: NodeFacts): boolean {
  const base = name.split('?')[0];
  return base === facts.uri || base === `${facts.driver}://` || base === `${facts.driver}:///`;
}

export const connectHandlers: Entry[] = [
  entry(P.CONNECT_SUPPORTS_FEATURE, async (ctx, { feature }) => {
    switch (feature) {
      case Feature.PROGRAM_KEEPALIVE:
        ctx.session.keepaliveRequested = true; // libvirtd starts its own pings only for clients that ask
        return { supported: 1 };
      case Feature.REMOTE:
      case Feature.REMOTE_EVENT_CALLBACK:
      case Feature.REMOTE_CLOSE_CALLBACK:
      case Feature.TYPED_PARAM_STRING: // string typed parameters (blkiotune, numatune; handlers/domain-extra.ts)
        return { supported: 1 };
      case Feature.FD_PASSING: // REPLY_WITH_FDS (graphics.ts): unix connections only
        return { supported: ctx.session.canPassFds ? 1 : 0 };
      default:
        return { supported: 0 };
    }
  }),
  entry(P.CONNECT_OPEN, async (ctx, { name, flags }) => {
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
  }),
  entry(P.CONNECT_CLOSE, async (ctx) => {
    ctx.session.opened = false;
    ctx.session.events.clear();
  }),
  entry(P.CONNECT_REGISTER_CLOSE_CALLBACK, async (ctx) => void (ctx.session.closeCallbackRegistered = true)),
  entry(P.CONNECT_UNREGISTER_CLOSE_CALLBACK, async (ctx) => void (ctx.session.closeCallbackRegistered = false)),
  entry(P.CONNECT_IS_SECURE, async (ctx) => ({ secure: ctx.session.secure ? 1 : 0 })),
  entry(P.CONNECT_GET_TYPE, async (ctx) => ({ type: (await ctx.facts()).hvType })),
  entry(P.CONNECT_GET_VERSION, async (ctx) => ({ hvVer: (await ctx.facts()).hvVersion })),
  entry(P.CONNECT_GET_LIB_VERSION, async () => ({ libVer: 9000000n })), // the libvirt API level we speak
  entry(P.CONNECT_GET_HOSTNAME, async (ctx) => ({ hostname: (await ctx.facts()).hostname })),
  entry(P.CONNECT_GET_URI, async (ctx) => ({ uri: (await ctx.facts()).uri })),
  entry(P.CONNECT_GET_CAPABILITIES, async (ctx) => ({ capabilities: (await ctx.facts()).capabilitiesXml })),
  entry(P.CONNECT_GET_DOMAIN_CAPABILITIES, async (ctx, { emulatorbin, arch, machine, virttype, flags }) => {
    const q = { emulatorbin, arch, machine, virttype };
    const bad = badDomainCapsField(q);
    if (bad !== null) throw VG_ERR_ARG_INVALID(`${bad}: not an emulator, architecture, machine or virttype name this host knows`);
    const { xml } = await ctx.helper.act(Op.HOST_READ_REQ, 'domainCapabilities', q);
    // Flags after the driver: one without the call answers "not supported" whatever they are (libvirt's test driver).
    checkFlags(flags, 0, 'qemuConnectGetDomainCapabilities');
    return { capabilities: xml };
  }),
  entry(P.NODE_GET_INFO, async (ctx) => {
    const f = await ctx.facts();
    return { model: f.model, memory: f.memoryKiB, cpus: f.cpus, mhz: f.mhz, nodes: f.nodes, sockets: f.sockets, cores: f.cores, threads: f.threads };
  }),
  entry(P.CONNECT_GET_MAX_VCPUS, async (ctx) => ({ maxVcpus: (await ctx.facts()).maxVcpus })), // type: any, as libvirt's drivers
  entry(P.NODE_GET_CELLS_FREE_MEMORY, async (ctx, { startCell, maxcells }) => {
    if (maxcells <= 0 || maxcells > Limits.NODE_MAX_CELLS) throw VG_ERR_ARG_INVALID(`maxcells must be 1 to ${Limits.NODE_MAX_CELLS}, not ${maxcells}`);
    const cells = (await ctx.facts()).cellsFreeBytes;
    if (startCell < 0 || startCell >= cells.length) throw VG_ERR_ARG_INVALID('Range exceeds available cells');
    return { cells: cells.slice(startCell, startCell + maxcells) };
  }),
  entry(P.NODE_GET_FREE_MEMORY, async (ctx) => ({ freeMem: (await ctx.facts()).freeMemoryBytes })),
  entry(P.NODE_GET_SECURITY_MODEL, async (ctx) => {
    const f = await ctx.facts();
    return { model: f.securityModel, doi: f.securityDoi };
  }),
];
