// SPDX-License-Identifier: Apache-2.0
// SCRAM-SHA-256 and PLAIN server logic against an independent RFC 5802/7677 client written here.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserDb, deriveCredentials } from '../../../src/accounts/user-db';
import { PLAIN, SCRAM, mechanisms, startSession } from '../../../src/unprivileged/sasl';

const ITER = 4096; // small for test speed; production uses SCRAM_ITERATIONS
const db = new UserDb(path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vg-sasl-')), 'users.json'));
db.set(deriveCredentials('alice', 'correct horse', ITER));

function clientFinal(password: string, clientFirstBare: string, serverFirst: string, gs2 = 'n,,'): string {
  const attrs = Object.fromEntries(serverFirst.split(',').map((kv) => [kv[0], kv.slice(2)]));
  const salted = crypto.pbkdf2Sync(password, Buffer.from(attrs.s, 'base64'), Number(attrs.i), 32, 'sha256');
  const clientKey = crypto.createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = crypto.createHash('sha256').update(clientKey).digest();
  const withoutProof = `c=${Buffer.from(gs2).toString('base64')},r=${attrs.r}`;
  const sig = crypto.createHmac('sha256', storedKey).update(`${clientFirstBare},${serverFirst},${withoutProof}`).digest();
  const proof = Buffer.alloc(32);
  for (let i = 0; i < 32; i++) proof[i] = clientKey[i] ^ sig[i];
  return `${withoutProof},p=${proof.toString('base64')}`;
}

async function scramLogin(user: string, password: string): Promise<{ ok: boolean; serverFinal?: string; reason?: string }> {
  const s = startSession(SCRAM, db)!;
  const bare = `n=${user},r=${crypto.randomBytes(12).toString('base64')}`;
  const first = await s.step(Buffer.from(`n,,${bare}`));
  if (first.kind !== 'continue' || !first.data) return { ok: false };
  const serverFirst = first.data.toString();
  const fin = await s.step(Buffer.from(clientFinal(password, bare, serverFirst)));
  if (fin.kind === 'success') return { ok: true, serverFinal: fin.data?.toString() };
  return { ok: false, reason: fin.kind === 'failure' ? fin.reason : 'continue' };
}

test('RFC 7677 Hi(): the test vector password "pencil" gives the documented client proof', () => {
  // RFC 7677 §3 example.
  const bare = 'n=user,r=rOprNGfwEbeRWgbNEkqO';
  const serverFirst = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';
  expect(clientFinal('pencil', bare, serverFirst)).toBe(
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  );
});

test('SCRAM: right password in, with a verifiable server signature', async () => {
  const r = await scramLogin('alice', 'correct horse');
  expect(r.ok).toBe(true);
  expect(r.serverFinal).toMatch(/^v=[A-Za-z0-9+/]+=*$/);
});

test.each([
  ['wrong password', 'alice', 'wrong horse'],
  ['unknown user', 'mallory', 'correct horse'],
])('SCRAM: %s out', async (_n, user, pw) => {
  expect((await scramLogin(user, pw)).ok).toBe(false);
});

test('SCRAM: unknown users get a stable salt and the same iteration count (no enumeration)', async () => {
  const first = async (u: string): Promise<string> => {
    const r = await startSession(SCRAM, db)!.step(Buffer.from(`n,,n=${u},r=abc`));
    return r.kind === 'continue' ? r.data!.toString().replace(/^r=[^,]*,/, '') : '';
  };
  expect(await first('nobody1')).toBe(await first('nobody1'));
  expect((await first('nobody1')).endsWith(`i=${db.defaultIterations}`)).toBe(true);
});

test.each([
  ['channel binding requested', 'p=tls-unique,,n=alice,r=abc'],
  ['missing nonce', 'n,,n=alice'],
  ['bad escape in name', 'n,,n=al=ice,r=abc'],
  ['authzid for someone else', 'n,a=root,n=alice,r=abc'],
  ['garbage', '\u0000\u0001'],
])('SCRAM: malformed client-first (%s) fails', async (_n, msg) => {
  expect((await startSession(SCRAM, db)!.step(Buffer.from(msg))).kind).toBe('failure');
});

test('SCRAM: a replayed or tampered nonce fails', async () => {
  const s = startSession(SCRAM, db)!;
  const bare = 'n=alice,r=clientnonce';
  const first = await s.step(Buffer.from(`n,,${bare}`));
  const serverFirst = (first as { data: Buffer }).data.toString();
  const tampered = clientFinal('correct horse', bare, serverFirst.replace('r=clientnonce', 'r=clientnonceX'));
  expect((await s.step(Buffer.from(tampered))).kind).toBe('failure');
  expect((await s.step(Buffer.from('again'))).kind).toBe('failure'); // finished sessions stay finished
});

test('PLAIN: offered only on secure transports; checks the scrypt hash', async () => {
  expect(mechanisms(false)).toEqual([SCRAM]);
  expect(mechanisms(true)).toEqual([SCRAM, PLAIN]);
  const ok = await startSession(PLAIN, db)!.step(Buffer.from('\0alice\0correct horse'));
  expect(ok).toMatchObject({ kind: 'success', user: 'alice' });
  expect((await startSession(PLAIN, db)!.step(Buffer.from('\0alice\0nope'))).kind).toBe('failure');
  expect((await startSession(PLAIN, db)!.step(Buffer.from('bob\0alice\0correct horse'))).kind).toBe('failure');
  expect(startSession('DIGEST-MD5', db)).toBeNull();
});

test('claimedUser names the user a message claims, parsed as step() parses it, without acting on it', async () => {
  const s = startSession(SCRAM, db)!;
  expect(s.claimedUser(Buffer.from('n,,n=al=2Cice,r=abc'))).toBe('al,ice');
  expect(s.claimedUser(Buffer.from('n,,n=al=ice,r=abc'))).toBeNull(); // step() refuses it too
  expect(s.claimedUser(Buffer.from('c=biws,r=abc,p=AAAA'))).toBeNull(); // a client-final names no one
  await s.step(Buffer.from('n,,n=alice,r=abc'));
  expect(s.claimedUser(Buffer.from('n,,n=bob,r=abc'))).toBeNull(); // past client-first nothing more is named
  const p = startSession(PLAIN, db)!;
  expect(p.claimedUser(Buffer.from('\0alice\0pw'))).toBe('alice');
  expect(p.claimedUser(Buffer.from('\0\0pw'))).toBeNull();
  expect(p.claimedUser(Buffer.from('alice'))).toBeNull();
});
