// SPDX-License-Identifier: Apache-2.0
// Interfaces, node devices and host facts (issue 12) through real virsh 9.0 and python3-libvirt, compared with libvirt's
// own test:///default: output, errors and exit codes line for line. Stateful sequences run as one virsh session on both
// sides (each test:///default process starts from the seed) and leave virtgate as they found it.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { type Result, exec, referenceVirsh } from '../helpers/users';
import { describeIf, pyLibvirt, virshTool } from '../helpers/skip';

const run = promisify(execFile);
const PY = '/usr/bin/python3'; // Debian's interpreter: python3-libvirt is installed for it
const FIXTURES = path.join(__dirname, '..', 'fixtures', 'host-objects');

const virsh = (uri: string, ...args: string[]): Promise<Result> => exec(['virsh', '-c', uri, ...args]);

describeIf(virshTool(), 'interfaces, node devices and host facts: virsh against virtgate and test:///default', () => {
  let vg: RunningDaemon;
  const same = async (...args: string[]) => {
    const ours = await virsh(vg.uri, ...args);
    const theirs = await referenceVirsh(...args);
    expect({ args, ...ours }).toEqual({ args, ...theirs });
    return ours;
  };

  beforeAll(async () => {
    vg = await startDaemon({ tcp: true, policy: 'g, unix:root, host-admin, *\ng, tcp:anonymous, host-admin, *\n' });
  });
  afterAll(async () => vg?.stop());

  test.each(
    [
      ['iface-list', '--all'],
      ['iface-list'],
      ['iface-list', '--inactive'],
      ['iface-dumpxml', 'eth1'],
      ['iface-dumpxml', '--inactive', 'eth1'],
      ['iface-dumpxml', 'lo'],
      ['iface-mac', 'eth1'],
      ['iface-name', 'aa:bb:cc:dd:ee:ff'],
      ['iface-name', '00:00:00:00:00:00'],
      ['iface-commit'],
      ['iface-rollback'],
    ].map((a) => [a.join(' '), a] as const),
  )('virsh %s', async (_title, args) => {
    await same(...args);
  });

  test.each([['computer'], ['scsi_host1'], ['scsi_host2'], ['scsi_host11'], ['test-scsi-host-vport']])('nodedev-dumpxml and nodedev-info %s', async (dev) => {
    await same('nodedev-dumpxml', dev);
    await same('nodedev-info', dev);
  });

  test.each(
    [
      ['sysinfo'],
      ['nodecpustats'],
      ['nodecpustats', '0'],
      ['nodecpumap'],
      ['cpu-models', 'x86_64'],
      ['cpu-models', 'i686'],
      ['cpu-models', 'ppc64le'],
      ['cpu-models', 'aarch64'],
      ['cpu-models', 'foo'],
      ['cpu-models', 'alpha'],
      ['freepages', '--all'],
      ['freepages', '0', '4'],
      ['freepages', '1', '2048'],
      ['nodememstats'],
    ].map((a) => [a.join(' '), a] as const),
  )('virsh %s', async (_title, args) => {
    await same(...args);
  });

  test('iface define/start/destroy/undefine and the change transaction, one session each side', async () => {
    const br = path.join(FIXTURES, 'iface-br0-input.xml');
    const chain = [
      `iface-define ${br}`,
      'iface-list --all',
      'iface-dumpxml br0',
      'iface-mac br0',
      'iface-start br0',
      'iface-start br0',
      'iface-destroy eth1',
      'iface-destroy eth1',
      'iface-list --all',
      'iface-begin',
      `iface-define ${br}`,
      'iface-begin',
      'iface-rollback',
      'iface-list --all',
      'iface-undefine br0',
      'iface-undefine br0',
      'iface-start eth1',
      'iface-list --all',
    ].join('; ');
    const r = await same(chain);
    expect(r.out).toContain('Network config change transaction rolled back');
  });

  test('nodedev-create/destroy of a vHBA, one session each side', async () => {
    const vhba = path.join(FIXTURES, 'vhba-input.xml');
    const r = await same(
      [`nodedev-create ${vhba}`, 'nodedev-dumpxml scsi_host12', 'nodedev-info scsi_host12', 'nodedev-destroy scsi_host12', 'nodedev-destroy scsi_host12'].join(
        '; ',
      ),
    );
    expect(r.out).toContain('Node device scsi_host12 created from');
  });

  test('broken and refused XML', async () => {
    const dir = vg.home;
    const bad = (name: string, text: string) => {
      const f = path.join(dir, name);
      fs.writeFileSync(f, text);
      return f;
    };
    await same('iface-define', bad('bad-bond.xml', "<interface type='bond' name='x'/>\n"));
    await same('iface-define', bad('bad-root.xml', '<network/>\n'));
    await same('nodedev-create', bad('not-fc.xml', "<device><capability type='scsi_host'/></device>\n"));
    await same('nodedev-create', bad('bad-parent.xml', fs.readFileSync(path.join(FIXTURES, 'vhba-input.xml'), 'utf8').replace('scsi_host1<', 'nope<')));
    // Broken XML: libvirt's text comes from libxml2; ours says where, in the same error class.
    const ours = await virsh(vg.uri, 'iface-define', bad('broken.xml', "<interface type='ethernet' name='x'\n"));
    expect(ours.rc).toBe(1);
    expect(ours.err).toMatch(/^error: Failed to define interface from .*\nerror: \(interface_definition\):\d+: /);
  });

  // Deliberate differences from libvirt 9.0's test driver, pinned.
  test('nodedev-list: served (the test driver refuses the ACTIVE flag virsh always sends)', async () => {
    expect((await referenceVirsh('nodedev-list')).err).toMatch(/unsupported flags \(0x80000000\) in function testConnectListAllNodeDevices/);
    const flat = await virsh(vg.uri, 'nodedev-list');
    expect(flat).toEqual({ rc: 0, out: 'computer\nscsi_host1\nscsi_host11\nscsi_host2\n\n', err: '' });
    expect((await virsh(vg.uri, 'nodedev-list', '--cap', 'fc_host')).out).toBe('scsi_host1\nscsi_host11\nscsi_host2\n\n');
    expect((await virsh(vg.uri, 'nodedev-list', '--inactive')).out).toBe('\n');
    const tree = await virsh(vg.uri, 'nodedev-list', '--tree');
    expect(tree.rc).toBe(0);
    expect(tree.out).toBe(fs.readFileSync(path.join(FIXTURES, 'nodedev-tree.txt'), 'utf8'));
  });

  test('nodedev-destroy of a device that is no vHBA is an error (the test driver reports it yet answers success)', async () => {
    expect(await referenceVirsh('nodedev-destroy', 'computer')).toMatchObject({ rc: 0 });
    const ours = await virsh(vg.uri, 'nodedev-destroy', 'computer');
    expect(ours.rc).toBe(1);
    expect(ours.err).toMatch(/internal error: Device is not a fibre channel HBA/);
    expect((await virsh(vg.uri, 'nodedev-dumpxml', 'computer')).rc).toBe(0);
  });
});

