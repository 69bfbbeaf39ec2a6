// SPDX-License-Identifier: Apache-2.0
// Domain XML beyond the basics: cpusets as virBitmapParse reads them, pins, tunes, typed disks and interfaces.
import { formatBitmap, formatDomainXml, parseBitmap, parseDomainXml } from '../../../../src/unprivileged/xml/domain';
import { failsWith } from '../../../helpers/domain-def';

const dom = (inner: string, vcpu = '<vcpu>2</vcpu>') =>
  `<domain type='test'><name>x</name><memory>1024</memory>${vcpu}${inner}<os><type>hvm</type></os></domain>`;

const fails = failsWith;

describe('bitmaps (libvirt 9.0 virBitmapParse, measured with virsh define on test:///default)', () => {
  test.each([
    ['1-3,^2,5000', '1,3,5000'],
    ['0-1,^0', '1'],
    [' 1 - 3 , 5', '1-3,5'],
    ['1,', '1'],
    ['16383', '16383'],
  ])('%j -> %j', (text, want) => expect(formatBitmap(parseBitmap(text)!)).toBe(want));

  test.each(['aaa', '70000', '16384', '3-1', '', ' ', '1,,2', '0-', 'r', '^1-2', '-1', '1 2', '1;2'])(
    '%j is refused (callers word it as libvirt does)',
    (text) => {
      expect(parseBitmap(text)).toBeNull();
    },
  );

  test("<vcpu cpuset='aaa'> fails the define as libvirt's does; an all-clear cpuset is refused too", () => {
    expect(fails(() => parseDomainXml(dom('', "<vcpu cpuset='aaa'>2</vcpu>")))).toBe("VG_ERR_DOMAIN_ARG: Failed to parse bitmap 'aaa'");
    expect(fails(() => parseDomainXml(dom('', "<vcpu cpuset='1,^1'>2</vcpu>")))).toBe("VG_ERR_CONFIG_UNSUPPORTED: Invalid value of 'cpuset': 1,^1");
  });

  test('vcpupin: duplicates, missing attributes, a bad vcpu number', () => {
    const pin = (p: string) => parseDomainXml(dom(`<cputune>${p}</cputune>`));
    expect(fails(() => pin("<vcpupin vcpu='0' cpuset='1'/><vcpupin vcpu='0' cpuset='2'/>"))).toBe(
      "VG_ERR_XML_DETAIL: internal error: duplicate vcpupin for vcpu '0'",
    );
    expect(fails(() => pin("<vcpupin cpuset='1'/>"))).toBe("VG_ERR_XML_INVALID: Missing required attribute 'vcpu' in element 'vcpupin'");
    expect(fails(() => pin("<vcpupin vcpu='x' cpuset='1'/>"))).toMatch(/Invalid value for attribute 'vcpu' in element 'vcpupin': 'x'/);
    expect(fails(() => pin("<vcpupin vcpu='0'/>"))).toBe('VG_ERR_XML_DETAIL: internal error: missing cpuset for vcpupin');
    expect(fails(() => pin("<emulatorpin cpuset='bad'/>"))).toBe("VG_ERR_DOMAIN_ARG: Failed to parse bitmap 'bad'");
    expect(pin("<vcpupin vcpu='9' cpuset='1'/>").vcpuPins.size).toBe(0); // a pin for a missing vCPU is ignored
  });

  test('tunes: bad values and units are refused', () => {
    expect(fails(() => parseDomainXml(dom('<memtune><hard_limit>abc</hard_limit></memtune>')))).toBe(
      "VG_ERR_XML_INVALID: Invalid value 'abc' for element or attribute './memtune/hard_limit[1]'",
    );
    expect(fails(() => parseDomainXml(dom("<memtune><hard_limit unit='furlongs'>1</hard_limit></memtune>")))).toBe(
      "VG_ERR_DOMAIN_ARG: unknown suffix 'furlongs'",
    );
    expect(fails(() => parseDomainXml(dom("<numatune><memory mode='sometimes' nodeset='0'/></numatune>")))).toMatch(/Invalid value for attribute 'mode'/);
    expect(fails(() => parseDomainXml(dom("<numatune><memory nodeset='x'/></numatune>")))).toBe("VG_ERR_DOMAIN_ARG: Failed to parse bitmap 'x'");
  });
});

