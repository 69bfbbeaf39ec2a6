// SPDX-License-Identifier: Apache-2.0
// Cross-check: every write the helper executed must match one allowed front-end intent (same request id, identity,
// operation, object and request digest), each request id may be executed once, and the audit records the helper
// anchored (its journal keeps SEQ:HASH of each write's intent) must still be in the log, byte for byte. An audited
// success the helper never journaled is reported too; an intent without an outcome record ("outcome unknown": the
// front end stopped in between) is resolved against the journal: executed (with its result) or not.
//
// Streaming, in memory bounded by a window of audit records, not by the size of the logs: pass 1 reads the journal
// for its newest anchor; pass 2 walks the journal and advances through the audit log only as far as each write's
// anchor, keeping the intents of the last `window` audit records; a write whose intent or anchor is no longer in the
// window (a replayed old id, a write without an anchor) is set aside and settled by pass 3, which rereads both for just
// those request ids. Memory grows only with such anomalies.
import { readLines } from './fs-layer';
import type { JournalRecord } from './journal';
import { type AuditRecord, GENESIS, checkShape, lineHash } from './schema';

export interface CrossCheckProblem {
  journalSeq: number;
  requestId: string;
  message: string;
}

// An intent without an outcome record, or a write begun in the journal without an end, and what the other side says.
export interface Resolution {
  auditSeq: number | null;
  journalSeq: number | null;
  requestId: string;
  executed: boolean | null; // null: cannot be told
  message: string;
}

export interface CrossCheckResult {
  problems: CrossCheckProblem[];
  resolutions: Resolution[];
  writes: number; // writes in the journal (begin or one-line records)
  auditRecords: number;
  setAside: number; // writes settled by pass 3
  uncheckable: number; // allowed intents of helper requests older than the journal's first record (its first files pruned or archived)
}

export interface SealedRecord {
  rec: AuditRecord;
  hash: string; // lineHash of the record's line
}

export const CROSS_CHECK_WINDOW = 20_000;

// Every parseable record of the files, in order, with the hash of its line (what the helper's anchor names); streams.
export function* readSealedRecords(files: string[]): Generator<SealedRecord> {
  for (const file of files) {
    for (const line of readLines(file)) {
      try {
        const rec = JSON.parse(line) as AuditRecord;
        if (!checkShape(rec)) yield { rec, hash: lineHash(line) };
      } catch {
        // verify reports it
      }
    }
  }
}

const hex = (uuid: string | undefined): string | undefined => uuid?.replace(/-/g, '').toLowerCase();

function parseHead(head: string | undefined): { seq: number; hash: string } | null {
  const m = /^([0-9]{1,15}):([0-9a-f]{64})$/.exec(head ?? '');
  return m ? { seq: Number(m[1]), hash: m[2] } : null;
}

// The part of an intent the checks need (a few hundred bytes, not the whole record).
interface Intent {
  seq: number;
  hash: string;
  rid: string;
  ts: string;
  user: string;
  tenant: string;
  allow: boolean;
  procedure: string;
  helperOp?: string;
  digest?: string;
  uuid?: string;
  objName?: string;
  outcome?: 'success' | 'error';
  code?: string;
  executedBy: number; // journal seq of the first write that executed it, -1: none
  result?: string | null; // the journal's result for it; null: begun, no end line
}

interface At {
  hash: string;
  kind: string;
  rid: string;
}

function intentOf(sr: SealedRecord): Intent {
  const r = sr.rec;
  return {
    seq: r.seq,
    hash: sr.hash,
    rid: r.requestId ?? '',
    ts: r.ts,
    user: r.who?.user ?? '',
    tenant: r.who?.tenant ?? '',
    allow: r.decision?.result === 'allow',
    procedure: r.what?.procedure ?? '?',
    helperOp: r.what?.helperOp,
    digest: r.what?.digest,
    uuid: r.what?.object?.uuid,
    objName: r.what?.object?.name,
    executedBy: -1,
  };
}

const describeIntent = (i: Intent): string =>
  `audit seq ${i.seq}: ${i.procedure}${i.objName ? ` on ${i.objName}` : ''}${i.uuid ? ` (${i.uuid})` : ''} by ${i.user || '?'}/${i.tenant || '?'} at ${i.ts}, request ${i.rid}`;

const describeWrite = (j: JournalRecord): string =>
  `helper journal seq ${j.seq}: ${j.op}${j.uuid ? ` on ${j.uuid}` : ''}${j.name ? ` (${j.name})` : ''} at ${j.ts}, claimed by ${j.user ?? '?'}/${j.tenant ?? '?'}, request ${j.requestId || '(none)'}${j.result !== undefined ? `, result ${j.result}` : ''}`;

