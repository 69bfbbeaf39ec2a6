// SPDX-License-Identifier: Apache-2.0
// The durable audit appender: JSON lines, hash chain + HMAC, group commit (one write + fdatasync per batch), fail-closed.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { VG_ERR_AUDIT_CORRUPT, VG_ERR_AUDIT_LOCKED, VG_ERR_AUDIT_UNAVAILABLE, VgError } from '../common/errors';
import { type AuditFs, firstLine, lastLine, lastNewlineEnd, logFiles, nodeFs, rotatedName, writeAll } from './fs-layer';
import { type KeyRing, addKey, ensureKeys, loadKeys } from './keys';
import { type AuditInput, type AuditRecord, type EventField, GENESIS, checkShape, hmacHex, lineHash, sealRecord, splitMac } from './schema';

export interface AppenderOptions {
  file: string; // the active log; rotated predecessors sit next to it as FILE.<firstSeq>
  keyFile: string; // kept apart from the log (another directory, mode 0600)
  anchorFile?: string; // last durable {seq, hash}, MACed; detects a log cut short at a record boundary. Default keyFile + '.anchor'
  maxBytes?: number; // rotate once the active file reaches this size
  maxBatch?: number; // records per write + fdatasync
  host?: string;
  createKey?: boolean; // create the key file when missing (default true)
  fs?: AuditFs;
  log?: (msg: string) => void; // loud operator messages (fail-closed transitions)
  onDurable?: (line: string, rec: AuditRecord) => void; // called once a record is on disk (winston copy)
  now?: () => Date;
}

export interface Durable {
  seq: number;
  hash: string; // lineHash of the record's line: what the next record's prev (and the helper's journal anchor) names
}

export interface AppenderStats {
  records: number;
  batches: number; // = fdatasync calls on the log
  refused: number;
  available: boolean;
  lastError: string | null;
  seq: number; // last durable seq (-1 = none)
}

interface Pending {
  input: AuditInput;
  resolve: (d: Durable) => void;
  reject: (e: Error) => void;
}

const DEFAULT_MAX_BYTES = 64 * 1024 * 1024; // rotate at 64 MiB (verify of one file stays well under a second per 100k records)
const DEFAULT_MAX_BATCH = 512; // bounds one write to a few hundred KiB
const ANCHOR_BYTES = 256; // fixed-size slot rewritten in place
const LOUD_EVERY_MS = 10_000; // repeat the "unavailable" message at most this often

export class AuditAppender {
  readonly file: string;
  readonly #o: Required<Omit<AppenderOptions, 'onDurable' | 'anchorFile'>> & Pick<AppenderOptions, 'onDurable'>;
  readonly #anchorFile: string;
  readonly #fs: AuditFs;
  #keys: KeyRing;
  #fd = -1;
  #anchorFd = -1;
  #ident: { dev: number; ino: number } = { dev: 0, ino: 0 };
  #size = 0; // durable length of the active file
  #firstSeq = 0; // seq of the active file's first record
  #seq = -1; // last durable seq
  #hash = GENESIS; // hash of the last durable line
  #queue: Pending[] = [];
  #internal: EventField[] = []; // recovery/rotation/restored events: retried until durable, written before user records
  #flushing: Promise<void> | null = null;
  #missing = false; // the log path no longer names our file: recreate before the next batch
  #failure: { reason: string; since: number; refused: number; loudAt: number } | null = null;
  #closed = false;
  #stats = { records: 0, batches: 0, refused: 0 };

