// SPDX-License-Identifier: Apache-2.0
// REMOTE procedures of networks (virNetworkDriver): lookup, list, define, create, lifecycle, XML, autostart, events, as data (libvirt 9.0 remote_protocol.x), pure.
import { type Codec, XdrVoid, int, nonnullString, struct, uint, uuid } from '../types';
import { readUuid, writeUuid } from '../types';
import { Limits } from '../constants';
import { acl, array, defineProc, retInt } from './table';

export const NETWORK_LIST_MAX = 16384; // REMOTE_NETWORK_LIST_MAX

// remote_nonnull_network: { remote_nonnull_string name; remote_uuid uuid }
export interface RemoteNetwork {
  name: string;
  uuid: Buffer;
}

export const networkCodec: Codec<RemoteNetwork> = {
  encode(w, n) {
    w.string(n.name, Limits.STRING_MAX);
    writeUuid(w, n.uuid);
  },
  decode(r) {
    return { name: r.string(Limits.STRING_MAX, 'network.name'), uuid: readUuid(r) };
  },
};

// remote_network: remote_nonnull_network * (NULL = every network)
export const optNetworkCodec: Codec<RemoteNetwork | null> = {
  encode: (w, v) => void w.optional(v, networkCodec.encode),
  decode: (r) => r.optional(networkCodec.decode, 'network'),
};

const str = nonnullString();
const net = struct<{ net: RemoteNetwork }>(['net', networkCodec]);
const retNet = net;
const xmlArgs = struct<{ xml: string }>(['xml', str]);
const xmlFlagsArgs = struct<{ xml: string; flags: number }>(['xml', str], ['flags', uint]);
const names = struct<{ names: string[] }>(['names', array(NETWORK_LIST_MAX, str)]);

// VIR_CONNECT_LIST_NETWORKS_* (libvirt-network.h)
export const NetworkListFlags = {
  INACTIVE: 1,
  ACTIVE: 2,
  PERSISTENT: 4,
  TRANSIENT: 8,
  AUTOSTART: 16,
  NO_AUTOSTART: 32,
} as const;

// virNetworkEventLifecycleType
export const NetworkEvent = { DEFINED: 0, UNDEFINED: 1, STARTED: 2, STOPPED: 3 } as const;
export const NetworkEventId = { LIFECYCLE: 0, LAST: 1 } as const; // VIR_NETWORK_EVENT_ID_LAST in 9.0
export const NETWORK_XML_INACTIVE = 1; // VIR_NETWORK_XML_INACTIVE
export const NETWORK_UPDATE_AFFECT_LIVE = 1;
export const NETWORK_UPDATE_AFFECT_CONFIG = 2;

