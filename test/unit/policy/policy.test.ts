// SPDX-License-Identifier: Apache-2.0
// The Casbin facade over the README's example policy: table rows, parse errors, lint, and the procedure-table mapping meta-test.
import fc from 'fast-check';
import { type CasbinAuthorizer as Authz, CasbinAuthorizer, PolicySet, casbinRequest, lintPolicy, parsePolicyText } from '../../../src/policy/engine';
import { EXAMPLE_POLICY, MODEL_TEXT } from '../../../src/policy/model';
import { ALL_PERMISSIONS, isKnownPermission, isReadPermission } from '../../../src/policy/vocabulary';
import { allProcs } from '../../../src/protocol/procs/remote';
import { handlerFor } from '../../../src/unprivileged/handlers';
import { P } from '../../../src/protocol/procs/remote';

let authz: Authz;
beforeAll(async () => {
  authz = new CasbinAuthorizer(await PolicySet.build(MODEL_TEXT, EXAMPLE_POLICY));
});

const vm = (name: string, tenant: string) => ({ kind: 'domain' as const, name, tenant });
const host = { kind: 'connect' as const, name: 'virtgate' };

// (user, session tenant, object, permission, expected)
const rows: [string, string, ReturnType<typeof vm> | typeof host, string, boolean][] = [
  ['unix:alice', 'acme', vm('web', 'acme'), 'domain:write', true],
  ['unix:alice', 'acme', vm('web', 'acme'), 'domain:save', true],
  ['unix:alice', 'acme', vm('web', 'acme'), 'domain:delete', true],
  ['unix:alice', 'acme', vm('web', 'acme'), 'domain:read_secure', true],
  ['unix:alice', 'acme', vm('app', 'globex'), 'domain:getattr', false],
  ['unix:alice', 'acme', vm('test', ''), 'domain:getattr', false],
  ['unix:bob', 'acme', vm('web', 'acme'), 'domain:start', true],
  ['unix:bob', 'acme', vm('web', 'acme'), 'domain:stop', true],
  ['unix:bob', 'acme', vm('web', 'acme'), 'domain:suspend', true],
  ['unix:bob', 'acme', vm('web', 'acme'), 'domain:init_control', true],
  ['unix:bob', 'acme', vm('web', 'acme'), 'domain:write', false],
  ['unix:bob', 'acme', vm('web', 'acme'), 'domain:delete', false],
  ['unix:bob', 'acme', vm('web', 'acme'), 'domain:read_secure', false],
  ['unix:carol', 'globex', vm('app', 'globex'), 'domain:getattr', true],
  ['unix:carol', 'globex', vm('app', 'globex'), 'domain:read', true],
  ['unix:carol', 'globex', vm('app', 'globex'), 'domain:start', false],
  ['unix:carol', 'globex', vm('web', 'acme'), 'domain:getattr', false],
  ['unix:carol', 'acme', vm('web', 'acme'), 'domain:getattr', false], // not her tenant, whatever she claims
  ['unix:carol', 'globex', host, 'connect:search_domains', true],
  ['unix:carol', 'globex', host, 'connect:write', false],
  ['unix:root', '', vm('web', 'acme'), 'domain:delete', true],
  ['unix:root', '', vm('test', ''), 'domain:write', true],
  ['x509:admin', 'globex', vm('web', 'acme'), 'domain:stop', true],
  ['unix:root', '', host, 'connect:write', true],
  ['unix:eve', '', host, 'connect:getattr', false],
  ['unix:eve', 'acme', vm('web', 'acme'), 'domain:getattr', false],
  // One name, three identities: only the local account `root` and the certificate `admin` are host admins.
  ['x509:root', '', host, 'connect:write', false],
  ['x509:root', '', vm('web', 'acme'), 'domain:getattr', false],
  ['sasl:root', '', host, 'connect:write', false],
  ['sasl:root', '', vm('test', ''), 'domain:getattr', false],
  ['tcp:root', '', host, 'connect:getattr', false],
  ['root', '', host, 'connect:getattr', false], // an unqualified name is nobody
  ['unix:admin', 'globex', vm('web', 'acme'), 'domain:stop', false],
  ['sasl:admin', '', host, 'connect:write', false],
  ['x509:alice', 'acme', vm('web', 'acme'), 'domain:getattr', false],
  ['sasl:alice', 'acme', vm('web', 'acme'), 'domain:getattr', false],
];

