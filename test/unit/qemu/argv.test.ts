// SPDX-License-Identifier: Apache-2.0
// QEMU argv from a typed config: within the launcher's policy (descriptors only, fixed -sandbox, -S), and accepted by QEMU 7.2.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkArgv } from '../../../src/launcher/argv';
import { SANDBOX, argvDigest, buildArgv } from '../../../src/privileged/drivers/qemu/argv';
import { qemuConfigOf } from '../../../src/privileged/drivers/qemu/config';
import { dx } from '../../helpers/domain-def';

const cfg = qemuConfigOf(
  dx(`<domain type='qemu'><name>web1</name><uuid>11111111-2222-3333-4444-555555555555</uuid><memory unit='MiB'>256</memory>
  <currentMemory unit='MiB'>128</currentMemory><vcpu current='1'>2</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type><kernel>/k</kernel><initrd>/i</initrd><cmdline>console=ttyS0 quiet</cmdline></os>
  <features><acpi/></features><clock offset='utc'/><on_reboot>destroy</on_reboot>
  <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/p/top.qcow2'/><target dev='vda' bus='virtio'/></disk>
  <disk type='file' device='cdrom'><target dev='sda' bus='sata'/></disk>
  <interface type='user'><mac address='52:54:00:01:02:03'/></interface><serial type='pty'/><graphics type='vnc'/>
  <memballoon model='virtio'/><rng model='virtio'><backend model='random'>/dev/urandom</backend></rng><input type='tablet' bus='usb'/>
  <channel type='unix'><source mode='bind' path='/var/lib/libvirt/qemu/x.agent'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel></devices></domain>`),
);
// Helper-side descriptors 40.. become QEMU's 3.. in message order.
const plan = {
  qmp: 40,
  serial: 41,
  agent: 47,
  kernel: 42,
  initrd: 43,
  disks: [
    [
      { fd: 44, format: 'qcow2' as const, readOnly: false },
      { fd: 45, format: 'qcow2' as const, readOnly: true },
      { fd: 46, format: 'raw' as const, readOnly: true },
    ],
    null,
  ],
};

test('every resource is a descriptor, in message order; the backing chain is explicit', () => {
  const b = buildArgv(cfg, plan);
  expect(b.fds).toEqual([40, 42, 43, 41, 44, 45, 46, 47]);
  const a = b.argv;
  const after = (opt: string) => a.filter((_, i) => a[i - 1] === opt);
  expect(after('-sandbox')).toEqual([SANDBOX]);
  expect(a).toContain('-S');
  expect(a).toContain('-no-shutdown');
  expect(after('-action')).toEqual(['reboot=shutdown']);
  expect(after('-name')).toEqual(['guest=web1,debug-threads=on']);
  expect(after('-chardev')).toEqual([
    'socket,id=charmonitor,fd=3,server=on,wait=off',
    'socket,id=charserial0,fd=6,server=on,wait=off',
    'socket,id=charchannel0,fd=10,server=on,wait=off',
  ]);
  expect(after('-serial')).toEqual(['chardev:charserial0']);
  expect(after('-kernel')).toEqual(['/proc/self/fd/4']);
  expect(after('-initrd')).toEqual(['/proc/self/fd/5']);
  expect(after('-append')).toEqual(['console=ttyS0 quiet']);
  expect(after('-add-fd')).toEqual(['fd=7,set=1,opaque=vda-0', 'fd=8,set=2,opaque=vda-1', 'fd=9,set=3,opaque=vda-2']);
  const bd = after('-blockdev').map((j) => JSON.parse(j) as Record<string, unknown>);
  // Bottom first: each backing node exists before the layer above names it.
  expect(bd.filter((x) => x.driver === 'file').map((x) => [x.filename, x['read-only']])).toEqual([
    ['/dev/fdset/3', true],
    ['/dev/fdset/2', true],
    ['/dev/fdset/1', false],
  ]);
  expect(bd.filter((x) => x.driver !== 'file').map((x) => [x['node-name'], x.driver, x.backing])).toEqual([
    ['libvirt-3-format', 'raw', undefined],
    ['libvirt-2-format', 'qcow2', 'libvirt-3-format'],
    ['libvirt-1-format', 'qcow2', 'libvirt-2-format'],
  ]);
  expect(after('-device')).toEqual([
    'virtio-blk-pci,drive=libvirt-1-format,id=virtio-disk0',
    'ide-cd,bus=ide.0,id=sata0-0-1',
    'virtio-net-pci,netdev=hostnet0,id=net0,mac=52:54:00:01:02:03',
    'VGA,id=video0',
    'qemu-xhci,id=usb',
    'usb-tablet,id=input0,bus=usb.0,port=1',
    'virtio-serial-pci,id=virtio-serial0',
    'virtserialport,bus=virtio-serial0.0,nr=1,chardev=charchannel0,id=channel0,name=org.qemu.guest_agent.0',
    'virtio-balloon-pci,id=balloon0',
    'virtio-rng-pci,rng=objrng0,id=rng0',
  ]);
  // No host path anywhere: only /proc/self/fd/N and /dev/fdset/N name files.
  for (const x of a) for (const p of x.match(/\/[A-Za-z0-9_./-]+/g) ?? []) expect(p).toMatch(/^\/(proc\/self\/fd|dev\/fdset)\/[0-9]+$/);
  expect(a.some((x) => /^-(drive|hda|cdrom|monitor|qmp|runas|chroot|daemonize|pidfile|plugin|readconfig)$/.test(x))).toBe(false);
  expect(b.digest).toBe(argvDigest(a));
  expect(b.digest).toMatch(/^[0-9a-f]{64}$/);
});

