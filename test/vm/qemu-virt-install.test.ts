// SPDX-License-Identifier: Apache-2.0
// virt-install (Debian virtinst 4.1) against the qemu driver: --disk size=1 makes a volume in the 'default' pool, --import
// --boot kernel=,initrd= boots the test guest to its marker on the serial log. One VM, cleaned up in afterAll.
import fs from 'node:fs';
import path from 'node:path';
import { type RunningQemuDaemon, startQemuDaemon } from '../helpers/daemon';
import { testGuest } from '../helpers/guest';
import { launcherRequirements } from '../helpers/launcher';
import { describeIf, tool, virshTool } from '../helpers/skip';
import { exec } from '../helpers/users';

jest.setTimeout(60000);
const guestReq = testGuest();
const override = process.env.VG_TEST_GUEST_DIR;
const guest = override
  ? { kernel: path.join(override, 'vmlinuz'), initrd: path.join(override, 'initrd.img'), marker: fs.readFileSync(path.join(override, 'marker'), 'utf8').trim() }
  : guestReq.guest;

describeIf([virshTool(), tool('virt-install', 'virtinst'), ...launcherRequirements(), guestReq], 'virt-install against the qemu driver', () => {
  let vg: RunningQemuDaemon;
  beforeAll(async () => {
    vg = await startQemuDaemon({ policy: 'g, unix:root, host-admin, *\n' });
  });
  afterAll(async () => vg?.stop());

  test('virt-install --disk size=1 --import --boot kernel=,initrd= boots the test guest to the marker', async () => {
    // The host's 'default' pool: the helper provisions it under its first admin pool root (issue 14).
    const info = await exec(['virsh', '-c', vg.uri, 'pool-dumpxml', 'default']);
    expect(info.out).toContain(`<path>${path.join(vg.home, 'lib', 'images', 'default')}</path>`);
    const t0 = Date.now();
    const r = await exec(
      [
        'virt-install',
        '--connect',
        vg.uri,
        '--name',
        'vi1',
        '--memory',
        '256',
        '--vcpus',
        '1',
        '--virt-type',
        'qemu',
        '--machine',
        'q35',
        '--osinfo',
        'detect=on,require=off',
        '--disk',
        'size=1', // qcow2 with metadata preallocation (flag 1), as virt-install asks by default
        '--import',
        '--boot',
        `kernel=${guest!.kernel},initrd=${guest!.initrd},kernel_args=console=ttyS0`,
        '--graphics',
        'none',
        '--network',
        'none',
        '--noautoconsole',
      ],
      60000,
    );
    if (r.rc !== 0) console.log(r.out, r.err);
    expect(r.rc).toBe(0);
    const uuid = (await exec(['virsh', '-c', vg.uri, 'domuuid', 'vi1'])).out.trim();
    const log = vg.serialLog(uuid);
    for (;;) {
      if (fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes(guest!.marker)) break;
      if (Date.now() - t0 > 55000) throw new Error(`no marker: ${fs.existsSync(log) ? fs.readFileSync(log, 'utf8').slice(-500) : 'no log'}`);
      await new Promise((res) => setTimeout(res, 200));
    }
    console.log(`virt-install -> marker: ${Date.now() - t0} ms`);
    expect((await exec(['virsh', '-c', vg.uri, 'destroy', 'vi1'])).rc).toBe(0);
    const vol = await exec(['virsh', '-c', vg.uri, 'vol-dumpxml', '--pool', 'default', 'vi1.qcow2']);
    expect(vol.out).toMatch(/<format type='qcow2'\/>/);
    expect(vol.out).toMatch(/<capacity unit='bytes'>1073741824<\/capacity>/);
  });

  test('metadata preallocation: qcow2 only, as libvirt (a raw volume is refused, nothing is left behind)', async () => {
    const raw = await exec(['virsh', '-c', vg.uri, 'vol-create-as', 'default', 'pre.raw', '1M', '--format', 'raw', '--prealloc-metadata']);
    expect(raw.rc).toBe(1);
    expect(raw.err).toMatch(/metadata preallocation is not supported for raw volumes/);
    expect(fs.existsSync(path.join(vg.home, 'lib', 'images', 'default', 'pre.raw'))).toBe(false);
    const q = await exec(['virsh', '-c', vg.uri, 'vol-create-as', 'default', 'pre.qcow2', '1G', '--format', 'qcow2', '--prealloc-metadata']);
    expect({ rc: q.rc, err: q.err }).toEqual({ rc: 0, err: '' });
    const map = JSON.parse((await exec(['qemu-img', 'map', '--output=json', path.join(vg.home, 'lib', 'images', 'default', 'pre.qcow2')])).out) as {
      data: boolean;
    }[];
    expect(map.every((e) => e.data)).toBe(true);
  });
});
