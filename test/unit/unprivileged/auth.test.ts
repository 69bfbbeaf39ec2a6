// SPDX-License-Identifier: Apache-2.0
// Login failure bookkeeping: delays per source, per user and per (source, user) across connections, one attempt per
// user at a time, lockouts (persisted, unlockable from outside), the bounded table. Fake timers: no real waiting.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LockoutStore } from '../../../src/accounts/lockouts';
import { UserDb, deriveCredentials } from '../../../src/accounts/user-db';
import { type Attempt, type AuthEvent, type AuthOptions, AuthService } from '../../../src/unprivileged/auth';

let usersFile: string;
beforeAll(() => {
  usersFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vg-auth-')), 'etc', 'users.json');
  const db = new UserDb(usersFile);
  db.set(deriveCredentials('alice', 'alice-password', 4096));
  db.set(deriveCredentials('bob', 'bob-password', 4096));
  db.save();
});

const freshUsersFile = (): string => {
  const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vg-auth-')), 'users.json');
  fs.copyFileSync(usersFile, f);
  return f;
};
const service = (events: AuthEvent[] = [], opts: AuthOptions = {}, file = freshUsersFile()): AuthService => new AuthService(file, (e) => events.push(e), opts);
const ev = (source: string) => ({ method: 'sasl' as const, user: '', source, evidence: {}, reason: 'wrong password' });

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

// A promise's state without awaiting it.
function track<T>(p: Promise<T>): { done: boolean; value?: T } {
  const s: { done: boolean; value?: T } = { done: false };
  void p.then((v) => {
    s.done = true;
    s.value = v;
  });
  return s;
}

// One whole attempt: the turn (awaited through fake time), then a failure.
async function failOnce(a: AuthService, source: string, user: string): Promise<void> {
  const t = track(a.turn(source, user));
  while (!t.done) await jest.advanceTimersByTimeAsync(10);
  void a.failed(ev(source), t.value!);
}

test('failures without a user name are slowed per source address: 250 ms, doubling; a success does not reset the source', async () => {
  const events: AuthEvent[] = [];
  const a = service(events);
  const f1 = track(a.failed(ev('203.0.113.7:50000')));
  await jest.advanceTimersByTimeAsync(249);
  expect(f1.done).toBe(false);
  await jest.advanceTimersByTimeAsync(1);
  expect(f1.done).toBe(true);
  const f2 = track(a.failed(ev('203.0.113.7:50001'))); // another port, same address: same counter
  await jest.advanceTimersByTimeAsync(499);
  expect(f2.done).toBe(false);
  await jest.advanceTimersByTimeAsync(1);
  expect(f2.done).toBe(true);
  expect(a.failureCount({ source: '203.0.113.7:1' })).toBe(2);
  const other = track(a.failed(ev('198.51.100.1:4000'))); // a different source starts at 250 ms
  await jest.advanceTimersByTimeAsync(250);
  expect(other.done).toBe(true);
  a.succeeded({ method: 'sasl', user: 'bob', source: '203.0.113.7:50002', evidence: {} });
  expect(a.failureCount({ source: '203.0.113.7:1' })).toBe(2); // logging in as someone does not wipe the source
  expect(events.map((e) => e.outcome)).toEqual(['failure', 'failure', 'failure', 'success']);
  expect(events.map((e) => e.delayMs)).toEqual([250, 500, 250, undefined]);
});

test('unix peers share counters per uid, not per pid', () => {
  expect(AuthService.sourceKey('unix:pid=123,uid=1000')).toBe(AuthService.sourceKey('unix:pid=456,uid=1000'));
  expect(AuthService.sourceKey('unix:pid=123,uid=1000')).not.toBe(AuthService.sourceKey('unix:pid=123,uid=0'));
});

