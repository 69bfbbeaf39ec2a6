// SPDX-License-Identifier: Apache-2.0
// The front end's request pipeline: auth state -> login on record -> strict decode -> open state -> read-only ->
// policy (denials recorded) -> handler (a write's intent made durable at its helper request) -> outcome -> reply.
// dispatchNow is the same pipeline for the reads the mirror answers, run to its end in the turn the call arrived.
import type { ComponentLog } from '../common/log';
import {
  VG_ERR_ACCESS_DENIED,
  VG_ERR_AUDIT_LOGIN,
  VG_ERR_CONN_NOT_OPEN,
  VG_ERR_ARG_INVALID,
  VG_ERR_INTERNAL,
  VG_ERR_NO_DOMAIN,
  VG_ERR_NO_INTERFACE,
  VG_ERR_NO_NETWORK,
  VG_ERR_NO_NODE_DEVICE,
  VG_ERR_NO_STORAGE_POOL,
  VG_ERR_NO_STORAGE_VOL,
  VG_ERR_READ_ONLY,
  VG_ERR_RPC_AUTH_REQUIRED,
  VG_ERR_RPC_PAYLOAD,
  VG_ERR_TENANT_CHOICE,
  type VgError,
  isVgError,
} from '../common/errors';
import type { Actor, DomainSnapshot, DomainSummary, NodeFacts } from '../ipc/program';
import { LookupKind, Op, type RequestOp, checkTenantName, requestName, uuidToString } from '../ipc/program';
import { UPLOAD_CONTINUATIONS } from '../ipc/objects/storage';
import { decodeBody, encodeReply } from '../protocol/messages';
import { P, type ProcDef, requiredPermissions } from '../protocol/procs/remote';
import type { RemoteDomain } from '../protocol/types';
import { type Authorizer, type PolicyObject, type Subject, isReadPermission } from '../policy/authorizer';
import type { AuditHook, AuditedCall, WriteGate } from './audit-hook';
import type { FdChannelClient } from './fd-channel';
import { CONSOLE_CONTINUATIONS } from '../ipc/objects/console';
import { type CallObject, type HandlerContext, type NowContext, entryOptions, handlerFor } from './handlers';
import { ObjectEventHub } from './object-events';
import { type ClientStream, InboundStream, OutboundStream } from './streams';
import type { AuthService } from './auth';
import { DomainMirror } from './domain-mirror';
import { policyUser } from './identity';
import type { HelperClient } from './helper-client';
import type { Call, Session } from './session';
import type { DenialReason, Metrics } from './metrics';

// Allowed before CONNECT_OPEN (libvirtd answers "connection not open" to the rest).
const PRE_OPEN = new Set<number>([
  P.AUTH_LIST.proc,
  P.AUTH_SASL_INIT.proc,
  P.AUTH_SASL_START.proc,
  P.AUTH_SASL_STEP.proc,
  P.CONNECT_SUPPORTS_FEATURE.proc,
  P.CONNECT_OPEN.proc,
  P.CONNECT_CLOSE.proc,
]);

// Decided on the authenticated identity alone, before and after open, as libvirtd does: feature probes (keepalive) and
// close need no policy rule, so every user gets keepalive and a normal connect leaves no denial record.
const IDENTITY_ONLY = new Set<number>([P.CONNECT_SUPPORTS_FEATURE.proc, P.CONNECT_CLOSE.proc]);

// The login calls themselves: everything else waits until the session's login record is durable.
const AUTH_CALLS = new Set<number>([P.AUTH_LIST.proc, P.AUTH_SASL_INIT.proc, P.AUTH_SASL_START.proc, P.AUTH_SASL_STEP.proc]);

// Denial records per connection: a loop of refused calls cannot flood the log (the rest is counted, then recorded once).
export const DENIAL_RECORDS_PER_WINDOW = 20;
export const DENIAL_WINDOW_MS = 10_000;

