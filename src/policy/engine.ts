// SPDX-License-Identifier: Apache-2.0
// The Casbin facade: model + policy text in, cached decisions out; a reload builds a new enforcer and swaps it whole.
// No I/O here: the front end reads the files and hands over their text (policy/ imports common/ and casbin only).
import { IDENTITY_SOURCES, NAME_RULE, isIdentitySource, isTenantName, isUserName, qualify, splitQualified } from '../common/names';
import { type Enforcer, type Model, StringAdapter, newEnforcer, newModelFromString } from 'casbin';
import { type Authorizer, type Decision, type PolicyObject, SHAREABLE, type Subject } from './authorizer';
import { FastMatcher } from './fast-path';
import { BUILTIN_POLICY, BUILTIN_ROLES, MODEL_TEXT } from './model';
import { ALL_PERMISSIONS, isKnownPermission, isReadPermission } from './vocabulary';

const CACHE_MAX = 100_000; // decisions kept between reloads; cleared whole when full
const GLOB_RE = /^[A-Za-z0-9_*?.:@+\-[\]]{1,192}$/; // objects and permissions: no commas, quotes or spaces

export interface PolicyRule {
  kind: 'p' | 'g';
  fields: string[]; // normalised: identities qualified (`unix:alice`), roles bare
  line: number;
  text: string; // as written
  shorthand?: boolean; // a bare p subject that is no role, taken as the local user `unix:NAME`
}

export class PolicyParseError extends Error {}

const SOURCE_RE = /^[a-z][a-z0-9]{0,15}$/; // what a source prefix looks like, known or not (lint reports unknown ones)

// A subject written `source:name`: the name must be a user name; an unknown source is kept (it can never match; lint says so).
function qualifiedSubject(s: string, where: string, what: string): string {
  const q = splitQualified(s)!;
  if (!SOURCE_RE.test(q.prefix) || !isUserName(q.name)) {
    throw new PolicyParseError(`${where}: bad ${what} '${s}' (an identity is SOURCE:NAME, SOURCE one of ${IDENTITY_SOURCES.join(', ')}, NAME ${NAME_RULE})`);
  }
  return s;
}

// Strict CSV: `p, SUBJECT, TENANT, OBJECT, PERMISSION` or `g, USER, ROLE, TENANT`; `#` comments. Anything else is an error.
// Identities say where they come from (`unix:alice`, `x509:alice`, `sasl:alice`, `tcp:anonymous`). Shorthand, resolved
// here so that every consumer (Casbin, the precompiled matcher, tenants, lint) sees qualified names: a bare g member is
// the local account `unix:NAME`; a bare p subject is a role if it is built in or some g row grants it, else `unix:NAME`.
export function parsePolicyText(text: string, source = 'policy'): PolicyRule[] {
  const rows: { f: string[]; line: number; text: string }[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const f = line.split(',').map((x) => x.trim());
    const where = `${source}:${i + 1}`;
    const tenantOk = (dom: string): void => {
      if (dom !== '*' && (dom === '' || !isTenantName(dom))) throw new PolicyParseError(`${where}: bad tenant '${dom}' (tenant names are ${NAME_RULE})`);
    };
    if (f[0] === 'p') {
      if (f.length !== 5) throw new PolicyParseError(`${where}: expected p, SUBJECT, TENANT, OBJECT, PERMISSION`);
      const [, sub, dom, obj, act] = f;
      f[1] = sub.includes(':') ? qualifiedSubject(sub, where, 'subject') : sub;
      if (!sub.includes(':') && !isUserName(sub)) throw new PolicyParseError(`${where}: bad subject '${sub}' (roles and user names are ${NAME_RULE})`);
      tenantOk(dom);
      if (!GLOB_RE.test(obj)) throw new PolicyParseError(`${where}: bad object '${obj}'`);
      if (!GLOB_RE.test(act)) throw new PolicyParseError(`${where}: bad permission '${act}'`);
    } else if (f[0] === 'g') {
      if (f.length !== 4) throw new PolicyParseError(`${where}: expected g, USER, ROLE, TENANT`);
      const [, user, role, dom] = f;
      if (user.includes(':')) qualifiedSubject(user, where, 'user');
      else if (isUserName(user)) f[1] = qualify('unix', user);
      else throw new PolicyParseError(`${where}: bad user '${user}' (user names are ${NAME_RULE})`);
      if (!isUserName(role)) throw new PolicyParseError(`${where}: bad role '${role}' (role names are ${NAME_RULE}, no ':')`);
      tenantOk(dom);
    } else {
      throw new PolicyParseError(`${where}: a rule starts with 'p' or 'g', got '${f[0]}'`);
    }
    rows.push({ f, line: i + 1, text: line });
  });
  const roles = new Set(rows.filter((r) => r.f[0] === 'g').map((r) => r.f[2]));
  return rows.map(({ f, line, text: t }) => {
    const rule: PolicyRule = { kind: f[0] as 'p' | 'g', fields: f.slice(1), line, text: t };
    const sub = rule.fields[0];
    if (rule.kind === 'p' && !sub.includes(':') && !(sub in BUILTIN_ROLES) && !roles.has(sub)) {
      rule.fields[0] = qualify('unix', sub);
      rule.shorthand = true;
    }
    return rule;
  });
}

