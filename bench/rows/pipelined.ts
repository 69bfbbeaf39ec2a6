// SPDX-License-Identifier: Apache-2.0
// Row 2, pipelined: the C client with N threads sharing one connection, the TS client with M calls in flight.
import { type BenchCtx, type Figures, type Row, type RowResult, fromC, onLibvirtd, ratio } from '../lib/ctx';
import { prepareFloor, withFloor } from '../lib/floor';
import { GUESTS } from '../lib/target';
import { tsPipelined } from '../lib/ts-client';

const ROW = '2 pipelined';

export const pipelined: Row = {
  name: ROW,
  async run(ctx: BenchCtx): Promise<RowResult[]> {
    const { pipelinedCalls: total, cThreads, tsInFlight } = ctx.sizes;
    await prepareFloor(ctx);
    const out: RowResult[] = [];
    const row = (client: 'C' | 'TS', transport: string, vg: Figures, lv: Figures | null): void => {
      out.push({ row: ROW, client, transport, virtgate: vg, libvirtd: lv, ratioOf: 'calls/s', ratio: ratio(vg, lv, 'calls/s') });
    };
    if (ctx.cclient) {
      // getinfo splits its iterations over the threads, each covering every guest.
      const iterations = Math.ceil(total / GUESTS / cThreads) * cThreads;
      const c = async (uri: string): Promise<Figures> => fromC(await ctx.runC(uri, iterations, cThreads));
      ctx.log(`${ROW}: C client, ${cThreads} threads on one unix connection, ${iterations * GUESTS} calls`);
      const vg = await c(ctx.virtgate.unixUri);
      row('C', `unix ×${cThreads} thr`, vg, await onLibvirtd(ctx, `${ROW} C`, (t) => c(t.unixUri)));
    }
    ctx.log(`${ROW}: TS client, ${tsInFlight} in flight on one unix connection, ${total} calls`);
    const vg = await tsPipelined(ctx.virtgate.unixUri, total, tsInFlight);
    row('TS', `unix ×${tsInFlight} in flight`, vg, await onLibvirtd(ctx, `${ROW} TS`, (t) => tsPipelined(t.unixUri, total, tsInFlight)));
    const withFloors: RowResult[] = [];
    for (const r of out) withFloors.push(await withFloor(ctx, r));
    return withFloors;
  },
};
