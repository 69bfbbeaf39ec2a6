// SPDX-License-Identifier: Apache-2.0
// Row 12, issue 15: what a fleet setup costs one host. Two daemons with the same rules and guests: "files" (policy.csv,
// local audit log) and "fleet" (the rules in a private PostgreSQL 15, read at start and cached in memory, plus every
// audit record forwarded to a private rsyslog over TLS). Measured: GetInfo latency per call over TCP (one policy
// decision each; p50/p99) and audited writes/s with 16 writers (intent + outcome durable, then forwarded). Runs
// alternate files/fleet three times; the median of each is kept.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SCHEMA_SQL } from '../../src/accounts/policy-db';
import { type BenchCtx, type Figures, type Row, type RowResult, figures } from '../lib/ctx';
import { PG_BIN, type RunningPostgres, startPostgres } from '../lib/postgres';
import { type Collector, RSYSLOGD, makeCollector, makeCollectorPki } from '../lib/rsyslog';
import type { Target } from '../lib/target';
import { openWithGuests } from '../lib/ts-client';
import { startVirtgate } from '../lib/virtgate';
import { concurrentWrites } from './audited-writes';

const ROW = '12 fleet';
const HOST = 'bench-fleet';
// startVirtgate's own rules, as database rows (rule jsonb: the fields after ptype).
const ROWS = [
  ['g', ['unix:root', 'host-admin', '*']],
  ['g', ['x509:admin', 'host-admin', '*']],
  ['g', ['tcp:anonymous', 'host-admin', '*']],
] as const;

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

// Sequential GetInfo with each call timed: the per-call latency includes the policy decision.
async function getInfoLatency(uri: string, iterations: number): Promise<Figures> {
  const { c, doms } = await openWithGuests(uri);
  try {
    const n = iterations * doms.length;
    const ns = new Float64Array(n);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const a = process.hrtime.bigint();
      await c.getInfo(doms[i % doms.length]);
      ns[i] = Number(process.hrtime.bigint() - a);
    }
    const f = figures(n, Number(process.hrtime.bigint() - t0) / 1e9);
    ns.sort();
    return { ...f, p50Ms: percentile(ns, 0.5) / 1e6, p99Ms: percentile(ns, 0.99) / 1e6 };
  } finally {
    await c.close();
  }
}

const median = (fs: Figures[], by: (f: Figures) => number): Figures => [...fs].sort((a, b) => by(a) - by(b))[Math.floor(fs.length / 2)];

