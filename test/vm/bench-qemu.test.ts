// SPDX-License-Identifier: Apache-2.0
// Smoke test for bench row 11 (real QEMU guests, virtgate's qemu driver beside libvirtd's): one timed start per side
// and a few GetInfo calls land in the JSON with positive counts. Timings are never asserted.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type BenchReport, runBench } from '../../bench/run';
import { requireBuild } from '../helpers/daemon';
import { testGuest } from '../helpers/guest';
import { launcherRequirements } from '../helpers/launcher';
import { describeIf, virshTool } from '../helpers/skip';

const guestReq = testGuest();
const TINY = { seqIterations: 50, pipelinedCalls: 600, cThreads: 4, tsInFlight: 16, clients: 10, pollSeconds: 1, qemuRuns: 1, qemuGetInfo: 20 };

describeIf([virshTool(), ...launcherRequirements(), guestReq], 'bench row 11 (qemu)', () => {
  test('one start per side and GetInfo on 3 running guests land in the JSON', async () => {
    requireBuild();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-bench-qemu-'));
    try {
      process.env.VG_TEST_GUEST_DIR ??= path.dirname(guestReq.guest!.kernel);
      const { file } = await runBench({ quick: true, only: '11', sizes: TINY, resultsDir: dir, log: () => undefined });
      const report = JSON.parse(fs.readFileSync(file, 'utf8')) as BenchReport;
      const rows = report.rows.filter((r) => r.row.startsWith('11'));
      expect(rows.map((r) => r.transport)).toEqual(expect.arrayContaining([expect.stringMatching(/virsh start/), expect.stringMatching(/GetInfo/)]));
      for (const r of rows) {
        expect(r.virtgate.calls).toBeGreaterThan(0);
        expect(r.virtgate.failures).toBe(0);
        if (report.libvirtd.running) expect(r.libvirtd?.calls).toBeGreaterThan(0);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 240000);
});
