// SPDX-License-Identifier: Apache-2.0
// Login bookkeeping for the front end: the SASL user database, failure delays and lockouts, and the auth log.
//
// Failures are counted per source (address without port, unix uid), per user and per (source, user), across
// connections. A login attempt for a user waits for its turn before its credential is even read: one attempt per user
// at a time (and one per source while that source has recent failures), each after the delay its counters impose, so
// an attacker gains nothing from reconnecting or from opening many connections. An existing user with
// authLockoutFailures failures inside authLockoutWindow is locked (HOME/etc/lockouts.json, survives restarts): its
// logins then fail exactly like a wrong password, the right password included, until the lockout ends or
// `virtgate user unlock NAME`.
import { type Lockout, LockoutStore, lockoutsFileFor } from '../accounts/lockouts';
import { UserDb, checkUserName } from '../accounts/user-db';
import { type AuthLimits, DEFAULTS } from '../common/config';
import type { Identity } from './session';

export const MAX_TRACKED = 10_000; // failure counters kept; the least recently failed go first (existing users' stay)
const LEASE_MS = 20_000; // an attempt may hold its user's turn this long (SCRAM: client-first to client-final)
const POLL_MS = 250; // how often running and waiting attempts are checked for closed connections

export interface AuthEvent {
  outcome: 'success' | 'failure';
  method: Identity['method'];
  user: string;
  source: string;
  evidence: Partial<Identity>;
  reason?: string; // failures only; for our log, never the client
  claimedUser?: string; // failures: the user name the client tried (unproven), when it got that far
  lockout?: boolean; // failures: this failure locked the user, or the user was locked
  delayMs?: number; // failures: how long the next attempt for this user or from this source waits
}

export interface AuthOptions extends Partial<AuthLimits> {
  now?: () => number; // clock (ms); tests inject one
  lockoutFile?: string; // '' or absent = lockouts.json next to the users file
  maxTracked?: number;
  log?: (msg: string) => void; // lockout file trouble; default stderr
}

interface Tally {
  count: number; // failures, forgotten after authLockoutWindow without one
  last: number;
  notBefore: number; // the next attempt waits until then
  times?: number[]; // existing users: failure times inside the window (lockout)
}

// One login attempt's turn: held from the message naming the user until the verdict.
export interface Attempt {
  readonly user: string;
  readonly source: string; // AuthService.sourceKey
  readonly grantedAt: number;
  expired: boolean; // held longer than the lease: its verdict is a failure
  released: boolean;
}

interface Waiter {
  user: string;
  source: string;
  alive: () => boolean;
  resolve: (a: Attempt | null) => void;
}

interface RunningAttempt extends Attempt {
  alive: () => boolean;
}

const VALID_NAME = (name: string): boolean => {
  try {
    checkUserName(name);
    return true;
  } catch {
    return false;
  }
};

export class AuthService {
  readonly users: UserDb;
  readonly lockouts: LockoutStore;
  readonly limits: AuthLimits;
  readonly #onEvent: (e: AuthEvent) => void;
  readonly #now: () => number;
  readonly #maxTracked: number;
  readonly #log: (msg: string) => void;
  readonly #tally = new Map<string, Tally>(); // insertion order = least recently failed first
  readonly #waiting: Waiter[] = [];
  readonly #running = new Set<RunningAttempt>();
  readonly #busyUsers = new Set<string>();
  readonly #busySources = new Map<string, number>();
  #locked = new Set<string>(); // active lockouts as of the last look at the file
  #timer: NodeJS.Timeout | null = null;
  #lastFileError = '';

  constructor(usersFile: string, onEvent: (e: AuthEvent) => void, opts: AuthOptions = {}) {
    this.users = new UserDb(usersFile).load();
    this.#onEvent = onEvent;
    this.limits = {
      authDelayBaseMs: opts.authDelayBaseMs ?? DEFAULTS.authDelayBaseMs,
      authDelayMaxMs: opts.authDelayMaxMs ?? DEFAULTS.authDelayMaxMs,
      authLockoutFailures: opts.authLockoutFailures ?? DEFAULTS.authLockoutFailures,
      authLockoutWindow: opts.authLockoutWindow ?? DEFAULTS.authLockoutWindow,
      authLockoutDuration: opts.authLockoutDuration ?? DEFAULTS.authLockoutDuration,
    };
    this.#now = opts.now ?? (() => Date.now());
    this.#maxTracked = opts.maxTracked ?? MAX_TRACKED;
    this.#log = opts.log ?? ((m) => process.stderr.write(`virtgated: ${m}\n`));
    this.lockouts = new LockoutStore(opts.lockoutFile || lockoutsFileFor(usersFile));
    this.#refreshLockouts();
  }

  reloadUsers(): void {
    this.users.load();
  }

