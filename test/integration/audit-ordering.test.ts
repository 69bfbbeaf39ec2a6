// SPDX-License-Identifier: Apache-2.0
// Issue 16: the audit's ordering seen from outside, under 16 concurrent writers (the group commit shares fsyncs
// between intents and outcomes of different writers): a write's outcome is in the log when its reply arrives, and the
// helper journal never holds a request whose intent is not already in the log. verify --cross-check agrees at the end.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { AuditRecord } from '../../src/audit/schema';
import { type RemoteDomain, VirtgateClient } from '../../src/client';
import { ROOT, type RunningDaemon, startDaemon } from '../helpers/daemon';

const WRITERS = 16;
const PER_WRITER = 25;
const AFFECT_CONFIG = 2;
const xml = (name: string): string => `<domain type='test'><name>${name}</name><memory unit='MiB'>512</memory><os><type>hvm</type></os></domain>`;

// Whole lines only: a line being appended right now is not yet a record.
const lines = (file: string): string[] => {
  const t = fs.readFileSync(file, 'utf8');
  return t
    .slice(0, t.lastIndexOf('\n') + 1)
    .split('\n')
    .filter(Boolean);
};

describe('audit ordering under concurrent writers (real processes)', () => {
  let vg: RunningDaemon;
  beforeAll(async () => (vg = await startDaemon()));
  afterAll(async () => vg?.stop());

  test('reply => outcome already in the log; helper journal begin => intent already in the log', async () => {
    const log = path.join(vg.home, 'log', 'audit.log');
    const journal = path.join(vg.home, 'lib', 'helper-journal.log');
    const conns: VirtgateClient[] = [];
    const doms: RemoteDomain[] = [];
    for (let i = 0; i < WRITERS; i++) {
      const c = await VirtgateClient.connect(vg.uri);
      conns.push(c);
      doms.push(await c.defineXml(xml(`order${i}`)));
    }

    // The journal first, then the log: a begin line seen in the first read must find its intent in the second.
    let running = true;
    let checks = 0;
    const early: string[] = [];
    const watch = (async (): Promise<void> => {
      while (running) {
        const begins = lines(journal)
          .map((l) => JSON.parse(l) as { phase?: string; requestId?: string; auditHead?: string })
          .filter((j) => j.phase === 'begin' && j.requestId);
        const intents = new Set(
          lines(log)
            .map((l) => JSON.parse(l) as AuditRecord)
            .filter((r) => r.kind === 'intent')
            .map((r) => r.requestId),
        );
        for (const b of begins) if (!intents.has(b.requestId)) early.push(b.requestId!);
        checks++;
        await new Promise((r) => setImmediate(r));
      }
    })();

    // Each write sets a memory size no other write uses: its outcome is found by that number, read right at the reply.
    const missing: number[] = [];
    await Promise.all(
      conns.map(async (c, i) => {
        for (let n = 0; n < PER_WRITER; n++) {
          const kib = 200000 + i * 1000 + n;
          await c.setMemory(doms[i], kib, AFFECT_CONFIG);
          const seen = lines(log).some((l) => {
            const r = JSON.parse(l) as AuditRecord;
            return r.kind === 'outcome' && r.outcome?.result === 'success' && String(r.what?.args?.memory) === String(kib);
          });
          if (!seen) missing.push(kib);
        }
      }),
    );
    running = false;
    await watch;
    for (const c of conns) await c.close();

    expect(missing).toEqual([]);
    expect(early).toEqual([]);
    expect(checks).toBeGreaterThan(0);
    // Every write has its intent and outcome, chained and sealed; the helper journal matches them one to one.
    const recs = lines(log).map((l) => JSON.parse(l) as AuditRecord);
    const outcomes = recs.filter((r) => r.kind === 'outcome' && r.what?.procedure === 'domainSetMemoryFlags');
    expect(outcomes).toHaveLength(WRITERS * PER_WRITER);
    const out = execFileSync(process.execPath, [
      path.join(ROOT, 'bin', 'virtgate.js'),
      'audit',
      'verify',
      '--home',
      vg.home,
      '--cross-check',
      journal,
    ]).toString();
    expect(out).toMatch(/^ok: \d+ records/);
    expect(out).toMatch(/ok: cross-check/);
  }, 120_000);
});
