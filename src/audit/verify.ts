// SPDX-License-Identifier: Apache-2.0
// Offline verification of the audit chain across rotated files: names the first record edited, deleted, inserted,
// reordered, forged with a later sealing key, or cut off.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Anchor, parseAnchor } from './appender';
import { readLines } from './fs-layer';
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

// The entries of the files in order, one line in memory at a time (plus the one looked ahead at).
function* entriesOf(files: string[]): Generator<Entry> {
  for (const file of files) {
    let n = 0;
    let tail = '';
    for (const text of readLines(file, (t) => (tail = t))) yield parse(file, ++n, text, false);
    if (tail) yield parse(file, n + 1, tail, true);
  }
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

// A stream of entries with one entry of lookahead.
class Entries {
  readonly #it: Iterator<Entry>;
  #next: Entry | undefined;
  constructor(files: string[]) {
    this.#it = entriesOf(files)[Symbol.iterator]();
    this.#next = this.#pull();
  }
  #pull(): Entry | undefined {
    const n = this.#it.next();
    return n.done ? undefined : n.value;
  }
  peek(): Entry | undefined {
    return this.#next;
  }
  shift(): Entry | undefined {
    const e = this.#next;
    if (e) this.#next = this.#pull();
    return e;
  }
  close(): void {
    this.#it.return?.(); // closes the file being read
  }
}

