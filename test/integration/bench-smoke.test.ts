// SPDX-License-Identifier: Apache-2.0
// Smoke test for `npm run bench`: a tiny run of every row writes JSON with positive call counts (timings are never asserted).
// Row 0 (the floor: the same clients against servers replaying recorded replies) is there, and rows 1 and 2 carry its figures.
// The QEMU row (11) boots real guests: test/vm/bench-qemu.test.ts runs it, with the other VM tests.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { requireBuild } from '../helpers/daemon';
import { file, have, libvirtDev } from '../helpers/skip';
import { type BenchReport, runBench, selected } from '../../bench/run';
import { table } from '../../bench/lib/report';

const C_CLIENT = libvirtDev();
const LIBVIRTD = file('/usr/sbin/libvirtd', 'libvirt-daemon');
const TINY = { seqIterations: 50, pipelinedCalls: 600, cThreads: 4, tsInFlight: 16, clients: 10, pollSeconds: 1, recoverySeconds: 5, statsCalls: 5 }; // recovery: one kill

test('every row runs against virtgate (and libvirtd when it starts) and lands in the JSON', async () => {
  requireBuild();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-bench-smoke-'));
  try {
    const { file } = await runBench({ quick: true, sizes: TINY, skip: ['11 '], resultsDir: dir, log: () => undefined });
    const report = JSON.parse(fs.readFileSync(file, 'utf8')) as BenchReport;
    // The C client and the libvirtd column are there whenever their packages are: a missing package is a visible SKIP
    // of that part (a failure under CI=true), and with the package installed a missing part is a failure.
    if (have(C_CLIENT, 'bench smoke: the C client rows')) expect(report.cClient).toEqual({ built: true });
    if (have(LIBVIRTD, 'bench smoke: the libvirtd column')) expect(report.libvirtd).toEqual({ running: true });

    const expected = [
      ...(report.cClient.built
        ? [
            '0 floor/C/unix, Node floor',
            '0 floor/C/tcp, Node floor',
            '0 floor/C/tls, Node floor',
            '0 floor/C/unix, C floor',
            '0 floor/C/unix ×4 thr, Node floor',
          ]
        : []),
      '0 floor/TS/unix, Node floor',
      '0 floor/TS/unix ×16 in flight, Node floor',
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
      // In-process rows (policy decision cost), recovery (kills virtgate's own two processes), fleet (virtgate with
      // PostgreSQL and forwarding against virtgate with files) and the floor (no daemon at all) have no libvirtd counterpart.
      if (report.libvirtd.running && !r.transport.startsWith('in-process') && !/ (recovery|fleet|floor)$/.test(r.row))
        expect(r.libvirtd?.calls).toBeGreaterThan(0);
      // Every row-1 and row-2 result has its Node floor figure (same client, transport, threads) and the ratio to it.
      if (/^[12] /.test(r.row)) {
        expect(r.floor?.label).toBe('Node floor');
        expect(r.floor?.figures.calls).toBeGreaterThan(0);
        expect(r.floorRatio).toBeGreaterThan(0);
      }
    }
    // The table shows the floor columns, and the floor's own rows print their figures.
    const text = table(report.rows);
    expect(text.split('\n')[0]).toMatch(/floor µs\/call.*×floor/);
    expect(text).toMatch(/^0 floor +TS +unix, Node floor +[\d,]+ /m);
    expect(report.targets.map((t) => t.target)).toEqual(expect.arrayContaining([expect.stringMatching(/every row ≤ 1\.15 × its floor/)]));
    expect(report.rows.find((r) => r.row.startsWith('3'))?.virtgate.p99Ms).toBeGreaterThan(0);
    expect(report.targets.length).toBeGreaterThan(0);
    expect(report.machine.cores).toBeGreaterThan(0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 180000);

test('--row 1 is row 1 only, --row with a name prefix still works', () => {
  expect(selected('1 sequential', '1')).toBe(true);
  expect(selected('10 bulk stats', '1')).toBe(false);
  expect(selected('0 floor', '0')).toBe(true);
  expect(selected('1 sequential', '1 s')).toBe(true);
  expect(selected('9 recovery', 'recovery')).toBe(true);
  expect(selected('10 bulk stats', '10')).toBe(true);
});
