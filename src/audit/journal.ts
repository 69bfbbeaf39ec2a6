// SPDX-License-Identifier: Apache-2.0
// The root helper's own journal of writes: append-only JSON lines, hash-chained, rotated; node:fs and common/ only (no winston).
//
// Each write is two lines. `begin` (op, object, the identity and request id the front end claims, the request's digest,
// the audit head) is written with write(2) and made durable BEFORE the driver runs the request; `end` (its result) is
// written after. Durability is a group commit: one fdatasync per event-loop turn for every line of that turn.
// - A begin line the disk refuses (ENOSPC, EIO, a short write) is cut back and the write is refused: nothing runs, and
//   sequence and chain stay as they were (the request id stays free, so the front end may retry it).
// - An end line the disk refuses is kept in memory and written before any later line; until it is, every begin is
//   refused (the disk refuses them anyway). A crash meanwhile leaves a begin without an end: "outcome unknown", which
//   `audit verify --cross-check` resolves against the front end's log.
// - A failed fdatasync is fatal (onFatal; the helper exits 70): what reached the disk is unknown (PostgreSQL's lesson).
// Rotation: past `maxBytes` the file is renamed FILE.<seq of its first record, 12 digits> and a new FILE continues the
// sequence and the chain (its first record's prev is the hash of the previous file's last line). Request ids: a 64-bit
// fingerprint of each (sha256) is kept in an open-addressing table (about 11 bytes per id) and, per rotated file, in the
// index FILE.ids, so a start reads the index and the active file, not the whole history.
import { RecordTail } from '../common/record-tail';
import { logFiles, readLines, rotatedName } from './fs-layer';
import { createHash, hash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

// What the helper knows before it runs a write.
export interface JournalBegin {
  op: string; // helper op, e.g. DOMAIN_WRITE_REQ.control
  uuid?: string; // object, 32 hex or dashed
  user?: string; // the identity the front end claimed (never used to decide)
  tenant?: string;
  requestId?: string; // links to the front end's audit intent
  digest?: string; // sha256 of the request as executed, actor blanked (ipc requestDigest)
  auditHead?: string; // SEQ:HASH of the front end's intent record: anchors the audit chain outside the front end's reach
  path?: string; // a file the helper opens for the client (save and restore images)
}

// What it knows after.
export interface JournalEnd {
  result: string; // 'ok' or a VG_ERR_* code
  uuid?: string; // the object the write made or touched (define: known only now)
  name?: string;
}

export interface JournalRecord extends JournalBegin {
  seq: number;
  ts: string;
  phase?: 'begin' | 'end' | 'pruned'; // absent: a one-line record of a journal from before begin/end lines (journaled after the run)
  of?: number; // end: the seq of its begin
  files?: string; // pruned: the rotated files deleted by retention
  throughSeq?: number; // pruned: the last seq deleted
  throughHash?: string; // pruned: the hash the first kept record chains to
  name?: string;
  result?: string; // end and one-line records
  prev: string; // sha256 of the previous line (64 zeros for the very first)
}

// The few calls on the hot path; injectable so tests can refuse or shorten writes and count syncs.
export interface JournalFs {
  writeSync(fd: number, buf: Buffer): number;
  fdatasync(fd: number, cb: (err: NodeJS.ErrnoException | null) => void): void;
  ftruncateSync(fd: number, len: number): void;
}

export interface HelperJournalOptions {
  sync?: 'batch' | 'always' | 'none'; // batch (default): one fdatasync per event-loop turn, shared by the lines of that turn
  now?: () => Date;
  maxBytes?: number; // rotate past this size (default JOURNAL_MAX_BYTES; 0: never)
  keepFiles?: number; // rotated files kept; older ones are deleted once a durable `pruned` record names them (0: keep all)
  fs?: Partial<JournalFs>;
  warn?: (msg: string) => void;
  onFatal?: (e: Error) => void; // an fdatasync failed. Default: log loudly and exit 70
}

// A start reads the active file whole (its request ids are not in the index until it rotates): about 23 ms per MiB
// here, so 16 MiB keeps a helper restart under the 1 s recovery target (bench row 9: 358 -> 778 ms as a 64 MiB file
// filled). 40 files keep about what the audit log keeps (10 × 64 MiB).
export const JOURNAL_MAX_BYTES = 16 * 1024 * 1024;
export const JOURNAL_KEEP_FILES = 40;
export const PRUNED_OP = 'journal-pruned';
const ZERO = '0'.repeat(64);
const TAIL = 64 * 1024; // a journal line is a few hundred bytes
const FLAGS = fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_APPEND;
const INDEX_MAGIC = 0x56474a31; // "VGJ1": one index chunk = magic, count, through-seq (2 words), count fingerprints

const NODE_FS: JournalFs = {
  writeSync: (fd, buf) => fs.writeSync(fd, buf),
  fdatasync: (fd, cb) => fs.fdatasync(fd, cb),
  ftruncateSync: (fd, len) => fs.ftruncateSync(fd, len),
};

function defaultFatal(e: Error): void {
  process.stderr.write(
    `virtgate-helper: FATAL: ${e.message}; what reached the disk is unknown, so no further answer can be trusted: exiting for the supervisor to restart the helper\n`,
  );
  process.exit(70);
}

const errno = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? (e as Error).message;

export function hashLine(line: string): string {
  return hash('sha256', line, 'hex'); // one-shot: no Hash object per line
}

// Rotated files follow the audit log's convention (FILE.<seq of their first record, 12 digits>): one implementation.
export const journalFiles = logFiles;
const firstSeqOf = (rotated: string): number => Number(rotated.slice(rotated.lastIndexOf('.') + 1));

const REQUEST_ID = /"requestId":"((?:[^"\\]|\\.)*)"/;

