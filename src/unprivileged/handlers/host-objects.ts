// SPDX-License-Identifier: Apache-2.0
// Interfaces, node devices and host facts: the procedures of ../../protocol/procs/host-objects.ts. Client XML is parsed
// here (../xml) into typed configs for the helper; the helper's typed answers are formatted back as libvirt prints them.
// Host objects belong to no tenant: each call resolves its object from the helper's record, so policy decides on the
// real name, and an object the caller may not see answers as absent.
import {
  VG_ERR_ARG_INVALID,
  VG_ERR_DOMAIN_INTERNAL,
  VG_ERR_MULTIPLE_INTERFACES,
  VG_ERR_NO_INTERFACE,
  VG_ERR_NO_NODE_DEVICE,
  VG_ERR_NOT_SUPPORTED,
  VG_ERR_RPC_PAYLOAD,
} from '../../common/errors';
import { type IfaceSummary, type NodeDevDef, type Sysinfo, isHostObjectName, nodeDevEventUuid } from '../../ipc/objects/host-objects';
import { Op } from '../../ipc/program';
import { PH, HostProcLimits, type RemoteInterface } from '../../protocol/procs/host-objects';
import { encodeEvent } from '../../protocol/messages';
import type { PolicyObject } from '../../policy/authorizer';
import { registerObjectEventKind } from '../object-events';
import { escapeXml, formatInterfaceXml, parseInterfaceXml } from '../xml/interface';
import { NODEDEV_CAP_TYPES, capNames, formatNodeDeviceXml, parseNodeDeviceCreateXml } from '../xml/nodedev';
import { type CallObject, type Entry, type HandlerContext, checkFlags, entry } from './common';

// ---------- policy objects ----------

const ifaceObject = (name: string): PolicyObject => ({ kind: 'interface', name, tenant: '' });
const devObject = (name: string): PolicyObject => ({ kind: 'node_device', name, tenant: '' });
const noIface = (name: string) => VG_ERR_NO_INTERFACE(`: no interface with matching name '${name}'`);
const noDev = (name: string) => VG_ERR_NO_NODE_DEVICE(`: no node device with matching name '${name}'`);

// ---------- interfaces ----------

const ListIfaceFlags = { INACTIVE: 1, ACTIVE: 2 } as const;

// Records come from the front end's mirror when it is synced (else a helper call); an interface's XML stays a helper
// read (the mirror holds summaries, not definitions).
const allIfaces = async (ctx: HandlerContext): Promise<IfaceSummary[]> =>
  ctx.mirror.objects.ifaces() ?? (await ctx.helper.act(Op.IFACE_READ_REQ, 'list', {})).ifaces;

async function visibleIfaces(ctx: HandlerContext): Promise<IfaceSummary[]> {
  return (await allIfaces(ctx)).filter((i) => ctx.canSee(ifaceObject(i.name), 'interface:getattr'));
}

const toRemoteIface = (i: IfaceSummary): RemoteInterface => ({ name: i.name, mac: i.mac });

// The helper's record of a named interface (a name it would refuse cannot exist).
async function ifaceRecord(ctx: HandlerContext, name: string): Promise<IfaceSummary> {
  if (!isHostObjectName(name)) throw noIface(name);
  const mirrored = ctx.mirror.objects.iface(name);
  if (mirrored !== undefined) {
    if (mirrored === null) throw noIface(name);
    return mirrored;
  }
  const found = (await ctx.helper.act(Op.IFACE_READ_REQ, 'list', {})).ifaces.find((i) => i.name === name);
  if (!found) throw noIface(name);
  return found;
}

// The policy object of a named host object, whether or not it exists: host objects have no tenant, so the decision
// depends on the name alone, and an interface the caller may not see answers as one that does not exist.
function namedObject(name: string, make: (n: string) => PolicyObject, absent: (n: string) => Error): CallObject[] {
  if (!isHostObjectName(name)) throw absent(name);
  return [make(name)];
}
const byIfaceName = { objects: async (_ctx: HandlerContext, args: { iface: RemoteInterface }) => namedObject(args.iface.name, ifaceObject, noIface) };

// virInterfaceLookupByMACString over the visible interfaces: case-insensitive, more than one match is an error.
export function ifaceByMac(ifaces: readonly IfaceSummary[], mac: string): IfaceSummary {
  const found = ifaces.filter((i) => i.mac !== '' && i.mac.toLowerCase() === mac.toLowerCase());
  if (found.length === 0) throw VG_ERR_NO_INTERFACE(`: no interface with matching mac '${mac}'`);
  if (found.length > 1) throw VG_ERR_MULTIPLE_INTERFACES('');
  return found[0];
}

