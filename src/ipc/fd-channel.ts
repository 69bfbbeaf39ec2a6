// SPDX-License-Identifier: Apache-2.0
// The descriptor channel's wire (helper -> front end, `<helperSocket>.fds`, SOCK_SEQPACKET), pure: one message per
// descriptor, 16 random token bytes + one kind byte, with exactly one SCM_RIGHTS descriptor. The IPC answer that asked
// for the descriptor carries the same token, so the front end pairs them; the kind keeps a console fd from ever being
// taken as a display's.

export const FdKind = { CONSOLE: 1, GRAPHICS: 2, SCREENSHOT: 3 } as const;
export type FdKind = (typeof FdKind)[keyof typeof FdKind];

export const FD_TOKEN_BYTES = 16;
export const FD_MESSAGE_BYTES = FD_TOKEN_BYTES + 1;

const KINDS: ReadonlySet<number> = new Set(Object.values(FdKind));

export const isFdKind = (k: number): k is FdKind => KINDS.has(k);

export function encodeFdMessage(token: Buffer, kind: FdKind): Buffer {
  if (token.length !== FD_TOKEN_BYTES) throw new Error(`fd token must be ${FD_TOKEN_BYTES} bytes`);
  if (!isFdKind(kind)) throw new Error(`unknown descriptor kind ${String(kind)}`);
  const b = Buffer.alloc(FD_MESSAGE_BYTES);
  token.copy(b, 0);
  b[FD_TOKEN_BYTES] = kind;
  return b;
}

// null: not a message of this protocol (the receiver closes the channel).
export function decodeFdMessage(b: Buffer): { token: Buffer; kind: FdKind } | null {
  if (b.length !== FD_MESSAGE_BYTES) return null;
  const kind = b[FD_TOKEN_BYTES];
  if (!isFdKind(kind)) return null;
  return { token: Buffer.from(b.subarray(0, FD_TOKEN_BYTES)), kind };
}