  // Source address without the port: retries from new ports share one penalty.
  static sourceKey(source: string): string {
    return source.startsWith('unix:') ? source.replace(/,pid=\d+/, '').replace(/pid=\d+,?/, '') : source.replace(/:\d+$/, '');
  }

  // The delay after `count` recent failures: base, doubling, at most max.
  delayFor(count: number): number {
    if (count <= 0) return 0;
    return Math.min(this.limits.authDelayBaseMs * 2 ** Math.min(count - 1, 40), this.limits.authDelayMaxMs);
  }

  // Waits for this user's turn from this source; null when `alive` turned false while waiting (connection closed).
  turn(source: string, user: string, alive: () => boolean = () => true): Promise<Attempt | null> {
    this.#refreshLockouts(); // an unlock since the last look also ends the delays it forgot
    return new Promise((resolve) => {
      this.#waiting.push({ user: userKey(user), source: AuthService.sourceKey(source), alive, resolve });
      this.#pump();
    });
  }

  // Why an exchange that proved the password must still fail (locked user, turn lost), or null.
  refusal(a: Attempt | null, user: string): string | null {
    if (!a || a.released || a.user !== userKey(user)) return a?.expired ? `the exchange outlasted its turn (${LEASE_MS / 1000} s)` : 'login without its turn';
    this.#refreshLockouts();
    const l = this.lockouts.get(user, this.#now());
    return l ? `right password for '${user}' refused: locked out` : null;
  }

  // Records a failure, reports it, and resolves when the delay it imposes has passed (the reply waits as well).
  async failed(e: Omit<AuthEvent, 'outcome'>, attempt: Attempt | null = null): Promise<void> {
    const now = this.#now();
    this.#refreshLockouts();
    const source = AuthService.sourceKey(e.source);
    const tallies = [this.#bump(`s:${source}`, now)];
    let lockout: Lockout | null = null;
    let lockedNow = false;
    const name = attempt?.user ?? '';
    if (attempt) {
      tallies.push(this.#bump(`u:${name}`, now), this.#bump(`p:${source}\0${name}`, now));
      lockout = this.lockouts.get(name, now);
      const n = this.limits.authLockoutFailures;
      if (!lockout && n > 0 && this.users.get(name)) {
        const t = tallies[1];
        t.times = [...(t.times ?? []).filter((x) => now - x < this.limits.authLockoutWindow * 1000), now].slice(-n);
        if (t.times.length >= n) {
          const d = this.limits.authLockoutDuration;
          lockout = { at: now, until: d === 0 ? 0 : now + d * 1000, failures: t.times.length, source };
          t.times = [];
          lockedNow = true;
          try {
            this.lockouts.lock(name, lockout);
          } catch (err) {
            this.#log(`LOCKOUT of '${name}' kept in memory only: cannot write ${this.lockouts.file}: ${(err as Error).message}`);
          }
          this.#locked.add(name);
        }
      }
      this.#release(attempt);
    }
    if (this.#tally.size > this.#maxTracked) this.#evict();
    const wait = Math.max(0, ...tallies.map((t) => t.notBefore - now));
    const until = lockout ? (lockout.until === 0 ? 'until unlocked' : `until ${new Date(lockout.until).toISOString()}`) : '';
    const reason = lockedNow
      ? `LOCKOUT: user '${name}' locked ${until} after ${lockout!.failures} failed logins within ${this.limits.authLockoutWindow} s (virtgate user unlock ${name}); last: ${e.reason ?? ''}`
      : lockout
        ? `user '${name}' is locked out (${until}): ${e.reason ?? ''}`
        : e.reason;
    this.#onEvent({ ...e, outcome: 'failure', reason, ...(attempt ? { claimedUser: name } : {}), ...(lockout ? { lockout: true } : {}), delayMs: wait });
    this.#pump();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }

  // A success resets this user's counters (overall and from this source) only: never the source's or other users'.
  succeeded(e: Omit<AuthEvent, 'outcome'>, attempt: Attempt | null = null): void {
    this.#onEvent({ ...e, outcome: 'success' });
    if (attempt) {
      this.#tally.delete(`u:${attempt.user}`);
      this.#tally.delete(`p:${attempt.source}\0${attempt.user}`);
      this.#release(attempt);
      this.#pump();
    }
  }

  // Gives a turn back without a verdict (the exchange was abandoned).
  release(attempt: Attempt): void {
    this.#release(attempt);
    this.#pump();
  }

  // Recent failures counted for a source (any user), a user (any source), or both.
  failureCount(q: { source?: string; user?: string }): number {
    const key =
      q.source !== undefined && q.user !== undefined
        ? `p:${AuthService.sourceKey(q.source)}\0${userKey(q.user)}`
        : q.user !== undefined
          ? `u:${userKey(q.user)}`
          : `s:${AuthService.sourceKey(q.source ?? '')}`;
    const t = this.#tally.get(key);
    return t && this.#now() - t.last < this.limits.authLockoutWindow * 1000 ? t.count : 0;
  }

  get tracked(): number {
    return this.#tally.size;
  }

  isLocked(user: string): boolean {
    this.#refreshLockouts();
    return this.lockouts.get(user, this.#now()) !== null;
  }

  // Ends a lockout and forgets the user's failures (what `virtgate user unlock` asks of the running daemon via the file).
  unlock(user: string): boolean {
    const was = this.lockouts.unlock(user, this.#now());
    this.#locked.delete(user);
    this.#forgetUser(user);
    this.#pump();
    return was;
  }

  // The file may have changed under us (`virtgate user unlock`): users unlocked by hand start from zero.
  #refreshLockouts(): void {
    try {
      if (!this.lockouts.refresh() && this.#locked.size === 0) return;
      this.#lastFileError = '';
    } catch (err) {
      const msg = (err as Error).message;
      if (msg !== this.#lastFileError) this.#log(`cannot read lockouts (keeping the last known ones): ${msg}`);
      this.#lastFileError = msg;
      return;
    }
    const now = this.#now();
    for (const n of this.#locked) if (!this.lockouts.has(n)) this.#forgetUser(n); // unlocked, not merely expired
    this.#locked = new Set(this.lockouts.list(now).map(([n]) => n));
  }

  #forgetUser(user: string): void {
    const k = userKey(user);
    this.#tally.delete(`u:${k}`);
    for (const key of this.#tally.keys()) if (key.startsWith('p:') && key.endsWith(`\0${k}`)) this.#tally.delete(key);
  }

  #bump(key: string, now: number): Tally {
    let t = this.#tally.get(key);
    if (!t || now - t.last >= this.limits.authLockoutWindow * 1000) t = { count: 0, last: now, notBefore: 0 };
    t.count++;
    t.last = now;
    t.notBefore = now + this.delayFor(t.count);
    this.#tally.delete(key);
    this.#tally.set(key, t); // to the end: most recent
    return t;
  }

  // Drops the least recently failed tenth of the table; existing users' counters stay (there are only so many).
  #evict(): void {
    const target = Math.floor(this.#maxTracked * 0.9);
    for (const key of this.#tally.keys()) {
      if (this.#tally.size <= target) break;
      if (key.startsWith('u:') && this.users.get(key.slice(2))) continue;
      this.#tally.delete(key);
    }
  }

  #release(a: Attempt): void {
    if (a.released) return;
    a.released = true;
    this.#running.delete(a as RunningAttempt);
    this.#busyUsers.delete(a.user);
    const n = (this.#busySources.get(a.source) ?? 1) - 1;
    if (n > 0) this.#busySources.set(a.source, n);
    else this.#busySources.delete(a.source);
  }

  // When a waiter may start: never while its user has an attempt running (or its source, after recent failures),
  // else once every delay that applies has passed.
  #readyAt(w: Waiter, now: number): number {
    if (this.#busyUsers.has(w.user)) return Infinity;
    const s = this.#tally.get(`s:${w.source}`);
    const recent = (t: Tally | undefined): t is Tally => t !== undefined && now - t.last < this.limits.authLockoutWindow * 1000;
    if (recent(s) && this.#busySources.has(w.source)) return Infinity;
    const ts = [s, this.#tally.get(`u:${w.user}`), this.#tally.get(`p:${w.source}\0${w.user}`)].filter(recent);
    return Math.max(0, ...ts.map((t) => t.notBefore));
  }

  #pump(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const now = this.#now();
    for (const a of this.#running) {
      if (!a.alive()) this.#release(a);
      else if (now - a.grantedAt >= LEASE_MS) {
        a.expired = true;
        this.#release(a);
      }
    }
    let next = Infinity;
    for (let i = 0; i < this.#waiting.length;) {
      const w = this.#waiting[i];
      if (!w.alive()) {
        this.#waiting.splice(i, 1);
        w.resolve(null);
        continue;
      }
      const at = this.#readyAt(w, now);
      if (at > now) {
        next = Math.min(next, at);
        i++;
        continue;
      }
      this.#waiting.splice(i, 1);
      const a: RunningAttempt = { user: w.user, source: w.source, grantedAt: now, expired: false, released: false, alive: w.alive };
      this.#running.add(a);
      this.#busyUsers.add(a.user);
      this.#busySources.set(a.source, (this.#busySources.get(a.source) ?? 0) + 1);
      w.resolve(a);
    }
    if (this.#waiting.length === 0 && this.#running.size === 0) return;
    this.#timer = setTimeout(() => this.#pump(), Math.max(1, Math.min(next - now, POLL_MS)));
    this.#timer.unref?.();
  }
}

// Names no user can have share one counter: an attacker's junk names cannot make keys of any size.
function userKey(name: string): string {
  return VALID_NAME(name) ? name : '#invalid';
}
