// SPDX-License-Identifier: Apache-2.0
// The front end's live policy: reads the model and CSV files, builds the Casbin facade, reloads on SIGHUP and on change.
// A reload that fails keeps the policy in force and logs why; before the first load everything is denied (never open).
// The built-in memberships (root, the `admin` certificate, hostAdmin) are added to the file's rows unless it says
// `builtin, off` (composePolicy); with no file they are the whole policy. That happens only while no policy file was
// ever loaded: once one was, its disappearance is a failed reload (an accidental `rm` must not take the site's rules
// away, nor give host admin back to built-in members the site had turned off).
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../common/config';
import type { Authorizer, Decision, PolicyObject, Subject } from '../policy/authorizer';
import { CasbinAuthorizer, PolicySet } from '../policy/engine';
import { MODEL_TEXT, composePolicy } from '../policy/model';

export interface PolicyRuntimeOptions {
  policyFile: string;
  modelFile?: string; // '' or absent = built-in model
  hostAdmin?: string; // one more built-in host admin (config hostAdmin); '' or absent = none
  log: (msg: string) => void;
  watch?: boolean; // fs.watch the files (default true)
  signals?: boolean; // reload on SIGHUP (default true)
  onReload?: (r: PolicyReload) => void; // every load attempt, for the audit trail
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
  readonly #onHup = (): void => void this.reload('SIGHUP');
  readonly ready: Promise<boolean>;

  constructor(opts: PolicyRuntimeOptions) {
    this.#opts = opts;
    this.ready = this.reload('start');
    if (opts.watch !== false) this.#watch();
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

  async #load(why: string): Promise<boolean> {
    const { policyFile, modelFile, log, onReload } = this.#opts;
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
      if (this.#authz) this.#authz.replace(set);
      else this.#authz = new CasbinAuthorizer(set);
      this.#fromFile = site !== null;
      const builtin = composed.admins.length ? `built-in host admins ${composed.admins.join(', ')}` : 'built-in host admins off (builtin, off)';
      log(`policy loaded (${why}) from ${source}: ${set.rules.length} rules; ${builtin}`);
      onReload?.({ why, ok: true, source, rules: set.rules.length });
      return true;
    } catch (e) {
      log(
        `policy ${why === 'start' ? 'load' : 'reload'} failed (${why}), ${this.#authz ? 'keeping the previous policy' : 'denying everything'}: ${(e as Error).message}`,
      );
      onReload?.({ why, ok: false, source, error: (e as Error).message.slice(0, 256) });
      return false;
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
    for (const w of this.#watchers) w.close();
    this.#watchers = [];
    if (this.#timer) clearTimeout(this.#timer);
    process.off('SIGHUP', this.#onHup);
  }
}

export function policyRuntimeFor(config: Readonly<Config>, log: (msg: string) => void, onReload?: (r: PolicyReload) => void): PolicyRuntime {
  return new PolicyRuntime({ policyFile: config.policyFile, modelFile: config.policyModel, hostAdmin: config.hostAdmin, log, onReload });
}
