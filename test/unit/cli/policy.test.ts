// SPDX-License-Identifier: Apache-2.0
// `virtgate policy check|lint` through the real command (built-in roles, file rules, memberships, exit codes).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const BIN = path.join(__dirname, '..', '..', '..', 'bin', 'virtgate.js');
const run = (args: string[]): { rc: number; out: string; err: string } => {
  const r = spawnSync(process.execPath, [BIN, 'policy', ...args], { encoding: 'utf8' });
  return { rc: r.status ?? -1, out: r.stdout, err: r.stderr };
};

const EXAMPLE = `g, unix:root, host-admin, *
g, x509:admin, host-admin, *
g, alice, owner, acme
g, bob, operator, acme
g, carol, viewer, globex
p, dave, acme, vm:web-*, domain:start
`;

let home: string;
beforeAll(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-policy-cli-'));
  fs.mkdirSync(path.join(home, 'etc'));
  fs.writeFileSync(path.join(home, 'etc', 'policy.csv'), EXAMPLE);
});
afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

test.each([
  ['alice', 'acme', 'vm:web', 'domain:delete', 0, /rule: p, owner, \*, vm:\*, domain:\* \[built-in role owner\]/],
  ['bob', 'acme', 'vm:web', 'domain:start', 0, /via: +g, bob, operator, acme \[.*policy\.csv:4\]/],
  ['bob', 'acme', 'vm:web', 'domain:write', 1, /deny by default/],
  ['carol', 'globex', 'vm:app', 'domain:read', 0, /built-in role viewer/],
  ['carol', 'acme', 'vm:web', 'domain:getattr', 1, /not a member of acme/],
  ['dave', 'acme', 'vm:web-1', 'domain:start', 0, /policy\.csv:6\]/],
  ['dave', 'acme', 'vm:db', 'domain:start', 1, /deny/],
  ['alice', 'acme', 'host', 'connect:write', 1, /deny/],
  ['root', '-', 'host', 'connect:write', 0, /^allow: unix:root in no tenant.*\n.*host-admin/],
  ['unix:root', '-', 'host', 'connect:write', 0, /host-admin/],
  ['x509:root', '-', 'host', 'connect:write', 1, /^deny: x509:root/],
  ['sasl:root', '-', 'vm:web', 'domain:getattr', 1, /deny/],
  ['x509:admin', '-', 'host', 'connect:write', 0, /via: +g, x509:admin, host-admin, \*/],
  ['admin', '-', 'host', 'connect:write', 1, /^deny: unix:admin/],
  ['x509:alice', 'acme', 'vm:web', 'domain:getattr', 1, /not a member of acme/],
] as const)('check %s %s %s %s -> exit %d', (user, tenant, obj, perm, rc, out) => {
  const r = run(['check', user, tenant, obj, perm, '--home', home]);
  expect(r.rc).toBe(rc);
  expect(r.out).toMatch(rc === 0 ? /^allow: / : /^deny: /);
  expect(r.out).toMatch(out);
});

test('check: the VM tenant, the read-only cap, the built-in default policy, usage', () => {
  expect(run(['check', 'alice', 'acme', 'vm:web', 'domain:getattr', '--home', home, '--vm-tenant', 'globex']).rc).toBe(1);
  expect(run(['check', 'root', '-', 'vm:web', 'domain:getattr', '--home', home, '--vm-tenant', 'globex']).rc).toBe(0);
  expect(run(['check', 'alice', 'acme', 'vm:web', 'domain:start', '--home', home, '--read-only'])).toMatchObject({
    rc: 1,
    out: expect.stringMatching(/read-only connection/),
  });
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-policy-cli-empty-'));
  expect(run(['check', 'x509:admin', '-', 'host', 'connect:write', '--home', empty]).rc).toBe(0); // built-in default: the admin certificate
  expect(run(['check', 'root', '-', 'host', 'connect:write', '--home', empty]).rc).toBe(0); // ... and local root
  expect(run(['check', 'admin', '-', 'host', 'connect:write', '--home', empty]).rc).toBe(1); // not the local account admin
  expect(run(['check', 'x509:root', '-', 'host', 'connect:getattr', '--home', empty]).rc).toBe(1);
  expect(run(['check', 'sasl:root', '-', 'host', 'connect:getattr', '--home', empty]).rc).toBe(1);
  expect(run(['check', 'ldap:root', '-', 'host', 'connect:getattr', '--home', empty])).toMatchObject({
    rc: 2,
    err: expect.stringMatching(/USER is SOURCE:NAME/),
  });
  expect(run(['check', 'x509:', '-', 'host', 'connect:getattr', '--home', empty]).rc).toBe(2);
  expect(run(['check', 'alice', 'acme', 'vm:web', 'domain:getattr', '--home', empty]).rc).toBe(1);
  expect(run(['check', 'alice', 'acme', 'vm:web', 'domain:strat', '--home', home]).err).toMatch(/not a libvirt permission/);
  expect(run(['check', 'alice', 'acme', 'web', 'domain:start', '--home', home]).rc).toBe(2);
  expect(run(['check', 'alice', 'acme', 'vm:web', '--home', home]).rc).toBe(2);
  expect(run(['check', 'a', 'b', 'vm:c', 'domain:read', '--policy', path.join(empty, 'missing.csv')]).rc).toBe(2);
  expect(run(['frob']).rc).toBe(2);
  fs.rmSync(empty, { recursive: true, force: true });
});

