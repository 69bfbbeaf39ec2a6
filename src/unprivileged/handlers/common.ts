// SPDX-License-Identifier: Apache-2.0
// What every handler file shares: the context the dispatcher hands in, the entry shape ./index assembles, small checks.
import { VG_ERR_FLAGS_UNSUPPORTED } from '../../common/errors';
import type { Actor, DomainSummary, NodeFacts } from '../../ipc/program';
import type { ProcDef } from '../../protocol/procs/remote';
import type { RemoteDomain } from '../../protocol/types';
import type { AuthService } from '../auth';
import type { DomainMirror } from '../domain-mirror';
import type { HelperClient } from '../helper-client';
import type { Session } from '../session';

export interface HandlerContext {
  session: Session;
  auth: AuthService | null;
  mirror: DomainMirror; // committed domain state: reads are answered here when it is synced
  helper: Pick<HelperClient, 'call'>; // audited writes get a wrapper that records the intent first
  facts(): Promise<NodeFacts>;
  actor(): Actor;
  nextCallbackId(): number;
  // Per-object filter for lists and events (policy aclfilter); true = visible.
  visible(d: DomainSummary): boolean;
  // A lookup found a VM the caller may not see: recorded as a denial (VG_ERR_NO_DOMAIN), rate-limited per connection.
  hiddenLookup?(d: DomainSummary, procedure: string): Promise<void>;
}

export type Handler<A, R> = (ctx: HandlerContext, args: A) => Promise<R>;

// One procedure's handler; each object's file exports a list of these.
export type Entry = [ProcDef, Handler<never, unknown>];

// Types the handler's arguments and result by the procedure's codecs.
export function entry<A, R>(def: ProcDef<A, R>, h: Handler<A, R>): Entry {
  return [def as ProcDef, h];
}

export const toRemote = (d: DomainSummary): RemoteDomain => ({ name: d.name, uuid: d.uuid, id: d.id });

export function checkFlags(flags: number, allowed: number, fn: string): void {
  if ((flags & ~allowed) !== 0) throw VG_ERR_FLAGS_UNSUPPORTED((flags & ~allowed).toString(16), fn);
}