// The rule as Casbin reads it (normalised fields).
export const casbinLine = (r: PolicyRule): string => `${r.kind}, ${r.fields.join(', ')}`;

// True for a subject that names an identity (`unix:alice`) rather than a role.
export const isIdentitySubject = (s: string): boolean => s.includes(':');

const OBJECT_RE = /^((shared:)?(net|pool|vol):.+|(vm|iface|nodedev):.+|host|shared:\*.*|\*.*)$/;

// The Casbin object string for a policy object.
// Casbin object prefixes per kind; a shared object (no tenant, shareable kind) is `shared:PREFIX:NAME`.
export const OBJECT_PREFIX: Readonly<Record<Exclude<PolicyObject['kind'], 'connect'>, string>> = {
  domain: 'vm',
  network: 'net',
  storage_pool: 'pool',
  storage_vol: 'vol',
  interface: 'iface',
  node_device: 'nodedev',
};
const isShared = (o: PolicyObject): boolean => SHAREABLE.has(o.kind) && (o.tenant ?? '') === '';
// A volume's name is POOL/NAME; its object is `vol:POOL:NAME`, because policy globs (minimatch) never match across '/'.
export const objectString = (o: PolicyObject): string =>
  o.kind === 'connect' ? 'host' : `${isShared(o) ? 'shared:' : ''}${OBJECT_PREFIX[o.kind]}:${o.kind === 'storage_vol' ? o.name.replace('/', ':') : o.name}`;

export interface CasbinRequest {
  sub: string;
  dom: string;
  otn: string;
  obj: string;
  act: string;
}

export function casbinRequest(subject: Subject, object: PolicyObject, permission: string): CasbinRequest {
  // A shared object is decided in the session's tenant (its rules name `shared:` objects); others in their own.
  const otn = object.kind === 'connect' || isShared(object) ? subject.tenant : (object.tenant ?? '');
  return { sub: subject.user, dom: subject.tenant, otn, obj: objectString(object), act: permission };
}

