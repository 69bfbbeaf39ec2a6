// SPDX-License-Identifier: Apache-2.0
// Row 9, recovery under chaos: 16 writers and 4 readers run while the helper and the front end are killed (SIGKILL)
// alternately every few seconds; each kill's recovery time is the time from the kill to the first acknowledged write
// sent after it. Afterwards nothing acknowledged may be lost or unaudited, and `virtgate audit verify --cross-check`
// must pass. The integration test test/integration/chaos.test.ts runs the short form of the same harness.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { AuditRecord } from '../../src/audit/schema';
import { logFiles } from '../../src/audit/fs-layer';
import { RemoteCallError, type RemoteDomain, VirtgateClient } from '../../src/client';
import { type BenchCtx, type Figures, type Row, type RowResult, figures } from '../lib/ctx';
import { ROOT, pgrep, rssKiB } from '../lib/proc';
import { startVirtgate } from '../lib/virtgate';

const ROW = '9 recovery';
const AFFECT_CONFIG = 2; // VIR_DOMAIN_AFFECT_CONFIG: the writers' VMs are defined, not running
const RETRY_MS = 100; // a client whose call failed tries again this soon (20 clients: the first retry after a recovery comes ~5 ms after it, on average)
const RECOVERY_LIMIT_MS = 20000; // a kill not recovered from by then is reported as such and ends the run

export type Victim = 'helper' | 'front end';

export interface ChaosTarget {
  uri: string;
  home: string; // the daemon's --home: HOME/log/audit.log, HOME/lib/helper-journal.log
}

export interface ChaosOptions {
  seconds: number; // how long the load runs at least (longer if the kills take longer: the last one is followed by 2 s)
  kills: number; // helper first, then alternating with the front end
  gapMs: [number, number]; // a kill every gapMs[0]..gapMs[1] ms (uniform) after the previous one
  writers?: number;
  readers?: number;
  defineEvery?: number; // each writer's every Nth write defines or undefines its second VM (the others set its first VM's memory)
  log?: (msg: string) => void;
}

export interface KillResult {
  victim: Victim;
  atMs: number; // since the load started
  recoveryMs: number | null; // null: no write was acknowledged within RECOVERY_LIMIT_MS
}

export interface ChaosResult {
  kills: KillResult[];
  acked: number; // acknowledged writes (memory settings and defines)
  reads: number; // successful reads
  outageErrors: Record<string, number>; // failures while a process was down, by kind
  otherErrors: string[]; // failures that are neither (should be none)
  lost: string[]; // acknowledged writes the final state does not show
  unaudited: string[]; // acknowledged writes without an intent and a successful outcome record
  verify: { rc: number; out: string };
}

const xml = (name: string): string => `<domain type='test'><name>${name}</name><memory unit='MiB'>4096</memory><os><type>hvm</type></os></domain>`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const now = (): number => performance.now();

function pids(home: string): Record<Victim, number | null> {
  return {
    helper: pgrep(`virtgate-helper.js --socket ${path.join(home, 'run', 'helper-sock')}`),
    'front end': pgrep(`virtgated.js --home ${home}`),
  };
}

// Failures a client may see while a process is down; anything else is reported.
function classify(e: unknown): string | null {
  const err = e as Error & { code?: string };
  if (err instanceof RemoteCallError) return /hypervisor helper unavailable/.test(err.message) ? 'helper unavailable' : null;
  if (err.code === 'VG_ERR_CLIENT_CLOSED' || ['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE'].includes(err.code ?? '')) return 'front end unavailable';
  return null;
}