test.each(rows)('%s in %s: %j %s -> %s', (user, tenant, obj, perm, want) => {
  expect(authz.can({ user, tenant, readOnly: false }, obj, perm).allowed).toBe(want);
});

test('the read-only socket grants at most read permissions, whatever the policy says', () => {
  expect(authz.can({ user: 'unix:root', tenant: '', readOnly: true }, vm('web', 'acme'), 'domain:read').allowed).toBe(true);
  for (const p of ['domain:write', 'domain:start', 'domain:delete', 'domain:read_secure', 'connect:write']) {
    expect(authz.can({ user: 'unix:root', tenant: '', readOnly: true }, vm('web', 'acme'), p)).toEqual({ allowed: false, rule: 'read-only connection' });
  }
});

test('the deciding rule is reported', () => {
  expect(authz.can({ user: 'unix:bob', tenant: 'acme', readOnly: false }, vm('web', 'acme'), 'domain:start').rule).toBe('p, operator, *, vm:*, domain:start');
  expect(authz.can({ user: 'unix:bob', tenant: 'acme', readOnly: false }, vm('web', 'acme'), 'domain:write').rule).toMatch(/deny by default/);
});

test('tenants: memberships, and host admins may use any tenant', () => {
  expect(authz.tenantsOf('unix:alice')).toEqual(['acme']);
  expect(authz.tenantsOf('alice')).toEqual([]);
  expect(authz.tenantsOf('unix:root')).toEqual([]);
  expect(authz.mayUseTenant('unix:root', 'acme')).toBe(true);
  expect(authz.mayUseTenant('x509:root', 'acme')).toBe(false);
  expect(authz.mayUseTenant('unix:carol', 'acme')).toBe(false);
});

test('rules naming single VMs and globs', async () => {
  const a = new CasbinAuthorizer(
    await PolicySet.build(MODEL_TEXT, 'g, dave, viewer, acme\np, dave, acme, vm:web-*, domain:start\np, dave, acme, vm:db1, domain:stop\n'),
  );
  const s = { user: 'unix:dave', tenant: 'acme', readOnly: false };
  expect(a.can(s, vm('web-1', 'acme'), 'domain:start').allowed).toBe(true);
  expect(a.can(s, vm('web-1', 'acme'), 'domain:stop').allowed).toBe(false);
  expect(a.can(s, vm('db1', 'acme'), 'domain:stop').allowed).toBe(true);
  expect(a.can(s, vm('db2', 'acme'), 'domain:stop').allowed).toBe(false);
  expect(a.can(s, vm('web-1', 'globex'), 'domain:start').allowed).toBe(false);
  // define/create decide on `vm:*`: a per-VM rule never grants creating new VMs.
  expect(a.can(s, vm('*', 'acme'), 'domain:start').allowed).toBe(false);
});

test('malformed policies and models are refused; a model that falls open is refused', async () => {
  for (const bad of ['p, alice, acme, vm:*', 'x, a, b, c', 'g, alice, owner', 'p, al ice, acme, vm:*, domain:read', 'p, a, b, "vm:*", domain:read']) {
    await expect(PolicySet.build(MODEL_TEXT, bad)).rejects.toThrow();
  }
  await expect(PolicySet.build('[request_definition]\nr = sub\n', '')).rejects.toThrow();
  await expect(PolicySet.build(MODEL_TEXT.replace(/^m = .*$/m, 'm = true'), '')).rejects.toThrow(/fall open/);
});

