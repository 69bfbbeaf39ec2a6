// SPDX-License-Identifier: Apache-2.0
// `virtgate policy check USER TENANT OBJECT PERMISSION` and `virtgate policy lint`: the daemon's policy files, decided
// and linted offline by the same engine the front end uses (src/policy), without a connection.
import fs from 'node:fs';
import path from 'node:path';
import { IDENTITY_SOURCES, NAME_RULE, isUserName, parseQualified, qualify } from '../common/names';
import type { PolicyObject } from '../policy/authorizer';
import { CasbinAuthorizer, PolicySet, lintPolicy, parsePolicyText } from '../policy/engine';
import { BUILTIN_ROLES, DEFAULT_POLICY, MODEL_TEXT } from '../policy/model';
import { isKnownPermission } from '../policy/vocabulary';
import type { AdminIo } from './admin';
import { parseAdminArgs } from './admin-args';

const USAGE = `usage: virtgate policy check USER TENANT OBJECT PERMISSION [--home DIR | --policy FILE] [--model FILE]
                             [--vm-tenant TENANT] [--read-only]
       virtgate policy lint [--home DIR | --policy FILE] [--model FILE]
  USER is SOURCE:NAME as the daemon knows it: unix:NAME (local account), x509:NAME (client certificate), sasl:NAME
  (SASL login) or tcp:anonymous; a bare NAME is the local account unix:NAME.
  TENANT is the session's tenant ('-' for none); OBJECT is vm:NAME or host; PERMISSION a libvirt name (domain:start).
  A VM is taken to belong to TENANT unless --vm-tenant names its tenant ('-' for none).
  The policy is --policy FILE, else DIR/etc/policy.csv (DIR: --home, default .virtgate); the built-in default applies
  while that file does not exist, as in the daemon. check exits 0 for allow, 1 for deny; lint exits 1 when it reports.`;

interface Loaded {
  text: string;
  source: string; // the file, or 'built-in default policy'
  model: string;
}

function load(values: { home?: string; policy?: string; model?: string }): Loaded {
  // A mistyped --home would otherwise quietly lint the built-in default and report "no problems".
  if (values.home !== undefined && !fs.statSync(values.home, { throwIfNoEntry: false })?.isDirectory()) {
    throw new Error(`--home ${values.home}: no such directory (the daemon's state root, which holds etc/policy.csv)`);
  }
  const file = values.policy ?? path.join(path.resolve(values.home ?? '.virtgate'), 'etc', 'policy.csv');
  const model = values.model ? fs.readFileSync(values.model, 'utf8') : MODEL_TEXT;
  try {
    return { text: fs.readFileSync(file, 'utf8'), source: file, model };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || values.policy) throw e;
    return { text: DEFAULT_POLICY, source: 'built-in default policy', model };
  }
}

const none = (t: string): string => (t === '-' ? '' : t);

export async function policyMain(argv: string[], io: AdminIo): Promise<number> {
  const parsed = parseAdminArgs(
    argv,
    {
      home: { type: 'string' },
      policy: { type: 'string' },
      model: { type: 'string' },
      'vm-tenant': { type: 'string' },
      'read-only': { type: 'boolean' },
    } as const,
    USAGE,
    io,
  );
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  const [verb] = positionals;
  if ((verb === 'check' && positionals.length !== 5) || (verb === 'lint' && positionals.length !== 1) || (verb !== 'check' && verb !== 'lint')) {
    io.stderr(`${USAGE}\n`);
    return 2;
  }
  if (values.home !== undefined && values.policy !== undefined) {
    io.stderr(`error: --home and --policy are alternatives\n${USAGE}\n`);
    return 2;
  }
  let loaded: Loaded;
  try {
    loaded = load(values);
  } catch (e) {
    io.stderr(`error: ${(e as Error).message}\n`);
    return 2;
  }
  return verb === 'lint' ? lint(loaded, io) : check(loaded, positionals.slice(1), values, io);
}

async function lint(l: Loaded, io: AdminIo): Promise<number> {
  let problems: string[];
  try {
    const rules = parsePolicyText(l.text, l.source);
    await PolicySet.build(l.model, l.text, l.source); // the model loads and does not fall open
    problems = lintPolicy(rules);
  } catch (e) {
    const msg = (e as Error).message;
    io.stderr(`${msg.startsWith(l.source) ? '' : `${l.source}: `}${msg}\n`);
    return 1;
  }
  for (const p of problems) io.stdout(p.startsWith('note: ') ? `${l.source}: note: ${p.slice(6)}\n` : `${l.source}: ${p}\n`);
  const n = problems.filter((p) => !p.startsWith('note: ')).length;
  io.stdout(n === 0 ? `${l.source}: no problems\n` : `${n} problem${n === 1 ? '' : 's'}\n`);
  return n === 0 ? 0 : 1;
}

