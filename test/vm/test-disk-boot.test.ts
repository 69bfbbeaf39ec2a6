// SPDX-License-Identifier: Apache-2.0
// The test disk (tools/build-test-disk.sh: SYSLINUX on an unpartitioned FAT image with the test guest's kernel and
// initrd) boots to the guest's marker from SeaBIOS, with no kernel given to QEMU: once by a plain QEMU (`-drive
// file=`), once through virtgate as a tenant's VM whose disk is a volume of that tenant's own `default` pool
// (`<source pool='default' volume='…'/>`, resolved in the VM's tenant: the host's `default` is not it).
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { type RunningQemuDaemon, startQemuDaemon } from '../helpers/daemon';
import { QEMU, qemuTool, testDisk } from '../helpers/guest';
import { launcherRequirements } from '../helpers/launcher';
import { describeIf, virshTool } from '../helpers/skip';
import { type Result, asUser, exec, localUsers } from '../helpers/users';

jest.setTimeout(60000);
const disk = testDisk();

async function until<T>(what: string, ms: number, probe: () => T | null | undefined): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describeIf([qemuTool(), disk], 'the test disk, booted by a plain QEMU', () => {
  let qemu: ChildProcess | null = null;
  afterAll(() => void qemu?.kill('SIGKILL'));

  test('SeaBIOS -> SYSLINUX -> the guest kernel -> the marker on the serial console', async () => {
    const t0 = Date.now();
    let out = '';
    qemu = spawn(QEMU, [
      '-accel',
      'tcg',
      '-m',
      '256',
      '-nographic',
      '-no-reboot',
      '-nodefaults',
      '-serial',
      'stdio',
      '-drive',
      `file=${disk.disk},format=raw,snapshot=on`,
    ]);
    qemu.stdout!.setEncoding('utf8').on('data', (t: string) => (out += t));
    await until('marker', 55000, () => out.includes(disk.marker));
    console.log(`test disk -> marker (plain QEMU): ${Date.now() - t0} ms`);
    expect(out).toMatch(/Linux version 6\./); // the kernel came from the disk: QEMU was given none
  });
});

const USERS = ['alice'];
describeIf(
  [...localUsers(USERS, "a tenant's VM from its default pool"), virshTool(), ...launcherRequirements(), disk],
  "the test disk as a volume of a tenant's default pool, through virtgate",
  () => {
    let vg: RunningQemuDaemon;
    const virsh = (...args: string[]): Promise<Result> => exec([...asUser('alice', vg.home), 'virsh', '-c', `${vg.uri}&tenant=acme`, ...args]);
    beforeAll(async () => {
      vg = await startQemuDaemon({ policy: 'g, unix:root, host-admin, *\ng, alice, owner, acme\n', conf: 'unixSocketMode = 0o666\n', otherUsers: true });
    });
    afterAll(async () => vg?.stop());

    test("alice's VM boots from guest.img in acme's default pool to the marker", async () => {
      expect((await virsh('pool-list', '--name')).out.trim()).toBe('default'); // provisioned on first need
      const dir = path.join(vg.home, 'lib', 'pools', 'acme', 'default');
      fs.copyFileSync(disk.disk!, path.join(dir, 'guest.img'));
      expect((await virsh('pool-refresh', 'default')).rc).toBe(0);
      // The host's own `default` holds a different file of the same name: the VM must not get it.
      fs.writeFileSync(path.join(vg.home, 'lib', 'images', 'default', 'guest.img'), Buffer.alloc(1 << 20));
      const xml = path.join(vg.home, 'd1.xml');
      fs.writeFileSync(
        xml,
        `<domain type='qemu'><name>d1</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os><devices>
  <disk type='volume' device='disk'><driver name='qemu' type='raw'/><source pool='default' volume='guest.img'/><target dev='vda' bus='virtio'/></disk>
  <serial type='pty'/><memballoon model='none'/></devices></domain>\n`,
      );
      fs.chmodSync(xml, 0o644);
      const t0 = Date.now();
      for (const a of [
        ['define', xml],
        ['start', 'd1'],
      ]) {
        const r = await virsh(...a);
        expect({ a, rc: r.rc, err: r.err }).toEqual({ a, rc: 0, err: '' });
      }
      const uuid = (await virsh('domuuid', 'd1')).out.trim();
      const log = vg.serialLog(uuid);
      await until('marker', 55000, () => fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes(disk.marker));
      console.log(`test disk -> marker (virtgate, tenant volume): ${Date.now() - t0} ms`);
      expect((await virsh('destroy', 'd1')).rc).toBe(0);
    });
  },
);
