// SPDX-License-Identifier: Apache-2.0
// Rows of the policy table -> policy text (a row that could smuggle a second line or field is refused), connection strings.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { clientConfig, describeTarget, rowsToText, textToRows } from '../../../src/accounts/policy-db';
import { passwordIn } from '../../../src/common/config';

test('rows become one policy line each, in order, with their ids', () => {
  const { text, ids } = rowsToText([
    { id: 3, ptype: 'g', rule: ['alice', 'owner', 'acme'] },
    { id: 9, ptype: 'p', rule: ['owner', 'acme', 'vm:*', 'domain:*'] },
    { id: 10, ptype: 'builtin', rule: ['off'] },
  ]);
  expect(text).toBe('g, alice, owner, acme\np, owner, acme, vm:*, domain:*\nbuiltin, off\n');
  expect(ids).toEqual([3, 9, 10]);
  expect(textToRows(`# c\n${text}`)).toEqual([
    { ptype: 'g', rule: ['alice', 'owner', 'acme'] },
    { ptype: 'p', rule: ['owner', 'acme', 'vm:*', 'domain:*'] },
    { ptype: 'builtin', rule: ['off'] },
  ]);
});

test.each([
  [{ id: 1, ptype: 'x', rule: ['a'] }, /row id=1: ptype 'x'/],
  [{ id: 2, ptype: 'g', rule: 'alice, owner, acme' }, /row id=2: rule must be a JSON array/],
  [{ id: 3, ptype: 'g', rule: ['alice', 'owner', 'acme\np, mallory, *, *, *'] }, /row id=3/],
  [{ id: 4, ptype: 'g', rule: ['alice, host-admin', 'owner', 'acme'] }, /row id=4/],
  [{ id: 5, ptype: 'g', rule: ['alice', '#', 'acme'] }, /row id=5/],
  [{ id: 6, ptype: 'g', rule: ['alice', 7, 'acme'] }, /row id=6/],
  [{ id: 7, ptype: 'g', rule: [] }, /row id=7/],
])('a row that is no policy line is refused: %j', (row, want) => {
  expect(() => rowsToText([{ id: 0, ptype: 'g', rule: ['bob', 'viewer', 'acme'] }, row])).toThrow(want);
});

test('connection strings: key=value and URLs; a password in them is refused; the password comes from a 0600 file', () => {
  expect(clientConfig({ conn: 'host=/run/postgresql port=5433 dbname=vg user=virtgate sslmode=disable' })).toMatchObject({
    host: '/run/postgresql',
    port: 5433,
    database: 'vg',
    user: 'virtgate',
  });
  expect(clientConfig({ conn: 'host=db.example sslmode=require' }).ssl).toEqual({ rejectUnauthorized: false });
  expect(clientConfig({ conn: 'postgresql://virtgate@db.example:5432/vg' }).connectionString).toBe('postgresql://virtgate@db.example:5432/vg');
  for (const bad of ['host=x password=s3cret', 'postgresql://virtgate:s3cret@db/vg', 'postgres://db/vg?password=s3cret']) {
    expect(passwordIn(bad)).toBe(true);
    expect(() => clientConfig({ conn: bad })).toThrow(/password file/);
  }
  expect(passwordIn('postgresql://virtgate@db/vg')).toBe(false);
  expect(() => clientConfig({ conn: 'host=x options=-csearch_path=evil' })).toThrow(/unsupported setting 'options'/);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-pgcfg-'));
  const pw = path.join(dir, 'pw');
  fs.writeFileSync(pw, 's3cret\n', { mode: 0o644 });
  fs.chmodSync(pw, 0o644);
  expect(() => clientConfig({ conn: 'host=x', passwordFile: pw })).toThrow(/chmod 600/);
  fs.chmodSync(pw, 0o600);
  expect(clientConfig({ conn: 'host=x', passwordFile: pw }).password).toBe('s3cret');
  expect(describeTarget({ conn: 'host=db port=5433 dbname=vg user=u' })).toBe('postgresql://u@db:5433/vg');
  fs.rmSync(dir, { recursive: true });
});
