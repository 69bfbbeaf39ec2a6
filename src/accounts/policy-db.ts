// SPDX-License-Identifier: Apache-2.0
// The policy's rows in PostgreSQL, shared by the daemon (front end) and `virtgate policy db`: connection settings,
// the table (casbin-pg-adapter's layout: casbin(id, ptype, rule jsonb)), the NOTIFY trigger, rows <-> CSV text.
// Rows only become text here; the daemon and the CLI run that text through the same strict parser as a file.
import fs from 'node:fs';
import { Client, type ClientConfig } from 'pg';
import { passwordIn } from '../common/config';

export const POLICY_TABLE = 'casbin';
export const NOTIFY_CHANNEL = 'virtgate_policy';
const CONNECT_TIMEOUT_MS = 5000; // a host that does not answer holds start-up (no listener yet) this long; then the cache decides
const QUERY_TIMEOUT_MS = 15_000; // a reload waits at most this for its rows, then keeps the policy in force
const FIELD_RE = /^[^,\n\r#]{1,192}$/; // a field may not split into two, start a comment or add a line

// Same layout as casbin-pg-adapter's migrations (a Casbin writer using it can manage the rows), plus a trigger
// so that every writer, psql included, wakes every daemon: one NOTIFY per statement, merged per transaction.
export const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS ${POLICY_TABLE} (id serial PRIMARY KEY, ptype text NOT NULL, rule jsonb NOT NULL, CONSTRAINT casbin_uniq_rule UNIQUE (rule));
CREATE INDEX IF NOT EXISTS idx_casbin_ptype ON ${POLICY_TABLE} USING btree (ptype);
CREATE OR REPLACE FUNCTION virtgate_policy_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('${NOTIFY_CHANNEL}', TG_OP); RETURN NULL; END $$;
DROP TRIGGER IF EXISTS virtgate_policy_notify ON ${POLICY_TABLE};
CREATE TRIGGER virtgate_policy_notify AFTER INSERT OR UPDATE OR DELETE ON ${POLICY_TABLE} FOR EACH STATEMENT EXECUTE FUNCTION virtgate_policy_notify();
DROP TRIGGER IF EXISTS virtgate_policy_notify_truncate ON ${POLICY_TABLE};
CREATE TRIGGER virtgate_policy_notify_truncate AFTER TRUNCATE ON ${POLICY_TABLE} FOR EACH STATEMENT EXECUTE FUNCTION virtgate_policy_notify();
`;

export interface DbTarget {
  conn: string; // libpq URL or key=value
  passwordFile?: string; // '' or absent: PGPASSFILE / ~/.pgpass (pg reads it), or no password
}

const KV_KEYS: Record<string, keyof ClientConfig | 'sslmode'> = {
  host: 'host',
  port: 'port',
  dbname: 'database',
  user: 'user',
  sslmode: 'sslmode',
  application_name: 'application_name',
};

// libpq's two spellings -> pg's ClientConfig. A password in the string is refused (it would sit in config and logs).
export function clientConfig(t: DbTarget): ClientConfig {
  if (passwordIn(t.conn)) throw new Error('the connection string holds a password: use a password file (policyDatabasePasswordFile or PGPASSFILE)');
  let cfg: ClientConfig & { sslmode?: string };
  if (/^postgres(ql)?:\/\//.test(t.conn)) cfg = { connectionString: t.conn };
  else {
    cfg = {};
    for (const part of t.conn.trim().split(/\s+/).filter(Boolean)) {
      const m = /^([a-z_]+)=(.*)$/.exec(part);
      if (!m || !(m[1] in KV_KEYS)) throw new Error(`policy database: unsupported setting '${part.split('=')[0]}' (use ${Object.keys(KV_KEYS).join(', ')})`);
      (cfg as Record<string, unknown>)[KV_KEYS[m[1]]] = m[1] === 'port' ? Number(m[2]) : m[2];
    }
    const mode = cfg.sslmode;
    delete cfg.sslmode;
    if (mode === 'require') cfg.ssl = { rejectUnauthorized: false };
    else if (mode === 'verify-full' || mode === 'verify-ca') cfg.ssl = true;
    else if (mode !== undefined && mode !== 'disable' && mode !== 'prefer') throw new Error(`policy database: sslmode '${mode}' not supported`);
  }
  if (t.passwordFile) {
    const st = fs.statSync(t.passwordFile);
    if ((st.mode & 0o077) !== 0) throw new Error(`${t.passwordFile} is readable by group or others; chmod 600 it`);
    cfg.password = fs.readFileSync(t.passwordFile, 'utf8').split('\n')[0];
  }
  cfg.connectionTimeoutMillis = CONNECT_TIMEOUT_MS;
  // A database that stops answering without closing (a partition) must not hold the serialised reloads forever.
  cfg.query_timeout = QUERY_TIMEOUT_MS;
  cfg.keepAlive = true;
  cfg.keepAliveInitialDelayMillis = 10_000;
  return cfg;
}

// Where the database is, for logs: never the password (there is none in conn), at most host/port/db/user.
export function describeTarget(t: DbTarget): string {
  const c = clientConfig({ conn: t.conn });
  if (c.connectionString) {
    try {
      const u = new URL(c.connectionString);
      return `postgresql://${u.username ? `${u.username}@` : ''}${u.host}${u.pathname}`;
    } catch {
      return 'postgresql (unparsable URL)';
    }
  }
  return `postgresql://${c.user ? `${c.user}@` : ''}${c.host ?? 'localhost'}:${c.port ?? 5432}/${c.database ?? ''}`;
}

