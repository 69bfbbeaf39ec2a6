// SPDX-License-Identifier: Apache-2.0
// A C program built against libvirt-dev calls virDomainGetInfo in a loop through the daemon (the bench's client).
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { buildCClient } from '../helpers/cclient';
import { ROOT, type RunningDaemon, startDaemon } from '../helpers/daemon';
import { describeIf, libvirtDev } from '../helpers/skip';

const run = promisify(execFile);

describeIf(libvirtDev(), 'libvirt C API against virtgate', () => {
  let vg: RunningDaemon;
  let bin: string;
  beforeAll(async () => {
    bin = buildCClient(ROOT, path.join(ROOT, 'build', 'c'))!;
    vg = await startDaemon();
  });
  afterAll(async () => vg?.stop());

  test('virDomainGetInfo loop, single thread and 4 threads sharing a connection', async () => {
    for (const threads of ['1', '4']) {
      const { stdout } = await run(bin, [vg.uri, '2000', threads], { timeout: 60000 });
      const r = JSON.parse(stdout);
      expect(r).toMatchObject({ calls: 2000, guests: 1, threads: Number(threads), failures: 0 });
    }
  });
});
