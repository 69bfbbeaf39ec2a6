// SPDX-License-Identifier: Apache-2.0
// The dispatcher's audit seam: a durable intent before a write is forwarded, a durable outcome before the reply, every denial.
import { randomBytes } from 'node:crypto';
import { isVgError } from '../common/errors';
import type { Who, What } from '../audit/schema';
import { formatUuid, summarizeArgs } from '../audit/schema';
import type { AuditTrail } from '../audit/trail';

// What the hook needs of a Session (structural, so session.ts stays free to grow).
export interface AuditedSession {
  id: number;
  tenant: string;
  identity: {
    user: string;
    method: string;
    uid?: number;
    gid?: number;
    pid?: number;
    source: string;
    fingerprint?: string;
    dn?: string;
  } | null;
}

// One call as the audit log describes it.
export interface AuditedCall {
  procedure: string; // ProcDef.name
  permission?: string; // the permission that decided (the first denied one, or all joined with ',')
  args?: Record<string, unknown> | null; // decoded call arguments; summarised, never stored whole
}

export interface WriteTicket {
  requestId: string; // pass to HandlerContext.actor(): the helper journals it, cross-check matches on it
  who: Who;
  source: string;
  what: What;
}

export interface AuditHookOptions {
  bootId?: string; // makes request ids unique across restarts (default: 8 random hex digits)
}

export class AuditHook {
  readonly #trail: AuditTrail;
  readonly #bootId: string;
  #n = 0;

  constructor(trail: AuditTrail, opts: AuditHookOptions = {}) {
    this.#trail = trail;
    this.#bootId = opts.bootId ?? randomBytes(4).toString('hex');
  }

  get available(): boolean {
    return this.#trail.available;
  }

  newRequestId(s: AuditedSession): string {
    return `${this.#bootId}-${s.id}-${++this.#n}`;
  }

  // Resolves once the intent is durable; rejects with VG_ERR_AUDIT_UNAVAILABLE, and then the write must not be forwarded.
  async beforeWrite(s: AuditedSession, call: AuditedCall, rule: string): Promise<WriteTicket> {
    const t: WriteTicket = { requestId: this.newRequestId(s), who: who(s), source: s.identity?.source ?? '', what: what(call) };
    await this.#trail.intent({ ...t, decision: { result: 'allow', rule } });
    return t;
  }

  // Resolves once the outcome is durable. If it cannot be made durable the client must not see success:
  // rejects with VG_ERR_AUDIT_UNAVAILABLE (the intent record already shows the write was attempted).
  async afterWrite(t: WriteTicket, error: unknown, result?: unknown): Promise<void> {
    const outcome = error === undefined ? { result: 'success' as const } : { result: 'error' as const, code: errorCode(error), message: errorMessage(error) };
    const w = { ...t.what };
    const dom = (result as { dom?: { name?: string; uuid?: Buffer } } | undefined)?.dom;
    if (dom && !w.object?.uuid && Buffer.isBuffer(dom.uuid)) w.object = { kind: 'domain', name: dom.name, uuid: formatUuid(dom.uuid) }; // define/create: known only now
    await this.#trail.outcome({ requestId: t.requestId, who: t.who, source: t.source, what: w, outcome });
  }

  // intent -> run -> outcome; run receives the request id to put in the helper request's actor.
  async write<T>(s: AuditedSession, call: AuditedCall, rule: string, run: (requestId: string) => Promise<T>): Promise<T> {
    const t = await this.beforeWrite(s, call, rule);
    let ret: T;
    try {
      ret = await run(t.requestId);
    } catch (e) {
      await this.afterWrite(t, e);
      throw e;
    }
    await this.afterWrite(t, undefined, ret);
    return ret;
  }

  // A denial (policy or read-only socket): recorded and awaited; the denial stands even if the log is unavailable.
  async denied(s: AuditedSession, call: AuditedCall, rule: string, code = 'VG_ERR_ACCESS_DENIED'): Promise<void> {
    try {
      await this.#trail.intent({ requestId: this.newRequestId(s), who: who(s), source: s.identity?.source ?? '', what: what(call), decision: { result: 'deny', rule: `${rule} (${code})` } });
    } catch {
      // the appender has already logged the outage loudly; the caller refuses anyway
    }
  }

  // Authentication success or failure (PCI 10.2.1.4: invalid access attempts).
  async auth(s: AuditedSession, ok: boolean, detail: Record<string, string | number | boolean> = {}, user?: string): Promise<void> {
    const w = who(s);
    if (user !== undefined) w.user = user;
    await this.#trail
      .event({ kind: 'auth', name: ok ? 'auth-success' : 'auth-failure', who: w, source: s.identity?.source ?? '', detail, outcome: { result: ok ? 'success' : 'error' } })
      .catch(() => undefined);
  }

  // daemon-start, daemon-stop, policy-reload, ...
  event(name: string, detail?: Record<string, string | number | boolean>): Promise<void> {
    return this.#trail.event({ name, detail });
  }
}

function who(s: AuditedSession): Who {
  const id = s.identity;
  const w: Who = { user: id?.user ?? '', tenant: s.tenant, method: id?.method ?? 'none' };
  if (id?.fingerprint) w.fingerprint = id.fingerprint;
  if (id?.dn) w.dn = id.dn;
  if (id?.uid !== undefined) w.uid = id.uid;
  if (id?.gid !== undefined) w.gid = id.gid;
  if (id?.pid !== undefined) w.pid = id.pid;
  return w;
}

// The object from the call's domain reference (or name), and an argument summary without the reference itself.
export function what(call: AuditedCall): What {
  const args = call.args ?? {};
  const { dom, ...rest } = args as { dom?: { name?: string; uuid?: Buffer } | null } & Record<string, unknown>;
  const w: What = { procedure: call.procedure };
  if (call.permission) w.permission = call.permission;
  if (dom && typeof dom === 'object') w.object = { kind: 'domain', name: dom.name, uuid: Buffer.isBuffer(dom.uuid) ? formatUuid(dom.uuid) : undefined };
  else if (typeof rest.name === 'string') w.object = { kind: 'domain', name: rest.name };
  else if (Buffer.isBuffer(rest.uuid)) w.object = { kind: 'domain', uuid: formatUuid(rest.uuid) };
  const summary = summarizeArgs(rest);
  if (Object.keys(summary).length) w.args = summary;
  return w;
}

function errorCode(e: unknown): string {
  return isVgError(e) ? e.code : 'VG_ERR_INTERNAL';
}

function errorMessage(e: unknown): string {
  return (isVgError(e) ? e.message : 'unexpected failure').slice(0, 256);
}

