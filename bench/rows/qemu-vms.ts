// SPDX-License-Identifier: Apache-2.0
// Row 11, real QEMU guests (TCG, the test guest), virtgate's qemu driver beside libvirtd 9.0's own QEMU driver:
// `virsh start` until virsh returns and until the guest's marker is on the serial log (several runs: median, min-max),
// then virDomainGetInfo one call at a time on 3 running guests. One side at a time (2 cores); every VM destroyed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type BenchCtx, type Figures, type Row, type RowResult, figures, fromC, ratio } from '../lib/ctx';
import { type Guest, type QemuSide, benchGuest, qemuMissing, startLibvirtdQemu, startVirtgateQemu, virsh } from '../lib/qemu';
import { tsSequential } from '../lib/ts-client';

const ROW = '11 qemu';
const GUESTS = 3;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface SideFigures {
  start: number[]; // seconds until virsh start returned
  marker: number[]; // seconds until the marker was on the serial log
  getinfoC: Figures | null;
  getinfoTs: Figures | null;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// One figure per run set: usPerCall is the mean, p50Ms the median, p99Ms the slowest run (few runs).
function runFigures(xs: number[]): Figures {
  return {
    ...figures(
      xs.length,
      xs.reduce((a, b) => a + b, 0),
    ),
    p50Ms: median(xs) * 1000,
    p99Ms: Math.max(...xs) * 1000,
  };
}
const spread = (xs: number[]): string => `median ${median(xs).toFixed(3)} s, min ${Math.min(...xs).toFixed(3)} s, max ${Math.max(...xs).toFixed(3)} s`;

async function waitMarker(file: string, marker: string, ms = 120_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      if (fs.readFileSync(file, 'utf8').includes(marker)) return;
    } catch {
      /* not created yet */
    }
    if (Date.now() > end) throw new Error(`no marker on ${file} after ${ms / 1000} s`);
    await sleep(10);
  }
}

async function measureSide(ctx: BenchCtx, side: QemuSide, g: Guest, runs: number, iterations: number): Promise<SideFigures> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-bench-xml-'));
  const names = Array.from({ length: GUESTS }, (_, i) => `bench${i + 1}`);
  const out: SideFigures = { start: [], marker: [], getinfoC: null, getinfoTs: null };
  try {
    for (const n of names) {
      const f = path.join(dir, `${n}.xml`);
      fs.writeFileSync(f, side.xml(n));
      await virsh(side.uri, 'define', f);
    }
    // A first start outside the measurement warms the page cache (kernel, initrd, QEMU's libraries).
    for (let r = -1; r < runs; r++) {
      const log = side.serialLog(names[0]);
      fs.rmSync(log, { force: true });
      const t0 = process.hrtime.bigint();
      await virsh(side.uri, 'start', names[0]);
      const t1 = process.hrtime.bigint();
      await waitMarker(log, g.marker);
      const t2 = process.hrtime.bigint();
      if (r >= 0) {
        out.start.push(Number(t1 - t0) / 1e9);
        out.marker.push(Number(t2 - t0) / 1e9);
      }
      await virsh(side.uri, 'destroy', names[0]);
      ctx.log(
        `${ROW}: ${side.name} start ${r < 0 ? '(warm-up)' : r + 1}: ${(Number(t1 - t0) / 1e9).toFixed(3)} s, marker ${(Number(t2 - t0) / 1e9).toFixed(3)} s`,
      );
    }
    for (const n of names) await virsh(side.uri, 'start', n);
    for (const n of names) await waitMarker(side.serialLog(n), g.marker);
    ctx.log(`${ROW}: ${side.name} GetInfo on ${GUESTS} running QEMU guests, ${iterations} × ${GUESTS} calls`);
    if (ctx.cclient)
      out.getinfoC = await ctx.runC(side.uri, iterations, 1).then(fromC, (e: Error) => (ctx.notes.push(`${side.name} ${ROW} C: ${e.message}`), null));
    out.getinfoTs = await tsSequential(side.uri, iterations).catch((e: Error) => (ctx.notes.push(`${side.name} ${ROW} TS: ${e.message}`), null));
  } finally {
    for (const n of names) {
      await virsh(side.uri, 'destroy', n).catch(() => undefined);
      await virsh(side.uri, 'undefine', n).catch(() => undefined);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

export const qemuVms: Row = {
  name: ROW,
  async run(ctx: BenchCtx): Promise<RowResult[]> {
    const missing = qemuMissing();
    const g = missing ? { why: missing } : benchGuest();
    if ('why' in g) {
      ctx.log(`${ROW}: skipped: ${g.why}`);
      ctx.notes.push(`${ROW} skipped: ${g.why}`);
      return [];
    }
    const runs = ctx.sizes.qemuRuns ?? (ctx.quick ? 3 : 7);
    const iterations = ctx.sizes.qemuGetInfo ?? (ctx.quick ? 300 : Math.min(ctx.sizes.seqIterations, 3000));
    let vg: SideFigures;
    const side = await startVirtgateQemu(g, ctx.log);
    try {
      vg = await measureSide(ctx, side, g, runs, iterations);
    } finally {
      await side.stop();
    }
    let lv: SideFigures | null = null;
    const lside = await startLibvirtdQemu(g, ctx.log);
    if ('why' in lside) ctx.notes.push(`${ROW}: no libvirtd column: ${lside.why}`);
    else {
      try {
        lv = await measureSide(ctx, lside, g, runs, iterations);
      } catch (e) {
        ctx.notes.push(`libvirtd ${ROW}: ${(e as Error).message}`);
      } finally {
        await lside.stop();
      }
    }
    const out: RowResult[] = [];
    const push = (transport: string, client: 'C' | 'TS', v: Figures | null, l: Figures | null): void => {
      // Empty RSS: the bench's RSS-after is of the test-driver daemons, not of these (already stopped) ones.
      if (v)
        out.push({
          row: ROW,
          client,
          transport,
          virtgate: { ...v, rssKiB: {} },
          libvirtd: l && { ...l, rssKiB: {} },
          ratioOf: 'time',
          ratio: ratio(v, l, 'time'),
        });
    };
    push('unix: virsh start returns (s/run)', 'C', runFigures(vg.start), lv && runFigures(lv.start));
    push('unix: start to serial marker (s/run)', 'C', runFigures(vg.marker), lv && runFigures(lv.marker));
    push(`unix: GetInfo, ${GUESTS} QEMU guests`, 'C', vg.getinfoC, lv?.getinfoC ?? null);
    push(`unix: GetInfo, ${GUESTS} QEMU guests`, 'TS', vg.getinfoTs, lv?.getinfoTs ?? null);
    ctx.notes.push(`${ROW} virsh start, ${runs} runs: virtgate ${spread(vg.start)}${lv ? `; libvirtd ${spread(lv.start)}` : ''}`);
    ctx.notes.push(`${ROW} start to marker, ${runs} runs: virtgate ${spread(vg.marker)}${lv ? `; libvirtd ${spread(lv.marker)}` : ''}`);
    return out;
  },
};
