// SPDX-License-Identifier: Apache-2.0
// `virtgate user add|passwd|del|list|locked|unlock`: manages the SASL password file (HOME/etc/users.json, mode 0600) and
// the lockouts next to it (HOME/etc/lockouts.json), which the running daemon re-reads before each login decision.
import fs from 'node:fs';
import path from 'node:path';
import { LockoutStore, lockoutsFileFor } from '../accounts/lockouts';
import { UserDb, checkUserName, deriveCredentials } from '../accounts/user-db';
import { connect, describeTarget } from '../accounts/policy-db';
import { deleteUser, readUserRows, upsertUser } from '../accounts/user-pg';
import type { AdminIo } from './admin';
import { parseAdminArgs } from './admin-args';

const USAGE = `usage: virtgate user add|passwd NAME [--home DIR | --file FILE] [--password-stdin]
       virtgate user del NAME [--home DIR | --file FILE]
       virtgate user list|locked [--home DIR | --file FILE]
       virtgate user unlock NAME [--home DIR | --file FILE]
  The password is read from standard input (one line) with --password-stdin, else prompted for twice.
  list marks locked users; locked lists only them (since, until, failures, source); unlock ends a lockout at once,
  also in the running daemon.
  With --database CONN [--password-file FILE] (the fleet's PostgreSQL, as policyDatabase; usersStore = "postgresql"),
  add, passwd, del and list act on its users table: every daemon of the fleet sees the change at once.`;

export async function userMain(argv: string[], io: AdminIo): Promise<number> {
  const parsed = parseAdminArgs(
    argv,
    {
      home: { type: 'string' },
      file: { type: 'string' },
      'password-stdin': { type: 'boolean' },
      database: { type: 'string' },
      'password-file': { type: 'string' },
    } as const,
    USAGE,
    io,
  );
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  const [verb, name] = positionals;
  const needsName = verb === 'add' || verb === 'passwd' || verb === 'del' || verb === 'unlock';
  if (
    !verb ||
    !['add', 'passwd', 'del', 'list', 'locked', 'unlock'].includes(verb) ||
    (needsName && positionals.length !== 2) ||
    (!needsName && positionals.length !== 1)
  ) {
    io.stderr(`${USAGE}\n`);
    return 2;
  }
  if (values.database !== undefined) return databaseUser(verb, name, values, io);
  const file = values.file ?? path.join(path.resolve(values.home ?? '.virtgate'), 'etc', 'users.json');
  try {
    const db = new UserDb(file).load();
    const lockouts = new LockoutStore(lockoutsFileFor(file)).load();
    const now = Date.now();
    if (verb === 'list') {
      io.stdout(
        db
          .names()
          .map((n) => (lockouts.get(n, now) ? `${n}\tlocked ${until(lockouts.get(n, now)!.until)}\n` : `${n}\n`))
          .join(''),
      );
      return 0;
    }
    if (verb === 'locked') {
      for (const [n, l] of lockouts.list(now)) {
        io.stdout(`${n}\tsince ${new Date(l.at).toISOString()}\t${until(l.until)}\t${l.failures} failures\tlast from ${l.source || '?'}\n`);
      }
      return 0;
    }
    checkUserName(name);
    if (verb === 'unlock') {
      if (!lockouts.unlock(name, now)) throw new Error(`user '${name}' is not locked`);
      io.stdout(`user '${name}' unlocked\n`);
      return 0;
    }
    if (verb === 'del') {
      if (!db.delete(name)) throw new Error(`no user '${name}'`);
      db.save();
      io.stdout(`user '${name}' deleted\n`);
      return 0;
    }
    if (verb === 'add' && db.get(name)) throw new Error(`user '${name}' exists; use passwd`);
    if (verb === 'passwd' && !db.get(name)) throw new Error(`no user '${name}'`);
    const password = values['password-stdin'] ? readStdinLine() : await promptTwice(io);
    db.set(deriveCredentials(name, password));
    db.save();
    io.stdout(`user '${name}' ${verb === 'add' ? 'added' : 'password changed'}\n`);
    return 0;
  } catch (e) {
    io.stderr(`error: ${(e as Error).message}\n`);
    return 1;
  }
}

// The same verbs on the fleet's users table; lockouts stay per host (each daemon's own file).
async function databaseUser(
  verb: string,
  name: string | undefined,
  values: { database?: string; 'password-file'?: string; 'password-stdin'?: boolean },
  io: AdminIo,
): Promise<number> {
  const t = { conn: values.database!, passwordFile: values['password-file'] };
  try {
    if (verb === 'locked' || verb === 'unlock') throw new Error(`${verb}: lockouts are per host; run it with --home on that host`);
    if (name !== undefined) checkUserName(name);
    const password = verb === 'add' || verb === 'passwd' ? (values['password-stdin'] ? readStdinLine() : await promptTwice(io)) : '';
    const c = await connect(t);
    try {
      const names = (await readUserRows(c)).map((r) => r.name);
      if (verb === 'list') io.stdout(names.map((n) => `${n}\n`).join(''));
      else if (verb === 'del') {
        if (!(await deleteUser(c, name!))) throw new Error(`no user '${name}'`);
        io.stdout(`user '${name}' deleted from ${describeTarget(t)}\n`);
      } else {
        if (verb === 'add' && names.includes(name!)) throw new Error(`user '${name}' exists; use passwd`);
        if (verb === 'passwd' && !names.includes(name!)) throw new Error(`no user '${name}'`);
        await upsertUser(c, deriveCredentials(name!, password));
        io.stdout(`user '${name}' ${verb === 'add' ? 'added' : 'password changed'} in ${describeTarget(t)}\n`);
      }
    } finally {
      await c.end();
    }
    return 0;
  } catch (e) {
    io.stderr(`error: ${(e as Error).message}\n`);
    return 1;
  }
}

const until = (t: number): string => (t === 0 ? 'until unlocked' : `until ${new Date(t).toISOString()}`);

function readStdinLine(): string {
  return fs.readFileSync(0, 'utf8').split('\n')[0];
}

async function promptTwice(io: AdminIo): Promise<string> {
  if (!process.stdin.isTTY) throw new Error('no terminal to prompt on: use --password-stdin');
  const a = await promptHidden(io, 'Password: ');
  const b = await promptHidden(io, 'Again: ');
  if (a !== b) throw new Error('passwords do not match');
  return a;
}

function promptHidden(io: AdminIo, label: string): Promise<string> {
  return new Promise((resolve) => {
    io.stderr(label);
    const stdin = process.stdin;
    stdin.setRawMode(true);
    let buf = '';
    const onData = (d: Buffer): void => {
      for (const ch of d.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          stdin.setRawMode(false);
          stdin.pause();
          stdin.off('data', onData);
          io.stderr('\n');
          resolve(buf);
          return;
        }
        if (ch === '\u0003') process.exit(130);
        buf = ch === '\u007f' ? buf.slice(0, -1) : buf + ch;
      }
    };
    stdin.resume();
    stdin.on('data', onData);
  });
}
