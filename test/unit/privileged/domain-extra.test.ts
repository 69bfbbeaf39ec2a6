// SPDX-License-Identifier: Apache-2.0
// Domain stats, pinning and tuning reads of the test driver: libvirt 9.0's test-driver figures and error texts.
import fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ControlAction, uuidFromString } from '../../../src/ipc/program';
import { DriverError } from '../../../src/privileged/drivers/driver';
import { TestDriver } from '../../../src/privileged/drivers/test-driver';
import { dx, failsWith, xmlOf } from '../../helpers/domain-def';
import { metadataElementOf, metadataElementXml } from '../../../src/unprivileged/xml/domain';
import type { TestDomainExtra } from '../../../src/privileged/drivers/test-domain-extra';

// What the front end does around the helper's metadata calls: an element is parsed (and formatted) there.
type Aff = { live: boolean; config: boolean };
function mdSet(x: TestDomainExtra, uuid: Buffer, type: number, value: string | null, key: string | null, uri: string | null, f: Aff): void {
  if (type === 2 && value !== null) x.setMetadata(uuid, 2, null, metadataElementOf(value, key, uri ?? ''), uri, f);
  else x.setMetadata(uuid, type, value, null, uri, f);
}
function mdGet(x: TestDomainExtra, uuid: Buffer, type: number, uri: string | null, f: Aff): string {
  const r = x.metadata(uuid, type, uri, f);
  return r.element ? metadataElementXml(r.element) : r.value;
}

const TEST_UUID = uuidFromString('6695eb01-f6a4-8304-79aa-97f2502e193f')!;
const PIN_UUID = uuidFromString('0d46d412-f292-416c-8b9a-ea26480a531f')!;
const PIN = `<domain type='test'><name>pin</name><uuid>0d46d412-f292-416c-8b9a-ea26480a531f</uuid><memory unit='MiB'>1024</memory>
  <memtune><soft_limit unit='M'>100</soft_limit><hard_limit>300000</hard_limit></memtune>
  <blkiotune><weight>500</weight><device><path>/dev/sda</path><weight>300</weight><read_bytes_sec>1000</read_bytes_sec></device></blkiotune>
  <numatune><memory mode='interleave' nodeset='0-1'/></numatune>
  <vcpu cpuset='1-3,5'>3</vcpu><cputune><vcpupin vcpu='1' cpuset='2-3'/><vcpupin vcpu='7' cpuset='1'/><emulatorpin cpuset='1'/></cputune>
  <os><type>hvm</type></os>
  <devices><disk type='file' device='cdrom'><target dev='hdc'/></disk><disk type='block'><source dev='/dev/sdb'/><target dev='sdb'/></disk>
  <interface type='bridge'><mac address='52:54:0:1:2:3'/><source bridge='br0'/><target dev='vnet7'/></interface></devices></domain>`;

let dir: string;
const NOW = 1_700_000_000_000; // ms; libvirt's counters use microseconds
const open = () => new TestDriver({ stateDir: path.join(dir, 'state'), runtimeDir: path.join(dir, 'run'), now: () => NOW, warn: () => {} });

function fails(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof DriverError) return `${e.code}: ${e.detail}`;
    return failsWith(() => {
      throw e;
    }); // the front end's parser (metadata XML): a VgError
  }
  throw new Error('expected a DriverError');
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-extra-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const US = BigInt(NOW) * 1000n;
const flags = { live: false, config: false };

