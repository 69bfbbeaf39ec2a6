// SPDX-License-Identifier: Apache-2.0
// REMOTE procedures of interfaces (virInterfaceDriver), node devices (virNodeDeviceDriver), and host facts beyond connect, as data (libvirt 9.0 remote_protocol.x), pure.
import { XdrVoid, int, nonnullString, optString, struct, uhyper, uint, type Codec } from '../types';
import { acl, array, defineProc, retInt } from './table';

// remote_protocol.x list bounds.
export const HostProcLimits = {
  INTERFACE_LIST_MAX: 16384, // REMOTE_INTERFACE_LIST_MAX
  NODE_DEVICE_LIST_MAX: 65536, // REMOTE_NODE_DEVICE_LIST_MAX
  NODE_DEVICE_CAPS_LIST_MAX: 65536, // REMOTE_NODE_DEVICE_CAPS_LIST_MAX
  NODE_CPU_STATS_MAX: 16, // REMOTE_NODE_CPU_STATS_MAX and REMOTE_NODE_MEMORY_STATS_MAX
  CPUMAP_MAX: 2048, // REMOTE_CPUMAP_MAX
  CONNECT_CPU_MODELS_MAX: 8192, // REMOTE_CONNECT_CPU_MODELS_MAX
  NODE_MAX_CELLS: 1024, // REMOTE_NODE_MAX_CELLS
} as const;

const str = nonnullString();

// remote_nonnull_interface { name; mac }, remote_nonnull_node_device { name }.
export interface RemoteInterface {
  name: string;
  mac: string;
}
export const ifaceCodec = struct<RemoteInterface>(['name', str], ['mac', str]);
export interface RemoteNodeDevice {
  name: string;
}
export const nodeDevCodec = struct<RemoteNodeDevice>(['name', str]);
const optNodeDev: Codec<RemoteNodeDevice | null> = {
  encode: (w, v) => void w.optional(v, nodeDevCodec.encode),
  decode: (r) => r.optional(nodeDevCodec.decode),
};
const opaqueMax = (max: number): Codec<Buffer> => ({ encode: (w, v) => void w.opaque(v, max), decode: (r) => Buffer.from(r.opaque(max, 'opaque')) });

const iface = struct<{ iface: RemoteInterface }>(['iface', ifaceCodec]);
const ifaceFlags = struct<{ iface: RemoteInterface; flags: number }>(['iface', ifaceCodec], ['flags', uint]);
const flagsOnly = struct<{ flags: number }>(['flags', uint]);
const devName = struct<{ name: string }>(['name', str]);
const retIface = struct<{ iface: RemoteInterface }>(['iface', ifaceCodec]);
const retDev = struct<{ dev: RemoteNodeDevice }>(['dev', nodeDevCodec]);
const names = (max: number) => struct<{ names: string[] }>(['names', array(max, str)]);

const SEARCH_IFACES = { acl: acl('connect:search_interfaces'), aclFilter: 'interface:getattr' } as const;
const SEARCH_DEVS = { acl: acl('connect:search_node_devices'), aclFilter: 'node_device:getattr' } as const;