  private constructor(o: AppenderOptions, keys: KeyRing) {
    this.file = o.file;
    this.#o = {
      maxBytes: DEFAULT_MAX_BYTES,
      maxBatch: DEFAULT_MAX_BATCH,
      host: os.hostname(),
      createKey: true,
      fs: nodeFs,
      log: (m) => process.stderr.write(`virtgated: ${m}\n`),
      now: () => new Date(),
      ...o,
    };
    this.#anchorFile = o.anchorFile ?? `${o.keyFile}.anchor`;
    this.#fs = this.#o.fs;
    this.#keys = keys;
  }

  // Locks the log, loads (or creates) the key, recovers a torn tail and finds the chain head.
  static async open(o: AppenderOptions): Promise<AuditAppender> {
    const keys = o.createKey === false ? loadKeys(o.keyFile) : ensureKeys(o.keyFile);
    fs.mkdirSync(path.dirname(o.file), { recursive: true, mode: 0o750 });
    lock(o.file);
    const a = new AuditAppender(o, keys);
    try {
      await a.#start();
    } catch (e) {
      await a.close().catch(() => undefined);
      throw e;
    }
    return a;
  }

  async #start(): Promise<void> {
    const F = this.#fs;
    this.#fd = await F.open(this.file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    const st = await F.fstat(this.#fd);
    this.#ident = { dev: st.dev, ino: st.ino };
    let size = st.size;
    const good = await lastNewlineEnd(F, this.#fd, size);
    if (good < size) {
      // A write torn by a crash: never acknowledged (acks follow fdatasync), so dropping it loses nothing promised.
      await F.ftruncate(this.#fd, good);
      await F.fdatasync(this.#fd);
      this.#internal.push({ name: 'recovered-torn-line', detail: { file: path.basename(this.file), bytesDropped: size - good, offset: good } });
      size = good;
    }
    this.#size = size;
    let head: { seq: number; hash: string } | null = null;
    if (size > 0) {
      head = await this.#tailOf(this.#fd, size, this.file);
      const first = await firstLine(F, this.#fd, size);
      this.#firstSeq = first ? (JSON.parse(first) as AuditRecord).seq : head.seq;
    } else {
      // Empty active file: the chain continues from the newest rotated predecessor, if any.
      const prev = logFiles(this.file).filter((f) => f !== this.file).pop();
      if (prev) {
        const fd = await F.open(prev, fs.constants.O_RDONLY, 0);
        try {
          const s = await F.fstat(fd);
          if (s.size > 0) head = await this.#tailOf(fd, await lastNewlineEnd(F, fd, s.size), prev);
        } finally {
          await F.close(fd);
        }
      }
    }
    this.#anchorFd = await F.open(this.#anchorFile, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    const anchor = await this.#readAnchor();
    if (anchor && anchor.log === path.basename(this.file) && anchor.seq > (head?.seq ?? -1)) {
      // Records the anchor saw durable are gone (log deleted or cut while we were down): keep the evidence, continue the chain.
      this.#internal.push({ name: 'log-gap', detail: { missingFrom: (head?.seq ?? -1) + 1, missingTo: anchor.seq } });
      head = { seq: anchor.seq, hash: anchor.hash };
    }
    if (head) {
      this.#seq = head.seq;
      this.#hash = head.hash;
    }
    if (size === 0) this.#firstSeq = this.#seq + 1;
    if (this.#internal.length) await this.#flush().catch(() => undefined); // failure is logged; events stay queued
  }

  // Head of a file ending at `end`: its last line must be a well-formed, correctly sealed record.
  async #tailOf(fd: number, end: number, file: string): Promise<{ seq: number; hash: string }> {
    const ll = await lastLine(this.#fs, fd, end);
    if (!ll) throw VG_ERR_AUDIT_CORRUPT(file, 'no complete record');
    let rec: AuditRecord;
    try {
      rec = JSON.parse(ll.line) as AuditRecord;
    } catch {
      throw VG_ERR_AUDIT_CORRUPT(file, `last record at byte ${ll.start} is not JSON; run 'virtgate audit verify'`);
    }
    const shape = checkShape(rec);
    const parts = splitMac(ll.line);
    const key = this.#keys.byId.get(rec.key);
    if (shape || !parts || !key || hmacHex(key.key, parts.body) !== parts.mac) {
      throw VG_ERR_AUDIT_CORRUPT(file, `last record (seq ${String(rec.seq)}) does not verify; run 'virtgate audit verify'`);
    }
    return { seq: rec.seq, hash: lineHash(ll.line) };
  }

  async #readAnchor(): Promise<Anchor | null> {
    const buf = Buffer.alloc(ANCHOR_BYTES);
    const n = await this.#fs.read(this.#anchorFd, buf, 0);
    return parseAnchor(buf.subarray(0, n).toString('utf8'), this.#keys);
  }

  // Resolves once the record is durable (written and fdatasync'ed); rejects with VG_ERR_AUDIT_UNAVAILABLE otherwise.
  append(input: AuditInput): Promise<Durable> {
    if (this.#closed) return Promise.reject(VG_ERR_AUDIT_UNAVAILABLE('closed'));
    return new Promise<Durable>((resolve, reject) => {
      this.#queue.push({ input, resolve, reject });
      if (!this.#flushing) void this.#flush();
    });
  }

  // One batch at a time; appends arriving meanwhile form the next batch (group commit).
  #flush(): Promise<void> {
    if (this.#flushing) return this.#flushing;
    this.#flushing = (async () => {
      try {
        while (this.#queue.length || this.#internal.length) {
          const batch = this.#queue.splice(0, this.#o.maxBatch);
          const ok = await this.#commit(batch);
          if (!ok && !batch.length) break; // only internal events, still failing: retry with the next append
        }
      } finally {
        this.#flushing = null;
      }
    })();
    return this.#flushing;
  }

  async #commit(batch: Pending[]): Promise<boolean> {
    const F = this.#fs;
    const internal = this.#internal.slice();
    const lines: string[] = [];
    const hashes: string[] = [];
    const recs: AuditRecord[] = [];
    let seq = this.#seq;
    let hash = this.#hash;
    try {
      await this.#ensureFile();
      const ts = this.#o.now().toISOString();
      const key = this.#keys.current;
      for (const input of [...internal.map((event): AuditInput => ({ kind: 'event', event })), ...batch.map((p) => p.input)]) {
        seq += 1;
        const line = sealRecord(input, { seq, ts, host: this.#o.host, keyId: key.id, key: key.key, prev: hash });
        hash = lineHash(line);
        lines.push(line);
        hashes.push(hash);
        if (this.#o.onDurable) recs.push(JSON.parse(line) as AuditRecord);
      }
      const buf = Buffer.from(lines.join('\n') + '\n');
      await writeAll(F, this.#fd, buf, this.#size);
      await F.fdatasync(this.#fd);
      this.#size += buf.length;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'RETRY') {
        this.#queue.unshift(...batch); // not a failure: go round again with the recreation event in front
        return true;
      }
      await this.#failed(e, batch);
      return false;
    }
    this.#seq = seq;
    this.#hash = hash;
    this.#internal.splice(0, internal.length);
    this.#stats.batches += 1;
    this.#stats.records += lines.length;
    if (this.#failure) this.#restored();
    const first = lines.length - batch.length; // user records follow the internal ones
    for (const [i, p] of batch.entries()) p.resolve({ seq: seq - batch.length + 1 + i, hash: hashes[first + i] });
    await this.#writeAnchor().catch((e: Error) => this.#o.log(`audit anchor not updated: ${e.message}`));
    if (this.#o.onDurable) {
      for (const [i, r] of recs.entries()) {
        try {
          this.#o.onDurable(lines[i], r);
        } catch {
          // a copy (syslog, journald) must never affect the durable log
        }
      }
    }
    if (this.#size >= this.#o.maxBytes) await this.#rotate().catch((e: Error) => this.#o.log(`audit log rotation failed, still writing ${this.file}: ${e.message}`));
    return true;
  }

  // The path must still name the file we write; a deleted or replaced log is refused once, then started afresh.
  async #ensureFile(): Promise<void> {
    const F = this.#fs;
    if (this.#missing) {
      await F.close(this.#fd).catch(() => undefined);
      this.#fd = -1;
      try {
        await F.stat(this.file);
        await F.rename(this.file, `${this.file}.foreign-${Date.now()}`); // something else sits at our path: keep it for the investigator
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      this.#fd = await F.open(this.file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
      await F.fsyncDir(path.dirname(this.file));
      const st = await F.fstat(this.#fd);
      this.#ident = { dev: st.dev, ino: st.ino };
      this.#size = 0;
      this.#firstSeq = this.#seq + 1;
      this.#missing = false;
      this.#internal.unshift({ name: 'log-recreated', detail: { file: path.basename(this.file), continuesAfterSeq: this.#seq } });
      throw Object.assign(new Error('log recreated'), { code: 'RETRY' }); // the batch is re-sealed with the event first
    }
    let st;
    try {
      st = await F.stat(this.file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (!st || st.ino !== this.#ident.ino || st.dev !== this.#ident.dev) {
      this.#missing = true;
      throw Object.assign(new Error('audit log file missing or replaced'), { code: 'ELOGMISSING' });
    }
    if (st.size !== this.#size) await F.ftruncate(this.#fd, this.#size); // drop bytes of an earlier failed batch
  }

  async #failed(e: unknown, batch: Pending[]): Promise<void> {
    const code = (e as NodeJS.ErrnoException).code;
    const reason = code === 'ELOGMISSING' ? 'log file missing' : (code ?? 'EIO');
    // Whatever reached the file from this batch is not acknowledged: cut it off so the chain on disk stays clean.
    if (this.#fd >= 0 && !this.#missing) await this.#fs.ftruncate(this.#fd, this.#size).catch(() => undefined);
    const now = Date.now();
    this.#stats.refused += batch.length;
    if (!this.#failure) {
      this.#failure = { reason, since: now, refused: 0, loudAt: now };
      this.#o.log(`AUDIT LOG UNAVAILABLE (${reason}: ${(e as Error).message}) at ${this.file}: every write is refused until the log is writable again`);
    } else if (now - this.#failure.loudAt >= LOUD_EVERY_MS) {
      this.#failure.loudAt = now;
      this.#o.log(`AUDIT LOG STILL UNAVAILABLE (${reason}) at ${this.file}: ${this.#failure.refused + batch.length} writes refused so far`);
    }
    this.#failure.refused += batch.length;
    this.#failure.reason = reason;
    const err = VG_ERR_AUDIT_UNAVAILABLE(reason);
    for (const p of batch) p.reject(err);
  }

  #restored(): void {
    const f = this.#failure!;
    this.#failure = null;
    const secs = Math.round((Date.now() - f.since) / 100) / 10;
    this.#o.log(`audit log writable again after ${secs}s (${f.reason}); ${f.refused} records were refused`);
    this.#internal.push({ name: 'audit-restored', detail: { reason: f.reason, since: new Date(f.since).toISOString(), refused: f.refused } });
  }

  async #writeAnchor(): Promise<void> {
    const key = this.#keys.current;
    const body = JSON.stringify({ log: path.basename(this.file), seq: this.#seq, hash: this.#hash, key: key.id });
    const text = `${body.slice(0, -1)},"mac":"${hmacHex(key.key, 'anchor\0' + body)}"}`;
    const buf = Buffer.alloc(ANCHOR_BYTES, 0x20);
    buf.write(text);
    buf[ANCHOR_BYTES - 1] = 0x0a;
    await writeAll(this.#fs, this.#anchorFd, buf, 0); // no sync: it only ever lags the log, never leads it
  }

  async #rotate(): Promise<void> {
    const F = this.#fs;
    const to = rotatedName(this.file, this.#firstSeq);
    if (fs.existsSync(to)) throw new Error(`${to} exists`);
    await F.rename(this.file, to);
    const fd = await F.open(this.file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
    await F.fsyncDir(path.dirname(this.file));
    const old = this.#fd;
    const st = await F.fstat(fd);
    this.#fd = fd;
    this.#ident = { dev: st.dev, ino: st.ino };
    this.#size = 0;
    this.#firstSeq = this.#seq + 1;
    await F.close(old).catch(() => undefined);
    this.#internal.push({ name: 'log-rotated', detail: { previous: path.basename(to), lastSeq: this.#seq } });
  }

  // New current key (old ones stay for verify); the rotation is itself a record, sealed with the new key.
  async rotateKey(): Promise<{ previous: string; current: string; seq: number }> {
    const { ring, previous } = addKey(this.#o.keyFile);
    this.#keys = ring;
    const d = await this.append({ kind: 'event', event: { name: 'key-rotated', detail: { previous: previous.id, current: ring.current.id } } });
    return { previous: previous.id, current: ring.current.id, seq: d.seq };
  }

  get available(): boolean {
    return this.#failure === null;
  }

  stats(): AppenderStats {
    return { ...this.#stats, available: this.available, lastError: this.#failure?.reason ?? null, seq: this.#seq };
  }

  // Waits for queued records, then releases the file and the lock.
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    while (this.#flushing) await this.#flushing;
    if (this.#fd >= 0) await this.#fs.close(this.#fd).catch(() => undefined);
    if (this.#anchorFd >= 0) await this.#fs.close(this.#anchorFd).catch(() => undefined);
    unlock(this.file);
  }
}

// The anchor names its log by base name, so one key file can serve several logs without confusing them.
export interface Anchor {
  log: string;
  seq: number;
  hash: string;
}

export function parseAnchor(text: string, keys: KeyRing): Anchor | null {
  const t = text.trim();
  if (!t) return null;
  const parts = splitMac(t);
  if (!parts) return null;
  try {
    const o = JSON.parse(parts.body) as Anchor & { key: string };
    const k = keys.byId.get(o.key);
    if (!k || hmacHex(k.key, 'anchor\0' + parts.body) !== parts.mac) return null;
    return { log: o.log, seq: o.seq, hash: o.hash };
  } catch {
    return null;
  }
}

// One writer per log: FILE.lock holds the owner's pid; a lock left by a dead process is taken over.
const held = new Set<string>(); // logs this process holds (a pid check cannot tell two appenders of one process apart)

function lock(file: string): void {
  const lf = `${file}.lock`;
  if (held.has(path.resolve(file))) throw VG_ERR_AUDIT_LOCKED(file, process.pid);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lf, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      held.add(path.resolve(file));
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const pid = Number.parseInt(fs.readFileSync(lf, 'utf8'), 10);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) throw VG_ERR_AUDIT_LOCKED(file, pid);
    fs.rmSync(lf, { force: true });
  }
  throw VG_ERR_AUDIT_LOCKED(file, -1);
}

function unlock(file: string): void {
  held.delete(path.resolve(file));
  try {
    const lf = `${file}.lock`;
    if (Number.parseInt(fs.readFileSync(lf, 'utf8'), 10) === process.pid) fs.rmSync(lf, { force: true });
  } catch {
    // already gone
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function isAuditUnavailable(e: unknown): e is VgError {
  return e instanceof VgError && e.code === 'VG_ERR_AUDIT_UNAVAILABLE';
}
