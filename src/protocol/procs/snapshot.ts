// SPDX-License-Identifier: Apache-2.0
// REMOTE procedures of domain snapshots and checkpoints (virDomainSnapshot*, virDomainCheckpoint*), as data (libvirt
// 9.0 remote_protocol.x: numbers, structs, @acl), pure.
import { type Codec, type RemoteDomain, XdrVoid, domainCodec, int, nonnullString, struct, uint } from '../types';
import { acl, array, defineProc, retInt } from './table';

export const SNAPSHOT_LIST_MAX = 16384; // REMOTE_DOMAIN_SNAPSHOT_LIST_MAX
export const CHECKPOINT_LIST_MAX = 16384; // REMOTE_DOMAIN_CHECKPOINT_LIST_MAX

// remote_nonnull_domain_snapshot / remote_nonnull_domain_checkpoint: { remote_nonnull_string name; remote_nonnull_domain dom }
export interface RemoteMoment {
  name: string;
  dom: RemoteDomain;
}

const str = nonnullString();
export const momentRefCodec: Codec<RemoteMoment> = struct<RemoteMoment>(['name', str], ['dom', domainCodec]);

// VIR_DOMAIN_SNAPSHOT_* / VIR_DOMAIN_CHECKPOINT_* flags named in @acl lines
const SNAPSHOT_CREATE_QUIESCE = 64;
const SNAPSHOT_XML_SECURE = 1;
const CHECKPOINT_CREATE_QUIESCE = 2;
const CHECKPOINT_XML_SECURE = 1;

type Snap = { snap: RemoteMoment };
const snapFlags = struct<Snap & { flags: number }>(['snap', momentRefCodec], ['flags', uint]);
const retSnap = struct<Snap>(['snap', momentRefCodec]);
const domXml = struct<{ dom: RemoteDomain; xmlDesc: string; flags: number }>(['dom', domainCodec], ['xmlDesc', str], ['flags', uint]);
const domFlagsArgs = struct<{ dom: RemoteDomain; flags: number }>(['dom', domainCodec], ['flags', uint]);
const domNameFlags = struct<{ dom: RemoteDomain; name: string; flags: number }>(['dom', domainCodec], ['name', str], ['flags', uint]);
const retXml = struct<{ xml: string }>(['xml', str]);
const names = struct<{ names: string[] }>(['names', array(SNAPSHOT_LIST_MAX, str)]);
const snapList = struct<{ snapshots: RemoteMoment[]; ret: number }>(['snapshots', array(SNAPSHOT_LIST_MAX, momentRefCodec)], ['ret', int]);
type Ckp = { checkpoint: RemoteMoment };
const ckpFlags = struct<Ckp & { flags: number }>(['checkpoint', momentRefCodec], ['flags', uint]);
const retCkp = struct<Ckp>(['checkpoint', momentRefCodec]);
const ckpList = struct<{ checkpoints: RemoteMoment[]; ret: number }>(['checkpoints', array(CHECKPOINT_LIST_MAX, momentRefCodec)], ['ret', int]);

