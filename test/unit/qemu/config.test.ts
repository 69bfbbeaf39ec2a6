// SPDX-License-Identifier: Apache-2.0
// The QEMU driver's domain subset: what maps to a QemuConfig, and each refusal naming its element.
import { confineQemu, qemuConfigOf } from '../../../src/privileged/drivers/qemu/config';
import { dx } from '../../helpers/domain-def';

const dom = (devices = '', extra = '', type = 'qemu') =>
  dx(`<domain type='${type}'><name>vm1</name><uuid>11111111-2222-3333-4444-555555555555</uuid><memory unit='MiB'>512</memory>
  <currentMemory unit='MiB'>384</currentMemory><vcpu current='1'>4</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>/boot/k</kernel><initrd>/boot/i</initrd><cmdline>console=ttyS0</cmdline><boot dev='hd'/></os>
  <features><acpi/><apic/></features>${extra}<clock offset='utc'/><on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot>
  <devices>${devices}</devices></domain>`);

const refusal = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    return `${(e as { code: string }).code}: ${(e as { detail: string }).detail}`;
  }
  return 'accepted';
};

test('the issue subset maps to a typed config', () => {
  const cfg = qemuConfigOf(
    dom(`<emulator>/usr/bin/qemu-system-x86_64</emulator>
      <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/var/lib/vg/a.qcow2'/><target dev='vda' bus='virtio'/><boot order='1'/></disk>
      <disk type='volume' device='disk'><source pool='p1' volume='v1'/><target dev='vdb' bus='virtio'/><readonly/></disk>
      <disk type='file' device='cdrom'><target dev='sda' bus='sata'/></disk>
      <controller type='usb' model='qemu-xhci'/><controller type='sata'/>
      <interface type='network'><source network='default'/><mac address='52:54:00:aa:bb:cc'/></interface>
      <interface type='user'><model type='e1000'/></interface>
      <interface type='bridge'><source bridge='br0'/></interface>
      <serial type='pty'/><console type='pty'/><graphics type='vnc'/><video><model type='virtio'/></video>
      <memballoon model='virtio'/><rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
      <input type='tablet' bus='usb'/><input type='mouse' bus='ps2'/>`),
  );
  expect(cfg).toMatchObject({
    accel: 'tcg',
    machine: 'pc',
    maxMemKiB: 524288n,
    curMemKiB: 393216n,
    vcpus: 1,
    vcpusMax: 4,
    kernel: '/boot/k',
    initrd: '/boot/i',
    cmdline: 'console=ttyS0',
    acpi: true,
    serial: true,
    vnc: true,
    video: 'virtio',
    balloon: true,
    rng: true,
    tablet: true,
  });
  expect(cfg.disks).toEqual([
    { target: 'vda', device: 'disk', bus: 'virtio', format: 'qcow2', readOnly: false, source: { kind: 'file', path: '/var/lib/vg/a.qcow2' }, bootIndex: 1 },
    { target: 'vdb', device: 'disk', bus: 'virtio', format: 'raw', readOnly: true, source: { kind: 'volume', pool: 'p1', volume: 'v1' }, bootIndex: null },
    { target: 'sda', device: 'cdrom', bus: 'sata', format: 'raw', readOnly: true, source: null, bootIndex: null },
  ]);
  expect(cfg.nets.map((n) => [n.kind, n.model, n.bridge])).toEqual([
    ['user', 'virtio', null],
    ['user', 'e1000', null],
    ['bridge', 'virtio', 'br0'],
  ]);
  expect(cfg.nets[0].mac).toBe('52:54:00:aa:bb:cc');
  expect(qemuConfigOf(dom('', '', 'kvm')).accel).toBe('kvm');
});

test.each([
  ['a device outside the subset', dom("<sound model='ich9'/>"), /<sound> device/],
  ['a host device', dom("<hostdev mode='subsystem' type='pci'/>"), /<hostdev> device/],
  ['a serial on a host file', dom("<serial type='file'><source path='/tmp/x'/></serial>"), /<serial type='file'>/],
  ['spice graphics', dom("<graphics type='spice'/>"), /<graphics type='spice'> \(vnc only\)/],
  ['a block disk', dom("<disk type='block' device='disk'><source dev='/dev/sda'/><target dev='vda' bus='virtio'/></disk>"), /<disk> type='block'/],
  ['a scsi disk', dom("<disk type='file' device='disk'><source file='/a'/><target dev='sda' bus='scsi'/></disk>"), /bus 'scsi'/],
  ['a floppy', dom("<disk type='file' device='floppy'><source file='/a'/><target dev='fda'/></disk>"), /device='floppy'/],
  [
    'a vmdk disk',
    dom("<disk type='file' device='disk'><driver name='qemu' type='vmdk'/><source file='/a'/><target dev='vda' bus='virtio'/></disk>"),
    /type='vmdk'/,
  ],
  ['a network other than default', dom("<interface type='network'><source network='lan'/></interface>"), /network 'lan'/],
  ['a direct interface', dom("<interface type='direct'><source dev='eth0'/></interface>"), /type='direct'/],
  ['an other emulator', dom('<emulator>/tmp/qemu</emulator>'), /<emulator>\/tmp\/qemu<\/emulator>/],
  ['a numatune', dom('', "<numatune><memory mode='strict' nodeset='0'/></numatune>"), /<numatune>/],
])('refused: %s', (_what, def, why) => {
  expect(refusal(() => qemuConfigOf(def))).toMatch(new RegExp(`^VG_ERR_CONFIG_UNSUPPORTED: .*${why.source}`));
});

