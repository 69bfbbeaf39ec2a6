// SPDX-License-Identifier: Apache-2.0
// `virtgate policy check USER TENANT OBJECT PERMISSION` and `virtgate policy lint`: the daemon's policy files, decided
// and linted offline by the same engine the front end uses (src/policy), without a connection.
import fs from 'node:fs';
import path from 'node:path';
import { IDENTITY_SOURCES, NAME_RULE, isUserName, parseQualified, qualify } from '../common/names';
import type { PolicyObject } from '../policy/authorizer';
import { CasbinAuthorizer, PolicySet, lintPolicy, parsePolicyText } from '../policy/engine';
import { BUILTIN_ROLES, type ComposedPolicy, MODEL_TEXT, composePolicy, unixIdentity } from '../policy/model';
import { isKnownPermission } from '../policy/vocabulary';
import { USERS_SCHEMA_SQL } from '../accounts/user-pg';
import { type DbTarget, SCHEMA_SQL, connect, describeTarget, readRows, replaceRows, rowsToText, textToRows } from '../accounts/policy-db';
import type { AdminIo } from './admin';
import { parseAdminArgs } from './admin-args';

const USAGE = `usage: virtgate policy check USER TENANT OBJECT PERMISSION [--home DIR | --policy FILE | --database CONN] [--model FILE]
                             [--vm-tenant TENANT] [--read-only] [--host-admin ID]
       virtgate policy lint [--home DIR | --policy FILE | --database CONN] [--model FILE] [--host-admin ID]
       virtgate policy db init|export --database CONN
       virtgate policy db import FILE --database CONN
  --database CONN: the fleet's policy in PostgreSQL (libpq URL or key=value, no password: --password-file FILE or
  PGPASSFILE). db init creates the tables (policy, SASL users) and their NOTIFY triggers; import replaces every row with FILE's rules in one
  transaction (after checking them as lint does); export prints the rows as a policy.csv.
  USER is SOURCE:NAME as the daemon knows it: unix:NAME (local account), x509:NAME (client certificate), sasl:NAME
  (SASL login) or tcp:anonymous; a bare NAME is the local account unix:NAME.
  TENANT is the session's tenant ('-' for none); OBJECT is vm:NAME or host; PERMISSION a libvirt name (domain:start).
  A VM is taken to belong to TENANT unless --vm-tenant names its tenant ('-' for none).
  The policy is --policy FILE, else DIR/etc/policy.csv (DIR: --home, default .virtgate); the built-in default applies
  while that file does not exist, as in the daemon; the built-in host admins (unix:root, x509:admin) are added to the
  file unless it says 'builtin, off'. --host-admin ID is the daemon's hostAdmin: by default the user running this
  command when not root (as \`virtgate start\` run by that user), '-' for none.
  check exits 0 for allow, 1 for deny; lint exits 1 when it reports.`;

interface Loaded {
  site: string | null; // the file's text; null: no file (the built-in default)
  source: string; // the file, or 'built-in default policy'
  model: string;
  hostAdmin: string;
}

type Values = { home?: string; policy?: string; model?: string; 'host-admin'?: string; database?: string; 'password-file'?: string };

const target = (values: Values): DbTarget => ({ conn: values.database!, passwordFile: values['password-file'] });

// The database's rows as the daemon reads them (accounts/policy-db.ts), as the text of a policy file.
async function dbText(t: DbTarget): Promise<string> {
  const c = await connect(t);
  try {
    return rowsToText(await readRows(c)).text;
  } finally {
    await c.end();
  }
}

async function load(values: Values): Promise<Loaded> {
  if (values.database !== undefined) {
    const l = loadFile({ ...values, policy: '/dev/null' });
    return { ...l, site: await dbText(target(values)), source: describeTarget(target(values)) };
  }
  return loadFile(values);
}

function loadFile(values: Values): Loaded {
  // A mistyped --home would otherwise quietly lint the built-in default and report "no problems".
  if (values.home !== undefined && !fs.statSync(values.home, { throwIfNoEntry: false })?.isDirectory()) {
    throw new Error(`--home ${values.home}: no such directory (the daemon's state root, which holds etc/policy.csv)`);
  }
  const file = values.policy ?? path.join(path.resolve(values.home ?? '.virtgate'), 'etc', 'policy.csv');
  const model = values.model ? fs.readFileSync(values.model, 'utf8') : MODEL_TEXT;
  const me = process.getuid?.() ?? 0;
  let hostAdmin = values['host-admin'] ?? (me === 0 ? '' : unixIdentity(me, fs.readFileSync('/etc/passwd', 'utf8')));
  if (hostAdmin === '-') hostAdmin = '';
  if (hostAdmin !== '' && !parseQualified(hostAdmin)) throw new Error(`--host-admin: expected SOURCE:NAME or '-', not '${hostAdmin}'`);
  try {
    return { site: fs.readFileSync(file, 'utf8'), source: file, model, hostAdmin };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || values.policy) throw e;
    return { site: null, source: 'built-in default policy', model, hostAdmin };
  }
}

