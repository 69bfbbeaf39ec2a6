// SPDX-License-Identifier: Apache-2.0
// The root helper's own journal of executed writes: append-only JSON lines, hash-chained; node:fs and common/ only (no winston).
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';

export interface JournalEntry {
  op: string; // helper op, e.g. DOMAIN_CONTROL_REQ
  uuid?: string; // object, 32 hex or dashed
  name?: string;
  user?: string; // the identity the front end claimed (never used to decide)
  tenant?: string;
  requestId?: string; // links to the front end's audit intent
  digest?: string; // sha256 of the request as executed, actor blanked (ipc requestDigest)
  auditHead?: string; // SEQ:HASH of the front end's intent record: anchors the audit chain outside the front end's reach
  result: string; // 'ok' or a VG_ERR_* code
}

export interface JournalRecord extends JournalEntry {
  seq: number;
  ts: string;
  prev: string; // sha256 of the previous line (64 zeros for the first)
}

export interface HelperJournalOptions {
  sync?: 'batch' | 'always' | 'none'; // batch (default): one fdatasync per event-loop turn, shared by the writes of that turn
  now?: () => Date;
  onError?: (e: Error) => void;
}

const ZERO = '0'.repeat(64);
const TAIL = 64 * 1024; // a journal line is a few hundred bytes

// Sync appends keep the helper's write path simple: the record is in the file before the answer leaves.
export class HelperJournal {
  readonly file: string;
  readonly #fd: number;
  readonly #o: Required<HelperJournalOptions>;
  #seq = -1;
  #prev = ZERO;
  #syncPending = false;
  #closed = false;
  readonly #requestIds = new Set<string>(); // every request id ever journaled: a reused one is refused (replay)

  constructor(file: string, opts: HelperJournalOptions = {}) {
    this.file = file;
    this.#o = { sync: 'batch', now: () => new Date(), onError: (e) => process.stderr.write(`virtgate-helper: journal: ${e.message}\n`), ...opts };
    this.#fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_APPEND, 0o600);
    this.#recover();
    this.#loadRequestIds();
  }

  // One pass over the journal at start; after that the set grows with each write (a few dozen bytes per id).
  #loadRequestIds(): void {
    const text = fs.readFileSync(this.file, 'utf8');
    for (const m of text.matchAll(/"requestId":"((?:[^"\\]|\\.)*)"/g)) this.#requestIds.add(JSON.parse(`"${m[1]}"`) as string);
  }

  // True when a write with this request id was already executed: the caller must refuse it, not run it again.
  seen(requestId: string): boolean {
    return requestId !== '' && this.#requestIds.has(requestId);
  }

  // Drops a torn last line (a crash mid-append) and continues the sequence and chain from the last whole one.
  #recover(): void {
    const size = fs.fstatSync(this.#fd).size;
    if (!size) return;
    const from = Math.max(0, size - TAIL);
    const buf = Buffer.alloc(size - from);
    fs.readSync(this.#fd, buf, 0, buf.length, from);
    const end = buf.lastIndexOf(0x0a) + 1;
    if (from + end < size) {
      fs.ftruncateSync(this.#fd, from + end);
      fs.fdatasyncSync(this.#fd);
    }
    if (end === 0) return;
    const start = buf.lastIndexOf(0x0a, end - 2) + 1;
    const line = buf.subarray(start, end - 1).toString('utf8');
    try {
      this.#seq = (JSON.parse(line) as JournalRecord).seq;
      this.#prev = hash(line);
    } catch {
      // an unreadable last line: continue after it; `audit verify --cross-check` reports the break
      this.#prev = hash(line);
    }
  }

  append(entry: JournalEntry): JournalRecord {
    if (this.#closed) throw new Error('journal closed');
    const rec: JournalRecord = {
      seq: this.#seq + 1,
      ts: this.#o.now().toISOString(),
      op: entry.op,
      uuid: entry.uuid,
      name: entry.name,
      user: entry.user,
      tenant: entry.tenant,
      requestId: entry.requestId,
      digest: entry.digest,
      auditHead: entry.auditHead || undefined,
      result: entry.result,
      prev: this.#prev,
    };
    const line = JSON.stringify(rec);
    fs.writeSync(this.#fd, line + '\n');
    this.#seq = rec.seq;
    this.#prev = hash(line);
    if (entry.requestId) this.#requestIds.add(entry.requestId);
    if (this.#o.sync === 'always') fs.fdatasyncSync(this.#fd);
    else if (this.#o.sync === 'batch' && !this.#syncPending) {
      this.#syncPending = true;
      setImmediate(() => {
        this.#syncPending = false;
        if (!this.#closed) fs.fdatasync(this.#fd, (e) => e && this.#o.onError(e));
      });
    }
    return rec;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      fs.fdatasyncSync(this.#fd);
    } finally {
      fs.closeSync(this.#fd);
    }
  }
}

function hash(line: string): string {
  return createHash('sha256').update(line).digest('hex');
}

// Reads a journal and checks its own chain; `problem` names the first break.
export function readJournal(file: string): { records: JournalRecord[]; problem: string | null } {
  const text = fs.readFileSync(file, 'utf8');
  const lines = text.split('\n');
  const tail = lines.pop();
  const records: JournalRecord[] = [];
  let prev = ZERO;
  let problem: string | null = null;
  for (const [i, line] of lines.entries()) {
    let r: JournalRecord;
    try {
      r = JSON.parse(line) as JournalRecord;
    } catch {
      problem ??= `${file}:${i + 1}: not a journal record`;
      prev = hash(line);
      continue;
    }
    if (!problem && (r.prev !== prev || r.seq !== (records.length ? records[records.length - 1].seq + 1 : r.seq))) {
      problem = `${file}:${i + 1}: journal seq ${r.seq} does not follow the record before it (edited, deleted or inserted)`;
    }
    records.push(r);
    prev = hash(line);
  }
  if (tail && !problem) problem = `${file}:${lines.length + 1}: torn last line`;
  return { records, problem };
}