// A request id's 64-bit fingerprint (first 8 bytes of its sha256) as two words; never (0,0), the table's empty slot.
function fingerprint(requestId: string): [number, number] {
  const d = createHash('sha256').update(requestId).digest();
  const hi = d.readUInt32BE(0);
  const lo = d.readUInt32BE(4);
  return hi === 0 && lo === 0 ? [0, 1] : [hi, lo];
}

// Open addressing over a Uint32Array of (hi, lo) pairs, linear probing, at most 3/4 full: 8 to 16 bytes per id, against
// about 80 for a Set of strings. A false "seen" needs two of the ids to share 64 bits of sha256 (about 1 in 3e7 after
// a million writes): that write would be refused as a replay, never run twice.
export class FingerprintSet {
  #t = new Uint32Array(2 * 1024);
  #n = 0;

  get size(): number {
    return this.#n;
  }

  get bytes(): number {
    return this.#t.byteLength;
  }

  has(hi: number, lo: number): boolean {
    const mask = this.#t.length / 2 - 1;
    for (let i = lo & mask; ; i = (i + 1) & mask) {
      const a = this.#t[2 * i];
      const b = this.#t[2 * i + 1];
      if (a === 0 && b === 0) return false;
      if (a === hi && b === lo) return true;
    }
  }

  add(hi: number, lo: number): void {
    if ((this.#n + 1) * 4 > (this.#t.length / 2) * 3) this.#grow();
    if (this.#insert(this.#t, hi, lo)) this.#n++;
  }

  #insert(t: Uint32Array, hi: number, lo: number): boolean {
    const mask = t.length / 2 - 1;
    for (let i = lo & mask; ; i = (i + 1) & mask) {
      const a = t[2 * i];
      const b = t[2 * i + 1];
      if (a === hi && b === lo) return false;
      if (a === 0 && b === 0) {
        t[2 * i] = hi;
        t[2 * i + 1] = lo;
        return true;
      }
    }
  }

  #grow(): void {
    const old = this.#t;
    const t = new Uint32Array(old.length * 2);
    for (let i = 0; i < old.length; i += 2) if (old[i] !== 0 || old[i + 1] !== 0) this.#insert(t, old[i], old[i + 1]);
    this.#t = t;
  }
}

// The fingerprints of the active file, in order: they become its index chunk when it is rotated.
class FingerprintList {
  #a = new Uint32Array(2 * 256);
  #n = 0;

