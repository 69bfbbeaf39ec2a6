// SPDX-License-Identifier: Apache-2.0
// Issue 6 crash safety and cross-check on the real processes: kill -9 of the front end under write load keeps every
// acknowledged write's records and a verifiable chain; a write sent straight to the helper is reported by cross-check.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { AuditRecord } from '../../src/audit/schema';
import { type RemoteDomain, VirtgateClient } from '../../src/client';
import { ControlAction, Op } from '../../src/ipc/program';
import { ROOT, type RunningDaemon, startDaemon } from '../helpers/daemon';
import { RawClient } from './helper/ipc-client';

const records = (home: string): AuditRecord[] =>
  fs
    .readFileSync(path.join(home, 'log', 'audit.log'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditRecord);

function verify(home: string, ...extra: string[]): { rc: number; out: string } {
  try {
    return { rc: 0, out: execFileSync(process.execPath, [path.join(ROOT, 'bin', 'virtgate.js'), 'audit', 'verify', '--home', home, ...extra]).toString() };
  } catch (e) {
    const x = e as { status: number; stdout: Buffer };
    return { rc: x.status, out: x.stdout.toString() };
  }
}

const xml = (name: string): string => `<domain type='test'><name>${name}</name><memory unit='MiB'>512</memory><os><type>hvm</type></os></domain>`;
const frontPid = (home: string): number | null => {
  try {
    return Number(
      execFileSync('pgrep', ['-f', `virtgated.js --home ${home}`])
        .toString()
        .trim()
        .split('\n')[0],
    );
  } catch {
    return null;
  }
};

describe('audit crash safety and cross-check (real processes)', () => {
  let vg: RunningDaemon;
  // The front end as root (explicitly): the bypass case below talks to the helper socket as the uid it allows.
  beforeAll(async () => (vg = await startDaemon({ extraArgs: ['--front-user', 'root'] })));
  afterAll(async () => vg?.stop());

  test('kill -9 of the front end under write load: restarted, verify passes, every acknowledged write has intent and outcome', async () => {
    const WRITERS = 6;
    const setup = await VirtgateClient.connect(vg.uri);
    const doms: RemoteDomain[] = [];
    for (let i = 0; i < WRITERS; i++) doms.push(await setup.defineXml(xml(`load${i}`)));
    await setup.close();
    const acked: { vm: string; kib: number }[] = [];
    let stop = false;
    // Each writer sets a memory size no other write uses, so its records can be found from what the client saw.
    const writer = async (i: number): Promise<void> => {
      let c: VirtgateClient | null = null;
      let n = 0;
      while (!stop) {
        try {
          c ??= await VirtgateClient.connect(vg.uri);
          const kib = 100000 + i * 100000 + n++;
          await c.setMemory(doms[i], kib, 2); // CONFIG: the domain is not running
          acked.push({ vm: doms[i].name, kib });
        } catch {
          c?.close().catch(() => undefined);
          c = null;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      await c?.close().catch(() => undefined);
    };
    const load = Array.from({ length: WRITERS }, (_, i) => writer(i));
    await new Promise((r) => setTimeout(r, 800));
    const pid = frontPid(vg.home)!;
    const before = acked.length;
    process.kill(pid, 'SIGKILL');
    await vg.waitFor(/front end exited \(SIGKILL\); restarting/);
    const mark = vg.output().length;
    await vg.waitFor(/listening on tls/, 20000, mark);
    const resumed = acked.length;
    await new Promise((r) => setTimeout(r, 800));
    stop = true;
    await Promise.all(load);
    expect(before).toBeGreaterThan(0);
    expect(acked.length).toBeGreaterThan(resumed); // writes went on after the restart
    expect(frontPid(vg.home)).not.toBe(pid);

    const recs = records(vg.home);
    const outcomes = new Map<string, AuditRecord>();
    for (const r of recs)
      if (r.kind === 'outcome' && r.what?.procedure === 'domainSetMemoryFlags' && r.outcome?.result === 'success')
        outcomes.set(`${r.what.object?.name} ${r.what.args?.memory}`, r);
    const intents = new Set(recs.filter((r) => r.kind === 'intent').map((r) => r.requestId));
    const missing = acked.filter((a) => {
      const o = outcomes.get(`${a.vm} ${a.kib}`);
      return !o || !intents.has(o.requestId);
    });
    expect(missing).toEqual([]);
    expect(recs.filter((r) => r.event?.name === 'daemon-start')).toHaveLength(2);
    const v = verify(vg.home, '--cross-check', path.join(vg.home, 'lib', 'helper-journal.log'));
    expect(v.out).toMatch(/^ok: \d+ records/);
    expect(v.out).toMatch(/ok: cross-check/);
    expect(v.rc).toBe(0);
  });

  test('a write sent straight to the helper socket (front end bypassed) is reported by verify --cross-check', async () => {
    const c = await VirtgateClient.connect(vg.uri);
    const dom = await c.defineXml(xml('bypassed'));
    await c.close();
    const raw = await RawClient.connect(vg.helperSock); // as root: the uid the helper allows here (--front-user root)
    expect((await raw.hello()).ok).toBe(true);
    const a = await raw.call(Op.DOMAIN_WRITE_REQ, {
      action: 'control',
      actor: { user: 'mallory', tenant: '', requestId: 'forged-1' },
      uuid: dom.uuid,
      control: ControlAction.START,
    });
    expect(a.ok).toBe(true);
    raw.end();
    const v = verify(vg.home, '--cross-check', path.join(vg.home, 'lib', 'helper-journal.log'));
    expect(v.out).toMatch(/^ok: \d+ records/); // the front end's own log is intact
    expect(v.out).toMatch(
      /FAILED \(cross-check\): helper journal seq \d+: DOMAIN_WRITE_REQ\.control on [0-9a-f]{32} \(bypassed\) .*claimed by mallory\/, request forged-1, result ok: no front-end audit record \(front end bypassed or compromised\)/,
    );
    expect(v.rc).toBe(1);
  });
});
