// SPDX-License-Identifier: Apache-2.0
// REMOTE procedures of storage pools and volumes (virStorageDriver), as data (libvirt 9.0 remote_protocol.x), pure.
// Served: every entry of the test driver's virStorageDriver table, plus vol wipe (165), resize (260) and the streams
// vol upload 208 / download 209 (not in libvirt's test driver; its storage driver's rules). Left out: wipe pattern 259,
// get info flags 378, lookup by target path 391, pool capabilities 403 (none of them in the test driver's table).
import type { Codec } from '../types';
import { XdrVoid, int, nonnullString, optString, struct, uhyper, uint, uuid } from '../types';
import { acl, array, defineProc, retInt } from './table';

export const STORAGE_LIST_MAX = 16384; // REMOTE_STORAGE_POOL_LIST_MAX = REMOTE_STORAGE_VOL_LIST_MAX

// remote_nonnull_storage_pool: { remote_nonnull_string name; remote_uuid uuid }
export interface RemotePool {
  name: string;
  uuid: Buffer;
}
// remote_nonnull_storage_vol: { remote_nonnull_string pool; remote_nonnull_string name; remote_nonnull_string key }
export interface RemoteVol {
  pool: string;
  name: string;
  key: string;
}

const str = nonnullString();
export const poolCodec: Codec<RemotePool> = struct<RemotePool>(['name', nonnullString('pool.name')], ['uuid', uuid]);
export const volCodec: Codec<RemoteVol> = struct<RemoteVol>(
  ['pool', nonnullString('vol.pool')],
  ['name', nonnullString('vol.name')],
  ['key', nonnullString('vol.key')],
);
// remote_storage_pool: a pointer to a pool (the event filter of 368).
const optPoolCodec: Codec<RemotePool | null> = {
  encode: (w, v) => void w.optional(v, poolCodec.encode),
  decode: (r) => r.optional(poolCodec.decode, 'pool'),
};
// rpcgen's `char` travels as a signed word.
const char: Codec<number> = int;

const poolArg = struct<{ pool: RemotePool }>(['pool', poolCodec]);
const poolFlags = struct<{ pool: RemotePool; flags: number }>(['pool', poolCodec], ['flags', uint]);
const volArg = struct<{ vol: RemoteVol }>(['vol', volCodec]);
const volFlags = struct<{ vol: RemoteVol; flags: number }>(['vol', volCodec], ['flags', uint]);
const retPool = struct<{ pool: RemotePool }>(['pool', poolCodec]);
const retVol = struct<{ vol: RemoteVol }>(['vol', volCodec]);
const names = struct<{ names: string[] }>(['names', array(STORAGE_LIST_MAX, str)]);
const maxnames = struct<{ maxnames: number }>(['maxnames', int]);
const xmlFlags = struct<{ xml: string; flags: number }>(['xml', str], ['flags', uint]);
const retXml = struct<{ xml: string }>(['xml', str]);

// VIR_CONNECT_LIST_STORAGE_POOLS_* (libvirt-storage.h).
export const ListPoolsFlags = {
  INACTIVE: 1,
  ACTIVE: 2,
  PERSISTENT: 4,
  TRANSIENT: 8,
  AUTOSTART: 16,
  NO_AUTOSTART: 32,
  DIR: 64,
  FS: 128,
  NETFS: 256,
  ALL: (1 << 20) - 1, // VIR_CONNECT_LIST_STORAGE_POOLS_FILTERS_ALL: every bit up to ISCSI_DIRECT
} as const;
// VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM = VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM = 1 << 0.
export const VolStreamFlags = { SPARSE: 1 } as const;
export interface VolRange {
  vol: RemoteVol;
  offset: bigint;
  length: bigint;
  flags: number;
}
export const PoolEventId = { LIFECYCLE: 0, REFRESH: 1, LAST: 2 } as const;
export const VolResizeFlags = { ALLOCATE: 1, DELTA: 2, SHRINK: 4 } as const;
export const PoolState = { INACTIVE: 0, BUILDING: 1, RUNNING: 2, DEGRADED: 3, INACCESSIBLE: 4 } as const;