test("the launcher's argv policy accepts the generated argv (its own checker)", () => {
  const b = buildArgv(cfg, plan);
  expect(() => checkArgv(b.argv, b.fds.length)).not.toThrow();
  const bare = buildArgv(
    { ...cfg, disks: [], nets: [], vnc: false, tablet: false, rng: false, balloon: false, serial: false, guestAgent: false, kernel: null, initrd: null },
    { ...plan, disks: [] },
  );
  expect(() => checkArgv(bare.argv, bare.fds.length)).not.toThrow();
});

test('a planned resource without its descriptor is a bug, not a path', () => {
  expect(() => buildArgv(cfg, { ...plan, kernel: null })).toThrow(/kernel planned without a descriptor/);
  expect(() => buildArgv(cfg, { ...plan, serial: null })).toThrow(/serial planned without a descriptor/);
  expect(() => buildArgv(cfg, { ...plan, agent: null })).toThrow(/guest agent channel planned without a descriptor/);
});

const EMU = '/usr/bin/qemu-system-x86_64';
(fs.existsSync(EMU) ? test : test.skip)('QEMU 7.2 starts (paused) on the full argv: disks, chain, devices, all through descriptors', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-argv-'));
  const files: number[] = [];
  try {
    execFileSync('qemu-img', ['create', '-q', '-f', 'raw', path.join(dir, 'base.raw'), '16M']);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', 'base.raw', path.join(dir, 'mid.qcow2')]);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', 'mid.qcow2', path.join(dir, 'top.qcow2')]);
    const open = (f: string, flags: string) => (files.push(fs.openSync(path.join(dir, f), flags)), files[files.length - 1]);
    // QEMU must never open the chain by name: move it away once the descriptors are open.
    const real = {
      qmp: open('k', 'w+'),
      serial: null,
      agent: open('a', 'w+'),
      kernel: null,
      initrd: null,
      disks: [
        [
          { fd: open('top.qcow2', 'r+'), format: 'qcow2' as const, readOnly: false },
          { fd: open('mid.qcow2', 'r'), format: 'qcow2' as const, readOnly: true },
          { fd: open('base.raw', 'r'), format: 'raw' as const, readOnly: true },
        ],
        null,
      ],
    };
    for (const f of ['top.qcow2', 'mid.qcow2', 'base.raw']) fs.renameSync(path.join(dir, f), path.join(dir, `moved-${f}`));
    const noKernel = { ...cfg, kernel: null, initrd: null, cmdline: null, serial: false };
    const b = buildArgv(noKernel, real);
    // The monitor and agent descriptors are plain files here: swap them for null chardevs (this run checks everything else).
    const argv = b.argv.map((x) => x.replace(/^socket,id=(charmonitor|charchannel0),.*$/, 'null,id=$1'));
    const q = spawn(EMU, argv, { stdio: ['ignore', 'ignore', 'pipe', ...b.fds] });
    let err = '';
    q.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = await Promise.race([new Promise((r) => q.once('exit', (c) => r(c))), new Promise((r) => setTimeout(() => r('running'), 1500))]);
    q.kill('SIGKILL');
    q.stderr!.destroy();
    expect({ exited, err }).toEqual({ exited: 'running', err: '' });
  } finally {
    for (const fd of files) fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
