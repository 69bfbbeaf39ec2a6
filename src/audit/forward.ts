// SPDX-License-Identifier: Apache-2.0
// Store-and-forward of sealed audit records to a syslog collector: reads the local log files (the source of truth,
// rotation and pruning included), never the appender's queue, so a slow or absent collector never holds up a write;
// a cursor persisted beside the log says which records are settled at the collector and which may have been sent.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { logFiles } from './fs-layer';
import { formatRecord, frame } from './forward-format';
import type { AuditRecord } from './schema';

// One connection to the collector, as the forwarder needs it (TLS in production: src/unprivileged/audit-forwarder.ts).
export interface ForwardConnection {
  write(buf: Buffer): Promise<void>; // resolves when accepted by the stream (backpressure: drained); rejects once closed
  // Bytes written but not yet acknowledged by the peer's TCP (user-space buffers + SIOCOUTQ); null when unknown.
  unacked(): number | null;
  readonly closed: Promise<Error | null>; // settles when the connection ends, with why
  destroy(): void;
}

export interface ForwarderOptions {
  file: string; // the active audit log; rotated files sit beside it
  cursorFile?: string; // default FILE.forward-cursor
  connect: () => Promise<ForwardConnection>;
  durableSeq: () => number; // the appender's last durable seq: nothing later is read (a failed batch is cut off again)
  window?: number; // records sent but not yet settled before sending pauses (bounds memory: ~50 bytes each)
  graceMs?: number; // a record TCP-acked this recently is still re-sent after a loss (the collector may not have written it)
  pollMs?: number;
  backoffMs?: [number, number];
  log?: (m: string) => void;
  now?: () => number;
}

export interface ForwarderStatus {
  connected: boolean;
  sentSeq: number; // highest seq written to the collector (-1: none)
  ackedSeq: number; // highest seq settled (the cursor)
  localSeq: number; // last durable seq in the local log
  lagRecords: number; // localSeq - ackedSeq
  lagSeconds: number; // age of the oldest record not settled yet
  resent: number; // records sent with resent="1" since start
  lastError: string | null;
}

interface Cursor {
  acked: number; // every seq up to here is settled at the collector
  reserved: number; // no seq above this was ever sent: records in (acked, reserved] may have been, and go out flagged
}

const RESERVE = 1000; // seqs reserved per cursor write before sending them
const CHUNK = 64 * 1024;
const BATCH_BYTES = 64 * 1024; // frames per write to the TLS stream
const MAX_LINE = 4 * 1024 * 1024;

export function defaultCursorFile(file: string): string {
  return `${file}.forward-cursor`;
}

export function readCursor(file: string): Cursor | null {
  try {
    const o = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<Cursor>;
    if (Number.isSafeInteger(o.acked) && Number.isSafeInteger(o.reserved) && o.acked! >= -1 && o.reserved! >= o.acked!)
      return { acked: o.acked!, reserved: o.reserved! };
  } catch {
    // absent or unreadable: start from the beginning of the log, every record flagged as possibly sent
  }
  return null;
}

