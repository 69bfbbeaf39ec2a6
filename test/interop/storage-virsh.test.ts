// SPDX-License-Identifier: Apache-2.0
// Storage through real clients: the same virsh session (one connection, so libvirt's test driver keeps its state)
// against libvirt's own test:///default and against virtgate, compared line for line apart from uuids; then
// python3-libvirt (the binding virt-manager and virt-install use) the same way.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { describeIf, pyLibvirt, virshTool } from '../helpers/skip';

const run = promisify(execFile);
const PY = '/usr/bin/python3';

async function session(uri: string, commands: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run('virsh', ['-c', uri, commands.join(' ; ')], { timeout: 60000 });
    return stdout + stderr;
  } catch (e) {
    const x = e as { stdout: string; stderr: string };
    return x.stdout + x.stderr;
  }
}

// A pool defined without a uuid gets a random one on both sides.
const UUID_RE = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
const DEFAULT_POOL_UUID = 'dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566';
const normalize = (s: string): string => s.replace(UUID_RE, (u) => (u === DEFAULT_POOL_UUID ? u : 'UUID'));

const SESSION = [
  'pool-list --all --details',
  'pool-info default-pool',
  'pool-dumpxml default-pool',
  'vol-list --details default-pool',
  'pool-define-as p1 dir --target /var/lib/libvirt/p1',
  'pool-list --all --details',
  'pool-info p1',
  'vol-list p1',
  'pool-build p1',
  'pool-start p1',
  'pool-autostart p1',
  'vol-create-as p1 v1 10M',
  'vol-create-as p1 v2 1G --allocation 512KiB --format qcow2',
  'vol-create-as p1 v3 1500k',
  'vol-create-as default-pool dv 2GB',
  'vol-create-as p1 v1 1M',
  'vol-create-as p1 bad 10XB',
  'vol-create-as p1 huge 200G',
  'vol-list --details p1',
  'vol-list p1',
  'vol-info --pool p1 v2',
  'vol-dumpxml --pool p1 v1',
  'vol-dumpxml v3 --pool p1',
  'vol-path --pool p1 v1',
  'vol-key --pool p1 v1',
  'vol-pool /var/lib/libvirt/p1/v1',
  'vol-name /var/lib/libvirt/p1/v2',
  'vol-info /var/lib/libvirt/p1/v3',
  'pool-info p1',
  'pool-dumpxml p1',
  'pool-list --all --details',
  'pool-list --autostart',
  'pool-list --type dir --persistent',
  'vol-clone --pool p1 v1 v1c',
  'vol-list --details p1',
  'vol-delete --pool p1 v1',
  'vol-delete --pool p1 nosuch',
  'pool-info p1',
  'pool-undefine p1',
  'pool-destroy p1',
  'pool-list --all',
  'vol-list p1',
  'pool-delete p1',
  'pool-undefine p1',
  'pool-list --all --details',
  'pool-info nosuch',
  'vol-info --pool default-pool nosuch',
  'vol-info /etc/shadow',
  'pool-create-as tp dir --target /var/lib/libvirt/tp',
  'pool-list --all --details',
  'pool-destroy tp',
  'pool-list --all',
  'pool-refresh default-pool',
  'pool-define-as nfs1 netfs --source-host nfs.example --source-path /export/x/ --target /var/lib/libvirt/nfs1',
  'pool-dumpxml nfs1',
  'pool-define-as fs1 fs --source-dev /dev/sdb1 --source-format ext4 --target /var/lib/libvirt/fs1/',
  'pool-dumpxml fs1',
  'pool-list --all --type netfs,fs',
  'pool-undefine nfs1',
  'pool-undefine fs1',
  'find-storage-pool-sources logical',
  'find-storage-pool-sources-as netfs nfs.example',
  'find-storage-pool-sources-as netfs',
  'find-storage-pool-sources dir',
  'find-storage-pool-sources iscsi',
  'vol-create-as default-pool base 1M',
  'vol-create-as default-pool child 2M --backing-vol base --backing-vol-format raw --format qcow2',
  'vol-dumpxml --pool default-pool child',
  'pool-uuid default-pool',
  'pool-name dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566',
];

describeIf(virshTool(), 'storage: virsh against virtgate and test:///default', () => {
  let vg: RunningDaemon;
  beforeAll(async () => {
    vg = await startDaemon({ tcp: true, policy: 'g, unix:root, host-admin, *\ng, tcp:anonymous, host-admin, *\n' });
  });
  afterAll(async () => vg?.stop());

  test('one session of pool and volume commands prints what libvirt prints', async () => {
    const theirs = normalize(await session('test:///default', SESSION));
    const ours = normalize(await session(vg.uri, SESSION));
    // Sanity: the reference did what we think it did.
    expect(theirs).toContain('Vol v1 created');
    expect(theirs).toContain("unknown suffix 'XB'");
    expect(ours.split('\n')).toEqual(theirs.split('\n'));
  });

  // libvirt's test driver has no resize or wipe; these follow its storage driver's rules.
  test('vol-resize, vol-wipe and vol-upload (served beyond the test driver), wipe patterns not yet', async () => {
    const out = await session(vg.uri, [
      'vol-create-as default-pool rs 1G',
      'vol-resize --pool default-pool rs 2G',
      'vol-resize --pool default-pool rs 1M',
      'vol-resize --pool default-pool rs 1M --shrink',
      'vol-resize --pool default-pool rs +1G --delta',
      'vol-resize --pool default-pool rs 3G --allocate',
      'vol-info --pool default-pool rs',
      'pool-info default-pool',
      'vol-wipe --pool default-pool rs',
      'vol-wipe --pool default-pool rs --algorithm nnsa',
      'vol-upload --pool default-pool rs /etc/hostname',
      'vol-delete --pool default-pool rs',
    ]);
    for (const line of [
      "Size of volume 'rs' successfully changed to 2G",
      "error: invalid argument: Can't shrink capacity below current capacity unless shrink flag explicitly specified",
      "error: invalid argument: Can't shrink capacity below current allocation",
      "Size of volume 'rs' successfully changed by +1G",
      "Size of volume 'rs' successfully changed to 3G",
      'Capacity:       3.00 GiB\nAllocation:     3.00 GiB',
      'Vol rs wiped',
      'error: unknown procedure: 259 (virStorageVolWipePattern)',
      'Vol rs deleted',
    ])
      expect(out).toContain(line);
    expect(out).not.toContain('virStorageVolUpload'); // served now: storage-streams.test.ts
  });
});

describeIf(pyLibvirt(), 'storage: python3-libvirt against virtgate and test:///default', () => {
  let vg: RunningDaemon;
  beforeAll(async () => (vg = await startDaemon()));
  afterAll(async () => vg?.stop());

  test('lookups, lists, createXML/createXMLFrom, info, errors answer as test:///default does', async () => {
    const py = async (uri: string): Promise<Record<string, unknown>> =>
      JSON.parse((await run(PY, [path.join(__dirname, 'py', 'storage.py'), uri], { timeout: 60000 })).stdout);
    const theirs = await py('test:///default');
    const ours = await py(vg.uri);
    expect(theirs.unknownVol).toEqual([50, "Storage volume not found: no storage vol with matching path '/etc/shadow'"]);
    expect(ours).toEqual(theirs);
  });
});
