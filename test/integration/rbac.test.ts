// SPDX-License-Identifier: Apache-2.0
// Issue 5 through real connections: virsh run as local users alice, bob, carol (peer uid = identity) against the example
// policy; lists, lookups and events filtered per tenant; tenant choice; read-only cap; policy reload without reconnecting.
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { EXAMPLE_POLICY } from '../../src/policy/model';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { type Result, asUser, exec, ids, localUsers } from '../helpers/users';
import { describeIf, virshTool } from '../helpers/skip';

const run = promisify(execFile);
const USERS = ['alice', 'bob', 'carol', 'dave'];

const NEEDS = [...localUsers(USERS, 'runs virsh as other local users'), virshTool()];

describeIf(NEEDS, 'RBAC with tenants through real connections (example policy)', () => {
  let vg: RunningDaemon;
  let home: string;

  const uriFor = (tenant?: string, ro = false): string => `test+unix:///default?socket=${ro ? vg.sockRo : vg.sock}${tenant ? `&tenant=${tenant}` : ''}`;

  async function virsh(user: string, tenant: string | undefined, ...args: string[]): Promise<Result> {
    return exec([...asUser(user, home), 'virsh', '-c', uriFor(tenant), ...args]);
  }
  const names = async (user: string, tenant?: string): Promise<string[]> => {
    const r = await virsh(user, tenant, 'list', '--all', '--name');
    expect(r.err).toBe('');
    return r.out.split('\n').filter(Boolean).sort();
  };
  const xml = (name: string): string => {
    const f = path.join(home, `${name}.xml`);
    fs.writeFileSync(f, `<domain type='test'><name>${name}</name><memory unit='MiB'>128</memory><os><type>hvm</type></os></domain>\n`, { mode: 0o644 });
    return f;
  };

  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-rbac-'));
    fs.chmodSync(home, 0o755);
    fs.mkdirSync(path.join(home, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(home, 'etc', 'policy.csv'), EXAMPLE_POLICY);
    fs.writeFileSync(path.join(home, 'etc', 'virtgate.conf'), 'unixSocketMode = 0o666\n');
    for (const u of USERS) {
      fs.mkdirSync(path.join(home, 'u', u), { recursive: true });
      const { uid, gid } = ids(u);
      fs.chownSync(path.join(home, 'u', u), uid, gid);
    }
    vg = await startDaemon({ home });
    // The host admin (root) seeds each tenant's VMs by choosing the tenant in the URI.
    for (const [tenant, vm] of [
      ['acme', 'acme-web'],
      ['acme', 'acme-db'],
      ['globex', 'globex-app'],
    ]) {
      const r = await virsh('root', tenant, 'define', xml(vm));
      expect(r.err).toBe('');
    }
  });
  afterAll(async () => vg?.stop());

  test('virsh list --all: each user sees exactly their tenant; the host admin sees everything', async () => {
    expect(await names('alice')).toEqual(['acme-db', 'acme-web']);
    expect(await names('bob')).toEqual(['acme-db', 'acme-web']);
    expect(await names('carol')).toEqual(['globex-app']);
    expect(await names('root')).toEqual(['acme-db', 'acme-web', 'globex-app', 'test']);
  });

  test('the tenant is recorded in the VM (our metadata namespace) and the client XML cannot set it', async () => {
    const out = (await virsh('root', undefined, 'dumpxml', 'acme-web')).out;
    expect(out).toContain("<virtgate:tenant xmlns:virtgate='https://virtgate.dev/xmlns/tenant/1'>acme</virtgate:tenant>");
    // alice defines a VM whose XML claims globex: it still lands in acme.
    const f = path.join(home, 'sneaky.xml');
    fs.writeFileSync(
      f,
      `<domain type='test'><name>sneaky</name><metadata><vg:tenant xmlns:vg='https://virtgate.dev/xmlns/tenant/1'>globex</vg:tenant></metadata><memory>131072</memory><os><type>hvm</type></os></domain>\n`,
      { mode: 0o644 },
    );
    expect((await virsh('alice', undefined, 'define', f)).rc).toBe(0);
    expect(await names('carol')).toEqual(['globex-app']);
    expect(await names('alice')).toContain('sneaky');
    expect((await virsh('alice', undefined, 'undefine', 'sneaky')).rc).toBe(0);
  });

  // (user, virsh command, VM, expected: ok | denied | nodomain)
  const rows: [string, string, string, 'ok' | 'denied' | 'nodomain'][] = [
    ['alice', 'define', 'alice-new', 'ok'],
    ['alice', 'start', 'alice-new', 'ok'],
    ['alice', 'destroy', 'alice-new', 'ok'],
    ['bob', 'define', 'bob-new', 'denied'],
    ['bob', 'start', 'acme-web', 'ok'],
    ['bob', 'suspend', 'acme-web', 'ok'],
    ['bob', 'resume', 'acme-web', 'ok'],
    ['bob', 'destroy', 'acme-web', 'ok'],
    ['bob', 'undefine', 'alice-new', 'denied'],
    ['bob', 'dumpxml --security-info', 'acme-web', 'denied'],
    ['bob', 'setmem --config', 'acme-web', 'denied'],
    ['carol', 'dominfo', 'globex-app', 'ok'],
    ['carol', 'start', 'globex-app', 'denied'],
    ['carol', 'dominfo', 'acme-web', 'nodomain'],
    ['carol', 'start', 'acme-web', 'nodomain'],
    ['carol', 'define', 'carol-new', 'denied'],
    ['alice', 'dominfo', 'globex-app', 'nodomain'],
    ['alice', 'dominfo', 'test', 'nodomain'],
    ['bob', 'dominfo', 'test', 'nodomain'],
    ['alice', 'undefine', 'alice-new', 'ok'],
  ];
  test.each(rows)('%s: virsh %s %s -> %s', async (user, cmd, vm, want) => {
    const [verb, ...flags] = cmd.split(' ');
    const args = verb === 'define' ? [verb, xml(vm)] : verb === 'setmem' ? [verb, vm, '65536', ...flags] : [verb, ...flags, vm];
    const r = await virsh(user, undefined, ...args);
    if (want === 'ok') expect(r).toMatchObject({ rc: 0, err: '' });
    else {
      expect(r.rc).not.toBe(0);
      if (want === 'denied') {
        // The server's line is the generic one; the other line is virsh echoing what the user typed.
        expect(r.err.split('\n').filter((l) => l.startsWith('error: ') && !l.includes(vm))).toEqual(["error: access denied: 'virtgate' denied access"]);
      } else {
        // An invisible VM is indistinguishable from one that does not exist.
        const none = await virsh(user, undefined, ...args.map((a) => (a === vm ? 'no-such-vm' : a)));
        expect(r.err.replaceAll(vm, 'X')).toBe(none.err.replaceAll('no-such-vm', 'X'));
      }
    }
  });

  test('virsh event --all --loop: users get events only for VMs of their tenant', async () => {
    const watch = (user: string): { proc: ChildProcess; out: () => string } => {
      const argv = asUser(user, home).concat('virsh', '-c', uriFor(), 'event', '--all', '--loop');
      const proc = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
      return { proc, out: () => out };
    };
    const carol = watch('carol');
    const bob = watch('bob');
    await new Promise((r) => setTimeout(r, 1500)); // registered
    for (const vm of ['acme-web', 'globex-app']) {
      expect((await virsh('root', undefined, 'start', vm)).rc).toBe(0);
      expect((await virsh('root', undefined, 'destroy', vm)).rc).toBe(0);
    }
    await new Promise((r) => setTimeout(r, 1000));
    carol.proc.kill('SIGINT');
    bob.proc.kill('SIGINT');
    expect(carol.out()).toMatch(/globex-app/);
    expect(carol.out()).not.toMatch(/acme/);
    expect(bob.out()).toMatch(/acme-web/);
    expect(bob.out()).not.toMatch(/globex/);
  });

  test('the read-only socket grants at most read permissions, even to an owner', async () => {
    const argv = asUser('alice', home).concat('virsh', '-r', '-c', uriFor(undefined, true));
    const ok = await run(argv[0], [...argv.slice(1), 'dominfo', 'acme-web']).then(
      () => 0,
      () => 1,
    );
    expect(ok).toBe(0);
    const r = await run(argv[0], [...argv.slice(1), 'start', 'acme-web']).then(
      () => '',
      (e: { stderr: string }) => e.stderr,
    );
    expect(r).toMatch(/read only|denied/);
  });

  test("a user with no membership cannot open a connection; a tenant outside one's memberships is refused", async () => {
    expect((await virsh('dave', undefined, 'list', '--all')).err).toMatch(/access denied/);
    expect((await virsh('carol', 'acme', 'list', '--all')).err).toMatch(/access denied/);
  });

  test('reload: a broken policy is rejected and the old one stays; a valid change applies without reconnecting', async () => {
    const file = path.join(home, 'etc', 'policy.csv');
    const reloads = (): number => (vg.output().match(/policy (loaded|reload failed)/g) ?? []).length;
    const waitReload = async (n: number): Promise<void> => {
      for (let i = 0; i < 100 && reloads() < n; i++) await new Promise((r) => setTimeout(r, 50));
    };
    // An interactive virsh shell as carol keeps one connection open across the policy changes.
    const argv = asUser('carol', home).concat('virsh', '-c', uriFor());
    const sh = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    sh.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    sh.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    const ask = async (cmd: string): Promise<string> => {
      const from = out.length;
      sh.stdin!.write(`${cmd}\necho --- done\n`);
      for (let i = 0; i < 200 && !out.slice(from).includes('--- done'); i++) await new Promise((r) => setTimeout(r, 25));
      return out.slice(from);
    };
    expect(await ask('list --all --name')).toMatch(/globex-app/);

    let n = reloads();
    fs.writeFileSync(file, `${EXAMPLE_POLICY}p, carol, globex, vm:*, domain:bogus\ng, broken\n`);
    await waitReload(n + 1);
    expect(vg.output()).toMatch(/policy reload failed \(file change\), keeping the previous policy: .*policy.csv:\d+: expected g, USER, ROLE, TENANT/);
    expect(await ask('list --all --name')).toMatch(/globex-app/);
    expect(await ask('start globex-app')).toMatch(/access denied/);

    n = reloads();
    fs.writeFileSync(file, EXAMPLE_POLICY.replace('g, carol, viewer, globex', 'g, carol, operator, globex'));
    await waitReload(n + 1);
    expect(await ask('start globex-app')).toMatch(/started/);
    expect(await ask('destroy globex-app')).toMatch(/destroyed/);

    n = reloads();
    fs.writeFileSync(file, EXAMPLE_POLICY.replace('g, carol, viewer, globex\n', ''));
    process.kill(
      Number(
        execFileSync('pgrep', ['-f', `virtgated.js --home ${home}`])
          .toString()
          .trim()
          .split('\n')[0],
      ),
      'SIGHUP',
    );
    await waitReload(n + 1);
    expect(await ask('list --all --name')).toMatch(/access denied/);
    sh.stdin!.end('quit\n');
    fs.writeFileSync(file, EXAMPLE_POLICY);
  });

  test('a user in several tenants must choose one in the URI', async () => {
    const file = path.join(home, 'etc', 'policy.csv');
    const n = (vg.output().match(/policy loaded/g) ?? []).length;
    fs.writeFileSync(file, `${EXAMPLE_POLICY}g, dave, viewer, acme\ng, dave, viewer, globex\n`);
    for (let i = 0; i < 100 && (vg.output().match(/policy loaded/g) ?? []).length <= n; i++) await new Promise((r) => setTimeout(r, 50));
    expect((await virsh('dave', undefined, 'list', '--all')).err).toMatch(/belongs to several tenants \(acme, globex\): choose one with \?tenant=NAME/);
    expect(await names('dave', 'globex')).toEqual(['globex-app']);
    expect(await names('dave', 'acme')).toEqual(['acme-db', 'acme-web']);
  });
  test('deleting policy.csv is a failed reload: the policy in force stays, the log says POLICY FILE MISSING, the audit records it', async () => {
    const file = path.join(home, 'etc', 'policy.csv');
    const before = vg.output().length;
    fs.writeFileSync(file, EXAMPLE_POLICY);
    await vg.waitFor(/policy loaded \(file change\)/, 5000, before);
    await new Promise((r) => setTimeout(r, 300)); // the watcher's burst is over
    const from = vg.output().length;
    fs.rmSync(file);
    await vg.waitFor(/policy reload failed \(file change\), keeping the previous policy: POLICY FILE MISSING: .*policy\.csv/, 5000, from);
    expect(vg.output().slice(from)).not.toMatch(/built-in default policy/);
    expect(await names('carol')).toEqual(['globex-app']); // the file's policy, not the built-in default (which grants carol nothing)
    const audit = fs
      .readFileSync(path.join(home, 'log', 'audit.log'), 'utf8')
      .trim()
      .split('\n')
      .slice(-5);
    expect(audit.join('\n')).toMatch(/"policy-reload".*"ok":false.*POLICY FILE MISSING/);
    fs.writeFileSync(file, EXAMPLE_POLICY);
    await vg.waitFor(/policy loaded \(file change\)/, 5000, from);
  });
});
