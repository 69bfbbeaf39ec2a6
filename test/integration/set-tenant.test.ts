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
    const script = `
      const { VirtgateClient } = require(${JSON.stringify(path.join(ROOT, 'build', 'src', 'client'))});
      (async () => {
        const c = await VirtgateClient.connect(${JSON.stringify(uri())});
        const dom = await c.lookupByName('mv-web');
        await c.getInfo(dom);
        process.stdout.write('ready\\n');
        process.stdin.once('data', async () => {
          try { await c.getInfo(dom); process.stdout.write('after: ok\\n'); } catch (e) { process.stdout.write('after: ' + e.message + '\\n'); }
          await c.close();
          process.exit(0);
        });
      })().catch((e) => { process.stdout.write('failed: ' + e.message + '\\n'); process.exit(1); });`;
    const argv = [...asUser('alice', home), process.execPath, '-e', script];
    const held: ChildProcess = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    held.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    held.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    for (let i = 0; i < 400 && !/ready|failed/.test(out); i++) await new Promise((r) => setTimeout(r, 25));
    expect(out).toBe('ready\n');

    const r = await vgCli('root', 'vm', 'set-tenant', 'mv-web', 'globex');
    expect(r).toMatchObject({ rc: 0, out: "Domain 'mv-web' moved to tenant 'globex'\n" });

    held.stdin!.write('go\n');
    await new Promise((resolve) => held.once('exit', resolve));
    expect(out).toMatch(/after: Domain not found/);
    expect(await names('alice')).toEqual(['mv-db']);
    expect(await names('carol')).toEqual(['gx-app', 'mv-web']);
    expect((await virsh('carol', 'dominfo', 'mv-web')).rc).toBe(0);
    expect((await virsh('alice', 'dominfo', 'mv-web')).err).toMatch(/failed to get domain 'mv-web'/);
    expect((await virsh('root', 'dumpxml', 'mv-web')).out).toContain(`<virtgate:tenant xmlns:virtgate='${NS}'>globex</virtgate:tenant>`);
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
