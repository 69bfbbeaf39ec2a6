// SPDX-License-Identifier: Apache-2.0
// Locked SASL users: one small JSON file next to the users file (HOME/etc/lockouts.json, mode 0600), written by the
// front end when a user passes authLockoutFailures and by `virtgate user unlock`; each side re-reads it when it changes.
import fs from 'node:fs';
import path from 'node:path';
import { VG_ERR_USERDB } from '../common/errors';
import { checkUserName, writeFileAtomic } from './user-db';

export const MAX_LOCKOUTS = 10_000; // entries kept; the oldest expired ones go first, then the oldest

export interface Lockout {
  at: number; // when it started (ms since the epoch)
  until: number; // when it ends (ms since the epoch); 0 = until `virtgate user unlock`
  failures: number; // failures inside the window that triggered it
  source: string; // the source of the last of them (address without port, or unix:uid=N)
}

export const lockoutsFileFor = (usersFile: string): string => path.join(path.dirname(usersFile), 'lockouts.json');

export const isActive = (l: Lockout, now: number): boolean => l.until === 0 || l.until > now;

export class LockoutStore {
  readonly file: string;
  readonly max: number;
  #entries = new Map<string, Lockout>();
  #stamp = ''; // ino:size:mtime of what we last read or wrote; '' = no file

  constructor(file: string, max = MAX_LOCKOUTS) {
    this.file = file;
    this.max = max;
  }

  // Re-reads the file when it changed since our last read or write; true when it did. A missing file is no lockouts.
  refresh(): boolean {
    let st: fs.Stats;
    try {
      st = fs.statSync(this.file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      if (this.#stamp === '' && this.#entries.size === 0) return false;
      this.#entries = new Map();
      this.#stamp = '';
      return true;
    }
    const stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
    if (stamp === this.#stamp) return false;
    let parsed: { version?: number; locked?: Record<string, Partial<Lockout>> };
    try {
      parsed = JSON.parse(fs.readFileSync(this.file, 'utf8'));
    } catch (e) {
      throw VG_ERR_USERDB(`${this.file}: ${(e as Error).message}`);
    }
    if (parsed.version !== 1 || typeof parsed.locked !== 'object' || parsed.locked === null) throw VG_ERR_USERDB(`${this.file}: unsupported format`);
    const entries = new Map<string, Lockout>();
    for (const [name, l] of Object.entries(parsed.locked)) {
      checkUserName(name);
      if (typeof l.at !== 'number' || typeof l.until !== 'number') throw VG_ERR_USERDB(`${this.file}: bad entry for '${name}'`);
      entries.set(name, { at: l.at, until: l.until, failures: Number(l.failures) || 0, source: String(l.source ?? '') });
    }
    this.#entries = entries;
    this.#stamp = stamp;
    return true;
  }

  load(): this {
    this.refresh();
    return this;
  }

  get(name: string, now: number): Lockout | null {
    const l = this.#entries.get(name);
    return l && isActive(l, now) ? l : null;
  }

  // Whether the file still holds an entry for the user, expired or not (gone = unlocked by hand).
  has(name: string): boolean {
    return this.#entries.has(name);
  }

  // Active lockouts, oldest first.
  list(now: number): [string, Lockout][] {
    return [...this.#entries].filter(([, l]) => isActive(l, now)).sort((a, b) => a[1].at - b[1].at);
  }

  // Read-modify-write against the newest file, so a concurrent `virtgate user unlock` is not undone.
  // The lockout holds in memory even when the file cannot be read or written (the error is still thrown).
  lock(name: string, l: Lockout): void {
    let unreadable: unknown = null;
    try {
      this.refresh();
    } catch (e) {
      unreadable = e;
    }
    this.#entries.delete(name);
    this.#entries.set(name, l);
    if (unreadable) throw unreadable; // never overwrite a file we could not read
    this.#save(l.at);
  }

  unlock(name: string, now: number): boolean {
    this.refresh();
    const had = this.#entries.get(name);
    if (!had) return false;
    this.#entries.delete(name);
    this.#save(now);
    return isActive(had, now);
  }

  #save(now: number): void {
    for (const [n, l] of this.#entries) if (!isActive(l, now)) this.#entries.delete(n);
    const over = this.#entries.size - this.max;
    if (over > 0) for (const [n] of [...this.#entries].sort((a, b) => a[1].at - b[1].at).slice(0, over)) this.#entries.delete(n);
    const locked = Object.fromEntries([...this.#entries].sort((a, b) => a[1].at - b[1].at));
    writeFileAtomic(this.file, JSON.stringify({ version: 1, locked }, null, 1) + '\n');
    const st = fs.statSync(this.file);
    this.#stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
  }
}
