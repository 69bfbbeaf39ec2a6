// SPDX-License-Identifier: Apache-2.0
// The durable audit appender: JSON lines, hash chain + forward-secure HMAC (keys.ts), group commit (one write + fdatasync
// per batch), fail-closed, rotation with retention.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { VG_ERR_AUDIT_CORRUPT, VG_ERR_AUDIT_KEY, VG_ERR_AUDIT_LOCKED, VG_ERR_AUDIT_SEAL_STATE, VG_ERR_AUDIT_UNAVAILABLE, VgError } from '../common/errors';
import { type AuditFs, firstLine, lastLine, lastNewlineEnd, logFiles, nodeFs, rotatedName, writeAll } from './fs-layer';
import {
  type SealState,
  defaultVerifyKeyFile,
  evolveKey,
  initAuditKeys,
  keyField,
  loadSealState,
  mayExist,
  parseKeyField,
  rotateSeed,
  sealStateText,
  stateKeyField,
} from './keys';
import { type AuditInput, type AuditRecord, type EventField, GENESIS, checkShape, hmacHex, lineHash, sealRecord, splitMac } from './schema';

export interface AppenderOptions {
  file: string; // the active log; rotated predecessors sit next to it as FILE.<firstSeq>
  keyFile: string; // the sealing state (keys.ts), kept apart from the log (another directory, mode 0600)
  verifyKeyFile?: string; // the verification key: only created (first start) or appended to (rotateKey), never read. Default HOME/lib/audit-verify.key
  anchorFile?: string; // last durable {seq, hash}, MACed; detects a log cut short at a record boundary. Default keyFile + '.anchor'
  maxBytes?: number; // rotate once the active file reaches this size
  keepFiles?: number; // rotated files kept; older ones are pruned (recorded first). 0 = keep all (default)
  epochRecords?: number; // evolve the sealing key after this many records (default: the sealing state's)
  epochSeconds?: number; // ... or once its epoch is this old and has sealed a record
  maxBatch?: number; // records per write + fdatasync
  host?: string;
  createKey?: boolean; // create both keys when neither exists and there is no log (default true)
  fs?: AuditFs;
  log?: (msg: string) => void; // loud operator messages (fail-closed transitions)
  onDurable?: (line: string, rec: AuditRecord) => void; // called once a record is on disk (winston copy)
  onCommit?: (records: number, fdatasyncSeconds: number) => void; // each group commit that reached the disk (metrics)
  now?: () => Date;
}

// What a caller learns once its record is durable: its seq and the SHA-256 of its line (the chain head it made).
export interface Durable {
  seq: number;
  hash: string;
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
const PRUNED_EVENT = 'log-pruned';

export class AuditAppender {
  readonly file: string;
  readonly #o: Required<Omit<AppenderOptions, 'onDurable' | 'onCommit' | 'anchorFile' | 'epochRecords' | 'epochSeconds'>> &
    Pick<AppenderOptions, 'onDurable' | 'onCommit' | 'epochRecords' | 'epochSeconds'>;
  readonly #anchorFile: string;
  readonly #fs: AuditFs;
  #state!: SealState; // the current epoch's key; earlier ones are zeroed as soon as their successor is durable
  #loaded = false;
  #epochCount = 0; // records durable in the current epoch (set high at open when the epoch already sealed records)
  #epochTimer: NodeJS.Timeout | null = null;
  #prune: { event: EventField; files: string[] } | null = null; // files to delete once their log-pruned record is durable
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

  private constructor(o: AppenderOptions) {
    this.file = o.file;
    this.#o = {
      maxBytes: DEFAULT_MAX_BYTES,
      maxBatch: DEFAULT_MAX_BATCH,
      createKey: true,
      fs: nodeFs,
      log: (m) => process.stderr.write(`virtgated: ${m}\n`),
      now: () => new Date(),
      ...o,
      host: o.host ?? os.hostname(), // (an explicit undefined means the default too)
      verifyKeyFile: o.verifyKeyFile ?? defaultVerifyKeyFile(o.keyFile), // (an explicit undefined means the default too)
      keepFiles: o.keepFiles ?? 0,
    };
    this.#anchorFile = o.anchorFile ?? `${o.keyFile}.anchor`;
    this.#fs = this.#o.fs;
  }

