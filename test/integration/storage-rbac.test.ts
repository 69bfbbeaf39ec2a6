// SPDX-License-Identifier: Apache-2.0
// Storage tenancy through real connections: local users alice (owner, acme), bob (owner, globex) and carol (viewer,
// globex) drive the daemon with virsh as themselves (peer uid = identity). A tenant's pools and volumes are invisible
// to another tenant (lookups by name, uuid, key and path; lists; events), the shared default-pool is visible and
// read-only to tenants, a viewer creates nothing, and bad input answers as libvirt does.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { describeIf, virshTool } from '../helpers/skip';
import { type Result, asUser, exec, ids, localUsers } from '../helpers/users';

const USERS = ['alice', 'bob', 'carol'];
const POLICY = 'g, alice, owner, acme\ng, bob, owner, globex\ng, carol, viewer, globex\n';
const NEEDS = [...localUsers(USERS, 'storage tenancy as other local users'), virshTool()];
const NOT_FOUND_POOL = /error: Storage pool not found: no storage pool with matching (name|uuid) /;
const NOT_FOUND_VOL = /error: Storage volume not found: no storage vol with matching (name|key|path) /;
const DENIED = "error: access denied: 'virtgate' denied access";

describeIf(NEEDS, 'storage pools and volumes per tenant, through virsh', () => {
  let vg: RunningDaemon;
  let home: string;
  let apoolUuid = '';
  const tenantOf: Record<string, string | undefined> = { alice: 'acme', bob: 'globex', carol: 'globex', root: undefined };
  const uri = (user: string): string => `test+unix:///default?socket=${vg.sock}${tenantOf[user] ? `&tenant=${tenantOf[user]}` : ''}`;
  const virsh = (user: string, ...args: string[]): Promise<Result> => exec([...asUser(user, home), 'virsh', '-c', uri(user), ...args]);
  const ok = async (user: string, ...args: string[]): Promise<string> => {
    const r = await virsh(user, ...args);
    expect({ args, err: r.err, rc: r.rc }).toEqual({ args, err: '', rc: 0 });
    return r.out;
  };

  // `vol-list POOL` without its two header lines.
  const volNames = async (user: string, pool: string): Promise<string[]> =>
    (await ok(user, 'vol-list', pool))
      .split('\n')
      .slice(2)
      .map((l) => l.trim().split(/\s+/)[0])
      .filter(Boolean)
      .sort();

  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-storage-rbac-'));
    fs.chmodSync(home, 0o755);
    fs.mkdirSync(path.join(home, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(home, 'etc', 'virtgate.conf'), 'unixSocketMode = 0o666\n');
    for (const u of USERS) {
      fs.mkdirSync(path.join(home, 'u', u), { recursive: true });
      const { uid, gid } = ids(u);
      fs.chownSync(path.join(home, 'u', u), uid, gid);
    }
    vg = await startDaemon({ home, policy: POLICY });
    await ok('alice', 'pool-define-as', 'apool', 'dir', '--target', '/var/lib/libvirt/apool');
    await ok('alice', 'pool-start', 'apool');
    await ok('alice', 'vol-create-as', 'apool', 'disk.qcow2', '1G', '--format', 'qcow2');
    await ok('bob', 'pool-define-as', 'bpool', 'dir', '--target', '/var/lib/libvirt/bpool');
    await ok('bob', 'pool-start', 'bpool');
    await ok('root', 'vol-create-as', 'default-pool', 'shared.iso', '10M');
    apoolUuid = (await ok('alice', 'pool-uuid', 'apool')).trim();
    expect(apoolUuid).toMatch(/^[0-9a-f-]{36}$/);
  });
  afterAll(async () => vg?.stop());

  test('lists: each tenant sees its pools and the shared one; the host admin sees all', async () => {
    const names = async (user: string): Promise<string[]> =>
      (await ok(user, 'pool-list', '--all', '--name'))
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean)
        .sort();
    expect(await names('alice')).toEqual(['apool', 'default-pool']);
    expect(await names('bob')).toEqual(['bpool', 'default-pool']);
    expect(await names('carol')).toEqual(['bpool', 'default-pool']);
    expect(await names('root')).toEqual(['apool', 'bpool', 'default-pool']);
    expect(await volNames('bob', 'default-pool')).toEqual(['shared.iso']);
  });

  test("another tenant's pool and volume are absent, whatever the lookup", async () => {
    for (const args of [
      ['pool-info', 'apool'],
      ['pool-info', apoolUuid],
      ['pool-dumpxml', 'apool'],
      ['vol-list', 'apool'],
      ['pool-destroy', 'apool'],
      ['pool-undefine', 'apool'],
      ['pool-refresh', 'apool'],
      ['pool-autostart', 'apool'],
      ['vol-create-as', 'apool', 'x', '1M'],
    ]) {
      const r = await virsh('bob', ...args);
      expect({ args, rc: r.rc }).toEqual({ args, rc: 1 });
      expect(r.err).toMatch(NOT_FOUND_POOL);
      expect(r.err).not.toContain(DENIED);
    }
    for (const [args, want] of [
      [['vol-info', '/var/lib/libvirt/apool/disk.qcow2'], NOT_FOUND_VOL],
      [['vol-dumpxml', '/var/lib/libvirt/apool/disk.qcow2'], NOT_FOUND_VOL],
      [['vol-delete', '/var/lib/libvirt/apool/disk.qcow2'], NOT_FOUND_VOL],
      [['vol-pool', '/var/lib/libvirt/apool/disk.qcow2'], NOT_FOUND_VOL],
      [['vol-info', '--pool', 'apool', 'disk.qcow2'], NOT_FOUND_POOL],
    ] as [string[], RegExp][]) {
      const r = await virsh('bob', ...args);
      expect({ args, rc: r.rc }).toEqual({ args, rc: 1 });
      expect(r.err).toMatch(want);
      expect(r.err).not.toContain(DENIED);
    }
    // Nothing changed for its owner.
    expect(await volNames('alice', 'apool')).toEqual(['disk.qcow2']);
  });

  test("another tenant's name, uuid or target path is not available, and its name is not told", async () => {
    const xml = path.join(home, 'clash.xml');
    for (const [name, uuid, target] of [
      ['apool', '', '/var/lib/libvirt/elsewhere'],
      ['other', apoolUuid, '/var/lib/libvirt/other'],
      ['nested', '', '/var/lib/libvirt/apool/sub'],
    ]) {
      fs.writeFileSync(xml, `<pool type='dir'><name>${name}</name>${uuid ? `<uuid>${uuid}</uuid>` : ''}<target><path>${target}</path></target></pool>`, {
        mode: 0o644,
      });
      const r = await virsh('bob', 'pool-define', xml);
      expect(r.rc).toBe(1);
      expect(r.err).toMatch(/operation failed: name, uuid or target path is not available|Storage pool not found/);
      expect(r.err).not.toContain('apool');
      expect(r.err).not.toContain(apoolUuid);
    }
  });

  test('the shared pool: tenants read it, only the host admin changes it', async () => {
    expect(await ok('alice', 'vol-info', '--pool', 'default-pool', 'shared.iso')).toContain('Capacity:       10.00 MiB');
    for (const args of [
      ['vol-create-as', 'default-pool', 'mine', '1M'],
      ['vol-delete', '--pool', 'default-pool', 'shared.iso'],
      ['pool-destroy', 'default-pool'],
    ]) {
      const r = await virsh('alice', ...args);
      expect({ args, rc: r.rc }).toEqual({ args, rc: 1 });
      expect(r.err).toContain(DENIED);
    }
    // Cloning a shared volume into one's own pool is reading it.
    const xml = path.join(home, 'copy.xml');
    fs.writeFileSync(xml, '<volume><name>copy.iso</name><capacity>1024</capacity></volume>', { mode: 0o644 });
    await ok('alice', 'vol-create-from', 'apool', xml, 'shared.iso', '--inputpool', 'default-pool');
    expect(await volNames('alice', 'apool')).toEqual(['copy.iso', 'disk.qcow2']);
  });

  test('a viewer reads its tenant’s pools and creates nothing', async () => {
    expect(await ok('carol', 'pool-info', 'bpool')).toContain('State:          running');
    for (const args of [
      ['vol-create-as', 'bpool', 'x', '1M'],
      ['pool-destroy', 'bpool'],
      ['pool-define-as', 'cpool', 'dir', '--target', '/var/lib/libvirt/cpool'],
    ]) {
      const r = await virsh('carol', ...args);
      expect({ args, rc: r.rc }).toEqual({ args, rc: 1 });
      expect(r.err).toContain(DENIED);
    }
  });

  test('bad input: unknown pool, bad sizes, broken XML, duplicates, paths outside the roots', async () => {
    const file = (name: string, body: string): string => {
      const f = path.join(home, name);
      fs.writeFileSync(f, body, { mode: 0o644 });
      return f;
    };
    const cases: [string[], RegExp][] = [
      [['pool-info', 'nosuch'], /Storage pool not found: no storage pool with matching name 'nosuch'/],
      [['vol-create-as', 'apool', 'bad', '10XB'], /Malformed size 10XB/],
      [
        ['vol-create', 'apool', file('v-unit.xml', "<volume><name>b</name><capacity unit='XB'>10</capacity></volume>")],
        /invalid argument: unknown suffix 'XB'/,
      ],
      [['vol-create', 'apool', file('v-neg.xml', '<volume><name>b</name><capacity>-5</capacity></volume>')], /XML error: malformed capacity element/],
      [['vol-create', 'apool', file('v-broken.xml', '<volume><name>b</name>')], /\(storage_volume_definition\)/],
      [['vol-create-as', 'apool', 'disk.qcow2', '1M'], /operation failed: storage vol already exists/],
      [['pool-define-as', 'apool', 'dir', '--target', '/var/lib/libvirt/again'], /already exists with uuid/],
      [['pool-define-as', 'etc', 'dir', '--target', '/etc'], /outside the allowed roots/],
      [['pool-define-as', 'up', 'dir', '--target', '/var/lib/libvirt/../../etc'], /must be normalized/],
      [['pool-define', file('p-broken.xml', "<pool type='dir'><name>x</name>")], /\(storage_pool_definition\)/],
    ];
    for (const [args, want] of cases) {
      const r = await virsh('alice', ...args);
      expect({ args, rc: r.rc }).toEqual({ args, rc: 1 });
      expect(r.err).toMatch(want);
    }
  });

  test("pool events: a tenant hears of its own pools and shared ones, never of another tenant's", async () => {
    // virsh waits for one event type per process.
    const listen = (user: string, event: 'lifecycle' | 'refresh'): Promise<Result> =>
      new Promise((resolve) => {
        const argv = [...asUser(user, home), 'virsh', '-c', uri(user), 'pool-event', '--event', event, '--loop', '--timeout', '6'];
        const p = spawn(argv[0], argv.slice(1));
        let out = '';
        let err = '';
        p.stdout.on('data', (d: Buffer) => (out += d.toString()));
        p.stderr.on('data', (d: Buffer) => (err += d.toString()));
        p.on('close', (rc) => resolve({ rc: rc ?? -1, out, err }));
      });
    const listeners = [
      listen('bob', 'lifecycle'),
      listen('alice', 'lifecycle'),
      listen('root', 'lifecycle'),
      listen('bob', 'refresh'),
      listen('alice', 'refresh'),
    ];
    await new Promise((r) => setTimeout(r, 2000));
    await ok('alice', 'pool-define-as', 'apool2', 'dir', '--target', '/var/lib/libvirt/apool2');
    await ok('alice', 'pool-start', 'apool2');
    await ok('root', 'pool-refresh', 'default-pool');
    const [bob, alice, rootL, bobRefresh, aliceRefresh] = await Promise.all(listeners);
    expect(alice.out).toContain("event 'lifecycle' for storage pool apool2: Defined");
    expect(alice.out).toContain("event 'lifecycle' for storage pool apool2: Started");
    expect(rootL.out).toContain("event 'lifecycle' for storage pool apool2: Started");
    expect(bob.out).toContain('events received: 0');
    expect(bob.out).not.toContain('apool2');
    // The shared pool's refresh reaches every tenant.
    expect(aliceRefresh.out).toContain("event 'refresh' for storage pool default-pool");
    expect(bobRefresh.out).toContain("event 'refresh' for storage pool default-pool");
  });

  test('every storage write is in the audit log with its object: kind, name and tenant', async () => {
    type Rec = { kind: string; what: { procedure: string; object?: { kind: string; name: string; tenant: string } } };
    const recs = fs
      .readFileSync(path.join(home, 'log', 'audit.log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Rec)
      .filter((r) => r.kind === 'intent');
    const objectOf = (procedure: string, name: string) => recs.find((r) => r.what.procedure === procedure && r.what.object?.name === name)?.what.object;
    expect(objectOf('storagePoolDefineXml', 'apool')).toEqual({ kind: 'storage_pool', name: 'apool', tenant: 'acme' });
    expect(objectOf('storageVolCreateXml', 'apool/disk.qcow2')).toEqual({ kind: 'storage_vol', name: 'apool/disk.qcow2', tenant: 'acme' });
    expect(objectOf('storageVolCreateXml', 'default-pool/shared.iso')).toEqual({ kind: 'storage_vol', name: 'default-pool/shared.iso', tenant: '' });
  });
});
