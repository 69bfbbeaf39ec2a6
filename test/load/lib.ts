// SPDX-License-Identifier: Apache-2.0
// The load tests' daemon and probe: a real virtgate with a small virtgate.conf, attackers as other local users, the
// front end's RSS read from /proc and a normal client's GetInfo latency measured in its own process (bench row 7's tools).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Tool, type User, attackerUser, frontEndPid } from '../../bench/rows/abuse';
import { cleanupAll } from '../../bench/lib/proc';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { missing } from '../helpers/skip';
import { localUsers } from '../helpers/users';

export const MiB = 1024 * 1024;
export const P99_MS = 50; // a normal client's p99 under every attack

export interface LoadDaemon {
  vg: RunningDaemon;
  front: number; // the front end's pid
  ro: { path: string };
  rw: { path: string };
  logFrom: number;
}

// vgload1 may see everything (host-admin, but it can reach only the read-only socket, which grants at most read
// permissions: a read-only user of the whole host, as libvirt's); vgload2 has no rights (it can connect, never open).
export const LOAD_POLICY = 'g, unix:root, host-admin, *\ng, x509:admin, host-admin, *\ng, vgload1, host-admin, *\n';

export async function startLoadDaemon(conf: string, opts: { tcp?: boolean } = {}): Promise<LoadDaemon> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-load-'));
  fs.chmodSync(home, 0o755); // the attackers are other users: they must reach the 0666 read-only socket
  fs.mkdirSync(path.join(home, 'etc'));
  fs.writeFileSync(path.join(home, 'etc', 'virtgate.conf'), conf);
  const vg = await startDaemon({ home, tcp: opts.tcp, policy: LOAD_POLICY });
  return { vg, front: frontEndPid(home), ro: { path: vg.sockRo }, rw: { path: vg.sock }, logFrom: vg.output().length };
}

// What the attackers need (root, to create and become two local users): for describeIf.
export const ATTACKER_NEEDS = localUsers(['vgload1', 'vgload2'], 'runs attackers as other local users');

// The two attacker users, or null when ATTACKER_NEEDS does not hold (describeIf then skips or fails).
export function attackers(): [User, User] | null {
  if (missing(ATTACKER_NEEDS).length) return null;
  return [attackerUser('vgload1')!, attackerUser('vgload2')!];
}

export function startProbe(uri: string): Tool {
  return new Tool({ mode: 'probe', uri, intervalMs: 5 });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// Every tool a test started is stopped after it, passed or failed (a tool left running would keep jest waiting).
export function stopToolsAfterEach(): void {
  afterEach(async () => cleanupAll());
}

// The 50 ms p99 target is the bench's to measure (row 8, `npm run bench -- --row abuse`), not a timed test's: on a 2-core
// CI machine other jest workers move a p99 by tens of ms. What a test can hold without flaking is the failure the issue
// measured: other clients stalled for seconds (3.04 s) while an attack ran. So the figures are printed, and the p99
// under attack must stay under STALL_MS, well below the stalls the unbounded daemon caused.
export const STALL_MS = 1000;
export async function expectLatencyFlat(underAttack: Record<string, unknown>, uri: string, ms = 2000): Promise<number | null> {
  const p99 = Number(underAttack.p99Ms);
  if (p99 < P99_MS) return null;
  const probe = startProbe(uri);
  await probe.ready();
  await sleep(ms);
  const base = Number((await probe.stop()).p99Ms);
  process.stdout.write(`load: p99 ${p99.toFixed(2)} ms under attack (target ${P99_MS} ms, measured by bench row 8), ${base.toFixed(2)} ms without\n`);
  expect(p99).toBeLessThan(STALL_MS);
  return base;
}
