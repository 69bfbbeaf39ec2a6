// SPDX-License-Identifier: Apache-2.0
// Row 0, the floor (issue 16): rows 1 and 2's clients and sizes against servers that only replay virtgate's recorded replies
// (the Node floor: virtgated's socket handling and nothing else; the C floor: one C loop). Rows 1 and 2 print their ratio
// to the Node floor of the same client, transport and threads.
import type { BenchCtx, Figures, Row, RowResult } from '../lib/ctx';
import { type FloorServer, floorKey, floorRss, floorServers, measureFloor } from '../lib/floor';

const ROW = '0 floor';

export const floor: Row = {
  name: ROW,
  async run(ctx: BenchCtx): Promise<RowResult[]> {
    let servers: Awaited<ReturnType<typeof floorServers>>;
    try {
      servers = await floorServers(ctx);
    } catch (e) {
      ctx.notes.push(`${ROW}: no floor servers: ${(e as Error).message}`);
      return [];
    }
    const { node, c } = servers;
    const { cThreads, tsInFlight } = ctx.sizes;
    const out: RowResult[] = [];
    const measure = async (srv: FloorServer, client: 'C' | 'TS', transport: string): Promise<void> => {
      ctx.log(`${ROW}: ${client} client over ${transport} against the ${srv.label}`);
      let f: Figures;
      try {
        f = await measureFloor(ctx, srv, client, transport);
      } catch (e) {
        ctx.notes.push(`${ROW} ${client} ${transport} ${srv.label}: ${(e as Error).message}`);
        return;
      }
      f.rssKiB = floorRss(srv);
      if (srv === node) ctx.floors.set(floorKey(client, transport), { label: srv.label, figures: f });
      const pipelined = transport.includes('×');
      out.push({
        row: ROW,
        client,
        transport: `${transport}, ${srv.label}`,
        virtgate: f,
        libvirtd: null,
        ratioOf: pipelined ? 'calls/s' : 'time',
        ratio: null,
      });
    };
    if (ctx.cclient) {
      for (const t of ['unix', 'tcp', 'tls']) await measure(node, 'C', t);
      if (c) for (const t of ['unix', 'tls']) if (t === 'unix' || c.tlsUri) await measure(c, 'C', t);
      await measure(node, 'C', `unix ×${cThreads} thr`);
    }
    await measure(node, 'TS', 'unix');
    await measure(node, 'TS', `unix ×${tsInFlight} in flight`);
    return out;
  },
};
