// SPDX-License-Identifier: Apache-2.0
// Row 1, the seed benchmark: one connection, iterations × 3 guests virDomainGetInfo calls, one at a time.
import { type BenchCtx, type Figures, type Row, type RowResult, fromC, onLibvirtd, ratio } from '../lib/ctx';
import { prepareFloor, withFloor } from '../lib/floor';
import type { Target } from '../lib/target';
import { tsSequential } from '../lib/ts-client';

const ROW = '1 sequential';

export const sequential: Row = {
  name: ROW,
  async run(ctx: BenchCtx): Promise<RowResult[]> {
    const n = ctx.sizes.seqIterations;
    await prepareFloor(ctx);
    const out: RowResult[] = [];
    const row = (client: 'C' | 'TS', transport: string, vg: Figures, lv: Figures | null): void => {
      out.push({ row: ROW, client, transport, virtgate: vg, libvirtd: lv, ratioOf: 'time', ratio: ratio(vg, lv, 'time') });
    };
    const bin = ctx.cclient;
    if (bin) {
      const c = async (uri: string | null): Promise<Figures> => {
        if (!uri) throw new Error('no listener for this transport');
        return fromC(await ctx.runC(uri, n, 1));
      };
      for (const [transport, uriOf] of [
        ['unix', (t: Target) => t.unixUri],
        ['tcp', (t: Target) => t.tcpUri],
        ['tls', (t: Target) => t.tlsUri],
      ] as const) {
        ctx.log(`${ROW}: C client over ${transport}, ${n} × 3 calls`);
        let vg: Figures;
        try {
          vg = await c(uriOf(ctx.virtgate));
        } catch (e) {
          // One transport failing (say, a policy that denies it) should not cost the other rows.
          ctx.notes.push(`virtgate ${ROW} C ${transport}: ${(e as Error).message}`);
          continue;
        }
        row('C', transport, vg, await onLibvirtd(ctx, `${ROW} C ${transport}`, (t) => c(uriOf(t))));
      }
    }
    ctx.log(`${ROW}: TS client over unix, ${n} × 3 calls`);
    const vg = await tsSequential(ctx.virtgate.unixUri, n);
    row('TS', 'unix', vg, await onLibvirtd(ctx, `${ROW} TS unix`, (t) => tsSequential(t.unixUri, n)));
    const withFloors: RowResult[] = [];
    for (const r of out) withFloors.push(await withFloor(ctx, r));
    return withFloors;
  },
};
