// SPDX-License-Identifier: Apache-2.0
// The dispatcher's audit seam: a durable intent before a write is forwarded, a durable outcome before the reply, every denial.
import { randomBytes } from 'node:crypto';
import { VG_ERR_INTERNAL, isVgError } from '../common/errors';
import { type RequestOp, requestDigest, requestName } from '../ipc/program';
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
  object?: { kind?: string; name: string; uuid?: string; tenant: string }; // the helper's record the decision used (never the client's name)
}

// What a write's handler holds: the request id, and the gate its one helper write request passes through.
export interface WriteGate {
  requestId: string;
  // Records the durable intent naming exactly this helper request (op, object, digest); resolves to the audit head
  // (`SEQ:HASH` of the intent) that the helper journals. Rejects with VG_ERR_AUDIT_UNAVAILABLE: do not forward.
  before(op: number, body: unknown): Promise<string>;
}

export interface WriteTicket {
  requestId: string; // pass to HandlerContext.actor(): the helper journals it, cross-check matches on it
  who: Who;
  source: string;
  what: What;
}

export interface AuditHookOptions {
  bootId?: string; // makes request ids unique across restarts (default: 8 random hex digits)
  now?: () => number;
}

export const LOGIN_AGGREGATE_MS = 10_000;
const LOGIN_KEYS_MAX = 10_000; // distinct identities aggregated at once; past that each login is recorded on its own

interface LoginAggregate {
  since: number;
  repeats: number;
  durable: Promise<void>;
  who: Who;
  source: string;
  ok: boolean;
  detail: Record<string, string | number | boolean>;
}

export class AuditHook {
  readonly #trail: AuditTrail;
  readonly #bootId: string;
  readonly #now: () => number;
  readonly #logins = new Map<string, LoginAggregate>();
  #loginTimer: NodeJS.Timeout | null = null;
  #lastLogin: Promise<void> = Promise.resolve();
  #n = 0;

  constructor(trail: AuditTrail, opts: AuditHookOptions = {}) {
    this.#trail = trail;
    this.#bootId = opts.bootId ?? randomBytes(4).toString('hex');
    this.#now = opts.now ?? Date.now;
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

  // run -> (intent at the helper request) -> outcome. The intent is written when the handler issues its helper write,
  // so it names the exact request (op, object, digest) and nothing reaches the helper before it is durable. A write
  // refused before it reached the helper (bad flags, bad XML) still leaves an intent and its error outcome.
  async write<T>(s: AuditedSession, call: AuditedCall, rule: string, run: (gate: WriteGate) => Promise<T>): Promise<T> {
    const t: WriteTicket = { requestId: this.newRequestId(s), who: who(s), source: s.identity?.source ?? '', what: what(call) };
    const decision = { result: 'allow' as const, rule };
    let intent: Promise<string> | null = null;
    let intentFailed = false;
    const gate: WriteGate = {
      requestId: t.requestId,
      before: (op, body) => {
        if (intent) return Promise.reject(VG_ERR_INTERNAL('a write call forwards one helper request')); // keeps id = one execution
        const b = body as { uuid?: unknown };
        t.what = { ...t.what, helperOp: requestName(op, body), digest: requestDigest(op as RequestOp, body as never) };
        if (!t.what.object && Buffer.isBuffer(b.uuid)) t.what.object = { kind: 'domain', uuid: formatUuid(b.uuid) };
        intent = this.#trail.intent({ ...t, decision }).then(
          (d) => (d ? `${d.seq}:${d.hash}` : ''),
          (e: unknown) => {
            intentFailed = true;
            throw e;
          },
        );
        return intent;
      },
    };
    let ret: T;
    try {
      ret = await run(gate);
    } catch (e) {
      if (intentFailed) throw e; // nothing was forwarded and nothing more can be recorded
      if (!intent) {
        await this.#trail.intent({ ...t, decision });
      }
      await this.afterWrite(t, e);
      throw e;
    }
    if (!intent) await this.#trail.intent({ ...t, decision }); // a write that needed no helper request
    await this.afterWrite(t, undefined, ret);
    return ret;
  }

