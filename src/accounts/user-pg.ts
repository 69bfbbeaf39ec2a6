// SPDX-License-Identifier: Apache-2.0
// SASL users in PostgreSQL (usersStore = 'postgresql'): one row per user holding what users.json holds (scrypt and
// SCRAM keys, never a password), a NOTIFY trigger like the policy table's. The daemon turns the rows into its local
// users file (the cache it decides from when the database is down); `virtgate user --database` writes them.
import type { Client } from 'pg';
import { type SaslUser, type StoredUser, checkUserName, storedUser, usersFileText } from './user-db';

export const USERS_TABLE = 'virtgate_users';
export const USERS_CHANNEL = 'virtgate_users';

export const USERS_SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS ${USERS_TABLE} (name text PRIMARY KEY, data jsonb NOT NULL, changed timestamptz NOT NULL DEFAULT now());
CREATE OR REPLACE FUNCTION virtgate_users_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('${USERS_CHANNEL}', TG_OP); RETURN NULL; END $$;
DROP TRIGGER IF EXISTS virtgate_users_notify ON ${USERS_TABLE};
CREATE TRIGGER virtgate_users_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ${USERS_TABLE} FOR EACH STATEMENT EXECUTE FUNCTION virtgate_users_notify();
`;

export interface UserRow {
  name: string;
  data: unknown;
}

export async function readUserRows(c: Client): Promise<UserRow[]> {
  return (await c.query<UserRow>(`SELECT name, data FROM ${USERS_TABLE} ORDER BY name`)).rows;
}

const B64 = /^[A-Za-z0-9+/]{1,200}={0,2}$/;

// Rows -> the users file's text. A row with a bad name or a malformed record throws (naming it): the caller keeps the
// users it has rather than writing half a database into the file.
export function userRowsToFileText(rows: readonly UserRow[]): string {
  const users: Record<string, StoredUser> = {};
  for (const r of rows) {
    checkUserName(r.name);
    const d = r.data as StoredUser;
    const ok =
      typeof d === 'object' &&
      d !== null &&
      [d.scrypt?.salt, d.scrypt?.hash, d.scram?.salt, d.scram?.storedKey, d.scram?.serverKey].every((x) => typeof x === 'string' && B64.test(x)) &&
      [d.scrypt.N, d.scrypt.r, d.scrypt.p, d.scram.iterations].every((n) => Number.isInteger(n) && n > 0 && n <= 1 << 24);
    if (!ok) throw new Error(`${USERS_TABLE} row '${r.name}': not a stored SASL user record`);
    users[r.name] = { scrypt: { ...d.scrypt }, scram: { ...d.scram } };
  }
  return usersFileText(users);
}

export async function upsertUser(c: Client, u: SaslUser): Promise<void> {
  await c.query(`INSERT INTO ${USERS_TABLE} (name, data) VALUES ($1, $2::jsonb) ON CONFLICT (name) DO UPDATE SET data = EXCLUDED.data, changed = now()`, [
    checkUserName(u.name),
    JSON.stringify(storedUser(u)),
  ]);
}

export async function deleteUser(c: Client, name: string): Promise<boolean> {
  return ((await c.query(`DELETE FROM ${USERS_TABLE} WHERE name = $1`, [name])).rowCount ?? 0) > 0;
}
