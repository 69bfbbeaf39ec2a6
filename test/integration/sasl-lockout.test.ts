// SPDX-License-Identifier: Apache-2.0
// The password-guessing attack from outside, on the real daemon: 200 guesses, each on a new connection, several
// connections at once. They take at least the sum of the configured delays (reconnecting and parallel connections
// gain nothing), the user is locked after authLockoutFailures (the right password is then refused, also after a
// restart), the lockout is in the audit log, and `virtgate user unlock` lets the right password in at once.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, type RunningDaemon, startDaemon } from '../helpers/daemon';
import { RawClient } from '../helpers/raw';

const LIMITS = { authDelayBaseMs: 10, authDelayMaxMs: 60, authLockoutFailures: 10, authLockoutWindow: 900, authLockoutDuration: 0 };
const GUESSES = 200;
const PARALLEL = 8; // connections guessing at once (below maxAnonymousClients)
const PASSWORD = 'alice-password';

// What the configuration imposes: the k-th failure delays the next attempt for the user by min(base * 2^(k-1), max),
// and attempts for one user run one at a time, so GUESSES failures cannot finish before the sum of those delays.
const minimumMs = (n: number): number =>
  Array.from({ length: n }, (_, k) => Math.min(LIMITS.authDelayBaseMs * 2 ** k, LIMITS.authDelayMaxMs)).reduce((a, b) => a + b, 0);

const cli = (home: string, ...args: string[]): { rc: number | null; out: string; err: string } => {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'virtgate.js'), ...args, '--home', home], { input: `${PASSWORD}\n`, encoding: 'utf8' });
  return { rc: r.status, out: r.stdout, err: r.stderr };
};

const sha256 = (b: Buffer): Buffer => crypto.createHash('sha256').update(b).digest();
const hmac = (k: Buffer, s: string): Buffer => crypto.createHmac('sha256', k).update(s).digest();

// One SCRAM-SHA-256 login over a new connection, as an attacker's script would do it. password null = a guess that
// skips the key derivation (a random proof: wrong for certain, and what a guess looks like to the server).
async function login(sock: string, user: string, password: string | null): Promise<{ ok: boolean; message?: string }> {
  const c = await RawClient.connect(sock);
  try {
    const bare = `n=${user},r=${crypto.randomBytes(12).toString('base64')}`;
    c.call(67, 0); // AUTH_SASL_INIT
    c.call(68, 1, (w) =>
      w
        .string('SCRAM-SHA-256', 100)
        .i32(0)
        .charBytes(Buffer.from(`n,,${bare}`), 65536),
    ); // AUTH_SASL_START
    const first = (await c.waitReplies(2, 60000)).find((r) => r.header.serial === 1);
    if (!first || first.error) return { ok: false, message: first?.error?.message ?? 'no reply' };
    // char data<65536>: a count, then each byte as a 4-byte XDR int.
    const serverFirst = Buffer.from(Array.from({ length: first.body.readUInt32BE(8) }, (_, i) => first.body.readInt32BE(12 + 4 * i) & 0xff)).toString();
    const attrs = Object.fromEntries(serverFirst.split(',').map((kv) => [kv[0], kv.slice(2)]));
    const withoutProof = `c=${Buffer.from('n,,').toString('base64')},r=${attrs.r}`;
    let proof = crypto.randomBytes(32);
    if (password !== null) {
      const salted = crypto.pbkdf2Sync(password, Buffer.from(attrs.s, 'base64'), Number(attrs.i), 32, 'sha256');
      const clientKey = hmac(salted, 'Client Key');
      const sig = hmac(sha256(clientKey), `${bare},${serverFirst},${withoutProof}`);
      proof = Buffer.from(clientKey.map((b, i) => b ^ sig[i]));
    }
    c.call(69, 2, (w) => w.i32(0).charBytes(Buffer.from(`${withoutProof},p=${proof.toString('base64')}`), 65536)); // AUTH_SASL_STEP
    const fin = (await c.waitReplies(3, 60000)).find((r) => r.header.serial === 2);
    if (!fin || fin.error) return { ok: false, message: fin?.error?.message ?? 'no reply' };
    return { ok: fin.body.readInt32BE(0) === 1 };
  } finally {
    c.end();
  }
}

