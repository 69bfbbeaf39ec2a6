// SPDX-License-Identifier: Apache-2.0
// Smoke test for `npm run bench`: a tiny run of every row writes JSON with positive call counts (timings are never asserted).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { requireBuild } from '../helpers/daemon';
import { type BenchReport, runBench } from '../../bench/run';

const TINY = { seqIterations: 50, pipelinedCalls: 600, cThreads: 4, tsInFlight: 16, clients: 10, pollSeconds: 1, recoverySeconds: 5 }; // recovery: one kill

test('every row runs against virtgate (and libvirtd when it starts) and lands in the JSON', async () => {
  requireBuild();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-bench-smoke-'));
  try {
    const { file } = await runBench({ quick: true, sizes: TINY, resultsDir: dir, log: () => undefined });
    const report = JSON.parse(fs.readFileSync(file, 'utf8')) as BenchReport;
    if (!report.libvirtd.running) process.stdout.write(`note: bench ran without libvirtd: ${report.libvirtd.why}\n`);

    const expected = [
      ...(report.cClient.built ? ['1 sequential/C/unix', '1 sequential/C/tcp', '1 sequential/C/tls'] : []),
      '1 sequential/TS/unix',
      ...(report.cClient.built ? ['2 pipelined/C'] : []),
      '2 pipelined/TS',
      '3 many clients/TS',
    ];
    const seen = report.rows.map((r) => `${r.row}/${r.client}/${r.transport}`);
    for (const key of expected) expect(seen.some((s) => s.startsWith(key))).toBe(true);
    for (const r of report.rows) {
      expect(r.virtgate.calls).toBeGreaterThan(0);
      expect(r.virtgate.failures).toBe(0);
      // In-process rows (policy decision cost) and recovery (kills virtgate's own two processes) have no libvirtd counterpart.
      if (report.libvirtd.running && !r.transport.startsWith('in-process') && !r.row.endsWith(' recovery')) expect(r.libvirtd?.calls).toBeGreaterThan(0);
    }
    expect(report.rows.find((r) => r.row.startsWith('3'))?.virtgate.p99Ms).toBeGreaterThan(0);
    expect(report.targets.length).toBeGreaterThan(0);
    expect(report.machine.cores).toBeGreaterThan(0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 60000);
