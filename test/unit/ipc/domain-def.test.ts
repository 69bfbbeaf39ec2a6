// SPDX-License-Identifier: Apache-2.0
// The typed domain definition's IPC codec: what the front end's parser produces round-trips exactly (and through the
// helper's JSON files); every truncation is refused; trees are bounded; the derived views are never taken from the wire.
import { type DomainDef, decodeDomainDef, domainDefFromJson, domainDefToJson, encodeDomainDef } from '../../../src/ipc/objects/domain-def';
import { parseDomainXml } from '../../../src/unprivileged/xml/domain';
import { TEST_DOMAIN_DEF } from '../../../src/privileged/drivers/test-driver';

const RICH = `<domain type='kvm'><name>rich</name><uuid>0d46d412-f292-416c-8b9a-ea26480a531f</uuid><title>t</title>
  <description>d &amp; e</description><metadata><app:i xmlns:app='urn:app' x='1'><k>v</k></app:i></metadata>
  <memory unit='GiB'>2</memory><currentMemory unit='MiB'>1024</currentMemory><vcpu cpuset='0-3,^2' current='2'>4</vcpu>
  <cputune><vcpupin vcpu='1' cpuset='5'/><emulatorpin cpuset='1-2'/></cputune>
  <memtune><hard_limit>100000</hard_limit></memtune><blkiotune><weight>500</weight><device><path>/dev/sda</path><read_bytes_sec>7</read_bytes_sec></device></blkiotune>
  <numatune><memory mode='interleave' nodeset='0-1'/></numatune>
  <os><type arch='x86_64' machine='pc'>hvm</type><loader readonly='yes'>/x</loader><boot dev='cdrom'/><bootmenu enable='yes'/></os>
  <features><acpi/><apic/></features><cpu mode='host-passthrough'/><clock offset='localtime'><timer name='rtc' tickpolicy='catchup'/></clock>
  <on_crash>restart</on_crash><pm><suspend-to-mem enabled='no'/></pm>
  <devices><disk type='volume' device='disk'><source pool='p' volume='v'/><target dev='vda'/></disk>
  <interface type='network'><mac address='52:54:00:AA:bb:0c'/><source network='default'/><model type='virtio'/></interface>
  <graphics type='vnc' passwd='s3cret'/><memballoon model='none'/></devices><seclabel type='none'/></domain>`;

const roundTrip = (d: DomainDef) => decodeDomainDef(encodeDomainDef(d));

test('a rich definition and the seed domain round-trip exactly, also through the helper JSON files', () => {
  const rich = parseDomainXml(RICH);
  for (const d of [rich, TEST_DOMAIN_DEF]) {
    expect(roundTrip(d)).toEqual(d);
    expect(domainDefFromJson(domainDefToJson(d))).toEqual(d);
  }
  // An attribute named __proto__ (the parser refuses it; a forged tree may carry it) stays an attribute.
  const proto = { ...rich, metadata: [{ ...rich.metadata[0], attrs: Object.fromEntries([...Object.entries(rich.metadata[0].attrs), ['__proto__', 'x']]) }] };
  const back = roundTrip(proto).metadata[0].attrs;
  expect(Object.keys(back)).toEqual(['xmlns:app', 'x', '__proto__']);
  expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
  expect(() => parseDomainXml(RICH.replace("x='1'", "__proto__='1'"))).toThrow(/^XML error: /);
  expect(rich.disks).toEqual([{ type: 'volume', device: 'disk', source: 'p/v', pool: 'p', volume: 'v', target: 'vda', bus: 'virtio' }]);
});

test('every truncation of an encoded definition is refused', () => {
  const buf = encodeDomainDef(parseDomainXml(RICH));
  for (let n = 0; n < buf.length; n += 4) expect(() => decodeDomainDef(buf.subarray(0, n))).toThrow();
  expect(() => decodeDomainDef(Buffer.concat([buf, Buffer.alloc(4)]))).toThrow(); // trailing bytes
});

test('the typed disk and interface views come from the devices on the wire, never from the sender', () => {
  const d = parseDomainXml(RICH);
  const lying = { ...d, disks: [], nets: [], memballoon: true };
  const got = roundTrip(lying);
  expect(got.disks).toEqual(d.disks);
  expect(got.nets[0]).toMatchObject({ mac: '52:54:00:aa:bb:0c', network: 'default' });
  expect(got.memballoon).toBe(false);
});

test.each([
  ['a name outside the domain-name rule', { name: '../x' }],
  ['a non-canonical uuid', { uuid: '0D46D412-F292-416C-8B9A-EA26480A531F' }],
  ['an unknown domain type', { type: 'evil' }],
  ['an unknown architecture', { arch: 'pdp11' }],
  ['zero memory', { maxMemKiB: 0n, curMemKiB: 0n }],
  ['more vCPUs in use than the maximum', { vcpus: 5 }],
  ['an unsorted CPU mask', { cpumask: [3, 1] }],
  ['an empty CPU mask', { cpumask: [] }],
  ['a numa nodeset that is not canonical', { numatune: { mode: 0, nodeset: '1,0' } }],
  ['a title with a newline', { title: 'a\nb' }],
  ['a boot device libvirt does not know', { boot: ['usb'] }],
  ['a malformed tenant', { tenant: '-x' }],
] as [string, Partial<DomainDef>][])('%s is refused by the decoder', (_what, patch) => {
  expect(() => roundTrip({ ...parseDomainXml(RICH), ...patch })).toThrow(/helper IPC field/);
});
