// SPDX-License-Identifier: Apache-2.0
// Cross-check: every write the helper executed must match one allowed front-end intent (same request id, identity,
// operation, object and request digest), each request id may be executed once, and the audit records the helper
// anchored (its journal keeps SEQ:HASH of each write's intent) must still be in the log, byte for byte.
import * as fs from 'node:fs';
import type { JournalRecord } from './journal';
import { type AuditRecord, checkShape, lineHash } from './schema';

export interface CrossCheckProblem {
  journalSeq: number;
  requestId: string;
  message: string;
}

export interface SealedRecord {
  rec: AuditRecord;
  hash: string; // lineHash of the record's line
}

// Every parseable record of the files, in order, with the hash of its line (what the helper's anchor names).
export function* readSealedRecords(files: string[]): Generator<SealedRecord> {
  for (const file of files) {
    const text = fs.readFileSync(file, 'utf8');
    let from = 0;
    for (;;) {
      const nl = text.indexOf('\n', from);
      if (nl < 0) break;
      const line = text.slice(from, nl);
      from = nl + 1;
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

// A helper write without a matching allowed intent means the front end was bypassed or compromised; an anchored
// record that is missing or different means the audit log was truncated, rewritten or replaced.
export function crossCheck(front: Iterable<SealedRecord | AuditRecord>, journal: readonly JournalRecord[]): CrossCheckProblem[] {
  const anchored = new Map<number, JournalRecord>();
  let newestAnchor = -1;
  for (const j of journal) {
    const h = parseHead(j.auditHead);
    if (h) anchored.set(h.seq, j);
    if (h && h.seq > newestAnchor) newestAnchor = h.seq;
  }
  const intents = new Map<string, SealedRecord>();
  const atSeq = new Map<number, SealedRecord>(); // only the seqs the helper anchored
  let lastSeq = -1;
  let firstSeq = Infinity;
  for (const item of front) {
    const sr: SealedRecord = 'rec' in item ? item : { rec: item, hash: '' };
    if (sr.rec.kind === 'intent' && sr.rec.requestId) intents.set(sr.rec.requestId, sr);
    if (anchored.has(sr.rec.seq)) atSeq.set(sr.rec.seq, sr);
    if (sr.rec.seq > lastSeq) lastSeq = sr.rec.seq;
    if (sr.rec.seq < firstSeq) firstSeq = sr.rec.seq;
  }
  const out: CrossCheckProblem[] = [];
  const executed = new Map<string, number>(); // request id -> journal seq of its first execution
  for (const j of journal) {
    const rid = j.requestId ?? '';
    const anchor = parseHead(j.auditHead);
    // Older writes may have their intents in audit files pruned by retention; the newest anchored one never may, so a
    // log replaced by one that starts later than the last write is still caught.
    if (anchor && anchor.seq < firstSeq && anchor.seq !== newestAnchor && lastSeq >= 0) continue;
    const what = `helper journal seq ${j.seq}: ${j.op}${j.uuid ? ` on ${j.uuid}` : ''}${j.name ? ` (${j.name})` : ''} at ${j.ts}, claimed by ${j.user ?? '?'}/${j.tenant ?? '?'}, request ${rid || '(none)'}, result ${j.result}`;
    const problem = (message: string): void => void out.push({ journalSeq: j.seq, requestId: rid, message: `${what}: ${message}` });
    if (rid) {
      const first = executed.get(rid);
      if (first !== undefined) problem(`request id already executed at journal seq ${first} (replayed)`);
      else executed.set(rid, j.seq);
    }
    const sr = rid ? intents.get(rid) : undefined;
    const intent = sr?.rec;
    if (!intent) {
      problem('no front-end audit record (front end bypassed or compromised)');
    } else if (intent.decision?.result !== 'allow') {
      problem('the front end recorded this request as denied');
    } else {
      if ((intent.who?.user ?? '') !== (j.user ?? '') || (intent.who?.tenant ?? '') !== (j.tenant ?? '')) {
        problem(`the audit intent names ${intent.who?.user ?? '?'}/${intent.who?.tenant ?? '?'} (identity mismatch)`);
      }
      const w = intent.what;
      if (j.digest !== undefined || w?.helperOp !== undefined) {
        // Records from before request digests existed carry neither; from then on both sides must agree.
        if (w?.helperOp !== j.op) problem(`the audit intent allowed ${w?.helperOp ?? 'no helper request'}, not ${j.op} (operation mismatch)`);
        else if (w.digest !== j.digest) problem('the request executed differs from the one the audit intent allowed (argument digest mismatch)');
      }
      const iu = hex(w?.object?.uuid);
      if (iu && j.uuid && iu !== hex(j.uuid)) problem(`the audit intent names domain ${w?.object?.uuid} (object mismatch)`);
    }
    const head = anchor;
    if (head) {
      const at = atSeq.get(head.seq);
      if (!at) {
        problem(
          head.seq > lastSeq
            ? `the audit log ends at seq ${lastSeq} but the helper anchored seq ${head.seq} (audit log truncated or replaced)`
            : `audit record seq ${head.seq}, anchored by the helper, is missing (audit log rewritten)`,
        );
      } else if (at.hash !== '' && at.hash !== head.hash) {
        problem(`audit record seq ${head.seq} differs from the one the helper anchored (audit log rewritten or replaced)`);
      } else if (at.rec.requestId !== rid || at.rec.kind !== 'intent') {
        problem(`audit record seq ${head.seq}, anchored by the helper, is not this request's intent (audit log rewritten)`);
      }
    }
  }
  return out;
}