// The shorthand, resolved by the parser: (policy text, the normalised fields of its last rule, shorthand flag)
test.each([
  ['g, alice, owner, acme', ['unix:alice', 'owner', 'acme'], undefined],
  ['g, unix:alice, owner, acme', ['unix:alice', 'owner', 'acme'], undefined],
  ['g, x509:alice, owner, acme', ['x509:alice', 'owner', 'acme'], undefined],
  ['g, sasl:alice, owner, acme', ['sasl:alice', 'owner', 'acme'], undefined],
  ['g, tcp:anonymous, viewer, *', ['tcp:anonymous', 'viewer', '*'], undefined],
  ['g, viewer, owner, acme', ['unix:viewer', 'owner', 'acme'], undefined], // a bare member is always an account: roles do not nest
  ['p, owner, acme, vm:x, domain:read', ['owner', 'acme', 'vm:x', 'domain:read'], undefined], // built-in role
  ['g, bob, webops, acme\np, webops, acme, vm:web-*, domain:start', ['webops', 'acme', 'vm:web-*', 'domain:start'], undefined], // a g row grants it
  ['p, webops, acme, vm:web-*, domain:start\ng, bob, webops, acme', ['unix:bob', 'webops', 'acme'], undefined], // ... in any order
  ['p, dave, acme, vm:web-*, domain:start', ['unix:dave', 'acme', 'vm:web-*', 'domain:start'], true], // no such role: the account
  ['p, x509:dave, acme, vm:web-*, domain:start', ['x509:dave', 'acme', 'vm:web-*', 'domain:start'], undefined],
  ['p, ldap:dave, acme, vm:*, domain:read', ['ldap:dave', 'acme', 'vm:*', 'domain:read'], undefined], // kept: can never match; lint reports it
])('parse %j -> %j', (text, fields, shorthand) => {
  const rules = parsePolicyText(text);
  expect(rules[rules.length - 1].fields).toEqual(fields);
  expect(rules[rules.length - 1].shorthand).toBe(shorthand);
});

test.each([
  ['g, alice, x509:owner, acme', /bad role 'x509:owner'/],
  ['g, alice, own er, acme', /bad role/],
  ['g, x509:, owner, acme', /bad user 'x509:'/],
  ['g, x509:-a, owner, acme', /bad user/],
  ['g, :alice, owner, acme', /bad user/],
  ['g, X509:alice, owner, acme', /bad user/],
  ['g, x509:a:b, owner, acme', /bad user/],
  ['p, sasl:, acme, vm:*, domain:read', /bad subject/],
  ['p, -dave, acme, vm:*, domain:read', /bad subject/],
  [`g, ${'a'.repeat(65)}, owner, acme`, /bad user/],
  ['g, alice, owner, -acme', /bad tenant/],
])('refused: %j', (text, err) => {
  expect(() => parsePolicyText(text, 'f.csv')).toThrow(err);
});

test('the parsed identities are what Casbin and the precompiled matcher see, and what tenants are kept under', async () => {
  const set = await PolicySet.build(MODEL_TEXT, 'g, alice, owner, acme\ng, x509:alice, viewer, globex\np, dave, acme, vm:web-*, domain:start\n');
  expect(await set.enforcer.getGroupingPolicy()).toEqual(
    expect.arrayContaining([
      ['unix:alice', 'owner', 'acme'],
      ['x509:alice', 'viewer', 'globex'],
    ]),
  );
  expect(await set.enforcer.getPolicy()).toEqual(expect.arrayContaining([['unix:dave', 'acme', 'vm:web-*', 'domain:start']]));
  const a = new CasbinAuthorizer(set);
  expect(a.tenantsOf('unix:alice')).toEqual(['acme']);
  expect(a.tenantsOf('x509:alice')).toEqual(['globex']);
  expect(a.tenantsOf('unix:dave')).toEqual(['acme']);
  expect(a.tenantsOf('dave')).toEqual([]);
  expect(a.can({ user: 'x509:alice', tenant: 'globex', readOnly: false }, vm('app', 'globex'), 'domain:read').allowed).toBe(true);
  expect(a.can({ user: 'x509:alice', tenant: 'acme', readOnly: false }, vm('web', 'acme'), 'domain:read').allowed).toBe(false);
  expect(a.can({ user: 'unix:dave', tenant: 'acme', readOnly: false }, vm('web-1', 'acme'), 'domain:start').allowed).toBe(true);
  expect(a.can({ user: 'sasl:dave', tenant: 'acme', readOnly: false }, vm('web-1', 'acme'), 'domain:start').allowed).toBe(false);
});