function checkMaxnames(maxnames: number, max: number, what: string): void {
  if (maxnames < 0 || maxnames > max) throw VG_ERR_ARG_INVALID(`maxnames > ${what}`);
}

const interfaceHandlers: Entry[] = [
  entry(PH.CONNECT_NUM_OF_INTERFACES, async (ctx) => ({ num: (await visibleIfaces(ctx)).filter((i) => i.active).length })),
  entry(PH.CONNECT_NUM_OF_DEFINED_INTERFACES, async (ctx) => ({ num: (await visibleIfaces(ctx)).filter((i) => !i.active).length })),
  entry(PH.CONNECT_LIST_INTERFACES, async (ctx, { maxnames }) => {
    checkMaxnames(maxnames, HostProcLimits.INTERFACE_LIST_MAX, 'REMOTE_INTERFACE_LIST_MAX');
    return {
      names: (await visibleIfaces(ctx))
        .filter((i) => i.active)
        .map((i) => i.name)
        .slice(0, maxnames),
    };
  }),
  entry(PH.CONNECT_LIST_DEFINED_INTERFACES, async (ctx, { maxnames }) => {
    checkMaxnames(maxnames, HostProcLimits.INTERFACE_LIST_MAX, 'REMOTE_INTERFACE_LIST_MAX');
    return {
      names: (await visibleIfaces(ctx))
        .filter((i) => !i.active)
        .map((i) => i.name)
        .slice(0, maxnames),
    };
  }),
  entry(PH.CONNECT_LIST_ALL_INTERFACES, async (ctx, { needResults, flags }) => {
    checkFlags(flags, ListIfaceFlags.ACTIVE | ListIfaceFlags.INACTIVE, 'testConnectListAllInterfaces');
    const want = (i: IfaceSummary) =>
      (flags & (ListIfaceFlags.ACTIVE | ListIfaceFlags.INACTIVE)) === 0 ||
      ((flags & ListIfaceFlags.ACTIVE) !== 0 && i.active) ||
      ((flags & ListIfaceFlags.INACTIVE) !== 0 && !i.active);
    const list = (await visibleIfaces(ctx)).filter(want);
    return { ifaces: needResults ? list.map(toRemoteIface) : [], ret: list.length };
  }),
  entry(PH.INTERFACE_LOOKUP_BY_NAME, async (ctx, { name }) => ({ iface: toRemoteIface(await ifaceRecord(ctx, name)) }), {
    objects: async (_ctx, { name }) => namedObject(name, ifaceObject, noIface),
  }),
  entry(
    PH.INTERFACE_LOOKUP_BY_MAC_STRING,
    async (ctx, { mac }) => ({ iface: toRemoteIface(ifaceByMac(await visibleIfaces(ctx), mac)) }),
    // No object before the lookup: the handler searches only what the caller may see, so a hidden one is "not found".
    { objects: async () => [] },
  ),
  entry(
    PH.INTERFACE_GET_XML_DESC,
    async (ctx, { iface, flags }) => {
      checkFlags(flags, 0, 'testInterfaceGetXMLDesc');
      const { def } = await ctx.helper.act(Op.IFACE_READ_REQ, 'get', { name: iface.name });
      return { xml: formatInterfaceXml(def) };
    },
    byIfaceName,
  ),
  entry(PH.INTERFACE_IS_ACTIVE, async (ctx, { iface }) => ({ active: (await ifaceRecord(ctx, iface.name)).active ? 1 : 0 }), byIfaceName),
  entry(
    PH.INTERFACE_DEFINE_XML,
    async (ctx, { xml, flags }) => {
      checkFlags(flags, 1, 'testInterfaceDefineXML'); // VIR_INTERFACE_DEFINE_VALIDATE: our parser is as strict with or without it
      const def = parseInterfaceXml(xml);
      return { iface: toRemoteIface(await ctx.helper.act(Op.IFACE_WRITE_REQ, 'define', { actor: ctx.actor(), def })) };
    },
    // The object is the one the XML names (a new one is fresh): an interface belongs to no tenant, like every host object.
    { objects: async (_ctx, { xml }) => [ifaceObject(parseInterfaceXml(xml).name)] },
  ),
  entry(
    PH.INTERFACE_UNDEFINE,
    async (ctx, { iface }) => void (await ctx.helper.act(Op.IFACE_WRITE_REQ, 'undefine', { actor: ctx.actor(), name: iface.name })),
    byIfaceName,
  ),
  entry(
    PH.INTERFACE_CREATE,
    async (ctx, { iface, flags }) => {
      checkFlags(flags, 0, 'testInterfaceCreate');
      await ctx.helper.act(Op.IFACE_WRITE_REQ, 'start', { actor: ctx.actor(), name: iface.name });
    },
    byIfaceName,
  ),
  entry(
    PH.INTERFACE_DESTROY,
    async (ctx, { iface, flags }) => {
      checkFlags(flags, 0, 'testInterfaceDestroy');
      await ctx.helper.act(Op.IFACE_WRITE_REQ, 'stop', { actor: ctx.actor(), name: iface.name });
    },
    byIfaceName,
  ),
  entry(PH.INTERFACE_CHANGE_BEGIN, async (ctx, { flags }) => {
    checkFlags(flags, 0, 'testInterfaceChangeBegin');
    await ctx.helper.act(Op.IFACE_WRITE_REQ, 'begin', { actor: ctx.actor() });
  }),
  entry(PH.INTERFACE_CHANGE_COMMIT, async (ctx, { flags }) => {
    checkFlags(flags, 0, 'testInterfaceChangeCommit');
    await ctx.helper.act(Op.IFACE_WRITE_REQ, 'commit', { actor: ctx.actor() });
  }),
  entry(PH.INTERFACE_CHANGE_ROLLBACK, async (ctx, { flags }) => {
    checkFlags(flags, 0, 'testInterfaceChangeRollback');
    await ctx.helper.act(Op.IFACE_WRITE_REQ, 'rollback', { actor: ctx.actor() });
  }),
];

