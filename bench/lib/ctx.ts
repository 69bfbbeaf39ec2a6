// SPDX-License-Identifier: Apache-2.0
// What every row gets (targets, sizes, the C client) and what it returns (figures per target); a row is { name, run(ctx) }.
import type { CResult } from './proc';
import type { Target } from './target';

export interface Sizes {
  seqIterations: number; // sequential rows: iterations over all guests (calls = iterations × guests)
  pipelinedCalls: number; // pipelined rows: total calls
  cThreads: number; // pipelined C client: threads sharing one connection
  tsInFlight: number; // pipelined TS client: calls in flight
  clients: number; // many-clients row: connections
  pollSeconds: number; // many-clients row: how long each connection polls once a second
  auditWrites?: number; // audited-writes row: total writes across its 16 writers (default: pipelinedCalls / 10)
  recoverySeconds?: number; // recovery row: seconds of chaos (default 60, quick 20)
  statsCalls?: number; // bulk-stats row: virConnectGetAllDomainStats calls over 100 guests (default 2000, quick 100)
  qemuRuns?: number; // qemu row: timed `virsh start` runs per side after the warm-up (default 7, quick 3)
  qemuGetInfo?: number; // qemu row: GetInfo iterations over the 3 guests (default min(seqIterations, 3000), quick 300)
}

export const FULL: Sizes = { seqIterations: 100000, pipelinedCalls: 300000, cThreads: 8, tsInFlight: 64, clients: 1000, pollSeconds: 30 };
export const QUICK: Sizes = { seqIterations: 2000, pipelinedCalls: 10000, cThreads: 8, tsInFlight: 64, clients: 100, pollSeconds: 5 };

export interface Figures {
  calls: number;
  seconds: number;
  usPerCall: number; // wall time per call (sequential), or mean latency (many clients)
  callsPerSec: number;
  failures: number;
  p50Ms?: number;
  p99Ms?: number;
  rssKiB?: Record<string, Record<string, number>>; // process label -> moment -> KiB
  kibPerIdleConn?: number; // front end (or libvirtd) growth per idle connection
}

export interface RowResult {
  row: string; // e.g. "1 sequential"
  client: 'C' | 'TS';
  transport: string;
  virtgate: Figures;
  libvirtd: Figures | null;
  // virtgate / libvirtd of: time per call or p99 latency (lower is better), or calls/s (higher is better).
  ratioOf: RatioOf;
  ratio: number | null;
  // The same client, transport and threads against the Node floor (rows 1 and 2), and virtgate / floor, as `ratio`.
  floor?: { label: string; figures: Figures } | null;
  floorRatio?: number | null;
}

export type RatioOf = 'time' | 'calls/s' | 'p99';

export interface BenchCtx {
  sizes: Sizes;
  quick: boolean; // `--quick`: rows with a fixed duration run their short form
  virtgate: Target;
  libvirtd: Target | null;
  cclient: string | null; // built bench/c/getinfo, or null (rows then skip the C client)
  runC(uri: string, iterations: number, threads: number, statsDomains?: number): Promise<CResult>;
  log(msg: string): void;
  notes: string[]; // printed under the table and saved in the JSON
  floors: Map<string, { label: string; figures: Figures }>; // floorKey(client, transport) -> the Node floor's figures
}

export interface Row {
  name: string;
  run(ctx: BenchCtx): Promise<RowResult[]>;
}

export function figures(calls: number, seconds: number, failures = 0): Figures {
  return { calls, seconds, usPerCall: (seconds * 1e6) / calls, callsPerSec: calls / seconds, failures };
}

export function fromC(r: CResult): Figures {
  return figures(r.calls, r.seconds, r.failures);
}

export function ratio(vg: Figures, lv: Figures | null, of: RatioOf): number | null {
  if (!lv) return null;
  if (of === 'p99') return vg.p99Ms !== undefined && lv.p99Ms ? vg.p99Ms / lv.p99Ms : null;
  return of === 'time' ? vg.usPerCall / lv.usPerCall : vg.callsPerSec / lv.callsPerSec;
}

// The same measurement against libvirtd when it is up; an error there is a note, not a failed bench.
export async function onLibvirtd(ctx: BenchCtx, what: string, measure: (t: Target) => Promise<Figures>): Promise<Figures | null> {
  if (!ctx.libvirtd) return null;
  try {
    return await measure(ctx.libvirtd);
  } catch (e) {
    ctx.notes.push(`libvirtd ${what}: ${(e as Error).message}`);
    return null;
  }
}
