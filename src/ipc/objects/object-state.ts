// SPDX-License-Identifier: Apache-2.0
// The committed state of networks, pools, volumes, interfaces and node devices as the helper's subscription stream
// carries it (pure): one object's new record, or one object's removal. The front end's ObjectMirror answers reads from
// them. The records are the ones the read actions answer, so a mirrored read and a helper read cannot differ.
import { VG_ERR_IPC_VALIDATION } from '../../common/errors';
import { type XdrReader, XdrWriter } from '../../common/xdr';
import type { Codec } from '../shared';
import { type IfaceSummary, type NodeDevDef, ifaceSummaryCodec, nodeDevDefCodec } from './host-objects';
import { type NetworkSummary, networkSummaryCodec } from './network';
import { type PoolRecord, type VolumeRecord, poolRecordCodec, volumeRecordCodec } from './storage';

export const OBJECT_STATE_TYPES = ['network', 'pool', 'volume', 'iface', 'nodedev'] as const;
export type ObjectStateType = (typeof OBJECT_STATE_TYPES)[number];

export type ObjectState =
  | { type: 'network'; network: NetworkSummary }
  | { type: 'pool'; pool: PoolRecord }
  | { type: 'volume'; vol: VolumeRecord }
  | { type: 'iface'; iface: IfaceSummary }
  | { type: 'nodedev'; dev: NodeDevDef };

export type ObjectStateChange = { set: ObjectState; removed?: undefined } | { removed: { type: ObjectStateType; key: string }; set?: undefined };

const KEY_MAX = 512; // a volume's key: pool uuid (32) + '/' + name (<= 128 bytes)

// What identifies an object within its type: networks and pools by uuid, volumes by pool uuid and name, interfaces and
// node devices by name.
export function objectStateKey(s: ObjectState): string {
  switch (s.type) {
    case 'network':
      return s.network.uuid.toString('hex');
    case 'pool':
      return s.pool.config.uuid.toString('hex');
    case 'volume':
      return `${s.vol.poolUuid.toString('hex')}/${s.vol.config.name}`;
    case 'iface':
      return s.iface.name;
    case 'nodedev':
      return s.dev.name;
  }
}

function encodeState(w: XdrWriter, s: ObjectState): void {
  w.u32(OBJECT_STATE_TYPES.indexOf(s.type));
  if (s.type === 'network') networkSummaryCodec.encode(w, s.network);
  else if (s.type === 'pool') poolRecordCodec.encode(w, s.pool);
  else if (s.type === 'volume') volumeRecordCodec.encode(w, s.vol);
  else if (s.type === 'iface') ifaceSummaryCodec.encode(w, s.iface);
  else nodeDevDefCodec.encode(w, s.dev);
}

function readType(r: XdrReader): ObjectStateType {
  const t = r.u32('objectState.type');
  const type = OBJECT_STATE_TYPES[t];
  if (type === undefined) throw VG_ERR_IPC_VALIDATION('objectState.type', `unknown type ${t}`);
  return type;
}

function decodeState(r: XdrReader): ObjectState {
  const type = readType(r);
  if (type === 'network') return { type, network: networkSummaryCodec.decode(r) };
  if (type === 'pool') return { type, pool: poolRecordCodec.decode(r) };
  if (type === 'volume') return { type, vol: volumeRecordCodec.decode(r) };
  if (type === 'iface') return { type, iface: ifaceSummaryCodec.decode(r) };
  return { type, dev: nodeDevDefCodec.decode(r) };
}

// u32 0 + state | u32 1 + type + key
export const objectStateChangeCodec: Codec<ObjectStateChange> = {
  encode(w, c) {
    if (c.set) {
      w.u32(0);
      encodeState(w, c.set);
    } else {
      w.u32(1).u32(OBJECT_STATE_TYPES.indexOf(c.removed.type)).string(c.removed.key, KEY_MAX);
    }
  },
  decode(r) {
    const tag = r.u32('objectState.tag');
    if (tag === 0) return { set: decodeState(r) };
    if (tag !== 1) throw VG_ERR_IPC_VALIDATION('objectState.tag', `unknown tag ${tag}`);
    const type = readType(r);
    const key = r.string(KEY_MAX, 'objectState.key');
    if (!/^[\x20-\x7e]{1,512}$/.test(key)) throw VG_ERR_IPC_VALIDATION('objectState.key', 'printable, 1-512 characters');
    return { removed: { type, key } };
  },
};

// One object's record as bytes: the helper compares them to send only what changed.
export function encodeObjectState(s: ObjectState): Buffer {
  const w = new XdrWriter(256);
  encodeState(w, s);
  return w.finish();
}