// ---------- node devices ----------

// VIR_CONNECT_LIST_NODE_DEVICES_CAP_* bit i is NODEDEV_CAP_TYPES[i]; ACTIVE/INACTIVE are bits 31 and 30.
const DEV_ACTIVE = 0x80000000;
const DEV_INACTIVE = 0x40000000;
const DEV_CAPS_MASK = (1 << NODEDEV_CAP_TYPES.length) - 1;

// Records (whole definitions: XML, parent and capabilities come from them) from the mirror when it is synced.
async function visibleDevices(ctx: HandlerContext): Promise<NodeDevDef[]> {
  const devices = ctx.mirror.objects.devices() ?? (await ctx.helper.act(Op.NODEDEV_READ_REQ, 'list', {})).devices;
  return devices.filter((d) => ctx.canSee(devObject(d.name), 'node_device:getattr'));
}

async function deviceRecord(ctx: HandlerContext, name: string): Promise<NodeDevDef> {
  if (!isHostObjectName(name)) throw noDev(name);
  const mirrored = ctx.mirror.objects.device(name);
  if (mirrored !== undefined) {
    if (mirrored === null) throw noDev(name);
    return mirrored;
  }
  const found = (await ctx.helper.act(Op.NODEDEV_READ_REQ, 'list', {})).devices.find((d) => d.name === name);
  if (!found) throw noDev(name);
  return found;
}

const byDevName = { objects: async (_ctx: HandlerContext, args: { name: string }) => namedObject(args.name, devObject, noDev) };

// nodeNumOfDevices / nodeListDevices: an unknown capability name matches nothing.
const hasCap = (d: NodeDevDef, cap: string | null) => cap === null || (capNames(d) as string[]).includes(cap);

// virNodeDeviceObjMatch: any listed capability; all devices are active (udev lists live devices; libvirt 9.0's test
// driver refuses the ACTIVE/INACTIVE bits that virsh nodedev-list always sends, which we accept instead).
function matchesDevFlags(d: NodeDevDef, flags: number): boolean {
  if (flags & DEV_CAPS_MASK) {
    const names = capNames(d);
    if (!NODEDEV_CAP_TYPES.some((t, i) => (flags & (1 << i)) !== 0 && names.includes(t))) return false;
  }
  if (flags & (DEV_ACTIVE | DEV_INACTIVE)) return (flags & DEV_ACTIVE) !== 0;
  return true;
}

