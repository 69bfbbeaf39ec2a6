// SPDX-License-Identifier: Apache-2.0
// libvirt RPC message header (virNetMessageHeader), pure: decode, encode, and whole-message building.
//   u32 length | u32 prog | u32 vers | i32 proc | i32 type | u32 serial | i32 status | payload
import { VG_ERR_HEADER } from '../common/errors';
import { XdrReader, XdrWriter } from '../common/xdr';
import { Limits, MessageStatus, MessageType } from './constants';

export interface Header {
  prog: number;
  vers: number;
  proc: number;
  type: number;
  serial: number;
  status: number;
}

const TYPES = new Set<number>(Object.values(MessageType));
const STATUSES = new Set<number>(Object.values(MessageStatus));

// `frame` includes the length word; returns the header and a reader positioned at the payload.
export function decodeHeader(frame: Buffer): { header: Header; body: XdrReader } {
  const r = new XdrReader(frame, 4);
  const header: Header = {
    prog: r.u32('prog'),
    vers: r.u32('vers'),
    proc: r.i32('proc'),
    type: r.i32('type'),
    serial: r.u32('serial'),
    status: r.i32('status'),
  };
  if (!TYPES.has(header.type)) throw VG_ERR_HEADER(`unknown message type ${header.type}`);
  if (!STATUSES.has(header.status)) throw VG_ERR_HEADER(`unknown status ${header.status}`);
  return { header, body: r };
}

// Builds a whole frame; `writeBody` appends the payload.
export function encodeMessage(h: Header, writeBody?: (w: XdrWriter) => void, sizeHint = 128): Buffer {
  const w = new XdrWriter(sizeHint);
  const at = w.reserveU32();
  w.u32(h.prog).u32(h.vers).i32(h.proc).i32(h.type).u32(h.serial).i32(h.status);
  if (writeBody) writeBody(w);
  if (w.length > Limits.MESSAGE_MAX) throw VG_ERR_HEADER(`message of ${w.length} bytes exceeds ${Limits.MESSAGE_MAX}`);
  w.patchU32(at, w.length);
  return w.finish();
}
