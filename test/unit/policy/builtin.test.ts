// SPDX-License-Identifier: Apache-2.0
// The built-in host admins (issue 11): added to a site policy unless it says `builtin, off`, the configured hostAdmin
// among them; the site's line numbers survive; the daemon's runtime and the engine decide the same; unixIdentity names
// a uid as the front end names its unix peers.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveConfig } from '../../../src/common/config';
import type { Subject } from '../../../src/policy/authorizer';
import { CasbinAuthorizer, PolicySet, parsePolicyText } from '../../../src/policy/engine';
import { BUILTIN_ADMINS, MODEL_TEXT, composePolicy, unixIdentity } from '../../../src/policy/model';
import { PolicyRuntime } from '../../../src/unprivileged/policy-runtime';
import { userNameForUid } from '../../../src/unprivileged/users';

const host = { kind: 'connect', name: 'virtgate' } as const;
const admin = async (text: string, user: string): Promise<boolean> => {
  const who: Subject = { user, tenant: '', readOnly: false };
  return new CasbinAuthorizer(await PolicySet.build(MODEL_TEXT, text)).can(who, host, 'connect:write').allowed;
};

test('no file: exactly the built-in admins, plus hostAdmin when set', async () => {
  expect(composePolicy(null).admins).toEqual(['unix:root', 'x509:admin']);
  expect(composePolicy(null, 'unix:alice')).toMatchObject({ admins: ['unix:root', 'x509:admin', 'unix:alice'], siteLines: 0 });
  const t = composePolicy(null, 'unix:alice').text;
  for (const u of ['unix:root', 'x509:admin', 'unix:alice']) expect(await admin(t, u)).toBe(true);
  for (const u of ['unix:admin', 'x509:root', 'sasl:alice', 'unix:bob']) expect(await admin(t, u)).toBe(false);
});

test('a site file adds to them; its rules keep their line numbers', async () => {
  const site = '# tenants\ng, alice, owner, acme\n\np, dave, acme, vm:web-*, domain:start\n';
  const c = composePolicy(site, 'unix:erin', 'site.csv');
  expect(c.admins).toEqual([...BUILTIN_ADMINS, 'unix:erin']);
  const rules = parsePolicyText(c.text, 'site.csv');
  expect(rules.filter((r) => r.line <= c.siteLines).map((r) => [r.line, r.text])).toEqual([
    [2, 'g, alice, owner, acme'],
    [4, 'p, dave, acme, vm:web-*, domain:start'],
  ]);
  expect(rules.filter((r) => r.line > c.siteLines).map((r) => r.fields[0])).toEqual(['unix:root', 'x509:admin', 'unix:erin']);
  for (const u of ['unix:root', 'x509:admin', 'unix:erin']) expect(await admin(c.text, u)).toBe(true);
  expect(await admin(c.text, 'unix:alice')).toBe(false);
});

test("'builtin, off' drops every built-in admin (hostAdmin too), blanked in place; a misspelt or repeated one is an error", async () => {
  const c = composePolicy('g, alice, owner, acme\n  builtin ,  off  \ng, bob, host-admin, *\n', 'unix:erin', 'p.csv');
  expect(c.admins).toEqual([]);
  expect(c.text.split('\n')[1]).toBe('');
  for (const u of ['unix:root', 'x509:admin', 'unix:erin']) expect(await admin(c.text, u)).toBe(false);
  expect(await admin(c.text, 'unix:bob')).toBe(true);
  expect(() => composePolicy('builtin, of\n', '', 'p.csv')).toThrow(/^p\.csv:1: expected 'builtin, off' \(the only builtin line\), got 'builtin, of'$/);
  expect(() => composePolicy('g, a, viewer, t\nbuiltin\n', '', 'p.csv')).toThrow(/^p\.csv:2: expected 'builtin, off'/);
  expect(() => composePolicy('builtin, off\nbuiltin, off\n', '', 'p.csv')).toThrow(/^p\.csv:2: 'builtin, off' given twice$/);
  // A comment that mentions it is a comment.
  expect(composePolicy('# builtin, off\n').admins).toEqual([...BUILTIN_ADMINS]);
});

test('hostAdmin in the config: a qualified identity or nothing', () => {
  expect(resolveConfig({ hostAdmin: 'unix:alice' }).hostAdmin).toBe('unix:alice');
  expect(resolveConfig({}).hostAdmin).toBe('');
  for (const bad of ['alice', 'ldap:alice', 'unix:', 'unix:-x', 'unix:a b'])
    expect(() => resolveConfig({ hostAdmin: bad })).toThrow(/hostAdmin: .*expected SOURCE:NAME/);
});

test('the runtime enforces what composePolicy says, and turns the admins off when the file says so', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-builtin-'));
  const file = path.join(dir, 'policy.csv');
  const logs: string[] = [];
  const rt = new PolicyRuntime({ policyFile: file, hostAdmin: 'unix:erin', log: (m) => logs.push(m), watch: false, signals: false });
  try {
    const can = (user: string): boolean => rt.can({ user, tenant: '', readOnly: false }, host, 'connect:write').allowed;
    expect(await rt.ready).toBe(true);
    expect([can('unix:root'), can('x509:admin'), can('unix:erin')]).toEqual([true, true, true]);
    fs.writeFileSync(file, 'g, alice, viewer, acme\n');
    expect(await rt.reload('SIGHUP')).toBe(true);
    expect([can('unix:root'), can('x509:admin'), can('unix:erin')]).toEqual([true, true, true]);
    expect(logs[logs.length - 1]).toMatch(/from .*policy\.csv: 4 rules; built-in host admins unix:root, x509:admin, unix:erin$/);
    fs.writeFileSync(file, 'builtin, off\ng, alice, viewer, acme\n');
    expect(await rt.reload('SIGHUP')).toBe(true);
    expect([can('unix:root'), can('x509:admin'), can('unix:erin')]).toEqual([false, false, false]);
    expect(logs[logs.length - 1]).toMatch(/1 rules; built-in host admins off \(builtin, off\)$/);
    fs.writeFileSync(file, 'builtin, no\n');
    expect(await rt.reload('SIGHUP')).toBe(false); // refused: the previous policy (admins off) stays
    expect(logs[logs.length - 1]).toMatch(/policy\.csv:1: expected 'builtin, off'/);
    expect(can('unix:root')).toBe(false);
  } finally {
    rt.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('unixIdentity names a uid as the front end names its peers (users.ts), odd names included', () => {
  const passwd = 'root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/h:/bin/sh\nalias:x:1000:1000::/h:/bin/sh\n123:x:1001:1:::\nbad name:x:1002:1:::\n';
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vg-passwd-')), 'passwd');
  fs.writeFileSync(file, passwd);
  for (const uid of [0, 1000, 1001, 1002, 4242]) expect(unixIdentity(uid, passwd)).toBe(`unix:${userNameForUid(uid, file)}`);
  expect([0, 1000, 1001, 1002, 4242].map((u) => unixIdentity(u, passwd))).toEqual(['unix:root', 'unix:alice', 'unix:1001', 'unix:1002', 'unix:4242']);
  fs.rmSync(path.dirname(file), { recursive: true, force: true });
});
