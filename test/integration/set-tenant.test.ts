// SPDX-License-Identifier: Apache-2.0
// `virtgate vm set-tenant` (DOMAIN_SET_METADATA on virtgate's tenant element) through real connections: a host admin
// moves a VM from acme to globex; alice (acme owner) loses it at once, even through a handle she already holds; carol
// (globex viewer) now sees it; non-admins are refused (virsh metadata and the CLI); the move survives a restart.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EXAMPLE_POLICY } from '../../src/policy/model';
import { ROOT, type RunningDaemon, startDaemon } from '../helpers/daemon';
import { type Result, asUser, exec, ids, localUsers } from '../helpers/users';
import { describeIf, virshTool } from '../helpers/skip';

const USERS = ['alice', 'bob', 'carol'];
const CLI = path.join(ROOT, 'bin', 'virtgate.js');
const NS = 'https://virtgate.dev/xmlns/tenant/1';

const NEEDS = [...localUsers(USERS, 'runs virsh as other local users'), virshTool()];

describeIf(NEEDS, 'virtgate vm set-tenant: host admins move VMs between tenants', () => {
  let vg: RunningDaemon;
  let home: string;
  const uri = (): string => `test+unix:///default?socket=${vg.sock}`;

  const as = (user: string, cmd: string[]): Promise<Result> => exec([...asUser(user, home), ...cmd]);
  const virsh = (user: string, ...args: string[]): Promise<Result> => as(user, ['virsh', '-c', uri(), ...args]);
  const vgCli = (user: string, ...args: string[]): Promise<Result> => as(user, [process.execPath, CLI, ...args, '-c', uri()]);
  const names = async (user: string): Promise<string[]> => {
    const r = await virsh(user, 'list', '--all', '--name');
    expect(r.err).toBe('');
    return r.out.split('\n').filter(Boolean).sort();
  };

  // A connection of USER's own (a process running as USER) holding a handle on VM: one GetInfo at once, then one more
  // each time it is asked; `last` asks a last time and ends it. Output: 'ready', then 'after: ok' or 'after: <error>'.
  const holdHandle = async (user: string, vm: string): Promise<{ again(): Promise<string>; last(): Promise<string> }> => {
    const script = `
      const { VirtgateClient } = require(${JSON.stringify(path.join(ROOT, 'build', 'src', 'client'))});
      (async () => {
        const c = await VirtgateClient.connect(${JSON.stringify(uri())});
        const dom = await c.lookupByName(${JSON.stringify(vm)});
        await c.getInfo(dom);
        process.stdout.write('ready\\n');
        require('readline').createInterface({ input: process.stdin }).on('line', async (line) => {
          try { await c.getInfo(dom); process.stdout.write('after: ok\\n'); } catch (e) { process.stdout.write('after: ' + e.message + '\\n'); }
          if (line === 'last') { await c.close(); process.exit(0); }
        });
      })().catch((e) => { process.stdout.write('failed: ' + e.message + '\\n'); process.exit(1); });`;
    const argv = [...asUser(user, home), process.execPath, '-e', script];
    const proc: ChildProcess = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    proc.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    for (let i = 0; i < 400 && !/ready|failed/.test(out); i++) await new Promise((r) => setTimeout(r, 25));
    expect(out).toBe('ready\n');
    const ask = async (line: string): Promise<string> => {
      const from = out.length;
      proc.stdin!.write(`${line}\n`);
      for (let i = 0; i < 400 && !/after: .*\n/.test(out.slice(from)); i++) await new Promise((r) => setTimeout(r, 25));
      return out.slice(from);
    };
    return {
      again: () => ask('again'),
      last: async () => {
        const said = await ask('last');
        await new Promise((resolve) => (proc.exitCode !== null ? resolve(null) : proc.once('exit', resolve)));
        return said;
      },
    };
  };

  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-set-tenant-'));
    fs.chmodSync(home, 0o755);
    fs.mkdirSync(path.join(home, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(home, 'etc', 'policy.csv'), EXAMPLE_POLICY);
    fs.writeFileSync(path.join(home, 'etc', 'virtgate.conf'), 'unixSocketMode = 0o666\n');
    for (const u of USERS) {
      fs.mkdirSync(path.join(home, 'u', u), { recursive: true });
      fs.chownSync(path.join(home, 'u', u), ids(u).uid, ids(u).gid);
    }
    vg = await startDaemon({ home });
    for (const [tenant, vm] of [
      ['acme', 'mv-web'],
      ['acme', 'mv-db'],
      ['globex', 'gx-app'],
    ]) {
      const f = path.join(home, `${vm}.xml`);
      fs.writeFileSync(f, `<domain type='test'><name>${vm}</name><memory unit='MiB'>128</memory><os><type>hvm</type></os></domain>\n`, { mode: 0o644 });
      expect((await as('root', ['virsh', '-c', `${uri()}&tenant=${tenant}`, 'define', f])).err).toBe('');
    }
  });
  afterAll(async () => vg?.stop());

  test('non-admins cannot reassign a VM, whatever their role in its tenant', async () => {
    const set = ['metadata', 'mv-web', '--uri', NS, '--key', 'virtgate', '--set', '<tenant>globex</tenant>'];
    for (const user of ['alice', 'bob']) {
      const r = await virsh(user, ...set);
      expect(r.rc).not.toBe(0);
      expect(r.err).toMatch(/access denied: 'virtgate' denied access/);
    }
    expect((await virsh('carol', ...set)).err).toMatch(/failed to get domain 'mv-web'/); // not even visible to her
    const cli = await vgCli('alice', 'vm', 'set-tenant', 'mv-web', 'globex');
    expect(cli.rc).toBe(1);
    expect(cli.err).toMatch(/access denied/);
    expect(await names('alice')).toEqual(['mv-db', 'mv-web']);
    expect(await names('carol')).toEqual(['gx-app']);
  });

  test('descriptions and other namespaces are plain metadata (they move no VM); a malformed tenant is refused', async () => {
    expect((await virsh('root', 'desc', 'mv-web', '--new-desc', 'hello')).rc).toBe(0);
    expect((await virsh('root', 'metadata', 'mv-web', '--uri', 'https://example.com/x', '--key', 'x', '--set', '<x/>')).rc).toBe(0);
    expect(await names('alice')).toEqual(['mv-db', 'mv-web']);
    expect((await virsh('root', 'metadata', 'mv-web', '--uri', NS, '--key', 'virtgate', '--set', '<tenant>-bad</tenant>')).err).toMatch(
      /invalid argument: tenant names/,
    );
    expect(await names('alice')).toEqual(['mv-db', 'mv-web']);
  });

  test('a host admin moves mv-web from acme to globex: alice loses it at once (held handle included), carol sees it', async () => {
    // alice holds a handle on mv-web (the front end has the VM's record cached) across the move.
    const held = await holdHandle('alice', 'mv-web');

    const r = await vgCli('root', 'vm', 'set-tenant', 'mv-web', 'globex');
    expect(r).toMatchObject({ rc: 0, out: "Domain 'mv-web' moved to tenant 'globex'\n" });

    expect(await held.last()).toMatch(/after: Domain not found/);
    expect(await names('alice')).toEqual(['mv-db']);
    expect(await names('carol')).toEqual(['gx-app', 'mv-web']);
    expect((await virsh('carol', 'dominfo', 'mv-web')).rc).toBe(0);
    expect((await virsh('alice', 'dominfo', 'mv-web')).err).toMatch(/failed to get domain 'mv-web'/);
    expect((await virsh('root', 'dumpxml', 'mv-web')).out).toContain(`<virtgate:tenant xmlns:virtgate='${NS}'>globex</virtgate:tenant>`);
  });

  test("a policy reload that takes alice's role away refuses her held handle's next GetInfo (no decision outlives its policy)", async () => {
    const file = path.join(home, 'etc', 'policy.csv');
    const held = await holdHandle('alice', 'mv-db');
    expect(await held.again()).toBe('after: ok\n'); // answered on the fast path, its decision remembered for this connection
    const loads = (): number => (vg.output().match(/policy loaded/g) ?? []).length;
    const n = loads();
    fs.writeFileSync(file, EXAMPLE_POLICY.replace('g, alice, owner, acme\n', ''));
    for (let i = 0; i < 200 && loads() <= n; i++) await new Promise((r) => setTimeout(r, 50));
    expect(loads()).toBeGreaterThan(n);
    try {
      expect(await held.last()).toMatch(/after: Domain not found/);
    } finally {
      fs.writeFileSync(file, EXAMPLE_POLICY);
      for (let i = 0; i < 200 && loads() <= n + 1; i++) await new Promise((r) => setTimeout(r, 50));
    }
  });

  test('the move survives a restart; virsh metadata works for a host admin too', async () => {
    await vg.stop();
    vg = await startDaemon({ home });
    expect(await names('alice')).toEqual(['mv-db']);
    expect(await names('carol')).toEqual(['gx-app', 'mv-web']);
    expect((await virsh('root', 'dumpxml', 'mv-web')).out).toContain('>globex</virtgate:tenant>');
    // Back to acme through virsh's own metadata command.
    expect(
      (await virsh('root', 'metadata', 'mv-web', '--uri', NS, '--key', 'virtgate', '--set', `<virtgate:tenant xmlns:virtgate='${NS}'>acme</virtgate:tenant>`))
        .err,
    ).toBe('');
    expect(await names('alice')).toEqual(['mv-db', 'mv-web']);
    expect(await names('carol')).toEqual(['gx-app']);
  });
});