describe('the seeded domain `test` answers as test:///default', () => {
  test('block and interface counters derive from the clock in microseconds', () => {
    const x = open().domainExtra;
    expect(x.blockStats(TEST_UUID, 'vda')).toEqual({ rdReq: US / 10n, rdBytes: US / 20n, wrReq: US / 30n, wrBytes: US / 40n, errs: US / 2000000n });
    expect(x.blockStats(TEST_UUID, '/guest/diskimage1').rdReq).toBe(US / 10n);
    expect(x.interfaceStats(TEST_UUID, 'testnet0').txPackets).toBe(US / 110n);
    expect(x.interfaceStats(TEST_UUID, 'AA:BB:CC:DD:EE:FF').rxDrop).toBe(US / 2000000n);
  });

  test('memory stats, block info, disk errors, fs info, addresses', () => {
    const x = open().domainExtra;
    expect(x.memoryStats(TEST_UUID, 13).map((s) => [s.tag, s.val])).toEqual([
      [6, 2097152n],
      [0, 0n],
      [1, 0n],
      [2, 0n],
      [3, 0n],
      [4, 1048576n],
      [5, 2097152n],
      [8, 1048576n],
      [9, 627319920n],
      [10, 262144n],
      [11, 0n],
      [12, 0n],
      [7, 1048576n],
    ]);
    expect(x.memoryStats(TEST_UUID, 2)).toHaveLength(2);
    expect(x.blockInfo(TEST_UUID, 'vda')).toEqual({ capacity: 1099506450432n, allocation: 1099511627776n, physical: 1099511627776n });
    expect(x.diskErrors(TEST_UUID, 256)).toEqual({ errors: [{ disk: 'vda', error: 1 }], nerrors: 1 });
    expect(x.diskErrors(TEST_UUID, 0)).toEqual({ errors: [], nerrors: 1 });
    expect(x.fsInfo(TEST_UUID)).toEqual([
      { mountpoint: '/', name: 'vda1', fstype: 'ext4', devAliases: ['vda'] },
      { mountpoint: '/boot', name: 'vda2', fstype: 'ext4', devAliases: ['vda'] },
    ]);
    expect(x.interfaceAddresses(TEST_UUID, 0)).toEqual([
      { name: 'testnet0', hwaddr: 'aa:bb:cc:dd:ee:ff', addrs: [{ type: 0, addr: '192.168.122.3', prefix: 24 }] },
    ]);
  });

  test('vCPUs: all 16 host CPUs, the last one, cpu time = µs / 10; pin info per vCPU', () => {
    const x = open().domainExtra;
    const all = Array.from({ length: 16 }, (_, i) => i);
    expect(x.vcpus(TEST_UUID, 8)).toEqual({
      info: [0, 1].map((n) => ({ number: n, state: 1, cpuTimeNs: US / 10n, cpu: 15 })),
      maps: [all, all],
    });
    expect(x.vcpus(TEST_UUID, 1).info).toHaveLength(1);
    expect(x.vcpuPinInfo(TEST_UUID, 8, flags)).toEqual([all, all]);
    expect(x.emulatorPinInfo(TEST_UUID, flags)).toEqual(all);
  });

  test('tuning defaults: unlimited memory, empty blkio, strict numa, scheduler weight 50', () => {
    const x = open().domainExtra;
    expect(x.tuning(TEST_UUID, 'memory', flags).map((p) => p.value)).toEqual([9007199254740991n, 9007199254740991n, 9007199254740991n]);
    expect(x.tuning(TEST_UUID, 'blkio', flags).map((p) => p.value)).toEqual([0, '', '', '', '', '']);
    expect(x.tuning(TEST_UUID, 'numa', flags)).toEqual([
      { field: 'numa_mode', type: 1, value: 0 },
      { field: 'numa_nodeset', type: 7, value: '' },
    ]);
    expect(x.tuning(TEST_UUID, 'scheduler', flags)).toEqual([{ field: 'weight', type: 2, value: 50 }]);
  });
});