export const PH = {
  // ---------- node devices ----------
  NODE_NUM_OF_DEVICES: defineProc({
    proc: 111,
    name: 'nodeNumOfDevices',
    cls: 'read',
    ...SEARCH_DEVS,
    args: struct<{ cap: string | null; flags: number }>(['cap', optString('cap')], ['flags', uint]),
    ret: retInt('num'),
  }),
  NODE_LIST_DEVICES: defineProc({
    proc: 112,
    name: 'nodeListDevices',
    cls: 'read',
    ...SEARCH_DEVS,
    args: struct<{ cap: string | null; maxnames: number; flags: number }>(['cap', optString('cap')], ['maxnames', int], ['flags', uint]),
    ret: names(HostProcLimits.NODE_DEVICE_LIST_MAX),
  }),
  NODE_DEVICE_LOOKUP_BY_NAME: defineProc({
    proc: 113,
    name: 'nodeDeviceLookupByName',
    cls: 'read',
    acl: acl('node_device:getattr'),
    args: devName,
    ret: retDev,
  }),
  NODE_DEVICE_GET_XML_DESC: defineProc({
    proc: 114,
    name: 'nodeDeviceGetXmlDesc',
    cls: 'read',
    acl: acl('node_device:read'),
    args: struct<{ name: string; flags: number }>(['name', str], ['flags', uint]),
    ret: struct<{ xml: string }>(['xml', str]),
  }),
  NODE_DEVICE_GET_PARENT: defineProc({
    proc: 115,
    name: 'nodeDeviceGetParent',
    cls: 'read',
    acl: acl('node_device:read'),
    args: devName,
    ret: struct<{ parentName: string | null }>(['parentName', optString('parentName')]),
  }),
  NODE_DEVICE_NUM_OF_CAPS: defineProc({ proc: 116, name: 'nodeDeviceNumOfCaps', cls: 'read', acl: acl('node_device:read'), args: devName, ret: retInt('num') }),
  NODE_DEVICE_LIST_CAPS: defineProc({
    proc: 117,
    name: 'nodeDeviceListCaps',
    cls: 'read',
    acl: acl('node_device:read'),
    args: struct<{ name: string; maxnames: number }>(['name', str], ['maxnames', int]),
    ret: names(HostProcLimits.NODE_DEVICE_CAPS_LIST_MAX),
  }),
  NODE_DEVICE_CREATE_XML: defineProc({
    proc: 123,
    name: 'nodeDeviceCreateXml',
    cls: 'write',
    acl: acl('node_device:write', 'node_device:start'),
    args: struct<{ xml: string; flags: number }>(['xml', str], ['flags', uint]),
    ret: retDev,
  }),
  NODE_DEVICE_DESTROY: defineProc({ proc: 124, name: 'nodeDeviceDestroy', cls: 'write', acl: acl('node_device:stop'), args: devName, ret: XdrVoid }),
  CONNECT_LIST_ALL_NODE_DEVICES: defineProc({
    proc: 285,
    name: 'connectListAllNodeDevices',
    cls: 'read',
    ...SEARCH_DEVS,
    args: struct<{ needResults: number; flags: number }>(['needResults', int], ['flags', uint]),
    ret: struct<{ devices: RemoteNodeDevice[]; ret: number }>(['devices', array(HostProcLimits.NODE_DEVICE_LIST_MAX, nodeDevCodec)], ['ret', uint]),
  }),
  CONNECT_NODE_DEVICE_EVENT_REGISTER_ANY: defineProc({
    proc: 374,
    name: 'connectNodeDeviceEventRegisterAny',
    cls: 'session',
    ...SEARCH_DEVS,
    args: struct<{ eventID: number; dev: RemoteNodeDevice | null }>(['eventID', int], ['dev', optNodeDev]),
    ret: retInt('callbackID'),
  }),
  CONNECT_NODE_DEVICE_EVENT_DEREGISTER_ANY: defineProc({
    proc: 375,
    name: 'connectNodeDeviceEventDeregisterAny',
    cls: 'session',
    acl: acl('connect:read'),
    args: struct<{ callbackID: number }>(['callbackID', int]),
    ret: XdrVoid,
  }),
  NODE_DEVICE_EVENT_LIFECYCLE: defineProc({
    proc: 376,
    name: 'nodeDeviceEventLifecycle',
    cls: 'session',
    acl: [],
    message: true,
    args: XdrVoid,
    ret: struct<{ callbackID: number; dev: RemoteNodeDevice; event: number; detail: number }>(
      ['callbackID', int],
      ['dev', nodeDevCodec],
      ['event', int],
      ['detail', int],
    ),
  }),
  NODE_DEVICE_EVENT_UPDATE: defineProc({
    proc: 377,
    name: 'nodeDeviceEventUpdate',
    cls: 'session',
    acl: [],
    message: true,
    args: XdrVoid,
    ret: struct<{ callbackID: number; dev: RemoteNodeDevice }>(['callbackID', int], ['dev', nodeDevCodec]),
  }),

  // ---------- interfaces ----------
  CONNECT_NUM_OF_INTERFACES: defineProc({ proc: 126, name: 'connectNumOfInterfaces', cls: 'read', ...SEARCH_IFACES, args: XdrVoid, ret: retInt('num') }),
  CONNECT_LIST_INTERFACES: defineProc({
    proc: 127,
    name: 'connectListInterfaces',
    cls: 'read',
    ...SEARCH_IFACES,
    args: struct<{ maxnames: number }>(['maxnames', int]),
    ret: names(HostProcLimits.INTERFACE_LIST_MAX),
  }),
  INTERFACE_LOOKUP_BY_NAME: defineProc({
    proc: 128,
    name: 'interfaceLookupByName',
    cls: 'read',
    acl: acl('interface:getattr'),
    args: struct<{ name: string }>(['name', str]),
    ret: retIface,
  }),
  INTERFACE_LOOKUP_BY_MAC_STRING: defineProc({
    proc: 129,
    name: 'interfaceLookupByMacString',
    cls: 'read',
    acl: acl('interface:getattr'),
    args: struct<{ mac: string }>(['mac', str]),
    ret: retIface,
  }),
  INTERFACE_GET_XML_DESC: defineProc({
    proc: 130,
    name: 'interfaceGetXmlDesc',
    cls: 'read',
    acl: acl('interface:read'),
    args: ifaceFlags,
    ret: struct<{ xml: string }>(['xml', str]),
  }),
  INTERFACE_DEFINE_XML: defineProc({
    proc: 131,
    name: 'interfaceDefineXml',
    cls: 'write',
    acl: acl('interface:write', 'interface:save'),
    args: struct<{ xml: string; flags: number }>(['xml', str], ['flags', uint]),
    ret: retIface,
  }),
  INTERFACE_UNDEFINE: defineProc({ proc: 132, name: 'interfaceUndefine', cls: 'write', acl: acl('interface:delete'), args: iface, ret: XdrVoid }),
  INTERFACE_CREATE: defineProc({ proc: 133, name: 'interfaceCreate', cls: 'write', acl: acl('interface:start'), args: ifaceFlags, ret: XdrVoid }),
  INTERFACE_DESTROY: defineProc({ proc: 134, name: 'interfaceDestroy', cls: 'write', acl: acl('interface:stop'), args: ifaceFlags, ret: XdrVoid }),
  CONNECT_NUM_OF_DEFINED_INTERFACES: defineProc({
    proc: 137,
    name: 'connectNumOfDefinedInterfaces',
    cls: 'read',
    ...SEARCH_IFACES,
    args: XdrVoid,
    ret: retInt('num'),
  }),
  CONNECT_LIST_DEFINED_INTERFACES: defineProc({
    proc: 138,
    name: 'connectListDefinedInterfaces',
    cls: 'read',
    ...SEARCH_IFACES,
    args: struct<{ maxnames: number }>(['maxnames', int]),
    ret: names(HostProcLimits.INTERFACE_LIST_MAX),
  }),
  INTERFACE_IS_ACTIVE: defineProc({ proc: 156, name: 'interfaceIsActive', cls: 'read', acl: acl('interface:read'), args: iface, ret: retInt('active') }),
  INTERFACE_CHANGE_BEGIN: defineProc({
    proc: 220,
    name: 'interfaceChangeBegin',
    cls: 'write',
    acl: acl('connect:interface_transaction'),
    args: flagsOnly,
    ret: XdrVoid,
  }),
  INTERFACE_CHANGE_COMMIT: defineProc({
    proc: 221,
    name: 'interfaceChangeCommit',
    cls: 'write',
    acl: acl('connect:interface_transaction'),
    args: flagsOnly,
    ret: XdrVoid,
  }),
  INTERFACE_CHANGE_ROLLBACK: defineProc({
    proc: 222,
    name: 'interfaceChangeRollback',
    cls: 'write',
    acl: acl('connect:interface_transaction'),
    args: flagsOnly,
    ret: XdrVoid,
  }),
  CONNECT_LIST_ALL_INTERFACES: defineProc({
    proc: 284,
    name: 'connectListAllInterfaces',
    cls: 'read',
    ...SEARCH_IFACES,
    args: struct<{ needResults: number; flags: number }>(['needResults', int], ['flags', uint]),
    ret: struct<{ ifaces: RemoteInterface[]; ret: number }>(['ifaces', array(HostProcLimits.INTERFACE_LIST_MAX, ifaceCodec)], ['ret', uint]),
  }),

  // ---------- host facts (virHypervisorDriver entries of the test driver) ----------
  CONNECT_GET_SYSINFO: defineProc({
    proc: 203,
    name: 'connectGetSysinfo',
    cls: 'read',
    acl: acl('connect:read'),
    args: flagsOnly,
    ret: struct<{ sysinfo: string }>(['sysinfo', str]),
  }),
  NODE_GET_CPU_STATS: defineProc({
    proc: 227,
    name: 'nodeGetCpuStats',
    cls: 'read',
    acl: acl('connect:read'),
    args: struct<{ cpuNum: number; nparams: number; flags: number }>(['cpuNum', int], ['nparams', int], ['flags', uint]),
    ret: struct<{ params: { field: string; value: bigint }[]; nparams: number }>(
      ['params', array(HostProcLimits.NODE_CPU_STATS_MAX, struct<{ field: string; value: bigint }>(['field', str], ['value', uhyper]))],
      ['nparams', int],
    ),
  }),
  NODE_GET_CPU_MAP: defineProc({
    proc: 293,
    name: 'nodeGetCpuMap',
    cls: 'read',
    acl: acl('connect:read'),
    args: struct<{ needMap: number; needOnline: number; flags: number }>(['needMap', int], ['needOnline', int], ['flags', uint]),
    ret: struct<{ cpumap: Buffer; online: number; ret: number }>(['cpumap', opaqueMax(HostProcLimits.CPUMAP_MAX)], ['online', uint], ['ret', int]),
  }),
  CONNECT_GET_CPU_MODEL_NAMES: defineProc({
    proc: 312,
    name: 'connectGetCpuModelNames',
    cls: 'read',
    acl: acl('connect:read'),
    args: struct<{ arch: string; needResults: number; flags: number }>(['arch', str], ['needResults', int], ['flags', uint]),
    ret: struct<{ models: string[]; ret: number }>(['models', array(HostProcLimits.CONNECT_CPU_MODELS_MAX, str)], ['ret', int]),
  }),
  NODE_GET_FREE_PAGES: defineProc({
    proc: 340,
    name: 'nodeGetFreePages',
    cls: 'read',
    acl: acl('connect:read'),
    args: struct<{ pages: number[]; startCell: number; cellCount: number; flags: number }>(
      ['pages', array(HostProcLimits.NODE_MAX_CELLS, uint)],
      ['startCell', int],
      ['cellCount', uint],
      ['flags', uint],
    ),
    ret: struct<{ counts: bigint[] }>(['counts', array(HostProcLimits.NODE_MAX_CELLS, uhyper)]),
  }),

  // Not in the test driver's table: libvirtd answers "not supported", and so do we (virsh nodememstats then prints what
  // it prints against test:///default).
  NODE_GET_MEMORY_STATS: defineProc({
    proc: 228,
    name: 'nodeGetMemoryStats',
    cls: 'read',
    acl: acl('connect:read'),
    args: struct<{ nparams: number; cellNum: number; flags: number }>(['nparams', int], ['cellNum', int], ['flags', uint]),
    ret: struct<{ params: { field: string; value: bigint }[]; nparams: number }>(
      ['params', array(HostProcLimits.NODE_CPU_STATS_MAX, struct<{ field: string; value: bigint }>(['field', str], ['value', uhyper]))],
      ['nparams', int],
    ),
  }),
} as const;