describe('typed devices', () => {
  test('disks and interfaces are exposed on the definition', () => {
    const def = parseDomainXml(
      `<domain type='test'><name>x</name><memory>1024</memory><os><type>hvm</type></os><devices>
        <disk type='volume' device='disk'><source pool='default' volume='a.img'/><target dev='vda' bus='virtio'/></disk>
        <disk type='file' device='cdrom'><target dev='hdc' bus='ide'/></disk>
        <interface type='network'><mac address='52:54:00:AB:cd:01'/><source network='default'/><model type='virtio'/></interface>
        <interface type='bridge'><source bridge='br0'/><target dev='vnet0'/></interface>
        <memballoon model='none'/></devices></domain>`,
    );
    expect(def.disks).toEqual([
      { type: 'volume', device: 'disk', source: 'default/a.img', pool: 'default', volume: 'a.img', target: 'vda', bus: 'virtio' },
      { type: 'file', device: 'cdrom', source: null, pool: null, volume: null, target: 'hdc', bus: 'ide' },
    ]);
    // A MAC is generated (52:54:00 prefix) and testnetN names given where the XML has none, as libvirt's test driver does.
    expect(def.nets).toEqual([
      { type: 'network', mac: '52:54:00:ab:cd:01', network: 'default', bridge: null, ifname: 'testnet0', model: 'virtio' },
      { type: 'bridge', mac: expect.stringMatching(/^52:54:00(:[0-9a-f]{2}){3}$/), network: null, bridge: 'br0', ifname: 'vnet0', model: null },
    ]);
    expect(def.memballoon).toBe(false);
  });

  test('a bad MAC address is refused', () => {
    expect(
      fails(() =>
        parseDomainXml(
          `<domain type='test'><name>x</name><memory>1024</memory><os><type>hvm</type></os><devices><interface type='network'><mac address='zz'/></interface></devices></domain>`,
        ),
      ),
    ).toBe("VG_ERR_XML_DETAIL: internal error: unable to parse mac address 'zz'");
  });
});