describeIf(pyLibvirt(), 'interfaces, node devices and host facts: python3-libvirt against virtgate and test:///default', () => {
  let vg: RunningDaemon;
  beforeAll(async () => (vg = await startDaemon()));
  afterAll(async () => vg?.stop());

  test('every call of host_objects.py answers as test:///default does', async () => {
    const facts = async (uri: string) => JSON.parse((await run(PY, [path.join(__dirname, 'py', 'host_objects.py'), uri], { timeout: 30000 })).stdout);
    const ours = await facts(vg.uri);
    const theirs = await facts('test:///default');
    expect(ours).toEqual(theirs);
    expect(ours.no_iface[0]).toBe(57); // VIR_ERR_NO_INTERFACE
    expect(ours.no_dev[0]).toBe(53); // VIR_ERR_NO_NODE_DEVICE
    expect(ours.created[0]).toBe('scsi_host12');
  });

  test('node device lifecycle events (all devices, one device, UPDATE never sent) as test:///default sends them', async () => {
    const events = async (uri: string) => JSON.parse((await run(PY, [path.join(__dirname, 'py', 'nodedev_events.py'), uri], { timeout: 30000 })).stdout);
    const ours = await events(vg.uri);
    expect(ours).toEqual(await events('test:///default'));
    expect(ours.events).toEqual([
      ['all', 'scsi_host12', 0, 0], // VIR_NODE_DEVICE_EVENT_CREATED
      ['all', 'scsi_host12', 1, 0], // VIR_NODE_DEVICE_EVENT_DELETED
    ]);
  });
});
