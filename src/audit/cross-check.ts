// SPDX-License-Identifier: Apache-2.0
// Cross-check: every write the helper executed must have a front-end audit intent with the same request id and identity.
import type { JournalRecord } from './journal';
import type { AuditRecord } from './schema';

export interface CrossCheckProblem {
  journalSeq: number;
  requestId: string;
  message: string;
}

// A helper write without a matching allowed intent means the front end was bypassed or compromised.
export function crossCheck(front: Iterable<AuditRecord>, journal: readonly JournalRecord[]): CrossCheckProblem[] {
  const intents = new Map<string, AuditRecord>();
  for (const r of front) if (r.kind === 'intent' && r.requestId) intents.set(r.requestId, r);
  const out: CrossCheckProblem[] = [];
  for (const j of journal) {
    const rid = j.requestId ?? '';
    const what = `helper journal seq ${j.seq}: ${j.op}${j.uuid ? ` on ${j.uuid}` : ''}${j.name ? ` (${j.name})` : ''} at ${j.ts}, claimed by ${j.user ?? '?'}/${j.tenant ?? '?'}, request ${rid || '(none)'}, result ${j.result}`;
    const intent = rid ? intents.get(rid) : undefined;
    if (!intent) out.push({ journalSeq: j.seq, requestId: rid, message: `${what}: no front-end audit record (front end bypassed or compromised)` });
    else if (intent.decision?.result !== 'allow') out.push({ journalSeq: j.seq, requestId: rid, message: `${what}: the front end recorded this request as denied` });
    else if ((intent.who?.user ?? '') !== (j.user ?? '') || (intent.who?.tenant ?? '') !== (j.tenant ?? '')) {
      out.push({ journalSeq: j.seq, requestId: rid, message: `${what}: the audit intent names ${intent.who?.user ?? '?'}/${intent.who?.tenant ?? '?'} (identity mismatch)` });
    }
  }
  return out;
}
