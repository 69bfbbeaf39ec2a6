// SPDX-License-Identifier: Apache-2.0
// Storage survives restarts: pools (state, autostart, tenant) and volumes (sizes, formats) come back from the helper's
// state log after a clean stop and after the helper is killed; default-pool is seeded once, never re-created.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { describeIf, virshTool } from '../helpers/skip';

const run = promisify(execFile);
const POLICY = 'g, unix:root, host-admin, *\ng, tcp:anonymous, host-admin, *\n';

async function virsh(uri: string, cmds: string): Promise<string> {
  try {
    const { stdout, stderr } = await run('virsh', ['-c', uri, cmds], { timeout: 30000 });
    return stdout + stderr;
  } catch (e) {
    const x = e as { stdout: string; stderr: string };
    return x.stdout + x.stderr;
  }
}

describeIf(virshTool(), 'storage state across restarts', () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-storage-persist-'));
  let vg: RunningDaemon | undefined;
  afterAll(async () => vg?.stop());

  const STATE = 'pool-list --all --details ; vol-list --details p1 ; vol-dumpxml --pool p1 v2 ; pool-dumpxml p1 ; vol-list --details default-pool';

  test('a clean stop, then a killed helper: the same pools and volumes', async () => {
    vg = await startDaemon({ home, tcp: true, policy: POLICY });
    const setup = await virsh(
      vg.uri,
      [
        'pool-define-as p1 dir --target /var/lib/libvirt/p1',
        'pool-start p1',
        'pool-autostart p1',
        'vol-create-as p1 v1 10M',
        'vol-create-as p1 v2 1G --allocation 512KiB --format qcow2',
        'vol-create-as default-pool iso 3M',
        'pool-define-as p2 dir --target /var/lib/libvirt/p2',
        'pool-undefine default-pool',
      ].join(' ; '),
    );
    expect(setup).toContain('Vol v2 created');
    expect(setup).toContain("storage pool 'default-pool' is active"); // undefine refused: nothing changes
    const before = await virsh(vg.uri, STATE);
    expect(before).toContain(' p1             running    yes');
    await vg.stop();

    vg = await startDaemon({ home, tcp: true, policy: POLICY });
    expect(await virsh(vg.uri, STATE)).toBe(before);

    process.kill(vg.helperPid(), 'SIGKILL');
    let after = '';
    for (let i = 0; i < 100 && after !== before; i++) {
      after = await virsh(vg.uri, STATE);
      if (after !== before) await new Promise((r) => setTimeout(r, 100));
    }
    expect(after).toBe(before);
  });
});