export const PS = {
  CONNECT_NUM_OF_STORAGE_POOLS: defineProc({
    proc: 71,
    name: 'connectNumOfStoragePools',
    cls: 'read',
    acl: acl('connect:search_storage_pools'),
    aclFilter: 'storage_pool:getattr',
    args: XdrVoid,
    ret: retInt('num'),
  }),
  CONNECT_LIST_STORAGE_POOLS: defineProc({
    proc: 72,
    name: 'connectListStoragePools',
    cls: 'read',
    acl: acl('connect:search_storage_pools'),
    aclFilter: 'storage_pool:getattr',
    args: maxnames,
    ret: names,
  }),
  CONNECT_NUM_OF_DEFINED_STORAGE_POOLS: defineProc({
    proc: 73,
    name: 'connectNumOfDefinedStoragePools',
    cls: 'read',
    acl: acl('connect:search_storage_pools'),
    aclFilter: 'storage_pool:getattr',
    args: XdrVoid,
    ret: retInt('num'),
  }),
  CONNECT_LIST_DEFINED_STORAGE_POOLS: defineProc({
    proc: 74,
    name: 'connectListDefinedStoragePools',
    cls: 'read',
    acl: acl('connect:search_storage_pools'),
    aclFilter: 'storage_pool:getattr',
    args: maxnames,
    ret: names,
  }),
  // libvirt refuses it on read-only connections (virCheckReadOnlyGoto): a host probe, audited as a write.
  CONNECT_FIND_STORAGE_POOL_SOURCES: defineProc({
    proc: 75,
    name: 'connectFindStoragePoolSources',
    cls: 'write',
    acl: acl('connect:detect_storage_pools'),
    args: struct<{ type: string; srcSpec: string | null; flags: number }>(['type', str], ['srcSpec', optString('srcSpec')], ['flags', uint]),
    ret: retXml,
  }),
  STORAGE_POOL_CREATE_XML: defineProc({
    proc: 76,
    name: 'storagePoolCreateXml',
    cls: 'write',
    acl: acl('storage_pool:start', 'storage_pool:write'),
    args: xmlFlags,
    ret: retPool,
  }),
  STORAGE_POOL_DEFINE_XML: defineProc({
    proc: 77,
    name: 'storagePoolDefineXml',
    cls: 'write',
    acl: acl('storage_pool:write', 'storage_pool:save'),
    args: xmlFlags,
    ret: retPool,
  }),
  STORAGE_POOL_CREATE: defineProc({ proc: 78, name: 'storagePoolCreate', cls: 'write', acl: acl('storage_pool:start'), args: poolFlags, ret: XdrVoid }),
  STORAGE_POOL_BUILD: defineProc({ proc: 79, name: 'storagePoolBuild', cls: 'write', acl: acl('storage_pool:format'), args: poolFlags, ret: XdrVoid }),
  STORAGE_POOL_DESTROY: defineProc({ proc: 80, name: 'storagePoolDestroy', cls: 'write', acl: acl('storage_pool:stop'), args: poolArg, ret: XdrVoid }),
  STORAGE_POOL_DELETE: defineProc({ proc: 81, name: 'storagePoolDelete', cls: 'write', acl: acl('storage_pool:format'), args: poolFlags, ret: XdrVoid }),
  STORAGE_POOL_UNDEFINE: defineProc({ proc: 82, name: 'storagePoolUndefine', cls: 'write', acl: acl('storage_pool:delete'), args: poolArg, ret: XdrVoid }),
  STORAGE_POOL_REFRESH: defineProc({ proc: 83, name: 'storagePoolRefresh', cls: 'write', acl: acl('storage_pool:refresh'), args: poolFlags, ret: XdrVoid }),
  STORAGE_POOL_LOOKUP_BY_NAME: defineProc({
    proc: 84,
    name: 'storagePoolLookupByName',
    cls: 'read',
    acl: acl('storage_pool:getattr'),
    args: struct<{ name: string }>(['name', str]),
    ret: retPool,
  }),
  STORAGE_POOL_LOOKUP_BY_UUID: defineProc({
    proc: 85,
    name: 'storagePoolLookupByUuid',
    cls: 'read',
    acl: acl('storage_pool:getattr'),
    args: struct<{ uuid: Buffer }>(['uuid', uuid]),
    ret: retPool,
  }),
  STORAGE_POOL_LOOKUP_BY_VOLUME: defineProc({
    proc: 86,
    name: 'storagePoolLookupByVolume',
    cls: 'read',
    acl: acl('storage_pool:getattr'),
    args: volArg,
    ret: retPool,
  }),
  STORAGE_POOL_GET_INFO: defineProc({
    proc: 87,
    name: 'storagePoolGetInfo',
    cls: 'read',
    acl: acl('storage_pool:read'),
    args: poolArg,
    ret: struct<{ state: number; capacity: bigint; allocation: bigint; available: bigint }>(
      ['state', uint], // unsigned char: a full word
      ['capacity', uhyper],
      ['allocation', uhyper],
      ['available', uhyper],
    ),
  }),
  STORAGE_POOL_GET_XML_DESC: defineProc({
    proc: 88,
    name: 'storagePoolGetXmlDesc',
    cls: 'read',
    acl: acl('storage_pool:read'),
    args: poolFlags,
    ret: retXml,
  }),
  STORAGE_POOL_GET_AUTOSTART: defineProc({
    proc: 89,
    name: 'storagePoolGetAutostart',
    cls: 'read',
    acl: acl('storage_pool:read'),
    args: poolArg,
    ret: retInt('autostart'),
  }),
  STORAGE_POOL_SET_AUTOSTART: defineProc({
    proc: 90,
    name: 'storagePoolSetAutostart',
    cls: 'write',
    acl: acl('storage_pool:write'),
    args: struct<{ pool: RemotePool; autostart: number }>(['pool', poolCodec], ['autostart', int]),
    ret: XdrVoid,
  }),
  STORAGE_POOL_NUM_OF_VOLUMES: defineProc({
    proc: 91,
    name: 'storagePoolNumOfVolumes',
    cls: 'read',
    acl: acl('storage_pool:search_storage_vols'),
    aclFilter: 'storage_vol:getattr',
    args: poolArg,
    ret: retInt('num'),
  }),
  STORAGE_POOL_LIST_VOLUMES: defineProc({
    proc: 92,
    name: 'storagePoolListVolumes',
    cls: 'read',
    acl: acl('storage_pool:search_storage_vols'),
    aclFilter: 'storage_vol:getattr',
    args: struct<{ pool: RemotePool; maxnames: number }>(['pool', poolCodec], ['maxnames', int]),
    ret: names,
  }),
  STORAGE_VOL_CREATE_XML: defineProc({
    proc: 93,
    name: 'storageVolCreateXml',
    cls: 'write',
    acl: acl('storage_vol:create'),
    args: struct<{ pool: RemotePool; xml: string; flags: number }>(['pool', poolCodec], ['xml', str], ['flags', uint]),
    ret: retVol,
  }),
  STORAGE_VOL_DELETE: defineProc({ proc: 94, name: 'storageVolDelete', cls: 'write', acl: acl('storage_vol:delete'), args: volFlags, ret: XdrVoid }),
  STORAGE_VOL_LOOKUP_BY_NAME: defineProc({
    proc: 95,
    name: 'storageVolLookupByName',
    cls: 'read',
    acl: acl('storage_vol:getattr'),
    args: struct<{ pool: RemotePool; name: string }>(['pool', poolCodec], ['name', str]),
    ret: retVol,
  }),
  STORAGE_VOL_LOOKUP_BY_KEY: defineProc({
    proc: 96,
    name: 'storageVolLookupByKey',
    cls: 'read',
    acl: acl('storage_vol:getattr'),
    args: struct<{ key: string }>(['key', str]),
    ret: retVol,
  }),
  STORAGE_VOL_LOOKUP_BY_PATH: defineProc({
    proc: 97,
    name: 'storageVolLookupByPath',
    cls: 'read',
    acl: acl('storage_vol:getattr'),
    args: struct<{ path: string }>(['path', str]),
    ret: retVol,
  }),
  STORAGE_VOL_GET_INFO: defineProc({
    proc: 98,
    name: 'storageVolGetInfo',
    cls: 'read',
    acl: acl('storage_vol:read'),
    args: volArg,
    ret: struct<{ type: number; capacity: bigint; allocation: bigint }>(['type', char], ['capacity', uhyper], ['allocation', uhyper]),
  }),
  STORAGE_VOL_GET_XML_DESC: defineProc({
    proc: 99,
    name: 'storageVolGetXmlDesc',
    cls: 'read',
    acl: acl('storage_vol:read'),
    args: volFlags,
    ret: retXml,
  }),
  STORAGE_VOL_GET_PATH: defineProc({
    proc: 100,
    name: 'storageVolGetPath',
    cls: 'read',
    acl: acl('storage_vol:read'),
    args: volArg,
    ret: struct<{ name: string }>(['name', str]),
  }),
  STORAGE_VOL_CREATE_XML_FROM: defineProc({
    proc: 125,
    name: 'storageVolCreateXmlFrom',
    cls: 'write',
    acl: acl('storage_vol:create'),
    args: struct<{ pool: RemotePool; xml: string; clonevol: RemoteVol; flags: number }>(
      ['pool', poolCodec],
      ['xml', str],
      ['clonevol', volCodec],
      ['flags', uint],
    ),
    ret: retVol,
  }),
  STORAGE_POOL_IS_ACTIVE: defineProc({
    proc: 154,
    name: 'storagePoolIsActive',
    cls: 'read',
    acl: acl('storage_pool:read'),
    args: poolArg,
    ret: retInt('active'),
  }),
  STORAGE_POOL_IS_PERSISTENT: defineProc({
    proc: 155,
    name: 'storagePoolIsPersistent',
    cls: 'read',
    acl: acl('storage_pool:read'),
    args: poolArg,
    ret: retInt('persistent'),
  }),
  // @writestream, @sparseflag VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM; the bytes follow the reply as stream packets.
  STORAGE_VOL_UPLOAD: defineProc({
    proc: 208,
    name: 'storageVolUpload',
    cls: 'write',
    stream: 'write',
    acl: acl('storage_vol:data_write'),
    args: struct<VolRange>(['vol', volCodec], ['offset', uhyper], ['length', uhyper], ['flags', uint]),
    ret: XdrVoid,
  }),
  // @readstream, @sparseflag VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM. libvirt refuses it on a read-only connection.
  STORAGE_VOL_DOWNLOAD: defineProc({
    proc: 209,
    name: 'storageVolDownload',
    cls: 'read',
    refuseReadOnly: true,
    stream: 'read',
    acl: acl('storage_vol:data_read'),
    args: struct<VolRange>(['vol', volCodec], ['offset', uhyper], ['length', uhyper], ['flags', uint]),
    ret: XdrVoid,
  }),
  STORAGE_VOL_WIPE: defineProc({ proc: 165, name: 'storageVolWipe', cls: 'write', acl: acl('storage_vol:format'), args: volFlags, ret: XdrVoid }),
  STORAGE_VOL_RESIZE: defineProc({
    proc: 260,
    name: 'storageVolResize',
    cls: 'write',
    acl: acl('storage_vol:resize'),
    args: struct<{ vol: RemoteVol; capacity: bigint; flags: number }>(['vol', volCodec], ['capacity', uhyper], ['flags', uint]),
    ret: XdrVoid,
  }),
  CONNECT_LIST_ALL_STORAGE_POOLS: defineProc({
    proc: 281,
    name: 'connectListAllStoragePools',
    cls: 'read',
    acl: acl('connect:search_storage_pools'),
    aclFilter: 'storage_pool:getattr',
    args: struct<{ needResults: number; flags: number }>(['needResults', int], ['flags', uint]),
    ret: struct<{ pools: RemotePool[]; ret: number }>(['pools', array(STORAGE_LIST_MAX, poolCodec)], ['ret', uint]),
  }),
  STORAGE_POOL_LIST_ALL_VOLUMES: defineProc({
    proc: 282,
    name: 'storagePoolListAllVolumes',
    cls: 'read',
    acl: acl('storage_pool:search_storage_vols'),
    aclFilter: 'storage_vol:getattr',
    args: struct<{ pool: RemotePool; needResults: number; flags: number }>(['pool', poolCodec], ['needResults', int], ['flags', uint]),
    ret: struct<{ vols: RemoteVol[]; ret: number }>(['vols', array(STORAGE_LIST_MAX, volCodec)], ['ret', uint]),
  }),
  CONNECT_STORAGE_POOL_EVENT_REGISTER_ANY: defineProc({
    proc: 368,
    name: 'connectStoragePoolEventRegisterAny',
    cls: 'session',
    acl: acl('connect:search_storage_pools'),
    aclFilter: 'storage_pool:getattr',
    args: struct<{ eventID: number; pool: RemotePool | null }>(['eventID', int], ['pool', optPoolCodec]),
    ret: retInt('callbackID'),
  }),
  CONNECT_STORAGE_POOL_EVENT_DEREGISTER_ANY: defineProc({
    proc: 369,
    name: 'connectStoragePoolEventDeregisterAny',
    cls: 'session',
    acl: acl('connect:read'),
    args: struct<{ callbackID: number }>(['callbackID', int]),
    ret: XdrVoid,
  }),
  STORAGE_POOL_EVENT_LIFECYCLE: defineProc({
    proc: 370,
    name: 'storagePoolEventLifecycle',
    cls: 'session',
    acl: [],
    message: true,
    args: XdrVoid,
    ret: struct<{ callbackID: number; pool: RemotePool; event: number; detail: number }>(
      ['callbackID', int],
      ['pool', poolCodec],
      ['event', int],
      ['detail', int],
    ),
  }),
  STORAGE_POOL_EVENT_REFRESH: defineProc({
    proc: 373,
    name: 'storagePoolEventRefresh',
    cls: 'session',
    acl: [],
    message: true,
    args: XdrVoid,
    ret: struct<{ callbackID: number; pool: RemotePool }>(['callbackID', int], ['pool', poolCodec]),
  }),
} as const;