export const PN = {
  CONNECT_LIST_DEFINED_NETWORKS: defineProc({
    proc: 36,
    name: 'connectListDefinedNetworks',
    cls: 'read',
    acl: acl('connect:search_networks'),
    aclFilter: 'network:getattr',
    args: struct<{ maxnames: number }>(['maxnames', int]),
    ret: names,
  }),
  CONNECT_LIST_NETWORKS: defineProc({
    proc: 38,
    name: 'connectListNetworks',
    cls: 'read',
    acl: acl('connect:search_networks'),
    aclFilter: 'network:getattr',
    args: struct<{ maxnames: number }>(['maxnames', int]),
    ret: names,
  }),
  NETWORK_CREATE: defineProc({ proc: 39, name: 'networkCreate', cls: 'write', acl: acl('network:start'), args: net, ret: XdrVoid }),
  NETWORK_CREATE_XML: defineProc({
    proc: 40,
    name: 'networkCreateXml',
    cls: 'write',
    acl: acl('network:write', 'network:start'),
    args: xmlArgs,
    ret: retNet,
  }),
  NETWORK_DEFINE_XML: defineProc({
    proc: 41,
    name: 'networkDefineXml',
    cls: 'write',
    acl: acl('network:write', 'network:save'),
    args: xmlArgs,
    ret: retNet,
  }),
  NETWORK_DESTROY: defineProc({ proc: 42, name: 'networkDestroy', cls: 'write', acl: acl('network:stop'), args: net, ret: XdrVoid }),
  NETWORK_GET_XML_DESC: defineProc({
    proc: 43,
    name: 'networkGetXmlDesc',
    cls: 'read',
    acl: acl('network:read'),
    args: struct<{ net: RemoteNetwork; flags: number }>(['net', networkCodec], ['flags', uint]),
    ret: struct<{ xml: string }>(['xml', str]),
  }),
  NETWORK_GET_AUTOSTART: defineProc({ proc: 44, name: 'networkGetAutostart', cls: 'read', acl: acl('network:read'), args: net, ret: retInt('autostart') }),
  NETWORK_GET_BRIDGE_NAME: defineProc({
    proc: 45,
    name: 'networkGetBridgeName',
    cls: 'read',
    acl: acl('network:read'),
    args: net,
    ret: struct<{ name: string }>(['name', str]),
  }),
  NETWORK_LOOKUP_BY_NAME: defineProc({
    proc: 46,
    name: 'networkLookupByName',
    cls: 'read',
    acl: acl('network:getattr'),
    args: struct<{ name: string }>(['name', str]),
    ret: retNet,
  }),
  NETWORK_LOOKUP_BY_UUID: defineProc({
    proc: 47,
    name: 'networkLookupByUuid',
    cls: 'read',
    acl: acl('network:getattr'),
    args: struct<{ uuid: Buffer }>(['uuid', uuid]),
    ret: retNet,
  }),
  NETWORK_SET_AUTOSTART: defineProc({
    proc: 48,
    name: 'networkSetAutostart',
    cls: 'write',
    acl: acl('network:write'),
    args: struct<{ net: RemoteNetwork; autostart: number }>(['net', networkCodec], ['autostart', int]),
    ret: XdrVoid,
  }),
  NETWORK_UNDEFINE: defineProc({ proc: 49, name: 'networkUndefine', cls: 'write', acl: acl('network:delete'), args: net, ret: XdrVoid }),
  CONNECT_NUM_OF_DEFINED_NETWORKS: defineProc({
    proc: 50,
    name: 'connectNumOfDefinedNetworks',
    cls: 'read',
    acl: acl('connect:search_networks'),
    aclFilter: 'network:getattr',
    args: XdrVoid,
    ret: retInt('num'),
  }),
  CONNECT_NUM_OF_NETWORKS: defineProc({
    proc: 52,
    name: 'connectNumOfNetworks',
    cls: 'read',
    acl: acl('connect:search_networks'),
    aclFilter: 'network:getattr',
    args: XdrVoid,
    ret: retInt('num'),
  }),
  NETWORK_IS_ACTIVE: defineProc({ proc: 152, name: 'networkIsActive', cls: 'read', acl: acl('network:read'), args: net, ret: retInt('active') }),
  NETWORK_IS_PERSISTENT: defineProc({ proc: 153, name: 'networkIsPersistent', cls: 'read', acl: acl('network:read'), args: net, ret: retInt('persistent') }),
  CONNECT_LIST_ALL_NETWORKS: defineProc({
    proc: 283,
    name: 'connectListAllNetworks',
    cls: 'read',
    acl: acl('connect:search_networks'),
    aclFilter: 'network:getattr',
    args: struct<{ needResults: number; flags: number }>(['needResults', int], ['flags', uint]),
    ret: struct<{ nets: RemoteNetwork[]; ret: number }>(['nets', array(NETWORK_LIST_MAX, networkCodec)], ['ret', uint]),
  }),
  NETWORK_UPDATE: defineProc({
    proc: 291,
    name: 'networkUpdate',
    cls: 'write',
    acl: acl(
      'network:write',
      { perm: 'network:save', unlessFlags: NETWORK_UPDATE_AFFECT_CONFIG | NETWORK_UPDATE_AFFECT_LIVE },
      { perm: 'network:save', whenFlags: NETWORK_UPDATE_AFFECT_CONFIG },
    ),
    args: struct<{ net: RemoteNetwork; command: number; section: number; parentIndex: number; xml: string; flags: number }>(
      ['net', networkCodec],
      ['command', uint],
      ['section', uint],
      ['parentIndex', int],
      ['xml', str],
      ['flags', uint],
    ),
    ret: XdrVoid,
  }),
  CONNECT_NETWORK_EVENT_REGISTER_ANY: defineProc({
    proc: 313,
    name: 'connectNetworkEventRegisterAny',
    cls: 'session',
    acl: acl('connect:search_networks'),
    aclFilter: 'network:getattr',
    args: struct<{ eventID: number; net: RemoteNetwork | null }>(['eventID', int], ['net', optNetworkCodec]),
    ret: retInt('callbackID'),
  }),
  CONNECT_NETWORK_EVENT_DEREGISTER_ANY: defineProc({
    proc: 314,
    name: 'connectNetworkEventDeregisterAny',
    cls: 'session',
    acl: acl('connect:read'),
    args: struct<{ callbackID: number }>(['callbackID', int]),
    ret: XdrVoid,
  }),
  NETWORK_EVENT_LIFECYCLE: defineProc({
    proc: 315,
    name: 'networkEventLifecycle',
    cls: 'session',
    acl: [],
    message: true,
    args: XdrVoid,
    ret: struct<{ callbackID: number; net: RemoteNetwork; event: number; detail: number }>(
      ['callbackID', int],
      ['net', networkCodec],
      ['event', int],
      ['detail', int],
    ),
  }),
  NETWORK_DEFINE_XML_FLAGS: defineProc({
    proc: 432,
    name: 'networkDefineXmlFlags',
    cls: 'write',
    acl: acl('network:write', 'network:save'),
    args: xmlFlagsArgs,
    ret: retNet,
  }),
  NETWORK_CREATE_XML_FLAGS: defineProc({
    proc: 437,
    name: 'networkCreateXmlFlags',
    cls: 'write',
    acl: acl('network:write', 'network:start'),
    args: xmlFlagsArgs,
    ret: retNet,
  }),
} as const;
