// SPDX-License-Identifier: Apache-2.0
// Networks survive their manager: after kill -9 of the root helper, and after a full stop and start on the same HOME,
// every network comes back with its config, tenant-free shared state, active/persistent/autostart flags, as virsh shows.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { describeIf, virshTool } from '../helpers/skip';

const run = promisify(execFile);
const POLICY = 'g, unix:root, host-admin, *\ng, tcp:anonymous, host-admin, *\n';

describeIf(virshTool(), 'network state across helper and daemon restarts', () => {
  let vg: RunningDaemon | undefined;
  afterAll(async () => vg?.stop());

  const virsh = async (d: RunningDaemon, script: string): Promise<string> => (await run('virsh', ['-q', '-c', d.uri, script], { timeout: 30000 })).stdout;
  const state = (d: RunningDaemon) => virsh(d, 'net-list --all; net-dumpxml kept; net-dumpxml default');

  test('kill -9 of the helper, then a stop and start: the same networks, states and XML', async () => {
    vg = await startDaemon({ tcp: true, policy: POLICY });
    const home = vg.home;
    fs.writeFileSync(
      path.join(home, 'kept.xml'),
      "<network><name>kept</name><uuid>5b2e7c1a-8d9f-4a3b-9c1d-2e3f4a5b6c7d</uuid><bridge name='vbrk'/><ip address='10.66.0.1' prefix='24'><dhcp><range start='10.66.0.10' end='10.66.0.20'/></dhcp></ip></network>\n",
    );
    fs.writeFileSync(path.join(home, 'gone.xml'), "<network><name>gone</name><bridge name='vbrg'/></network>\n");
    await virsh(
      vg,
      `net-define ${path.join(home, 'kept.xml')}; net-start kept; net-autostart kept; net-destroy default; net-create ${path.join(home, 'gone.xml')}; net-destroy gone`,
    );
    const before = await state(vg);
    expect(before).toMatch(/ default\s+inactive\s+no\s+yes/);
    expect(before).toMatch(/ kept\s+active\s+yes\s+yes/);
    expect(before).not.toMatch(/gone/);

    const pid = vg.helperPid();
    const mark = vg.output().length;
    process.kill(pid, 'SIGKILL');
    await vg.waitFor(/helper connected/, 15000, mark);
    expect(await state(vg)).toBe(before);

    await vg.stop();
    vg = await startDaemon({ tcp: true, home, policy: POLICY });
    expect(await state(vg)).toBe(before); // and `default` is not seeded again: it stays as the host left it
  });
});