test('lint and check with a --home that does not exist say so (instead of linting the built-in default)', () => {
  const missing = path.join(home, 'no-such-home');
  for (const args of [
    ['lint', '--home', missing],
    ['check', 'alice', 'acme', 'vm:x', 'domain:read', '--home', missing],
  ]) {
    const r = run(args);
    expect(r).toMatchObject({ rc: 2, out: '' });
    expect(r.err).toBe(`error: --home ${missing}: no such directory (the daemon's state root, which holds etc/policy.csv)\n`);
  }
  const file = path.join(home, 'etc', 'policy.csv');
  expect(run(['lint', '--home', file])).toMatchObject({ rc: 2, err: expect.stringMatching(/no such directory/) }); // a file is no home
  // An existing home without etc/policy.csv still lints the built-in default, as the daemon would run it.
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-policy-empty-'));
  expect(run(['lint', '--home', empty])).toMatchObject({ rc: 0, out: expect.stringMatching(/built-in default policy: no problems/) });
  fs.rmSync(empty, { recursive: true, force: true });
});

test('lint: clean example, and each kind of problem; a file that does not parse fails', () => {
  // The example's bare 'dave' rule: no problem, but a note that the shorthand took it as the local account.
  expect(run(['lint', '--home', home])).toMatchObject({
    rc: 0,
    out: expect.stringMatching(/policy\.csv: note: line 6: .*taken as the local user 'unix:dave'[^]*no problems/),
  });
  const bad = path.join(home, 'bad.csv');
  fs.writeFileSync(
    bad,
    [
      'p, auditors, *, vm:*, domain:read',
      'p, bob, acme, vm:web, domain:strat',
      'g, eve, ghosts, acme',
      'g, bob, r1, acme',
      'p, r1, globex, vm:*, domain:read',
      'p, bob, acme, host, domain:start',
    ].join('\n'),
  );
  const r = run(['lint', '--policy', bad]);
  expect(r.rc).toBe(1);
  expect(r.out).toMatch(/line 1: .*'unix:auditors' is in no tenant/);
  expect(r.out).toMatch(/line 2: .*unknown permission 'domain:strat'/);
  expect(r.out).toMatch(/line 3: .*role 'ghosts' grants nothing/);
  expect(r.out).toMatch(/line 5: .*role 'r1' is held by nobody in tenant 'globex'/);
  expect(r.out).toMatch(/line 6: .*can never match/);
  expect(r.out).toMatch(/5 problems/);
  fs.writeFileSync(bad, 'g, ldap:alice, owner, acme\np, tcp:bob, acme, vm:*, domain:read\n');
  expect(run(['lint', '--policy', bad])).toMatchObject({
    rc: 1,
    out: expect.stringMatching(/line 1: .*unknown identity source 'ldap'[^]*line 2: .*'tcp:bob' can never log in[^]*2 problems/),
  });
  // Names the parser refuses: lint prints the parse error (exit 1), it does not crash.
  for (const [text, msg] of [
    [`g, alice, owner, ${'t'.repeat(65)}\n`, /bad\.csv:1: bad tenant 't{65}' \(tenant names are 1-64 characters/],
    ['g, alice, x509:owner, acme\n', /bad\.csv:1: bad role/],
    ['p, x509:, acme, vm:*, domain:read\n', /bad\.csv:1: bad subject/],
  ] as const) {
    fs.writeFileSync(bad, text);
    const l = run(['lint', '--policy', bad]);
    expect(l).toMatchObject({ rc: 1, out: '', err: expect.stringMatching(msg) });
    expect(l.err).not.toMatch(/ at |TypeError|Error:/);
  }
  fs.writeFileSync(bad, 'g, alice, owner\n');
  expect(run(['lint', '--policy', bad])).toMatchObject({ rc: 1, err: expect.stringMatching(/bad\.csv:1: expected g, USER, ROLE, TENANT/) });
});