describe('a defined domain with pins and tunes', () => {
  test('pins: per-vCPU, then the <vcpu cpuset>, emulator pin; out-of-range vcpupin ignored', () => {
    const d = open();
    d.define(dx(PIN), '');
    const x = d.domainExtra;
    expect(x.vcpuPinInfo(PIN_UUID, 16, flags)).toEqual([
      [1, 2, 3, 5],
      [2, 3],
      [1, 2, 3, 5],
    ]);
    expect(x.vcpuPinInfo(PIN_UUID, 1, flags)).toHaveLength(1);
    expect(x.emulatorPinInfo(PIN_UUID, flags)).toEqual([1]);
    expect(fails(() => x.vcpuPinInfo(PIN_UUID, 3, { live: true, config: false }))).toBe('VG_ERR_DOMAIN_STATE: domain is not running');
    expect(fails(() => x.vcpus(PIN_UUID, 3))).toBe('VG_ERR_DOMAIN_STATE: cannot list vcpus for an inactive domain');
    d.control(PIN_UUID, ControlAction.START);
    expect(x.vcpus(PIN_UUID, 3).info.map((i) => i.cpu)).toEqual([5, 3, 5]);
    expect(xmlOf(d.xml(PIN_UUID, false))).toContain(
      "<vcpu placement='static' cpuset='1-3,5'>3</vcpu>\n  <cputune>\n    <vcpupin vcpu='1' cpuset='2-3'/>\n    <emulatorpin cpuset='1'/>\n  </cputune>\n  <numatune>\n    <memory mode='interleave' nodeset='0-1'/>\n  </numatune>\n  <os>",
    );
  });

  test('tunes read back, and keep through the XML as libvirt writes it', () => {
    const d = open();
    d.define(dx(PIN), '');
    const x = d.domainExtra;
    expect(x.tuning(PIN_UUID, 'memory', flags).map((p) => p.value)).toEqual([300000n, 102400n, 9007199254740991n]);
    expect(x.tuning(PIN_UUID, 'blkio', flags).map((p) => p.value)).toEqual([500, '/dev/sda,300', '', '', '/dev/sda,1000', '']);
    expect(x.tuning(PIN_UUID, 'numa', flags).map((p) => p.value)).toEqual([2, '0-1']);
    expect(xmlOf(d.xml(PIN_UUID, false))).toContain(`  <currentMemory unit='KiB'>1048576</currentMemory>
  <blkiotune>
    <weight>500</weight>
    <device>
      <path>/dev/sda</path>
      <weight>300</weight>
      <read_bytes_sec>1000</read_bytes_sec>
    </device>
  </blkiotune>
  <memtune>
    <hard_limit unit='KiB'>300000</hard_limit>
    <soft_limit unit='KiB'>102400</soft_limit>
  </memtune>
  <vcpu`);
  });

  test('stats and their refusals, in libvirt words', () => {
    const d = open();
    d.define(dx(PIN), '');
    const x = d.domainExtra;
    expect(fails(() => x.blockStats(PIN_UUID, 'sdb'))).toBe('VG_ERR_DOMAIN_STATE: domain is not running');
    expect(fails(() => x.blockStats(PIN_UUID, ''))).toBe('VG_ERR_OP_UNSUPPORTED: summary statistics are not supported yet');
    expect(x.blockInfo(PIN_UUID, '/dev/sdb').physical).toBe(1099511627776n); // no running check in libvirt either
    expect(fails(() => x.blockInfo(PIN_UUID, 'hdc'))).toBe("VG_ERR_DOMAIN_ARG: disk 'hdc' does not currently have a source assigned");
    expect(fails(() => x.blockInfo(PIN_UUID, 'vdz'))).toBe('VG_ERR_DOMAIN_ARG: invalid path vdz not assigned to domain');
    d.control(PIN_UUID, ControlAction.START);
    expect(fails(() => x.blockStats(PIN_UUID, 'vdz'))).toBe('VG_ERR_DOMAIN_ARG: invalid path: vdz');
    expect(fails(() => x.interfaceStats(PIN_UUID, 'eth9'))).toBe("VG_ERR_DOMAIN_ARG: 'eth9' is not a known interface");
    expect(x.interfaceStats(PIN_UUID, '52:54:00:01:02:03').rxBytes).toBe(US / 10n);
    expect(x.memoryStats(PIN_UUID, 13)).toEqual([]); // no memballoon
    expect(x.fsInfo(PIN_UUID)[0].name).toBe('sdb1'); // the first disk of device 'disk'
    expect(x.diskErrors(PIN_UUID, 5).errors).toEqual([
      { disk: 'sdb', error: 1 }, // libvirt orders disks by drive index: sdb (1) before hdc (2)
      { disk: 'hdc', error: 2 },
    ]);
    expect(x.interfaceAddresses(PIN_UUID, 2)).toEqual([{ name: 'vnet7', hwaddr: '52:54:00:01:02:03', addrs: [{ type: 0, addr: '192.168.0.1', prefix: 24 }] }]);
    expect(fails(() => x.interfaceAddresses(PIN_UUID, 3))).toBe('VG_ERR_ARG_UNSUPPORTED: Unknown IP address data source 3');
    expect(fails(() => x.tuning(PIN_UUID, 'memory', { live: true, config: true }))).toMatch(/mutually exclusive/);
  });
});

