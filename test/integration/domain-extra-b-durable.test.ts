// SPDX-License-Identifier: Apache-2.0
// Issue 12 part B: what libvirt keeps in the domain XML (max memory, lifecycle actions, balloon period, iothreads and
// their pins, perf events, interface bandwidth, disk throttles) is in the persistent definition after a restart.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startDaemon } from '../helpers/daemon';
import { describeIf, virshTool } from '../helpers/skip';

const run = promisify(execFile);

describeIf(virshTool(), 'part B settings survive a restart', () => {
  test('config changes are in dumpxml --inactive of the next daemon', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-dom-b-durable-'));
    const script = [
      'setmaxmem test 4194304 --config',
      'set-lifecycle-action test crash coredump-restart --config',
      'dommemstat test --period 7 --config',
      'iothreadadd test 4 --config',
      'iothreadpin test 4 1 --config',
      'perf test --enable cmt --config',
      'domiftune test testnet0 --inbound 100 --config',
      'blkdeviotune test vda --total-iops-sec 50 --total-iops-sec-max 60 --config',
    ].join('; ');
    let vg = await startDaemon({ home });
    try {
      await run('virsh', ['-c', vg.uri, script], { timeout: 30000 });
    } finally {
      await vg.stop();
    }
    vg = await startDaemon({ home });
    try {
      const { stdout } = await run('virsh', ['-c', vg.uri, 'dumpxml test --inactive'], { timeout: 30000 });
      for (const want of [
        "<memory unit='KiB'>4194304</memory>",
        '<on_crash>coredump-restart</on_crash>',
        "<stats period='7'/>",
        '<iothreads>1</iothreads>',
        "<iothread id='4'/>",
        "<iothreadpin iothread='4' cpuset='1'/>",
        "<event name='cmt' enabled='yes'/>",
        "<inbound average='100'/>",
        '<total_iops_sec>50</total_iops_sec>',
      ])
        expect(stdout).toContain(want);
      // the live definition of the running domain was not touched
      const live = (await run('virsh', ['-c', vg.uri, 'dumpxml test'], { timeout: 30000 })).stdout;
      expect(live).not.toContain('<iothreads>');
    } finally {
      await vg.stop();
    }
  });
});
