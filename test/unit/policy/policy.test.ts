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
  ['alice', 'acme', vm('web', 'acme'), 'domain:write', true],
  ['alice', 'acme', vm('web', 'acme'), 'domain:save', true],
  ['alice', 'acme', vm('web', 'acme'), 'domain:delete', true],
  ['alice', 'acme', vm('web', 'acme'), 'domain:read_secure', true],
  ['alice', 'acme', vm('app', 'globex'), 'domain:getattr', false],
  ['alice', 'acme', vm('test', ''), 'domain:getattr', false],
  ['bob', 'acme', vm('web', 'acme'), 'domain:start', true],
  ['bob', 'acme', vm('web', 'acme'), 'domain:stop', true],
  ['bob', 'acme', vm('web', 'acme'), 'domain:suspend', true],
  ['bob', 'acme', vm('web', 'acme'), 'domain:init_control', true],
  ['bob', 'acme', vm('web', 'acme'), 'domain:write', false],
  ['bob', 'acme', vm('web', 'acme'), 'domain:delete', false],
  ['bob', 'acme', vm('web', 'acme'), 'domain:read_secure', false],
  ['carol', 'globex', vm('app', 'globex'), 'domain:getattr', true],
  ['carol', 'globex', vm('app', 'globex'), 'domain:read', true],
  ['carol', 'globex', vm('app', 'globex'), 'domain:start', false],
  ['carol', 'globex', vm('web', 'acme'), 'domain:getattr', false],
  ['carol', 'acme', vm('web', 'acme'), 'domain:getattr', false], // not her tenant, whatever she claims
  ['carol', 'globex', host, 'connect:search_domains', true],
  ['carol', 'globex', host, 'connect:write', false],
  ['root', '', vm('web', 'acme'), 'domain:delete', true],
  ['root', '', vm('test', ''), 'domain:write', true],
  ['admin', 'globex', vm('web', 'acme'), 'domain:stop', true],
  ['root', '', host, 'connect:write', true],
  ['eve', '', host, 'connect:getattr', false],
  ['eve', 'acme', vm('web', 'acme'), 'domain:getattr', false],
];

test.each(rows)('%s in %s: %j %s -> %s', (user, tenant, obj, perm, want) => {
  expect(authz.can({ user, tenant, readOnly: false }, obj, perm).allowed).toBe(want);
});

test('the read-only socket grants at most read permissions, whatever the policy says', () => {
  expect(authz.can({ user: 'root', tenant: '', readOnly: true }, vm('web', 'acme'), 'domain:read').allowed).toBe(true);
  for (const p of ['domain:write', 'domain:start', 'domain:delete', 'domain:read_secure', 'connect:write']) {
    expect(authz.can({ user: 'root', tenant: '', readOnly: true }, vm('web', 'acme'), p)).toEqual({ allowed: false, rule: 'read-only connection' });
  }
});

test('the deciding rule is reported', () => {
  expect(authz.can({ user: 'bob', tenant: 'acme', readOnly: false }, vm('web', 'acme'), 'domain:start').rule).toBe('p, operator, *, vm:*, domain:start');
  expect(authz.can({ user: 'bob', tenant: 'acme', readOnly: false }, vm('web', 'acme'), 'domain:write').rule).toMatch(/deny by default/);
});

test('tenants: memberships, and host admins may use any tenant', () => {
  expect(authz.tenantsOf('alice')).toEqual(['acme']);
  expect(authz.tenantsOf('root')).toEqual([]);
  expect(authz.mayUseTenant('root', 'acme')).toBe(true);
  expect(authz.mayUseTenant('carol', 'acme')).toBe(false);
});

