// SPDX-License-Identifier: Apache-2.0
// Interfaces and node devices are host objects (tenant ''): through real connections (virsh run as local users, peer
// uid = identity) a tenant's built-in roles see none of them, the host admin sees and changes them, and an explicit
// policy rule can open them to a user read-only (writes then refused). Host facts stay connect:read.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EXAMPLE_POLICY } from '../../src/policy/model';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { type Result, asUser, exec, ids, localUsers } from '../helpers/users';
import { describeIf, virshTool } from '../helpers/skip';

const USERS = ['alice', 'bob', 'carol', 'dave'];
const NEEDS = [...localUsers(USERS, 'runs virsh as other local users'), virshTool()];

// dave: no tenant; may list and read interfaces (an explicit host-wide rule), nothing else.
const POLICY = `${EXAMPLE_POLICY}g, unix:dave, ifaceviewer, *
p, ifaceviewer, *, host, connect:getattr
p, ifaceviewer, *, host, connect:search_interfaces
p, ifaceviewer, *, iface:*, interface:getattr
p, ifaceviewer, *, iface:*, interface:read
`;

const DENIED = "error: access denied: 'virtgate' denied access";

describeIf(NEEDS, 'RBAC for interfaces and node devices through real connections', () => {
  let vg: RunningDaemon;
  let home: string;
  const virsh = (user: string, ...args: string[]): Promise<Result> =>
    exec([...asUser(user, home), 'virsh', '-c', `test+unix:///default?socket=${vg.sock}`, ...args]);
  const serverErrors = (r: Result) => r.err.split('\n').filter((l) => l.startsWith('error: ') && !/^error: (failed to get|Failed to|Could not find)/.test(l));

  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-hostobj-rbac-'));
    fs.chmodSync(home, 0o755);
    fs.mkdirSync(path.join(home, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(home, 'etc', 'policy.csv'), POLICY);
    fs.writeFileSync(path.join(home, 'etc', 'virtgate.conf'), 'unixSocketMode = 0o666\n');
    for (const u of USERS) {
      fs.mkdirSync(path.join(home, 'u', u), { recursive: true });
      const { uid, gid } = ids(u);
      fs.chownSync(path.join(home, 'u', u), uid, gid);
    }
    vg = await startDaemon({ home });
  });
  afterAll(async () => vg?.stop());

  test('the host admin sees and changes interfaces and node devices', async () => {
    expect((await virsh('root', 'iface-list', '--all')).out).toMatch(/eth1\s+active\s+aa:bb:cc:dd:ee:ff/);
    expect((await virsh('root', 'nodedev-list')).out).toBe('computer\nscsi_host1\nscsi_host11\nscsi_host2\n\n');
    // virsh 9.0's iface-destroy exits 1 even when it worked (cmdInterfaceDestroy returns false), as against libvirtd
    expect(await virsh('root', 'iface-destroy', 'eth1')).toMatchObject({ out: 'Interface eth1 destroyed\n\n', err: '' });
    expect(await virsh('root', 'iface-start', 'eth1')).toMatchObject({ rc: 0, err: '' });
  });

  test.each(['alice', 'bob', 'carol'])('%s (a tenant role) sees no interface and no node device: as if there were none', async (user) => {
    // listing needs connect:search_interfaces / search_node_devices, which no tenant role holds
    expect(await virsh(user, 'iface-list', '--all')).toEqual({ rc: 1, out: '\n', err: `error: Failed to list interfaces\n${DENIED}\n` });
    expect(await virsh(user, 'nodedev-list')).toEqual({ rc: 1, out: '\n', err: `error: Failed to list node devices\n${DENIED}\n` });
    // a named object the caller may not getattr answers as absent, exactly as a name that does not exist (recorded as a denial)
    for (const [args, absent] of [
      [['iface-dumpxml', 'eth1'], 'error: Interface not found'],
      [['iface-mac', 'eth1'], 'error: Interface not found'],
      [['iface-destroy', 'eth1'], 'error: Interface not found'],
      [['nodedev-dumpxml', 'computer'], 'error: Node device not found'],
      [['nodedev-destroy', 'scsi_host11'], 'error: Node device not found'],
    ] as const) {
      expect({ args, errors: serverErrors(await virsh(user, ...args)) }).toEqual({ args, errors: [absent] });
      const none = args.map((a) => (a === 'eth1' || a === 'computer' || a === 'scsi_host11' ? 'nosuch0' : a));
      expect({ none, errors: serverErrors(await virsh(user, ...none)) }).toEqual({ none, errors: [absent] });
    }
    // a lookup by MAC searches only what the caller may see
    expect(serverErrors(await virsh(user, 'iface-name', 'aa:bb:cc:dd:ee:ff'))).toEqual([
      "error: Interface not found: no interface with matching mac 'aa:bb:cc:dd:ee:ff'",
    ]);
    expect(serverErrors(await virsh(user, 'iface-begin'))).toEqual([DENIED]);
    // host facts are connect:read, which every built-in role holds
    expect((await virsh(user, 'sysinfo')).rc).toBe(0);
    expect((await virsh('root', 'iface-list', '--all')).out).toMatch(/eth1\s+active/);
  });

  test('an explicit rule opens interfaces read-only: dave reads, every write is refused', async () => {
    expect((await virsh('dave', 'iface-list', '--all')).out).toMatch(/eth1\s+active\s+aa:bb:cc:dd:ee:ff/);
    expect((await virsh('dave', 'iface-dumpxml', 'eth1')).out).toContain("<interface type='ethernet' name='eth1'>");
    expect((await virsh('dave', 'iface-mac', 'eth1')).out.trim()).toBe('aa:bb:cc:dd:ee:ff');
    for (const args of [['iface-destroy', 'eth1'], ['iface-undefine', 'eth1'], ['iface-begin']]) {
      expect({ args, errors: serverErrors(await virsh('dave', ...args)) }).toEqual({ args, errors: [DENIED] });
    }
    // node devices were not opened to dave: listing them needs connect:search_node_devices
    expect(serverErrors(await virsh('dave', 'nodedev-list'))).toEqual([DENIED]);
    expect((await virsh('root', 'iface-list', '--all')).out).toMatch(/eth1\s+active/);
  });
});
