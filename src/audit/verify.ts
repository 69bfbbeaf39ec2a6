// SPDX-License-Identifier: Apache-2.0
// Offline verification of the audit chain across rotated files: names the first record edited, deleted, inserted,
// reordered, forged with a later sealing key, or cut off.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseAnchor } from './appender';
import { type VerifyKey, parseKeyField } from './keys';
import { type AuditRecord, GENESIS, checkShape, hmacHex, lineHash, splitMac } from './schema';

// forged: sealed with a key the chain could not have used there (an unknown seed, an epoch going back or skipping
// ahead, an epoch that begins where the appender would not have evolved): what someone holding a later sealing state,
// but not the verification key, can produce.
export type ProblemKind = 'edited' | 'deleted' | 'inserted' | 'reordered' | 'truncated' | 'unanchored' | 'forged';

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
  anchorChecked: boolean;
  prunedThrough: { seq: number; recordSeq: number } | null; // the log starts after seq `seq`, as the log-pruned record `recordSeq` says
  problem: Problem | null;
  ms: number;
}

export interface VerifyOptions {
  keys: VerifyKey | null; // null: chain only (who holds no key can still check the hashes)
  anchor?: string | null; // anchor file: catches a log cut short at a record boundary; a missing anchor is a problem
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

// Allowed difference between the clock that timed an epoch and the timestamps of its records (both the appender's).
const CLOCK_SLACK_MS = 1000;
// Records a new run of the appender writes first: daemon-start, or the recovery events its start-up writes (in a batch
// of their own, before daemon-start) after a crash.
const RUN_START_EVENTS = new Set(['daemon-start', 'recovered-torn-line', 'log-gap']);
const eventName = (r: AuditRecord): string | undefined => (r.kind === 'event' ? r.event?.name : undefined);

// The epoch the walk is in: how many records it has sealed so far (null: it began before the first record in view,
// pruned or archived) and a lower bound on when it began (ms; NaN when unknown).
interface EpochSpan {
  seed: number;
  epoch: number;
  field: string;
  count: number | null;
  floor: number;
}

// Whether the appender could have evolved from the epoch `span` (ending at record q) to the next one at record r:
// null if so, otherwise why not. The appender evolves (appender.ts #evolutionDue, close, #start) only
//   - at the first batch after the epoch sealed epochRecords records (a batch may carry it past that number),
//   - at the first batch once epochSeconds have passed since the epoch began; it began (its state was written) after
//     the last record of the epoch before it, or, for epoch 0, when the seed was made,
//   - at a restart: a clean stop evolves after daemon-stop; a new run whose log ends at the state's epoch evolves at
//     its first batch, which is daemon-start or the recovery events written before it.
// Someone holding a later sealing state can re-seal a tail of the log but not the records before it: he cannot add
// records to the epoch he cuts into, nor make q the daemon-stop it was not. He can still date r late enough, or make r
// a daemon-start (a fake crash-restart: no daemon-stop before it): what only the helper journal's anchors catch.
function boundaryUnjustified(span: EpochSpan, seed: { epochRecords: number; epochSeconds: number }, q: AuditRecord, r: AuditRecord): string | null {
  if (span.count === null || span.count >= seed.epochRecords) return null;
  const t = Date.parse(r.ts);
  if (t + CLOCK_SLACK_MS >= span.floor + seed.epochSeconds * 1000) return null; // false for NaN
  if (eventName(q) === 'daemon-stop' || RUN_START_EVENTS.has(eventName(r) ?? '')) return null;
  const secs = Number.isNaN(span.floor) || Number.isNaN(t) ? 'an unknown time' : `${Math.max(0, (t - span.floor) / 1000).toFixed(1)} s`;
  return (
    `epoch ${span.epoch + 1} begins at seq ${r.seq} after only ${span.count} record(s) and ${secs} of epoch ${span.epoch} ` +
    `(the key evolves after ${seed.epochRecords} records or ${seed.epochSeconds} s), with no restart: records re-sealed with a later key`
  );
}

function verifyEntries(entries: Entry[], opts: VerifyOptions): Omit<VerifyResult, 'files' | 'ms'> {
  const keys = opts.keys;
  const bySeq = new Map<number, number>(); // seq -> first index holding it
  entries.forEach((e, i) => {
    if (e.rec && !e.bad && !bySeq.has(e.rec.seq)) bySeq.set(e.rec.seq, i);
  });
  let prunedThrough: VerifyResult['prunedThrough'] = null;
  const anchorChecked = !!opts.anchor && keys !== null;
  const result = (problem: Problem | null, records: number, firstSeq: number, lastSeq: number) => ({
    ok: problem === null,
    records,
    firstSeq,
    lastSeq,
    macChecked: keys !== null,
    anchorChecked,
    prunedThrough,
    problem,
  });
  if (!entries.length) return result(checkAnchor(opts, null, bySeq, entries, -1), 0, -1, -1);
  const start = entries[0].rec?.seq ?? 0;
  let expected = opts.allowPartial ? start : 0;
  let prev: string | null = opts.allowPartial && start !== 0 ? null : GENESIS; // null: accept whatever the first record chains to
  if (start > 0 && !opts.allowPartial) {
    // Retention pruned the oldest files: a log-pruned record among those kept says so and names the hash the first
    // kept record chains to. The walk below checks that record's MAC like any other.
    const first = entries[0].rec!;
    const pr = entries.find(
      (e) =>
        e.rec?.kind === 'event' &&
        e.rec.event?.name === 'log-pruned' &&
        e.rec.event.detail?.throughSeq === start - 1 &&
        e.rec.event.detail.throughHash === first.prev,
    );
    if (pr) {
      expected = start;
      prev = first.prev;
      prunedThrough = { seq: start - 1, recordSeq: pr.rec!.seq };
    }
  }
  let lastSeq = -1;
  let lastKey: EpochSpan | null = null;
  let lastRec: AuditRecord | null = null;
  const at = (e: Entry) => `${e.file}:${e.line}`;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    const where = lastSeq >= 0 ? `after seq ${lastSeq}` : 'at the start of the log';
    if (e.torn) {
      return result(
        { kind: 'truncated', file: e.file, line: e.line, message: `${at(e)}: record ${where} is cut short (torn last line, ${e.text.length} bytes)` },
        i,
        start,
        lastSeq,
      );
    }
    const rec = e.rec;
    if (!rec || e.bad) {
      const claims = rec && Number.isSafeInteger(rec.seq) ? ` (claims seq ${rec.seq})` : '';
      return result(
        {
          kind: 'edited',
          file: e.file,
          line: e.line,
          seq: expected,
          message: `${at(e)}: record ${where}${claims} is not a valid audit record (${e.bad}): edited`,
        },
        i,
        start,
        lastSeq,
      );
    }
    if (keys) {
      const parts = splitMac(e.text);
      const k = keys.keyFor(rec.key);
      if (!k && parts) {
        const seeded = parseKeyField(rec.key);
        const why = seeded ? `seed ${seeded.seedId} is not in the verification key ${keys.file}` : `'${rec.key}' is not a forward-secure key (seed.epoch)`;
        return result(
          {
            kind: 'forged',
            file: e.file,
            line: e.line,
            seq: rec.seq,
            message: `${at(e)}: record seq ${rec.seq} was sealed with a key the verification key does not give (${why}): forged`,
          },
          i,
          start,
          lastSeq,
        );
      }
      if (!parts || !k || hmacHex(k, parts.body) !== parts.mac) {
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
        p = {
          kind: 'inserted',
          file: e.file,
          line: e.line,
          seq: rec.seq,
          message: `${at(e)}: record seq ${rec.seq} appears again ${where} (a copy was inserted or records were reordered)`,
        };
      } else if (later !== undefined && later > i) {
        p = {
          kind: 'reordered',
          file: e.file,
          line: e.line,
          seq: rec.seq,
          message: `${at(e)}: record seq ${rec.seq} is out of order: seq ${expected} comes later, at ${at(entries[later])} (records reordered)`,
        };
      } else {
        const range = rec.seq - 1 === expected ? `seq ${expected} is` : `seqs ${expected}..${rec.seq - 1} are`;
        const why = i === 0 ? '; no log-pruned record accounts for them' : '';
        p = { kind: 'deleted', file: e.file, line: e.line, seq: expected, message: `${at(e)}: record ${range} missing before seq ${rec.seq} (deleted${why})` };
      }
      return result(p, i, start, lastSeq);
    }
    if (prev !== null && rec.prev !== prev) {
      const msg =
        prev === GENESIS && rec.seq === 0
          ? 'the first record does not start the chain'
          : `record seq ${rec.seq} does not chain to the record before it (that record was changed or replaced)`;
      return result({ kind: 'edited', file: e.file, line: e.line, seq: rec.seq, message: `${at(e)}: ${msg}` }, i, start, lastSeq);
    }
    if (keys) {
      // Keys only move forward, one epoch at a time (the appender never evolves past an epoch that sealed nothing); a
      // new seed starts at epoch 0. Whoever holds the sealing state of epoch c can seal as c or later, never earlier:
      // re-sealing an edited past onto older records shows as an epoch that goes back or jumps.
      // An epoch boundary must also be one the appender could have made (boundaryUnjustified): otherwise whoever holds
      // the state of epoch e+1 could cut into epoch e anywhere and re-seal from there on.
      if (lastKey && lastKey.field === rec.key) {
        if (lastKey.count !== null) lastKey.count += 1;
      } else {
        const kf = parseKeyField(rec.key)!; // parsed once per epoch: consecutive records share their key
        const seed = keys.seedIndex(kf.seedId);
        const made = Date.parse(keys.seeds[seed].created);
        const cur: EpochSpan = { seed, epoch: kf.epoch, field: rec.key, count: 1, floor: kf.epoch === 0 ? made : NaN };
        let why: string | null = null;
        if (lastKey) {
          if (cur.seed < lastKey.seed || (cur.seed === lastKey.seed && cur.epoch < lastKey.epoch))
            why = `its key ${rec.key} is older than ${lastKey.field}, which sealed the record before it: keys never go back`;
          else if (cur.seed === lastKey.seed && cur.epoch > lastKey.epoch + 1)
            why = `its key ${rec.key} skips from epoch ${lastKey.epoch} to ${cur.epoch}: records sealed with a later sealing state were chained onto older ones`;
          else if (cur.seed > lastKey.seed && cur.epoch !== 0)
            why = `it is the first record of seed ${keys.seeds[cur.seed].id} but is sealed at epoch ${cur.epoch}, not 0`;
          else if (cur.seed === lastKey.seed) {
            why = boundaryUnjustified(lastKey, keys.seeds[cur.seed], lastRec!, rec);
            cur.floor = Date.parse(lastRec!.ts); // the new epoch's state was written after the last record of this one
          }
        } else if (prev === GENESIS && cur.epoch !== 0) {
          why = `the log's first record is sealed at epoch ${cur.epoch}, not 0: the records before it were removed and the chain restarted`;
        } else if (prev !== GENESIS) {
          cur.count = null; // the log starts mid-chain: this epoch may have begun in the files before it
        }
        if (why)
          return result(
            { kind: 'forged', file: e.file, line: e.line, seq: rec.seq, message: `${at(e)}: record seq ${rec.seq} is forged: ${why}` },
            i,
            start,
            lastSeq,
          );
        lastKey = cur;
      }
      lastRec = rec;
    }
    prev = lineHash(e.text);
    lastSeq = rec.seq;
    expected = rec.seq + 1;
  }
  return result(checkAnchor(opts, keys, bySeq, entries, lastSeq), entries.length, start, lastSeq);
}