const isWrite = (j: JournalRecord): boolean => j.phase === undefined || j.phase === 'begin'; // not 'end' nor 'pruned'

// The checks of one executed write, given what is known about its request id and anchor.
function checkWrite(
  j: JournalRecord,
  intent: Intent | undefined,
  firstExecution: number | undefined,
  anchorAt: At | undefined,
  lastSeq: number,
  out: RawProblem[],
): void {
  const rid = j.requestId ?? '';
  const problem = (message: string): void => void out.push({ j, message });
  if (rid && firstExecution !== undefined && firstExecution !== j.seq) problem(`request id already executed at journal seq ${firstExecution} (replayed)`);
  if (!intent) {
    problem('no front-end audit record (front end bypassed or compromised)');
  } else if (!intent.allow) {
    problem('the front end recorded this request as denied');
  } else {
    if (intent.user !== (j.user ?? '') || intent.tenant !== (j.tenant ?? ''))
      problem(`the audit intent names ${intent.user || '?'}/${intent.tenant || '?'} (identity mismatch)`);
    if (j.digest !== undefined || intent.helperOp !== undefined) {
      // Records from before request digests existed carry neither; from then on both sides must agree.
      if (intent.helperOp !== j.op) problem(`the audit intent allowed ${intent.helperOp ?? 'no helper request'}, not ${j.op} (operation mismatch)`);
      else if (intent.digest !== j.digest) problem('the request executed differs from the one the audit intent allowed (argument digest mismatch)');
    }
    const iu = hex(intent.uuid);
    if (iu && j.uuid && iu !== hex(j.uuid)) problem(`the audit intent names domain ${intent.uuid} (object mismatch)`);
  }
  const head = parseHead(j.auditHead);
  if (head) {
    if (!anchorAt) {
      problem(
        head.seq > lastSeq
          ? `the audit log ends at seq ${lastSeq} but the helper anchored seq ${head.seq} (audit log truncated or replaced)`
          : `audit record seq ${head.seq}, anchored by the helper, is missing (audit log rewritten)`,
      );
    } else if (anchorAt.hash !== '' && anchorAt.hash !== head.hash) {
      problem(`audit record seq ${head.seq} differs from the one the helper anchored (audit log rewritten or replaced)`);
    } else if (anchorAt.rid !== rid || anchorAt.kind !== 'intent') {
      problem(`audit record seq ${head.seq}, anchored by the helper, is not this request's intent (audit log rewritten)`);
    }
  }
}

type Source<T> = () => Iterable<T>;

// Described only at the end, so a begin line's problem names the result its end line brought.
interface RawProblem {
  j: JournalRecord;
  message: string;
}

