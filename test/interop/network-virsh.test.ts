// SPDX-License-Identifier: Apache-2.0
// Real virsh 9.0 network commands against virtgate and against libvirt's own test:///default, compared line for line.
// Each side runs the whole script in one virsh process (test:///default keeps its state only that long); fresh uuids
// (net-create without <uuid>) are masked.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { referenceVirsh } from '../helpers/users';
import { describeIf, virshTool } from '../helpers/skip';

const run = promisify(execFile);

async function virsh(uri: string, script: string): Promise<{ rc: number; out: string; err: string }> {
  try {
    const { stdout, stderr } = await run('virsh', ['-c', uri, script], { timeout: 60000 });
    return { rc: 0, out: stdout, err: stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { rc: typeof x.code === 'number' ? x.code : -1, out: x.stdout, err: x.stderr };
  }
}

const maskUuids = (s: string): string =>
  s.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, (u) => (u.startsWith('dd8fe884') || u.startsWith('81ff0d90') ? u : 'UUID'));

describeIf(virshTool(), 'virsh net-* against virtgate and test:///default', () => {
  let vg: RunningDaemon;
  let dir: string;

  beforeAll(async () => {
    vg = await startDaemon({ tcp: true, policy: 'g, unix:root, host-admin, *\ng, tcp:anonymous, host-admin, *\n' });
    dir = vg.home;
    const fix = path.join(__dirname, '..', 'unit', 'unprivileged', 'network-fixtures');
    for (const f of ['bridge', 'natdhcp', 'isolated', 'route']) fs.copyFileSync(path.join(fix, `${f}.xml`), path.join(dir, `${f}.xml`));
    fs.writeFileSync(path.join(dir, 'transient.xml'), "<network><name>tnet</name><bridge name='vbrt'/><ip address='10.50.0.1' prefix='24'/></network>\n");
    fs.writeFileSync(path.join(dir, 'broken.xml'), '<network><name>x</name>\n');
    fs.writeFileSync(path.join(dir, 'dup.xml'), '<network><name>default</name><uuid>81ff0d90-c91e-6742-64da-4a736edb0000</uuid></network>\n');
    fs.writeFileSync(path.join(dir, 'badip.xml'), "<network><name>b</name><ip address='10.0.0.300'/></network>\n");
  });
  afterAll(async () => vg?.stop());

  const same = async (script: string): Promise<void> => {
    const ours = await virsh(vg.uri, script);
    const theirs = await referenceVirsh(script);
    expect({ rc: ours.rc, out: maskUuids(ours.out), err: maskUuids(ours.err) }).toEqual({
      rc: theirs.rc,
      out: maskUuids(theirs.out),
      err: maskUuids(theirs.err),
    });
  };

  test('net-list --all, net-info, net-uuid, net-name, net-dumpxml of the default network', async () => {
    await same(
      'net-list --all; net-list; net-list --inactive; net-info default; net-uuid default; net-name dd8fe884-6c02-601e-7551-cca97df1c5df; net-dumpxml default',
    );
  });

  test('net-define / net-start / net-autostart / net-destroy / net-undefine, with listings in between', async () => {
    const d = (f: string) => path.join(dir, f);
    await same(
      [
        `net-define ${d('natdhcp.xml')}`,
        `net-define ${d('bridge.xml')}`,
        `net-define ${d('isolated.xml')}`,
        'net-list --all',
        'net-start natnet',
        'net-info natnet',
        'net-autostart natnet',
        'net-list --all --autostart',
        'net-list --all --persistent --inactive',
        'net-dumpxml natnet',
        'net-dumpxml host-bridge',
        'net-info host-bridge',
        'net-start natnet',
        'net-undefine natnet',
        'net-autostart natnet --disable',
        'net-destroy natnet',
        'net-undefine natnet',
        'net-undefine host-bridge',
        'net-undefine isolated',
        'net-list --all',
      ].join('; '),
    );
  });

  test('net-create makes a transient network that net-destroy removes', async () => {
    await same(`net-create ${path.join(dir, 'transient.xml')}; net-list --all; net-info tnet; net-list --transient; net-destroy tnet; net-list --all`);
  });

  test('net-update of DHCP hosts, live and config', async () => {
    await same(
      [
        `net-update default add ip-dhcp-host "<host mac='52:54:00:00:00:01' name='vm1' ip='192.168.122.50'/>" --live`,
        'net-dumpxml default',
        `net-update default add ip-dhcp-host "<host mac='52:54:00:00:00:01' name='vm1' ip='192.168.122.50'/>"`,
        `net-update default delete ip-dhcp-host "<host name='vm1'/>"`,
        'net-dumpxml default',
      ].join('; '),
    );
  });

  test('bad input: unknown network, broken XML, bad IP, duplicate name', async () => {
    const d = (f: string) => path.join(dir, f);
    await same(`net-info nope; net-dumpxml nope; net-start nope; net-define ${d('badip.xml')}; net-define ${d('dup.xml')}; net-list --all`);
    // libxml2 and our parser word a broken document differently; the failure and its prefix are the same.
    const ours = await virsh(vg.uri, `net-define ${d('broken.xml')}`);
    expect(ours.rc).toBe(1);
    expect(ours.err).toMatch(/^error: Failed to define network from .*broken.xml\nerror: \(network_definition\):\d+: /);
  });
});
