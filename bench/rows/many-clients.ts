// SPDX-License-Identifier: Apache-2.0
// Row 3, the virt-manager pattern: many TS connections, each calling GetInfo once a second; latency and daemon RSS.
import { type RemoteDomain, VirtgateClient } from '../../src/client';
import { type BenchCtx, type Figures, type Row, type RowResult, onLibvirtd, ratio } from '../lib/ctx';
import { fdLimit, rssKiB } from '../lib/proc';
import type { Target } from '../lib/target';
import { openWithGuests } from '../lib/ts-client';

const ROW = '3 many clients';
const CONNECT_BATCH = 50; // connections opened concurrently: a burst of 1,000 would measure accept queues, not idle cost
const FD_MARGIN = 256; // fds each side needs besides one per connection

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN;
}

function snapshot(t: Target, moment: string, into: Record<string, Record<string, number>>): void {
  for (const { label, pid } of t.processes()) {
    const kib = rssKiB(pid);
    if (kib !== null) (into[label] ??= {})[moment] = kib;
  }
}

async function measure(t: Target, clients: number, seconds: number): Promise<Figures> {
  const rss: Record<string, Record<string, number>> = {};
  // Domain handles are plain values: list them once and share them between connections.
  const setup = await openWithGuests(t.unixUri);
  const doms: RemoteDomain[] = setup.doms;
  await setup.c.close();
  await sleep(500);
  snapshot(t, 'before', rss);
  const conns: VirtgateClient[] = [];
  try {
    while (conns.length < clients) {
      const batch = Math.min(CONNECT_BATCH, clients - conns.length);
      conns.push(...(await Promise.all(Array.from({ length: batch }, () => VirtgateClient.connect(t.unixUri)))));
    }
    await sleep(1000);
    snapshot(t, 'idle', rss);

    // Spread the connections' phases evenly over the second, as independent virt-managers would be.
    const latencies: number[] = [];
    let failures = 0;
    const t0 = Date.now() + 100;
    await Promise.all(
      conns.map(async (c, i) => {
        for (let k = 0; k < seconds; k++) {
          const due = t0 + (i / clients) * 1000 + k * 1000;
          await sleep(due - Date.now());
          const s = process.hrtime.bigint();
          try {
            await c.getInfo(doms[(i + k) % doms.length]);
            latencies.push(Number(process.hrtime.bigint() - s) / 1e6);
          } catch {
            failures++;
          }
        }
      }),
    );
    snapshot(t, 'polled', rss);
    latencies.sort((a, b) => a - b);
    const mean = latencies.reduce((a, b) => a + b, 0) / latencies.length;
    const main = t.processes()[0]?.label;
    const r = main ? rss[main] : undefined;
    return {
      calls: latencies.length,
      seconds,
      usPerCall: mean * 1000,
      callsPerSec: latencies.length / seconds,
      failures,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      rssKiB: rss,
      kibPerIdleConn: r && r.idle !== undefined && r.before !== undefined ? (r.idle - r.before) / clients : undefined,
    };
  } finally {
    await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
    await sleep(500);
    snapshot(t, 'closed', rss);
  }
}

export const manyClients: Row = {
  name: ROW,
  async run(ctx: BenchCtx): Promise<RowResult[]> {
    let clients = ctx.sizes.clients;
    const limit = fdLimit();
    if (clients + FD_MARGIN > limit) {
      clients = Math.max(1, limit - FD_MARGIN);
      ctx.notes.push(
        `ulimit -n is ${limit}: too low for ${ctx.sizes.clients} connections, capped at ${clients} (raise it with ulimit -n ${ctx.sizes.clients + FD_MARGIN})`,
      );
    }
    const seconds = ctx.sizes.pollSeconds;
    ctx.log(`${ROW}: ${clients} TS connections over unix, GetInfo once a second each for ${seconds} s`);
    const vg = await measure(ctx.virtgate, clients, seconds);
    const lv = await onLibvirtd(ctx, ROW, (t) => measure(t, clients, seconds));
    return [{ row: ROW, client: 'TS', transport: `unix ×${clients} conns`, virtgate: vg, libvirtd: lv, ratioOf: 'p99', ratio: ratio(vg, lv, 'p99') }];
  },
};
