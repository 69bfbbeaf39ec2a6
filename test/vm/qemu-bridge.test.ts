// SPDX-License-Identifier: Apache-2.0
// Bridged interfaces: the launcher makes a tap on an existing bridge and hands its descriptor over; QEMU gets
// `-netdev tap,fd=N` (no name, script or helper) from inside its own network namespace. The tap is enslaved to the
// bridge while the VM runs and gone once it stops. A name that is not a bridge, or not a name, is refused.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { LauncherClient } from '../../src/privileged/launcher-client';
import { type RunningQemuDaemon, startQemuDaemon } from '../helpers/daemon';
import { testGuest } from '../helpers/guest';
import { launcherRequirements } from '../helpers/launcher';
import { describeIf, tool, virshTool } from '../helpers/skip';
import { type Result, exec } from '../helpers/users';

const guestReq = testGuest();
const guest = guestReq.guest;
const BR = `vgbr${randomBytes(3).toString('hex')}`;
const ip = (...a: string[]): string => execFileSync('ip', a, { encoding: 'utf8' });
const ports = (): string[] => (fs.existsSync(`/sys/class/net/${BR}/brif`) ? fs.readdirSync(`/sys/class/net/${BR}/brif`) : []);

describeIf([virshTool(), tool('ip', 'iproute2'), ...launcherRequirements(), guestReq], 'bridged interfaces (taps from the launcher)', () => {
  let vg: RunningQemuDaemon;
  const v = (...a: string[]): Promise<Result> => exec(['virsh', '-c', vg.uri, ...a]);
  const xml = (name: string, bridge: string): string => {
    const f = path.join(vg.home, `${name}.xml`);
    fs.writeFileSync(
      f,
      `<domain type='qemu'><name>${name}</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type><kernel>${guest!.kernel}</kernel><initrd>${guest!.initrd}</initrd>
  <cmdline>console=ttyS0</cmdline></os><devices><interface type='bridge'><source bridge='${bridge}'/><model type='virtio'/></interface>
  <serial type='pty'/></devices></domain>\n`,
    );
    return f;
  };

  beforeAll(async () => {
    ip('link', 'add', BR, 'type', 'bridge');
    ip('link', 'set', BR, 'up');
    vg = await startQemuDaemon({ policy: 'g, unix:root, host-admin, *\n' });
  });
  afterAll(async () => {
    await vg?.stop();
    try {
      ip('link', 'del', BR);
    } catch {
      // already gone
    }
  });

  test('start: a tap enslaved to the bridge, held by QEMU as a descriptor; the guest boots; destroy: the tap is gone', async () => {
    expect((await v('define', xml('br1', BR))).rc).toBe(0);
    const r = await v('start', 'br1');
    expect({ rc: r.rc, err: r.err }).toEqual({ rc: 0, err: '' });
    const taps = ports();
    expect(taps).toHaveLength(1);
    expect(taps[0]).toMatch(/^vgtap\d+$/);
    expect(fs.readFileSync(`/sys/class/net/${taps[0]}/operstate`, 'utf8').trim()).not.toBe('down');
    // QEMU (in its own network namespace, where no such interface exists) holds /dev/net/tun.
    const uuid = (await v('domuuid', 'br1')).out.trim();
    const procs = fs.readFileSync(path.join('/sys/fs/cgroup/pids', vg.launcher.cgroupRoot, '_host', `vm-${uuid}`, 'cgroup.procs'), 'utf8');
    const qemu = procs
      .split('\n')
      .filter(Boolean)
      .map(Number)
      .find((p) => fs.readlinkSync(`/proc/${p}/exe`) === '/usr/bin/qemu-system-x86_64')!;
    const fds = fs.readdirSync(`/proc/${qemu}/fd`).map((f) => fs.readlinkSync(`/proc/${qemu}/fd/${f}`));
    expect(fds).toContain('/dev/net/tun');
    expect(fs.readlinkSync(`/proc/${qemu}/ns/net`)).not.toBe(fs.readlinkSync('/proc/self/ns/net'));
    const log = vg.serialLog(uuid);
    const t0 = Date.now();
    while (!(fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes(guest!.marker))) {
      if (Date.now() - t0 > 55000) throw new Error('no marker');
      await new Promise((res) => setTimeout(res, 200));
    }
    expect((await v('destroy', 'br1')).rc).toBe(0);
    const t1 = Date.now();
    while (ports().length > 0 && Date.now() - t1 < 2000) await new Promise((res) => setTimeout(res, 50));
    expect(ports()).toEqual([]);
    expect(fs.existsSync(`/sys/class/net/${taps[0]}`)).toBe(false);
  });

  test('not a bridge (lo), or no such interface: start refused, nothing left behind', async () => {
    for (const [name, bridge, why] of [
      ['br2', 'lo', /'lo' is not a bridge on this host/],
      ['br3', 'vgnosuchbr0', /'vgnosuchbr0' is not a bridge on this host/],
    ] as const) {
      expect((await v('define', xml(name, bridge))).rc).toBe(0);
      const r = await v('start', name);
      expect(r.rc).toBe(1);
      expect(r.err).toMatch(why);
      expect((await v('domstate', name)).out.trim()).toBe('shut off');
    }
    expect(ports()).toEqual([]);
  });

  test('the launcher refuses a tap request naming a path, from its allowed peer too', async () => {
    const c = await LauncherClient.connect(vg.launcher.socket);
    try {
      await expect(c.tap('../../etc')).rejects.toThrow(/bridge: not an interface name/);
    } finally {
      c.close();
    }
  });
});