// Every section of a parsed model (request, policy, role, effect, matcher definitions), as comparable text.
function modelShape(m: Model): string {
  const out: string[] = [];
  for (const [sec, asts] of [...m.model.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    for (const [key, ast] of [...asts.entries()].sort(([a], [b]) => a.localeCompare(b))) out.push(`${sec}.${key}=${ast.value}|${ast.tokens.join(',')}`);
  }
  return out.join('\n');
}

let builtinShape: string | null = null;

// The built-in model's decisions have a precompiled matcher (fast-path.ts); any other model is evaluated by Casbin.
function isBuiltinModel(m: Model): boolean {
  builtinShape ??= modelShape(newModelFromString(MODEL_TEXT));
  return modelShape(m) === builtinShape;
}

// One loaded model + policy; immutable once built.
export class PolicySet {
  readonly enforcer: Enforcer;
  readonly rules: PolicyRule[];
  readonly memberships: Map<string, Set<string>>; // user -> tenants (g rows, and direct p rows naming a tenant)
  readonly #fast: FastMatcher | null;

  private constructor(enforcer: Enforcer, rules: PolicyRule[]) {
    this.enforcer = enforcer;
    this.rules = rules;
    const model = enforcer.getModel();
    this.#fast = isBuiltinModel(model) ? new FastMatcher(model.model.get('p')?.get('p')?.policy ?? [], model.model.get('g')?.get('g')?.policy ?? []) : null;
    this.memberships = new Map();
    const add = (u: string, t: string): void => {
      if (t === '*') return;
      if (!this.memberships.has(u)) this.memberships.set(u, new Set());
      this.memberships.get(u)!.add(t);
    };
    for (const r of rules) {
      if (r.kind === 'g') add(r.fields[0], r.fields[2]);
      else if (isIdentitySubject(r.fields[0])) add(r.fields[0], r.fields[1]);
    }
  }

  // Throws PolicyParseError (or Casbin's error) on anything that does not load, and refuses a model that lets a stranger in.
  static async build(modelText: string, policyText: string, source = 'policy'): Promise<PolicySet> {
    const rules = parsePolicyText(policyText, source);
    let enforcer: Enforcer;
    try {
      const model = newModelFromString(modelText);
      enforcer = await newEnforcer(model, new StringAdapter(`${BUILTIN_POLICY}\n${rules.map(casbinLine).join('\n')}\n`));
    } catch (e) {
      throw new PolicyParseError(`cannot load model/policy: ${(e as Error).message}`);
    }
    const set = new PolicySet(enforcer, rules);
    // Never fall open: a model under which an unknown user may do anything is refused.
    let strangerAllowed: boolean;
    try {
      strangerAllowed = set.enforce({ sub: '\u0000nobody', dom: '', otn: '', obj: 'host', act: 'connect:getattr' })[0];
    } catch (e) {
      throw new PolicyParseError(`model does not evaluate: ${(e as Error).message}`);
    }
    if (strangerAllowed) throw new PolicyParseError('model allows an unknown user: refusing it (it would fall open)');
    return set;
  }

  // True when decisions come from the precompiled built-in matcher rather than Casbin's expression evaluator.
  get precompiled(): boolean {
    return this.#fast !== null;
  }

  enforce(q: CasbinRequest): [boolean, string[]] {
    if (this.#fast) return this.#fast.enforce(q);
    return this.enforcer.enforceExSync(q.sub, q.dom, q.otn, q.obj, q.act);
  }
}

// The Authorizer the dispatcher uses: read-only cap, then a cached Casbin decision.
export class CasbinAuthorizer implements Authorizer {
  #set: PolicySet;
  #cache = new Map<string, Decision>();
  #generation = 1;

  constructor(set: PolicySet) {
    this.#set = set;
  }

  get policy(): PolicySet {
    return this.#set;
  }

  get generation(): number {
    return this.#generation;
  }

  // Swap in a new policy; the decision cache goes with the old one.
  replace(set: PolicySet): void {
    this.#set = set;
    this.#cache = new Map();
    this.#generation++;
  }

  can(subject: Subject, object: PolicyObject, permission: string): Decision {
    // The read-only socket grants at most read permissions, whatever the policy says.
    if (subject.readOnly && !isReadPermission(permission)) return { allowed: false, rule: 'read-only connection' };
    const q = casbinRequest(subject, object, permission);
    const key = `${q.sub}\u0000${q.dom}\u0000${q.otn}\u0000${q.obj}\u0000${q.act}`;
    const hit = this.#cache.get(key);
    if (hit) return hit;
    const [allowed, rule] = this.#set.enforce(q);
    const d: Decision = allowed ? { allowed, rule: `p, ${rule.join(', ')}` } : { allowed: false, rule: 'no rule matched (deny by default)' };
    if (this.#cache.size >= CACHE_MAX) this.#cache.clear();
    this.#cache.set(key, d);
    return d;
  }

  tenantsOf(user: string): string[] {
    return [...(this.#set.memberships.get(user) ?? [])].sort();
  }

  // Member of TENANT directly, or of every tenant through a `*` membership.
  mayUseTenant(user: string, tenant: string): boolean {
    return this.tenantsOf(user).includes(tenant) || this.#set.rules.some((r) => r.kind === 'g' && r.fields[0] === user && r.fields[2] === '*');
  }
}

// `virtgate policy lint`: problems that make a policy mean something other than what it says. Lines starting with
// `note: ` are not problems: they say how the shorthand read a rule, so that an operator notices.
export function lintPolicy(rules: PolicyRule[]): string[] {
  const out: string[] = [];
  const members = new Set(rules.filter((r) => r.kind === 'g').map((r) => r.fields[1])); // roles somebody holds
  const users = new Set(rules.filter((r) => r.kind === 'g').map((r) => r.fields[0]));
  const permGlobMatches = (glob: string): boolean => ALL_PERMISSIONS.some((p) => globLike(glob, p));
  const identity = (at: string, who: string): void => {
    const q = splitQualified(who);
    if (!q) return;
    if (!isIdentitySource(q.prefix))
      out.push(`${at}: unknown identity source '${q.prefix}' in '${who}' (sources: ${IDENTITY_SOURCES.join(', ')}): this rule can never apply`);
    else if (q.prefix === 'tcp' && q.name !== 'anonymous')
      out.push(`${at}: '${who}' can never log in: the plain TCP listener's only identity is tcp:anonymous`);
  };
  for (const r of rules) {
    const at = `line ${r.line}: ${r.text}`;
    identity(at, r.fields[0]);
    if (r.kind === 'p') {
      const [sub, dom, obj, act] = r.fields;
      const bare = r.text.split(',')[1].trim();
      if (r.shorthand)
        out.push(`note: ${at}: '${bare}' is neither a built-in role nor granted by any g row: taken as the local user '${sub}' (write ${sub} to say so)`);
      if (/[*?[]/.test(act) ? !permGlobMatches(act) : !isKnownPermission(act)) out.push(`${at}: unknown permission '${act}' (libvirt has no such permission)`);
      if (!OBJECT_RE.test(obj))
        out.push(
          `${at}: object '${obj}' can never match (objects are host, vm:NAME, net:NAME, pool:NAME, vol:POOL:NAME, iface:NAME, nodedev:NAME, or shared:net|pool|vol:...)`,
        );
      else if (obj === 'host' && /^domain:/.test(act)) out.push(`${at}: a domain permission on 'host' can never match`);
      else if (obj !== 'host' && !obj.startsWith('*') && /^connect:/.test(act)) out.push(`${at}: a connect permission on '${obj}' can never match`);
      // An identity with no membership and a rule for no tenant in particular: it can never choose a tenant to use it in.
      if (isIdentitySubject(sub) && !users.has(sub) && dom === '*')
        out.push(`${at}: '${sub}' is in no tenant and the rule names none: this rule can never apply`);
      // A role held only in other tenants: its rule for this tenant never applies (memberships are per tenant).
      else if (dom !== '*' && members.has(sub) && !rules.some((g) => g.kind === 'g' && g.fields[1] === sub && (g.fields[2] === dom || g.fields[2] === '*'))) {
        out.push(`${at}: role '${sub}' is held by nobody in tenant '${dom}' (or in *): this rule can never apply`);
      }
    } else {
      const [user, role, dom] = r.fields;
      if (role === 'host-admin' && dom !== '*') out.push(`${at}: host-admin in one tenant only grants that tenant (use *)`);
      const hasRules = role in BUILTIN_ROLES || rules.some((p) => p.kind === 'p' && p.fields[0] === role);
      if (!hasRules) out.push(`${at}: role '${role}' grants nothing (no rules name it)`);
      // Roles do not nest: a bare member is always the local account, even when a role has that name.
      const bare = r.text.split(',')[1].trim();
      if (!bare.includes(':') && (bare in BUILTIN_ROLES || members.has(bare))) {
        out.push(`${at}: '${bare}' is taken as the local user '${user}', not the role ${bare} (roles do not nest; write ${user} if you mean the user)`);
      }
    }
  }
  return out;
}

// The glob semantics of the matcher for the characters our validator allows (*, ?, [..]).
function globLike(glob: string, s: string): boolean {
  const re = glob
    .replace(/[.+^${}()|\\:@-]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(s);
}