interface AuthRecord {
  kind: string;
  source?: string;
  outcome?: { result: string };
  event?: { name: string; detail?: { reason?: string; count?: number } };
}

// HOME/log/audit.log's auth records, once at least `n` are there (the daemon appends them as logins finish).
async function authRecords(home: string, n: number): Promise<AuthRecord[]> {
  for (let tries = 0; ; tries++) {
    const all = fs
      .readFileSync(path.join(home, 'log', 'audit.log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as AuthRecord)
      .filter((r) => r.kind === 'auth');
    if (all.length >= n || tries === 100) return all;
    await new Promise((r) => setTimeout(r, 50));
  }
}

let vg: RunningDaemon;
let home: string;

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-lockout-'));
  fs.mkdirSync(path.join(home, 'etc'));
  const conf = Object.entries(LIMITS)
    .map(([k, v]) => `${k} = ${v}\n`)
    .join('');
  fs.writeFileSync(path.join(home, 'etc', 'virtgate.conf'), `authUnixRw = "sasl"\n${conf}`);
  expect(cli(home, 'user', 'add', 'alice', '--password-stdin').rc).toBe(0);
  vg = await startDaemon({ home });
});
afterAll(async () => vg?.stop());

test('200 reconnect-and-guess attempts: slowed to the configured delays, locked, audited, unlocked by the CLI', async () => {
  expect(await login(vg.sock, 'alice', PASSWORD)).toEqual({ ok: true }); // the password works before the attack

  const started = Date.now();
  let next = 0;
  const answers: string[] = [];
  const worker = async (): Promise<void> => {
    while (next < GUESSES) {
      next++;
      const r = await login(vg.sock, 'alice', null);
      answers.push(r.ok ? 'in' : (r.message ?? ''));
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  const took = Date.now() - started;
  process.stdout.write(`${GUESSES} guesses on ${PARALLEL} parallel connections took ${took} ms (configured minimum ${minimumMs(GUESSES)} ms)\n`);
  expect(answers).toEqual(Array(GUESSES).fill('authentication failed'));
  expect(took).toBeGreaterThanOrEqual(minimumMs(GUESSES));

  // Locked after 10: the right password gets the very answer a wrong one gets.
  expect(await login(vg.sock, 'alice', PASSWORD)).toEqual({ ok: false, message: 'authentication failed' });
  expect(cli(home, 'user', 'list').out).toBe('alice\tlocked until unlocked\n');

  // A restart of the daemon keeps the lockout.
  await vg.stop();

  // The lockout is in the audit trail, once; the later attempts are recorded as failures of a locked user (identical
  // repeats within 10 s as one record with their count, written by the end of the interval, here at stop).
  const auth = await authRecords(home, 3);
  const reasons = auth.map((r) => r.event?.detail?.reason ?? '');
  const lockouts = auth.filter((_, i) => /^LOCKOUT: user 'alice' locked until unlocked after 10 failed logins within 900 s/.test(reasons[i]));
  expect(lockouts).toHaveLength(1);
  expect(lockouts[0]).toMatchObject({ outcome: { result: 'error' }, event: { name: 'auth-failure' }, source: expect.stringMatching(/^unix:/) });
  const lockedAttempts = auth
    .filter((_, i) => /^user 'alice' is locked out \(until unlocked\)/.test(reasons[i]))
    .reduce((n, r) => n + (r.event?.name === 'auth-failure-repeated' ? Number(r.event?.detail?.count) : 1), 0);
  expect(lockedAttempts).toBe(GUESSES + 1 - 10);
  expect(auth.filter((_, i) => /right password for 'alice' refused: locked out/.test(reasons[i]))).toHaveLength(1);
  expect(vg.output()).toMatch(/auth failure: .*reason="LOCKOUT: user 'alice' locked/);

  vg = await startDaemon({ home });
  expect(await login(vg.sock, 'alice', PASSWORD)).toEqual({ ok: false, message: 'authentication failed' });

  // `virtgate user unlock` is honoured by the running daemon, without a restart or signal.
  expect(cli(home, 'user', 'unlock', 'alice')).toMatchObject({ rc: 0, out: "user 'alice' unlocked\n" });
  expect(await login(vg.sock, 'alice', PASSWORD)).toEqual({ ok: true });
  expect(cli(home, 'user', 'locked').out).toBe('');
}, 90000);