// Inputs and what `virsh -c test:///default define` + `dumpxml` printed for them (libvirt 9.0), uuid and generated MACs aside.
const RICH = `<domain type='test'>
  <name>d3</name>
  <memory unit='MiB'>512</memory>
  <vcpu>2</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <boot dev='cdrom'/>
    <boot dev='hd'/>
    <bootmenu enable='yes'/>
  </os>
  <features><acpi/><apic/><pae/></features>
  <cpu mode='host-model'/>
  <clock offset='localtime'><timer name='rtc' tickpolicy='catchup'/></clock>
  <on_poweroff>preserve</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>restart</on_crash>
  <pm><suspend-to-mem enabled='no'/></pm>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/d3.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='block' device='cdrom'>
      <source dev='/dev/sr0'/>
      <target dev='hdc' bus='ide'/>
      <readonly/>
    </disk>
    <disk type='volume' device='disk'>
      <source pool='default-pool' volume='v.img'/>
      <target dev='vdb'/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:11:22:33'/>
      <source network='default'/>
      <model type='virtio'/>
    </interface>
    <interface type='bridge'>
      <source bridge='br0'/>
    </interface>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <input type='tablet' bus='usb'/>
    <graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'/>
    <video><model type='vga' vram='16384' heads='1'/></video>
  </devices>
</domain>
`;
const RICH_LIBVIRT = `<domain type='test'>
  <name>d3</name>
  <uuid>500ac6b6-5eba-437d-839b-a92bd70c9c86</uuid>
  <memory unit='KiB'>524288</memory>
  <currentMemory unit='KiB'>524288</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <boot dev='cdrom'/>
    <boot dev='hd'/>
    <bootmenu enable='yes'/>
  </os>
  <features>
    <acpi/>
    <apic/>
    <pae/>
  </features>
  <cpu mode='host-model'/>
  <clock offset='localtime'>
    <timer name='rtc' tickpolicy='catchup'/>
  </clock>
  <on_poweroff>preserve</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>restart</on_crash>
  <pm>
    <suspend-to-mem enabled='no'/>
  </pm>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/d3.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='block' device='cdrom'>
      <source dev='/dev/sr0'/>
      <target dev='hdc' bus='ide'/>
      <readonly/>
      <address type='drive' controller='0' bus='1' target='0' unit='0'/>
    </disk>
    <disk type='volume' device='disk'>
      <source pool='default-pool' volume='v.img'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <controller type='ide' index='0'/>
    <interface type='network'>
      <mac address='52:54:00:11:22:33'/>
      <source network='default'/>
      <target dev='testnet0'/>
      <model type='virtio'/>
    </interface>
    <interface type='bridge'>
      <mac address='52:54:00:1c:67:58'/>
      <source bridge='br0'/>
      <target dev='testnet1'/>
    </interface>
    <serial type='pty'>
      <target port='0'/>
    </serial>
    <console type='pty'>
      <target type='serial' port='0'/>
    </console>
    <input type='tablet' bus='usb'/>
    <graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'>
      <listen type='address' address='127.0.0.1'/>
    </graphics>
    <video>
      <model type='vga' vram='16384' heads='1' primary='yes'/>
    </video>
  </devices>
</domain>
`;
const DRIVES = `<domain type='test'>
  <name>d4</name>
  <memory>524288</memory>
  <os><type>hvm</type></os>
  <devices>
    <memballoon model='virtio'/>
    <interface type='user'/>
    <disk type='file'><source file='/a'/><target dev='sdb'/></disk>
    <disk type='file' device='floppy'><source file='/f'/><target dev='fda'/></disk>
    <disk type='file'><source file='/b'/><target dev='hdd'/></disk>
    <disk type='file'><source file='/c'/><target dev='sdj'/></disk>
    <controller type='usb' index='0'/>
  </devices>
</domain>
`;
const DRIVES_LIBVIRT = `<domain type='test'>
  <name>d4</name>
  <uuid>a937f48f-997a-4a25-a23f-c9554539f116</uuid>
  <memory unit='KiB'>524288</memory>
  <currentMemory unit='KiB'>524288</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='i686'>hvm</type>
    <boot dev='hd'/>
  </os>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='floppy'>
      <source file='/f'/>
      <target dev='fda' bus='fdc'/>
      <address type='drive' controller='0' bus='0' target='0' unit='0'/>
    </disk>
    <disk type='file' device='disk'>
      <source file='/a'/>
      <target dev='sdb' bus='scsi'/>
      <address type='drive' controller='0' bus='0' target='0' unit='1'/>
    </disk>
    <disk type='file' device='disk'>
      <source file='/b'/>
      <target dev='hdd' bus='ide'/>
      <address type='drive' controller='0' bus='1' target='0' unit='1'/>
    </disk>
    <disk type='file' device='disk'>
      <source file='/c'/>
      <target dev='sdj' bus='scsi'/>
      <address type='drive' controller='1' bus='0' target='0' unit='2'/>
    </disk>
    <controller type='usb' index='0'/>
    <controller type='scsi' index='0'/>
    <controller type='scsi' index='1'/>
    <controller type='fdc' index='0'/>
    <controller type='ide' index='0'/>
    <interface type='user'>
      <mac address='52:54:00:37:4b:d3'/>
      <target dev='testnet0'/>
    </interface>
    <memballoon model='virtio'/>
  </devices>
</domain>
`;