const nodeDeviceHandlers: Entry[] = [
  entry(PH.NODE_NUM_OF_DEVICES, async (ctx, { cap, flags }) => {
    checkFlags(flags, 0, 'testNodeNumOfDevices');
    return { num: (await visibleDevices(ctx)).filter((d) => hasCap(d, cap)).length };
  }),
  entry(PH.NODE_LIST_DEVICES, async (ctx, { cap, maxnames, flags }) => {
    checkMaxnames(maxnames, HostProcLimits.NODE_DEVICE_LIST_MAX, 'REMOTE_NODE_DEVICE_LIST_MAX');
    checkFlags(flags, 0, 'testNodeListDevices');
    return {
      names: (await visibleDevices(ctx))
        .filter((d) => hasCap(d, cap))
        .map((d) => d.name)
        .slice(0, maxnames),
    };
  }),
  entry(PH.CONNECT_LIST_ALL_NODE_DEVICES, async (ctx, { needResults, flags }) => {
    checkFlags(flags >>> 0, (DEV_CAPS_MASK | DEV_ACTIVE | DEV_INACTIVE) >>> 0, 'testConnectListAllNodeDevices');
    const list = (await visibleDevices(ctx)).filter((d) => matchesDevFlags(d, flags >>> 0));
    return { devices: needResults ? list.map((d) => ({ name: d.name })) : [], ret: list.length };
  }),
  entry(PH.NODE_DEVICE_LOOKUP_BY_NAME, async (ctx, { name }) => ({ dev: { name: (await deviceRecord(ctx, name)).name } }), byDevName),
  entry(
    PH.NODE_DEVICE_GET_XML_DESC,
    async (ctx, { name, flags }) => {
      checkFlags(flags, 0, 'testNodeDeviceGetXMLDesc');
      return { xml: formatNodeDeviceXml(await deviceRecord(ctx, name)) };
    },
    byDevName,
  ),
  entry(
    PH.NODE_DEVICE_GET_PARENT,
    async (ctx, { name }) => {
      const d = await deviceRecord(ctx, name);
      if (d.parent === null) throw VG_ERR_DOMAIN_INTERNAL('no parent for this device');
      return { parentName: d.parent };
    },
    byDevName,
  ),
  entry(PH.NODE_DEVICE_NUM_OF_CAPS, async (ctx, { name }) => ({ num: (await deviceRecord(ctx, name)).caps.length }), byDevName),
  entry(
    PH.NODE_DEVICE_LIST_CAPS,
    async (ctx, { name, maxnames }) => {
      checkMaxnames(maxnames, HostProcLimits.NODE_DEVICE_CAPS_LIST_MAX, 'REMOTE_NODE_DEVICE_CAPS_LIST_MAX');
      return { names: (await deviceRecord(ctx, name)).caps.map((c) => c.type as string).slice(0, maxnames) };
    },
    byDevName,
  ),
  entry(
    PH.NODE_DEVICE_CREATE_XML,
    async (ctx, { xml, flags }) => {
      checkFlags(flags, 1, 'testNodeDeviceCreateXML'); // VIR_NODE_DEVICE_CREATE_XML_VALIDATE
      const req = parseNodeDeviceCreateXml(xml);
      const { name } = await ctx.helper.act(Op.NODEDEV_WRITE_REQ, 'create', { actor: ctx.actor(), ...req });
      return { dev: { name } };
    },
    // libvirt checks a creation against the definition being parsed, which is named "new device" until it exists.
    { objects: async () => [{ ...devObject('new device'), fresh: true }] },
  ),
  entry(PH.NODE_DEVICE_DESTROY, async (ctx, { name }) => void (await ctx.helper.act(Op.NODEDEV_WRITE_REQ, 'destroy', { actor: ctx.actor(), name })), byDevName),
  entry(PH.CONNECT_NODE_DEVICE_EVENT_REGISTER_ANY, async (ctx, { eventID, dev }) => {
    if (eventID < 0 || eventID >= 2) throw VG_ERR_ARG_INVALID(`unsupported event ID ${eventID}`); // LIFECYCLE, UPDATE
    if (dev !== null && !ctx.canSee(devObject(dev.name), 'node_device:getattr')) throw noDev(dev.name);
    const filter = dev === null ? null : nodeDevEventUuid((await deviceRecord(ctx, dev.name)).name);
    const callbackID = ctx.nextCallbackId();
    // UPDATE is accepted and never sent: the test driver emits only lifecycle events.
    ctx.objectEvents.register(ctx.session, 'nodedev', eventID, callbackID, filter);
    return { callbackID };
  }),
  entry(PH.CONNECT_NODE_DEVICE_EVENT_DEREGISTER_ANY, async (ctx, { callbackID }) => {
    if (!ctx.objectEvents.deregister(ctx.session, 'nodedev', callbackID)) throw VG_ERR_ARG_INVALID(`callback ${callbackID} not registered`);
  }),
];