test('policy lint: identity sources, the shorthand note, members that look like roles', () => {
  const out = lintPolicy(
    parsePolicyText(
      [
        'g, ldap:alice, owner, acme',
        'p, tcp:bob, acme, vm:*, domain:read',
        'p, dave, acme, vm:web-*, domain:start',
        'g, viewer, owner, acme',
        'g, x509:carol, viewer, globex',
      ].join('\n'),
    ),
  );
  expect(out).toEqual([
    expect.stringMatching(/^line 1: .*unknown identity source 'ldap' in 'ldap:alice'/),
    expect.stringMatching(/^line 2: .*'tcp:bob' can never log in/),
    expect.stringMatching(/^note: line 3: .*'dave' is neither a built-in role nor granted by any g row: taken as the local user 'unix:dave'/),
    expect.stringMatching(/^line 4: .*'viewer' is taken as the local user 'unix:viewer', not the role viewer/),
  ]);
});

test('policy lint: unknown permissions, roles with no members, rules that can never match', () => {
  const out = lintPolicy(
    parsePolicyText(
      [
        'p, auditors, *, vm:*, domain:read',
        'p, bob, acme, vm:web, domain:strat',
        'p, bob, acme, host, domain:start',
        'p, bob, acme, vms:web, domain:start',
        'g, bob, operator, acme',
        'g, eve, ghosts, acme',
        'p, bob, acme, vm:x, domain:sta*',
      ].join('\n'),
    ),
  );
  expect(out.join('\n')).toMatch(/'unix:auditors' is in no tenant and the rule names none/);
  expect(out.join('\n')).toMatch(/unknown permission 'domain:strat'/);
  expect(out.join('\n')).toMatch(/domain permission on 'host' can never match/);
  expect(out.join('\n')).toMatch(/object 'vms:web' can never match/);
  expect(out.join('\n')).toMatch(/role 'ghosts' grants nothing/);
  expect(out.filter((l) => !l.startsWith('note: ')).join('\n')).not.toMatch(/sta\*/);
  expect(out.filter((l) => l.startsWith('note: '))).toHaveLength(5); // 'bob' taken as unix:bob, each time
  expect(lintPolicy(parsePolicyText(EXAMPLE_POLICY))).toEqual([]);
});

// Meta-test [libvirt check-aclrules]: every procedure maps to libvirt permissions, or is explicitly exempt.
// auth* run before there is an identity (libvirt's needAuth=false set); events are messages, not calls.
const EXEMPT = new Set(['connectClose', 'connectIsSecure', 'domainEventLifecycle', 'domainEventCallbackLifecycle']);
test.each(allProcs().map((d) => [d.name, d] as const))('%s has an ACL mapping in the vocabulary, or is exempt', (name, def) => {
  if (EXEMPT.has(name) || def.message || (name.startsWith('auth') && !def.needAuth)) {
    expect(def.acl).toHaveLength(0);
    return;
  }
  expect(def.acl.length).toBeGreaterThan(0);
  for (const r of def.acl) expect(isKnownPermission(r.perm)).toBe(true);
  if (def.aclFilter) expect(isKnownPermission(def.aclFilter)).toBe(true);
});

test('flag-dependent permissions: dumpxml --security-info needs read_secure; define needs write and save', () => {
  const { requiredPermissions } = jest.requireActual('../../../src/protocol/procs/remote');
  expect(requiredPermissions(P.DOMAIN_GET_XML_DESC, 0)).toEqual(['domain:read']);
  expect(requiredPermissions(P.DOMAIN_GET_XML_DESC, 1)).toEqual(['domain:read', 'domain:read_secure']);
  expect(requiredPermissions(P.DOMAIN_DEFINE_XML, 0)).toEqual(['domain:write', 'domain:save']);
  expect(ALL_PERMISSIONS).toHaveLength(105);
});

// ---------- properties ----------