describe('tuning and pinning writes', () => {
  test('memtune: set, read back, persisted in the config XML; libvirt refusals', () => {
    const d = open();
    d.define(dx(PIN), '');
    const x = d.domainExtra;
    x.setTuning(PIN_UUID, 'memory', [{ field: 'hard_limit', type: 4, value: 400000n }], { live: false, config: true });
    expect(x.tuning(PIN_UUID, 'memory', flags)[0].value).toBe(400000n);
    expect(xmlOf(d.xml(PIN_UUID, true))).toContain("<hard_limit unit='KiB'>400000</hard_limit>");
    expect(
      fails(() =>
        x.setTuning(
          PIN_UUID,
          'memory',
          [
            { field: 'hard_limit', type: 4, value: 1n },
            { field: 'swap_hard_limit', type: 4, value: 0n },
          ],
          flags,
        ),
      ),
    ).toBe('VG_ERR_DOMAIN_ARG: memory hard_limit tunable value must be lower than or equal to swap_hard_limit');
    expect(fails(() => x.setTuning(PIN_UUID, 'memory', [{ field: 'foo', type: 4, value: 1n }], flags))).toBe(
      "VG_ERR_ARG_UNSUPPORTED: parameter 'foo' not supported",
    );
    expect(fails(() => x.setTuning(PIN_UUID, 'memory', [{ field: 'hard_limit', type: 2, value: 1 }], flags))).toBe(
      "VG_ERR_DOMAIN_ARG: invalid type 'uint' for parameter 'hard_limit', expected 'ullong'",
    );
    x.setTuning(PIN_UUID, 'memory', [{ field: 'soft_limit', type: 4, value: 9007199254740991n }], flags);
    expect(xmlOf(d.xml(PIN_UUID, true))).not.toContain('soft_limit'); // unlimited is not written
  });

  test('blkiotune merges device lists by path; bad lists refused whole', () => {
    const d = open();
    d.define(dx(PIN), '');
    const x = d.domainExtra;
    x.setTuning(
      PIN_UUID,
      'blkio',
      [
        { field: 'weight', type: 2, value: 200 },
        { field: 'device_weight', type: 7, value: '/dev/sdb,100,/dev/sda,0' },
      ],
      flags,
    );
    expect(x.tuning(PIN_UUID, 'blkio', flags).map((p) => p.value)).toEqual([200, '/dev/sdb,100', '', '', '/dev/sda,1000', '']);
    expect(fails(() => x.setTuning(PIN_UUID, 'blkio', [{ field: 'device_weight', type: 7, value: '/dev/sdb' }], flags))).toBe(
      "VG_ERR_DOMAIN_ARG: unable to parse blkio device 'device_weight' '/dev/sdb'",
    );
    expect(fails(() => x.setTuning(PIN_UUID, 'blkio', [{ field: 'device_read_iops_sec', type: 7, value: '/dev/sdb,x' }], flags))).toBe(
      "VG_ERR_DOMAIN_ARG: invalid value 'x' for parameter 'device_read_iops_sec' of device '/dev/sdb'",
    );
  });

  test('numatune: mode and nodeset; a running domain keeps its mode', () => {
    const d = open();
    d.define(dx(PIN), '');
    const x = d.domainExtra;
    x.setTuning(
      PIN_UUID,
      'numa',
      [
        { field: 'numa_mode', type: 1, value: 0 },
        { field: 'numa_nodeset', type: 7, value: '1' },
      ],
      { live: false, config: true },
    );
    expect(xmlOf(d.xml(PIN_UUID, true))).toContain("<memory mode='strict' nodeset='1'/>");
    expect(fails(() => x.setTuning(PIN_UUID, 'numa', [{ field: 'numa_mode', type: 1, value: 7 }], flags))).toBe(
      "VG_ERR_DOMAIN_ARG: unsupported numatune mode: '7'",
    );
    expect(fails(() => x.setTuning(PIN_UUID, 'numa', [{ field: 'numa_nodeset', type: 7, value: 'x' }], flags))).toBe(
      "VG_ERR_DOMAIN_ARG: Failed to parse bitmap 'x'",
    );
    d.control(PIN_UUID, ControlAction.START);
    expect(fails(() => x.setTuning(PIN_UUID, 'numa', [{ field: 'numa_mode', type: 1, value: 2 }], flags))).toBe(
      "VG_ERR_DOMAIN_STATE: can't change numatune mode for running domain",
    );
  });

  test('scheduler: a weight is accepted and nothing kept, anything else refused', () => {
    const x = open().domainExtra;
    x.setTuning(TEST_UUID, 'scheduler', [{ field: 'weight', type: 2, value: 10 }], flags);
    expect(x.tuning(TEST_UUID, 'scheduler', flags)[0].value).toBe(50);
    expect(fails(() => x.setTuning(TEST_UUID, 'scheduler', [{ field: 'cap', type: 2, value: 1 }], flags))).toBe(
      "VG_ERR_ARG_UNSUPPORTED: parameter 'cap' not supported",
    );
  });

  test('vcpu and emulator pins: live only for vCPUs, survive a restart of the driver', () => {
    let d = open();
    d.domainExtra.pinVcpu(TEST_UUID, 1, [2, 3]);
    d.domainExtra.pinEmulator(TEST_UUID, [0], { live: false, config: true });
    expect(fails(() => d.domainExtra.pinVcpu(TEST_UUID, 2, [1]))).toBe("VG_ERR_DOMAIN_ARG: requested vcpu '2' is not present in the domain");
    expect(fails(() => d.domainExtra.pinEmulator(TEST_UUID, [], flags))).toBe('VG_ERR_DOMAIN_ARG: Empty cpu list for pinning');
    d.close();
    d = open();
    expect(d.domainExtra.vcpuPinInfo(TEST_UUID, 2, flags)[1]).toEqual([2, 3]);
    expect(d.domainExtra.emulatorPinInfo(TEST_UUID, { live: false, config: true })).toEqual([0]);
    expect(d.domainExtra.emulatorPinInfo(TEST_UUID, { live: true, config: false })).toHaveLength(16);
    d.control(TEST_UUID, ControlAction.DESTROY);
    expect(fails(() => d.domainExtra.pinVcpu(TEST_UUID, 0, [1]))).toBe('VG_ERR_DOMAIN_STATE: cannot pin vcpus on an inactive domain');
    d.close();
  });
});