export function auditVerify(home: string): { rc: number; out: string } {
  const args = [path.join(ROOT, 'bin', 'virtgate.js'), 'audit', 'verify', '--home', home, '--cross-check', path.join(home, 'lib', 'helper-journal.log')];
  try {
    return { rc: 0, out: execFileSync(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString() };
  } catch (e) {
    const x = e as { status: number; stdout: Buffer; stderr: Buffer };
    return { rc: x.status, out: `${x.stdout.toString()}${x.stderr.toString()}` };
  }
}

async function connectWhenUp(uri: string, timeoutMs: number): Promise<VirtgateClient> {
  const until = now() + timeoutMs;
  for (;;) {
    try {
      return await VirtgateClient.connect(uri);
    } catch (e) {
      if (now() > until) throw e;
      await sleep(RETRY_MS);
    }
  }
}

export async function runChaos(t: ChaosTarget, o: ChaosOptions): Promise<ChaosResult> {
  const WRITERS = o.writers ?? 16;
  const READERS = o.readers ?? 4;
  const defineEvery = o.defineEvery ?? 10;
  const log = o.log ?? (() => undefined);
  const tag = Date.now().toString(36);

  const setup = await connectWhenUp(t.uri, 10000);
  const doms: RemoteDomain[] = [];
  try {
    for (let i = 0; i < WRITERS; i++) doms.push(await setup.defineXml(xml(`chaos-${tag}-w${i}`)));
  } finally {
    await setup.close().catch(() => undefined);
  }

  const lastAcked: number[] = new Array(WRITERS).fill(0); // memory (KiB) of each writer's last acknowledged setting
  const lastSent: number[] = new Array(WRITERS).fill(0);
  const ackedMemory: { vm: string; kib: number }[] = [];
  // Each writer also defines and undefines a second VM in turn (the number of VMs stays bounded, so a helper's start,
  // which loads every definition, takes no longer at the end of a long run than at its beginning). `uncertain`: a
  // define or undefine was sent after the last acknowledged one and its answer was lost; the VM may then be either way.
  const extra = Array.from({ length: WRITERS }, (_, i) => ({
    name: `chaos-${tag}-x${i}`,
    dom: null as RemoteDomain | null,
    uncertain: false,
    defineFailed: false,
    undefineFailed: false,
  }));
  const ackedDefinitions = new Map<string, number>(); // "define NAME" / "undefine NAME" -> acknowledged count
  const outageErrors: Record<string, number> = {};
  const otherErrors: string[] = [];
  let reads = 0;
  let stop = false;
  // The kill being recovered from: the first write sent after it and acknowledged ends it.
  let pending: { at: number; done: (ms: number) => void } | null = null;
  const failed = (e: unknown): void => {
    const kind = classify(e);
    if (kind) outageErrors[kind] = (outageErrors[kind] ?? 0) + 1;
    else if (otherErrors.length < 50) otherErrors.push((e as Error).message);
  };

  const client = async (body: (c: VirtgateClient) => Promise<void>): Promise<void> => {
    let c: VirtgateClient | null = null;
    while (!stop) {
      try {
        c ??= await VirtgateClient.connect(t.uri);
        await body(c);
      } catch (e) {
        failed(e);
        // A front end that went away leaves the connection dead; a helper outage does not.
        if (classify(e) !== 'helper unavailable') {
          c?.close().catch(() => undefined);
          c = null;
        }
        await sleep(RETRY_MS);
      }
    }
    await c?.close().catch(() => undefined);
  };

  const acked = (key: string): void => void ackedDefinitions.set(key, (ackedDefinitions.get(key) ?? 0) + 1);
  const writer = (i: number): Promise<void> => {
    let n = 0;
    const x = extra[i];
    return client(async (c) => {
      const started = now();
      n++;
      if (n % defineEvery === 0 && !x.dom) {
        x.uncertain = true;
        try {
          x.dom = await c.defineXml(xml(x.name));
        } catch (e) {
          // The define whose answer was lost did land (the XML has no UUID, so a second one clashes by name).
          if (x.defineFailed && e instanceof RemoteCallError && /already exists/.test(e.message)) {
            x.dom = await c.lookupByName(x.name);
            x.defineFailed = false;
            x.uncertain = false; // seen defined
            return;
          }
          x.defineFailed = true;
          throw e;
        }
        x.uncertain = false;
        x.defineFailed = false;
        acked(`define ${x.name}`);
      } else if (n % defineEvery === 0 && x.dom) {
        x.uncertain = true;
        try {
          await c.undefine(x.dom);
        } catch (e) {
          // The undefine whose answer was lost did land: the VM is gone (not counted as acknowledged).
          if (x.undefineFailed && e instanceof RemoteCallError && /Domain not found/.test(e.message)) {
            x.dom = null;
            x.undefineFailed = false;
            x.uncertain = false; // seen gone
            return;
          }
          x.undefineFailed = true;
          throw e;
        }
        x.dom = null;
        x.uncertain = false;
        x.undefineFailed = false;
        acked(`undefine ${x.name}`);
      } else {
        const kib = 262144 + n; // increasing: the final state must show at least the last acknowledged value
        lastSent[i] = kib;
        await c.setMemory(doms[i], kib, AFFECT_CONFIG);
        lastAcked[i] = kib;
        ackedMemory.push({ vm: doms[i].name, kib });
      }
      if (pending && started >= pending.at) pending.done(now() - pending.at);
    });
  };
  const reader = (i: number): Promise<void> => {
    let n = 0;
    return client(async (c) => {
      if (++n % 10 === 0) await c.listAllDomains(0);
      else await c.getInfo(doms[(i + n) % WRITERS]);
      reads++;
      await sleep(2); // readers poll; they do not compete with the writers for the two cores
    });
  };

  const t0 = now();
  const load = [...Array.from({ length: WRITERS }, (_, i) => writer(i)), ...Array.from({ length: READERS }, (_, i) => reader(i))];
  const kills: KillResult[] = [];
  const tailMs = 2000; // load goes on this long after the last kill was recovered from
  let victim: Victim = 'helper';
  let next = t0 + o.gapMs[0] + Math.random() * (o.gapMs[1] - o.gapMs[0]);
  try {
    while (kills.length < o.kills) {
      await sleep(Math.max(0, next - now()));
      const pid = pids(t.home)[victim];
      if (pid === null) throw new Error(`chaos: no ${victim} process to kill`);
      const at = now();
      const recovered = new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => resolve(null), RECOVERY_LIMIT_MS);
        pending = { at, done: (ms) => (clearTimeout(timer), (pending = null), resolve(ms)) };
      });
      log(`chaos: killing the ${victim} (pid ${pid})`);
      process.kill(pid, 'SIGKILL');
      const recoveryMs = await recovered;
      kills.push({ victim, atMs: Math.round(at - t0), recoveryMs: recoveryMs === null ? null : Math.round(recoveryMs) });
      log(
        `chaos: kill ${kills.length} (${victim}) at ${((at - t0) / 1000).toFixed(1)} s: ${recoveryMs === null ? 'NOT recovered' : `first acknowledged write after ${Math.round(recoveryMs)} ms`}`,
      );
      if (recoveryMs === null) break;
      victim = victim === 'helper' ? 'front end' : 'helper';
      next = Math.max(now(), at + o.gapMs[0] + Math.random() * (o.gapMs[1] - o.gapMs[0]));
    }
    await sleep(Math.max(tailMs, t0 + o.seconds * 1000 - now()));
  } finally {
    stop = true;
    await Promise.all(load);
  }

  // The state: every writer's VM holds at least its last acknowledged memory (a write sent later but not acknowledged
  // may have landed too), and its second VM is defined or not as the last acknowledged define or undefine left it.
  const lost: string[] = [];
  const c = await connectWhenUp(t.uri, 10000);
  try {
    const names = new Set((await c.listAllDomains(0)).map((d) => d.name));
    for (const x of extra) {
      if (x.uncertain) continue;
      if (names.has(x.name) !== (x.dom !== null)) lost.push(`${x.dom ? 'define' : 'undefine'} ${x.name}`);
    }
    for (let i = 0; i < WRITERS; i++) {
      const mem = Number((await c.getInfo(doms[i])).memory);
      if (mem < lastAcked[i] || (lastSent[i] > 0 && mem > lastSent[i])) lost.push(`${doms[i].name}: memory ${mem} KiB, last acknowledged ${lastAcked[i]}`);
    }
  } finally {
    await c.close().catch(() => undefined);
  }

  // The audit: every acknowledged write has its intent and a successful outcome with the same request id. Read (and
  // verified) once the log has stopped growing: verify reads the log, then the anchor the front end rewrites after
  // each batch, so a record appended in between (the clients' closing) would look like a cut-off tail.
  const log0 = path.join(t.home, 'log', 'audit.log');
  await quiet(log0);
  const recs: AuditRecord[] = [];
  for (const f of logFiles(log0)) {
    for (const line of fs.readFileSync(f, 'utf8').split('\n')) {
      try {
        if (line) recs.push(JSON.parse(line) as AuditRecord);
      } catch {
        // a torn last line of a killed front end; verify judges it
      }
    }
  }
  const intents = new Set(recs.filter((r) => r.kind === 'intent' && r.decision?.result === 'allow').map((r) => r.requestId));
  const audited = new Map<string, number>(); // successful outcomes whose intent is in the log, by what they did
  const KEYS: Record<string, (r: AuditRecord) => string> = {
    domainSetMemoryFlags: (r) => `mem ${r.what?.object?.name} ${r.what?.args?.memory}`,
    domainDefineXml: (r) => `define ${r.what?.object?.name}`,
    domainUndefineFlags: (r) => `undefine ${r.what?.object?.name}`,
    domainUndefine: (r) => `undefine ${r.what?.object?.name}`,
  };
  for (const r of recs) {
    const key = KEYS[r.what?.procedure ?? '']?.(r);
    if (key && r.kind === 'outcome' && r.outcome?.result === 'success' && intents.has(r.requestId)) audited.set(key, (audited.get(key) ?? 0) + 1);
  }
  const unaudited: string[] = [];
  for (const a of ackedMemory) if (!audited.has(`mem ${a.vm} ${a.kib}`)) unaudited.push(`mem ${a.vm} ${a.kib}`);
  for (const [key, n] of ackedDefinitions) if ((audited.get(key) ?? 0) < n) unaudited.push(`${key}: ${n} acknowledged, ${audited.get(key) ?? 0} audited`);

  const ackedTotal = ackedMemory.length + [...ackedDefinitions.values()].reduce((a, b) => a + b, 0);
  return { kills, acked: ackedTotal, reads, outageErrors, otherErrors, lost, unaudited, verify: auditVerify(t.home) };
}