export interface DispatcherOptions {
  helper: HelperClient;
  authorizer: Authorizer;
  auth?: AuthService | null; // SASL users and login penalties; null when no listener asks for SASL
  log?: ((msg: string) => void) & Partial<Pick<ComponentLog, 'warn'>>; // 'rpc' lines: denials (warn) and the like
  audit?: AuditHook; // every write (intent before it runs, outcome before the reply) and every denial; absent = audit off
  fdChannel?: Pick<FdChannelClient, 'take'>; // descriptors the helper hands over (consoles, displays)
  remoteDisplay?: (uuid: Buffer) => { address: string; port: number } | null; // the VNC proxy's port of a running VM
  metrics?: Pick<Metrics, 'call' | 'denial'>; // absent = metrics off
}

// The helper's record of the object decided on (never the name the client sent).
type DecidedObject = { kind?: string; name: string; uuid?: string; tenant: string };

// What a caller who may not see an object is told: that it does not exist, as for an absent one.
const ABSENT: Readonly<Record<string, (detail: string) => VgError>> = {
  domain: (d) => VG_ERR_NO_DOMAIN(d),
  network: (d) => VG_ERR_NO_NETWORK(d),
  storage_pool: (d) => VG_ERR_NO_STORAGE_POOL(d),
  storage_vol: (d) => VG_ERR_NO_STORAGE_VOL(d),
  interface: (d) => VG_ERR_NO_INTERFACE(d),
  node_device: (d) => VG_ERR_NO_NODE_DEVICE(d),
};

// A session's remembered fast-path decisions, valid for one policy generation and one subject.
interface DecisionMemo {
  generation: number;
  tenant: string;
  readOnly: boolean;
  identity: Session['identity'];
  byRecord: WeakMap<object, Map<string, boolean>>;
}

// What the policy said about one call: the allow rules that matched, or the denial to record and answer.
type Verdict = { rules: string[]; object?: DecidedObject } | { denied: VgError; permission: string; rule: string; object?: DecidedObject };

export class Dispatcher {
  readonly #helper: HelperClient;
  readonly #authorizer: Authorizer;
  readonly #auth: AuthService | null;
  readonly #audit: AuditHook | null;
  readonly #fdChannel: Pick<FdChannelClient, 'take'> | null;
  readonly #remoteDisplay: DispatcherOptions['remoteDisplay'];
  readonly #metrics: DispatcherOptions['metrics'] | null;
  readonly #deniedCalls = new WeakSet<Call>(); // for the calls_total outcome: denied, not merely failed
  readonly #log: DispatcherOptions['log'];
  #facts: Promise<NodeFacts> | null = null;
  // uuid -> the domain's real name and tenant, for decisions; kept fresh by lifecycle events, dropped on reconnect.
  readonly #objects = new Map<string, { name: string; tenant: string }>();
  readonly mirror: DomainMirror;
  readonly objectEvents: ObjectEventHub;
  #callbackIds = 0;
  #requestIds = 0;

