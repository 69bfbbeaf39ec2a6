// SPDX-License-Identifier: Apache-2.0
// A VM's console (virDomainOpenConsole): actions of the DOMAIN_WRITE group, codes 128..135, pure. The helper connects
// the guest's console socket and hands the descriptor to the front end over the descriptor channel (ipc/fd-channel.ts);
// the answer carries only the token naming it. Both are writes: journaled by the helper, audited by the front end.
import { VG_ERR_IPC_VALIDATION } from '../../common/errors';
import type { XdrReader, XdrWriter } from '../../common/xdr';
import { action } from '../actions';
import { type Codec, nothing, rec, uuidCodec } from '../shared';
import { FD_TOKEN_BYTES } from '../fd-channel';

export const CONSOLE_DEV_MAX = 32;
const DEV_RE = /^[a-z][a-z0-9]{0,31}$/; // libvirt's aliases: serial0, console0

const devName: Codec<string | null> = {
  encode: (w: XdrWriter, v: string | null) => void w.optional(v, (w2, s) => void w2.string(s, CONSOLE_DEV_MAX)),
  decode: (r: XdrReader) =>
    r.optional((r2) => {
      const s = r2.string(CONSOLE_DEV_MAX, 'devName');
      if (!DEV_RE.test(s)) throw VG_ERR_IPC_VALIDATION('devName', 'must be a device alias such as serial0');
      return s;
    }),
};

const bool: Codec<boolean> = { encode: (w, v) => void w.bool(v), decode: (r) => r.bool('force') };
const token: Codec<Buffer> = {
  encode: (w, v) => void w.opaqueFixed(v, FD_TOKEN_BYTES),
  decode: (r) => Buffer.from(r.opaqueFixed(FD_TOKEN_BYTES, 'token')),
};

export const CONSOLE_ACTIONS = {
  // force: the front end already ended another session's stream (it is the one-console-per-VM authority).
  openConsole: action(
    128,
    rec<{ uuid: Buffer; devName: string | null; force: boolean }>({ uuid: uuidCodec, devName, force: bool }),
    rec<{ token: Buffer }>({ token }),
  ),
  closeConsole: action(129, rec<{ uuid: Buffer }>({ uuid: uuidCodec }), nothing),
};

// A console's close is sent when its stream ends, long after the audited open call: it travels outside that call's
// write gate (with a request id of its own, journaled by the helper; the front end records the stream's end).
export const CONSOLE_CONTINUATIONS: ReadonlySet<string> = new Set(['DOMAIN_WRITE_REQ.closeConsole']);
