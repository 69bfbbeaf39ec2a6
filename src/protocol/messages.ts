// SPDX-License-Identifier: Apache-2.0
// Building and reading whole libvirt messages (call, reply, error reply, event, keepalive), pure.
import { XdrReader } from '../common/xdr';
import { KeepaliveProc, MessageStatus, MessageType, Program } from './constants';
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