describe('metadata: description, title, elements of any namespace (as virsh desc / metadata on test:///default)', () => {
  test('set, get, remove; live and config kept apart', () => {
    const d = open();
    const x = d.domainExtra;
    expect(fails(() => mdGet(x, TEST_UUID, 0, null, flags))).toBe('VG_ERR_NO_METADATA: Requested metadata element is not present');
    mdSet(x, TEST_UUID, 0, 'hello & world', null, null, flags);
    mdSet(x, TEST_UUID, 1, 'T1', null, null, flags);
    expect(mdGet(x, TEST_UUID, 0, null, flags)).toBe('hello & world');
    expect(mdGet(x, TEST_UUID, 1, null, flags)).toBe('T1');
    expect(fails(() => mdGet(x, TEST_UUID, 0, null, { live: false, config: true }))).toMatch(/not present/); // live only
    mdSet(x, TEST_UUID, 2, '<info a="1"><b>t</b></info>', 'x', 'urn:x', flags);
    expect(mdGet(x, TEST_UUID, 2, 'urn:x', flags)).toBe('<info a="1">\n  <b>t</b>\n</info>');
    expect(xmlOf(d.xml(TEST_UUID, false))).toContain('  <metadata>\n    <x:info xmlns:x="urn:x" a="1">\n      <x:b>t</x:b>\n    </x:info>\n  </metadata>\n');
    expect(fails(() => mdGet(x, TEST_UUID, 2, 'urn:y', flags))).toMatch(/not present/);
    mdSet(x, TEST_UUID, 2, null, null, 'urn:x', flags);
    expect(fails(() => mdGet(x, TEST_UUID, 2, 'urn:x', flags))).toMatch(/not present/);
    mdSet(x, TEST_UUID, 0, 'cfg', null, null, { live: false, config: true });
    expect(xmlOf(d.xml(TEST_UUID, true))).toContain('<description>cfg</description>');
    mdSet(x, TEST_UUID, 0, '', null, null, { live: false, config: true });
    expect(xmlOf(d.xml(TEST_UUID, true))).not.toContain('<description>');
  });

  test('defined metadata reads back without its prefix; bad input refused; our tenant namespace is not writable here', () => {
    const d = open();
    d.define(
      dx(`<domain type='test'><name>m</name><uuid>0d46d412-f292-416c-8b9a-ea26480a531f</uuid><memory>1024</memory><os><type>hvm</type></os>
       <metadata><app:info xmlns:app='urn:app' v='1'><k>v &amp; w</k><app:z/></app:info><other xmlns='urn:o'/><plain/></metadata></domain>`),
      '',
    );
    const x = d.domainExtra;
    expect(mdGet(x, PIN_UUID, 2, 'urn:app', flags)).toBe('<info v="1">\n  <k>v &amp; w</k>\n  <z/>\n</info>');
    expect(mdGet(x, PIN_UUID, 2, 'urn:o', flags)).toBe('<other/>');
    expect(xmlOf(d.xml(PIN_UUID, false))).not.toContain('plain'); // no namespace: libvirt drops it
    expect(fails(() => mdSet(x, PIN_UUID, 2, '<bad', 'x', 'urn:x', flags))).toMatch(/^VG_ERR_XML_INVALID/);
    expect(fails(() => mdSet(x, PIN_UUID, 2, '<a/>', '1x', 'urn:x', flags))).toBe(
      'VG_ERR_XML_DETAIL: internal error: failed to validate prefix for a new XML namespace',
    );
    expect(fails(() => mdSet(x, PIN_UUID, 2, '<tenant>acme</tenant>', 'vg', 'https://virtgate.dev/xmlns/tenant/1', flags))).toMatch(/set-tenant/);
    expect(fails(() => mdSet(x, PIN_UUID, 0, 'd', null, null, { live: true, config: false }))).toBe('VG_ERR_DOMAIN_STATE: domain is not running');
  });
});