export async function connect(t: DbTarget): Promise<Client> {
  const c = new Client(clientConfig(t));
  try {
    await c.connect();
  } catch (e) {
    await c.end().catch(() => undefined);
    throw e;
  }
  return c;
}

export interface PolicyRow {
  id: number;
  ptype: string;
  rule: unknown;
}

// Rows (in id order) -> policy text, one line per row; lines[i] is rows[i]'s. A row that could not be a line of a
// policy file (not p/g/builtin, not an array of plain strings) throws, naming its id: the whole load is then refused.
export function rowsToText(rows: readonly PolicyRow[]): { text: string; ids: number[] } {
  const lines = rows.map((r) => {
    const where = `${POLICY_TABLE} row id=${r.id}`;
    if (r.ptype !== 'p' && r.ptype !== 'g' && r.ptype !== 'builtin')
      throw new Error(`${where}: ptype '${String(r.ptype).slice(0, 32)}' (expected p, g or builtin)`);
    if (!Array.isArray(r.rule) || r.rule.length === 0 || !r.rule.every((f) => typeof f === 'string' && FIELD_RE.test(f.trim()))) {
      throw new Error(`${where}: rule must be a JSON array of non-empty strings without ',', '#' or line breaks, got ${JSON.stringify(r.rule).slice(0, 120)}`);
    }
    return [r.ptype, ...(r.rule as string[]).map((f) => f.trim())].join(', ');
  });
  return { text: lines.join('\n') + (lines.length ? '\n' : ''), ids: rows.map((r) => r.id) };
}

export async function readRows(c: Client): Promise<PolicyRow[]> {
  const { rows } = await c.query<PolicyRow>(`SELECT id, ptype, rule FROM ${POLICY_TABLE} ORDER BY id`);
  return rows;
}

// Policy text (a policy.csv) -> rows: each non-comment line split on commas; the caller has parsed it first.
export function textToRows(text: string): { ptype: string; rule: string[] }[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const [ptype, ...rule] = l.split(',').map((f) => f.trim());
      return { ptype, rule };
    });
}

// Replaces every row in one transaction: the daemons see one NOTIFY and the whole new policy, never half of it.
export async function replaceRows(c: Client, rows: readonly { ptype: string; rule: string[] }[]): Promise<void> {
  await c.query('BEGIN');
  try {
    await c.query(`DELETE FROM ${POLICY_TABLE}`);
    for (const r of rows) await c.query(`INSERT INTO ${POLICY_TABLE} (ptype, rule) VALUES ($1, $2::jsonb)`, [r.ptype, JSON.stringify(r.rule)]);
    await c.query('COMMIT');
  } catch (e) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}