  push(hi: number, lo: number): void {
    if (2 * this.#n + 2 > this.#a.length) {
      const a = new Uint32Array(this.#a.length * 2);
      a.set(this.#a);
      this.#a = a;
    }
    this.#a[2 * this.#n] = hi;
    this.#a[2 * this.#n + 1] = lo;
    this.#n++;
  }

  get length(): number {
    return this.#n;
  }

  words(): Uint32Array {
    return this.#a.subarray(0, 2 * this.#n);
  }

  clear(): void {
    this.#a = new Uint32Array(2 * 256);
    this.#n = 0;
  }
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

// The last whole line of an open file, or null.
function lastWholeLine(fd: number, size: number): string | null {
  if (!size) return null;
  const from = Math.max(0, size - TAIL);
  const buf = Buffer.alloc(size - from);
  fs.readSync(fd, buf, 0, buf.length, from);
  const end = buf.lastIndexOf(0x0a);
  if (end < 0) return null;
  const start = buf.lastIndexOf(0x0a, end - 1) + 1;
  return buf.toString('utf8', start, end);
}

function seqOf(line: string | null): number | null {
  if (line === null) return null;
  const m = /^\{"seq":(\d{1,15}),/.exec(line);
  return m ? Number(m[1]) : null;
}

interface Waiter {
  line: number;
  done: () => void;
}

interface PendingEnd {
  of: number;
  op: string;
  requestId?: string;
  end: JournalEnd;
}

export class HelperJournal {
  readonly file: string;
  readonly indexFile: string;
  #fd: number;
  readonly #o: {
    sync: 'batch' | 'always' | 'none';
    now: () => Date;
    maxBytes: number;
    keepFiles: number;
    warn: (m: string) => void;
    onFatal: (e: Error) => void;
  };
  readonly #fs: JournalFs;
  #seq = -1;
  #prev = ZERO;
  readonly #tail: RecordTail; // the active file's whole lines: appended all or nothing
  #fileFirstSeq = 0; // seq of the active file's first record
  #rotateAt: number;
  readonly #seen = new FingerprintSet(); // every request id ever journaled (begun): a reused one is refused (replay)
  readonly #fileIds = new FingerprintList();
  readonly #indexed = new Set<number>(); // last seqs of the rotated files whose ids the index holds: only those may be pruned
  #appended = 0; // lines appended by this process
  #durable = 0; // of which known to be on disk
  #waiters: Waiter[] = [];
  #flushScheduled = false;
  #syncing = false;
  #pendingEnds: PendingEnd[] = [];
  #retry: NodeJS.Timeout | null = null;
  #failed: Error | null = null;
  #closed = false;

  constructor(file: string, opts: HelperJournalOptions = {}) {
    this.file = file;
    this.indexFile = `${file}.ids`;
    this.#o = {
      sync: opts.sync ?? 'batch',
      now: opts.now ?? (() => new Date()),
      maxBytes: opts.maxBytes ?? JOURNAL_MAX_BYTES,
      keepFiles: opts.keepFiles ?? JOURNAL_KEEP_FILES,
      warn: opts.warn ?? ((m) => process.stderr.write(`virtgate-helper: journal: ${m}\n`)),
      onFatal: opts.onFatal ?? defaultFatal,
    };
    this.#fs = { ...NODE_FS, ...opts.fs };
    this.#tail = new RecordTail(this.#fs, 'the helper journal');
    this.#fd = fs.openSync(file, FLAGS, 0o600);
    this.#recover();
    this.#rotateAt = this.#o.maxBytes;
    this.#loadSeen();
  }

  // Drops a torn last line (a crash or a refused write mid-append) and continues the sequence and chain from the last
  // whole line, which is in the newest rotated file when the active one is still empty.
  #recover(): void {
    const size = fs.fstatSync(this.#fd).size;
    let last = lastWholeLine(this.#fd, size);
    const whole = last === null ? 0 : this.#wholeEnd(size);
    if (whole < size) {
      fs.ftruncateSync(this.#fd, whole);
      fs.fdatasyncSync(this.#fd);
    }
    this.#tail.reset(whole);
    if (last === null) {
      const rotated = journalFiles(this.file).filter((f) => f !== this.file);
      const prevFile = rotated[rotated.length - 1];
      if (prevFile) {
        const fd = fs.openSync(prevFile, 'r');
        try {
          last = lastWholeLine(fd, fs.fstatSync(fd).size);
        } finally {
          fs.closeSync(fd);
        }
      }
    }
    if (last !== null) {
      // An unreadable last line: continue after it; `audit verify --cross-check` reports the break.
      this.#seq = seqOf(last) ?? this.#seq;
      this.#prev = hashLine(last);
    }
    this.#fileFirstSeq = this.#tail.size ? (seqOf(this.#firstLine()) ?? this.#seq + 1) : this.#seq + 1;
  }

  #wholeEnd(size: number): number {
    const from = Math.max(0, size - TAIL);
    const buf = Buffer.alloc(size - from);
    fs.readSync(this.#fd, buf, 0, buf.length, from);
    return from + buf.lastIndexOf(0x0a) + 1;
  }

  #firstLine(): string | null {
    const buf = Buffer.alloc(Math.min(TAIL, this.#tail.size));
    fs.readSync(this.#fd, buf, 0, buf.length, 0);
    const nl = buf.indexOf(0x0a);
    return nl < 0 ? null : buf.toString('utf8', 0, nl);
  }

  // The index first (8 bytes per id of every rotated file it covers), then any rotated file it does not cover (its
  // chunk is appended now), then the active file.
  #loadSeen(): void {
    this.#loadIndex();
    const rotated = journalFiles(this.file).filter((f) => f !== this.file);
    for (const [i, f] of rotated.entries()) {
      const lastSeq = (i + 1 < rotated.length ? firstSeqOf(rotated[i + 1]) : this.#fileFirstSeq) - 1;
      if (this.#indexed.has(lastSeq)) continue;
      const ids = new FingerprintList();
      for (const line of readLines(f)) {
        const fp = idOfLine(line);
        if (!fp) continue;
        this.#seen.add(fp[0], fp[1]);
        ids.push(fp[0], fp[1]);
      }
      this.#appendIndex(ids, lastSeq);
    }
    if (this.#tail.size) {
      for (const line of readLines(this.file)) {
        const fp = idOfLine(line);
        if (!fp) continue;
        this.#seen.add(fp[0], fp[1]);
        this.#fileIds.push(fp[0], fp[1]);
      }
    }
  }

  // Notes which rotated files the index covers (by their last seq); a torn last chunk (crash mid-append) is cut off.
  #loadIndex(): void {
    let buf: Buffer;
    try {
      buf = fs.readFileSync(this.indexFile);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    let off = 0;
    while (off + 16 <= buf.length && buf.readUInt32BE(off) === INDEX_MAGIC) {
      const n = buf.readUInt32BE(off + 4);
      if (off + 16 + 8 * n > buf.length) break;
      const through = buf.readUInt32BE(off + 8) * 2 ** 32 + buf.readUInt32BE(off + 12);
      for (let p = off + 16; p < off + 16 + 8 * n; p += 8) this.#seen.add(buf.readUInt32BE(p), buf.readUInt32BE(p + 4));
      this.#indexed.add(through);
      off += 16 + 8 * n;
    }
    if (off < buf.length) {
      this.#o.warn(`${this.indexFile}: ${buf.length - off} bytes after the last whole chunk cut off (the start-up scan covers them)`);
      fs.truncateSync(this.indexFile, off);
    }
  }

  // Best effort: a chunk that cannot be written is cut back; the next start scans that rotated file instead.
  #appendIndex(ids: FingerprintList, throughSeq: number): void {
    const words = ids.words();
    const buf = Buffer.alloc(16 + 4 * words.length);
    buf.writeUInt32BE(INDEX_MAGIC, 0);
    buf.writeUInt32BE(ids.length, 4);
    buf.writeUInt32BE(Math.floor(throughSeq / 2 ** 32), 8);
    buf.writeUInt32BE(throughSeq % 2 ** 32, 12);
    for (let i = 0; i < words.length; i++) buf.writeUInt32BE(words[i], 16 + 4 * i);
    let fd = -1;
    let size = 0;
    try {
      fd = fs.openSync(this.indexFile, FLAGS, 0o600);
      size = fs.fstatSync(fd).size;
      const n = this.#fs.writeSync(fd, buf);
      if (n !== buf.length) throw Object.assign(new Error(`ENOSPC: short write (${n} of ${buf.length} bytes)`), { code: 'ENOSPC' });
      fs.fdatasyncSync(fd);
      this.#indexed.add(throughSeq);
    } catch (e) {
      this.#o.warn(`${this.indexFile}: request-id index not written (${errno(e)}); the next start scans the rotated journal instead`);
      if (fd >= 0) {
        try {
          fs.ftruncateSync(fd, size);
        } catch {
          // the next load cuts a torn chunk
        }
      }
    } finally {
      if (fd >= 0) fs.closeSync(fd);
    }
  }

  // True when a write with this request id was already begun: the caller must refuse it, not run it again.
  seen(requestId: string): boolean {
    if (requestId === '') return false;
    const [hi, lo] = fingerprint(requestId);
    return this.#seen.has(hi, lo);
  }

  get stats(): { seq: number; requestIds: number; indexBytes: number; fileBytes: number; pendingEnds: number } {
    return { seq: this.#seq, requestIds: this.#seen.size, indexBytes: this.#seen.bytes, fileBytes: this.#tail.size, pendingEnds: this.#pendingEnds.length };
  }

  // Writes the begin line of a write (throws, changing nothing, if the disk refuses it); returns its seq. Run the
  // write only from whenDurable.
  begin(b: JournalBegin): number {
    this.#usable();
    this.#writePendingEnds();
    const seq = this.#append({ phase: 'begin', ...b });
    if (b.requestId) {
      const [hi, lo] = fingerprint(b.requestId);
      this.#seen.add(hi, lo);
      this.#fileIds.push(hi, lo);
    }
    return seq;
  }

  // Writes the end line of the write begun at `of`. Never throws for the disk: a refused line waits in memory.
  end(of: number, op: string, requestId: string | undefined, e: JournalEnd): void {
    if (this.#closed || this.#failed) return;
    this.#pendingEnds.push({ of, op, requestId, end: e });
    try {
      this.#writePendingEnds();
    } catch (err) {
      this.#o.warn(
        `JOURNAL RESULT NOT WRITTEN YET for ${op} request ${requestId ?? '?'} (${errno(err)}): kept in memory, written when the disk takes it; new writes are refused until then`,
      );
      this.#armRetry();
    }
  }

  #writePendingEnds(): void {
    while (this.#pendingEnds.length) {
      const p = this.#pendingEnds.shift()!; // out of the queue while written: a rotation it causes may prune
      try {
        this.#append({ phase: 'end', of: p.of, op: p.op, requestId: p.requestId, uuid: p.end.uuid, name: p.end.name, result: p.end.result });
      } catch (e) {
        this.#pendingEnds.unshift(p);
        throw e;
      }
    }
  }

  #armRetry(): void {
    if (this.#retry) return;
    this.#retry = setInterval(() => {
      try {
        this.#writePendingEnds();
      } catch {
        return;
      }
      this.#o.warn('journal writable again: pending results written');
      clearInterval(this.#retry!);
      this.#retry = null;
    }, 1000);
    this.#retry.unref();
  }

  #usable(): void {
    if (this.#closed) throw Object.assign(new Error('journal closed'), { code: 'ECLOSED' });
    if (this.#failed) throw this.#failed;
  }

  // One line with write(2): all or nothing. A refused or short write is cut back and rethrown; seq and chain stay.
  #append(fields: Omit<JournalRecord, 'seq' | 'ts' | 'prev'>): number {
    const rec: JournalRecord = {
      seq: this.#seq + 1,
      ts: this.#o.now().toISOString(),
      phase: fields.phase,
      of: fields.of,
      op: fields.op,
      files: fields.files,
      throughSeq: fields.throughSeq,
      throughHash: fields.throughHash,
      uuid: fields.uuid,
      name: fields.name,
      user: fields.user,
      tenant: fields.tenant,
      requestId: fields.requestId,
      digest: fields.digest,
      auditHead: fields.auditHead || undefined,
      path: fields.path,
      result: fields.result,
      prev: this.#prev,
    };
    const line = JSON.stringify(rec);
    const buf = Buffer.from(line + '\n', 'utf8');
    this.#tail.append(this.#fd, buf);
    this.#seq = rec.seq;
    this.#prev = hashLine(line);
    this.#appended++;
    if (this.#o.sync === 'batch') this.#schedule();
    else {
      if (this.#o.sync === 'always') this.#syncNow();
      this.#release(this.#appended);
      this.#maybeRotate();
    }
    return rec.seq;
  }

  // Calls `done` once every line appended so far is on disk: at once if it already is, else after the batch's sync.
  whenDurable(done: () => void): void {
    if (this.#durable >= this.#appended) return done();
    this.#waiters.push({ line: this.#appended, done });
  }

  #schedule(): void {
    if (this.#flushScheduled || this.#syncing) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  // One batch: every line appended up to now, one fdatasync; at most one in flight, lines during it form the next batch.
  #flush(): void {
    if (this.#closed || this.#failed || this.#syncing || this.#durable >= this.#appended) return;
    if (this.#maybeRotate()) return; // rotation syncs the old file itself
    const target = this.#appended;
    this.#syncing = true;
    this.#fs.fdatasync(this.#fd, (err) => {
      this.#syncing = false;
      if (this.#closed) return;
      if (err) return this.#fatal(err);
      this.#release(target);
      if (this.#appended > this.#durable) this.#schedule();
    });
  }

  #syncNow(): void {
    try {
      fs.fdatasyncSync(this.#fd);
    } catch (e) {
      this.#fatal(e as Error);
      throw this.#failed;
    }
  }

  #release(line: number): void {
    this.#durable = line;
    let i = 0;
    while (i < this.#waiters.length && this.#waiters[i].line <= line) i++;
    const ready = this.#waiters.slice(0, i);
    this.#waiters = this.#waiters.slice(i);
    for (const w of ready) w.done();
  }

  #fatal(err: Error): void {
    this.#failed = Object.assign(new Error(`fdatasync of the helper journal failed: ${err.message}`), {
      code: (err as NodeJS.ErrnoException).code ?? 'EIO',
      syscall: 'fdatasync',
    });
    this.#waiters = [];
    this.#o.onFatal(this.#failed);
  }

  // Past maxBytes: sync the file, rename it FILE.<first seq>, continue in a new FILE, index its request ids. A failure
  // (the rename target exists, no inode for the new file) keeps the current file and tries again 1/8 of maxBytes later.
  // Returns true when it rotated (every line appended so far is then durable).
  #maybeRotate(): boolean {
    if (!this.#o.maxBytes || this.#tail.size < this.#rotateAt || this.#syncing) return false;
    const old = this.#fd;
    const to = rotatedName(this.file, this.#fileFirstSeq);
    this.#syncNow();
    this.#release(this.#appended);
    let fd = -1;
    try {
      if (fs.existsSync(to)) throw new Error(`${to} already exists`);
      fs.renameSync(this.file, to);
      try {
        fd = fs.openSync(this.file, FLAGS, 0o600);
        fsyncDir(path.dirname(this.file));
      } catch (e) {
        if (fd >= 0) fs.closeSync(fd);
        fs.renameSync(to, this.file);
        throw e;
      }
    } catch (e) {
      this.#rotateAt = this.#tail.size + Math.max(1, Math.floor(this.#o.maxBytes / 8));
      this.#o.warn(`rotation of ${this.file} failed (${errno(e)}): it keeps growing; next try at ${this.#rotateAt} bytes`);
      return true;
    }
    fs.closeSync(old);
    this.#fd = fd;
    this.#tail.reset(0);
    this.#rotateAt = this.#o.maxBytes;
    this.#appendIndex(this.#fileIds, this.#seq);
    this.#fileIds.clear();
    this.#fileFirstSeq = this.#seq + 1;
    this.#prune();
    return true;
  }

  // Retention, as the audit log's: the oldest rotated files beyond keepFiles are deleted, but only once a durable
  // `pruned` record names them and the hash the first kept record chains to (so the kept journal still verifies), and
  // only once the index holds their request ids (a pruned id is still refused). Anything failing: nothing is deleted,
  // tried again at the next rotation.
  #prune(): void {
    const keep = this.#o.keepFiles;
    if (keep <= 0 || this.#pendingEnds.length) return;
    const rotated = journalFiles(this.file).filter((f) => f !== this.file);
    const excess = rotated.length - keep;
    if (excess <= 0) return;
    const gone = rotated.slice(0, excess);
    const lastSeqs = gone.map((_, i) => firstSeqOf(rotated[i + 1]) - 1);
    if (!lastSeqs.every((q) => this.#indexed.has(q))) {
      this.#o.warn(`retention: ${gone.length} old journal file(s) kept until the request-id index holds their ids`);
      return;
    }
    try {
      let first: JournalRecord | null = null;
      for (const line of readLines(rotated[excess])) {
        first = JSON.parse(line) as JournalRecord;
        break;
      }
      if (!first || first.seq !== lastSeqs[lastSeqs.length - 1] + 1 || typeof first.prev !== 'string') throw new Error(`${rotated[excess]}: no first record`);
      this.#append({ phase: 'pruned', op: PRUNED_OP, files: gone.map((f) => path.basename(f)).join(','), throughSeq: first.seq - 1, throughHash: first.prev });
      this.#syncNow();
      this.#release(this.#appended);
    } catch (e) {
      if (this.#failed) return;
      this.#o.warn(`retention: nothing pruned (${errno(e)})`);
      return;
    }
    try {
      for (const f of gone) fs.rmSync(f, { force: true });
      fsyncDir(path.dirname(this.file));
    } catch (e) {
      this.#o.warn(`retention: ${errno(e)} (recorded as pruned; a file left behind still verifies)`); // its chain still holds
    }
  }

  close(): void {
    if (this.#closed) return;
    if (this.#retry) clearInterval(this.#retry);
    this.#retry = null;
    try {
      if (!this.#failed) {
        try {
          this.#writePendingEnds();
        } catch (e) {
          this.#o.warn(`${this.#pendingEnds.length} result line(s) not written at close (${errno(e)}): their begins read as "outcome unknown"`);
        }
        fs.fdatasyncSync(this.#fd);
      }
    } finally {
      this.#closed = true;
      this.#waiters = [];
      fs.closeSync(this.#fd);
    }
  }
}

function idOfLine(line: string): [number, number] | null {
  const m = REQUEST_ID.exec(line);
  if (!m || m[1] === '') return null;
  let id: string;
  try {
    id = JSON.parse(`"${m[1]}"`) as string;
  } catch {
    return null;
  }
  return fingerprint(id);
}

// Reads a journal's records in order across its files (FILE.<seq>..., FILE), checking its own chain in passing; the
// first break is reported through `state.problem`. Streams: one line in memory at a time. A journal whose first files
// retention deleted starts mid-chain: a `pruned` record further on must account for that start (until it is met, a
// later break waits, so the start is reported first if nothing accounts for it).
export interface JournalReadState {
  problem: string | null;
  records: number;
  files: string[];
  prunedThrough?: number; // the journal starts after this seq, as a pruned record says
}

export function* streamJournal(files: readonly string[], state: JournalReadState): Generator<JournalRecord> {
  let prev: string | null = null; // the first file may start mid-chain only if it is not the first ever written
  let lastSeq: number | null = null;
  let start: { seq: number; prev: string; problem: string } | null = null; // a start no pruned record has accounted for yet
  let held: string | null = null;
  const report = (p: string): void => {
    if (start) held ??= p;
    else state.problem ??= p;
  };
  for (const [fi, file] of files.entries()) {
    let i = 0;
    let tail = '';
    for (const line of readLines(file, (t) => (tail = t))) {
      i++;
      let r: JournalRecord;
      try {
        r = JSON.parse(line) as JournalRecord;
        if (typeof r !== 'object' || r === null || typeof r.seq !== 'number' || typeof r.op !== 'string') throw new Error('shape');
      } catch {
        report(`${file}:${i}: not a journal record`);
        prev = hashLine(line);
        continue;
      }
      if (prev === null) {
        if (r.prev !== ZERO && !state.problem && !held)
          start = {
            seq: r.seq,
            prev: r.prev,
            problem: `${file}:${i}: the journal starts at seq ${r.seq}, chained to a record that is not there (earlier journal files missing)`,
          };
      } else if (r.prev !== prev || (lastSeq !== null && r.seq !== lastSeq + 1)) {
        report(`${file}:${i}: journal seq ${r.seq} does not follow the record before it (edited, deleted or inserted)`);
      }
      if (start && r.phase === 'pruned' && r.throughSeq === start.seq - 1 && r.throughHash === start.prev) {
        state.prunedThrough = r.throughSeq;
        start = null;
        if (held) state.problem ??= held;
      }
      state.records++;
      prev = hashLine(line);
      lastSeq = r.seq;
      yield r;
    }
    if (tail) report(fi === files.length - 1 ? `${file}:${i + 1}: torn last line` : `${file}:${i + 1}: torn line at the end of a rotated file`);
  }
  if (start) state.problem = start.problem;
  else if (held) state.problem ??= held;
}

// Whole journal in memory (tests and small journals): FILE and its rotated predecessors when FILE is the active one.
export function readJournal(file: string): { records: JournalRecord[]; problem: string | null } {
  const files = journalFiles(file);
  const state: JournalReadState = { problem: null, records: 0, files: files.length && files[files.length - 1] === file ? files : [file] };
  const records = [...streamJournal(state.files, state)];
  return { records, problem: state.problem };
}
