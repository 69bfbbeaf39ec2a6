// SPDX-License-Identifier: Apache-2.0
// Domain stats, pinning, tuning, metadata and XML fidelity: real virsh and python3-libvirt against virtgate and against
// libvirt's own test:///default, compared line for line (figures libvirt derives from the wall clock masked).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { type Result, exec, referenceVirsh } from '../helpers/users';
import { describeIf, pyLibvirt, virshTool } from '../helpers/skip';

const run = promisify(execFile);
const PY = '/usr/bin/python3';

const virsh = (uri: string, ...args: string[]): Promise<Result> => exec(['virsh', '-c', uri, ...args]);

// The wall-clock counters (vcpuinfo CPU time, domblkstat, domifstat), uuids, generated MACs, and live ids (the
// lifecycle scripts restart `test` in our daemon, which a fresh test:///default does not remember).
const mask = (s: string): string =>
  s
    .replace(/^(CPU time:\s+)[0-9.]+s$/gm, '$1Ns')
    .replace(/^(\S+ (?:rd|wr|rx|tx)_\w+ |\S+ errs )[0-9]+$/gm, '$1N')
    .replace(/<uuid>[^<]*<\/uuid>/g, '<uuid/>')
    .replace(/52:54:00(:[0-9a-f]{2}){3}/g, '52:54:00:GEN')
    .replace(/^Id:(\s+)[0-9]+$/gm, 'Id:$1N')
    .replace(/^ [0-9]+(\s+test\s)/gm, ' N$1');

