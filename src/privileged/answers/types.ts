// SPDX-License-Identifier: Apache-2.0
// Shared shapes of answer functions: what an answer may use and how it signals a protocol violation (helper side).
import type { AnswerOf, BareAnswer, RequestOp, Requests } from '../../ipc/program';
import type { FdKind } from '../../ipc/fd-channel';
import type { Driver } from '../drivers/driver';

// The request ends the connection (openssh's fatal_f), never an error answer.
export class ProtocolViolation extends Error {
  override readonly name = 'ProtocolViolation';
}

export interface AnswerContext {
  readonly driver: Driver;
  subscribe(): void | Promise<void>; // start pushing state and events on this connection (resolves once the initial sync is out)
  // Hands fd to the asking front end over its descriptor channel (paired by pid) and closes the helper's copy, also on
  // failure; returns the token the answer carries. Throws (DriverError) when that process has no channel.
  passFd(fd: number, kind: FdKind): Buffer;
  // cb runs once when this IPC connection, or its process's descriptor channel, closes; a later call with the same key
  // replaces it, null removes it (e.g. a console closed normally).
  onClose(key: string, cb: (() => void) | null): void;
}

// A grouped op's answer function returns its action's answer without `action`: the server echoes the request's.
// It may be async: a real hypervisor call (QMP, qemu-img) takes time, and other requests go on meanwhile.
export type AnswerFn<K extends RequestOp> = (ctx: AnswerContext, body: Requests[K]) => BareAnswer<AnswerOf<K>> | Promise<BareAnswer<AnswerOf<K>>>;

// Maps a value that may still be coming (a driver's Async<T>) without making a present one wait a turn.
export function then<T, U>(v: T | Promise<T>, f: (t: T) => U): U | Promise<U> {
  return v instanceof Promise ? v.then(f) : f(v);
}
