// SPDX-License-Identifier: Apache-2.0
// The policy's name for a session: the proven user qualified by where it was proved; the dispatcher decides and chooses
// tenants with it, so a certificate or a SASL login named `root` is not the local root.
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CasbinAuthorizer, PolicySet } from '../../../src/policy/engine';
import { DEFAULT_POLICY, MODEL_TEXT } from '../../../src/policy/model';
import { Dispatcher } from '../../../src/unprivileged/dispatcher';
import type { HelperClient } from '../../../src/unprivileged/helper-client';
import { policyUser } from '../../../src/unprivileged/identity';
import type { Identity, Session } from '../../../src/unprivileged/session';
import { userNameForUid } from '../../../src/unprivileged/users';

const id = (method: Identity['method'], user: string): Identity => ({ method, user, source: 'test' });

test.each([
  ['peercred', 'root', 'unix:root'],
  ['x509', 'root', 'x509:root'],
  ['sasl', 'root', 'sasl:root'],
  ['none', 'anonymous', 'tcp:anonymous'],
  ['peercred', '1234', 'unix:1234'],
] as const)('policyUser(%s %s) = %s', (method, user, want) => {
  expect(policyUser(id(method, user))).toBe(want);
});

test('policyUser: no identity yet is nobody', () => {
  expect(policyUser(null)).toBe('');
  expect(policyUser(undefined)).toBe('');
});

test('unix peers: an account name the policy cannot hold unambiguously is replaced by the numeric uid', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-passwd-'));
  const passwd = path.join(dir, 'passwd');
  fs.writeFileSync(
    passwd,
    [
      'root:x:0:0::/root:/bin/sh',
      'alice:x:1000:1000::/h:/bin/sh',
      'bad name:x:1001:1::/:/bin/false',
      '1002:x:1003:1::/:/bin/false',
      '-dash:x:1004:1::/:/bin/false',
      `${'l'.repeat(65)}:x:1005:1::/:/bin/false`,
      'x509:root:x:1006',
    ].join('\n'),
  );
  try {
    expect(userNameForUid(0, passwd)).toBe('root');
    expect(userNameForUid(1000, passwd)).toBe('alice');
    expect(userNameForUid(1001, passwd)).toBe('1001'); // not a user name
    expect(userNameForUid(1003, passwd)).toBe('1003'); // an all-digit name would pass for uid 1002: its own uid instead
    expect(userNameForUid(1004, passwd)).toBe('1004');
    expect(userNameForUid(1005, passwd)).toBe('1005');
    expect(userNameForUid(4242, passwd)).toBe('4242'); // no entry
    expect(userNameForUid(7, path.join(dir, 'missing'))).toBe('7');
    for (const uid of [0, 1000, 1001, 1003, 4242])
      expect(policyUser({ ...id('peercred', userNameForUid(uid, passwd)), uid })).toMatch(/^unix:[A-Za-z0-9_][A-Za-z0-9_.@+-]*$/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

describe('the dispatcher decides with the qualified name', () => {
  let dispatcher: Dispatcher;
  let authz: CasbinAuthorizer;
  const session = (identity: Identity): Session => ({ identity, tenant: '', readOnly: false }) as unknown as Session;

  beforeAll(async () => {
    const set = await PolicySet.build(
      MODEL_TEXT,
      `${DEFAULT_POLICY}g, alice, owner, acme\ng, sasl:alice, viewer, globex\ng, x509:bob, viewer, acme\ng, x509:bob, viewer, globex\n`,
    );
    authz = new CasbinAuthorizer(set);
    dispatcher = new Dispatcher({ helper: new EventEmitter() as unknown as HelperClient, authorizer: authz });
  });

  test('subject(): certificate, SASL and local root are three subjects; only local root is host admin', () => {
    const host = { kind: 'connect' as const, name: 'virtgate' };
    const admin = (i: Identity): boolean => authz.can(dispatcher.subject(session(i)), host, 'connect:write').allowed;
    expect(dispatcher.subject(session(id('peercred', 'root'))).user).toBe('unix:root');
    expect(dispatcher.subject(session(id('x509', 'root'))).user).toBe('x509:root');
    expect(dispatcher.subject(session(id('sasl', 'root'))).user).toBe('sasl:root');
    expect(dispatcher.subject(session(id('none', 'anonymous'))).user).toBe('tcp:anonymous');
    expect(admin(id('peercred', 'root'))).toBe(true);
    expect(admin(id('x509', 'admin'))).toBe(true);
    expect(admin(id('x509', 'root'))).toBe(false);
    expect(admin(id('sasl', 'root'))).toBe(false);
    expect(admin(id('peercred', 'admin'))).toBe(false);
    expect(admin(id('sasl', 'admin'))).toBe(false);
  });

  test('chooseTenant(): memberships are looked up under the qualified name', () => {
    expect(dispatcher.chooseTenant(session(id('peercred', 'alice')), null)).toBe('acme');
    expect(dispatcher.chooseTenant(session(id('sasl', 'alice')), null)).toBe('globex');
    expect(dispatcher.chooseTenant(session(id('x509', 'alice')), null)).toBe('');
    expect(() => dispatcher.chooseTenant(session(id('x509', 'alice')), 'test:///default?tenant=acme')).toThrow(/access denied/i);
    expect(() => dispatcher.chooseTenant(session(id('sasl', 'alice')), 'test:///default?tenant=acme')).toThrow(/access denied/i);
    expect(dispatcher.chooseTenant(session(id('peercred', 'root')), 'test:///default?tenant=acme')).toBe('acme'); // host admin: any tenant
    expect(() => dispatcher.chooseTenant(session(id('x509', 'root')), 'test:///default?tenant=acme')).toThrow(/access denied/i);
    expect(() => dispatcher.chooseTenant(session(id('x509', 'bob')), null)).toThrow(/'x509:bob' belongs to several tenants \(acme, globex\)/);
    expect(() => dispatcher.chooseTenant(session(id('peercred', 'bob')), null)).not.toThrow();
  });
});