describeIf(virshTool(), 'virsh: domain stats, tuning and XML against test:///default', () => {
  let vg: RunningDaemon;
  const cmp = async (script: string): Promise<void> => {
    const ours = await virsh(vg.uri, script);
    const theirs = await referenceVirsh(script);
    expect({ script, rc: ours.rc, out: mask(ours.out), err: ours.err }).toEqual({ script, rc: theirs.rc, out: mask(theirs.out), err: theirs.err });
  };

  beforeAll(async () => {
    vg = await startDaemon({ tcp: true, policy: 'g, unix:root, host-admin, *\ng, tcp:anonymous, host-admin, *\n' });
  });
  afterAll(async () => vg?.stop());

  // Each script runs in one virsh session, so a fresh test:///default sees the same sequence as our daemon. Scripts
  // that change state restore it at their end (our daemon keeps state between them; test:///default does not).
  test.each([
    'vcpuinfo test',
    'vcpupin test',
    'vcpupin test --vcpu 1',
    'vcpupin test --vcpu 5',
    'emulatorpin test',
    'emulatorpin test --config',
    'domblkstat test vda',
    'domblkstat test /guest/diskimage1',
    'domblkstat test vdz',
    'domifstat test testnet0',
    'domifstat test aa:bb:cc:dd:ee:ff',
    'domifstat test eth9',
    'dommemstat test',
    'domblkinfo test vda',
    'domblkinfo test vdz',
    'domblkinfo test --all',
    'domcontrol test',
    'domblkerror test',
    'domhostname test',
    'domstats test',
    'domstats',
    'domstats --state --list-running',
    'domstats --list-inactive',
    'domstats --balloon --enforce',
    'domfsinfo test',
    'domifaddr test',
    'domifaddr test --source arp',
    'schedinfo test',
    'schedinfo test --config',
    'schedinfo test --set weight=10',
    'memtune test',
    'memtune test --config',
    'blkiotune test',
    'numatune test',
    'dominfo test',
  ])('%s', async (script) => cmp(script));

  test.each([
    'memtune test --hard-limit 400000 --config; memtune test --config; memtune test --hard-limit 1 --swap-hard-limit 0; memtune test --hard-limit 9007199254740991 --config',
    'blkiotune test --weight 300 --device-weights /dev/sda,100; blkiotune test; blkiotune test --device-weights /dev/sda; blkiotune test --device-read-iops-sec /dev/sda,x; blkiotune test --weight 0 --device-weights /dev/sda,0',
    'numatune test --nodeset x; numatune test --mode interleave; numatune test --nodeset 1 --mode strict --config; numatune test --config; numatune test --nodeset 0 --config',
    'vcpupin test 1 2-3; vcpupin test; vcpuinfo test; vcpupin test 1 0-7',
    'emulatorpin test 1 --config; emulatorpin test --config; emulatorpin test 0-7 --config',
    'desc test; desc test --title; desc test hello; desc test --title T1; desc test; desc test --title; desc test ""; desc test --title ""',
    'metadata test --uri urn:x --key x --set \'<info a="1"><b>t</b></info>\'; metadata test --uri urn:x; metadata test --uri urn:y; metadata test --uri urn:x --remove; metadata test --uri urn:x',
  ])('%s', async (script) => cmp(script));

  test('define + dumpxml keep what libvirt keeps (machine, features, clock, devices), in its order and layout', async () => {
    const file = path.join(vg.home, 'rich.xml');
    fs.writeFileSync(
      file,
      `<domain type='test'><name>rich</name><memory unit='MiB'>512</memory><vcpu cpuset='1-3,^2,5'>2</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='cdrom'/><bootmenu enable='yes'/></os>
  <features><acpi/><apic/><pae/></features><cpu mode='host-model'/>
  <clock offset='localtime'><timer name='rtc' tickpolicy='catchup'/></clock>
  <on_poweroff>preserve</on_poweroff><on_crash>restart</on_crash><pm><suspend-to-mem enabled='no'/></pm>
  <memtune><hard_limit unit='G'>2</hard_limit></memtune>
  <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/var/lib/libvirt/images/r.qcow2'/><target dev='vda' bus='virtio'/></disk>
  <disk type='block' device='cdrom'><source dev='/dev/sr0'/><target dev='hdc' bus='ide'/><readonly/></disk>
  <disk type='file'><source file='/b'/><target dev='sdb'/></disk>
  <interface type='network'><source network='default'/><model type='virtio'/></interface><interface type='bridge'><source bridge='br0'/></interface>
  <serial type='pty'><target port='0'/></serial><console type='pty'><target type='serial' port='0'/></console>
  <input type='tablet' bus='usb'/><graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'/><video><model type='vga' vram='16384' heads='1'/></video>
  <memballoon model='virtio'/></devices></domain>\n`,
    );
    await cmp(`define ${file}; dumpxml rich; dumpxml rich --inactive; undefine rich`);
  });

  test('bad input: bitmaps, units, enums, as libvirt words them', async () => {
    const bad = (name: string, inner: string, vcpu = '<vcpu>1</vcpu>') => {
      const file = path.join(vg.home, `${name}.xml`);
      fs.writeFileSync(file, `<domain type='test'><name>${name}</name><memory>1024</memory>${vcpu}${inner}<os><type>hvm</type></os></domain>\n`);
      return file;
    };
    for (const file of [
      bad('b1', '', "<vcpu cpuset='aaa'>2</vcpu>"),
      bad('b2', '', "<vcpu cpuset='70000'>2</vcpu>"),
      bad('b3', "<cputune><emulatorpin cpuset='3-1'/></cputune>"),
      bad('b4', "<numatune><memory mode='strict' nodeset='x'/></numatune>"),
    ])
      await cmp(`define ${file}`);
  });
  // Last: these restart `test`, so its id differs from a fresh test:///default afterwards.
  test.each([
    'autostart test; dominfo test; list --all --autostart; autostart test --disable; dominfo test',
    'reset test; destroy test; reset test; start test',
    'managedsave test; dominfo test; domstate test --reason; list --all --managed-save; start test; dominfo test; managedsave test; managedsave-remove test; dominfo test; start test',
    'domrename test t2; destroy test; domrename test t2; dominfo t2; domrename t2 te/st; domrename t2 test; start test',
    // A managed-save image refuses a plain undefine; --managed-save removes both (leaves `test` undefined: keep last).
    'managedsave test; undefine test; dominfo test; undefine test --managed-save; list --all',
  ])('%s', async (script) => cmp(script));
});

describeIf(pyLibvirt(), 'python3-libvirt: domain stats, tuning and metadata against test:///default', () => {
  let vg: RunningDaemon;
  beforeAll(async () => (vg = await startDaemon()));
  afterAll(async () => vg?.stop());

  test('every call answers as test:///default does, errors included', async () => {
    const facts = async (uri: string): Promise<Record<string, unknown>> =>
      JSON.parse((await run(PY, [path.join(__dirname, 'py', 'domain_extra.py'), uri], { timeout: 30000 })).stdout);
    const ours = await facts(vg.uri);
    expect(ours).toEqual(await facts('test:///default'));
    expect(ours.maxMemory).toBe(8388608);
    expect(ours.allStats).toEqual([['test', { 'state.state': 1, 'state.reason': 0 }]]);
  });
});
