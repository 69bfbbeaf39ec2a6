// SPDX-License-Identifier: Apache-2.0
// Argument-dependent permissions through real virsh: a tenant owner describes its own VMs (DOMAIN_SET_METADATA needs
// libvirt's domain:write, not connect:write), another tenant's VM stays hidden (and the try is a recorded denial), a
// viewer and a read-only connection are refused, and only the tenant element still needs a host admin.
// `domifaddr --source agent` needs domain:write as well as domain:read (libvirt's @acl on procedure 353).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { describeIf, virshTool } from '../helpers/skip';
import { type Result, asUser, exec, ids, localUsers } from '../helpers/users';

const USERS = ['alice', 'bob', 'carol'];
const POLICY = 'g, alice, owner, acme\ng, bob, owner, globex\ng, carol, viewer, globex\n';
const NEEDS = [...localUsers(USERS, 'metadata rights as other local users'), virshTool()];
const NS = 'https://virtgate.dev/xmlns/tenant/1';
const DENIED = /error: access denied: 'virtgate' denied access/;
const HIDDEN = /error: failed to get domain 'a-web'/;

describeIf(NEEDS, 'descriptions and agent addresses: argument-dependent permissions', () => {
  let vg: RunningDaemon;
  let home: string;
  const tenantOf: Record<string, string | undefined> = { alice: 'acme', bob: 'globex', carol: 'globex', root: undefined };
  const uri = (user: string, ro = false): string =>
    `test+unix:///default?socket=${ro ? vg.sockRo : vg.sock}${tenantOf[user] ? `&tenant=${tenantOf[user]}` : ''}`;
  const virsh = (user: string, ...args: string[]): Promise<Result> => exec([...asUser(user, home), 'virsh', '-c', uri(user), ...args]);
  const virshRo = (user: string, ...args: string[]): Promise<Result> => exec([...asUser(user, home), 'virsh', '-r', '-c', uri(user, true), ...args]);
  const denials = (): Record<string, unknown>[] =>
    fs
      .readFileSync(path.join(home, 'log', 'audit.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((r) => r.kind === 'denial');

  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-metadata-rbac-'));
    fs.chmodSync(home, 0o755);
    fs.mkdirSync(path.join(home, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(home, 'etc', 'virtgate.conf'), 'unixSocketMode = 0o666\n');
    for (const u of USERS) {
      fs.mkdirSync(path.join(home, 'u', u), { recursive: true });
      fs.chownSync(path.join(home, 'u', u), ids(u).uid, ids(u).gid);
    }
    vg = await startDaemon({ home, policy: POLICY });
    for (const [user, vm] of [
      ['alice', 'a-web'],
      ['bob', 'g-app'],
    ]) {
      const f = path.join(home, `${vm}.xml`);
      const xml = `<domain type='test'><name>${vm}</name><memory unit='MiB'>128</memory><os><type>hvm</type></os>
        <devices><interface type='network'><mac address='52:54:00:00:00:0${vm === 'a-web' ? 1 : 2}'/><source network='default'/></interface></devices></domain>\n`;
      fs.writeFileSync(f, xml, { mode: 0o644 });
      const r = await virsh(user, 'define', f);
      expect(r.err).toBe('');
      expect((await virsh(user, 'start', vm)).err).toBe('');
    }
  });
  afterAll(async () => vg?.stop());

  test('an owner sets the description and title of its own VM (live and config)', async () => {
    expect(await virsh('alice', 'desc', 'a-web', '--new-desc', 'front end')).toMatchObject({ rc: 0, err: '' });
    expect(await virsh('alice', 'desc', 'a-web', '--config', '--title', '--new-desc', 'web')).toMatchObject({ rc: 0, err: '' });
    expect((await virsh('alice', 'desc', 'a-web')).out.trim()).toBe('front end');
    expect((await virsh('alice', 'desc', 'a-web', '--config', '--title')).out.trim()).toBe('web');
    const r = await virsh('alice', 'metadata', 'a-web', '--uri', 'https://example.com/app', '--key', 'app', '--set', '<app role="web"/>');
    expect(r).toMatchObject({ rc: 0, err: '' });
    expect((await virsh('alice', 'metadata', 'a-web', '--uri', 'https://example.com/app')).out).toMatch(/<app role="web"\/>/);
  });

  test("another tenant's VM is not found for it, and the try is recorded as a denial", async () => {
    const before = denials().length;
    const r = await virsh('bob', 'desc', 'a-web', '--new-desc', 'mine now');
    expect(r.rc).not.toBe(0);
    expect(r.err).toMatch(HIDDEN);
    const added = denials().slice(before);
    expect(added.length).toBeGreaterThan(0);
    expect(JSON.stringify(added)).toMatch(/a-web/);
    expect((await virsh('alice', 'desc', 'a-web')).out.trim()).toBe('front end');
  });

  test('a viewer and a read-only connection are refused; the description is unchanged', async () => {
    const viewer = await virsh('carol', 'desc', 'g-app', '--new-desc', 'x');
    expect(viewer.rc).not.toBe(0);
    expect(viewer.err).toMatch(DENIED);
    const ro = await virshRo('alice', 'desc', 'a-web', '--new-desc', 'x');
    expect(ro.rc).not.toBe(0);
    expect(ro.err).toMatch(/read only|read-only/i);
    expect((await virsh('alice', 'desc', 'a-web')).out.trim()).toBe('front end');
  });

  test("the tenant element still needs a host admin (the owner's domain:write is not enough)", async () => {
    const r = await virsh('alice', 'metadata', 'a-web', '--uri', NS, '--key', 'virtgate', '--set', '<tenant>globex</tenant>');
    expect(r.rc).not.toBe(0);
    expect(r.err).toMatch(DENIED);
    expect((await virsh('alice', 'list', '--all', '--name')).out.split('\n').filter(Boolean)).toEqual(['a-web']);
  });

  test('domifaddr: lease and arp sources need domain:read; the agent source also domain:write', async () => {
    expect((await virsh('carol', 'domifaddr', 'g-app')).rc).toBe(0);
    const viewer = await virsh('carol', 'domifaddr', 'g-app', '--source', 'agent');
    expect(viewer.rc).not.toBe(0);
    expect(viewer.err).toMatch(DENIED);
    const owner = await virsh('bob', 'domifaddr', 'g-app', '--source', 'agent');
    expect(owner).toMatchObject({ rc: 0, err: '' });
    expect(owner.out).toMatch(/52:54:00:00:00:02\s+ipv4\s+\d+\.\d+\.\d+\.\d+\/\d+/);
  });
});