registerObjectEventKind('nodedev', {
  permission: 'node_device:getattr',
  object: (ev) => devObject(ev.name),
  // VIR_NODE_DEVICE_EVENT_ID_LIFECYCLE (0) hears lifecycle events; UPDATE (1) callbacks never get one from the test driver.
  frames: (callbackID, eventID, ev) =>
    eventID === 0 ? [encodeEvent(PH.NODE_DEVICE_EVENT_LIFECYCLE, { callbackID, dev: { name: ev.name }, event: ev.event, detail: ev.detail })] : [],
});

// ---------- host facts ----------

export function formatSysinfo(s: Sysinfo): string {
  const out = [`<sysinfo type='${s.type}'>`];
  for (const sec of s.sections) {
    out.push(`  <${sec.name}>`);
    for (const e of sec.entries) out.push(`    <entry name='${escapeXml(e.name)}'>${escapeXml(e.value)}</entry>`);
    out.push(`  </${sec.name}>`);
  }
  out.push('</sysinfo>');
  return out.join('\n') + '\n';
}

const hostFactHandlers: Entry[] = [
  entry(PH.CONNECT_GET_SYSINFO, async (ctx, { flags }) => {
    checkFlags(flags, 0, 'testConnectGetSysinfo');
    return { sysinfo: formatSysinfo((await ctx.helper.act(Op.HOST_READ_REQ, 'sysinfo', {})).sysinfo) };
  }),
  entry(PH.NODE_GET_CPU_STATS, async (ctx, { cpuNum, nparams, flags }) => {
    if (nparams < 0 || nparams > HostProcLimits.NODE_CPU_STATS_MAX) throw VG_ERR_ARG_INVALID('nparams too large');
    if (cpuNum < -1) throw VG_ERR_ARG_INVALID(`cpuNum in virNodeGetCPUStats must be -1 or greater, not ${cpuNum}`);
    checkFlags(flags, 0, 'testNodeGetCPUStats');
    const { stats } = await ctx.helper.act(Op.HOST_READ_REQ, 'cpuStats', { cpuNum });
    // nparams 0 asks how many there are (remoteDispatchNodeGetCPUStats)
    if (nparams === 0) return { params: [], nparams: stats.length };
    const params = stats.slice(0, nparams);
    return { params, nparams: params.length };
  }),
  entry(PH.NODE_GET_CPU_MAP, async (ctx, { needMap, needOnline, flags }) => {
    checkFlags(flags, 0, 'testNodeGetCPUMap');
    const m = await ctx.helper.act(Op.HOST_READ_REQ, 'cpuMap', {});
    return { cpumap: needMap ? m.map : Buffer.alloc(0), online: needOnline ? m.online : 0, ret: m.cpus };
  }),
  entry(PH.CONNECT_GET_CPU_MODEL_NAMES, async (ctx, { arch, needResults, flags }) => {
    checkFlags(flags, 0, 'testConnectGetCPUModelNames');
    if (!/^[a-z0-9_]{1,32}$/.test(arch)) throw VG_ERR_ARG_INVALID(`cannot find architecture ${arch}`);
    const { models } = await ctx.helper.act(Op.HOST_READ_REQ, 'cpuModels', { arch });
    return { models: needResults ? models : [], ret: models.length };
  }),
  // Not in libvirt 9.0's test driver: libvirtd's answer for a driver without the entry.
  entry(PH.NODE_GET_MEMORY_STATS, async () => {
    throw VG_ERR_NOT_SUPPORTED('virNodeGetMemoryStats');
  }),
  entry(PH.NODE_GET_FREE_PAGES, async (ctx, { pages, startCell, cellCount, flags }) => {
    if (pages.length * cellCount > HostProcLimits.NODE_MAX_CELLS) throw VG_ERR_RPC_PAYLOAD(); // libvirtd: "the result won't fit"
    checkFlags(flags, 0, 'testNodeGetFreePages');
    if (pages.length === 0 || cellCount === 0) return { counts: [] };
    return { counts: (await ctx.helper.act(Op.HOST_READ_REQ, 'freePages', { pages, startCell, cellCount })).counts };
  }),
];

export const hostObjectHandlers: Entry[] = [...interfaceHandlers, ...nodeDeviceHandlers, ...hostFactHandlers];
