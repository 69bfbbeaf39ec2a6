// SPDX-License-Identifier: Apache-2.0
// What every handler file shares: the context the dispatcher hands in, the entry shape ./index assembles, small checks.
import { VG_ERR_FLAGS_UNSUPPORTED } from '../../common/errors';
import type { Actor, DomainSummary, NodeFacts } from '../../ipc/program';
import type { PolicyObject } from '../../policy/authorizer';
import type { ProcDef } from '../../protocol/procs/remote';
import type { RemoteDomain } from '../../protocol/types';
import type { AuthService } from '../auth';
import type { DomainMirror } from '../domain-mirror';
import type { HelperClient } from '../helper-client';
import type { ObjectEventHub } from '../object-events';
import type { ByteSink, ByteSource, ClientStream, InboundOptions, StreamConnection, StreamEnd } from '../streams';
import type { FdKind } from '../../ipc/fd-channel';
import type { VgError } from '../../common/errors';
import type { Session } from '../session';

export interface HandlerContext {
  session: Session;
  auth: AuthService | null;
  mirror: DomainMirror; // committed domain state: reads are answered here when it is synced
  helper: Pick<HelperClient, 'call' | 'act'>; // audited writes get a wrapper that records the intent first
  facts(): Promise<NodeFacts>;
  actor(): Actor;
  nextCallbackId(): number;
  // Per-object filter for lists and events (policy aclfilter); true = visible.
  visible(d: DomainSummary): boolean;
  // The same for any object kind: may the caller `permission` (default KIND:getattr) on this object (the helper's record)?
  canSee(o: PolicyObject, permission?: string): boolean;
  // A lookup found an object the caller may not see and answers "not found": noted here, the dispatcher records the
  // denial (as for domains' hiddenLookup) before the answer leaves.
  noteHidden?(o: PolicyObject): void;
  hiddenNoted?(): PolicyObject | null;
  // Client registrations for network, storage pool and node device events.
  objectEvents: ObjectEventHub;
  // Opens a download stream on this call (server -> client): it starts after the call's reply, paced by the client.
  openDownload(source: ByteSource, onEnd?: (end: StreamEnd, bytes: number) => void): void;
  // Opens an upload stream on this call (client -> server): it starts after the call's reply; the connection's stall
  // timeout and inbound limits apply.
  openUpload?(sink: ByteSink, opts: Pick<InboundOptions, 'maxBytes' | 'sparse'>, onEnd?: (end: StreamEnd, bytes: number, error?: VgError) => void): void;
  // Where the VNC proxy serves a running VM's display to remote users (docs/remote-display.md); null: nowhere.
  remoteDisplay?(uuid: Buffer): { address: string; port: number } | null;
  // The descriptor the helper handed over with `token` (its IPC answer carried it): the handler's to close.
  takeFd?(token: Buffer, kind: FdKind): Promise<number>;
  // The call's reply goes out as REPLY_WITH_FDS carrying these descriptors (unix connections only); the session owns
  // them from here (closed after sending, or if the call fails).
  replyWithFds?(fds: number[]): void;
  // Opens any stream on this call (a console: both directions); `ended` frees its serial. Starts after the reply.
  openStream?(make: (conn: StreamConnection, call: { proc: number; serial: number }, ended: () => void) => ClientStream): void;
  // The helper without the write gate, for the continuations of this call's one audited write (an upload's chunks and
  // end, UPLOAD_CONTINUATIONS; a console's close, CONSOLE_CONTINUATIONS): they carry its actor and request id; anything else is refused.
  continuation?: Pick<HelperClient, 'act'>;
  // How a stream opened by an audited call ended (its bytes): an audit event tied to the call's request id.
  recordStreamEnd?(detail: Record<string, string | number | boolean>): void;
  // A lookup found a VM the caller may not see: recorded as a denial (VG_ERR_NO_DOMAIN), rate-limited per connection.
  hiddenLookup?(d: DomainSummary, procedure: string): Promise<void>;
}

export type Handler<A, R> = (ctx: HandlerContext, args: A) => Promise<R>;

// A policy object a call acts on; `fresh`: about to be created (no visibility check, its permission still applies).
export type CallObject = PolicyObject & { fresh?: boolean };

export interface EntryOptions<A, R = unknown> {
  // The objects the call names, as the helper records them (real name and tenant, never the client's claim). The
  // dispatcher decides each `KIND:perm` of the call on the object of that kind; an object the caller may not getattr
  // answers that kind's not-found error. [] = a lookup or list: the handler filters what it returns (ctx.canSee).
  objects?: (ctx: HandlerContext, args: A) => Promise<CallObject[]>;
  // The answer when it can be given now, in this turn (a read the mirror holds), else undefined. Called only once the
  // call is allowed; it must do nothing but read. The handler stays the reference: same answer, and every error.
  now?: (ctx: NowContext, args: A) => R | undefined;
}

// What a `now` answer may use: the mirror, nothing that waits.
export interface NowContext {
  mirror: Pick<DomainMirror, 'info'>;
}

// One procedure's handler; each object's file exports a list of these.
export type Entry = [ProcDef, Handler<never, unknown>, EntryOptions<never>?];

// Types the handler's arguments and result by the procedure's codecs.
export function entry<A, R>(def: ProcDef<A, R>, h: Handler<A, R>, opts?: EntryOptions<A, R>): Entry {
  return opts ? [def as ProcDef, h, opts as EntryOptions<never>] : [def as ProcDef, h];
}

export const toRemote = (d: DomainSummary): RemoteDomain => ({ name: d.name, uuid: d.uuid, id: d.id });

export function checkFlags(flags: number, allowed: number, fn: string): void {
  if ((flags & ~allowed) !== 0) throw VG_ERR_FLAGS_UNSUPPORTED((flags & ~allowed).toString(16), fn);
}