  // Locks the log, loads (or, on a first start, creates) the keys, recovers a torn tail and finds the chain head.
  static async open(o: AppenderOptions): Promise<AuditAppender> {
    fs.mkdirSync(path.dirname(o.file), { recursive: true, mode: 0o750 });
    lock(o.file);
    const a = new AuditAppender(o);
    try {
      await a.#start();
    } catch (e) {
      await a.close().catch(() => undefined);
      throw e;
    }
    return a;
  }

  // Never starts a fresh chain over evidence that one existed: a log without its sealing state, or a sealing state
  // without a log while the verification key exists (or cannot be checked: the front end may not look into HOME/lib).
  #loadState(): void {
    const o = this.#o;
    if (!mayExist(o.keyFile)) {
      const existing = logFiles(this.file).filter((f) => fs.statSync(f).size > 0);
      if (existing.length) {
        throw VG_ERR_AUDIT_SEAL_STATE(
          o.keyFile,
          `missing while the log ${existing[existing.length - 1]} exists: refusing to start a new chain over it (restore the file, or run 'virtgate audit init --force' as root to continue the log with a new seed)`,
        );
      }
      if (mayExist(o.verifyKeyFile)) {
        throw VG_ERR_AUDIT_SEAL_STATE(
          o.keyFile,
          `missing, but the verification key ${o.verifyKeyFile} exists or cannot be checked: a chain was set up here; run 'virtgate audit init --force' as root to start a new seed`,
        );
      }
      if (!o.createKey) throw VG_ERR_AUDIT_KEY(o.keyFile, 'ENOENT');
      initAuditKeys({ verifyKeyFile: o.verifyKeyFile, sealFile: o.keyFile, epochRecords: o.epochRecords, epochSeconds: o.epochSeconds });
    }
    this.#state = loadSealState(o.keyFile);
    this.#loaded = true;
    // Epoch parameters belong to the seed (verify reads them from the verification key): a configured change takes
    // effect with the next seed (`virtgate audit rotate-key`), never by evolving faster than the seed says.
    const cfg = { epochRecords: o.epochRecords ?? this.#state.epochRecords, epochSeconds: o.epochSeconds ?? this.#state.epochSeconds };
    if (cfg.epochRecords !== this.#state.epochRecords || cfg.epochSeconds !== this.#state.epochSeconds) {
      this.#o.log(
        `audit epochs stay at ${this.#state.epochRecords} records / ${this.#state.epochSeconds} s (seed ${this.#state.seedId}); the configured ${cfg.epochRecords} / ${cfg.epochSeconds} take effect at the next 'virtgate audit rotate-key'`,
      );
    }
  }

  async #start(): Promise<void> {
    const F = this.#fs;
    this.#loadState();
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
    let head: { seq: number; hash: string; key: string } | null = null;
    if (size > 0) {
      head = await this.#tailOf(this.#fd, size, this.file);
      const first = await firstLine(F, this.#fd, size);
      this.#firstSeq = first ? (JSON.parse(first) as AuditRecord).seq : head.seq;
    } else {
      // Empty active file: the chain continues from the newest rotated predecessor, if any.
      const prev = logFiles(this.file)
        .filter((f) => f !== this.file)
        .pop();
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
    const st0 = this.#state;
    if (!head && !anchor && (st0.epoch > 0 || st0.previous.length > 0)) {
      // The sealing state has evolved or rotated, so records were sealed; log and anchor are gone. Starting over would
      // hide that: refuse, and let the operator decide (verify shows what is left).
      throw VG_ERR_AUDIT_SEAL_STATE(
        this.#o.keyFile,
        `is at epoch ${st0.epoch} of seed ${st0.seedId} (records were sealed), but the log ${this.file} and its anchor are gone: refusing to start a fresh chain; run 'virtgate audit init --force' as root to start a new seed`,
      );
    }
    if (anchor && anchor.log === path.basename(this.file) && anchor.seq > (head?.seq ?? -1)) {
      // Records the anchor saw durable are gone (log deleted or cut while we were down): keep the evidence, continue the chain.
      this.#internal.push({ name: 'log-gap', detail: { missingFrom: (head?.seq ?? -1) + 1, missingTo: anchor.seq } });
      head = { seq: anchor.seq, hash: anchor.hash, key: anchor.key };
    }
    if (head) {
      this.#seq = head.seq;
      this.#hash = head.hash;
      // The current epoch already sealed records (in an earlier run): a new run starts a new epoch at its first batch.
      if (head.key === stateKeyField(st0)) this.#epochCount = st0.epochRecords;
    }
    if (size === 0) this.#firstSeq = this.#seq + 1;
    this.#epochTimer = setInterval(
      () => {
        if (!this.#flushing && !this.#closed && this.#evolutionDue()) void this.#flush();
      },
      Math.min(st0.epochSeconds * 1000, 60_000),
    );
    this.#epochTimer.unref();
    if (this.#internal.length) await this.#flush().catch(() => undefined); // failure is logged; events stay queued
  }

  // Every epochRecords records, or epochSeconds, whichever first; never an epoch that sealed nothing (verify relies on
  // consecutive records being at most one epoch apart).
  #evolutionDue(): boolean {
    const s = this.#state;
    if (this.#epochCount === 0) return false;
    return this.#epochCount >= s.epochRecords || this.#o.now().getTime() - Date.parse(s.epochStart) >= s.epochSeconds * 1000;
  }

  // k(e+1) is made durable (tmp file, fsync, rename, fsync of the directory) before any record is sealed with it; only
  // then is k(e) zeroed. A crash in between leaves the log at e and the state at e+1: the next record is e+1.
  async #evolve(): Promise<void> {
    const F = this.#fs;
    const cur = this.#state;
    const next: SealState = { ...cur, epoch: cur.epoch + 1, key: evolveKey(cur.key), epochStart: this.#o.now().toISOString() };
    const file = this.#o.keyFile;
    const tmp = `${file}.tmp-${process.pid}`;
    try {
      const fd = await F.open(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC, 0o600);
      try {
        await writeAll(F, fd, Buffer.from(sealStateText(next)), 0);
        await F.fdatasync(fd);
      } finally {
        await F.close(fd);
      }
      await F.rename(tmp, file);
      await F.fsyncDir(path.dirname(file));
    } catch (e) {
      next.key.fill(0);
      await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
      throw e; // the batch is refused (fail closed); the current key stays and the next batch tries again
    }
    this.#state = next;
    cur.key.fill(0);
    this.#epochCount = 0;
  }

  // Head of a file ending at `end`: its last line must be a well-formed, correctly sealed record.
  async #tailOf(fd: number, end: number, file: string): Promise<{ seq: number; hash: string; key: string }> {
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
    const k = shape ? null : parseKeyField(rec.key);
    const bad = (): VgError => VG_ERR_AUDIT_CORRUPT(file, `last record (seq ${String(rec.seq)}) does not verify; run 'virtgate audit verify'`);
    if (!parts || !k) throw bad();
    const s = this.#state;
    if (k.seedId === s.seedId) {
      if (k.epoch > s.epoch) {
        throw VG_ERR_AUDIT_SEAL_STATE(
          this.#o.keyFile,
          `is at epoch ${s.epoch}, but the log's last record (seq ${rec.seq}) was sealed at epoch ${k.epoch}: the sealing state was rolled back or replaced; refusing to start`,
        );
      }
      // An earlier epoch (a crash between the state's evolution and the next batch) cannot be checked here: its key is gone.
      if (k.epoch === s.epoch && hmacHex(s.key, parts.body) !== parts.mac) throw bad();
    } else if (!s.previous.includes(k.seedId)) {
      throw VG_ERR_AUDIT_SEAL_STATE(
        this.#o.keyFile,
        `does not know seed ${k.seedId}, which sealed the log's last record (seq ${rec.seq}): the sealing state was replaced; refusing to start`,
      );
    }
    return { seq: rec.seq, hash: lineHash(ll.line), key: rec.key };
  }

  // The anchor only helps find a log-gap here: one sealed with an earlier key cannot be checked (verify does that).
  async #readAnchor(): Promise<Anchor | null> {
    const buf = Buffer.alloc(ANCHOR_BYTES);
    const n = await this.#fs.read(this.#anchorFd, buf, 0);
    const cur = stateKeyField(this.#state);
    const a = parseAnchor(buf.subarray(0, n).toString('utf8'), (f) => (f === cur ? this.#state.key : null));
    return a;
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
        while (this.#queue.length || this.#internal.length || this.#evolutionDue()) {
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
    let syncSeconds = 0;
    try {
      if (this.#evolutionDue()) await this.#evolve();
      if (!batch.length && !internal.length) return true; // an idle epoch's evolution only
      await this.#ensureFile();
      const ts = this.#o.now().toISOString();
      const st = this.#state;
      const keyId = stateKeyField(st);
      for (const input of [...internal.map((event): AuditInput => ({ kind: 'event', event })), ...batch.map((p) => p.input)]) {
        seq += 1;
        const line = sealRecord(input, { seq, ts, host: this.#o.host, keyId, key: st.key, prev: hash });
        hash = lineHash(line);
        hashes.push(hash);
        lines.push(line);
        if (this.#o.onDurable) recs.push(JSON.parse(line) as AuditRecord);
      }
      const buf = Buffer.from(lines.join('\n') + '\n');
      await writeAll(F, this.#fd, buf, this.#size);
      const t0 = process.hrtime.bigint();
      await F.fdatasync(this.#fd);
      syncSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
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
    this.#epochCount += lines.length;
    this.#internal.splice(0, internal.length);
    this.#stats.batches += 1;
    this.#stats.records += lines.length;
    try {
      this.#o.onCommit?.(lines.length, syncSeconds);
    } catch {
      // an observer's failure is no audit failure: the batch is durable and must be resolved, never written again
    }
    if (this.#failure) this.#restored();
    const skip = internal.length; // user records follow the internal ones
    for (const [i, p] of batch.entries()) p.resolve({ seq: seq - batch.length + 1 + i, hash: hashes[skip + i] });
    await this.#writeAnchor().catch((e: Error) => this.#o.log(`audit anchor not updated: ${e.message}`));
    if (this.#prune && internal.includes(this.#prune.event)) await this.#deletePruned();
    if (this.#o.onDurable) {
      for (const [i, r] of recs.entries()) {
        try {
          this.#o.onDurable(lines[i], r);
        } catch {
          // a copy (syslog, journald) must never affect the durable log
        }
      }
    }
    if (this.#size >= this.#o.maxBytes)
      await this.#rotate().catch((e: Error) => this.#o.log(`audit log rotation failed, still writing ${this.file}: ${e.message}`));
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

  // Sealed with the key of the batch just written, so the anchor and the record it names carry the same key field.
  async #writeAnchor(): Promise<void> {
    const st = this.#state;
    const body = JSON.stringify({ log: path.basename(this.file), seq: this.#seq, hash: this.#hash, key: stateKeyField(st) });
    const text = `${body.slice(0, -1)},"mac":"${hmacHex(st.key, 'anchor\0' + body)}"}`;
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
    this.#planPrune();
  }

  // Retention: the oldest rotated files beyond keepFiles go, but only after a log-pruned record naming them (and the
  // hash the first kept record chains to) is durable, so that verify of what is left still accounts for every seq.
  #planPrune(): void {
    const keep = this.#o.keepFiles;
    if (keep <= 0 || this.#prune) return;
    const rotated = logFiles(this.file).filter((f) => f !== this.file);
    const excess = rotated.length - keep;
    if (excess <= 0) return;
    const gone = rotated.slice(0, excess);
    const kept = rotated[excess];
    let first: AuditRecord;
    try {
      first = JSON.parse(fs.readFileSync(kept, 'utf8').split('\n', 1)[0]) as AuditRecord;
    } catch (e) {
      this.#o.log(`audit log retention: cannot read ${kept} (${(e as Error).message}); nothing pruned`);
      return;
    }
    const event: EventField = {
      name: PRUNED_EVENT,
      detail: { files: gone.map((f) => path.basename(f)).join(','), firstSeq: seqOfRotated(gone[0]), throughSeq: first.seq - 1, throughHash: first.prev },
    };
    this.#internal.push(event);
    this.#prune = { event, files: gone };
  }

  async #deletePruned(): Promise<void> {
    const p = this.#prune!;
    this.#prune = null;
    try {
      for (const f of p.files) await fs.promises.rm(f, { force: true });
      await this.#fs.fsyncDir(path.dirname(this.file));
    } catch (e) {
      this.#o.log(`audit log retention: ${(e as Error).message}`); // recorded as pruned; a leftover file still verifies
    }
  }

  // A new seed (appended to the verification key: needs write access to it) and its sealing state; the rotation is
  // itself a record, sealed with the new seed's epoch 0. The old key is zeroed.
  async rotateKey(): Promise<{ previous: string; current: string; seq: number }> {
    while (this.#flushing) await this.#flushing;
    const prev = this.#state;
    // The new seed carries the configured epoch parameters (in the verification key, where verify reads them).
    const params = { epochRecords: this.#o.epochRecords ?? prev.epochRecords, epochSeconds: this.#o.epochSeconds ?? prev.epochSeconds };
    const next = rotateSeed(this.#o.verifyKeyFile, this.#o.keyFile, { ...prev, ...params });
    this.#state = next;
    this.#epochCount = 0;
    const previous = keyField(prev.seedId, prev.epoch);
    prev.key.fill(0);
    const d = await this.append({ kind: 'event', event: { name: 'key-rotated', detail: { previous, current: next.seedId } } });
    return { previous: prev.seedId, current: next.seedId, seq: d.seq };
  }

  // The sealing state's public part (no key): seed id, epoch, and how many records the epoch has sealed.
  epoch(): { seedId: string; epoch: number; records: number } {
    return { seedId: this.#state.seedId, epoch: this.#state.epoch, records: this.#epochCount };
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
    if (this.#epochTimer) clearInterval(this.#epochTimer);
    while (this.#flushing) await this.#flushing;
    // A clean stop ends the epoch: the state left on disk can seal only what comes after, never this run's records
    // (without this, whoever reads the state while the daemon is down could re-seal the whole last epoch).
    if (this.#loaded && this.#epochCount > 0 && this.#failure === null)
      await this.#evolve().catch((e: Error) => this.#o.log(`audit sealing key not evolved at stop: ${e.message}`));
    if (this.#fd >= 0) await this.#fs.close(this.#fd).catch(() => undefined);
    if (this.#anchorFd >= 0) await this.#fs.close(this.#anchorFd).catch(() => undefined);
    if (this.#loaded) this.#state.key.fill(0);
    unlock(this.file);
  }
}

const seqOfRotated = (f: string): number => Number(f.slice(-12));

// The anchor names its log by base name, so one key file can serve several logs without confusing them.
export interface Anchor {
  log: string;
  seq: number;
  hash: string;
  key: string; // key field (seedId.epoch) it was sealed with: that of the record it names
  verified: boolean; // false: sealed with a key `keyFor` does not know (not checked)
}

// null: not an anchor, or its MAC does not match a key `keyFor` knows.
export function parseAnchor(text: string, keyFor: (field: string) => Buffer | null): Anchor | null {
  const t = text.trim();
  if (!t) return null;
  const parts = splitMac(t);
  if (!parts) return null;
  try {
    const o = JSON.parse(parts.body) as Omit<Anchor, 'verified'>;
    if (typeof o.log !== 'string' || !Number.isSafeInteger(o.seq) || typeof o.hash !== 'string' || typeof o.key !== 'string') return null;
    const k = keyFor(o.key);
    if (k && hmacHex(k, 'anchor\0' + parts.body) !== parts.mac) return null;
    return { log: o.log, seq: o.seq, hash: o.hash, key: o.key, verified: k !== null };
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