// Temporary file, fsync, rename, fsync of the directory: a crash leaves the old cursor or the new one.
async function writeCursor(file: string, c: Cursor): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.promises.rm(tmp, { force: true });
  const fh = await fs.promises.open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(JSON.stringify({ v: 1, acked: c.acked, reserved: c.reserved }) + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.promises.rename(tmp, file);
  const d = await fs.promises.open(path.dirname(file), 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

export interface ReadRecord {
  line: string;
  rec: AuditRecord;
}

// Reads records in chain order from the log and its rotated files, following rotation and re-creation; one chunk and
// one line in memory.
export class LogReader {
  #fh: fs.promises.FileHandle | null = null;
  #ino = -1;
  #pos = 0;
  #buf: Buffer = Buffer.alloc(0);
  #lastSeq = -1;
  #lineStart = -1; // offset of the record last returned, in the open file
  #lineSeq = -1;
  skipped: { from: number; to: number } | null = null; // set by seek when the wanted seqs are gone (pruned)

  constructor(readonly file: string) {}

  async close(): Promise<void> {
    await this.#fh?.close().catch(() => undefined);
    this.#fh = null;
  }

  // Positions before the first record with seq >= `seq`.
  async seek(seq: number): Promise<void> {
    await this.close();
    this.skipped = null;
    const files = logFiles(this.file);
    let pick: string | null = null;
    let pickFirst = -1;
    for (const f of files) {
      const first = f === this.file ? await firstSeqOf(f) : Number(f.slice(-12));
      if (first === null) continue;
      if (pick === null || first <= seq) [pick, pickFirst] = [f, first];
      if (first > seq) break;
    }
    this.#lastSeq = seq - 1;
    if (pick === null) return; // no log yet
    if (pickFirst > seq) this.skipped = { from: seq, to: pickFirst - 1 };
    this.#fh = await fs.promises.open(pick, 'r');
    this.#ino = (await this.#fh.stat()).ino;
    this.#pos = 0;
    this.#buf = Buffer.alloc(0);
    this.#lineStart = -1;
    for (;;) {
      const start = this.#pos - this.#buf.length;
      const r = await this.#line();
      if (!r) return;
      if (r.rec.seq >= seq) {
        // put it back: the next call returns it
        this.#buf = Buffer.alloc(0);
        this.#pos = start;
        return;
      }
    }
  }

  // The next whole record, or null when the log holds no more yet.
  async next(): Promise<ReadRecord | null> {
    for (;;) {
      if (!this.#fh) {
        await this.seek(this.#lastSeq + 1);
        if (!this.#fh) return null;
      }
      const r = await this.#line();
      if (r) {
        this.#lastSeq = r.rec.seq;
        return r;
      }
      // End of this file: done with it only if the log path now names another file (rotated, re-created).
      let ino = -1;
      try {
        ino = (await fs.promises.stat(this.file)).ino;
      } catch {
        return null;
      }
      if (ino === this.#ino) return null;
      const again = await this.#line(); // written just before the rotation
      if (again) {
        this.#lastSeq = again.rec.seq;
        return again;
      }
      await this.close();
    }
  }

  // Gives back the record next() returned last: the next call reads it from the file again. For a record past the
  // durable seq, whose bytes a failed batch may still replace.
  unread(): void {
    if (this.#lineStart < 0) return;
    this.#pos = this.#lineStart;
    this.#buf = Buffer.alloc(0);
    this.#lastSeq = this.#lineSeq - 1;
    this.#lineStart = -1;
  }

  async #line(): Promise<ReadRecord | null> {
    for (;;) {
      const nl = this.#buf.indexOf(0x0a);
      if (nl >= 0) {
        const start = this.#pos - this.#buf.length;
        const text = this.#buf.toString('utf8', 0, nl);
        this.#buf = this.#buf.subarray(nl + 1);
        try {
          const rec = JSON.parse(text) as AuditRecord;
          if (Number.isSafeInteger(rec.seq)) {
            this.#lineStart = start;
            this.#lineSeq = rec.seq;
            return { line: text, rec };
          }
        } catch {
          // not a record: central verify sees the gap it leaves
        }
        continue;
      }
      if (this.#buf.length > MAX_LINE) this.#buf = Buffer.alloc(0);
      const chunk = Buffer.alloc(CHUNK);
      const { bytesRead } = await this.#fh!.read(chunk, 0, CHUNK, this.#pos);
      if (bytesRead === 0) return null;
      this.#pos += bytesRead;
      this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);
    }
  }
}

async function firstSeqOf(file: string): Promise<number | null> {
  let fh: fs.promises.FileHandle | null = null;
  try {
    fh = await fs.promises.open(file, 'r');
    const buf = Buffer.alloc(CHUNK);
    const { bytesRead } = await fh.read(buf, 0, CHUNK, 0);
    const nl = buf.subarray(0, bytesRead).indexOf(0x0a);
    if (nl < 0) return null;
    const rec = JSON.parse(buf.toString('utf8', 0, nl)) as AuditRecord;
    return Number.isSafeInteger(rec.seq) ? rec.seq : null;
  } catch {
    return null;
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

interface InFlight {
  seq: number;
  ts: string;
  ackedAt: number; // 0: not yet acknowledged by the peer's TCP
}

// The forwarder: one connection at a time; after a loss it reconnects with backoff and re-sends, flagged, every record
// not settled (not TCP-acknowledged at least graceMs before the loss).
export class AuditForwarder {
  readonly #o: Required<Omit<ForwarderOptions, 'cursorFile'>> & { cursorFile: string };
  #cursor: Cursor = { acked: -1, reserved: -1 };
  #saved: Cursor = { acked: -2, reserved: -2 };
  #flight: InFlight[] = [];
  #sent = -1;
  #resendThrough = -1; // records up to here go out with resent="1"
  #resent = 0;
  #conn: ForwardConnection | null = null;
  #lastError: string | null = null;
  #stopped = false;
  #loop: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  #peekTs: string | null = null;

  constructor(o: ForwarderOptions) {
    this.#o = {
      window: 50_000,
      graceMs: 2000,
      pollMs: 200,
      backoffMs: [250, 10_000],
      log: (m) => process.stderr.write(`virtgated: ${m}\n`),
      now: Date.now,
      ...o,
      cursorFile: o.cursorFile || defaultCursorFile(o.file),
    };
  }

  start(): void {
    const c = readCursor(this.#o.cursorFile);
    const damaged = !c && fs.existsSync(this.#o.cursorFile);
    if (c) this.#cursor = c;
    else if (damaged) this.#o.log(`audit forward: cursor ${this.#o.cursorFile} unreadable: re-sending the whole log, flagged`);
    // No cursor: a first start, nothing was sent (a cursor deleted by hand shows centrally as unflagged duplicates).
    // A damaged one: nothing says what was sent, so everything goes out flagged.
    this.#resendThrough = c ? c.reserved : damaged ? Number.MAX_SAFE_INTEGER : -1;
    this.#saved = { ...this.#cursor };
    this.#loop = this.#run();
  }

  // Wakes the reader (a batch became durable); polling covers a missed call.
  notify(): void {
    this.#wake?.();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    this.#conn?.destroy();
    await this.#loop;
  }

  status(): ForwarderStatus {
    const localSeq = this.#o.durableSeq();
    const lagRecords = Math.max(0, localSeq - this.#cursor.acked);
    const oldest = this.#flight.find((f) => f.seq > this.#cursor.acked)?.ts ?? this.#peekTs;
    const lagSeconds = lagRecords > 0 && oldest ? Math.max(0, (this.#o.now() - Date.parse(oldest)) / 1000) : 0;
    return {
      connected: this.#conn !== null,
      sentSeq: this.#sent,
      ackedSeq: this.#cursor.acked,
      localSeq,
      lagRecords,
      lagSeconds,
      resent: this.#resent,
      lastError: this.#lastError,
    };
  }

  async #run(): Promise<void> {
    let backoff = this.#o.backoffMs[0];
    const reader = new LogReader(this.#o.file);
    try {
      while (!this.#stopped) {
        let conn: ForwardConnection;
        try {
          conn = await this.#o.connect();
        } catch (e) {
          this.#error(`cannot connect to the collector: ${(e as Error).message}`);
          await this.#pause(backoff);
          backoff = Math.min(backoff * 2, this.#o.backoffMs[1]);
          continue;
        }
        if (this.#stopped) {
          conn.destroy();
          break;
        }
        this.#conn = conn;
        backoff = this.#o.backoffMs[0];
        const why = await this.#session(conn, reader);
        this.#conn = null;
        conn.destroy();
        // Everything not settled may be lost: send it again, flagged.
        this.#resendThrough = Math.max(this.#resendThrough, this.#sent);
        this.#flight = [];
        if (!this.#stopped) {
          this.#error(`connection to the collector lost (${why}); re-sending from seq ${this.#cursor.acked + 1}`);
          await this.#pause(backoff);
        }
      }
    } finally {
      await reader.close();
      await this.#saveCursor(true).catch(() => undefined);
    }
  }

  async #session(conn: ForwardConnection, reader: LogReader): Promise<string> {
    let closed: string | null = null;
    void conn.closed.then((e) => {
      closed = e ? e.message : 'closed by the collector';
      this.#wake?.();
    });
    await reader.seek(this.#cursor.acked + 1);
    if (reader.skipped) this.#error(`records ${reader.skipped.from}..${reader.skipped.to} are no longer in the local log (pruned) and were not forwarded`);
    let held: ReadRecord | null = null;
    let lastSave = 0;
    let lastSettle = 0;
    const batch: Buffer[] = []; // frames of one write: up to BATCH_BYTES
    let batchBytes = 0;
    const sent: InFlight[] = [];
    const flush = async (): Promise<string | null> => {
      if (!batch.length) return null;
      const buf = Buffer.concat(batch);
      batch.length = 0;
      batchBytes = 0;
      try {
        await conn.write(buf);
      } catch (e) {
        return (e as Error).message;
      }
      for (const f of sent) this.#flight.push(f);
      sent.length = 0;
      return null;
    };
    while (!this.#stopped && closed === null) {
      const now = this.#o.now();
      if (now - lastSettle >= 50) {
        lastSettle = now;
        this.#settle(conn);
      }
      if (now - lastSave >= 1000) {
        lastSave = now;
        await this.#saveCursor(false).catch((e: Error) => this.#error(`cursor not saved: ${e.message}`));
      }
      if (this.#flight.length + sent.length >= this.#o.window) {
        const err = await flush();
        if (err) return err;
        await this.#pause(this.#o.pollMs);
        continue;
      }
      // Taken before the read: bytes read while their seq was not yet durable may be a failed batch's, replaced since.
      const durable = this.#o.durableSeq();
      held ??= await reader.next();
      if (!held || held.rec.seq > durable) {
        const err = await flush();
        if (err) return err;
        this.#peekTs = held?.rec.ts ?? null;
        if (held) {
          // Not durable yet: a failed batch may still cut it off and write another record under its seq; read it
          // again once it is durable.
          reader.unread();
          held = null;
        }
        await this.#pause(this.#o.pollMs);
        continue;
      }
      this.#peekTs = null;
      const { line, rec } = held;
      held = null;
      if (rec.seq <= this.#cursor.acked) continue;
      if (rec.seq > this.#cursor.reserved) {
        const err = await flush();
        if (err) return err;
        this.#cursor.reserved = rec.seq + RESERVE;
        await this.#saveCursor(true); // a failure here stops the session: we never send past what the cursor reserves
      }
      const resent = rec.seq <= this.#resendThrough;
      const f = frame(formatRecord(line, rec, { resent }));
      batch.push(f);
      batchBytes += f.length;
      if (resent) this.#resent += 1;
      this.#sent = Math.max(this.#sent, rec.seq);
      sent.push({ seq: rec.seq, ts: rec.ts, ackedAt: 0 });
      if (batchBytes >= BATCH_BYTES) {
        const err = await flush();
        if (err) return err;
      }
    }
    return closed ?? 'stopping';
  }

  // What the kernel says the peer acknowledged: when no byte is outstanding, everything written so far arrived in the
  // collector's kernel; after graceMs more it counts as settled (the collector had time to write it out).
  #settle(conn: ForwardConnection): void {
    const now = this.#o.now();
    const un = conn.unacked();
    if (un === 0) for (const f of this.#flight) if (!f.ackedAt) f.ackedAt = now;
    let n = 0;
    while (n < this.#flight.length && this.#flight[n].ackedAt && now - this.#flight[n].ackedAt >= this.#o.graceMs) n++;
    if (n) {
      this.#cursor.acked = Math.max(this.#cursor.acked, this.#flight[n - 1].seq);
      this.#flight.splice(0, n);
      this.#lastError = null;
    }
  }

  async #saveCursor(force: boolean): Promise<void> {
    const c = this.#cursor;
    if (!force && c.acked === this.#saved.acked && c.reserved === this.#saved.reserved) return;
    await writeCursor(this.#o.cursorFile, c);
    this.#saved = { ...c };
  }

  #error(m: string): void {
    if (m !== this.#lastError) this.#o.log(`audit forward: ${m}`);
    this.#lastError = m;
  }

  #pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      t.unref();
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.#wake = () => {
        this.#wake = null;
        done();
      };
    });
  }
}
