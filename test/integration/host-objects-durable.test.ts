// SPDX-License-Identifier: Apache-2.0
// Host objects are durable: what the host admin defined, changed, created or destroyed is there after a restart of
// both processes (records in the helper's state log, never XML), and the seed is not planted twice.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startDaemon } from '../helpers/daemon';
import { describeIf, virshTool } from '../helpers/skip';

const run = promisify(execFile);
const FIXTURES = path.join(__dirname, '..', 'fixtures', 'host-objects');

describeIf(virshTool(), 'host objects across a restart', () => {
  test('interfaces and node devices keep their state; the seed is not planted again', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-hostobj-durable-'));
    const virsh = async (uri: string, cmd: string) => (await run('virsh', ['-c', uri, cmd], { timeout: 30000 })).stdout;
    let vg = await startDaemon({ home });
    try {
      await virsh(vg.uri, `iface-define ${path.join(FIXTURES, 'iface-bond0-input.xml')}; iface-start bond0; iface-undefine eth1`);
      await virsh(vg.uri, `nodedev-create ${path.join(FIXTURES, 'vhba-input.xml')}; nodedev-destroy scsi_host2`);
    } finally {
      await vg.stop();
    }
    vg = await startDaemon({ home });
    try {
      expect(await virsh(vg.uri, 'iface-list --all')).toMatch(/^ bond0\s+active\s*$/m);
      expect(await virsh(vg.uri, 'iface-list --all')).not.toMatch(/eth1/);
      expect(await virsh(vg.uri, 'iface-dumpxml bond0')).toBe(fs.readFileSync(path.join(FIXTURES, 'iface-bond0.xml'), 'utf8'));
      expect(await virsh(vg.uri, 'nodedev-list')).toBe('computer\nscsi_host1\nscsi_host11\nscsi_host12\n\n');
      expect(await virsh(vg.uri, 'nodedev-dumpxml scsi_host12')).toBe(fs.readFileSync(path.join(FIXTURES, 'nodedev-scsi_host12.xml'), 'utf8'));
    } finally {
      await vg.stop();
    }
  });
});
