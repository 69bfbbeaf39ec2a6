// SPDX-License-Identifier: Apache-2.0
// Central verification of a collector's file holding several hosts' forwarded records: each host's chain separately
// (hashes, and MACs where its verification key is given), gaps, reordering, duplicates (a flagged re-send identical
// to the first copy is fine, anything else is not) and hosts that stopped sending. Streams the file.
import { readLines } from './fs-layer';
import { parseMessage } from './forward-format';
import type { VerifyKey } from './keys';
import { type AuditRecord, GENESIS, checkShape, hmacHex, lineHash, splitMac } from './schema';

export type CentralKind = 'gap' | 'reordered' | 'duplicate' | 'conflict' | 'edited' | 'chain' | 'forged' | 'malformed' | 'stale';

export interface CentralProblem {
  kind: CentralKind;
  host: string;
  seq?: number;
  line: number; // 1-based line of the collector file (0: about the host as a whole)
  message: string;
}

export interface HostSummary {
  host: string;
  records: number; // distinct seqs received
  firstSeq: number;
  lastSeq: number;
  lastTs: string;
  resentDuplicates: number; // flagged re-sends identical to a copy already received (accepted)
  macChecked: boolean;
}

export interface CentralResult {
  ok: boolean;
  hosts: HostSummary[];
  problems: CentralProblem[];
  lines: number;
  skipped: number; // lines that are not virtgate audit messages (other traffic in the file)
}

export interface CentralOptions {
  keys?: Map<string, VerifyKey>; // per host (the record's `host` field)
  staleMs?: number; // a host whose last record is older than the newest host's by more than this is reported
  maxProblems?: number; // per host, then "... more" (default 50)
}

const SEEN_MAX = 200_000; // recent seq -> line hash kept per host to compare duplicates (re-sends are recent)
const MISSING_MAX = 100_000;

interface HostState {
  s: HostSummary;
  expected: number;
  prev: string | null; // hash the next record must chain to; null: unknown (after a gap or an edited record)
  seen: Map<number, string>;
  missing: Set<number>;
  gaps: { from: number; to: number; line: number; before: number }[];
  problems: CentralProblem[];
  dropped: number;
  key: VerifyKey | undefined;
}

export function verifyCollectorFile(file: string, o: CentralOptions = {}): CentralResult {
  // A last line without its newline is checked too: cut short, it fails as malformed; whole, it counts.
  function* all(): Generator<string> {
    let tail = '';
    yield* readLines(file, (t) => (tail = t));
    if (tail) yield tail;
  }
  return verifyCollectorLines(all(), o);
}

