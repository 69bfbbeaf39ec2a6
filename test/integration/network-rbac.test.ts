// SPDX-License-Identifier: Apache-2.0
// Networks and tenancy through real connections: local users alice (acme owner), bob (globex owner) and carol (globex
// viewer) run virsh as themselves (peer uid = identity); root is the host admin. Tenant A's network is invisible to
// tenant B (lookup, list, events); the shared `default` network is visible to both; a viewer cannot define; every
// write is on the audit record with the network's kind, name and tenant.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AuditRecord } from '../../src/audit/schema';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { type Result, asUser, exec, ids, localUsers } from '../helpers/users';
import { describeIf, virshTool } from '../helpers/skip';

const USERS = ['alice', 'bob', 'carol'];
const POLICY = 'g, root, host-admin, *\ng, alice, owner, acme\ng, bob, owner, globex\ng, carol, viewer, globex\n';

describeIf([...localUsers(USERS, 'network tenancy as other local users'), virshTool()], 'networks: tenancy and RBAC through real connections', () => {
  let vg: RunningDaemon;
  let home: string;
  const uri = (tenant?: string): string => `test+unix:///default?socket=${vg.sock}${tenant ? `&tenant=${tenant}` : ''}`;
  const virsh = (user: string, ...args: string[]): Promise<Result> => exec([...asUser(user, home), 'virsh', '-q', '-c', uri(), ...args]);
  const xmlFile = (name: string, body: string): string => {
    const f = path.join(home, `${name}.xml`);
    fs.writeFileSync(f, body, { mode: 0o644 });
    return f;
  };
  const netXml = (name: string, third: number) =>
    `<network><name>${name}</name><bridge name='vbr${third}'/><ip address='10.${third}.0.1' prefix='24'/></network>\n`;
  const names = (r: Result): string[] =>
    r.out
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[0])
      .filter(Boolean)
      .sort();
  const records = (): AuditRecord[] =>
    fs
      .readFileSync(path.join(home, 'log', 'audit.log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as AuditRecord);

  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-netrbac-'));
    fs.chmodSync(home, 0o755);
    fs.mkdirSync(path.join(home, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(home, 'etc', 'virtgate.conf'), 'unixSocketMode = 0o666\n');
    for (const u of USERS) {
      fs.mkdirSync(path.join(home, 'u', u), { recursive: true });
      const { uid, gid } = ids(u);
      fs.chownSync(path.join(home, 'u', u), uid, gid);
    }
    vg = await startDaemon({ home, policy: POLICY });
    const a = await virsh('alice', 'net-define', xmlFile('acme-net', netXml('acme-net', 61)));
    expect(a.err).toBe('');
    const b = await virsh('bob', 'net-define', xmlFile('globex-net', netXml('globex-net', 62)));
    expect(b.err).toBe('');
  });
  afterAll(async () => vg?.stop());

  test("each tenant lists its own networks and the shared default, never the other tenant's", async () => {
    expect(names(await virsh('alice', 'net-list', '--all', '--name'))).toEqual(['acme-net', 'default']);
    expect(names(await virsh('bob', 'net-list', '--all', '--name'))).toEqual(['default', 'globex-net']);
    expect(names(await virsh('carol', 'net-list', '--all', '--name'))).toEqual(['default', 'globex-net']);
    expect(names(await virsh('root', 'net-list', '--all', '--name'))).toEqual(['acme-net', 'default', 'globex-net']);
  });

  test("another tenant's network answers exactly as an absent one, by name and by uuid", async () => {
    const uuid = (await virsh('alice', 'net-uuid', 'acme-net')).out.trim();
    expect(uuid).toMatch(/^[0-9a-f-]{36}$/);
    const byName = await virsh('bob', 'net-info', 'acme-net');
    const absent = await virsh('bob', 'net-info', 'no-such-net');
    expect(byName.err).toBe(absent.err.replace(/no-such-net/g, 'acme-net'));
    expect(byName.err).toContain("Network not found: no network with matching name 'acme-net'");
    // The hidden lookup is a denial on record (the absent one is not), naming the real network, as domain lookups do.
    const hidden = records().filter((r) => r.decision?.result === 'deny' && r.what?.object?.name === 'acme-net');
    expect(hidden.some((r) => r.who?.user === 'bob' && r.what?.object?.kind === 'network' && r.what?.object?.tenant === 'acme')).toBe(true);
    expect(records().some((r) => r.decision?.result === 'deny' && JSON.stringify(r.what).includes('no-such-net'))).toBe(false);
    for (const args of [
      ['net-dumpxml', uuid],
      ['net-destroy', 'acme-net'],
      ['net-undefine', 'acme-net'],
      ['net-start', 'acme-net'],
      ['net-autostart', 'acme-net'],
    ]) {
      const r = await virsh('bob', ...args);
      expect({ args, rc: r.rc }).toEqual({ args, rc: 1 });
      expect(r.err).toMatch(/Network not found/);
    }
    // Defining over it (same name) names nothing of the other tenant's network.
    const clash = await virsh('bob', 'net-define', xmlFile('clash', netXml('acme-net', 63)));
    expect(clash.err).toContain('name or uuid is not available');
    expect(clash.err).not.toContain(uuid);
    expect((await virsh('alice', 'net-info', 'acme-net')).out).toMatch(/Active:\s+no/);
  });

  test('the shared default network: tenants see it, only the host admin changes it; a viewer cannot define', async () => {
    for (const u of ['alice', 'bob', 'carol']) expect((await virsh(u, 'net-info', 'default')).out).toMatch(/Name:\s+default/);
    const denied = await virsh('alice', 'net-destroy', 'default');
    expect(denied.rc).toBe(1);
    expect(denied.err).toMatch(/access denied/);
    const viewer = await virsh('carol', 'net-define', xmlFile('carol-net', netXml('carol-net', 64)));
    expect(viewer.rc).toBe(1);
    expect(viewer.err).toMatch(/access denied/);
    expect((await virsh('root', 'net-autostart', 'default')).rc).toBe(0);
    expect((await virsh('alice', 'net-info', 'default')).out).toMatch(/Autostart:\s+yes/);
  });

  test("lifecycle events reach the network's tenant and the host admin, not the other tenant", async () => {
    const watch = (user: string) =>
      new Promise<string>((resolve) => {
        const [cmd, ...args] = [...asUser(user, home), 'virsh', '-c', uri(), 'net-event', '--event', 'lifecycle', '--loop', '--timeout', '6'];
        const p = spawn(cmd, args);
        let out = '';
        p.stdout.on('data', (c) => (out += c));
        p.on('close', () => resolve(out));
      });
    const watchers = [watch('alice'), watch('bob'), watch('root')];
    await new Promise((r) => setTimeout(r, 1500));
    expect((await virsh('alice', 'net-start', 'acme-net')).rc).toBe(0);
    expect((await virsh('alice', 'net-destroy', 'acme-net')).rc).toBe(0);
    expect((await virsh('bob', 'net-start', 'globex-net')).rc).toBe(0); // the control: bob's watcher does hear bob's network
    expect((await virsh('bob', 'net-destroy', 'globex-net')).rc).toBe(0);
    const [alice, bob, root] = await Promise.all(watchers);
    expect(bob).toContain("event 'lifecycle' for network globex-net: Started");
    expect(alice).not.toContain('globex-net');
    expect(alice).toContain("event 'lifecycle' for network acme-net: Started");
    expect(alice).toContain("event 'lifecycle' for network acme-net: Stopped");
    expect(root).toContain("event 'lifecycle' for network acme-net: Started");
    expect(bob).not.toContain('acme-net');
  });

  test('every network write is audited with the network and the tenant; refusals too', () => {
    const recs = records() as unknown as { kind: string; what?: { procedure?: string; object?: { kind?: string; name?: string; tenant?: string } } }[];
    const starts = recs.filter((r) => r.kind === 'intent' && r.what?.procedure === 'networkCreate');
    expect(starts.map((r) => r.what?.object)).toContainEqual(expect.objectContaining({ kind: 'network', name: 'acme-net', tenant: 'acme' }));
    expect(recs.filter((r) => r.kind === 'intent' && r.what?.procedure === 'networkDefineXml').length).toBeGreaterThanOrEqual(2);
    const denied = recs.filter((r) => r.kind === 'denial' && r.what?.procedure === 'networkDestroy');
    expect(denied.map((r) => r.what?.object)).toContainEqual(expect.objectContaining({ kind: 'network', name: 'default', tenant: '' }));
    expect(recs.some((r) => r.kind === 'denial' && r.what?.procedure === 'networkDefineXml')).toBe(true);
  });
});