test('a user is delayed across sources and connections, and its attempts run one at a time', async () => {
  const a = service([], { authLockoutFailures: 0 });
  await failOnce(a, '203.0.113.7:1000', 'alice');
  // Another address, another connection: alice's next attempt still waits 250 ms; bob's does not.
  const alice = track(a.turn('198.51.100.1:2000', 'alice'));
  const bob = track(a.turn('198.51.100.1:2001', 'bob'));
  await jest.advanceTimersByTimeAsync(0);
  expect(bob.done).toBe(true);
  await jest.advanceTimersByTimeAsync(240);
  expect(alice.done).toBe(false);
  await jest.advanceTimersByTimeAsync(20);
  expect(alice.done).toBe(true);
  // While that attempt runs, a third for alice from anywhere waits for it, then for the (now 500 ms) delay.
  const third = track(a.turn('192.0.2.9:3000', 'alice'));
  await jest.advanceTimersByTimeAsync(5000);
  expect(third.done).toBe(false);
  const failedAt = Date.now();
  void a.failed(ev('198.51.100.1:2000'), alice.value!);
  while (!third.done) await jest.advanceTimersByTimeAsync(10);
  expect(Date.now() - failedAt).toBeGreaterThanOrEqual(500);
  expect(a.failureCount({ user: 'alice' })).toBe(2);
  expect(a.failureCount({ source: '198.51.100.1:9', user: 'alice' })).toBe(1);
});

test('many connections gain nothing: 20 parallel guesses take the sum of the delays', async () => {
  const a = service([], { authDelayBaseMs: 100, authDelayMaxMs: 400, authLockoutFailures: 0 });
  const start = Date.now();
  const guesses = Array.from({ length: 20 }, async (_, i) => {
    const at = await a.turn(`203.0.113.${i}:${1000 + i}`, 'alice');
    await a.failed(ev(`203.0.113.${i}:${1000 + i}`), at);
  });
  const all = track(Promise.all(guesses));
  while (!all.done) await jest.advanceTimersByTimeAsync(50);
  // Failure k delays what follows by min(100 x 2^(k-1), 400): the 20th reply comes after the sum of all 20 delays.
  expect(Date.now() - start).toBeGreaterThanOrEqual(100 + 200 + 18 * 400);
});

test('a closed connection gives its turn back and stops waiting', async () => {
  const a = service();
  let open = true;
  const first = track(a.turn('203.0.113.7:1', 'alice', () => open));
  await jest.advanceTimersByTimeAsync(0);
  const second = track(a.turn('203.0.113.8:1', 'alice'));
  await jest.advanceTimersByTimeAsync(1000);
  expect([first.done, second.done]).toEqual([true, false]);
  open = false; // client-first sent, then the client went away
  await jest.advanceTimersByTimeAsync(300);
  expect(second.done).toBe(true);
  expect(a.failureCount({ user: 'alice' })).toBe(0); // no guess was made
});

test('lockout after N failures in the window; the right password is refused; reported loudly', async () => {
  const events: AuthEvent[] = [];
  const a = service(events, { authLockoutFailures: 3, authLockoutWindow: 60, authLockoutDuration: 0, authDelayBaseMs: 10, authDelayMaxMs: 10 });
  for (let i = 0; i < 2; i++) await failOnce(a, `203.0.113.${i}:1`, 'alice');
  expect(a.isLocked('alice')).toBe(false);
  await failOnce(a, '203.0.113.9:1', 'alice');
  expect(a.isLocked('alice')).toBe(true);
  const lock = events.at(-1)!;
  expect(lock).toMatchObject({ outcome: 'failure', lockout: true, claimedUser: 'alice' });
  expect(lock.reason).toMatch(/^LOCKOUT: user 'alice' locked until unlocked after 3 failed logins within 60 s/);
  // Right password: the exchange proved it, the verdict is still a failure (the handler fails it like a wrong one).
  const t = track(a.turn('198.51.100.1:1', 'alice'));
  while (!t.done) await jest.advanceTimersByTimeAsync(10);
  expect(a.refusal(t.value!, 'alice')).toMatch(/locked out/);
  void a.failed({ ...ev('198.51.100.1:1'), reason: a.refusal(t.value!, 'alice')! }, t.value!);
  expect(events.at(-1)).toMatchObject({ lockout: true, reason: expect.stringMatching(/^user 'alice' is locked out \(until unlocked\)/) });
  // Unknown users are never locked (nothing to lock), but they are delayed the same way.
  for (let i = 0; i < 5; i++) await failOnce(a, '203.0.113.50:1', 'nobody');
  expect(a.isLocked('nobody')).toBe(false);
  expect(a.failureCount({ user: 'nobody' })).toBe(5);
});

