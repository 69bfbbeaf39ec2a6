// SPDX-License-Identifier: Apache-2.0
// Row 10, bulk stats (`virsh domstats`, virt-manager's polling): virConnectGetAllDomainStats over 100 running guests,
// one call at a time, C client over unix; each call returns every guest's state, CPU, balloon, vCPU, interface and
// block stats as typed parameters.
import { type BenchCtx, type Figures, type Row, type RowResult, fromC, onLibvirtd, ratio } from '../lib/ctx';
import type { Target } from '../lib/target';

const ROW = '10 bulk stats';
export const STATS_GUESTS = 100;

export const bulkStats: Row = {
  name: ROW,
  async run(ctx: BenchCtx): Promise<RowResult[]> {
    if (!ctx.cclient) {
      ctx.notes.push(`${ROW}: skipped (no C client)`);
      return [];
    }
    const n = ctx.sizes.statsCalls ?? (ctx.quick ? 100 : 2000);
    const measure = async (t: Target): Promise<Figures> => fromC(await ctx.runC(t.unixUri, n, 1, STATS_GUESTS));
    ctx.log(`${ROW}: C client over unix, ${n} calls × ${STATS_GUESTS} guests`);
    let vg: Figures;
    try {
      vg = await measure(ctx.virtgate);
    } catch (e) {
      ctx.notes.push(`virtgate ${ROW}: ${(e as Error).message}`);
      return [];
    }
    const lv = await onLibvirtd(ctx, `${ROW} C unix`, measure);
    return [{ row: ROW, client: 'C', transport: 'unix', virtgate: vg, libvirtd: lv, ratioOf: 'time', ratio: ratio(vg, lv, 'time') }];
  },
};