// Streams the files (memory independent of the log's size); the anchor is read first, so that a log still being
// appended to is read at least as far as the anchor it is compared with.
export function verifyFiles(files: string[], opts: VerifyOptions): VerifyResult {
  const t0 = process.hrtime.bigint();
  const anchor = readAnchor(opts);
  // A log starting after seq 0 is walked first as pruned by retention; if no log-pruned record accounts for its start,
  // it is walked again as a whole log (which fails at its first record), so the verdict is the one without the claim.
  let w = walk(files, opts, anchor, true);
  if (w.assumedPruned && !w.prunedBy) w = walk(files, opts, anchor, false);
  return { ...w.result, files, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
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

// What the anchor file held when verify began; null when the anchor is not checked.
interface AnchorRead {
  text: string | null; // null: unreadable
  code: string; // why it is unreadable
  a: Anchor | null;
}

function readAnchor(opts: VerifyOptions): AnchorRead | null {
  const keys = opts.keys;
  if (!opts.anchor || !keys) return null;
  try {
    const text = fs.readFileSync(opts.anchor, 'utf8');
    return { text, code: '', a: text.trim() ? parseAnchor(text, (f) => keys.keyFor(f)) : null };
  } catch (e) {
    return { text: null, code: (e as NodeJS.ErrnoException).code ?? (e as Error).message, a: null };
  }
}

// The record the anchor names, as the walk met it.
interface Anchored {
  file: string;
  line: number;
  hash: string;
  key: string;
}

interface Walk {
  result: Omit<VerifyResult, 'files' | 'ms'>;
  assumedPruned: boolean; // the walk took a log starting after seq 0 as pruned by retention
  prunedBy: number | null; // seq of the first log-pruned record that accounts for that start
}

// One pass over the log. `assumePruned`: a log whose first record is past seq 0 is taken to start where retention
// pruned it (checked against the log-pruned records met anywhere in the log; on a problem, the rest of the log is read
// for one).
function walk(files: string[], opts: VerifyOptions, anchor: AnchorRead | null, assumePruned: boolean): Walk {
  const es = new Entries(files);
  try {
    return walkEntries(es, opts, anchor, assumePruned);
  } finally {
    es.close();
  }
}

function walkEntries(es: Entries, opts: VerifyOptions, anchor: AnchorRead | null, assumePruned: boolean): Walk {
  const keys = opts.keys;
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
  const first = es.peek();
  if (!first) return { result: result(checkAnchor(opts, anchor, null, null, -1), 0, -1, -1), assumedPruned: false, prunedBy: null };
  const start = first.rec?.seq ?? 0;
  let expected = opts.allowPartial ? start : 0;
  let prev: string | null = opts.allowPartial && start !== 0 ? null : GENESIS; // null: accept whatever the first record chains to
  // Retention pruned the oldest files: a log-pruned record among those kept says so and names the hash the first kept
  // record chains to. The walk below checks that record's MAC like any other.
  const assumed = assumePruned && start > 0 && !opts.allowPartial;
  let prunedBy: number | null = null;
  if (assumed) {
    expected = start;
    prev = first.rec!.prev;
  }
  const note = (e: Entry): void => {
    if (
      assumed &&
      prunedBy === null &&
      e.rec?.kind === 'event' &&
      e.rec.event?.name === 'log-pruned' &&
      e.rec.event.detail?.throughSeq === start - 1 &&
      e.rec.event.detail.throughHash === first.rec!.prev
    )
      prunedBy = e.rec.seq;
  };
  let lastSeq = -1;
  const fail = (p: Problem, records: number): Walk => {
    if (assumed) for (let e = es.shift(); e && prunedBy === null; e = es.shift()) note(e);
    if (prunedBy !== null) prunedThrough = { seq: start - 1, recordSeq: prunedBy };
    return { result: result(p, records, start, lastSeq), assumedPruned: assumed, prunedBy };
  };
  // The first valid record holding `seq` further on (every line read on the way is noted).
  const findLater = (seq: number): Entry | undefined => {
    for (let e = es.shift(); e; e = es.shift()) {
      note(e);
      if (e.rec && !e.bad && e.rec.seq === seq) return e;
    }
    return undefined;
  };
  let lastKey: EpochSpan | null = null;
  let lastRec: AuditRecord | null = null;
  let last: Entry | null = null;
  let anchored: Anchored | null = null;
  const anchorSeq = anchor?.a?.seq;
  const at = (e: Entry) => `${e.file}:${e.line}`;
  let i = 0;
  for (let e = es.shift(); e; e = es.shift(), i++) {
    note(e);
    const where = lastSeq >= 0 ? `after seq ${lastSeq}` : 'at the start of the log';
    if (e.torn) {
      return fail(
        { kind: 'truncated', file: e.file, line: e.line, message: `${at(e)}: record ${where} is cut short (torn last line, ${e.text.length} bytes)` },
        i,
      );
    }
    const rec = e.rec;
    if (!rec || e.bad) {
      const claims = rec && Number.isSafeInteger(rec.seq) ? ` (claims seq ${rec.seq})` : '';
      return fail(
        {
          kind: 'edited',
          file: e.file,
          line: e.line,
          seq: expected,
          message: `${at(e)}: record ${where}${claims} is not a valid audit record (${e.bad}): edited`,
        },
        i,
      );
    }
    if (keys) {
      const parts = splitMac(e.text);
      const k = keys.keyFor(rec.key);
      if (!k && parts) {
        const seeded = parseKeyField(rec.key);
        const why = seeded ? `seed ${seeded.seedId} is not in the verification key ${keys.file}` : `'${rec.key}' is not a forward-secure key (seed.epoch)`;
        return fail(
          {
            kind: 'forged',
            file: e.file,
            line: e.line,
            seq: rec.seq,
            message: `${at(e)}: record seq ${rec.seq} was sealed with a key the verification key does not give (${why}): forged`,
          },
          i,
        );
      }
      if (!parts || !k || hmacHex(k, parts.body) !== parts.mac) {
        // If the record after it chains to the record before it, this one was slipped in; otherwise it was changed.
        const next = es.peek()?.rec;
        const inserted = next !== undefined && next !== null && prev !== null && next.prev === prev;
        const why = !k ? `unknown key ${rec.key}` : 'MAC mismatch';
        return fail(
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
        );
      }
    }
    if (rec.seq !== expected) {
      let p: Problem;
      if (rec.seq < expected) {
        p = {
          kind: 'inserted',
          file: e.file,
          line: e.line,
          seq: rec.seq,
          message: `${at(e)}: record seq ${rec.seq} appears again ${where} (a copy was inserted or records were reordered)`,
        };
      } else {
        const later = findLater(expected);
        if (later) {
          p = {
            kind: 'reordered',
            file: e.file,
            line: e.line,
            seq: rec.seq,
            message: `${at(e)}: record seq ${rec.seq} is out of order: seq ${expected} comes later, at ${at(later)} (records reordered)`,
          };
        } else {
          const range = rec.seq - 1 === expected ? `seq ${expected} is` : `seqs ${expected}..${rec.seq - 1} are`;
          const why = i === 0 ? '; no log-pruned record accounts for them' : '';
          p = {
            kind: 'deleted',
            file: e.file,
            line: e.line,
            seq: expected,
            message: `${at(e)}: record ${range} missing before seq ${rec.seq} (deleted${why})`,
          };
        }
      }
      return fail(p, i);
    }
    if (prev !== null && rec.prev !== prev) {
      const msg =
        prev === GENESIS && rec.seq === 0
          ? 'the first record does not start the chain'
          : `record seq ${rec.seq} does not chain to the record before it (that record was changed or replaced)`;
      return fail({ kind: 'edited', file: e.file, line: e.line, seq: rec.seq, message: `${at(e)}: ${msg}` }, i);
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
        if (why) return fail({ kind: 'forged', file: e.file, line: e.line, seq: rec.seq, message: `${at(e)}: record seq ${rec.seq} is forged: ${why}` }, i);
        lastKey = cur;
      }
      lastRec = rec;
    }
    prev = lineHash(e.text);
    if (rec.seq === anchorSeq) anchored = { file: e.file, line: e.line, hash: prev, key: rec.key };
    lastSeq = rec.seq;
    expected = rec.seq + 1;
    last = e;
  }
  if (prunedBy !== null) prunedThrough = { seq: start - 1, recordSeq: prunedBy };
  return { result: result(checkAnchor(opts, anchor, last, anchored, lastSeq), i, start, lastSeq), assumedPruned: assumed, prunedBy };
}

// The anchor (rewritten after every batch) must exist, verify, name this log, and name a record that is present, with
// that record's hash and key; a record it saw durable that is gone means the log was cut short.
function checkAnchor(opts: VerifyOptions, an: AnchorRead | null, last: Entry | null, anchored: Anchored | null, lastSeq: number): Problem | null {
  if (!an) return null;
  const file = opts.anchor!;
  const unanchored = (message: string): Problem => ({ kind: 'unanchored', file, line: 0, message: `${file}: ${message}` });
  if (an.text === null) {
    return unanchored(
      `anchor ${an.code === 'ENOENT' ? 'missing' : `unreadable (${an.code})`}: records cut off the end of the log could not be detected (deleted with the log? use --no-anchor only for archived copies)`,
    );
  }
  if (!an.text.trim()) {
    return last ? unanchored(`anchor is empty but the log holds records up to seq ${lastSeq} (anchor wiped)`) : null;
  }
  const a = an.a;
  if (!a || !a.verified) return unanchored(`anchor does not verify (${a ? `unknown key ${a.key}` : 'edited'})`);
  if (!last)
    return {
      kind: 'truncated',
      file,
      line: 0,
      seq: 0,
      message: `${file}: the log is empty but the anchor saw seq ${a.seq} durable: seqs 0..${a.seq} are cut off (truncated)`,
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
  if (anchored) {
    if (anchored.hash !== a.hash)
      return {
        kind: 'edited',
        file: anchored.file,
        line: anchored.line,
        seq: a.seq,
        message: `${anchored.file}:${anchored.line}: record seq ${a.seq} differs from the one the anchor saw durable (log rewritten)`,
      };
    if (anchored.key !== a.key)
      return {
        kind: 'forged',
        file,
        line: 0,
        seq: a.seq,
        message: `${file}: anchor sealed with key ${a.key}, but record seq ${a.seq} with ${anchored.key}: forged with a later sealing state`,
      };
  }
  return null;
}

// All complete, parseable records of the given files, in order (query reads through this); streams.
export function* readRecords(files: string[]): Generator<AuditRecord> {
  for (const file of files) {
    for (const line of readLines(file)) {
      try {
        const r = JSON.parse(line) as AuditRecord;
        if (!checkShape(r)) yield r;
      } catch {
        // verify reports it; query skips it
      }
    }
  }
}