describe('autostart, reset, managed save, rename (as the test driver simulates them)', () => {
  test('autostart is kept across a driver restart and shows in the info', () => {
    let d = open();
    d.domainExtra.setAutostart(TEST_UUID, true);
    expect(d.info(TEST_UUID).autostart).toBe(true);
    d.close();
    d = open();
    expect(d.info(TEST_UUID).autostart).toBe(true);
    d.domainExtra.setAutostart(TEST_UUID, false);
    expect(d.info(TEST_UUID).autostart).toBe(false);
    d.close();
  });

  test('reset needs a running domain and changes nothing', () => {
    const d = open();
    d.domainExtra.reset(TEST_UUID);
    expect(d.info(TEST_UUID).state).toBe(1);
    d.control(TEST_UUID, ControlAction.DESTROY);
    expect(fails(() => d.domainExtra.reset(TEST_UUID))).toBe('VG_ERR_DOMAIN_STATE: domain is not running');
  });

  test('managed save stops the domain (saved), the image is remembered until start or removal', () => {
    const d = open();
    const events: [number, number][] = [];
    d.onLifecycle((e) => events.push([e.event, e.detail]));
    d.domainExtra.managedSave(TEST_UUID);
    expect(d.info(TEST_UUID)).toMatchObject({ state: 5, reason: 5, hasManagedSave: true, id: -1 });
    expect(events).toEqual([[5, 4]]); // STOPPED / SAVED
    expect(fails(() => d.domainExtra.managedSave(TEST_UUID))).toBe('VG_ERR_DOMAIN_STATE: domain is not running');
    d.control(TEST_UUID, ControlAction.START);
    expect(d.info(TEST_UUID).hasManagedSave).toBe(false);
    d.domainExtra.managedSave(TEST_UUID);
    d.domainExtra.managedSaveRemove(TEST_UUID);
    expect(d.info(TEST_UUID).hasManagedSave).toBe(false);
  });

  test('rename: shut-off persistent only, name clashes refused, two events', () => {
    const d = open();
    d.define(dx(PIN), '');
    const events: [string, number, number][] = [];
    d.onLifecycle((e) => events.push([e.domain.name, e.event, e.detail]));
    expect(fails(() => d.domainExtra.rename(TEST_UUID, 'x', ''))).toBe('VG_ERR_DOMAIN_STATE: cannot rename active domain');
    expect(fails(() => d.domainExtra.rename(PIN_UUID, 'test', ''))).toBe("VG_ERR_DOMAIN_EXISTS: domain with name 'test' already exists");
    d.domainExtra.rename(PIN_UUID, 'pin2', '');
    expect(events).toEqual([
      ['pin', 1, 1],
      ['pin2', 0, 2],
    ]);
    expect(d.lookup({ kind: 0, name: 'pin2' }).uuid).toEqual(PIN_UUID);
    expect(xmlOf(d.xml(PIN_UUID, true))).toContain('<name>pin2</name>');
  });
});
