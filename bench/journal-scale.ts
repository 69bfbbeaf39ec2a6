// SPDX-License-Identifier: Apache-2.0
// Scale of the helper's journal and of `audit verify --cross-check`, on synthetic files of realistic records:
//   node build/bench/journal-scale.js gen DIR WRITES [old|new]   audit log (rotated at 64 MiB, intent + outcome per
//                                                                 write) and helper journal (old: one line per write,
//                                                                 one file; new: begin + end lines, rotated at 64 MiB)
//   node build/bench/journal-scale.js check DIR                  the cross-check alone: time and peak RSS
//   node build/bench/journal-scale.js open DIR                   a helper start: open the journal, load its request ids
// The MACs are not real (the cross-check does not read them); everything else is what the daemon writes.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as crossCheckModule from '../src/audit/cross-check';
import * as journalModule from '../src/audit/journal';

const MAX = 64 * 1024 * 1024;
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

// Appends lines to FILE, rotating it to FILE.<first seq, 12 digits> past MAX bytes (the audit log's and journal's rule).
class Writer {
  #fd: number;
  #size = 0;
  #first = -1;
  #buf: string[] = [];
  #bufBytes = 0;
  constructor(
    readonly file: string,
    readonly rotate: boolean,
  ) {
    this.#fd = fs.openSync(file, 'w');
  }
  line(seq: number, line: string): void {
    if (this.#first < 0) this.#first = seq;
    this.#buf.push(line + '\n');
    this.#bufBytes += line.length + 1;
    this.#size += line.length + 1;
    if (this.#bufBytes > 1 << 20) this.#flush();
    if (this.rotate && this.#size >= MAX) {
      this.#flush();
      fs.closeSync(this.#fd);
      fs.renameSync(this.file, `${this.file}.${String(this.#first).padStart(12, '0')}`);
      this.#fd = fs.openSync(this.file, 'w');
      this.#size = 0;
      this.#first = -1;
    }
  }
  #flush(): void {
    fs.writeSync(this.#fd, this.#buf.join(''));
    this.#buf = [];
    this.#bufBytes = 0;
  }
  close(): void {
    this.#flush();
    fs.closeSync(this.#fd);
  }
}

function gen(dir: string, writes: number, format: 'old' | 'new'): void {
  fs.mkdirSync(dir, { recursive: true });
  const audit = new Writer(path.join(dir, 'audit.log'), true);
  const journal = new Writer(path.join(dir, 'helper-journal.log'), format === 'new');
  let aseq = 0;
  let aprev = '0'.repeat(64);
  let jseq = 0;
  let jprev = '0'.repeat(64);
  const t0 = Date.parse('2026-11-01T00:00:00Z');
  const alog = (rec: Record<string, unknown>): { seq: number; hash: string } => {
    const line = JSON.stringify({
      v: 1,
      seq: aseq,
      ts: new Date(t0 + aseq).toISOString(),
      host: 'bench',
      ...rec,
      key: 'a1b2c3d4e5f60718.0',
      prev: aprev,
      mac: sha(`mac${aseq}`),
    });
    audit.line(aseq, line);
    aprev = sha(line);
    return { seq: aseq++, hash: aprev };
  };
  const jlog = (rec: Record<string, unknown>): number => {
    const line = JSON.stringify({ seq: jseq, ts: new Date(t0 + jseq).toISOString(), ...rec, prev: jprev });
    journal.line(jseq, line);
    jprev = sha(line);
    return jseq++;
  };
  for (let i = 0; i < writes; i++) {
    const requestId = `b0a1c2d3-${1 + (i % 16)}-${i}`;
    const vm = i % 16;
    const uuid = `6695eb01-f6a4-8718-50dd-${String(vm).padStart(12, '0')}`;
    const digest = sha(`req${i}`);
    const who = { user: 'alice', tenant: 'acme', method: 'peercred', uid: 0, gid: 0, pid: 4242 };
    const what = {
      procedure: 'domainSetMemoryFlags',
      permission: 'domain:write',
      object: { kind: 'domain', name: `bench-w-${vm}`, uuid, tenant: 'acme' },
      helperOp: 'DOMAIN_WRITE_REQ.setMemory',
      digest,
      args: { memory: 262144 + (i % 1024), flags: 2 },
    };
    const head = alog({
      kind: 'intent',
      requestId,
      who,
      source: 'unix:pid=4242,uid=0',
      what,
      decision: { result: 'allow', rule: 'p, role:owner, acme, domain:write' },
    });
    const common = {
      op: 'DOMAIN_WRITE_REQ.setMemory',
      uuid: uuid.replace(/-/g, ''),
      user: 'alice',
      tenant: 'acme',
      requestId,
      digest,
      auditHead: `${head.seq}:${head.hash}`,
    };
    if (format === 'old') jlog({ ...common, name: `bench-w-${vm}`, result: 'ok' });
    else {
      const b = jlog({ phase: 'begin', ...common });
      jlog({ phase: 'end', of: b, op: 'DOMAIN_WRITE_REQ.setMemory', requestId, name: `bench-w-${vm}`, result: 'ok' });
    }
    alog({ kind: 'outcome', requestId, who, source: 'unix:pid=4242,uid=0', what, outcome: { result: 'success' } });
  }
  audit.close();
  journal.close();
  const size = (base: string): number =>
    fs
      .readdirSync(dir)
      .filter((f) => f.startsWith(base))
      .reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
  process.stdout.write(
    `${writes} writes: ${aseq} audit records (${(size('audit.log') / 2 ** 20).toFixed(1)} MiB), ${jseq} journal lines (${(size('helper-journal.log') / 2 ** 20).toFixed(1)} MiB, ${format} format)\n`,
  );
}

const auditFiles = (dir: string): string[] => {
  const rotated = fs
    .readdirSync(dir)
    .filter((f) => /^audit\.log\.\d{12}$/.test(f))
    .sort();
  return [...rotated, 'audit.log'].map((f) => path.join(dir, f));
};

const rss = (): string => `${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB peak RSS`;

function check(dir: string): void {
  const files = auditFiles(dir);
  const jf = path.join(dir, 'helper-journal.log');
  const t0 = process.hrtime.bigint();
  const cc = crossCheckModule as Record<string, unknown>;
  const jm = journalModule as Record<string, unknown>;
  let problems: number;
  let writes: number;
  if (typeof cc.crossCheckStreams === 'function') {
    const jfiles = (jm.journalFiles as (f: string) => string[])(jf);
    const stream = jm.streamJournal as (f: string[], s: unknown) => Iterable<unknown>;
    const r = (cc.crossCheckStreams as (a: () => Iterable<unknown>, b: () => Iterable<unknown>) => { problems: unknown[]; writes: number })(
      () => crossCheckModule.readSealedRecords(files),
      () => stream(jfiles, { problem: null, records: 0, files: jfiles }),
    );
    problems = r.problems.length;
    writes = r.writes;
  } else {
    // The code before streaming: the whole journal, then every audit record's intent kept in a map.
    const j = (jm.readJournal as (f: string) => { records: unknown[] })(jf);
    problems = (cc.crossCheck as (a: unknown, b: unknown[]) => unknown[])(crossCheckModule.readSealedRecords(files), j.records).length;
    writes = j.records.length;
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  process.stdout.write(`cross-check: ${writes} writes, ${problems} problems, ${(ms / 1000).toFixed(1)} s, ${rss()}\n`);
}

async function open(dir: string): Promise<void> {
  const before = process.memoryUsage();
  const t0 = process.hrtime.bigint();
  const j = new journalModule.HelperJournal(path.join(dir, 'helper-journal.log'), { sync: 'none' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setImmediate(r));
    global.gc?.(); // run with --expose-gc for a meaningful figure
  }
  const after = process.memoryUsage();
  const heap = (after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers) / 2 ** 20;
  const stats = (j as unknown as { stats?: { requestIds: number; indexBytes: number } }).stats;
  process.stdout.write(
    `journal open: ${(ms / 1000).toFixed(2)} s, request ids held in ${heap.toFixed(1)} MiB (heap + array buffers after gc)${stats ? `, ${stats.requestIds} ids, table ${(stats.indexBytes / 2 ** 20).toFixed(1)} MiB` : ''}, ${rss()}\n`,
  );
  j.close();
}

const [cmd, dir, a, b] = process.argv.slice(2);
if (cmd === 'gen' && dir && a) gen(dir, Number(a), b === 'old' ? 'old' : 'new');
else if (cmd === 'check' && dir) check(dir);
else if (cmd === 'open' && dir) void open(dir);
else {
  process.stderr.write('usage: journal-scale gen DIR WRITES [old|new] | check DIR | open DIR\n');
  process.exit(2);
}
