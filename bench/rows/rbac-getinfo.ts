// SPDX-License-Identifier: Apache-2.0
// Row 6, GetInfo with RBAC on versus off (issue 5; target: on within 10% of off). Two extra daemons, same guests:
//   off: one rule decides everything (`tcp:anonymous` is a host admin): the enforcement point with nothing to decide;
//   on:  the 50-tenant policy of row 5 (~200 rules), and the caller is a tenant owner choosing its tenant in the URI,
//        so every call is decided on the tenant path (getattr + read on the VM).
// Plain TCP (identity `tcp:anonymous`) so both run as the same non-root-like identity; the daemon always enforces a
// policy, so "off" is the cheapest policy there is, not a daemon without the dispatch check. Runs alternate
// off/on three times and the median calls/s of each is kept, to take drift out of the ratio.
import { type BenchCtx, type Figures, type Row, type RowResult, fromC, onLibvirtd, ratio } from '../lib/ctx';
import type { Target } from '../lib/target';
import { tsSequential } from '../lib/ts-client';
import { startVirtgate } from '../lib/virtgate';
import { benchPolicy } from './decision-cost';

const ROW = '6 rbac on/off';
const TENANT = 'bench';
const ON_POLICY = `${benchPolicy()}g, tcp:anonymous, owner, ${TENANT}\n`;

const median = (fs: Figures[]): Figures => [...fs].sort((a, b) => a.callsPerSec - b.callsPerSec)[Math.floor(fs.length / 2)];

export const rbacOnOff: Row = {
  name: ROW,
  async run(ctx: BenchCtx): Promise<RowResult[]> {
    const n = ctx.sizes.seqIterations;
    const off = await startVirtgate(ctx.log);
    let on: Target | null = null;
    try {
      // startVirtgate's own policy (root, admin and anonymous are host admins) is "off".
      on = await startVirtgate(ctx.log, { policy: ON_POLICY, tenant: TENANT });
      const uriOff = off.tcpUri;
      const uriOn = on.tcpUri ? `${on.tcpUri}?tenant=${TENANT}` : null;
      if (!uriOff || !uriOn) throw new Error('no TCP listener');
      const out: RowResult[] = [];
      const pair = async (client: 'C' | 'TS', measure: (uri: string) => Promise<Figures>): Promise<void> => {
        const offs: Figures[] = [];
        const ons: Figures[] = [];
        for (let round = 0; round < 3; round++) {
          offs.push(await measure(uriOff));
          ons.push(await measure(uriOn));
        }
        const fOff = median(offs);
        const fOn = median(ons);
        // libvirtd (its own ACL driver: none) over the same transport and client, for scale, as the other rows do.
        const lv = await onLibvirtd(ctx, `${ROW} ${client} tcp`, (t) => (t.tcpUri ? measure(t.tcpUri) : Promise.reject(new Error('no TCP listener'))));
        out.push({ row: ROW, client, transport: 'tcp, RBAC off', virtgate: fOff, libvirtd: lv, ratioOf: 'calls/s', ratio: ratio(fOff, lv, 'calls/s') });
        out.push({ row: ROW, client, transport: 'tcp, RBAC on', virtgate: fOn, libvirtd: lv, ratioOf: 'calls/s', ratio: ratio(fOn, lv, 'calls/s') });
        ctx.notes.push(
          `${ROW} ${client}: RBAC on/off GetInfo calls/s = ${(fOn.callsPerSec / fOff.callsPerSec).toFixed(3)} (median of 3 alternating runs, ${n} × 3 calls each)`,
        );
      };
      if (ctx.cclient) {
        ctx.log(`${ROW}: C client over tcp, RBAC off vs on, 3 rounds of ${n} × 3 calls`);
        await pair('C', async (uri) => fromC(await ctx.runC(uri, n, 1)));
      }
      ctx.log(`${ROW}: TS client over tcp, RBAC off vs on, 3 rounds of ${n} × 3 calls`);
      await pair('TS', (uri) => tsSequential(uri, n));
      return out;
    } finally {
      await on?.stop();
      await off.stop();
    }
  },
};
