// SPDX-License-Identifier: Apache-2.0
// Issue 15: two daemons share a policy in a real PostgreSQL 15 cluster. Grants and revokes written with psql reach both
// through LISTEN/NOTIFY; the database stopped keeps the last policy in force (a daemon restarted meanwhile decides from
// its cache); a database restart resumes notifications; a bad row keeps the last good policy; the password stays secret.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, type RunningDaemon, startDaemon } from '../helpers/daemon';
import { type RunningPostgres, postgresNeeds, startPostgres } from '../helpers/postgres';
import { scrapeMetrics } from '../helpers/metrics';
import { describeIf, virshTool } from '../helpers/skip';
import { asUser, exec, localUsers, makeUserHomes } from '../helpers/users';
import { SCHEMA_SQL } from '../../src/accounts/policy-db';

const NEEDS = [...postgresNeeds(), ...localUsers(['alice', 'bob'], 'runs virsh as local users'), virshTool()];
const BOUND_MS = 1000; // the promise: a revoke is enforced on every host within a second

describeIf(NEEDS, 'policy in PostgreSQL shared by two daemons', () => {
  let pg: RunningPostgres;
  const homes: string[] = [];
  const vgs: (RunningDaemon | null)[] = [null, null];

  const prepareHome = (): string => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-pgpol-'));
    fs.chmodSync(home, 0o755);
    fs.mkdirSync(path.join(home, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(home, 'etc', 'db-password'), `${pg.password}\n`, { mode: 0o600 });
    fs.writeFileSync(
      path.join(home, 'etc', 'virtgate.conf'),
      [
        'unixSocketMode = 0o666',
        'policyStore = "postgresql"',
        `policyDatabase = "${pg.conn}"`,
        `policyDatabasePasswordFile = "${path.join(home, 'etc', 'db-password')}"`,
        '',
      ].join('\n'),
    );
    makeUserHomes(home, ['alice', 'bob']);
    return home;
  };

  const pwFile = (): string => path.join(homes[0], 'etc', 'db-password');

  // alice's access to tenant acme on daemon i: the connection is refused unless some row makes her a member.
  const canList = async (i: number, user = 'alice'): Promise<boolean> => {
    const vg = vgs[i]!;
    const r = await exec([...asUser(user, vg.home), 'virsh', '-c', `test+unix:///default?socket=${vg.sock}&tenant=acme`, 'list', '--all', '--name']);
    return r.rc === 0;
  };
  // Polls until want holds on daemon i; returns when the first attempt that saw it started (ms after the change), so
  // a slow virsh on a loaded machine does not count against the daemon. Fails when no attempt begun within the bound saw it.
  const until = async (i: number, want: boolean, boundMs: number, user = 'alice'): Promise<number> => {
    const t0 = Date.now();
    for (;;) {
      const started = Date.now() - t0;
      if ((await canList(i, user)) === want) return started;
      if (Date.now() - t0 > boundMs) throw new Error(`daemon ${i}: ${user} access still ${!want} after ${boundMs} ms:\n${vgs[i]!.output().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  beforeAll(async () => {
    pg = await startPostgres();
    pg.psql(SCHEMA_SQL);
    pg.psql(`INSERT INTO casbin (ptype, rule) VALUES ('g', '["bob","viewer","acme"]')`);
    for (let i = 0; i < 2; i++) {
      homes.push(prepareHome());
      vgs[i] = await startDaemon({ home: homes[i] });
      // Loaded before any listener opened (policy-first-load.test.ts has the database that stalls).
      const out = vgs[i]!.output();
      const loaded = out.search(/policy loaded \(start\) from postgresql:\/\/virtgate@127\.0\.0\.1:\d+\/postgres: \d+ rules/);
      expect(loaded).toBeGreaterThan(-1);
      expect(out.search(/listening on unix/)).toBeGreaterThan(loaded);
    }
  }, 120_000);

  afterAll(async () => {
    for (const vg of vgs) await vg?.stop().catch(() => undefined);
    pg?.destroy();
    for (const h of homes) fs.rmSync(h, { recursive: true, force: true });
  });

  test('a grant written on the database is seen by both daemons; a revoke is enforced on both within 1 s', async () => {
    expect(await canList(0)).toBe(false);
    expect(await canList(1)).toBe(false);
    expect(await canList(0, 'bob')).toBe(true);
    pg.psql(`INSERT INTO casbin (ptype, rule) VALUES ('g', '["alice","viewer","acme"]')`);
    await until(0, true, 5000);
    await until(1, true, 5000);
    pg.psql(`DELETE FROM casbin WHERE rule = '["alice","viewer","acme"]'`);
    const ms = await Promise.all([until(0, false, BOUND_MS), until(1, false, BOUND_MS)]);
    process.stdout.write(`revoke: the first check that saw it started ${ms.join(' ms, ')} ms after psql returned (daemon 0, 1)\n`);
  }, 60_000);

  test('a bad row refuses the whole load and keeps the last good policy (the row id is logged)', async () => {
    const from = vgs[0]!.output().length;
    pg.psql(`INSERT INTO casbin (ptype, rule) VALUES ('g', '["alice","viewer","acme"]'), ('p', '["alice","acme","vm:*","domain:*","extra"]')`);
    await vgs[0]!.waitFor(/policy reload failed \(notify\), keeping the previous policy: bad rule in the database .*row id=\d+/, 10_000, from);
    expect(await canList(0)).toBe(false); // the good row in the same change did not slip in
    expect(await canList(0, 'bob')).toBe(true);
    pg.psql(`DELETE FROM casbin WHERE ptype = 'p'`);
    await until(0, true, 5000);
    await until(1, true, 5000);
  }, 60_000);

  test('database stopped: both keep the last policy; a daemon restarted meanwhile starts from its cache', async () => {
    const cache = path.join(homes[1], 'cache', 'policy.csv');
    if (!fs.existsSync(cache)) throw new Error(`no cache ${cache}:\n${vgs[1]!.output()}`);
    expect(fs.statSync(cache).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(cache, 'utf8')).toContain('g, alice, viewer, acme');
    pg.stop();
    await vgs[0]!.waitFor(/policy database .*: connection lost/, 10_000);
    expect(await canList(0)).toBe(true);
    expect(await canList(1)).toBe(true);
    expect(await canList(0, 'bob')).toBe(true);
    await vgs[1]!.stop();
    vgs[1] = await startDaemon({ home: homes[1] });
    await vgs[1]!.waitFor(/policy loaded \(start\) from the cache .*cache\/policy\.csv .*the database is unreachable/, 20_000);
    expect(await canList(1)).toBe(true);
    expect(await canList(1, 'bob')).toBe(true);
    // The operator sees it: the cache is in force and the store is not connected.
    const text = await scrapeMetrics(vgs[1]!.home);
    expect(text).toMatch(/^virtgate_policy_source\{source="cache"\} 1$/m);
    expect(text).toMatch(/^virtgate_policy_store_connected 0$/m);
  }, 120_000);

  test('a database restart resumes notifications on both daemons', async () => {
    pg.start();
    for (const vg of vgs) await vg!.waitFor(/policy loaded \((reconnect|start)\) from postgresql:/, 20_000, 0);
    pg.psql(`DELETE FROM casbin WHERE rule = '["alice","viewer","acme"]'`);
    await until(0, false, 5000);
    await until(1, false, 5000);
  }, 120_000);

  test('virtgate policy db import|export and check|lint --database work against the shared rows', async () => {
    const cli = (...args: string[]): Promise<{ rc: number; out: string; err: string }> =>
      exec([process.execPath, path.join(ROOT, 'bin', 'virtgate.js'), 'policy', ...args, '--database', pg.conn, '--password-file', pwFile()]);
    const csv = path.join(homes[0], 'fleet.csv');
    fs.writeFileSync(csv, 'g, alice, operator, acme\ng, bob, viewer, acme\np, operator, acme, vm:web*, domain:frobnicate\n');
    let r = await cli('db', 'import', csv);
    expect(r).toMatchObject({ rc: 0, out: expect.stringMatching(/3 rules imported/) });
    await until(0, true, 5000);
    await until(1, true, 5000);
    r = await cli('db', 'export');
    expect(r.rc).toBe(0);
    expect(r.out).toContain('g, alice, operator, acme\ng, bob, viewer, acme\np, operator, acme, vm:web*, domain:frobnicate\n');
    r = await cli('check', 'alice', 'acme', 'vm:web1', 'domain:start');
    expect(r).toMatchObject({ rc: 0, out: expect.stringMatching(/^allow: unix:alice in tenant acme/) });
    r = await cli('lint');
    expect(r.rc).toBe(1);
    expect(r.out).toMatch(/postgresql:\/\/virtgate@127\.0\.0\.1:\d+\/postgres: line 3: .*unknown permission 'domain:frobnicate'/);
    // A file that does not parse is refused before anything is written.
    fs.writeFileSync(csv, 'g, alice, operator\n');
    r = await cli('db', 'import', csv);
    expect(r.rc).toBe(1);
    expect(r.err).toMatch(/expected g, USER, ROLE, TENANT \(nothing imported\)/);
    expect(pg.psql('SELECT count(*) FROM casbin').trim()).toBe('3');
    for (const x of [r.out, r.err]) expect(x).not.toContain(pg.password);
  }, 60_000);

  test('the database password appears in no log line and no command line', async () => {
    for (const vg of vgs) expect(vg!.output()).not.toContain(pg.password);
    const pids = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p));
    let seen = 0;
    for (const pid of pids) {
      let cmd = '';
      try {
        cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      if (homes.some((h) => cmd.includes(h))) seen++;
      expect(cmd).not.toContain(pg.password);
    }
    expect(seen).toBeGreaterThanOrEqual(4); // both daemons' supervisor, helper and front end were looked at
    const pgLog = fs.readFileSync(path.join(pg.dir, 'pg.log'), 'utf8');
    expect(pgLog).not.toContain(pg.password);
  }, 30_000);
});