export const fleet: Row = {
  name: ROW,
  async run(ctx: BenchCtx): Promise<RowResult[]> {
    const missing = [`${PG_BIN}/pg_ctl`, RSYSLOGD].filter((f) => !fs.existsSync(f));
    if (missing.length || process.getuid?.() !== 0) {
      ctx.notes.push(
        `${ROW}: skipped (${missing.length ? `missing ${missing.join(', ')}: Debian postgresql, rsyslog, rsyslog-gnutls` : 'needs root to run PostgreSQL as its own user'})`,
      );
      return [];
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-bench-fleet-'));
    fs.chmodSync(dir, 0o755); // the front end (an unprivileged user) reads the fleet CA from here; private keys stay 0600
    let pg: RunningPostgres | null = null;
    let collector: Collector | null = null;
    let files: Target | null = null;
    let fleetVg: Target | null = null;
    try {
      pg = await startPostgres();
      pg.psql(SCHEMA_SQL);
      for (const [ptype, rule] of ROWS) pg.psql(`INSERT INTO casbin (ptype, rule) VALUES ('${ptype}', '${JSON.stringify(rule)}')`);
      const certs = makeCollectorPki(dir, [HOST]);
      collector = await makeCollector(dir, certs, [HOST]);
      await collector.start();
      const db = pg;
      const port = collector.port;
      files = await startVirtgate(ctx.log);
      fleetVg = await startVirtgate(ctx.log, {
        conf: (home) => {
          fs.writeFileSync(path.join(home, 'etc', 'db-password'), `${db.password}\n`, { mode: 0o600 });
          fs.cpSync(certs.clients[HOST], path.join(home, 'pki', 'forward'), { recursive: true }); // the default place
          return [
            'policyStore = "postgresql"',
            `policyDatabase = "${db.conn}"`,
            `policyDatabasePasswordFile = "${path.join(home, 'etc', 'db-password')}"`,
            `auditForward = "127.0.0.1:${port}"`,
            `auditForwardCa = "${certs.ca}"`,
            'auditForwardName = "collector"',
            `auditHost = "${HOST}"`,
            '',
          ].join('\n');
        },
      });
      const uris = { files: files.tcpUri, fleet: fleetVg.tcpUri };
      if (!uris.files || !uris.fleet) throw new Error('no TCP listener');
      const n = ctx.sizes.seqIterations;
      const writes = ctx.sizes.auditWrites ?? Math.max(16, Math.floor(ctx.sizes.pipelinedCalls / 10));
      const reads: Record<'files' | 'fleet', Figures[]> = { files: [], fleet: [] };
      const wrote: Record<'files' | 'fleet', Figures[]> = { files: [], fleet: [] };
      ctx.log(`${ROW}: files vs PostgreSQL + forwarding, 3 rounds of ${n} × 3 GetInfo (tcp) and ${writes} audited writes (16 writers)`);
      for (let round = 0; round < 3; round++) {
        for (const side of ['files', 'fleet'] as const) {
          reads[side].push(await getInfoLatency(uris[side]!, n));
          wrote[side].push(await concurrentWrites(uris[side]!, writes, `${side}${round}`));
        }
      }
      // The fleet side really was one: its records reached the collector (a row measuring a silent misconfiguration
      // would flatter it).
      const forwarded = fs
        .readFileSync(collector.file, 'utf8')
        .split('\n')
        .filter((l) => l.includes(` ${HOST} virtgate `)).length;
      if (forwarded === 0) throw new Error(`${ROW}: no record reached the collector:\n${collector.output()}`);
      ctx.notes.push(`${ROW}: ${forwarded} records at the collector when the runs ended`);
      const r = (side: 'files' | 'fleet'): Figures => median(reads[side], (f) => f.p50Ms ?? f.usPerCall);
      const w = (side: 'files' | 'fleet'): Figures => median(wrote[side], (f) => f.callsPerSec);
      const us = (ms?: number): string => `${((ms ?? NaN) * 1000).toFixed(1)} µs`;
      ctx.notes.push(
        `${ROW}: GetInfo p50 ${us(r('fleet').p50Ms)} (PostgreSQL + forwarding) vs ${us(r('files').p50Ms)} (files), p99 ${us(r('fleet').p99Ms)} vs ${us(r('files').p99Ms)}; ` +
          `audited writes ${w('fleet').callsPerSec.toFixed(0)}/s vs ${w('files').callsPerSec.toFixed(0)}/s (fleet/files ${(w('fleet').callsPerSec / w('files').callsPerSec).toFixed(3)})`,
      );
      const row = (transport: string, f: Figures, ratioOf: 'p99' | 'calls/s'): RowResult => ({
        row: ROW,
        client: 'TS',
        transport,
        virtgate: f,
        libvirtd: null,
        ratioOf,
        ratio: null,
      });
      return [
        row('tcp GetInfo, files', r('files'), 'p99'),
        row('tcp GetInfo, PostgreSQL + forwarding', r('fleet'), 'p99'),
        row('tcp writes/s, files', w('files'), 'calls/s'),
        row('tcp writes/s, PostgreSQL + forwarding', w('fleet'), 'calls/s'),
      ];
    } finally {
      await fleetVg?.stop();
      await files?.stop();
      await collector?.stop();
      pg?.destroy();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
};