test('failures spread wider than the window do not lock; a lockout with a duration ends by itself', async () => {
  let now = 1_000_000;
  const a = service([], { now: () => now, authLockoutFailures: 3, authLockoutWindow: 100, authLockoutDuration: 50, authDelayBaseMs: 0, authDelayMaxMs: 0 });
  const once = async (): Promise<void> => {
    const at = await a.turn('203.0.113.7:1', 'alice');
    await a.failed(ev('203.0.113.7:1'), at);
  };
  await once();
  now += 60_000;
  await once();
  now += 60_000; // the first is out of the window
  await once();
  expect(a.isLocked('alice')).toBe(false);
  await once(); // three inside 100 s
  expect(a.isLocked('alice')).toBe(true);
  now += 49_000;
  expect(a.isLocked('alice')).toBe(true);
  now += 1_000;
  expect(a.isLocked('alice')).toBe(false);
});

test('a success resets only that user: not the source, not other users', async () => {
  const a = service([], { authLockoutFailures: 0 });
  await failOnce(a, '203.0.113.7:1', 'alice');
  await jest.advanceTimersByTimeAsync(300);
  await failOnce(a, '203.0.113.7:2', 'alice');
  await jest.advanceTimersByTimeAsync(600);
  const bob = track(a.turn('203.0.113.7:3', 'bob'));
  while (!bob.done) await jest.advanceTimersByTimeAsync(10);
  a.succeeded({ method: 'sasl', user: 'bob', source: '203.0.113.7:3', evidence: {} }, bob.value!);
  expect(a.failureCount({ source: '203.0.113.7:1', user: 'alice' })).toBe(2);
  expect(a.failureCount({ user: 'alice' })).toBe(2);
  expect(a.failureCount({ source: '203.0.113.7:1' })).toBe(2);
  // alice's own success (from elsewhere) resets her overall counter and that source's pair, not the attacker's pair.
  const alice = track(a.turn('198.51.100.1:1', 'alice'));
  while (!alice.done) await jest.advanceTimersByTimeAsync(10);
  a.succeeded({ method: 'sasl', user: 'alice', source: '198.51.100.1:1', evidence: {} }, alice.value!);
  expect(a.failureCount({ user: 'alice' })).toBe(0);
  expect(a.failureCount({ source: '203.0.113.7:1', user: 'alice' })).toBe(2);
});

test('lockouts persist in lockouts.json and survive a new AuthService; an unlock from outside (the CLI) is honoured live', async () => {
  const file = freshUsersFile();
  const a = service([], { authLockoutFailures: 2, authDelayBaseMs: 10, authDelayMaxMs: 10 }, file);
  await failOnce(a, '203.0.113.7:1', 'alice');
  await failOnce(a, '203.0.113.7:2', 'alice');
  expect(a.isLocked('alice')).toBe(true);
  const lockFile = path.join(path.dirname(file), 'lockouts.json');
  expect(fs.statSync(lockFile).mode & 0o777).toBe(0o600);
  expect(JSON.parse(fs.readFileSync(lockFile, 'utf8')).locked.alice).toMatchObject({ failures: 2, source: '203.0.113.7' });
  const restarted = service([], { authLockoutFailures: 2 }, file);
  expect(restarted.isLocked('alice')).toBe(true);
  expect(restarted.isLocked('bob')).toBe(false);
  // `virtgate user unlock alice` edits the file; the running services see it at their next decision.
  expect(new LockoutStore(lockFile).load().unlock('alice', Date.now())).toBe(true);
  expect(a.isLocked('alice')).toBe(false);
  expect(restarted.isLocked('alice')).toBe(false);
  expect(a.failureCount({ user: 'alice' })).toBe(0); // starts from zero: no instant relock
  expect(a.failureCount({ source: '203.0.113.7:1', user: 'alice' })).toBe(0);
  // An unlock also ends the wait the forgotten failures imposed, at the next attempt.
  await failOnce(restarted, '203.0.113.7:1', 'alice');
  await failOnce(restarted, '203.0.113.7:2', 'alice');
  expect(restarted.isLocked('alice')).toBe(true);
  expect(new LockoutStore(lockFile).load().unlock('alice', Date.now())).toBe(true);
  const next = track(restarted.turn('198.51.100.1:1', 'alice'));
  await jest.advanceTimersByTimeAsync(0);
  expect(next.done).toBe(true);
});