const USERS = ['u1', 'u2', 'u3'];
const TENANTS = ['t1', 't2'];
const ROLES = ['viewer', 'operator', 'owner', 'host-admin', 'r1'];
const PERMS = ['connect:getattr', 'connect:search_domains', 'connect:write', 'domain:getattr', 'domain:read', 'domain:start', 'domain:write', 'domain:delete'];
const OBJ_GLOBS = ['*', 'vm:*', 'vm:a*', 'vm:b', 'host'];
const PERM_GLOBS = [...PERMS, 'domain:*', '*', 'connect:*'];

const policyArb = fc
  .array(
    fc.oneof(
      fc
        .tuple(fc.constantFrom(...USERS, 'x509:u1', 'sasl:u2'), fc.constantFrom(...ROLES), fc.constantFrom(...TENANTS, '*'))
        .map(([u, r, t]) => `g, ${u}, ${r}, ${t}`),
      fc
        .tuple(
          fc.constantFrom(...USERS, 'r1', 'unix:u3', 'x509:u1'),
          fc.constantFrom(...TENANTS, '*'),
          fc.constantFrom(...OBJ_GLOBS),
          fc.constantFrom(...PERM_GLOBS),
        )
        .map(([s, t, o, p]) => `p, ${s}, ${t}, ${o}, ${p}`),
    ),
    { maxLength: 8 },
  )
  .map((l) => l.join('\n'));
const subjectArb = fc.record({
  user: fc.constantFrom(...USERS.map((u) => `unix:${u}`), 'x509:u1', 'sasl:u2', 'u1', 'stranger'),
  tenant: fc.constantFrom(...TENANTS, ''),
  readOnly: fc.boolean(),
});
const domainArb = fc.record({ name: fc.constantFrom('a1', 'a2', 'b', 'c'), tenant: fc.constantFrom(...TENANTS, '') });

test('property: the facade decides exactly as Casbin enforce() for the mapped request (read-only capped)', async () => {
  await fc.assert(
    fc.asyncProperty(
      policyArb,
      fc.array(fc.tuple(subjectArb, fc.option(domainArb, { nil: undefined }), fc.constantFrom(...PERMS)), { minLength: 1, maxLength: 20 }),
      async (policy, reqs) => {
        const set = await PolicySet.build(MODEL_TEXT, policy);
        const a = new CasbinAuthorizer(set);
        for (const [subject, dom, perm] of reqs) {
          const obj = dom ? { kind: 'domain' as const, ...dom } : host;
          const q = casbinRequest(subject, obj, perm);
          const casbin = set.enforcer.enforceSync(q.sub, q.dom, q.otn, q.obj, q.act);
          const want = casbin && (!subject.readOnly || isReadPermission(perm));
          expect(a.can(subject, obj, perm).allowed).toBe(want);
          expect(a.can(subject, obj, perm).allowed).toBe(want); // and again, from the cache
        }
      },
    ),
    { numRuns: 150 },
  );
});

test('property: no list ever contains a VM the user cannot domain:getattr', async () => {
  const list = handlerFor(P.CONNECT_LIST_ALL_DOMAINS.proc)!;
  await fc.assert(
    fc.asyncProperty(policyArb, subjectArb, fc.uniqueArray(domainArb, { selector: (d) => d.name }), async (policy, subject, doms) => {
      const a = new CasbinAuthorizer(await PolicySet.build(MODEL_TEXT, policy));
      const summaries = doms.map((d, i) => ({ ...d, uuid: Buffer.alloc(16, i + 1), id: -1, state: 5, reason: 0, persistent: true }));
      const visible = (d: { name: string; tenant?: string }) =>
        a.can(subject, { kind: 'domain', name: d.name, tenant: d.tenant ?? '' }, 'domain:getattr').allowed;
      // No mirror answer (undefined = not synced): the list comes from the helper call.
      const ctx = {
        helper: { call: async () => ({ domains: summaries }), act: async () => ({ action: 'list', domains: summaries }) },
        mirror: { list: () => undefined, lookup: () => undefined },
        visible,
      } as never;
      const { domains } = (await list(ctx, { needResults: 1, flags: 0 })) as { domains: { name: string }[] };
      for (const d of domains) expect(visible(summaries.find((s) => s.name === d.name)!)).toBe(true);
      expect(domains.length).toBe(summaries.filter(visible).length);
    }),
    { numRuns: 150 },
  );
});

