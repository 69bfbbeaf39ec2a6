// SPDX-License-Identifier: Apache-2.0
// Graphics, screenshots and keys per tenant (issue 14), through real connections as local users: bob (another tenant)
// is told alice's VM does not exist, exactly as for an absent one; carol (a viewer in alice's tenant) is denied
// domain:open_graphics, domain:screenshot and domain:send_input; alice (owner) gets all three. Denials are audited.
import fs from 'node:fs';
import path from 'node:path';
import { type RunningQemuDaemon, startQemuDaemon } from '../helpers/daemon';
import { launcherRequirements } from '../helpers/launcher';
import { describeIf, pyLibvirt, virshTool } from '../helpers/skip';
import { type Result, asUser, exec, localUsers, makeUserHomes } from '../helpers/users';

jest.setTimeout(90000);
const USERS = ['alice', 'bob', 'carol'];
const POLICY = 'g, unix:root, host-admin, *\ng, alice, owner, acme\ng, bob, owner, globex\ng, carol, viewer, acme\n';

const OPEN_FD = `
import libvirt, socket, sys
c = libvirt.open(sys.argv[1])
try:
    d = c.lookupByName(sys.argv[2])
    fd = d.openGraphicsFD(0, 0)
    s = socket.socket(fileno=fd)
    s.settimeout(10)
    print(s.recv(12).decode())
except libvirt.libvirtError as e:
    print('error', e.get_error_code(), e.get_error_message())
`;

describeIf([...localUsers(USERS, 'graphics tenancy as other local users'), virshTool(), pyLibvirt(), ...launcherRequirements()], 'graphics per tenant', () => {
  let vg: RunningQemuDaemon;
  let uuid = '';
  const tenantOf: Record<string, string | undefined> = { alice: 'acme', bob: 'globex', carol: 'acme' };
  const uri = (user: string): string => `${vg.uri}${tenantOf[user] ? `&tenant=${tenantOf[user]}` : ''}`;
  const virsh = (user: string, ...args: string[]): Promise<Result> => exec([...asUser(user, vg.home), 'virsh', '-c', uri(user), ...args]);
  const py = (user: string, name: string): Promise<Result> => exec([...asUser(user, vg.home), '/usr/bin/python3', '-c', OPEN_FD, uri(user), name]);
  const shot = (user: string, dom: string): string => path.join(vg.home, 'u', user, `${dom}.ppm`);

  beforeAll(async () => {
    vg = await startQemuDaemon({ policy: POLICY, conf: 'unixSocketMode = 0o666\n', otherUsers: true });
    makeUserHomes(vg.home, USERS);
    const f = path.join(vg.home, 'a1.xml');
    // No kernel (a tenant names no host path): the firmware draws on the VGA screen, which is all these checks need.
    fs.writeFileSync(
      f,
      `<domain type='qemu'><name>a1</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os><devices><graphics type='vnc'/><video><model type='vga'/></video><memballoon model='none'/></devices></domain>\n`,
    );
    fs.chmodSync(f, 0o644);
    for (const args of [
      ['define', f],
      ['start', 'a1'],
    ]) {
      const r = await virsh('alice', ...args);
      if (r.rc !== 0) throw new Error(`alice: virsh ${args.join(' ')}: ${r.err}`);
    }
    uuid = (await virsh('alice', 'domuuid', 'a1')).out.trim();
  });
  afterAll(async () => vg?.stop());

  test("bob: alice's VM's display, screen and keyboard answer as for an absent VM, by name and by uuid", async () => {
    for (const cmd of [['screenshot'], ['send-key'], ['domdisplay'], ['vncdisplay']]) {
      const tail = cmd[0] === 'send-key' ? ['KEY_A'] : cmd[0] === 'screenshot' ? [shot('bob', 'x')] : [];
      const byName = await virsh('bob', cmd[0], 'a1', ...tail);
      const absent = await virsh('bob', cmd[0], 'no-such-vm', ...tail);
      expect(byName.rc).not.toBe(0);
      expect(byName.err.replace(/a1/g, 'X')).toBe(absent.err.replace(/no-such-vm/g, 'X'));
      expect((await virsh('bob', cmd[0], uuid, ...tail)).err).toMatch(/failed to get domain/);
    }
    const g = await py('bob', 'a1');
    const none = await py('bob', 'no-such-vm');
    expect(g.out).toMatch(/^error 42 /);
    expect(g.out.replace(/a1/g, 'X')).toBe(none.out.replace(/no-such-vm/g, 'X'));
    expect(fs.existsSync(shot('bob', 'x'))).toBe(false);
  });

  test('carol (viewer in acme) is denied open_graphics, screenshot and send_input; alice (owner) gets them', async () => {
    expect((await py('carol', 'a1')).out).toMatch(/error 88 access denied/);
    const s = await virsh('carol', 'screenshot', 'a1', shot('carol', 'a1'));
    expect(s.err).toMatch(/access denied/);
    expect((await virsh('carol', 'send-key', 'a1', 'KEY_A')).err).toMatch(/access denied/);
    expect(fs.existsSync(shot('carol', 'a1'))).toBe(false);

    expect((await py('alice', 'a1')).out).toMatch(/^RFB 003\.008/);
    const a = await virsh('alice', 'screenshot', 'a1', shot('alice', 'a1'));
    expect(a.err).toBe('');
    expect(fs.readFileSync(shot('alice', 'a1')).subarray(0, 3).toString()).toBe('P6\n');
    expect((await virsh('alice', 'send-key', 'a1', 'KEY_A')).rc).toBe(0);
    const audit = fs.readFileSync(path.join(vg.home, 'log', 'audit.log'), 'utf8');
    expect(audit).toMatch(/"user":"carol"[^\n]*domainOpenGraphicsFd|domainOpenGraphicsFd[^\n]*"user":"carol"/);
  });
});