// The user as the daemon's policyUser() names it; the policy's shorthand applies (bare NAME = unix:NAME).
function qualifiedUser(arg: string): string | null {
  if (!arg.includes(':')) return isUserName(arg) ? qualify('unix', arg) : null;
  return parseQualified(arg) ? arg : null;
}

async function check(
  l: Loaded,
  [userArg, tenantArg, objectArg, permission]: string[],
  values: { 'vm-tenant'?: string; 'read-only'?: boolean },
  io: AdminIo,
): Promise<number> {
  const user = qualifiedUser(userArg);
  if (user === null) {
    io.stderr(`error: USER is SOURCE:NAME (SOURCE one of ${IDENTITY_SOURCES.join(', ')}; NAME ${NAME_RULE}) or a bare NAME (= unix:NAME), not '${userArg}'\n`);
    return 2;
  }
  const tenant = none(tenantArg);
  let object: PolicyObject;
  if (objectArg === 'host') object = { kind: 'connect', name: 'virtgate' };
  else if (/^vm:./.test(objectArg)) object = { kind: 'domain', name: objectArg.slice(3), tenant: none(values['vm-tenant'] ?? tenantArg) };
  else {
    io.stderr(`error: OBJECT is vm:NAME or host, not '${objectArg}'\n`);
    return 2;
  }
  if (!isKnownPermission(permission)) io.stderr(`warning: '${permission}' is not a libvirt permission; no call ever asks for it\n`);
  if (object.kind === 'connect' && permission.startsWith('domain:')) io.stderr(`warning: the daemon asks domain permissions on VMs, not on host\n`);
  if (object.kind === 'domain' && permission.startsWith('connect:')) io.stderr(`warning: the daemon asks connect permissions on host, not on VMs\n`);
  let set: PolicySet;
  try {
    set = await PolicySet.build(l.model, l.text, l.source);
  } catch (e) {
    const msg = (e as Error).message;
    io.stderr(`${msg.startsWith(l.source) ? '' : `${l.source}: `}${msg}\n`);
    return 2;
  }
  const authz = new CasbinAuthorizer(set);
  const d = authz.can({ user, tenant, readOnly: values['read-only'] === true }, object, permission);
  const vmTenant = object.kind === 'domain' ? ` (a VM of ${object.tenant === '' ? 'no tenant' : `tenant ${object.tenant}`})` : '';
  io.stdout(`${d.allowed ? 'allow' : 'deny'}: ${user} in ${tenant === '' ? 'no tenant' : `tenant ${tenant}`}, ${permission} on ${objectArg}${vmTenant}\n`);
  io.stdout(`  rule: ${d.rule}${d.allowed ? ` [${whereFrom(d.rule, set, l.source)}]` : ''}\n`);
  if (d.allowed) for (const g of membershipsFor(user, d.rule, tenant, set, l.source)) io.stdout(`  via:  ${g}\n`);
  if (!d.allowed && tenant !== '' && !authz.mayUseTenant(user, tenant))
    io.stdout(`  note: ${user} is not a member of ${tenant}; the daemon refuses that tenant at connect time\n`);
  return d.allowed ? 0 : 1;
}

// 'p, owner, *, vm:*, domain:*' -> 'built-in role owner' or 'FILE:LINE'.
function whereFrom(rule: string, set: PolicySet, source: string): string {
  const fields = rule.replace(/^p, /, '').split(', ');
  const own = set.rules.find((r) => r.kind === 'p' && r.fields.join(', ') === fields.join(', '));
  if (own) return `${source}:${own.line}`;
  return fields[0] in BUILTIN_ROLES ? `built-in role ${fields[0]}` : 'built-in';
}

// The g rows through which USER holds the rule's subject (directly: a rule may also name the user).
function membershipsFor(user: string, rule: string, tenant: string, set: PolicySet, source: string): string[] {
  const sub = rule.replace(/^p, /, '').split(', ')[0];
  if (sub === user) return [];
  return set.rules
    .filter((r) => r.kind === 'g' && r.fields[0] === user && (r.fields[2] === '*' || r.fields[2] === tenant))
    .map((r) => `${r.text} [${source}:${r.line}]`);
}
