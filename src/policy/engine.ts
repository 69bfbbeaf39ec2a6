// SPDX-License-Identifier: Apache-2.0
// The Casbin facade: model + policy text in, cached decisions out; a reload builds a new enforcer and swaps it whole.
// No I/O here: the front end reads the files and hands over their text (policy/ imports common/ and casbin only).
import { NAME_RULE, isTenantName } from '../common/names';
import { type Enforcer, type Model, StringAdapter, newEnforcer, newModelFromString } from 'casbin';
import type { Authorizer, Decision, PolicyObject, Subject } from './authorizer';
import { FastMatcher } from './fast-path';
import { BUILTIN_POLICY, BUILTIN_ROLES, MODEL_TEXT } from './model';
import { ALL_PERMISSIONS, isKnownPermission, isReadPermission } from './vocabulary';

const CACHE_MAX = 100_000; // decisions kept between reloads; cleared whole when full
const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,127}$/; // users, roles
const GLOB_RE = /^[A-Za-z0-9_*?.:@+\-[\]]{1,192}$/; // objects and permissions: no commas, quotes or spaces

export interface PolicyRule {
  kind: 'p' | 'g';
  fields: string[];
  line: number;
  text: string;
}

export class PolicyParseError extends Error {}

// Strict CSV: `p, SUBJECT, TENANT, OBJECT, PERMISSION` or `g, USER, ROLE, TENANT`; `#` comments. Anything else is an error.
export function parsePolicyText(text: string, source = 'policy'): PolicyRule[] {
  const rules: PolicyRule[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const f = line.split(',').map((x) => x.trim());
    const where = `${source}:${i + 1}`;
    if (f[0] === 'p') {
      if (f.length !== 5) throw new PolicyParseError(`${where}: expected p, SUBJECT, TENANT, OBJECT, PERMISSION`);
      const [, sub, dom, obj, act] = f;
      if (!NAME_RE.test(sub)) throw new PolicyParseError(`${where}: bad subject '${sub}'`);
      if (dom !== '*' && (dom === '' || !isTenantName(dom))) throw new PolicyParseError(`${where}: bad tenant '${dom}' (tenant names are ${NAME_RULE})`);
      if (!GLOB_RE.test(obj)) throw new PolicyParseError(`${where}: bad object '${obj}'`);
      if (!GLOB_RE.test(act)) throw new PolicyParseError(`${where}: bad permission '${act}'`);
    } else if (f[0] === 'g') {
      if (f.length !== 4) throw new PolicyParseError(`${where}: expected g, USER, ROLE, TENANT`);
      const [, user, role, dom] = f;
      if (!NAME_RE.test(user)) throw new PolicyParseError(`${where}: bad user '${user}'`);
      if (!NAME_RE.test(role)) throw new PolicyParseError(`${where}: bad role '${role}'`);
      if (dom !== '*' && (dom === '' || !isTenantName(dom))) throw new PolicyParseError(`${where}: bad tenant '${dom}' (tenant names are ${NAME_RULE})`);
    } else {
      throw new PolicyParseError(`${where}: a rule starts with 'p' or 'g', got '${f[0]}'`);
    }
    rules.push({ kind: f[0] as 'p' | 'g', fields: f.slice(1), line: i + 1, text: line });
  });
  return rules;
}

// The Casbin object string for a policy object.
export const objectString = (o: PolicyObject): string => (o.kind === 'domain' ? `vm:${o.name}` : 'host');

export interface CasbinRequest {
  sub: string;
  dom: string;
  otn: string;
  obj: string;
  act: string;
}

export function casbinRequest(subject: Subject, object: PolicyObject, permission: string): CasbinRequest {
  const otn = object.kind === 'domain' ? (object.tenant ?? '') : subject.tenant;
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
    this.#fast = isBuiltinModel(model)
      ? new FastMatcher(model.model.get('p')?.get('p')?.policy ?? [], model.model.get('g')?.get('g')?.policy ?? [])
      : null;
    this.memberships = new Map();
    const add = (u: string, t: string): void => {
      if (t === '*') return;
      if (!this.memberships.has(u)) this.memberships.set(u, new Set());
      this.memberships.get(u)!.add(t);
    };
    for (const r of rules) {
      if (r.kind === 'g') add(r.fields[0], r.fields[2]);
      else if (!(r.fields[0] in BUILTIN_ROLES) && !rules.some((g) => g.kind === 'g' && g.fields[1] === r.fields[0])) add(r.fields[0], r.fields[1]);
    }
  }

  // Throws PolicyParseError (or Casbin's error) on anything that does not load, and refuses a model that lets a stranger in.
  static async build(modelText: string, policyText: string, source = 'policy'): Promise<PolicySet> {
    const rules = parsePolicyText(policyText, source);
    let enforcer: Enforcer;
    try {
      const model = newModelFromString(modelText);
      enforcer = await newEnforcer(model, new StringAdapter(`${BUILTIN_POLICY}\n${rules.map((r) => r.text).join('\n')}\n`));
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

// `virtgate policy lint`: problems that make a policy mean something other than what it says.
export function lintPolicy(rules: PolicyRule[]): string[] {
  const out: string[] = [];
  const members = new Set(rules.filter((r) => r.kind === 'g').map((r) => r.fields[1])); // roles somebody holds
  const users = new Set(rules.filter((r) => r.kind === 'g').map((r) => r.fields[0]));
  const permGlobMatches = (glob: string): boolean => ALL_PERMISSIONS.some((p) => globLike(glob, p));
  for (const r of rules) {
    const at = `line ${r.line}: ${r.text}`;
    if (r.kind === 'p') {
      const [sub, dom, obj, act] = r.fields;
      if (/[*?[]/.test(act) ? !permGlobMatches(act) : !isKnownPermission(act)) out.push(`${at}: unknown permission '${act}' (libvirt has no such permission)`);
      if (!/^(vm:.+|host|\*.*)$/.test(obj)) out.push(`${at}: object '${obj}' can never match (objects are vm:NAME or host)`);
      else if (obj === 'host' && /^domain:/.test(act)) out.push(`${at}: a domain permission on 'host' can never match`);
      else if (obj.startsWith('vm:') && /^connect:/.test(act)) out.push(`${at}: a connect permission on a VM can never match`);
      // A subject nobody holds as a role and with no membership of its own: a role with no members (or a user in no tenant).
      if (!(sub in BUILTIN_ROLES) && !members.has(sub) && !users.has(sub) && dom === '*') out.push(`${at}: '${sub}' has no members and no tenant: this rule can never apply`);
      // A role held only in other tenants: its rule for this tenant never applies (memberships are per tenant).
      else if (dom !== '*' && members.has(sub) && !rules.some((g) => g.kind === 'g' && g.fields[1] === sub && (g.fields[2] === dom || g.fields[2] === '*'))) {
        out.push(`${at}: role '${sub}' is held by nobody in tenant '${dom}' (or in *): this rule can never apply`);
      }
    } else {
      const [, role, dom] = r.fields;
      if (role === 'host-admin' && dom !== '*') out.push(`${at}: host-admin in one tenant only grants that tenant (use *)`);
      const hasRules = role in BUILTIN_ROLES || rules.some((p) => p.kind === 'p' && p.fields[0] === role) || rules.some((g) => g.kind === 'g' && g.fields[0] === role);
      if (!hasRules) out.push(`${at}: role '${role}' grants nothing (no rules name it)`);
    }
  }
  return out;
}

// The glob semantics of the matcher for the characters our validator allows (*, ?, [..]).
function globLike(glob: string, s: string): boolean {
  const re = glob.replace(/[.+^${}()|\\:@-]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(s);
}