test('the failure table is bounded; one source cycling through random names is still counted', async () => {
  const a = service([], { maxTracked: 100, authDelayBaseMs: 0, authDelayMaxMs: 0 });
  for (let i = 0; i < 300; i++) {
    const at = (await a.turn('203.0.113.66:1', `random${i}`)) as Attempt;
    await a.failed(ev('203.0.113.66:1'), at);
    await a.failed(ev(`198.51.${i >> 8}.${i & 255}:1`)); // and from many sources
  }
  expect(a.tracked).toBeLessThanOrEqual(100);
  expect(a.failureCount({ source: '203.0.113.66:1' })).toBe(300);
  // Names no user could have share one key: no key grows with the attacker's input.
  await a.failed(ev('203.0.113.67:1'), await a.turn('203.0.113.67:1', 'x'.repeat(60000)));
  expect(a.failureCount({ user: 'y'.repeat(100) })).toBe(1);
});

test('existing users keep their counters when the table overflows', async () => {
  const a = service([], { maxTracked: 50, authDelayBaseMs: 0, authDelayMaxMs: 0, authLockoutFailures: 0 });
  await a.failed(ev('203.0.113.7:1'), await a.turn('203.0.113.7:1', 'alice'));
  for (let i = 0; i < 200; i++) await a.failed(ev(`198.51.100.${i}:1`), await a.turn(`198.51.100.${i}:1`, `junk${i}`));
  expect(a.failureCount({ user: 'alice' })).toBe(1);
  expect(a.failureCount({ user: 'junk0' })).toBe(0);
});

test('a lockout holds in memory, loudly, when lockouts.json cannot be read; the file is not overwritten', async () => {
  const file = freshUsersFile();
  const lockFile = path.join(path.dirname(file), 'lockouts.json');
  const logged: string[] = [];
  const a = service([], { authLockoutFailures: 1, authDelayBaseMs: 0, authDelayMaxMs: 0, log: (m) => logged.push(m) }, file);
  fs.writeFileSync(lockFile, 'not json', { mode: 0o600 });
  await failOnce(a, '203.0.113.7:1', 'alice');
  expect(a.isLocked('alice')).toBe(true);
  expect(logged.join('\n')).toMatch(/LOCKOUT of 'alice' kept in memory only/);
  expect(fs.readFileSync(lockFile, 'utf8')).toBe('not json');
});

test('lockouts.json is bounded: expired entries go first, then the oldest', () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vg-lock-')), 'lockouts.json');
  const store = new LockoutStore(file, 3);
  const now = Date.now();
  store.lock('old', { at: now - 5000, until: now - 1, failures: 10, source: 's' }); // expired
  store.lock('a', { at: now - 4000, until: 0, failures: 10, source: 's' });
  store.lock('b', { at: now - 3000, until: 0, failures: 10, source: 's' });
  store.lock('c', { at: now - 2000, until: now + 60_000, failures: 10, source: 's' });
  expect(Object.keys(JSON.parse(fs.readFileSync(file, 'utf8')).locked)).toEqual(['a', 'b', 'c']);
  store.lock('d', { at: now, until: 0, failures: 10, source: 's' });
  expect(Object.keys(JSON.parse(fs.readFileSync(file, 'utf8')).locked)).toEqual(['b', 'c', 'd']);
  expect(
    new LockoutStore(file)
      .load()
      .list(now)
      .map(([n]) => n),
  ).toEqual(['b', 'c', 'd']);
});
