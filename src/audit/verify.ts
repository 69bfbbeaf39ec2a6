// SPDX-License-Identifier: Apache-2.0
// Offline verification of the audit chain across rotated files: names the first record edited, deleted, inserted, reordered or cut off.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseAnchor } from './appender';
import type { KeyRing } from './keys';
import { type AuditRecord, GENESIS, checkShape, hmacHex, lineHash, splitMac } from './schema';

export type ProblemKind = 'edited' | 'deleted' | 'inserted' | 'reordered' | 'truncated' | 'unanchored';

export interface Problem {
  kind: ProblemKind;
  file: string;
  line: number; // 1-based line in `file` (0 for whole-log problems)
  seq?: number; // the record named
  message: string;
}

export interface VerifyResult {
  ok: boolean;
  records: number;
  firstSeq: number;
  lastSeq: number;
  files: string[];
  macChecked: boolean;
  problem: Problem | null;
  ms: number;
}

export interface VerifyOptions {
  keys: KeyRing | null; // null: chain only (who holds no key can still check the hashes)
  anchor?: string | null; // anchor file: catches a log cut short at a record boundary
  allowPartial?: boolean; // the first file may start mid-chain (older files archived elsewhere)
}

interface Entry {
  file: string;
  line: number;
  text: string;
  torn: boolean;
  rec: AuditRecord | null;
  bad: string | null; // why `rec` is null or malformed
}

function load(files: string[]): Entry[] {
  const out: Entry[] = [];
  for (const file of files) {
    const text = fs.readFileSync(file, 'utf8');
    if (!text) continue;
    const lines = text.split('\n');
    const tail = lines.pop()!; // '' when the file ends with a newline
    lines.forEach((t, i) => out.push(parse(file, i + 1, t, false)));
    if (tail) out.push(parse(file, lines.length + 1, tail, true));
  }
  return out;
}

function parse(file: string, line: number, text: string, torn: boolean): Entry {
  if (torn) return { file, line, text, torn, rec: null, bad: 'torn' };
  try {
    const rec = JSON.parse(text) as AuditRecord;
    return { file, line, text, torn, rec, bad: checkShape(rec) };
  } catch {
    return { file, line, text, torn, rec: null, bad: 'not JSON' };
  }
}

