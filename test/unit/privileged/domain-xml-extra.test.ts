// SPDX-License-Identifier: Apache-2.0
// Domain XML beyond the basics: cpusets as virBitmapParse reads them, pins, tunes, typed disks and interfaces.
import { DriverError } from '../../../src/privileged/drivers/driver';
import { formatBitmap, parseBitmap, parseDomainXml } from '../../../src/privileged/drivers/domain-xml';

const dom = (inner: string, vcpu = '<vcpu>2</vcpu>') =>
  `<domain type='test'><name>x</name><memory>1024</memory>${vcpu}${inner}<os><type>hvm</type></os></domain>`;

function fails(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof DriverError) return `${e.code}: ${e.detail}`;
    throw e;
  }
  throw new Error('expected a DriverError');
}

describe('bitmaps (libvirt 9.0 virBitmapParse, measured with virsh define on test:///default)', () => {
  test.each([
    ['1-3,^2,5000', '1,3,5000'],
    ['0-1,^0', '1'],
    [' 1 - 3 , 5', '1-3,5'],
    ['1,', '1'],
    ['16383', '16383'],
  ])('%j -> %j', (text, want) => expect(formatBitmap(parseBitmap(text))).toBe(want));

  test.each(['aaa', '70000', '16384', '3-1', '', ' ', '1,,2', '0-', 'r', '^1-2', '-1', '1 2', '1;2'])('%j is refused with libvirt words', (text) => {
    expect(fails(() => parseBitmap(text))).toBe(`VG_ERR_DOMAIN_ARG: Failed to parse bitmap '${text}'`);
  });

  test("<vcpu cpuset='aaa'> fails the define as libvirt's does; an all-clear cpuset is refused too", () => {
    expect(fails(() => parseDomainXml(dom('', "<vcpu cpuset='aaa'>2</vcpu>")))).toBe("VG_ERR_DOMAIN_ARG: Failed to parse bitmap 'aaa'");
    expect(fails(() => parseDomainXml(dom('', "<vcpu cpuset='1,^1'>2</vcpu>")))).toBe(
      "VG_ERR_XML_DETAIL: unsupported configuration: Invalid value of 'cpuset': 1,^1",
    );
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
    expect(def.nets).toEqual([
      { type: 'network', mac: '52:54:00:ab:cd:01', network: 'default', bridge: null, ifname: null, model: 'virtio' },
      { type: 'bridge', mac: null, network: null, bridge: 'br0', ifname: 'vnet0', model: null },
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