// The rows the daemon loads: the file's, then the built-in memberships (model.ts composePolicy, as the daemon).
function compose(l: Loaded): ComposedPolicy {
  return composePolicy(l.site, l.hostAdmin, l.source);
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
      'host-admin': { type: 'string' },
      database: { type: 'string' },
      'password-file': { type: 'string' },
    } as const,
    USAGE,
    io,
  );
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  const [verb] = positionals;
  if (verb === 'db') return db(positionals.slice(1), values, io);
  if ((verb === 'check' && positionals.length !== 5) || (verb === 'lint' && positionals.length !== 1) || (verb !== 'check' && verb !== 'lint')) {
    io.stderr(`${USAGE}\n`);
    return 2;
  }
  if ([values.home, values.policy, values.database].filter((v) => v !== undefined).length > 1) {
    io.stderr(`error: --home, --policy and --database are alternatives\n${USAGE}\n`);
    return 2;
  }
  let loaded: Loaded;
  try {
    loaded = await load(values);
  } catch (e) {
    io.stderr(`error: ${(e as Error).message}\n`);
    return 2;
  }
  return verb === 'lint' ? lint(loaded, io) : check(loaded, positionals.slice(1), values, io);
}

async function lint(l: Loaded, io: AdminIo): Promise<number> {
  let problems: string[];
  try {
    const c = compose(l);
    const rules = parsePolicyText(c.text, l.source);
    await PolicySet.build(l.model, c.text, l.source); // the model loads and does not fall open
    problems = lintPolicy(rules);
    problems.push(
      c.admins.length
        ? `note: built-in host admins added: ${c.admins.join(', ')} (a line 'builtin, off' drops them)`
        : "note: built-in host admins off ('builtin, off'): only this file's rows apply",
    );
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
  let c: ComposedPolicy;
  try {
    c = compose(l);
    set = await PolicySet.build(l.model, c.text, l.source);
  } catch (e) {
    const msg = (e as Error).message;
    io.stderr(`${msg.startsWith(l.source) ? '' : `${l.source}: `}${msg}\n`);
    return 2;
  }
  const authz = new CasbinAuthorizer(set);
  const d = authz.can({ user, tenant, readOnly: values['read-only'] === true }, object, permission);
  const vmTenant = object.kind === 'domain' ? ` (a VM of ${object.tenant === '' ? 'no tenant' : `tenant ${object.tenant}`})` : '';
  io.stdout(`${d.allowed ? 'allow' : 'deny'}: ${user} in ${tenant === '' ? 'no tenant' : `tenant ${tenant}`}, ${permission} on ${objectArg}${vmTenant}\n`);
  io.stdout(`  rule: ${d.rule}${d.allowed ? ` [${whereFrom(d.rule, set, l.source, c.siteLines)}]` : ''}\n`);
  if (d.allowed) for (const g of membershipsFor(user, d.rule, tenant, set, l.source, c.siteLines)) io.stdout(`  via:  ${g}\n`);
  if (!d.allowed && tenant !== '' && !authz.mayUseTenant(user, tenant))
    io.stdout(`  note: ${user} is not a member of ${tenant}; the daemon refuses that tenant at connect time\n`);
  return d.allowed ? 0 : 1;
}

// 'p, owner, *, vm:*, domain:*' -> 'built-in role owner' or 'FILE:LINE'. Rules past siteLines are built in.
function whereFrom(rule: string, set: PolicySet, source: string, siteLines: number): string {
  const fields = rule.replace(/^p, /, '').split(', ');
  const own = set.rules.find((r) => r.kind === 'p' && r.line <= siteLines && r.fields.join(', ') === fields.join(', '));
  if (own) return `${source}:${own.line}`;
  return fields[0] in BUILTIN_ROLES ? `built-in role ${fields[0]}` : 'built-in';
}

// The g rows through which USER holds the rule's subject (directly: a rule may also name the user).
function membershipsFor(user: string, rule: string, tenant: string, set: PolicySet, source: string, siteLines: number): string[] {
  const sub = rule.replace(/^p, /, '').split(', ')[0];
  if (sub === user) return [];
  return set.rules
    .filter((r) => r.kind === 'g' && r.fields[0] === user && (r.fields[2] === '*' || r.fields[2] === tenant))
    .map((r) => `${r.text} [${r.line <= siteLines ? `${source}:${r.line}` : 'built-in'}]`);
}

// `virtgate policy db init|import FILE|export`: the fleet's rows. Import checks FILE as the daemon would load it first.
async function db([sub, file, ...rest]: string[], values: Values, io: AdminIo): Promise<number> {
  const ok = (sub === 'import' && file !== undefined && rest.length === 0) || ((sub === 'init' || sub === 'export') && file === undefined);
  if (!ok || values.database === undefined) {
    io.stderr(`${USAGE}\n`);
    return 2;
  }
  const t = target(values);
  let text = '';
  if (sub === 'import') {
    try {
      text = fs.readFileSync(file, 'utf8');
      const model = values.model ? fs.readFileSync(values.model, 'utf8') : MODEL_TEXT;
      await PolicySet.build(model, composePolicy(text, '', file).text, file);
    } catch (e) {
      io.stderr(`error: ${(e as Error).message} (nothing imported)\n`);
      return 1;
    }
  }
  try {
    const c = await connect(t);
    try {
      if (sub === 'init') {
        await c.query(SCHEMA_SQL);
        await c.query(USERS_SCHEMA_SQL);
        io.stdout(`${describeTarget(t)}: policy and SASL users tables and their change triggers ready\n`);
      } else if (sub === 'import') {
        const rows = textToRows(text);
        await replaceRows(c, rows);
        io.stdout(`${describeTarget(t)}: ${rows.length} rules imported from ${file} (every daemon reloads now)\n`);
      } else {
        const { text: out } = rowsToText(await readRows(c));
        io.stdout(`# virtgate policy exported from ${describeTarget(t)} at ${new Date().toISOString()}\n${out}`);
      }
    } finally {
      await c.end();
    }
  } catch (e) {
    io.stderr(`error: ${describeTarget(t)}: ${(e as Error).message}\n`);
    return 1;
  }
  return 0;
}
