// SPDX-License-Identifier: Apache-2.0
// The front end's live policy: reads the model and CSV files, builds the Casbin facade, reloads on SIGHUP and on change.
// A reload that fails keeps the policy in force and logs why; before the first load everything is denied (never open),
// and the daemon opens no listener until that load is over (`ready`).
// The built-in memberships (root, the `admin` certificate, hostAdmin) are added to the file's rows unless it says
// `builtin, off` (composePolicy); with no file they are the whole policy. That happens only while no policy file was
// ever loaded: once one was, its disappearance is a failed reload (an accidental `rm` must not take the site's rules
// away, nor give host admin back to built-in members the site had turned off).
// With policyStore = 'postgresql' the rows come from the database (policy-store.ts) and go through the same parser;
// each good load is cached (atomically, 0600); the database down at start -> the cache -> else deny everything.
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../common/config';
import type { Authorizer, Decision, PolicyObject, Subject } from '../policy/authorizer';
import { CasbinAuthorizer, PolicySet } from '../policy/engine';
import { MODEL_TEXT, composePolicy } from '../policy/model';
import { type DbTarget, rowsToText } from '../accounts/policy-db';
import { writeFileAtomic } from '../accounts/user-db';
import { PgPolicySource, type PolicyStoreStatus } from './policy-store';

export const CACHE_HEADER = '# virtgate policy cache: the last good rows read from';

export interface PolicyRuntimeOptions {
  policyFile: string;
  modelFile?: string; // '' or absent = built-in model
  hostAdmin?: string; // one more built-in host admin (config hostAdmin); '' or absent = none
  log: (msg: string) => void;
  watch?: boolean; // fs.watch the files (default true)
  signals?: boolean; // reload on SIGHUP (default true)
  onReload?: (r: PolicyReload) => void; // every load attempt, for the audit trail
  database?: DbTarget; // policyStore = 'postgresql': rows from there, policyFile unused
  cacheFile?: string; // with database: the last good rows
}

export interface PolicyReload {
  why: string; // start | SIGHUP | file change
  ok: boolean;
  source: string;
  rules?: number;
  error?: string;
}

export class PolicyRuntime implements Authorizer {
  readonly #opts: PolicyRuntimeOptions;
  #authz: CasbinAuthorizer | null = null;
  #watchers: fs.FSWatcher[] = [];
  #timer: NodeJS.Timeout | null = null;
  #reloading: Promise<boolean> = Promise.resolve(false);
  #fromFile = false; // the policy in force came from policyFile
  readonly #db: PgPolicySource | null;
  #status: PolicyStoreStatus = { source: 'none', connected: false, lastLoad: null, lastError: null, rules: 0 };
  readonly #onHup = (): void => void this.reload('SIGHUP');
  readonly ready: Promise<boolean>;