  // A denial (policy or read-only socket): recorded and awaited; the denial stands even if the log is unavailable.
  async denied(s: AuditedSession, call: AuditedCall, rule: string, code = 'VG_ERR_ACCESS_DENIED'): Promise<void> {
    try {
      await this.#trail.intent({
        requestId: this.newRequestId(s),
        who: who(s),
        source: s.identity?.source ?? '',
        what: what(call),
        decision: { result: 'deny', rule: `${rule} (${code})` },
      });
    } catch {
      // the appender has already logged the outage loudly; the caller refuses anyway
    }
  }

  // Authentication success or failure (PCI 10.2.1.4: invalid access attempts). Resolves once durable; the session
  // may call nothing beyond AUTH_* before that. Identical repeats (same outcome, method, user and uid or address)
  // within LOGIN_AGGREGATE_MS share the first one's record and are counted into one 'auth-repeated' record, so a
  // connect/close loop costs a record per interval, not per connection.
  auth(s: AuditedSession, ok: boolean, detail: Record<string, string | number | boolean> = {}, user?: string): Promise<void> {
    const w = who(s);
    if (user !== undefined) w.user = user;
    const source = s.identity?.source ?? '';
    const key = [ok ? 1 : 0, w.method, w.user, w.uid ?? source.replace(/:\d+$/, ''), JSON.stringify(detail)].join('|');
    const now = this.#now();
    const seen = this.#logins.get(key);
    // While the log is failing nothing is aggregated: each login needs a durable record of its own, or it is refused.
    if (seen && now - seen.since < LOGIN_AGGREGATE_MS && this.#trail.available) {
      seen.repeats++;
      this.#lastLogin = seen.durable;
      return seen.durable;
    }
    if (seen) this.#flushLogin(key, seen);
    const durable = this.#trail.event({
      kind: 'auth',
      name: ok ? 'auth-success' : 'auth-failure',
      who: w,
      source,
      detail,
      outcome: { result: ok ? 'success' : 'error' },
    });
    durable.catch(() => undefined); // awaited by the session; an outage is logged loudly by the appender
    if (this.#logins.size < LOGIN_KEYS_MAX) this.#logins.set(key, { since: now, repeats: 0, durable, who: w, source, ok, detail });
    this.#armLoginTimer();
    this.#lastLogin = durable;
    return durable;
  }

  // The most recent login record (a SASL login's, queued by the auth service just before its answer).
  lastLoginDurable(): Promise<void> {
    return this.#lastLogin;
  }

  // Denials past a connection's per-window budget, recorded as one count.
  suppressedDenials(s: AuditedSession, count: number, since: string): Promise<void> {
    return this.#trail.event({ kind: 'event', name: 'denials-suppressed', who: who(s), source: s.identity?.source ?? '', detail: { count, since } });
  }

  #flushLogin(key: string, l: LoginAggregate): void {
    this.#logins.delete(key);
    if (l.repeats === 0) return;
    this.#trail
      .event({
        kind: 'auth',
        name: l.ok ? 'auth-repeated' : 'auth-failure-repeated',
        who: l.who,
        source: l.source,
        detail: { ...l.detail, count: l.repeats, since: new Date(l.since).toISOString() },
        outcome: { result: l.ok ? 'success' : 'error' },
      })
      .catch(() => undefined);
  }

  #armLoginTimer(): void {
    if (this.#loginTimer) return;
    this.#loginTimer = setInterval(() => this.flushLogins(false), LOGIN_AGGREGATE_MS);
    this.#loginTimer.unref();
  }

  // Records the counts of intervals that are over (all of them with `all`, at stop).
  flushLogins(all: boolean): void {
    const now = this.#now();
    for (const [key, l] of this.#logins) if (all || now - l.since >= LOGIN_AGGREGATE_MS) this.#flushLogin(key, l);
    if (this.#logins.size === 0 && this.#loginTimer) {
      clearInterval(this.#loginTimer);
      this.#loginTimer = null;
    }
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
  if (call.object && call.object.name !== '*') {
    // The helper's name and tenant for the uuid, as decided on; what the client sent only when it differs.
    const o = call.object;
    const uuid = o.uuid ?? (dom && Buffer.isBuffer(dom.uuid) ? formatUuid(dom.uuid) : undefined);
    w.object = { kind: o.kind ?? 'domain', name: o.name, uuid, tenant: o.tenant };
    if (dom && typeof dom.name === 'string' && dom.name !== o.name) w.object.clientName = dom.name.slice(0, 256);
  } else if (dom && typeof dom === 'object') w.object = { kind: 'domain', name: dom.name, uuid: Buffer.isBuffer(dom.uuid) ? formatUuid(dom.uuid) : undefined };
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