export const PS = {
  DOMAIN_SNAPSHOT_CREATE_XML: defineProc({
    proc: 185,
    name: 'domainSnapshotCreateXml',
    cls: 'write',
    acl: acl('domain:snapshot', { perm: 'domain:fs_freeze', whenFlags: SNAPSHOT_CREATE_QUIESCE }),
    args: domXml,
    ret: retSnap,
  }),
  DOMAIN_SNAPSHOT_GET_XML_DESC: defineProc({
    proc: 186,
    name: 'domainSnapshotGetXmlDesc',
    cls: 'read',
    acl: acl('domain:read', { perm: 'domain:read_secure', whenFlags: SNAPSHOT_XML_SECURE }),
    args: snapFlags,
    ret: retXml,
  }),
  DOMAIN_SNAPSHOT_NUM: defineProc({ proc: 187, name: 'domainSnapshotNum', cls: 'read', acl: acl('domain:read'), args: domFlagsArgs, ret: retInt('num') }),
  DOMAIN_SNAPSHOT_LIST_NAMES: defineProc({
    proc: 188,
    name: 'domainSnapshotListNames',
    cls: 'read',
    acl: acl('domain:read'),
    args: struct<{ dom: RemoteDomain; maxnames: number; flags: number }>(['dom', domainCodec], ['maxnames', int], ['flags', uint]),
    ret: names,
  }),
  DOMAIN_SNAPSHOT_LOOKUP_BY_NAME: defineProc({
    proc: 189,
    name: 'domainSnapshotLookupByName',
    cls: 'read',
    acl: acl('domain:read'),
    args: domNameFlags,
    ret: retSnap,
  }),
  DOMAIN_HAS_CURRENT_SNAPSHOT: defineProc({
    proc: 190,
    name: 'domainHasCurrentSnapshot',
    cls: 'read',
    acl: acl('domain:read'),
    args: domFlagsArgs,
    ret: retInt('result'),
  }),
  DOMAIN_SNAPSHOT_CURRENT: defineProc({ proc: 191, name: 'domainSnapshotCurrent', cls: 'read', acl: acl('domain:read'), args: domFlagsArgs, ret: retSnap }),
  DOMAIN_REVERT_TO_SNAPSHOT: defineProc({
    proc: 192,
    name: 'domainRevertToSnapshot',
    cls: 'write',
    acl: acl('domain:snapshot'),
    args: snapFlags,
    ret: XdrVoid,
  }),
  DOMAIN_SNAPSHOT_DELETE: defineProc({ proc: 193, name: 'domainSnapshotDelete', cls: 'write', acl: acl('domain:snapshot'), args: snapFlags, ret: XdrVoid }),
  DOMAIN_SNAPSHOT_GET_PARENT: defineProc({ proc: 244, name: 'domainSnapshotGetParent', cls: 'read', acl: acl('domain:read'), args: snapFlags, ret: retSnap }),
  DOMAIN_SNAPSHOT_NUM_CHILDREN: defineProc({
    proc: 246,
    name: 'domainSnapshotNumChildren',
    cls: 'read',
    acl: acl('domain:read'),
    args: snapFlags,
    ret: retInt('num'),
  }),
  DOMAIN_SNAPSHOT_LIST_CHILDREN_NAMES: defineProc({
    proc: 247,
    name: 'domainSnapshotListChildrenNames',
    cls: 'read',
    acl: acl('domain:read'),
    args: struct<Snap & { maxnames: number; flags: number }>(['snap', momentRefCodec], ['maxnames', int], ['flags', uint]),
    ret: names,
  }),
  DOMAIN_SNAPSHOT_IS_CURRENT: defineProc({
    proc: 271,
    name: 'domainSnapshotIsCurrent',
    cls: 'read',
    acl: acl('domain:read'),
    args: snapFlags,
    ret: retInt('current'),
  }),
  DOMAIN_SNAPSHOT_HAS_METADATA: defineProc({
    proc: 272,
    name: 'domainSnapshotHasMetadata',
    cls: 'read',
    acl: acl('domain:read'),
    args: snapFlags,
    ret: retInt('metadata'),
  }),
  DOMAIN_LIST_ALL_SNAPSHOTS: defineProc({
    proc: 274,
    name: 'domainListAllSnapshots',
    cls: 'read',
    acl: acl('domain:read'),
    args: struct<{ dom: RemoteDomain; needResults: number; flags: number }>(['dom', domainCodec], ['needResults', int], ['flags', uint]),
    ret: snapList,
  }),
  DOMAIN_SNAPSHOT_LIST_ALL_CHILDREN: defineProc({
    proc: 275,
    name: 'domainSnapshotListAllChildren',
    cls: 'read',
    acl: acl('domain:read'),
    args: struct<{ snapshot: RemoteMoment; needResults: number; flags: number }>(['snapshot', momentRefCodec], ['needResults', int], ['flags', uint]),
    ret: snapList,
  }),
  DOMAIN_CHECKPOINT_CREATE_XML: defineProc({
    proc: 411,
    name: 'domainCheckpointCreateXml',
    cls: 'write',
    acl: acl('domain:checkpoint', { perm: 'domain:fs_freeze', whenFlags: CHECKPOINT_CREATE_QUIESCE }),
    args: domXml,
    ret: retCkp,
  }),
  DOMAIN_CHECKPOINT_GET_XML_DESC: defineProc({
    proc: 412,
    name: 'domainCheckpointGetXmlDesc',
    cls: 'read',
    acl: acl('domain:read', { perm: 'domain:read_secure', whenFlags: CHECKPOINT_XML_SECURE }),
    args: ckpFlags,
    ret: retXml,
  }),
  DOMAIN_LIST_ALL_CHECKPOINTS: defineProc({
    proc: 413,
    name: 'domainListAllCheckpoints',
    cls: 'read',
    acl: acl('domain:read'),
    args: struct<{ dom: RemoteDomain; needResults: number; flags: number }>(['dom', domainCodec], ['needResults', int], ['flags', uint]),
    ret: ckpList,
  }),
  DOMAIN_CHECKPOINT_LIST_ALL_CHILDREN: defineProc({
    proc: 414,
    name: 'domainCheckpointListAllChildren',
    cls: 'read',
    acl: acl('domain:read'),
    args: struct<Ckp & { needResults: number; flags: number }>(['checkpoint', momentRefCodec], ['needResults', int], ['flags', uint]),
    ret: ckpList,
  }),
  DOMAIN_CHECKPOINT_LOOKUP_BY_NAME: defineProc({
    proc: 415,
    name: 'domainCheckpointLookupByName',
    cls: 'read',
    acl: acl('domain:read'),
    args: domNameFlags,
    ret: retCkp,
  }),
  DOMAIN_CHECKPOINT_GET_PARENT: defineProc({
    proc: 416,
    name: 'domainCheckpointGetParent',
    cls: 'read',
    acl: acl('domain:read'),
    args: ckpFlags,
    ret: struct<{ parent: RemoteMoment }>(['parent', momentRefCodec]),
  }),
  DOMAIN_CHECKPOINT_DELETE: defineProc({
    proc: 417,
    name: 'domainCheckpointDelete',
    cls: 'write',
    acl: acl('domain:checkpoint'),
    args: ckpFlags,
    ret: XdrVoid,
  }),
} as const;