async function quiet(file: string, stableMs = 1000, limitMs = 15000): Promise<void> {
  const until = now() + limitMs;
  let size = -1;
  let since = now();
  while (now() < until) {
    const s = fs.statSync(file).size;
    if (s !== size) [size, since] = [s, now()];
    else if (now() - since >= stableMs) return;
    await sleep(100);
  }
}

export function killsText(kills: KillResult[]): string {
  return kills.map((k, i) => `#${i + 1} ${k.victim} ${k.recoveryMs === null ? 'not recovered' : `${k.recoveryMs} ms`}`).join(', ');
}

type Form = Pick<ChaosOptions, 'seconds' | 'kills' | 'gapMs'>;
export const SHORT: Form = { seconds: 20, kills: 6, gapMs: [2500, 3200] };
export const FULL_CHAOS: Form = { seconds: 60, kills: 8, gapMs: [5000, 10000] };

export const recovery: Row = {
  name: ROW,
  async run(ctx: BenchCtx): Promise<RowResult[]> {
    const form =
      ctx.sizes.recoverySeconds !== undefined
        ? { seconds: ctx.sizes.recoverySeconds, kills: Math.max(1, Math.floor(ctx.sizes.recoverySeconds / 3.5)), gapMs: SHORT.gapMs }
        : ctx.quick
          ? SHORT
          : FULL_CHAOS;
    ctx.log(
      `${ROW}: 16 writers + 4 readers for ${form.seconds} s, helper and front end killed alternately (${form.kills} kills) every ${form.gapMs[0] / 1000}-${form.gapMs[1] / 1000} s`,
    );
    // Its own daemon: the kills must not disturb the other rows' target.
    const vg = await startVirtgate(ctx.log);
    let r: ChaosResult;
    const rss: Record<string, Record<string, number>> = {}; // this row's daemon, not the other rows' target
    try {
      r = await runChaos({ uri: vg.unixUri, home: path.dirname(vg.pki) }, { ...form, log: ctx.log });
      for (const { label, pid } of vg.processes()) {
        const kib = rssKiB(pid);
        if (kib !== null) rss[label] = { after: kib };
      }
    } finally {
      await vg.stop();
    }
    const times = r.kills.map((k) => k.recoveryMs ?? Infinity);
    const worst = Math.max(...times);
    const problems =
      r.lost.length + r.unaudited.length + r.otherErrors.length + (r.verify.rc === 0 ? 0 : 1) + r.kills.filter((k) => k.recoveryMs === null).length;
    ctx.notes.push(
      `${ROW}: recovery per kill (kill -9 to the first acknowledged write): ${killsText(r.kills)}; worst ${worst} ms (target <= 1000 ms each: ${worst <= 1000 ? 'met' : 'MISSED'}); ` +
        `${r.acked} writes acknowledged, ${r.lost.length} lost, ${r.unaudited.length} unaudited; audit verify --cross-check ${r.verify.rc === 0 ? 'ok' : `FAILED: ${r.verify.out.trim()}`}; ` +
        `outage errors ${JSON.stringify(r.outageErrors)}${r.otherErrors.length ? `; other errors: ${r.otherErrors.slice(0, 5).join(' | ')}` : ''}`,
    );
    // calls = kills, µs/call = mean recovery; p50 and p99 (= the worst kill) are printed under the table.
    const f: Figures = { ...figures(r.kills.length, times.reduce((a, b) => a + b, 0) / 1000, problems), p50Ms: median(times), p99Ms: worst, rssKiB: rss };
    return [{ row: ROW, client: 'TS', transport: 'unix, kill -9; calls = kills', virtgate: f, libvirtd: null, ratioOf: 'p99', ratio: null }];
  },
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : 0;
}
