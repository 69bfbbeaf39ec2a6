// SPDX-License-Identifier: Apache-2.0
// The REMOTE procedure table's machinery, pure: one definition per procedure, shared codec shapes and ACL helpers.
// Each object's file (remote.ts: connect and domains; network.ts, storage.ts, ...) defines its procedures here.
import type { Codec } from '../types';
import { domainCodec, int, struct, uint, type RemoteDomain } from '../types';

// read: changes nothing; write: changes hypervisor state (audited, refused on read-only sockets);
// session: connection bookkeeping (open, close, features, events, auth).
export type ProcClass = 'read' | 'write' | 'session';

// One @acl line: the permission applies always, or when (flags & mask) != 0, or with `unless` when (flags & mask) == 0,
// and with `whenArgs` only when every named argument has that value (libvirt's `perm::ARG:VALUE`, e.g.
// `domain:write::source:VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT`).
export interface AclRule {
  perm: string;
  whenFlags?: number;
  unlessFlags?: number;
  whenArgs?: Readonly<Record<string, string | number>>;
}

export interface ProcDef<A = unknown, R = unknown> {
  proc: number;
  name: string;
  args: Codec<A>;
  ret: Codec<R>;
  cls: ProcClass;
  acl: readonly AclRule[]; // empty = `@acl: none`
  aclFilter?: string; // list filters: per-object permission
  needAuth: boolean; // false only for AUTH_*
  message?: boolean; // server -> client MESSAGE (events), never a CALL
  // A read libvirt still refuses on read-only connections (virCheckReadOnlyGoto): screenshots, consoles, displays.
  refuseReadOnly?: boolean;
  stream?: 'read' | 'write'; // opens a stream: server -> client (@readstream) or client -> server (@writestream)
}

const table = new Map<number, ProcDef>();

export function defineProc<A, R>(d: Omit<ProcDef<A, R>, 'needAuth'> & { needAuth?: boolean }): ProcDef<A, R> {
  if (table.has(d.proc)) throw new Error(`duplicate procedure ${d.proc}`);
  const def: ProcDef<A, R> = { needAuth: true, ...d };
  table.set(d.proc, def as ProcDef);
  return def;
}

export const acl = (...perms: (string | AclRule)[]): AclRule[] => perms.map((p) => (typeof p === 'string' ? { perm: p } : p));

export const dom = struct<{ dom: RemoteDomain }>(['dom', domainCodec]);
export const domFlags = struct<{ dom: RemoteDomain; flags: number }>(['dom', domainCodec], ['flags', uint]);
export const retInt = <K extends string>(k: K) => struct<Record<K, number>>([k, int] as never);
// Inline char arrays (4 bytes per character) and bounded arrays.
export const array = <T>(max: number, c: Codec<T>): Codec<T[]> => ({
  encode: (w, v) => void w.array(v, max, c.encode),
  decode: (r) => r.array(max, c.decode),
});
export const AFFECT_LIVE = 1;
export const AFFECT_CONFIG = 2;

export function lookupProc(proc: number): ProcDef | undefined {
  return table.get(proc);
}

export function allProcs(): readonly ProcDef[] {
  return [...table.values()];
}

// The permissions one call needs, given its flags and decoded arguments (libvirt's @acl semantics). A rule on
// arguments applies only when `args` shows every value it names: callers that decide must pass the arguments.
export function requiredPermissions(def: ProcDef, flags: number, args: Readonly<Record<string, unknown>> = {}): string[] {
  const out: string[] = [];
  for (const rule of def.acl) {
    if (rule.whenFlags !== undefined && (flags & rule.whenFlags) === 0) continue;
    if (rule.unlessFlags !== undefined && (flags & rule.unlessFlags) !== 0) continue;
    if (rule.whenArgs && !Object.entries(rule.whenArgs).every(([k, v]) => args[k] === v)) continue;
    if (!out.includes(rule.perm)) out.push(rule.perm);
  }
  return out;
}