test('domain type, arch, machine and lifecycle actions outside the subset are refused by name', () => {
  const base = dom();
  expect(refusal(() => qemuConfigOf({ ...base, type: 'xen' }))).toBe(
    "VG_ERR_CONFIG_UNSUPPORTED: domain type 'xen' (this host runs 'qemu' and, where usable, 'kvm')",
  );
  expect(refusal(() => qemuConfigOf({ ...base, arch: 'aarch64' }))).toBe("VG_ERR_CONFIG_UNSUPPORTED: architecture 'aarch64'");
  expect(refusal(() => qemuConfigOf({ ...base, machine: 'virt' }))).toBe("VG_ERR_CONFIG_UNSUPPORTED: machine 'virt' (q35 or pc)");
  expect(qemuConfigOf({ ...base, machine: 'pc-q35-7.2' }).machine).toBe('q35');
  expect(qemuConfigOf({ ...base, machine: 'pc-i440fx-7.2' }).machine).toBe('pc');
  expect(refusal(() => qemuConfigOf({ ...base, onCrash: 'coredump-destroy' }))).toBe('VG_ERR_CONFIG_UNSUPPORTED: <on_crash>coredump-destroy</on_crash>');
  expect(refusal(() => qemuConfigOf({ ...base, osExtra: [{ tag: 'loader', attrs: {}, text: '/x', kids: [] }] }))).toBe(
    'VG_ERR_CONFIG_UNSUPPORTED: <os><loader>',
  );
  expect(
    refusal(() => qemuConfigOf({ ...base, top: [{ tag: 'features', attrs: {}, text: '', kids: [{ tag: 'hyperv', attrs: {}, text: '', kids: [] }] }] })),
  ).toBe('VG_ERR_CONFIG_UNSUPPORTED: <features><hyperv>');
  // qemu:commandline (a top-level element of another namespace) never reaches QEMU.
  expect(refusal(() => qemuConfigOf({ ...base, top: [{ tag: 'qemu:commandline', attrs: {}, text: '', kids: [] }] }))).toBe(
    'VG_ERR_CONFIG_UNSUPPORTED: <qemu:commandline>',
  );
});

test("a tenant's VM names no kernel path and no bridge (its disks: the driver's pool check)", () => {
  const withFile = qemuConfigOf(dom("<disk type='file' device='disk'><source file='/etc/shadow'/><target dev='vda' bus='virtio'/></disk>"));
  expect(refusal(() => confineQemu(withFile, 'acme'))).toMatch(/^VG_ERR_RESOURCE_DENIED: <os><kernel>\/<initrd> name host paths/);
  const bridged = qemuConfigOf(dom("<interface type='bridge'><source bridge='br0'/></interface>"));
  expect(refusal(() => confineQemu({ ...bridged, kernel: null, initrd: null }, 'acme'))).toMatch(/bridge 'br0' \(host admins only\)/);
  expect(refusal(() => confineQemu(withFile, ''))).toBe('accepted');
});

test("the guest agent channel virt-manager and virt-install add: a virtio-serial port on the helper's socket; other channels refused", () => {
  const agent = "<channel type='unix'><source mode='bind'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>";
  expect(qemuConfigOf(dom(agent)).guestAgent).toBe(true);
  expect(qemuConfigOf(dom('')).guestAgent).toBe(false);
  expect(refusal(() => qemuConfigOf(dom(agent + agent)))).toBe('VG_ERR_CONFIG_UNSUPPORTED: a second guest agent <channel>');
  expect(refusal(() => qemuConfigOf(dom("<channel type='spicevmc'><target type='virtio' name='com.redhat.spice.0'/></channel>")))).toBe(
    "VG_ERR_CONFIG_UNSUPPORTED: <channel type='spicevmc'> (unix only)",
  );
  expect(refusal(() => qemuConfigOf(dom("<channel type='unix'><target type='virtio' name='org.example.x'/></channel>")))).toMatch(
    /VG_ERR_CONFIG_UNSUPPORTED: <channel> other than/,
  );
  expect(refusal(() => qemuConfigOf(dom("<channel type='unix'><target type='guestfwd' address='10.0.2.1' port='80'/></channel>")))).toMatch(
    /<channel> other than/,
  );
});