// ---------- the precompiled built-in matcher (fast-path.ts) against Casbin itself ----------

const NAMES = ['u1', 'u2', 'r1', 'r2', 'viewer', 'owner', 'host-admin'];
const IDS = ['unix:u1', 'unix:r1', 'x509:u1', 'sasl:u2', 'tcp:anonymous'];
const XOBJ = [
  '*',
  '**',
  'vm:*',
  'vm:?',
  'vm:a?',
  'vm:[ab]*',
  'vm:[a-c]1',
  'vm:a*',
  'vm:b',
  'host',
  'h*',
  '?ost',
  'vm:*1',
  'vm:.x',
  'vm:[[:alpha:]]*',
  'vm:a[',
  '*:*',
];
const XACT = ['*', 'domain:*', 'domain:?*', 'domain:s[a-t]*', 'domain:start', 'connect:*', 'connect:write', '*:getattr', 'domain:read*', '*read*', 'd*:[rw]*'];
const xPolicyArb = fc
  .array(
    fc.oneof(
      fc.tuple(fc.constantFrom(...NAMES, ...IDS), fc.constantFrom(...NAMES), fc.constantFrom(...TENANTS, '*')).map(([u, r, t]) => `g, ${u}, ${r}, ${t}`),
      fc
        .tuple(fc.constantFrom(...NAMES, ...IDS), fc.constantFrom(...TENANTS, '*'), fc.constantFrom(...XOBJ), fc.constantFrom(...XACT))
        .map(([s, t, o, p]) => `p, ${s}, ${t}, ${o}, ${p}`),
    ),
    { maxLength: 14 },
  )
  .map((l) => l.join('\n'));
const xReqArb = fc.record({
  sub: fc.constantFrom(...NAMES, ...IDS, 'unix:u2', 'unix:viewer', 'stranger', ''),
  dom: fc.constantFrom(...TENANTS, '', '*'),
  otn: fc.constantFrom(...TENANTS, '', '*'),
  obj: fc.constantFrom('host', 'vm:a1', 'vm:b', 'vm:a', 'vm:c1', 'vm:*', 'vm:x.y', 'vm:A-1', 'vm:a:b', 'vm:a@b+c'),
  act: fc.constantFrom(...ALL_PERMISSIONS.filter((p) => /^(domain|connect):/.test(p))),
});

test('property: the precompiled matcher returns Casbin enforceEx() exactly (decision and deciding rule)', async () => {
  await fc.assert(
    fc.asyncProperty(xPolicyArb, fc.array(xReqArb, { minLength: 1, maxLength: 30 }), async (policy, reqs) => {
      const set = await PolicySet.build(MODEL_TEXT, policy);
      expect(set.precompiled).toBe(true);
      for (const q of reqs) expect(set.enforce(q)).toEqual(set.enforcer.enforceExSync(q.sub, q.dom, q.otn, q.obj, q.act));
    }),
    { numRuns: 300 },
  );
});

test('a model other than the built-in one is evaluated by Casbin', async () => {
  const custom = MODEL_TEXT.replace('globMatch(r.act, p.act)', 'r.act == p.act');
  const set = await PolicySet.build(custom, 'g, u1, r1, t1\np, r1, t1, vm:*, domain:*\np, r1, t1, vm:*, domain:getattr');
  expect(set.precompiled).toBe(false);
  expect(set.enforce({ sub: 'unix:u1', dom: 't1', otn: 't1', obj: 'vm:a', act: 'domain:read' })[0]).toBe(false); // 'domain:*' is no glob here
  expect(set.enforce({ sub: 'unix:u1', dom: 't1', otn: 't1', obj: 'vm:a', act: 'domain:getattr' })).toEqual([true, ['r1', 't1', 'vm:*', 'domain:getattr']]);
  expect((await PolicySet.build(`# a comment\n${MODEL_TEXT}`, '')).precompiled).toBe(true);
});
