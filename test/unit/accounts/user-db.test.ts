// SPDX-License-Identifier: Apache-2.0
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserDb, checkUserName, deriveCredentials } from '../../../src/accounts/user-db';

const tmp = (): string => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vg-users-')), 'etc', 'users.json');

test('save and load round-trip; the file is 0600 and holds no password', async () => {
  const file = tmp();
  const db = new UserDb(file);
  db.set(deriveCredentials('alice', 's3cret-pass', 4096));
  db.save();
  expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  expect(fs.readFileSync(file, 'utf8')).not.toContain('s3cret-pass');
  const again = new UserDb(file).load();
  expect(again.names()).toEqual(['alice']);
  expect(await again.verifyPassword('alice', 's3cret-pass')).toBe(true);
  expect(await again.verifyPassword('alice', 's3cret-pasS')).toBe(false);
  expect(await again.verifyPassword('nobody', 's3cret-pass')).toBe(false);
});

test('a group- or world-readable file is refused', () => {
  const file = tmp();
  const db = new UserDb(file);
  db.set(deriveCredentials('bob', 'another-pass', 4096));
  db.save();
  fs.chmodSync(file, 0o644);
  expect(() => new UserDb(file).load()).toThrow(/readable by group or others/);
});

test('broken JSON and bad names are refused with clear errors', () => {
  const file = tmp();
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, '{not json', { mode: 0o600 });
  expect(() => new UserDb(file).load()).toThrow(/not valid JSON/);
  expect(() => checkUserName('../etc')).toThrow(/user names/);
  expect(() => deriveCredentials('carol', 'short')).toThrow(/at least 8/);
});

test('a missing file is an empty database', () => {
  expect(new UserDb(tmp()).load().names()).toEqual([]);
});