export function verifyCollectorLines(lines: Iterable<string>, o: CentralOptions = {}): CentralResult {
  const hosts = new Map<string, HostState>();
  const maxP = o.maxProblems ?? 50;
  let n = 0;
  let skipped = 0;
  const hostOf = (name: string): HostState => {
    let h = hosts.get(name);
    if (!h) {
      h = {
        s: { host: name, records: 0, firstSeq: -1, lastSeq: -1, lastTs: '', resentDuplicates: 0, macChecked: !!o.keys?.has(name) },
        expected: -1,
        prev: null,
        seen: new Map(),
        missing: new Set(),
        gaps: [],
        problems: [],
        dropped: 0,
        key: o.keys?.get(name),
      };
      hosts.set(name, h);
    }
    return h;
  };
  const report = (h: HostState, p: Omit<CentralProblem, 'host'>): void => {
    if (h.problems.length < maxP) h.problems.push({ ...p, host: h.s.host });
    else h.dropped += 1;
  };
  for (const text of lines) {
    n += 1;
    const m = parseMessage(text);
    if (!m) {
      skipped += 1;
      continue;
    }
    let rec: AuditRecord | null = null;
    try {
      rec = JSON.parse(m.msg) as AuditRecord;
    } catch {
      rec = null;
    }
    const shape = rec ? checkShape(rec) : 'not JSON';
    if (!rec || shape) {
      const h = hostOf(rec && typeof rec.host === 'string' ? rec.host : m.hostname);
      report(h, {
        kind: 'malformed',
        seq: m.seq ?? undefined,
        line: n,
        message: `line ${n}: record${m.seq !== null ? ` seq ${m.seq}` : ''} is not a valid audit record (${shape}): edited`,
      });
      h.prev = null;
      continue;
    }
    const h = hostOf(rec.host);
    const seq = rec.seq;
    const hash = lineHash(m.msg);
    if (m.seq !== seq) {
      report(h, { kind: 'edited', seq, line: n, message: `line ${n}: syslog header says seq ${String(m.seq)} but the sealed record is seq ${seq}: edited` });
      h.prev = null;
      continue;
    }
    if (h.key) {
      const k = h.key.keyFor(rec.key);
      const parts = splitMac(m.msg);
      if (!k) {
        report(h, { kind: 'forged', seq, line: n, message: `line ${n}: seq ${seq} sealed with key ${rec.key}, which ${h.key.file} does not give: forged` });
        occupy(h, seq);
        continue;
      }
      if (!parts || hmacHex(k, parts.body) !== parts.mac) {
        report(h, { kind: 'edited', seq, line: n, message: `line ${n}: seq ${seq} MAC mismatch: edited or forged` });
        occupy(h, seq);
        continue;
      }
    }
    if (h.expected < 0) {
      // The file may start mid-chain (the collector began later, or older files were archived).
      h.s.firstSeq = seq;
      h.expected = seq;
      h.prev = seq === 0 ? GENESIS : null;
    }
    if (seq === h.expected) {
      if (h.prev !== null && rec.prev !== h.prev) {
        const what = seq === 0 ? 'the first record does not start the chain' : `seq ${seq} does not chain to seq ${seq - 1} (one of them was changed)`;
        report(h, { kind: 'chain', seq, line: n, message: `line ${n}: ${what}` });
      }
      accept(h, seq, hash, rec.ts);
    } else if (seq < h.expected) {
      const first = h.seen.get(seq);
      if (h.missing.delete(seq)) {
        report(h, { kind: 'reordered', seq, line: n, message: `line ${n}: seq ${seq} arrived after seq ${h.expected - 1} (reordered)` });
        remember(h, seq, hash);
        h.s.records += 1;
      } else if (first === undefined) {
        report(h, { kind: 'duplicate', seq, line: n, message: `line ${n}: seq ${seq} received again, too long after the first copy to compare` });
      } else if (first !== hash) {
        report(h, {
          kind: 'conflict',
          seq,
          line: n,
          message: `line ${n}: seq ${seq} received again with different content${m.resent ? ' (flagged re-send)' : ''}: edited`,
        });
      } else if (!m.resent) {
        report(h, { kind: 'duplicate', seq, line: n, message: `line ${n}: seq ${seq} received twice without the resent flag (duplicated)` });
      } else h.s.resentDuplicates += 1;
    } else {
      h.gaps.push({ from: h.expected, to: seq - 1, line: n, before: seq });
      for (let x = h.expected; x < seq && h.missing.size < MISSING_MAX; x++) h.missing.add(x);
      accept(h, seq, hash, rec.ts);
    }
  }
  const problems: CentralProblem[] = [];
  const newest = Math.max(...[...hosts.values()].map((h) => Date.parse(h.s.lastTs)).filter((t) => !Number.isNaN(t)), -Infinity);
  for (const h of hosts.values()) {
    for (const g of h.gaps) {
      // What is still missing of each gap (seqs that arrived later were reported as reordered).
      let a = -1;
      for (let x = g.from; x <= g.to + 1; x++) {
        const gone = x <= g.to && h.missing.has(x);
        if (gone && a < 0) a = x;
        if (!gone && a >= 0) {
          const range = a === x - 1 ? `seq ${a} is` : `seqs ${a}..${x - 1} are`;
          report(h, { kind: 'gap', seq: a, line: g.line, message: `line ${g.line}: ${range} missing before seq ${g.before} (lost or deleted)` });
          a = -1;
        }
      }
    }
    if (o.staleMs !== undefined && Number.isFinite(newest)) {
      const t = Date.parse(h.s.lastTs);
      if (newest - t > o.staleMs)
        report(h, {
          kind: 'stale',
          seq: h.s.lastSeq,
          line: 0,
          message: `last record (seq ${h.s.lastSeq}, ${h.s.lastTs}) is ${((newest - t) / 1000).toFixed(0)} s older than the newest host's: stopped sending?`,
        });
    }
    if (h.dropped) h.problems.push({ kind: h.problems[h.problems.length - 1].kind, host: h.s.host, line: 0, message: `... and ${h.dropped} more problem(s)` });
    problems.push(...h.problems);
  }
  const summaries = [...hosts.values()].map((h) => h.s).sort((a, b) => a.host.localeCompare(b.host));
  return { ok: problems.length === 0, hosts: summaries, problems, lines: n, skipped };
}

function accept(h: HostState, seq: number, hash: string, ts: string): void {
  remember(h, seq, hash);
  h.s.records += 1;
  h.s.lastSeq = seq;
  h.s.lastTs = ts;
  h.expected = seq + 1;
  h.prev = hash;
}

// A record that failed its MAC still takes its place in the sequence (reported once, not again as a gap); what
// follows cannot be chained to it.
function occupy(h: HostState, seq: number): void {
  if (h.expected >= 0 && seq !== h.expected) return;
  if (h.expected < 0) h.s.firstSeq = seq;
  h.expected = seq + 1;
  h.prev = null;
}

function remember(h: HostState, seq: number, hash: string): void {
  h.seen.set(seq, hash);
  if (h.seen.size > SEEN_MAX) h.seen.delete(h.seen.keys().next().value!);
}