describe('round trip against libvirt 9.0 test driver output', () => {
  const strip = (x: string) => x.replace(/<uuid>.*<\/uuid>/, '').replace(/<mac address='52:54:00:[^']*'\/>/g, "<mac address='52:54:00:GEN'/>");
  test.each([
    ['os machine, features, cpu, clock timers, pm, disks, interfaces, console, input, graphics, video', RICH, RICH_LIBVIRT],
    ['drive addresses, implicit controllers, device and disk order', DRIVES, DRIVES_LIBVIRT],
  ])('%s', (_what, input, want) => {
    const out = formatDomainXml(parseDomainXml(input), null);
    expect(strip(out)).toBe(strip(want));
  });

  test('disk order depends on the buses written, as in libvirt: its own output defined again moves vdb before hdc', () => {
    const again = formatDomainXml(parseDomainXml(formatDomainXml(parseDomainXml(RICH), null)), null);
    expect([...again.matchAll(/<target dev='([a-z]+)' bus/g)].map((m) => m[1])).toEqual(['vda', 'vdb', 'hdc']); // measured with virsh
  });

  test('client metadata of other namespaces is kept; a claimed virtgate tenant is not', () => {
    const xml = dom(
      "<metadata><app:info xmlns:app='urn:app'><k>v</k></app:info><vg:tenant xmlns:vg='https://virtgate.dev/xmlns/tenant/1'>acme</vg:tenant></metadata>",
    );
    const def = parseDomainXml(xml);
    expect(def.tenant).toBe('');
    expect(formatDomainXml(def, null)).toContain('  <metadata>\n    <app:info xmlns:app="urn:app">\n      <k>v</k>\n    </app:info>\n  </metadata>\n');
  });

  test('unknown elements are dropped, as libvirt drops them; the element count is capped', () => {
    const out = formatDomainXml(parseDomainXml(dom('<bogus/><devices><frobnicator/><input type="mouse" bus="ps2"/></devices>')), null);
    expect(out).not.toMatch(/bogus|frobnicator/);
    expect(out).toContain("<input type='mouse' bus='ps2'/>");
    expect(fails(() => parseDomainXml(dom(`<metadata><x:a xmlns:x='urn:x'>${'<b/>'.repeat(40001)}</x:a></metadata>`)))).toBe(
      'VG_ERR_XML_INVALID: more than 20000 elements',
    );
  });
});

describe("libvirt's QEMU namespace (<qemu:commandline> and friends)", () => {
  const QNS = 'http://libvirt.org/schemas/domain/qemu/1.0';
  const withNs = (decl: string, el: string) =>
    `<domain type='qemu' ${decl}><name>x</name><memory>1024</memory><vcpu>1</vcpu><os><type>hvm</type></os>${el}</domain>`;
  test.each([
    ['declared on the root', withNs(`xmlns:qemu='${QNS}'`, "<qemu:commandline><qemu:arg value='-runas'/></qemu:commandline>"), 'qemu:commandline'],
    ['another prefix', withNs(`xmlns:q='${QNS}'`, '<q:override/>'), 'q:override'],
    ['declared on the element', withNs('', `<qq:capabilities xmlns:qq='${QNS}'/>`), 'qq:capabilities'],
  ])('the qemu driver refuses it (%s), naming the element; the test driver drops it', (_label, xml, tag) => {
    expect(() => parseDomainXml(xml, { refuseQemuNamespace: true })).toThrow(`unsupported configuration: <${tag}> (QEMU passthrough is not offered`);
    expect(formatDomainXml(parseDomainXml(xml), null)).not.toContain(tag);
  });
  test('an element of another namespace that merely uses the prefix qemu is not mistaken for it', () => {
    expect(parseDomainXml(withNs("xmlns:qemu='https://example.com/other'", '<qemu:commandline/>'), { refuseQemuNamespace: true }).name).toBe('x');
  });
});
