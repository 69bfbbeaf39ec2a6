// SPDX-License-Identifier: Apache-2.0
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LockoutStore } from '../../../src/accounts/lockouts';
import { UserDb } from '../../../src/accounts/user-db';

const BIN = path.join(__dirname, '..', '..', '..', 'bin', 'virtgate.js');
const run = (home: string, args: string[], input = ''): { rc: number; out: string; err: string } => {
  const r = spawnSync(process.execPath, [BIN, 'user', ...args, '--home', home], { input, encoding: 'utf8' });
  return { rc: r.status ?? -1, out: r.stdout, err: r.stderr };
};

test('virtgate user add, passwd, list, del through the real command', async () => {
  execFileSync(process.execPath, ['-e', '1']); // node present
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-user-'));
  expect(run(home, ['add', 'alice', '--password-stdin'], 'first-password\n')).toMatchObject({ rc: 0, out: "user 'alice' added\n" });
  expect(fs.statSync(path.join(home, 'etc', 'users.json')).mode & 0o777).toBe(0o600);
  expect(run(home, ['add', 'alice', '--password-stdin'], 'x\n')).toMatchObject({ rc: 1, err: "error: user 'alice' exists; use passwd\n" });
  expect(run(home, ['passwd', 'alice', '--password-stdin'], 'second-password\n').rc).toBe(0);
  const db = new UserDb(path.join(home, 'etc', 'users.json')).load();
  expect(await db.verifyPassword('alice', 'second-password')).toBe(true);
  expect(run(home, ['add', 'bob', '--password-stdin'], 'short\n')).toMatchObject({
    rc: 1,
    err: 'error: user database: passwords need at least 8 characters\n',
  });
  expect(run(home, ['list']).out).toBe('alice\n');
  expect(run(home, ['del', 'alice']).rc).toBe(0);
  expect(run(home, ['del', 'alice'])).toMatchObject({ rc: 1, err: "error: no user 'alice'\n" });
  expect(run(home, ['frob']).rc).toBe(2);
  expect(run(home, ['add', '../x', '--password-stdin'], 'long-enough\n').err).toMatch(/user names are/);
});

test('virtgate user locked, list and unlock read and edit HOME/etc/lockouts.json', () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-user-'));
  expect(run(home, ['add', 'alice', '--password-stdin'], 'first-password\n').rc).toBe(0);
  expect(run(home, ['add', 'bob', '--password-stdin'], 'bob-password\n').rc).toBe(0);
  const file = path.join(home, 'etc', 'lockouts.json');
  const at = Date.UTC(2026, 0, 2, 3, 4, 5);
  new LockoutStore(file).load().lock('alice', { at, until: 0, failures: 10, source: '203.0.113.7' });
  new LockoutStore(file).load().lock('bob', { at, until: at + 1000, failures: 10, source: '203.0.113.7' }); // long over
  expect(run(home, ['list']).out).toBe('alice\tlocked until unlocked\nbob\n');
  expect(run(home, ['locked']).out).toBe('alice\tsince 2026-01-02T03:04:05.000Z\tuntil unlocked\t10 failures\tlast from 203.0.113.7\n');
  expect(run(home, ['unlock', 'alice'])).toMatchObject({ rc: 0, out: "user 'alice' unlocked\n" });
  expect(run(home, ['unlock', 'alice'])).toMatchObject({ rc: 1, err: "error: user 'alice' is not locked\n" });
  expect(run(home, ['locked']).out).toBe('');
  expect(JSON.parse(fs.readFileSync(file, 'utf8')).locked).toEqual({});
  expect(run(home, ['unlock']).rc).toBe(2);
});
