// SPDX-License-Identifier: Apache-2.0
// Row 5, decision cost (issue 5): one policy decision in-process, uncached (every request distinct, fresh cache) and
// cached (the same requests again), p50/p99 per decision. Target: uncached p99 ≤ 50 µs.
import { CasbinAuthorizer, PolicySet } from '../../src/policy/engine';
import { EXAMPLE_POLICY, MODEL_TEXT } from '../../src/policy/model';
import type { PolicyObject, Subject } from '../../src/policy/authorizer';
import { ALL_PERMISSIONS } from '../../src/policy/vocabulary';
import { type BenchCtx, type Figures, type Row, type RowResult, figures } from '../lib/ctx';

const ROW = '5 decision cost';

// The README's example plus a shared host's worth of tenants: 50 tenants, each with an owner, an operator, a viewer
// and one extra rule naming a VM glob.
export function benchPolicy(tenants = 50): string {
  const lines = [EXAMPLE_POLICY.trim()];
  for (let t = 0; t < tenants; t++) {
    lines.push(`g, owner${t}, owner, t${t}`, `g, op${t}, operator, t${t}`, `g, view${t}, viewer, t${t}`);
    lines.push(`p, view${t}, t${t}, vm:web*, domain:read_secure`);
  }
  return `${lines.join('\n')}\n`;
}

type Req = [Subject, PolicyObject, string];

// Distinct requests: users of some tenants (members or not), VMs of those tenants, the domain and connect permissions.
export function benchRequests(count: number, tenants = 50): Req[] {
  const perms = ALL_PERMISSIONS.filter((p) => p.startsWith('domain:') || p.startsWith('connect:'));
  const users = ['alice', 'bob', 'carol', 'root', 'eve'];
  for (let t = 0; t < tenants; t++) users.push(`owner${t}`, `op${t}`, `view${t}`);
  const out: Req[] = [];
  for (let i = 0; out.length < count; i++) {
    const user = users[i % users.length];
    const tenant = `t${(i * 7) % tenants}`;
    const own = /\d+$/.exec(user)?.[0];
    const session = own !== undefined && i % 3 !== 0 ? `t${own}` : tenant;
    const perm = perms[(i * 13) % perms.length];
    const object: PolicyObject = perm.startsWith('connect:')
      ? { kind: 'connect', name: 'virtgate' }
      : { kind: 'domain', name: `${i % 5 === 0 ? 'web' : 'vm'}${i}`, tenant: i % 4 === 0 ? session : tenant };
    out.push([{ user: `unix:${user}`, tenant: session, readOnly: false }, object, perm]); // the policy's bare members are local accounts
  }
  return out;
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

function measure(n: number, decide: (i: number) => void): Figures {
  const ns = new Float64Array(n);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const a = process.hrtime.bigint();
    decide(i);
    ns[i] = Number(process.hrtime.bigint() - a);
  }
  const f = figures(n, Number(process.hrtime.bigint() - t0) / 1e9);
  ns.sort();
  return { ...f, p50Ms: percentile(ns, 0.5) / 1e6, p99Ms: percentile(ns, 0.99) / 1e6 };
}

// Uncached and cached decision figures for `calls` distinct requests (after a warm-up on other requests).
export async function decisionCost(calls: number): Promise<{ uncached: Figures; cached: Figures }> {
  const set = await PolicySet.build(MODEL_TEXT, benchPolicy());
  const reqs = benchRequests(calls * 2);
  const warm = new CasbinAuthorizer(set);
  for (let i = calls; i < calls * 2; i++) warm.can(...reqs[i]); // JIT warm-up on requests not measured
  const a = new CasbinAuthorizer(set);
  const uncached = measure(calls, (i) => a.can(...reqs[i]));
  const cached = measure(calls, (i) => a.can(...reqs[i]));
  return { uncached, cached };
}

export const decisionCostRow: Row = {
  name: ROW,
  async run(ctx: BenchCtx): Promise<RowResult[]> {
    const n = Math.max(1000, Math.min(50000, ctx.sizes.seqIterations));
    ctx.log(`${ROW}: ${n} distinct decisions, uncached then cached`);
    const { uncached, cached } = await decisionCost(n);
    const row = (transport: string, f: Figures): RowResult => ({ row: ROW, client: 'TS', transport, virtgate: f, libvirtd: null, ratioOf: 'p99', ratio: null });
    return [row('in-process, uncached', uncached), row('in-process, cached', cached)];
  },
};

if (require.main === module) {
  void decisionCost(Number(process.argv[2] ?? 20000)).then(({ uncached, cached }) => {
    const us = (ms?: number): string => `${((ms ?? NaN) * 1000).toFixed(2)} µs`;
    process.stdout.write(`uncached: p50 ${us(uncached.p50Ms)} p99 ${us(uncached.p99Ms)} mean ${uncached.usPerCall.toFixed(2)} µs\n`);
    process.stdout.write(`cached:   p50 ${us(cached.p50Ms)} p99 ${us(cached.p99Ms)} mean ${cached.usPerCall.toFixed(2)} µs\n`);
  });
}