  constructor(opts: PolicyRuntimeOptions) {
    this.#opts = opts;
    this.#db = opts.database ? new PgPolicySource({ target: opts.database, log: opts.log, onChange: (why) => void this.reload(why) }) : null;
    this.ready = this.reload('start');
    if (opts.watch !== false && !this.#db) this.#watch();
    if (opts.signals !== false) process.on('SIGHUP', this.#onHup);
  }

  get generation(): number {
    return this.#authz?.generation ?? 0;
  }

  can(subject: Subject, object: PolicyObject, permission: string): Decision {
    if (!this.#authz) return { allowed: false, rule: 'no policy loaded' };
    return this.#authz.can(subject, object, permission);
  }

  tenantsOf(user: string): string[] {
    return this.#authz?.tenantsOf(user) ?? [];
  }

  mayUseTenant(user: string, tenant: string): boolean {
    return this.#authz?.mayUseTenant(user, tenant) ?? false;
  }

  // Serialised: a reload never races another; resolves true when the new policy is in force.
  reload(why: string): Promise<boolean> {
    this.#reloading = this.#reloading.then(() => this.#load(why));
    return this.#reloading;
  }

  // Where the policy in force came from, for logs and metrics (the lead turns it into series).
  status(): PolicyStoreStatus {
    return { ...this.#status, connected: this.#db ? this.#db.connected : this.#status.source === 'file' };
  }

  #loaded(why: string, source: string, kind: PolicyStoreStatus['source'], set: PolicySet, admins: string[]): void {
    if (this.#authz) this.#authz.replace(set);
    else this.#authz = new CasbinAuthorizer(set);
    this.#status = { ...this.#status, source: kind, lastLoad: new Date(), lastError: null, rules: set.rules.length };
    const builtin = admins.length ? `built-in host admins ${admins.join(', ')}` : 'built-in host admins off (builtin, off)';
    this.#opts.log(`policy loaded (${why}) from ${source}: ${set.rules.length} rules; ${builtin}`);
    this.#opts.onReload?.({ why, ok: true, source, rules: set.rules.length });
  }

  #failed(why: string, source: string, msg: string): false {
    this.#status = { ...this.#status, lastError: msg.slice(0, 512) };
    const kept = this.#authz ? 'keeping the previous policy' : 'denying everything';
    const from = this.#db && this.#authz ? ` (in force: the policy from the ${this.#status.source}, loaded ${this.#status.lastLoad?.toISOString()})` : '';
    this.#opts.log(`policy ${why === 'start' ? 'load' : 'reload'} failed (${why}), ${kept}: ${msg}${from}`);
    this.#opts.onReload?.({ why, ok: false, source, error: msg.slice(0, 256) });
    return false;
  }

  // The database's rows through the same parser as a file. Unreachable: keep what is in force, or at start the cache.
  async #loadDb(db: PgPolicySource, why: string): Promise<boolean> {
    const { modelFile, hostAdmin, cacheFile } = this.#opts;
    const model = modelFile ? fs.readFileSync(modelFile, 'utf8') : MODEL_TEXT;
    let site: { text: string; ids: number[] };
    try {
      site = rowsToText(await db.rows());
    } catch (e) {
      const msg = (e as Error).message;
      if (this.#authz || !cacheFile) return this.#failed(why, db.where, msg);
      this.#status = { ...this.#status, lastError: msg.slice(0, 512) };
      this.#opts.log(`policy database ${db.where} unreachable (${why}): ${msg}; trying the cache ${cacheFile}`);
      return this.#loadCache(cacheFile, model, why);
    }
    try {
      const composed = composePolicy(site.text, hostAdmin ?? '', 'database');
      const set = await PolicySet.build(model, composed.text, 'database');
      if (cacheFile) {
        try {
          writeFileAtomic(cacheFile, `${CACHE_HEADER} ${db.where} at ${new Date().toISOString()}\n${site.text}`);
        } catch (e) {
          this.#opts.log(`cannot write the policy cache ${cacheFile}: ${(e as Error).message}`);
        }
      }
      this.#loaded(why, db.where, 'database', set, composed.admins);
      return true;
    } catch (e) {
      // Line N of the text is row ids[N-1]: name the row, which is what an operator can find and fix.
      const msg = (e as Error).message.replace(/database:(\d+)/g, (_, n: string) => `row id=${site.ids[Number(n) - 1] ?? '?'}`);
      return this.#failed(why, db.where, `bad rule in the database (the whole load is refused): ${msg}`);
    }
  }

  async #loadCache(cacheFile: string, model: string, why: string): Promise<boolean> {
    try {
      const text = fs.readFileSync(cacheFile, 'utf8');
      if (!text.startsWith(CACHE_HEADER)) throw new Error('not a policy cache file');
      const composed = composePolicy(text, this.#opts.hostAdmin ?? '', cacheFile);
      const set = await PolicySet.build(model, composed.text, cacheFile);
      this.#loaded(
        why,
        `the cache ${cacheFile} (${text.split('\n')[0].slice(CACHE_HEADER.length + 1)}; the database is unreachable)`,
        'cache',
        set,
        composed.admins,
      );
      return true;
    } catch (e) {
      return this.#failed(why, cacheFile, `no usable policy cache: ${(e as Error).message}`);
    }
  }

  async #load(why: string): Promise<boolean> {
    if (this.#db) return this.#loadDb(this.#db, why);
    const { policyFile, modelFile } = this.#opts;
    let source = policyFile;
    try {
      const model = modelFile ? fs.readFileSync(modelFile, 'utf8') : MODEL_TEXT;
      let site: string | null;
      try {
        site = fs.readFileSync(policyFile, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        if (this.#fromFile)
          throw new Error(
            `POLICY FILE MISSING: ${policyFile} was loaded before and is gone (restore it; the built-in default applies only when no policy file was ever loaded)`,
          );
        site = null;
        source = 'built-in default policy';
      }
      const composed = composePolicy(site, this.#opts.hostAdmin ?? '', policyFile);
      const set = await PolicySet.build(model, composed.text, source);
      this.#fromFile = site !== null;
      this.#loaded(why, source, 'file', set, composed.admins);
      return true;
    } catch (e) {
      return this.#failed(why, source, (e as Error).message);
    }
  }

  // Watch the directories (editors and atomic writers replace files by rename); debounce bursts of events.
  #watch(): void {
    const files = [this.#opts.policyFile, this.#opts.modelFile].filter((f): f is string => !!f);
    for (const dir of new Set(files.map((f) => path.dirname(f)))) {
      try {
        fs.mkdirSync(dir, { recursive: true });
        const w = fs.watch(dir, { persistent: false }, (_event, name) => {
          if (name !== null && !files.some((f) => path.basename(f) === name.toString())) return;
          if (this.#timer) clearTimeout(this.#timer);
          this.#timer = setTimeout(() => void this.reload('file change'), 100);
          this.#timer.unref();
        });
        w.on('error', (e) => this.#opts.log(`policy watch on ${dir} failed: ${e.message}; SIGHUP still reloads`));
        this.#watchers.push(w);
      } catch (e) {
        this.#opts.log(`cannot watch ${dir}: ${(e as Error).message}; SIGHUP still reloads`);
      }
    }
  }

  close(): void {
    void this.#db?.close();
    for (const w of this.#watchers) w.close();
    this.#watchers = [];
    if (this.#timer) clearTimeout(this.#timer);
    process.off('SIGHUP', this.#onHup);
  }
}

export function policyRuntimeFor(config: Readonly<Config>, log: (msg: string) => void, onReload?: (r: PolicyReload) => void): PolicyRuntime {
  const database = config.policyStore === 'postgresql' ? { conn: config.policyDatabase, passwordFile: config.policyDatabasePasswordFile } : undefined;
  return new PolicyRuntime({
    policyFile: config.policyFile,
    modelFile: config.policyModel,
    hostAdmin: config.hostAdmin,
    log,
    onReload,
    database,
    cacheFile: database ? config.policyCache : undefined,
  });
}