// The anchor (rewritten after every batch) must exist, verify, name this log, and name a record that is present, with
// that record's hash and key; a record it saw durable that is gone means the log was cut short.
function checkAnchor(opts: VerifyOptions, keys: VerifyKey | null, bySeq: Map<number, number>, entries: Entry[], lastSeq: number): Problem | null {
  if (!opts.anchor || !keys) return null;
  const at = (e: Entry) => `${e.file}:${e.line}`;
  const unanchored = (message: string): Problem => ({ kind: 'unanchored', file: opts.anchor!, line: 0, message: `${opts.anchor}: ${message}` });
  let text: string;
  try {
    text = fs.readFileSync(opts.anchor, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    return unanchored(
      `anchor ${code === 'ENOENT' ? 'missing' : `unreadable (${code})`}: records cut off the end of the log could not be detected (deleted with the log? use --no-anchor only for archived copies)`,
    );
  }
  const last = entries[entries.length - 1] as Entry | undefined;
  if (!text.trim()) {
    return last ? unanchored(`anchor is empty but the log holds records up to seq ${lastSeq} (anchor wiped)`) : null;
  }
  const a = parseAnchor(text, (f) => keys.keyFor(f));
  if (!a || !a.verified) return unanchored(`anchor does not verify (${a ? `unknown key ${a.key}` : 'edited'})`);
  if (!last)
    return {
      kind: 'truncated',
      file: opts.anchor,
      line: 0,
      seq: 0,
      message: `${opts.anchor}: the log is empty but the anchor saw seq ${a.seq} durable: seqs 0..${a.seq} are cut off (truncated)`,
    };
  const logName = path.basename(last.file).replace(/\.\d{12}$/, '');
  if (a.log !== logName) return unanchored(`anchor belongs to log ${a.log}, not ${logName}`);
  if (a.seq > lastSeq) {
    const range = a.seq === lastSeq + 1 ? `seq ${a.seq} is` : `seqs ${lastSeq + 1}..${a.seq} are`;
    return {
      kind: 'truncated',
      file: last.file,
      line: last.line + 1,
      seq: lastSeq + 1,
      message: `${last.file}: log ends at seq ${lastSeq} but the anchor saw seq ${a.seq} durable: ${range} cut off (truncated)`,
    };
  }
  const idx = bySeq.get(a.seq);
  if (idx !== undefined) {
    const e = entries[idx];
    if (lineHash(e.text) !== a.hash)
      return {
        kind: 'edited',
        file: e.file,
        line: e.line,
        seq: a.seq,
        message: `${at(e)}: record seq ${a.seq} differs from the one the anchor saw durable (log rewritten)`,
      };
    if (e.rec!.key !== a.key)
      return {
        kind: 'forged',
        file: opts.anchor,
        line: 0,
        seq: a.seq,
        message: `${opts.anchor}: anchor sealed with key ${a.key}, but record seq ${a.seq} with ${e.rec!.key}: forged with a later sealing state`,
      };
  }
  return null;
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
