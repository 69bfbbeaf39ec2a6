// SPDX-License-Identifier: Apache-2.0
// Policy on the object kinds beyond domains (issue 12): a tenant's networks, pools and volumes are its own; shared ones
// (no tenant) are readable by every tenant's built-in roles and changed only by host admins; interfaces and node
// devices are host-level; rules name them `net:`, `pool:`, `vol:POOL:`, `iface:`, `nodedev:`, `shared:...`.
import type { PolicyObject, Subject } from '../../../src/policy/authorizer';
import { CasbinAuthorizer, PolicySet, lintPolicy, objectString, parsePolicyText } from '../../../src/policy/engine';
import { MODEL_TEXT, composePolicy } from '../../../src/policy/model';

const SITE = `g, alice, owner, acme
g, bob, viewer, globex
g, carol, owner, globex
p, dave, acme, vol:gold:*, storage_vol:getattr
g, dave, viewer, acme
`;

let authz: CasbinAuthorizer;
beforeAll(async () => {
  authz = new CasbinAuthorizer(await PolicySet.build(MODEL_TEXT, composePolicy(SITE).text));
});

const who = (user: string, tenant: string): Subject => ({ user, tenant, readOnly: false });
const can = (s: Subject, o: PolicyObject, p: string) => authz.can(s, o, p).allowed;
const net = (name: string, tenant: string): PolicyObject => ({ kind: 'network', name, tenant });
const pool = (name: string, tenant: string): PolicyObject => ({ kind: 'storage_pool', name, tenant });
const vol = (p: string, name: string, tenant: string): PolicyObject => ({ kind: 'storage_vol', name: `${p}/${name}`, tenant });

test('Casbin object strings per kind; shared ones are prefixed; a volume never puts a slash in a glob subject', () => {
  expect(objectString(net('n', 'acme'))).toBe('net:n');
  expect(objectString(net('default', ''))).toBe('shared:net:default');
  expect(objectString(pool('p', ''))).toBe('shared:pool:p');
  expect(objectString(vol('p', 'v.qcow2', 'acme'))).toBe('vol:p:v.qcow2');
  expect(objectString({ kind: 'interface', name: 'eth1', tenant: '' })).toBe('iface:eth1'); // never shared
  expect(objectString({ kind: 'node_device', name: 'computer' })).toBe('nodedev:computer');
});

test("an owner does everything to its tenant's networks, pools, volumes; nothing to another tenant's", () => {
  const alice = who('unix:alice', 'acme');
  for (const [o, p] of [
    [net('n', 'acme'), 'network:write'],
    [net('n', 'acme'), 'network:delete'],
    [pool('p', 'acme'), 'storage_pool:start'],
    [vol('p', 'v', 'acme'), 'storage_vol:create'],
  ] as const)
    expect(can(alice, o, p)).toBe(true);
  for (const [o, p] of [
    [net('n', 'globex'), 'network:getattr'],
    [pool('p', 'globex'), 'storage_pool:getattr'],
    [vol('p', 'v', 'globex'), 'storage_vol:getattr'],
  ] as const)
    expect(can(alice, o, p)).toBe(false);
});

test('shared objects: every tenant role reads them, no tenant role changes them, a host admin does both', () => {
  for (const s of [who('unix:alice', 'acme'), who('unix:bob', 'globex'), who('unix:carol', 'globex')]) {
    expect(can(s, net('default', ''), 'network:getattr')).toBe(true);
    expect(can(s, net('default', ''), 'network:read')).toBe(true);
    expect(can(s, pool('default-pool', ''), 'storage_pool:search_storage_vols')).toBe(true);
    expect(can(s, vol('default-pool', 'default-vol', ''), 'storage_vol:getattr')).toBe(true);
    expect(can(s, net('default', ''), 'network:stop')).toBe(false);
    expect(can(s, pool('default-pool', ''), 'storage_pool:delete')).toBe(false);
    expect(can(s, vol('default-pool', 'x', ''), 'storage_vol:create')).toBe(false);
  }
  const root = who('unix:root', '');
  expect(can(root, net('default', ''), 'network:stop')).toBe(true);
  expect(can(root, vol('default-pool', 'x', ''), 'storage_vol:create')).toBe(true);
  // A user in no tenant, not an admin: nothing, shared or not.
  expect(can(who('unix:mallory', ''), net('default', ''), 'network:getattr')).toBe(false);
});

test('interfaces and node devices are host-level: tenants see none, host admins all', () => {
  const iface: PolicyObject = { kind: 'interface', name: 'eth1', tenant: '' };
  const dev: PolicyObject = { kind: 'node_device', name: 'computer', tenant: '' };
  for (const s of [who('unix:alice', 'acme'), who('unix:bob', 'globex')]) {
    expect(can(s, iface, 'interface:getattr')).toBe(false);
    expect(can(s, dev, 'node_device:getattr')).toBe(false);
  }
  expect(can(who('unix:root', ''), iface, 'interface:stop')).toBe(true);
  expect(can(who('x509:admin', ''), dev, 'node_device:detach')).toBe(true);
});

test('a site rule on vol:POOL:* reaches exactly that pool', () => {
  const dave = who('unix:dave', 'acme');
  expect(can(dave, vol('gold', 'a', 'acme'), 'storage_vol:getattr')).toBe(true);
  expect(can(dave, vol('gold', 'a', 'acme'), 'storage_vol:delete')).toBe(false);
});

test('lint accepts the new object forms and still flags objects that can never match', () => {
  const probs = (line: string) => lintPolicy(parsePolicyText(`g, u1, viewer, acme\n${line}\n`)).filter((p) => !p.startsWith('note:'));
  for (const ok of [
    'p, u1, acme, net:web-*, network:start',
    'p, u1, acme, vol:gold:*, storage_vol:create',
    'p, u1, acme, shared:pool:*, storage_pool:read',
    'p, u1, acme, nodedev:*, node_device:getattr',
  ])
    expect(probs(ok)).toEqual([]);
  expect(probs('p, u1, acme, network:web, network:start').join()).toMatch(/can never match/);
  expect(probs('p, u1, acme, net:web, connect:read').join()).toMatch(/connect permission on 'net:web' can never match/);
});