// A helper write without a matching allowed intent means the front end was bypassed or compromised; an anchored
// record that is missing or different means the audit log was truncated, rewritten or replaced.
export function crossCheckStreams(
  frontSrc: Source<SealedRecord | AuditRecord>,
  journalSrc: Source<JournalRecord>,
  opts: { window?: number } = {},
): CrossCheckResult {
  const W = opts.window ?? CROSS_CHECK_WINDOW;
  const sealed = (item: SealedRecord | AuditRecord): SealedRecord => ('rec' in item ? item : { rec: item, hash: '' });

  // Pass 1: the journal's newest anchor, and when it starts.
  let newestAnchor = -1;
  let journalStart: string | null = null; // ts of its first record (of the oldest file given)
  let midChain = false; // its first record is not the first ever written (retention pruned the files before it)
  for (const j of journalSrc()) {
    if (journalStart === null) midChain = j.prev !== GENESIS;
    journalStart ??= j.ts ?? '';
    const h = parseHead(j.auditHead);
    if (h && h.seq > newestAnchor) newestAnchor = h.seq;
  }
  // Whether the journal covers the time of an intent (both processes stamp with the host's clock): an intent older than
  // its first record (a journal started afresh, or whose first files were pruned or archived) cannot be looked up in it.
  // After a prune, a write of the same millisecond as the first kept record may be in the files before it.
  const covered = (i: Intent): boolean => journalStart !== null && (midChain ? i.ts > journalStart : i.ts >= journalStart);
  let uncheckable = 0;

  // Pass 2.
  const raw: RawProblem[] = [];
  const front = frontSrc()[Symbol.iterator]();
  let auditDone = false;
  let cursor = -1; // seq of the last audit record read
  let firstSeq = Infinity;
  let lastSeq = -1;
  let auditRecords = 0;
  const ring = new Map<number, At>(); // the last W audit records: what an anchor may name
  const ringOrder: number[] = [];
  let ringHead = 0;
  const window = new Map<string, Intent>(); // intents of the last W records, by request id
  const windowOrder: Intent[] = [];
  let windowHead = 0;
  const noOutcome = new Map<string, Intent>(); // left the window without an outcome record
  const unjournaled = new Map<string, Intent>(); // audited success of a helper request, not (yet) seen in the journal
  const settle = (i: Intent): void => {
    if (window.get(i.rid) === i) window.delete(i.rid);
    if (!i.outcome) noOutcome.set(i.rid, i);
    else if (i.outcome === 'success' && i.helperOp && i.executedBy < 0 && covered(i)) unjournaled.set(i.rid, i);
  };
  const readOne = (): boolean => {
    const n = front.next();
    if (n.done) {
      auditDone = true;
      return false;
    }
    const sr = sealed(n.value);
    const r = sr.rec;
    auditRecords++;
    cursor = r.seq;
    if (r.seq > lastSeq) lastSeq = r.seq;
    if (r.seq < firstSeq) firstSeq = r.seq;
    ring.set(r.seq, { hash: sr.hash, kind: r.kind, rid: r.requestId ?? '' });
    ringOrder.push(r.seq);
    if (r.kind === 'intent' && r.requestId) {
      const i = intentOf(sr);
      if (i.allow && i.helperOp && !covered(i)) uncheckable++;
      const older = window.get(i.rid);
      if (older) settle(older); // the later intent of a reused id is the one a write is checked against
      window.set(i.rid, i);
      windowOrder.push(i);
    } else if (r.kind === 'outcome' && r.requestId) {
      const i = window.get(r.requestId) ?? noOutcome.get(r.requestId);
      if (i && !i.outcome) {
        i.outcome = r.outcome?.result === 'success' ? 'success' : 'error';
        i.code = r.outcome?.code;
        if (noOutcome.get(i.rid) === i) {
          noOutcome.delete(i.rid);
          settle(i);
        }
      }
    }
    // Evict what fell out of the window.
    while (ringHead < ringOrder.length && ringOrder[ringHead] < cursor - W) ring.delete(ringOrder[ringHead++]);
    while (windowHead < windowOrder.length && windowOrder[windowHead].seq < cursor - W) {
      const i = windowOrder[windowHead++];
      if (window.get(i.rid) === i) settle(i);
    }
    if (ringHead > 65536) {
      ringOrder.splice(0, ringHead);
      ringHead = 0;
    }
    if (windowHead > 65536) {
      windowOrder.splice(0, windowHead);
      windowHead = 0;
    }
    return true;
  };
  const need = (seq: number): void => {
    while (!auditDone && cursor < seq) readOne();
  };
  readOne(); // the first record: where the log starts (retention)

  let writes = 0;
  const setAside: JournalRecord[] = [];
  const begun = new Map<number, { j: JournalRecord; intent?: Intent }>(); // begins whose end line has not been read
  for (const j of journalSrc()) {
    if (!isWrite(j)) {
      const b = begun.get(j.of ?? -1);
      if (b) {
        begun.delete(j.of!);
        b.j.result = j.result;
        b.j.name ??= j.name; // known only after the run (the domain's name; a define's uuid)
        b.j.uuid ??= j.uuid;
        if (b.intent) b.intent.result = j.result ?? null;
      }
      continue;
    }
    writes++;
    const rid = j.requestId ?? '';
    const anchor = parseHead(j.auditHead);
    if (anchor) need(anchor.seq);
    // Older writes may have their intents in audit files pruned by retention; the newest anchored one never may, so a
    // log replaced by one that starts later than the last write is still caught.
    if (anchor && anchor.seq < firstSeq && anchor.seq !== newestAnchor && lastSeq >= 0) continue;
    const intent = rid ? window.get(rid) : undefined;
    const anchorKnown = !anchor ? false : anchor.seq > lastSeq ? auditDone : ring.has(anchor.seq) || (anchor.seq >= cursor - W && anchor.seq <= cursor);
    const record: JournalRecord = j.phase === 'begin' ? { ...j, result: undefined } : j;
    if (intent && anchorKnown) {
      checkWrite(record, intent, intent.executedBy >= 0 ? intent.executedBy : undefined, anchor ? ring.get(anchor.seq) : undefined, lastSeq, raw);
      if (intent.executedBy < 0) intent.executedBy = j.seq;
      if (intent.executedBy === j.seq) intent.result = j.phase === 'begin' ? null : (j.result ?? null);
      if (j.phase === 'begin') begun.set(j.seq, { j: record, intent: intent.executedBy === j.seq ? intent : undefined });
    } else {
      if (intent && intent.executedBy < 0) {
        intent.executedBy = j.seq;
        intent.result = j.phase === 'begin' ? null : (j.result ?? null);
      }
      setAside.push(record);
      if (j.phase === 'begin') begun.set(j.seq, { j: record, intent: intent?.executedBy === j.seq ? intent : undefined });
    }
  }
  while (!auditDone) readOne();
  for (const i of [...window.values()]) settle(i);

  // Pass 3: only the request ids set aside.
  if (setAside.length) {
    const rids = new Set(setAside.map((j) => j.requestId ?? '').filter(Boolean));
    const anchors = new Set(setAside.map((j) => parseHead(j.auditHead)?.seq).filter((s): s is number => s !== undefined));
    const intents = new Map<string, Intent>();
    const atSeq = new Map<number, At>();
    for (const item of frontSrc()) {
      const sr = sealed(item);
      const r = sr.rec;
      if (r.kind === 'intent' && r.requestId && rids.has(r.requestId)) intents.set(r.requestId, intentOf(sr));
      if (anchors.has(r.seq)) atSeq.set(r.seq, { hash: sr.hash, kind: r.kind, rid: r.requestId ?? '' });
    }
    const first = new Map<string, number>();
    for (const j of journalSrc()) if (isWrite(j) && j.requestId && rids.has(j.requestId) && !first.has(j.requestId)) first.set(j.requestId, j.seq);
    for (const j of setAside) {
      const rid = j.requestId ?? '';
      const anchor = parseHead(j.auditHead);
      checkWrite(j, rid ? intents.get(rid) : undefined, rid ? first.get(rid) : undefined, anchor ? atSeq.get(anchor.seq) : undefined, lastSeq, raw);
      // The write was executed: an audited success or an unknown outcome of this id is accounted for.
      const u = unjournaled.get(rid);
      if (u) unjournaled.delete(rid);
      const n = noOutcome.get(rid);
      if (n && n.executedBy < 0) {
        n.executedBy = j.seq;
        n.result = j.result ?? null;
      }
    }
  }

  const problems: CrossCheckProblem[] = raw.map(({ j, message }) => ({
    journalSeq: j.seq,
    requestId: j.requestId ?? '',
    message: `${describeWrite(j)}: ${message}`,
  }));
  for (const i of unjournaled.values()) {
    problems.push({
      journalSeq: -1,
      requestId: i.rid,
      message: `${describeIntent(i)}: the front end recorded ${i.helperOp} as a success, but the helper journal has no record of executing it (executed without its journal line, or journal lines lost)`,
    });
  }
  problems.sort((a, b) => a.journalSeq - b.journalSeq);

  const resolutions: Resolution[] = [];
  for (const i of noOutcome.values()) {
    if (!i.allow) continue;
    let executed: boolean | null;
    let how: string;
    if (i.executedBy >= 0 && typeof i.result === 'string') {
      executed = true;
      how = `executed: helper journal seq ${i.executedBy}, result ${i.result}`;
    } else if (i.executedBy >= 0) {
      executed = null;
      how = `reached the helper (journal seq ${i.executedBy}), which recorded no result (it stopped mid-write): check the VM`;
    } else if (covered(i)) {
      executed = false;
      how = 'not executed: the helper journal has no record of it';
    } else {
      executed = null;
      how = 'cannot be told: it is older than the helper journal';
    }
    resolutions.push({
      auditSeq: i.seq,
      journalSeq: i.executedBy >= 0 ? i.executedBy : null,
      requestId: i.rid,
      executed,
      message: `${describeIntent(i)}: outcome unknown in the audit log; ${how}`,
    });
  }
  for (const { j, intent } of begun.values()) {
    if (intent && !intent.outcome) continue; // already told above, from the intent's side
    const front = intent?.outcome
      ? `the front end recorded ${intent.outcome === 'success' ? 'success' : `error ${intent.code ?? ''}`.trim()}`
      : 'no front-end outcome';
    resolutions.push({
      auditSeq: intent?.seq ?? null,
      journalSeq: j.seq,
      requestId: j.requestId ?? '',
      executed: intent?.outcome === 'success' ? true : null,
      message: `${describeWrite(j)}: begun, no result line (the helper stopped mid-write); ${front}`,
    });
  }
  resolutions.sort((a, b) => (a.auditSeq ?? a.journalSeq ?? 0) - (b.auditSeq ?? b.journalSeq ?? 0));
  return { problems, resolutions, writes, auditRecords, setAside: setAside.length, uncheckable };
}

// In-memory form (tests, small logs).
export function crossCheck(front: Iterable<SealedRecord | AuditRecord>, journal: readonly JournalRecord[]): CrossCheckProblem[] {
  const f = [...front];
  return crossCheckStreams(
    () => f,
    () => journal,
  ).problems;
}
