// SPDX-License-Identifier: Apache-2.0
// Tenancy with the qemu driver, through real connections: local users alice (owner, acme) and bob (owner, globex)
// drive the daemon with virsh as themselves (peer uid = identity), as for the test driver (storage-rbac, rbac). Bob
// cannot see, start, stop or reuse the disk of alice's running VM (a real, jailed QEMU); each refusal is audited.
import fs from 'node:fs';
import path from 'node:path';
import { type RunningQemuDaemon, startQemuDaemon } from '../helpers/daemon';
import { launcherRequirements } from '../helpers/launcher';
import { describeIf, virshTool } from '../helpers/skip';
import { type Result, asUser, exec, localUsers, makeUserHomes } from '../helpers/users';

const USERS = ['alice', 'bob'];
const POLICY = 'g, unix:root, host-admin, *\ng, alice, owner, acme\ng, bob, owner, globex\n';
const NOT_FOUND = /error: failed to get domain '/; // virsh's words when neither the name nor the uuid lookup finds it
const DENIED = "error: access denied: 'virtgate' denied access";

describeIf([...localUsers(USERS, 'qemu tenancy as other local users'), virshTool(), ...launcherRequirements()], 'qemu VMs per tenant, through virsh', () => {
  let vg: RunningQemuDaemon;
  const tenantOf: Record<string, string | undefined> = { alice: 'acme', bob: 'globex', root: undefined };
  const uri = (user: string): string => `${vg.uri}${tenantOf[user] ? `&tenant=${tenantOf[user]}` : ''}`;
  const virsh = (user: string, ...args: string[]): Promise<Result> => exec([...asUser(user, vg.home), 'virsh', '-c', uri(user), ...args]);
  const ok = async (user: string, ...args: string[]): Promise<string> => {
    const r = await virsh(user, ...args);
    expect({ args, err: r.err, rc: r.rc }).toEqual({ args, err: '', rc: 0 });
    return r.out;
  };
  const xml = (name: string, disk = ''): string => {
    const f = path.join(vg.home, `${name}.xml`);
    // No kernel (a tenant may name no host path): QEMU runs its firmware, which is all these checks need.
    fs.writeFileSync(
      f,
      `<domain type='qemu'><name>${name}</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os><devices>${disk}<memballoon model='none'/></devices></domain>\n`,
    );
    fs.chmodSync(f, 0o644);
    return f;
  };
  let uuid = '';

  beforeAll(async () => {
    vg = await startQemuDaemon({ policy: POLICY, conf: 'unixSocketMode = 0o666\n', otherUsers: true });
    makeUserHomes(vg.home, USERS);
    await ok('alice', 'pool-define-as', 'apool', 'dir', '--target', path.join(vg.home, 'lib', 'pools', 'acme', 'apool'));
    await ok('alice', 'pool-build', 'apool');
    await ok('alice', 'pool-start', 'apool');
    await ok('alice', 'vol-create-as', 'apool', 'a.qcow2', '64M', '--format', 'qcow2');
    const disk =
      "<disk type='volume' device='disk'><driver name='qemu' type='qcow2'/><source pool='apool' volume='a.qcow2'/><target dev='vda' bus='virtio'/></disk>";
    await ok('alice', 'define', xml('a1', disk));
    await ok('alice', 'start', 'a1');
    uuid = (await ok('alice', 'domuuid', 'a1')).trim();
  });
  afterAll(async () => vg?.stop());

  test("alice's VM runs as a jailed QEMU in acme's cgroup; alice and the host admin see it, bob does not", async () => {
    expect((await ok('alice', 'domstate', 'a1')).trim()).toBe('running');
    expect(fs.existsSync(path.join('/sys/fs/cgroup/pids', vg.launcher.cgroupRoot, 'acme', `vm-${uuid}`))).toBe(true);
    expect(await ok('alice', 'list', '--all', '--name')).toMatch(/^a1$/m);
    expect(await ok('root', 'list', '--all', '--name')).toMatch(/^a1$/m);
    expect((await ok('bob', 'list', '--all', '--name')).trim()).toBe('');
    expect((await ok('bob', 'pool-list', '--all', '--name')).trim()).toBe('default'); // globex's own, provisioned on first need
  });

  test("bob cannot look up, read, start, stop or undefine alice's VM, by name or by uuid", async () => {
    for (const args of [
      ['dominfo', 'a1'],
      ['dominfo', uuid],
      ['dumpxml', 'a1'],
      ['domstate', uuid],
      ['destroy', 'a1'],
      ['suspend', uuid],
      ['shutdown', 'a1'],
      ['undefine', 'a1'],
      ['setmem', 'a1', '64M', '--live'],
    ]) {
      const r = await virsh('bob', ...args);
      expect({ args, rc: r.rc }).toEqual({ args, rc: 1 });
      expect(r.err).toMatch(NOT_FOUND);
    }
    expect((await ok('alice', 'domstate', 'a1')).trim()).toBe('running');
  });

  test("bob cannot reach alice's volume: not by pool, and not by its path in a VM of his own", async () => {
    const r = await virsh('bob', 'vol-info', '--pool', 'apool', 'a.qcow2');
    expect(r.rc).toBe(1);
    const aPath = path.join(vg.home, 'lib', 'pools', 'acme', 'apool', 'a.qcow2');
    const steal = await virsh(
      'bob',
      'define',
      xml('b1', `<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${aPath}'/><target dev='vda' bus='virtio'/></disk>`),
    );
    // Refused at define by the helper's tenant rule, before any file is opened.
    expect(steal.rc).toBe(1);
    expect(steal.err).toMatch(/a\.qcow2\) is not a volume the VM may use; tenant 'globex'/);
    // No QEMU of bob's ever ran: his tenant has no cgroup.
    expect(fs.existsSync(path.join('/sys/fs/cgroup/pids', vg.launcher.cgroupRoot, 'globex'))).toBe(false);
  });

  test("bob's attempt on alice's disk is in the audit log; a user with no role is denied", async () => {
    const q = await exec([
      process.execPath,
      path.resolve(__dirname, '..', '..', 'bin', 'virtgate.js'),
      'audit',
      'query',
      '--user',
      'bob',
      '--format',
      'json',
      path.join(vg.home, 'log', 'audit.log'),
    ]);
    expect(q.rc).toBe(0);
    const records = JSON.parse(q.out) as { kind: string; what: { procedure: string }; outcome?: { code: string; message: string } }[];
    const refused = records.filter((r) => r.kind === 'outcome' && r.outcome?.code === 'VG_ERR_RESOURCE_DENIED');
    expect(refused.map((r) => r.what.procedure)).toContain('domainDefineXml');
    expect(refused.find((r) => r.what.procedure === 'domainDefineXml')!.outcome!.message).toMatch(/a\.qcow2\) is not a volume the VM may use; tenant 'globex'/);
    // A user with no role at all: no connection (deny by default).
    const r = await exec([...asUser('nobody', vg.home), 'virsh', '-c', vg.uri, 'list', '--all']);
    expect(r.rc).toBe(1);
    expect(r.err).toContain(DENIED.slice(0, 20));
  });
});