export function verifyFiles(files: string[], opts: VerifyOptions): VerifyResult {
  const t0 = process.hrtime.bigint();
  const entries = load(files);
  const r = verifyEntries(entries, opts);
  return { ...r, files, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
}

function verifyEntries(entries: Entry[], opts: VerifyOptions): Omit<VerifyResult, 'files' | 'ms'> {
  const keys = opts.keys;
  const bySeq = new Map<number, number>(); // seq -> first index holding it
  entries.forEach((e, i) => {
    if (e.rec && !e.bad && !bySeq.has(e.rec.seq)) bySeq.set(e.rec.seq, i);
  });
  const result = (problem: Problem | null, records: number, firstSeq: number, lastSeq: number) => ({
    ok: problem === null,
    records,
    firstSeq,
    lastSeq,
    macChecked: keys !== null,
    problem,
  });
  if (!entries.length) return result(null, 0, -1, -1);
  const start = entries[0].rec?.seq ?? 0;
  let expected = opts.allowPartial ? start : 0;
  let prev: string | null = opts.allowPartial && start !== 0 ? null : GENESIS; // null: accept whatever the first record chains to
  let lastSeq = -1;
  const at = (e: Entry) => `${e.file}:${e.line}`;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    const where = lastSeq >= 0 ? `after seq ${lastSeq}` : 'at the start of the log';
    if (e.torn) {
      return result({ kind: 'truncated', file: e.file, line: e.line, message: `${at(e)}: record ${where} is cut short (torn last line, ${e.text.length} bytes)` }, i, start, lastSeq);
    }
    const rec = e.rec;
    if (!rec || e.bad) {
      const claims = rec && Number.isSafeInteger(rec.seq) ? ` (claims seq ${rec.seq})` : '';
      return result({ kind: 'edited', file: e.file, line: e.line, seq: expected, message: `${at(e)}: record ${where}${claims} is not a valid audit record (${e.bad}): edited` }, i, start, lastSeq);
    }
    if (keys) {
      const parts = splitMac(e.text);
      const k = keys.byId.get(rec.key);
      if (!parts || !k || hmacHex(k.key, parts.body) !== parts.mac) {
        // If the record after it chains to the record before it, this one was slipped in; otherwise it was changed.
        const next = entries[i + 1]?.rec;
        const inserted = next !== undefined && next !== null && prev !== null && next.prev === prev;
        const why = !k ? `unknown key ${rec.key}` : 'MAC mismatch';
        return result(
          {
            kind: inserted ? 'inserted' : 'edited',
            file: e.file,
            line: e.line,
            seq: rec.seq,
            message: inserted
              ? `${at(e)}: record claiming seq ${rec.seq} was inserted (${why}; the next record chains past it)`
              : `${at(e)}: record seq ${rec.seq} was edited or forged (${why})`,
          },
          i,
          start,
          lastSeq,
        );
      }
    }
    if (rec.seq !== expected) {
      let p: Problem;
      const later = bySeq.get(expected);
      if (rec.seq < expected) {
        p = { kind: 'inserted', file: e.file, line: e.line, seq: rec.seq, message: `${at(e)}: record seq ${rec.seq} appears again ${where} (a copy was inserted or records were reordered)` };
      } else if (later !== undefined && later > i) {
        p = { kind: 'reordered', file: e.file, line: e.line, seq: rec.seq, message: `${at(e)}: record seq ${rec.seq} is out of order: seq ${expected} comes later, at ${at(entries[later])} (records reordered)` };
      } else {
        const range = rec.seq - 1 === expected ? `seq ${expected} is` : `seqs ${expected}..${rec.seq - 1} are`;
        p = { kind: 'deleted', file: e.file, line: e.line, seq: expected, message: `${at(e)}: record ${range} missing before seq ${rec.seq} (deleted)` };
      }
      return result(p, i, start, lastSeq);
    }
    if (prev !== null && rec.prev !== prev) {
      const msg = prev === GENESIS && rec.seq === 0 ? 'the first record does not start the chain' : `record seq ${rec.seq} does not chain to the record before it (that record was changed or replaced)`;
      return result({ kind: 'edited', file: e.file, line: e.line, seq: rec.seq, message: `${at(e)}: ${msg}` }, i, start, lastSeq);
    }
    prev = lineHash(e.text);
    lastSeq = rec.seq;
    expected = rec.seq + 1;
  }
  if (opts.anchor && keys) {
    let text = '';
    try {
      text = fs.readFileSync(opts.anchor, 'utf8');
    } catch {
      // no anchor yet
    }
    const last = entries[entries.length - 1];
    const parsed = text ? parseAnchor(text, keys) : null;
    const a = parsed && parsed.log === path.basename(last.file).replace(/\.\d{12}$/, '') ? parsed : null; // another log's anchor says nothing here
    if (text && !a) {
      return result({ kind: 'unanchored', file: opts.anchor, line: 0, message: `${opts.anchor}: anchor does not verify (edited)` }, entries.length, start, lastSeq);
    }
    if (a && a.seq > lastSeq) {
      const range = a.seq === lastSeq + 1 ? `seq ${a.seq} is` : `seqs ${lastSeq + 1}..${a.seq} are`;
      return result({ kind: 'truncated', file: last.file, line: last.line + 1, seq: lastSeq + 1, message: `${last.file}: log ends at seq ${lastSeq} but the anchor saw seq ${a.seq} durable: ${range} cut off (truncated)` }, entries.length, start, lastSeq);
    }
    const idx = a ? bySeq.get(a.seq) : undefined;
    if (a && idx !== undefined && lineHash(entries[idx].text) !== a.hash) {
      const e = entries[idx];
      return result({ kind: 'edited', file: e.file, line: e.line, seq: a.seq, message: `${at(e)}: record seq ${a.seq} differs from the one the anchor saw durable (log rewritten)` }, entries.length, start, lastSeq);
    }
  }
  return result(null, entries.length, start, lastSeq);
}

// All complete, parseable records of the given files, in order (query and cross-check read through this).
export function* readRecords(files: string[]): Generator<AuditRecord> {
  for (const file of files) {
    const text = fs.readFileSync(file, 'utf8');
    let from = 0;
    for (;;) {
      const nl = text.indexOf('\n', from);
      if (nl < 0) break;
      const line = text.slice(from, nl);
      from = nl + 1;
      try {
        const r = JSON.parse(line) as AuditRecord;
        if (!checkShape(r)) yield r;
      } catch {
        // verify reports it; query skips it
      }
    }
  }
}
