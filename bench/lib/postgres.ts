// SPDX-License-Identifier: Apache-2.0
// A private PostgreSQL 15 cluster (tests and the bench's fleet row): initdb/pg_ctl as the unprivileged `postgres`
// account (initdb refuses root) in a mkdtemp dir it owns, a free loopback port, its unix socket in that dir, SCRAM
// passwords over TCP.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './proc';

export const PG_BIN = '/usr/lib/postgresql/15/bin';
export const PG_OWNER = 'postgres'; // the Debian package's account; localUsers creates it where it is missing

const ids = (u: string): { uid: number; gid: number } => ({
  uid: Number(execFileSync('id', ['-u', u]).toString().trim()),
  gid: Number(execFileSync('id', ['-g', u]).toString().trim()),
});

export interface RunningPostgres {
  dir: string;
  port: number;
  socketDir: string;
  user: string;
  password: string;
  conn: string; // key=value for TCP, no password
  psql(sql: string): string; // as the superuser over the unix socket (trust for the owner)
  stop(): void;
  start(): void;
  destroy(): void;
}

export async function startPostgres(): Promise<RunningPostgres> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-pg-'));
  const { uid, gid } = ids(PG_OWNER);
  fs.chownSync(dir, uid, gid);
  const data = path.join(dir, 'data');
  const as = (cmd: string, args: string[], input?: string): string =>
    execFileSync('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', cmd, ...args], {
      cwd: dir,
      env: { PATH: process.env.PATH, HOME: dir, LC_ALL: 'C' },
      input,
      stdio: ['pipe', 'pipe', 'pipe'],
    }).toString();
  const password = crypto.randomBytes(18).toString('base64url');
  const pwfile = path.join(dir, 'pw');
  fs.writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  fs.chownSync(pwfile, uid, gid);
  as(`${PG_BIN}/initdb`, ['-D', data, '-U', 'virtgate', `--pwfile=${pwfile}`, '--auth-host=scram-sha-256', '--auth-local=trust', '-E', 'UTF8']);
  fs.rmSync(pwfile);
  const port = await freePort();
  fs.appendFileSync(
    path.join(data, 'postgresql.conf'),
    `listen_addresses = '127.0.0.1'\nport = ${port}\nunix_socket_directories = '${dir}'\nfsync = off\nlog_min_messages = warning\n`,
  );
  const log = path.join(dir, 'pg.log');
  const start = (): void => void as(`${PG_BIN}/pg_ctl`, ['-D', data, '-l', log, '-w', '-t', '60', 'start']);
  const stop = (): void => void as(`${PG_BIN}/pg_ctl`, ['-D', data, '-m', 'fast', '-w', 'stop']);
  start();
  return {
    dir,
    port,
    socketDir: dir,
    user: 'virtgate',
    password,
    conn: `host=127.0.0.1 port=${port} dbname=postgres user=virtgate`,
    psql: (sql) => as('/usr/bin/psql', ['-h', dir, '-p', String(port), '-U', 'virtgate', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-qAt', '-c', sql]),
    stop,
    start,
    destroy: () => {
      try {
        stop();
      } catch {
        // already stopped
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