test('rules naming single VMs and globs', async () => {
  const a = new CasbinAuthorizer(await PolicySet.build(MODEL_TEXT, 'g, dave, viewer, acme\np, dave, acme, vm:web-*, domain:start\np, dave, acme, vm:db1, domain:stop\n'));
  const s = { user: 'dave', tenant: 'acme', readOnly: false };
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

test('policy lint: unknown permissions, roles with no members, rules that can never match', () => {
  const out = lintPolicy(parsePolicyText(
    ['p, auditors, *, vm:*, domain:read', 'p, bob, acme, vm:web, domain:strat', 'p, bob, acme, host, domain:start', 'p, bob, acme, vms:web, domain:start',
      'g, bob, operator, acme', 'g, eve, ghosts, acme', 'p, bob, acme, vm:x, domain:sta*'].join('\n')));
  expect(out.join('\n')).toMatch(/'auditors' has no members/);
  expect(out.join('\n')).toMatch(/unknown permission 'domain:strat'/);
  expect(out.join('\n')).toMatch(/domain permission on 'host' can never match/);
  expect(out.join('\n')).toMatch(/object 'vms:web' can never match/);
  expect(out.join('\n')).toMatch(/role 'ghosts' grants nothing/);
  expect(out.join('\n')).not.toMatch(/sta\*/);
  expect(lintPolicy(parsePolicyText(EXAMPLE_POLICY))).toEqual([]);
});

// Meta-test [libvirt check-aclrules]: every procedure maps to libvirt permissions, or is explicitly exempt.
// auth* run before there is an identity (libvirt's needAuth=false set); events are messages, not calls.
const EXEMPT = new Set(['connectClose', 'connectIsSecure', 'domainEventLifecycle', 'domainEventCallbackLifecycle']);
test.each(allProcs().map((d) => [d.name, d] as const))('%s has an ACL mapping in the vocabulary, or is exempt', (name, def) => {
  if (EXEMPT.has(name) || (name.startsWith('auth') && !def.needAuth)) {
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
      fc.tuple(fc.constantFrom(...USERS), fc.constantFrom(...ROLES), fc.constantFrom(...TENANTS, '*')).map(([u, r, t]) => `g, ${u}, ${r}, ${t}`),
      fc.tuple(fc.constantFrom(...USERS, 'r1'), fc.constantFrom(...TENANTS, '*'), fc.constantFrom(...OBJ_GLOBS), fc.constantFrom(...PERM_GLOBS)).map(([s, t, o, p]) => `p, ${s}, ${t}, ${o}, ${p}`),
    ),
    { maxLength: 8 },
  )
  .map((l) => l.join('\n'));
const subjectArb = fc.record({ user: fc.constantFrom(...USERS, 'stranger'), tenant: fc.constantFrom(...TENANTS, ''), readOnly: fc.boolean() });
const domainArb = fc.record({ name: fc.constantFrom('a1', 'a2', 'b', 'c'), tenant: fc.constantFrom(...TENANTS, '') });

test('property: the facade decides exactly as Casbin enforce() for the mapped request (read-only capped)', async () => {
  await fc.assert(
    fc.asyncProperty(policyArb, fc.array(fc.tuple(subjectArb, fc.option(domainArb, { nil: undefined }), fc.constantFrom(...PERMS)), { minLength: 1, maxLength: 20 }), async (policy, reqs) => {
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
    }),
    { numRuns: 150 },
  );
});

test('property: no list ever contains a VM the user cannot domain:getattr', async () => {
  const list = handlerFor(P.CONNECT_LIST_ALL_DOMAINS.proc)!;
  await fc.assert(
    fc.asyncProperty(policyArb, subjectArb, fc.uniqueArray(domainArb, { selector: (d) => d.name }), async (policy, subject, doms) => {
      const a = new CasbinAuthorizer(await PolicySet.build(MODEL_TEXT, policy));
      const summaries = doms.map((d, i) => ({ ...d, uuid: Buffer.alloc(16, i + 1), id: -1, state: 5, reason: 0, persistent: true }));
      const visible = (d: { name: string; tenant?: string }) => a.can(subject, { kind: 'domain', name: d.name, tenant: d.tenant ?? '' }, 'domain:getattr').allowed;
      // No mirror answer (undefined = not synced): the list comes from the helper call.
      const ctx = { helper: { call: async () => ({ domains: summaries }) }, mirror: { list: () => undefined, lookup: () => undefined }, visible } as never;
      const { domains } = (await list(ctx, { needResults: 1, flags: 0 })) as { domains: { name: string }[] };
      for (const d of domains) expect(visible(summaries.find((s) => s.name === d.name)!)).toBe(true);
      expect(domains.length).toBe(summaries.filter(visible).length);
    }),
    { numRuns: 150 },
  );
});

// ---------- the precompiled built-in matcher (fast-path.ts) against Casbin itself ----------

const NAMES = ['u1', 'u2', 'r1', 'r2', 'viewer', 'owner', 'host-admin'];
const XOBJ = ['*', '**', 'vm:*', 'vm:?', 'vm:a?', 'vm:[ab]*', 'vm:[a-c]1', 'vm:a*', 'vm:b', 'host', 'h*', '?ost', 'vm:*1', 'vm:.x', 'vm:[[:alpha:]]*', 'vm:a[', '*:*'];
const XACT = ['*', 'domain:*', 'domain:?*', 'domain:s[a-t]*', 'domain:start', 'connect:*', 'connect:write', '*:getattr', 'domain:read*', '*read*', 'd*:[rw]*'];
const xPolicyArb = fc
  .array(
    fc.oneof(
      fc.tuple(fc.constantFrom(...NAMES), fc.constantFrom(...NAMES), fc.constantFrom(...TENANTS, '*')).map(([u, r, t]) => `g, ${u}, ${r}, ${t}`),
      fc.tuple(fc.constantFrom(...NAMES), fc.constantFrom(...TENANTS, '*'), fc.constantFrom(...XOBJ), fc.constantFrom(...XACT)).map(([s, t, o, p]) => `p, ${s}, ${t}, ${o}, ${p}`),
    ),
    { maxLength: 14 },
  )
  .map((l) => l.join('\n'));
const xReqArb = fc.record({
  sub: fc.constantFrom(...NAMES, 'stranger', ''),
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
  expect(set.enforce({ sub: 'u1', dom: 't1', otn: 't1', obj: 'vm:a', act: 'domain:read' })[0]).toBe(false); // 'domain:*' is no glob here
  expect(set.enforce({ sub: 'u1', dom: 't1', otn: 't1', obj: 'vm:a', act: 'domain:getattr' })).toEqual([true, ['r1', 't1', 'vm:*', 'domain:getattr']]);
  expect((await PolicySet.build(`# a comment\n${MODEL_TEXT}`, '')).precompiled).toBe(true);
});
