// SPDX-License-Identifier: Apache-2.0
// python3-libvirt networks (the binding virt-manager uses): lookup, listAllNetworks, lifecycle, the lifecycle event
// callback, compared with the same script against libvirt's own test:///default.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { describeIf, pyLibvirt } from '../helpers/skip';

const run = promisify(execFile);
const PY = '/usr/bin/python3';

describeIf(pyLibvirt(), 'python3-libvirt networks against virtgate', () => {
  let vg: RunningDaemon;
  beforeAll(async () => (vg = await startDaemon()));
  afterAll(async () => vg?.stop());

  test('networkLookupByName, listAllNetworks, define/create/destroy/undefine and lifecycle events match test:///default', async () => {
    const facts = async (uri: string) => JSON.parse((await run(PY, [path.join(__dirname, 'py', 'network_lifecycle.py'), uri], { timeout: 30000 })).stdout);
    const ours = await facts(vg.uri);
    expect(ours).toEqual(await facts('test:///default'));
    expect(ours.events).toEqual([
      ['pynet', 0, 0],
      ['pynet', 2, 0],
      ['pynet', 3, 0],
      ['pynet', 1, 0],
    ]);
  });
});
