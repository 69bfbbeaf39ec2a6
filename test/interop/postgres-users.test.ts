// SPDX-License-Identifier: Apache-2.0
// Issue 15: SASL users in PostgreSQL. A user added to the database with `virtgate user add --database` logs in (SCRAM,
// python3-libvirt) on both daemons; a password change and a removal reach both; with the database stopped the users
// last seen still log in (the daemon's cache); their keys, never the password, are what the database holds.
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT, type RunningDaemon, startDaemon } from '../helpers/daemon';
import { type RunningPostgres, postgresNeeds, startPostgres } from '../helpers/postgres';
import { describeIf, pyLibvirt, saslScram } from '../helpers/skip';

const run = promisify(execFile);
const NEEDS = [...postgresNeeds(), pyLibvirt(), saslScram()];

describeIf(NEEDS, 'SASL users in PostgreSQL shared by two daemons', () => {
  let pg: RunningPostgres;
  const homes: string[] = [];
  const vgs: RunningDaemon[] = [];
  let pwFile = '';

  const cli = (input: string, ...args: string[]): { rc: number | null; out: string; err: string } => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'virtgate.js'), ...args, '--database', pg.conn, '--password-file', pwFile], { input });
    return { rc: r.status, out: r.stdout.toString(), err: r.stderr.toString() };
  };
  const login = async (i: number, user: string, pw: string): Promise<{ ok: boolean; names?: string[]; message?: string }> =>
    JSON.parse(
      (
        await run('/usr/bin/python3', [path.join(__dirname, 'py', 'sasl_login.py'), `test+unix:///default?socket=${vgs[i].sock}&tenant=acme`, user, pw], {
          timeout: 30000,
        })
      ).stdout,
    );
  const until = async (i: number, user: string, pw: string, want: boolean): Promise<void> => {
    const t0 = Date.now();
    while ((await login(i, user, pw)).ok !== want) {
      if (Date.now() - t0 > 15_000) throw new Error(`daemon ${i}: login of ${user} still ${!want}:\n${vgs[i].output().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  beforeAll(async () => {
    pg = await startPostgres();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-pgusers-'));
    homes.push(dir);
    pwFile = path.join(dir, 'db-password');
    fs.writeFileSync(pwFile, `${pg.password}\n`, { mode: 0o600 });
    expect(cli('', 'policy', 'db', 'init').rc).toBe(0);
    const csv = path.join(dir, 'fleet.csv');
    fs.writeFileSync(csv, 'g, sasl:erin, viewer, acme\n');
    expect(cli('', 'policy', 'db', 'import', csv).rc).toBe(0);
    for (let i = 0; i < 2; i++) {
      const home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-pgusers-'));
      homes.push(home);
      fs.mkdirSync(path.join(home, 'etc'));
      fs.copyFileSync(pwFile, path.join(home, 'etc', 'db-password'));
      fs.writeFileSync(
        path.join(home, 'etc', 'virtgate.conf'),
        [
          'authUnixRw = "sasl"',
          'authDelayBaseMs = 10',
          'authDelayMaxMs = 100',
          'policyStore = "postgresql"',
          'usersStore = "postgresql"',
          `policyDatabase = "${pg.conn}"`,
          `policyDatabasePasswordFile = "${path.join(home, 'etc', 'db-password')}"`,
          '',
        ].join('\n'),
      );
      vgs.push(await startDaemon({ home }));
      // The first sync is over before any listener opens: no login is refused for the database's slowness.
      const out = vgs[i].output();
      expect(out.search(/SASL users loaded \(start\) from postgresql:/)).toBeGreaterThan(-1);
      expect(out.search(/listening on unix/)).toBeGreaterThan(out.search(/SASL users loaded \(start\)/));
    }
  }, 120_000);

  afterAll(async () => {
    for (const vg of vgs) await vg.stop().catch(() => undefined);
    pg?.destroy();
    for (const h of homes) fs.rmSync(h, { recursive: true, force: true });
  });

  test('a user added to the database logs in on both daemons; passwd and del reach both', async () => {
    expect((await login(1, 'erin', 'erin-password-1')).ok).toBe(false);
    expect(cli('erin-password-1\n', 'user', 'add', 'erin', '--password-stdin')).toMatchObject({ rc: 0 });
    expect(pg.psql('SELECT data::text FROM virtgate_users')).not.toContain('erin-password-1');
    await until(1, 'erin', 'erin-password-1', true);
    await until(0, 'erin', 'erin-password-1', true);
    expect(await login(1, 'erin', 'erin-password-1')).toEqual({ ok: true, names: [] });
    expect(cli('erin-password-2\n', 'user', 'passwd', 'erin', '--password-stdin')).toMatchObject({ rc: 0 });
    await until(1, 'erin', 'erin-password-1', false);
    await until(1, 'erin', 'erin-password-2', true);
    await until(0, 'erin', 'erin-password-2', true);
    expect(cli('', 'user', 'list').out).toBe('erin\n');
  }, 120_000);

  test('with the database stopped the users last seen still log in; a row that is no user record changes nothing', async () => {
    pg.psql(`INSERT INTO virtgate_users (name, data) VALUES ('mallory', '{"scram": "nope"}')`);
    await vgs[0].waitFor(/SASL users not reloaded \(notify\), keeping the users in force .*row 'mallory'/, 15_000);
    expect((await login(0, 'erin', 'erin-password-2')).ok).toBe(true);
    pg.psql(`DELETE FROM virtgate_users WHERE name = 'mallory'`);
    pg.stop();
    await vgs[1].waitFor(/users database .*: connection lost/, 15_000);
    expect((await login(1, 'erin', 'erin-password-2')).ok).toBe(true);
    pg.start();
    await vgs[1].waitFor(/SASL users loaded \(reconnect\)/, 20_000);
    expect(cli('', 'user', 'del', 'erin')).toMatchObject({ rc: 0 });
    await until(0, 'erin', 'erin-password-2', false);
    await until(1, 'erin', 'erin-password-2', false);
    for (const vg of vgs) for (const s of [pg.password, 'erin-password-1', 'erin-password-2']) expect(vg.output()).not.toContain(s);
  }, 120_000);
});
