// SPDX-License-Identifier: Apache-2.0
// Row 7, TLS connection set-up: full handshake (client certificate checked, confirmation byte), libvirt open sequence
// and close, one after another and 8 at a time; handshakes per second on virtgate and on libvirtd.
import { VirtgateClient } from '../../src/client';
import { type BenchCtx, type Figures, type Row, type RowResult, figures, onLibvirtd, ratio } from '../lib/ctx';

const ROW = '7 tls handshakes';

async function handshakes(uri: string | null, total: number, parallel: number): Promise<Figures> {
  if (!uri) throw new Error('no TLS listener');
  let next = 0;
  let failures = 0;
  const worker = async (): Promise<void> => {
    while (next < total) {
      next++;
      try {
        const c = await VirtgateClient.connect(uri, { timeoutMs: 10000 });
        await c.close();
      } catch {
        failures++;
      }
    }
  };
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: parallel }, worker));
  return figures(total, Number(process.hrtime.bigint() - t0) / 1e9, failures);
}

export const tlsHandshakes: Row = {
  name: ROW,
  async run(ctx: BenchCtx): Promise<RowResult[]> {
    const total = Math.max(50, Math.round(ctx.sizes.seqIterations / 100)); // 1,000 full, 50 quick
    const out: RowResult[] = [];
    for (const parallel of [1, 8]) {
      ctx.log(`${ROW}: ${total} TLS connections, ${parallel} at a time`);
      const vg = await handshakes(ctx.virtgate.tlsUri, total, parallel);
      const lv = await onLibvirtd(ctx, `${ROW} x${parallel}`, (t) => handshakes(t.tlsUri, total, parallel));
      out.push({ row: ROW, client: 'TS', transport: `tls x${parallel}`, virtgate: vg, libvirtd: lv, ratioOf: 'calls/s', ratio: ratio(vg, lv, 'calls/s') });
    }
    return out;
  },
};
