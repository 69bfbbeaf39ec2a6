// SPDX-License-Identifier: Apache-2.0
// Building and reading whole libvirt messages (call, reply, error reply, event, keepalive, stream packets), pure.
import { XdrReader } from '../common/xdr';
import { KeepaliveProc, Limits, MessageStatus, MessageType, Program } from './constants';
import { type Header, encodeMessage } from './header';
import type { ProcDef } from './procs/remote';
import { type RemoteError, errorCodec } from './types';

const REMOTE_VERS = 1;
const EVENT_SERIAL = 1; // libvirtd sends every event with serial 1 (remoteDispatchObjectEventSend)

export function encodeCall<A>(def: ProcDef<A, unknown>, serial: number, args: A): Buffer {
  return encodeMessage({ prog: Program.REMOTE, vers: REMOTE_VERS, proc: def.proc, type: MessageType.CALL, serial, status: MessageStatus.OK }, (w) =>
    def.args.encode(w, args),
  );
}

export function encodeReply<R>(def: ProcDef<unknown, R>, serial: number, ret: R): Buffer {
  return encodeMessage({ prog: Program.REMOTE, vers: REMOTE_VERS, proc: def.proc, type: MessageType.REPLY, serial, status: MessageStatus.OK }, (w) =>
    def.ret.encode(w, ret),
  );
}

// Error replies echo the call's program, version, procedure and serial, even when those were unknown.
export function encodeErrorReply(call: Pick<Header, 'prog' | 'vers' | 'proc' | 'serial'>, err: RemoteError): Buffer {
  return encodeMessage({ ...call, type: MessageType.REPLY, status: MessageStatus.ERROR }, (w) => errorCodec.encode(w, err));
}

export function encodeEvent<R>(def: ProcDef<unknown, R>, body: R): Buffer {
  return encodeMessage(
    { prog: Program.REMOTE, vers: REMOTE_VERS, proc: def.proc, type: MessageType.MESSAGE, serial: EVENT_SERIAL, status: MessageStatus.OK },
    (w) => def.ret.encode(w, body),
  );
}

export function encodeKeepalive(proc: (typeof KeepaliveProc)[keyof typeof KeepaliveProc]): Buffer {
  return encodeMessage({ prog: Program.KEEPALIVE, vers: 1, proc, type: MessageType.MESSAGE, serial: 0, status: MessageStatus.OK });
}

// Decode a body fully: trailing bytes are an error (strict XDR).
export function decodeBody<T>(codec: { decode(r: XdrReader): T }, body: XdrReader, what: string): T {
  const v = codec.decode(body);
  body.ensureConsumed(what);
  return v;
}

// Stream packets carry the opening call's procedure and serial. Data is raw (no XDR length) with status CONTINUE; an
// empty CONTINUE is the sender's EOF [virNetServerProgramSendStreamData]. OK with no data is only ever a finish (the
// client's) or its confirmation (ours): libvirt's client drops a connection that gets an OK it did not ask for.
export function encodeStreamData(call: Pick<Header, 'proc' | 'serial'>, data: Buffer = Buffer.alloc(0)): Buffer {
  if (data.length > Limits.STREAM_PAYLOAD_MAX) throw new RangeError(`stream packet of ${data.length} bytes exceeds ${Limits.STREAM_PAYLOAD_MAX}`);
  const head = encodeMessage({
    prog: Program.REMOTE,
    vers: REMOTE_VERS,
    proc: call.proc,
    type: MessageType.STREAM,
    serial: call.serial,
    status: MessageStatus.CONTINUE,
  });
  if (data.length === 0) return head;
  head.writeUInt32BE(head.length + data.length, 0);
  return Buffer.concat([head, data], head.length + data.length);
}

// The confirmation of a client's finish (OK) or abort (ERROR) packet: OK with no data.
export function encodeStreamConfirm(call: Pick<Header, 'proc' | 'serial'>): Buffer {
  return encodeMessage({ prog: Program.REMOTE, vers: REMOTE_VERS, proc: call.proc, type: MessageType.STREAM, serial: call.serial, status: MessageStatus.OK });
}

// A stream that failed: status ERROR with the error, after which neither side sends more on it.
export function encodeStreamError(call: Pick<Header, 'proc' | 'serial'>, err: RemoteError): Buffer {
  return encodeMessage(
    { prog: Program.REMOTE, vers: REMOTE_VERS, proc: call.proc, type: MessageType.STREAM, serial: call.serial, status: MessageStatus.ERROR },
    (w) => errorCodec.encode(w, err),
  );
}

// STREAM_HOLE (sparse streams): a run of zeroes of `length` bytes, sent instead of the bytes themselves.
export function encodeStreamHole(call: Pick<Header, 'proc' | 'serial'>, length: bigint, flags = 0): Buffer {
  return encodeMessage(
    { prog: Program.REMOTE, vers: REMOTE_VERS, proc: call.proc, type: MessageType.STREAM_HOLE, serial: call.serial, status: MessageStatus.CONTINUE },
    (w) => void w.i64(length).u32(flags),
  );
}

export function decodeStreamHole(body: XdrReader): { length: bigint; flags: number } {
  const length = body.i64('hole length');
  const flags = body.u32('hole flags');
  body.ensureConsumed('stream hole');
  if (length < 0n) throw new RangeError('negative stream hole');
  return { length, flags };
}
