// SPDX-License-Identifier: Apache-2.0
// Login bookkeeping for the front end: the SASL user database, per-source failure penalties, and the auth log.
import { UserDb } from '../accounts/user-db';
import type { Identity } from './session';

const PENALTY_BASE_MS = 250; // first failure
const PENALTY_MAX_MS = 8000;
const FORGET_AFTER_MS = 10 * 60 * 1000; // a quiet source starts over

export interface AuthEvent {
  outcome: 'success' | 'failure';
  method: Identity['method'];
  user: string;
  source: string;
  evidence: Partial<Identity>;
  reason?: string; // failures only; for our log, never the client
}

export class AuthService {
  readonly users: UserDb;
  readonly #failures = new Map<string, { count: number; last: number }>();
  readonly #onEvent: (e: AuthEvent) => void;

  constructor(usersFile: string, onEvent: (e: AuthEvent) => void) {
    this.users = new UserDb(usersFile).load();
    this.#onEvent = onEvent;
  }

  reloadUsers(): void {
    this.users.load();
  }

  // Source address without the port: retries from new ports share one penalty.
  static sourceKey(source: string): string {
    return source.startsWith('unix:') ? source.replace(/,pid=\d+/, '').replace(/pid=\d+,?/, '') : source.replace(/:\d+$/, '');
  }

  // Resolves after the penalty for this source: 250 ms, doubling per recent failure, at most 8 s.
  async failed(e: Omit<AuthEvent, 'outcome'>): Promise<void> {
    this.#onEvent({ ...e, outcome: 'failure' });
    const key = AuthService.sourceKey(e.source);
    const now = Date.now();
    const prev = this.#failures.get(key);
    const count = prev && now - prev.last < FORGET_AFTER_MS ? prev.count + 1 : 1;
    this.#failures.set(key, { count, last: now });
    if (this.#failures.size > 10000) this.#prune(now);
    await new Promise((r) => setTimeout(r, Math.min(PENALTY_BASE_MS * 2 ** (count - 1), PENALTY_MAX_MS)));
  }

  succeeded(e: Omit<AuthEvent, 'outcome'>): void {
    this.#onEvent({ ...e, outcome: 'success' });
    this.#failures.delete(AuthService.sourceKey(e.source));
  }

  penaltyCount(source: string): number {
    return this.#failures.get(AuthService.sourceKey(source))?.count ?? 0;
  }

  #prune(now: number): void {
    for (const [k, v] of this.#failures) if (now - v.last >= FORGET_AFTER_MS) this.#failures.delete(k);
  }
}
