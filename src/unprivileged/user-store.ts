// SPDX-License-Identifier: Apache-2.0
// usersStore = 'postgresql': the SASL users table mirrored into the front end's local users file (HOME/cache/users.json,
// 0600, atomic), which AuthService reads as it reads users.json. The file is the cache: with the database down the
// users last seen stay; a row that is not a user record keeps the previous file whole.
import path from 'node:path';
import type { Config } from '../common/config';
import { writeFileAtomic } from '../accounts/user-db';
import { USERS_CHANNEL, userRowsToFileText } from '../accounts/user-pg';
import { PgPolicySource } from './policy-store';

export const usersCacheFile = (config: Readonly<Config>): string => path.join(config.home, 'cache', 'users.json');

export class UserSync {
  readonly #src: PgPolicySource;
  #running: Promise<void> = Promise.resolve();
  readonly ready: Promise<void>; // the first sync is over (loaded, or the cache kept): the daemon listens only after it

  constructor(config: Readonly<Config>, reload: () => void, log: (m: string) => void) {
    const file = usersCacheFile(config);
    const target = { conn: config.policyDatabase, passwordFile: config.policyDatabasePasswordFile };
    const sync = async (why: string): Promise<void> => {
      try {
        const rows = await this.#src.userRows();
        writeFileAtomic(file, userRowsToFileText(rows));
        reload();
        log(`SASL users loaded (${why}) from ${this.#src.where}: ${rows.length} users`);
      } catch (e) {
        log(`SASL users not reloaded (${why}), keeping the users in force (${file}): ${(e as Error).message}`);
      }
    };
    this.#src = new PgPolicySource({ target, log, channel: USERS_CHANNEL, what: 'users database', onChange: (why) => void this.sync(sync, why) });
    this.ready = this.sync(sync, 'start');
  }

  // Serialised, as policy reloads are.
  sync(fn: (why: string) => Promise<void>, why: string): Promise<void> {
    this.#running = this.#running.then(() => fn(why));
    return this.#running;
  }

  close(): Promise<void> {
    return this.#src.close();
  }
}
