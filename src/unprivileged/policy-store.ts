// SPDX-License-Identifier: Apache-2.0
// The front end's PostgreSQL policy source: one connection that LISTENs for the rule table's NOTIFY and reads the rows;
// reconnects with backoff and asks for a reload after every (re)connect, so changes made while it was away are caught.
// It decides nothing: PolicyRuntime turns the rows into a policy (same parser as a file) or keeps the last good one.
import type { Client } from 'pg';
import { type DbTarget, NOTIFY_CHANNEL, type PolicyRow, connect, describeTarget, readRows } from '../accounts/policy-db';
import { type UserRow, readUserRows } from '../accounts/user-pg';

const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 5000; // a restarted database is noticed within this (plus its connect time)
const SAFETY_CHECK_MS = 60_000; // a reload this often even without NOTIFY: a lost notification costs at most this

export interface PolicyStoreStatus {
  source: 'database' | 'cache' | 'file' | 'none';
  connected: boolean;
  lastLoad: Date | null;
  lastError: string | null;
  rules: number;
}

export interface PgPolicySourceOptions {
  target: DbTarget;
  log: (msg: string) => void;
  onChange: (why: string) => void; // NOTIFY, reconnect, periodic check
  channel?: string; // default the policy table's; the SASL users' table has its own
  what?: string; // for logs: 'policy database' (default) or 'users database'
}

export class PgPolicySource {
  readonly where: string;
  readonly #opts: PgPolicySourceOptions;
  #client: Client | null = null;
  #connecting: Promise<Client> | null = null;
  #backoff = BACKOFF_MIN_MS;
  #retry: NodeJS.Timeout | null = null;
  #periodic: NodeJS.Timeout;
  #closed = false;
  #everConnected = false;
  lastError: string | null = null;
  readonly #channel: string;
  readonly #what: string;

  constructor(opts: PgPolicySourceOptions) {
    this.#opts = opts;
    this.#channel = opts.channel ?? NOTIFY_CHANNEL;
    this.#what = opts.what ?? 'policy database';
    this.where = describeTarget(opts.target);
    this.#periodic = setInterval(() => {
      if (this.#client) opts.onChange('periodic check');
    }, SAFETY_CHECK_MS);
    this.#periodic.unref();
  }

  get connected(): boolean {
    return this.#client !== null;
  }

  // The rows, over the listening connection (connecting first if needed); throws when the database is unreachable.
  rows(): Promise<PolicyRow[]> {
    return this.#query(readRows);
  }

  userRows(): Promise<UserRow[]> {
    return this.#query(readUserRows);
  }

  // A failure without a SQLSTATE (timeout, ECONNRESET) drops the connection: the reconnect loop takes over.
  async #query<T>(fn: (c: Client) => Promise<T>): Promise<T> {
    const c = this.#client ?? (await this.#connect());
    try {
      return await fn(c);
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) this.#lost(c, (e as Error).message);
      throw e;
    }
  }

  // Connects once and LISTENs; the caller's load follows. A failure schedules the reconnect loop.
  #connect(): Promise<Client> {
    this.#connecting ??= (async () => {
      try {
        const c = await connect(this.#opts.target);
        c.on('notification', (n) => {
          if (n.channel === this.#channel) this.#opts.onChange('notify');
        });
        c.on('error', (e) => this.#lost(c, e.message));
        c.on('end', () => this.#lost(c, 'connection closed'));
        await c.query(`LISTEN ${this.#channel}`);
        if (this.#closed) {
          await c.end().catch(() => undefined);
          throw new Error('closed');
        }
        this.#client = c;
        this.#backoff = BACKOFF_MIN_MS;
        this.lastError = null;
        this.#opts.log(`${this.#what} ${this.where}: ${this.#everConnected ? 'reconnected' : 'connected'}, listening for changes`);
        this.#everConnected = true;
        return c;
      } catch (e) {
        this.lastError = (e as Error).message;
        this.#schedule();
        throw e;
      } finally {
        this.#connecting = null;
      }
    })();
    return this.#connecting;
  }

  #lost(c: Client, why: string): void {
    if (this.#client !== c) return;
    this.#client = null;
    this.lastError = why;
    c.end().catch(() => undefined);
    if (this.#closed) return;
    this.#opts.log(`${this.#what} ${this.where}: connection lost (${why}); what is in force stays, reconnecting`);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#closed || this.#retry) return;
    const delay = this.#backoff;
    this.#backoff = Math.min(this.#backoff * 2, BACKOFF_MAX_MS);
    this.#retry = setTimeout(() => {
      this.#retry = null;
      // A reconnect is followed by a reload: NOTIFYs sent while we were away are lost.
      this.#connect().then(
        () => this.#opts.onChange('reconnect'),
        () => undefined,
      );
    }, delay);
    this.#retry.unref();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#periodic);
    if (this.#retry) clearTimeout(this.#retry);
    const c = this.#client;
    this.#client = null;
    await c?.end().catch(() => undefined);
  }
}
