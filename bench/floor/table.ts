// SPDX-License-Identifier: Apache-2.0
// The floor servers' canned replies: per (program, procedure), the call bodies seen while recording and the whole reply
// frame virtgate sent to each. File format (big-endian, read by node-echo.ts and bench/c/echo.c):
//   "VGFT" | u32 count | count × (u32 prog | u32 proc | u32 callBodyLen | callBody | u32 replyLen | reply frame)
export const MAGIC = 'VGFT';

export interface Canned {
  prog: number;
  proc: number;
  callBody: Buffer; // the call's payload (after the 28-byte header)
  reply: Buffer; // the whole reply frame, length word included; its serial is replaced by the call's
}

export function encodeTable(entries: Canned[]): Buffer {
  const parts: Buffer[] = [Buffer.from(MAGIC, 'latin1'), u32(entries.length)];
  for (const e of entries) parts.push(u32(e.prog), u32(e.proc), u32(e.callBody.length), e.callBody, u32(e.reply.length), e.reply);
  return Buffer.concat(parts);
}

export function decodeTable(buf: Buffer): Canned[] {
  if (buf.toString('latin1', 0, 4) !== MAGIC) throw new Error('not a floor table');
  const out: Canned[] = [];
  let at = 8;
  const take = (n: number): Buffer => {
    if (at + n > buf.length) throw new Error('truncated floor table');
    const b = buf.subarray(at, at + n);
    at += n;
    return b;
  };
  for (let i = buf.readUInt32BE(4); i > 0; i--) {
    const prog = take(4).readUInt32BE(0);
    const proc = take(4).readUInt32BE(0);
    const callBody = take(take(4).readUInt32BE(0));
    const reply = take(take(4).readUInt32BE(0));
    out.push({ prog, proc, callBody, reply });
  }
  return out;
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}
