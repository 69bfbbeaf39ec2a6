// SPDX-License-Identifier: Apache-2.0
// Row 4, issue 6: durable audited writes per second, 16 writers on their own connections and VMs (virDomainSetMemoryFlags,
// CONFIG), against the same workload on a second virtgate with `audit = false`; the difference is the audit's cost per write.
import { VirtgateClient, type RemoteDomain } from '../../src/client';
import { type BenchCtx, type Figures, type Row, type RowResult, figures, onLibvirtd, ratio } from '../lib/ctx';
import { startVirtgate } from '../lib/virtgate';

const ROW = '4 audited writes';
const WRITERS = 16; // the figure: 16 concurrent writers
const AFFECT_CONFIG = 2; // VIR_DOMAIN_AFFECT_CONFIG: works on defined, stopped VMs

const xml = (name: string): string => `<domain type='test'><name>${name}</name><memory unit='MiB'>512</memory><os><type>hvm</type></os></domain>`;

// Each writer defines its own VM, then all write at once; every write is a full intent + helper call + outcome.
export async function concurrentWrites(uri: string, total: number, tag: string): Promise<Figures> {
  const conns: VirtgateClient[] = [];
  const doms: RemoteDomain[] = [];
  try {
    for (let i = 0; i < WRITERS; i++) {
      const c = await VirtgateClient.connect(uri);
      conns.push(c);
      doms.push(await c.defineXml(xml(`bench-w-${tag}-${i}`)));
    }
    let next = 0;
    let failures = 0;
    const writer = async (i: number): Promise<void> => {
      while (next < total) {
        const n = next++;
        try {
          await conns[i].setMemory(doms[i], 262144 + (n % 1024), AFFECT_CONFIG);
        } catch {
          failures++;
        }
      }
    };
    const t0 = process.hrtime.bigint();
    await Promise.all(conns.map((_, i) => writer(i)));
    return figures(total, Number(process.hrtime.bigint() - t0) / 1e9, failures);
  } finally {
    for (const [i, c] of conns.entries()) {
      await c.undefine(doms[i]).catch(() => undefined);
      await c.close().catch(() => undefined);
    }
  }
}

export const auditedWrites: Row = {
  name: ROW,
  async run(ctx: BenchCtx): Promise<RowResult[]> {
    const n = ctx.sizes.auditWrites ?? Math.max(WRITERS, Math.floor(ctx.sizes.pipelinedCalls / 10));
    ctx.log(`${ROW}: ${n} writes, ${WRITERS} writers, audit on`);
    const on = await concurrentWrites(ctx.virtgate.unixUri, n, 'on');
    const lv = await onLibvirtd(ctx, ROW, (t) => concurrentWrites(t.unixUri, n, 'lv'));
    ctx.log(`${ROW}: same writes on a second virtgate with audit = false`);
    const bare = await startVirtgate(ctx.log, { conf: 'audit = false\n' });
    let off: Figures;
    try {
      off = await concurrentWrites(bare.unixUri, n, 'off');
    } finally {
      await bare.stop();
    }
    const cost = on.usPerCall - off.usPerCall;
    ctx.notes.push(
      `${ROW}: ${on.callsPerSec.toFixed(0)} durable audited writes/s with ${WRITERS} writers (target >= 2000/s), ` +
        `${off.callsPerSec.toFixed(0)}/s with audit off: the audit costs ${cost.toFixed(1)} us per write of throughput (${((on.usPerCall / off.usPerCall - 1) * 100).toFixed(0)}%)`,
    );
    return [
      { row: ROW, client: 'TS', transport: 'unix, audit on', virtgate: on, libvirtd: lv, ratioOf: 'calls/s', ratio: ratio(on, lv, 'calls/s') },
      { row: ROW, client: 'TS', transport: 'unix, audit off', virtgate: off, libvirtd: lv, ratioOf: 'calls/s', ratio: ratio(off, lv, 'calls/s') },
    ];
  },
};