  constructor(opts: DispatcherOptions) {
    this.#helper = opts.helper;
    this.#authorizer = opts.authorizer;
    this.#auth = opts.auth ?? null;
    this.#audit = opts.audit ?? null;
    this.#fdChannel = opts.fdChannel ?? null;
    this.#remoteDisplay = opts.remoteDisplay;
    this.#metrics = opts.metrics ?? null;
    this.#log = opts.log;
    // Host facts are fixed per helper connection: cache them, refresh after a reconnect.
    this.#helper.on('up', () => {
      this.#facts = null;
      this.#objects.clear();
    });
    this.#helper.on('lifecycle', (ev: { domain: DomainSummary }) => this.#objects.delete(uuidToString(ev.domain.uuid)));
    // Any committed change (a tenant reassignment included) makes the cached record stale.
    this.#helper.on('snapshot', (sn: DomainSnapshot) => this.#objects.delete(uuidToString(sn.info.uuid)));
    this.mirror = new DomainMirror(this.#helper);
    this.#nowContext = { mirror: this.mirror };
    this.objectEvents = new ObjectEventHub((s, o, perm) => this.#authorizer.can(this.subject(s), o, perm).allowed);
    this.#helper.on('objectEvent', (ev) => this.objectEvents.publish(ev));
  }

  // The helper's record of a domain for decisions: the mirror's entry when synced, else the cache filled by lookups. One
  // object per state of the domain (dispatchNow remembers decisions by it).
  #record(uuid: Buffer): { name: string; tenant?: string } | undefined {
    return this.mirror.lookup({ kind: LookupKind.UUID, uuid }) ?? this.#objects.get(uuidToString(uuid));
  }

  facts(): Promise<NodeFacts> {
    if (!this.#facts) {
      this.#facts = this.#helper.call(Op.NODE_FACTS_REQ, {}).catch((e: Error) => {
        this.#facts = null;
        throw e;
      });
    }
    return this.#facts;
  }

  nextCallbackId(): number {
    return this.#callbackIds++;
  }

  subject(s: Session): Subject {
    return { user: policyUser(s.identity), tenant: s.tenant, readOnly: s.readOnly };
  }

  // The per-object filter of lists, lookups and events: a VM the caller may not getattr does not exist for them.
  canSee(s: Session, d: Pick<DomainSummary, 'name' | 'uuid' | 'tenant'>, permission = 'domain:getattr'): boolean {
    return this.#authorizer.can(this.subject(s), { kind: 'domain', name: d.name, uuid: uuidToString(d.uuid), tenant: d.tenant ?? '' }, permission).allowed;
  }

  // The session's tenant comes from the URI (`?tenant=NAME`), or is the user's only tenant; it is never guessed among several.
  chooseTenant(s: Session, uri: string | null): string {
    const q = uri?.includes('?') ? new URLSearchParams(uri.slice(uri.indexOf('?') + 1)) : null;
    const asked = q?.get('tenant') ?? null;
    const user = policyUser(s.identity);
    const authz = this.#authorizer;
    if (asked !== null) {
      try {
        checkTenantName(asked);
      } catch {
        throw VG_ERR_ARG_INVALID(`tenant name '${asked.slice(0, 64).replace(/[^\x20-\x7e]/g, '?')}' is malformed`);
      }
      if (authz.tenantsOf && !(authz.mayUseTenant?.(user, asked) ?? authz.tenantsOf(user).includes(asked))) throw VG_ERR_ACCESS_DENIED();
      return asked;
    }
    const mine = authz.tenantsOf?.(user) ?? [];
    if (mine.length > 1) throw VG_ERR_TENANT_CHOICE(user, mine.join(', '));
    return mine[0] ?? '';
  }

  // Timed and counted by procedure and outcome when metrics are on; the pipeline itself is #run.
  dispatch = (s: Session, call: Call): Promise<Buffer> => {
    const m = this.#metrics;
    if (!m) return this.#run(s, call);
    const t0 = process.hrtime.bigint();
    const name = call.def.name;
    // .then, not another async frame: the wrapper adds one promise per call, no more.
    return this.#run(s, call).then(
      (reply) => {
        m.call(name, 'ok', Number(process.hrtime.bigint() - t0) / 1e9);
        return reply;
      },
      (e: unknown) => {
        m.call(name, this.#deniedCalls.has(call) ? 'denied' : 'error', Number(process.hrtime.bigint() - t0) / 1e9);
        throw e;
      },
    );
  };

  // #run's pipeline for a read that needs nothing asynchronous: decided on what is known now and answered from the
  // mirror by the procedure's `now` handler, with no promise and no handler context. Anything else (a denial to record,
  // an object to fetch, an error to answer, a mirror that cannot answer) returns null having done nothing but decode.
  dispatchNow = (s: Session, call: Call): Buffer | null => {
    const { def, header } = call;
    const now = entryOptions(def.proc)?.now;
    if (!now || !s.identity || s.loginDurable || !s.opened || def.cls === 'write' || (def.refuseReadOnly && s.readOnly)) return null;
    const t0 = this.#metrics ? process.hrtime.bigint() : 0n;
    const args = this.#decode(call);
    if (!args) return null;
    const perms = IDENTITY_ONLY.has(def.proc) ? [] : requiredPermissions(def, typeof args.flags === 'number' ? args.flags : 0, args);
    if (!this.#allowedNow(s, perms, args)) return null;
    let ret: unknown;
    try {
      ret = now(this.#nowContext, args as never);
    } catch {
      return null; // its error is answered (and any denial recorded) by #run
    }
    if (ret === undefined) return null;
    const reply = encodeReply(def, header.serial, ret);
    this.#metrics?.call(def.name, 'ok', Number(process.hrtime.bigint() - t0) / 1e9);
    return reply;
  };

  readonly #nowContext: NowContext;
  readonly #memos = new WeakMap<Session, DecisionMemo>();

  // The call's arguments, decoded once (dispatchNow may have done it); null: malformed.
  #decode(call: Call): Record<string, unknown> | null {
    if (call.args === undefined) {
      try {
        call.args = (decodeBody(call.def.args, call.body, call.def.name) ?? {}) as Record<string, unknown>;
      } catch {
        call.args = null;
      }
    }
    return call.args;
  }

  #run = async (s: Session, call: Call): Promise<Buffer> => {
    const { def, header } = call;
    if (def.needAuth && !s.identity) throw VG_ERR_RPC_AUTH_REQUIRED();
    if (s.loginDurable && !AUTH_CALLS.has(def.proc)) await this.#loginRecorded(s);
    const args = this.#decode(call);
    if (!args) throw VG_ERR_RPC_PAYLOAD();
    if (!s.opened && !PRE_OPEN.has(def.proc)) throw VG_ERR_CONN_NOT_OPEN();
    if ((def.cls === 'write' || def.refuseReadOnly) && s.readOnly) {
      this.#denied(call, 'read_only');
      await this.#recordDenial(s, { procedure: def.name, args }, 'read-only connection', 'VG_ERR_READ_ONLY');
      throw VG_ERR_READ_ONLY(apiName(def));
    }
    if (def.proc === P.CONNECT_OPEN.proc && !s.opened) {
      try {
        s.tenant = this.chooseTenant(s, (args.name as string | null) ?? null);
      } catch (e) {
        // A refused ?tenant= (not a member, malformed, or a choice needed) is a denial like any other.
        this.#denied(call, 'tenant');
        if (isVgError(e)) await this.#recordDenial(s, { procedure: def.name, permission: 'connect:getattr', args }, 'tenant refused', e.code);
        throw e;
      }
    }
    // Synchronous unless a domain's record must be fetched: CONNECT_OPEN claims the session before pipelined calls run.
    const perms = IDENTITY_ONLY.has(def.proc) ? [] : requiredPermissions(def, typeof args.flags === 'number' ? args.flags : 0, args);
    const resolve = entryOptions(def.proc)?.objects;
    const pending =
      resolve && perms.length > 0 ? resolve(this.#context(s), args).then((objects) => this.#checkObjects(s, perms, objects)) : this.#authorize(s, perms, args);
    const verdict = pending instanceof Promise ? await pending : pending;
    if ('denied' in verdict) {
      this.#denied(call, verdict.permission.endsWith(':getattr') && verdict.denied.code !== 'VG_ERR_ACCESS_DENIED' ? 'not_visible' : 'policy');
      // A denial is recorded (and awaited) before the client hears of it; it stands even when the log is down.
      await this.#recordDenial(s, { procedure: def.name, permission: verdict.permission, args, object: verdict.object }, verdict.rule, verdict.denied.code);
      throw verdict.denied;
    }
    const handler = handlerFor(def.proc);
    if (!handler) throw VG_ERR_INTERNAL(`no handler for ${def.name}`);
    let readCtx: HandlerContext | null = null;
    try {
      // A write runs only once its intent is durable (else VG_ERR_AUDIT_UNAVAILABLE, nothing executed), and is
      // answered only once its outcome is; the request id goes to the helper, whose journal cross-check matches.
      const audited = { procedure: def.name, permission: perms.join(','), args, object: verdict.object };
      const ret =
        def.cls === 'write' && this.#audit
          ? await this.#audit.write(s, audited, [...new Set(verdict.rules)].join('; '), (gate) => handler(this.#context(s, gate, header), args))
          : await handler((readCtx = this.#context(s, undefined, header)), args);
      if (!s.loginDurable && s.identity && AUTH_CALLS.has(def.proc) && this.#audit && !s.loginRecordSeen) {
        // A SASL login just succeeded: its record was queued by the auth service; nothing else runs until it is durable.
        s.loginRecordSeen = true;
        s.loginDurable = this.#audit.lastLoginDurable();
      }
      return encodeReply(def, header.serial, ret);
    } catch (e) {
      const hidden = readCtx?.hiddenNoted?.();
      if (hidden && isVgError(e)) {
        // The caller looked up an object it may not see and was told "not found": a denial, recorded before it hears.
        const object = { kind: hidden.kind, name: hidden.name, uuid: hidden.uuid, tenant: hidden.tenant ?? '' };
        this.#denied(call, 'not_visible');
        await this.#recordDenial(s, { procedure: def.name, permission: `${hidden.kind}:getattr`, object }, 'not visible', e.code);
      }
      if (isVgError(e)) throw e;
      throw VG_ERR_INTERNAL('unexpected failure'); // never leak internals to the network
    }
  };

  #denied(call: Call, reason: DenialReason): void {
    if (!this.#metrics) return;
    this.#deniedCalls.add(call);
    this.#metrics.denial(reason);
  }

  // Every permission the call needs, on the object it names; deny by default. The one enforcement point.
  // A call on a domain the caller may not getattr answers "Domain not found" (existence does not leak); a missing
  // permission on a visible one answers access denied, naming nothing.
  #authorize(s: Session, perms: string[], args: Record<string, unknown>): Verdict | Promise<Verdict> {
    return this.#authorizeNow(s, perms, args) ?? this.#domainObject((args.dom as RemoteDomain).uuid).then((object) => this.#check(s, perms, object));
  }

  // #authorizeNow's yes or no for dispatchNow, remembered per session, domain record and permissions: a record object is
  // replaced when anything about its domain changes (name, tenant), and a policy reload, another tenant or identity on
  // the session starts its memo afresh. Only allowed reads get here without being decided again; denials go to #run.
  #allowedNow(s: Session, perms: string[], args: Record<string, unknown>): boolean {
    const decide = (): boolean => {
      const v = this.#authorizeNow(s, perms, args);
      return v !== null && !('denied' in v);
    };
    const generation = this.#authorizer.generation;
    const dom = args.dom as RemoteDomain | undefined | null;
    const record = dom && generation !== undefined && perms.length > 0 ? this.#record(dom.uuid) : undefined;
    if (!record) return decide();
    let memo = this.#memos.get(s);
    if (!memo || memo.generation !== generation || memo.tenant !== s.tenant || memo.readOnly !== s.readOnly || memo.identity !== s.identity) {
      memo = { generation: generation!, tenant: s.tenant, readOnly: s.readOnly, identity: s.identity, byRecord: new WeakMap() };
      this.#memos.set(s, memo);
    }
    let byPerms = memo.byRecord.get(record);
    if (!byPerms) memo.byRecord.set(record, (byPerms = new Map()));
    const key = perms.length === 1 ? perms[0] : perms.join(',');
    let allowed = byPerms.get(key);
    if (allowed === undefined) byPerms.set(key, (allowed = decide()));
    return allowed;
  }

  // #authorize on what is known now; null: the domain's record must be fetched from the helper first.
  #authorizeNow(s: Session, perms: string[], args: Record<string, unknown>): Verdict | null {
    if (perms.length === 0) return { rules: [] };
    const dom = args.dom as RemoteDomain | undefined | null;
    if (dom) {
      // Decide on the helper's record for that uuid (real name, tenant), never on the name the client sent.
      const known = this.#record(dom.uuid);
      if (!known) return null;
      return this.#check(s, perms, { kind: 'domain', name: known.name, uuid: uuidToString(dom.uuid), tenant: known.tenant ?? '' });
    }
    // define/create: the new VM's name is only known to the helper's parser, so the rule must cover every VM of the
    // session's tenant (object `vm:*`); a redefinition of another tenant's VM is refused by the helper.
    return this.#check(s, perms, typeof args.xml === 'string' ? { kind: 'domain', name: '*', tenant: s.tenant } : null);
  }

  #check(s: Session, perms: string[], object: PolicyObject | null): Verdict {
    const subject = this.subject(s);
    const host: PolicyObject = { kind: 'connect', name: 'virtgate' };
    const rules: string[] = [];
    const decided: DecidedObject | undefined = object?.kind === 'domain' ? { name: object.name, uuid: object.uuid, tenant: object.tenant ?? '' } : undefined;
    if (object && object.name !== '*') {
      const d = this.#authorizer.can(subject, object, 'domain:getattr');
      if (!d.allowed) return { denied: VG_ERR_NO_DOMAIN(''), permission: 'domain:getattr', rule: d.rule, object: decided };
    }
    for (const perm of perms) {
      if (perm.startsWith('domain:') && object === null) continue; // lookups: filtered per object by the handler
      const obj = perm.startsWith('domain:') ? object! : host;
      const d = this.#authorizer.can(subject, obj, perm);
      if (!d.allowed) return { denied: VG_ERR_ACCESS_DENIED(), permission: perm, rule: d.rule, object: decided };
      rules.push(d.rule);
    }
    return { rules, object: decided };
  }

  // Calls on networks, pools, volumes, interfaces, node devices: each `KIND:perm` on the resolved object of that kind,
  // `connect:*` on the host; an object the caller may not getattr is absent for them. A kind with no resolved object
  // (lookups, lists) is left to the handler, which filters what it returns.
  #checkObjects(s: Session, perms: string[], objects: CallObject[]): Verdict {
    const subject = this.subject(s);
    const host: PolicyObject = { kind: 'connect', name: 'virtgate' };
    const first = objects.find((o) => !o.fresh) ?? objects[0];
    const decided: DecidedObject | undefined = first ? { kind: first.kind, name: first.name, uuid: first.uuid, tenant: first.tenant ?? '' } : undefined;
    for (const o of objects) {
      if (o.fresh) continue;
      const d = this.#authorizer.can(subject, o, `${o.kind}:getattr`);
      if (!d.allowed) return { denied: (ABSENT[o.kind] ?? VG_ERR_NO_DOMAIN)(''), permission: `${o.kind}:getattr`, rule: d.rule, object: decided };
    }
    const rules: string[] = [];
    for (const perm of perms) {
      const kind = perm.slice(0, perm.indexOf(':'));
      const obj = kind === 'connect' ? host : objects.find((o) => o.kind === kind);
      if (!obj) {
        if (isReadPermission(perm)) continue; // a lookup or list: filtered by its handler
        return { denied: VG_ERR_ACCESS_DENIED(), permission: perm, rule: 'no object to decide on (deny by default)', object: decided };
      }
      const d = this.#authorizer.can(subject, obj, perm);
      if (!d.allowed) return { denied: VG_ERR_ACCESS_DENIED(), permission: perm, rule: d.rule, object: decided };
      rules.push(d.rule);
    }
    return { rules, object: decided };
  }

  // Waits for the session's login record; while it cannot be made durable every call beyond AUTH_* is refused (fail
  // closed) and the client is told why; it must reconnect once the log is writable.
  async #loginRecorded(s: Session): Promise<void> {
    try {
      await s.loginDurable;
      s.loginDurable = null;
    } catch (e) {
      throw VG_ERR_AUDIT_LOGIN(isVgError(e) && e.code === 'VG_ERR_AUDIT_UNAVAILABLE' ? (/\(([^)]*)\)/.exec(e.message)?.[1] ?? 'error') : 'error');
    }
  }

  // Every denial is recorded, but at most DENIAL_RECORDS_PER_WINDOW per connection per window; the rest are counted
  // and recorded as one 'denials-suppressed' event when the window closes (or the connection does).
  async #recordDenial(s: Session, call: AuditedCall, rule: string, code: string): Promise<void> {
    // The log line names the call and the object decided on, never the arguments (they may carry XML, secrets' values).
    const o = call.object;
    const user = policyUser(s.identity);
    const line = `denied ${call.procedure}${call.permission ? ` (${call.permission})` : ''} to ${user}${o ? ` on ${o.kind ?? 'object'} '${o.name}'` : ''}: ${rule} [${code}]`;
    const fields = { user, proc: call.procedure, permission: call.permission, code, session: s.id };
    if (this.#log?.warn) this.#log.warn(line, fields);
    else this.#log?.(line);
    if (!this.#audit) return;
    const budget = s.denialLog;
    const now = Date.now();
    if (now - budget.since >= DENIAL_WINDOW_MS) {
      this.flushSuppressedDenials(s);
      budget.since = now;
      budget.recorded = 0;
    }
    if (budget.recorded >= DENIAL_RECORDS_PER_WINDOW) {
      budget.suppressed++;
      return;
    }
    budget.recorded++;
    await this.#audit.denied(s, call, rule, code);
  }

  // Called when a window rolls over and when the connection closes.
  flushSuppressedDenials(s: Session): void {
    const budget = s.denialLog;
    if (!this.#audit || budget.suppressed === 0) return;
    const n = budget.suppressed;
    budget.suppressed = 0;
    this.#audit.suppressedDenials(s, n, new Date(budget.since).toISOString()).catch(() => undefined); // an outage is logged loudly
  }

  async #domainObject(uuid: Buffer): Promise<PolicyObject> {
    const key = uuidToString(uuid);
    let known = this.#objects.get(key);
    if (!known) {
      const d = await this.#helper.act(Op.DOMAIN_READ_REQ, 'lookup', { key: { kind: LookupKind.UUID, uuid } });
      known = { name: d.name, tenant: d.tenant ?? '' };
      if (this.#objects.size > 65536) this.#objects.clear();
      this.#objects.set(key, known);
    }
    return { kind: 'domain', name: known.name, uuid: key, tenant: known.tenant };
  }

  // gate: an audited write's (its request id is shared by intent, outcome and the helper journal, and its one helper
  // write request passes the gate, which makes the intent durable first); unaudited calls get a local id.
  #context(s: Session, gate?: WriteGate, opened?: Pick<Call['header'], 'proc' | 'serial'>): HandlerContext {
    let hidden: PolicyObject | null = null;
    const inner = this.#helper;
    const call = gate
      ? ((async (op: RequestOp, body: Record<string, unknown>) => {
          const actor = body.actor as Actor | undefined;
          if (!actor) return inner.call(op as never, body as never); // reads on the way
          const auditHead = await gate.before(op, body);
          return inner.call(op as never, { ...body, actor: { ...actor, auditHead } } as never);
        }) as HelperClient['call'])
      : inner.call.bind(inner);
    const helper: Pick<HelperClient, 'call' | 'act'> = {
      call,
      act: ((op: RequestOp, action: string, fields: object) => call(op, { ...fields, action } as never)) as HelperClient['act'],
    };
    return {
      session: s,
      auth: this.#auth,
      mirror: this.mirror,
      helper,
      facts: () => this.facts(),
      actor: (): Actor => ({
        user: printable(s.identity?.user ?? ''),
        tenant: s.tenant,
        requestId: gate?.requestId ?? `${s.id}-${++this.#requestIds}`,
      }),
      nextCallbackId: () => this.nextCallbackId(),
      visible: (d) => this.canSee(s, d),
      canSee: (o, permission) => this.#authorizer.can(this.subject(s), o, permission ?? `${o.kind}:getattr`).allowed,
      noteHidden: (o) => void (hidden ??= o),
      hiddenNoted: () => hidden,
      objectEvents: this.objectEvents,
      openDownload: (source, onEnd) => {
        if (!opened) throw VG_ERR_INTERNAL('a stream needs its call');
        const stream: OutboundStream = new OutboundStream(s, opened, source, (end, bytes) => {
          s.streamEnded(stream);
          onEnd?.(end, bytes);
        });
        s.openStream(stream);
      },
      continuation: {
        act: ((op: RequestOp, action: string, fields: object) => {
          const name = requestName(op, { action });
          if (!UPLOAD_CONTINUATIONS.has(name) && !CONSOLE_CONTINUATIONS.has(name)) return Promise.reject(VG_ERR_INTERNAL(`${action} is not a continuation`));
          return inner.call(op as never, { ...fields, action } as never);
        }) as HelperClient['act'],
      },
      replyWithFds: (fds) => {
        if (!opened) throw VG_ERR_INTERNAL('descriptors need their call');
        s.replyWithFds(opened.serial, fds);
      },
      remoteDisplay: this.#remoteDisplay,
      takeFd: (token, kind) => (this.#fdChannel ? this.#fdChannel.take(token, kind) : Promise.reject(VG_ERR_INTERNAL('no descriptor channel'))),
      openStream: (make) => {
        if (!opened) throw VG_ERR_INTERNAL('a stream needs its call');
        const stream: ClientStream = make(s, opened, () => s.streamEnded(stream));
        s.openStream(stream);
      },
      openUpload: (sink, opts, onEnd) => {
        if (!opened) throw VG_ERR_INTERNAL('a stream needs its call');
        const limits = { stallMs: s.streamStallMs, highWater: s.streamInHighWater, ...opts };
        const stream: InboundStream = new InboundStream(s, opened, sink, limits, (end, bytes, error) => {
          s.streamEnded(stream);
          onEnd?.(end, bytes, error);
        });
        s.openStream(stream);
      },
      recordStreamEnd: (detail) => {
        const requestId = gate?.requestId ?? '';
        const who = { user: printable(s.identity?.user ?? ''), tenant: s.tenant, connection: s.id };
        this.#audit?.event('stream-end', { requestId, ...who, ...detail }).catch(() => undefined); // an outage is logged loudly
      },
      hiddenLookup: (d, procedure) => {
        this.#metrics?.denial('not_visible');
        return this.#recordDenial(
          s,
          { procedure, permission: 'domain:getattr', object: { name: d.name, uuid: uuidToString(d.uuid), tenant: d.tenant ?? '' } },
          'not visible',
          'VG_ERR_NO_DOMAIN',
        );
      },
    };
  }
}

// `domainSuspend` -> `virDomainSuspend`, as libvirt names the API in read-only denials.
export function apiName(def: ProcDef): string {
  return 'vir' + def.name[0].toUpperCase() + def.name.slice(1).replace(/Xml/g, 'XML').replace(/Uuid/g, 'UUID').replace(/Id$/, 'ID');
}

const printable = (s: string): string => s.replace(/[^\x20-\x7e]/g, '?').slice(0, 256);
