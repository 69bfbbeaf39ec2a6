// SPDX-License-Identifier: Apache-2.0
// Durable driver state on the helper's own disk: persistent configs under STATE, running status under RUNTIME.
//
// Write path (group commit): every change is one record appended to the state log STATE/state.wal with write(2), now,
// inside the request, so ENOSPC/EIO is seen before the in-memory commit (answered VG_ERR_STORAGE, nothing changed; a
// short write is cut back). One fdatasync per event-loop turn then makes the whole batch durable; the IPC server holds
// the batch's write answers (whenDurable) until it completes. Events and snapshots to subscribers may go out earlier.
// If that fdatasync fails, the kernel may already have dropped the dirty pages and a retry could "succeed" without
// them (PostgreSQL's fsync lesson, 2018): the helper cannot know what is on disk, so it logs loudly and exits non-zero;
// the supervisor restarts it and it recovers from disk. Held answers never go out.
// Recovery: load the per-domain files, replay the log over them (a torn or corrupt tail is cut off), checkpoint.
// Checkpoint (at start, at clean shutdown, and when the log passes 4 MiB): the changed files are written atomically
// (temp, fsync, rename, one fsync per directory), then the log is truncated. Only open/write/fdatasync/fsync/rename/
// ftruncate/unlink: all in the helper's seccomp allowlist.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RecordTail } from '../../common/record-tail';

// Running status of one domain, as written to RUNTIME/domains/<uuid>.json.
export interface DomainStatus {
  state: number;
  reason: number;
  id: number;
  cpuNs: string; // bigint as decimal text
  since: number | null; // wall-clock ms when the current running stretch began (wall clock survives restarts)
  persistent: boolean;
  live: object | null; // the live definition while active (DomainDef as JSON, ipc/objects/domain-def.ts)
  liveXml?: string | null; // older versions: the live definition as XML (converted by `virtgate-upgrade-state`, never parsed here)
  autostart?: boolean; // virDomainSetAutostart (absent in files of older versions: false)
  managedSave?: boolean; // a managed save image exists (the test driver's simulated one)
}

export interface LoadedState {
  firstStart: boolean;
  configs: Map<string, string>; // uuid -> config (DomainDef JSON)
  // Definitions stored as XML by older versions (uuid -> XML text): the helper never parses them; src/upgrade/ converts
  // them to JSON before the helper starts (the helper refuses to start while any is left).
  legacyXml: Map<string, string>;
  statuses: Map<string, DomainStatus>;
  nextId: number | null;
  objects: Map<string, Map<string, string>>; // other object types (networks, pools, ...): type -> key -> JSON
}

// One planned file change; the driver hands a batch to commit().
export type FileChange =
  | { kind: 'domain' | 'status'; uuid: string; data: string | null } // domain: STATE/domains/UUID.json
  | { kind: 'config'; uuid: string; data: string | null } // older versions' XML config (STATE/domains/UUID.xml)
  | { kind: 'nextId'; data: string }
  | { kind: 'object'; type: string; key: string; data: string | null }; // STATE/objects/TYPE/KEY.json

// Object types and keys become path components: both are checked before use.
export const OBJECT_TYPE = /^[a-z]{1,16}$/;
export const OBJECT_KEY = /^[0-9a-f-]{1,64}$/;

// The few calls the log makes on its hot path; injectable so tests can count syncs or refuse writes.
export interface WalFs {
  writeSync(fd: number, buf: Buffer): number;
  fdatasync(fd: number, cb: (err: NodeJS.ErrnoException | null) => void): void;
  ftruncateSync(fd: number, len: number): void;
}

export interface StateStoreOptions {
  fs?: Partial<WalFs>;
  walMaxBytes?: number; // checkpoint when the log grows past this (default 4 MiB)
  // fdatasync of the log failed: what reached the disk is unknown. Default: log loudly and exit non-zero.
  onFatal?: (e: Error) => void;
  warn?: (msg: string) => void;
}

export const WAL_FILE = 'state.wal';
const WAL_MAX = 4 * 1024 * 1024;
const UUID_FILE = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.(xml|json)$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// Default calls go through the module object at call time, so jest.spyOn(fs, ...) reaches them.
const NODE_WAL_FS: WalFs = {
  writeSync: (fd, buf) => fs.writeSync(fd, buf),
  fdatasync: (fd, cb) => fs.fdatasync(fd, cb),
  ftruncateSync: (fd, len) => fs.ftruncateSync(fd, len),
};

function defaultFatal(e: Error): void {
  process.stderr.write(
    `virtgate-helper: FATAL: fdatasync of the state log failed (${e.message}); what reached the disk is unknown, ` +
      'so no further answer can be trusted: exiting for the supervisor to restart the helper, which recovers from disk\n',
  );
  process.exit(70);
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function readOrNull(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

const tmpOf = (file: string) => `${file}.tmp-${process.pid}`;

// Write temp and fsync it; the caller renames and fsyncs the directory.
function writeTemp(file: string, data: string): void {
  const tmp = tmpOf(file);
  try {
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

// Write temp, fsync, rename over, fsync the directory: a crash leaves the old or the new file, never a torn one.
function writeAtomic(file: string, data: string): void {
  writeTemp(file, data);
  fs.renameSync(tmpOf(file), file);
  fsyncDir(path.dirname(file));
}

// A log record: `<16 hex of sha256(json)> <json>\n`, json = [[kind, uuid, data], ...] (one driver change).
type WalItem = [kind: FileChange['kind'], id: string, data: string | null];

function encodeRecord(changes: FileChange[]): Buffer {
  const items: WalItem[] = changes.map((c) => [c.kind, c.kind === 'nextId' ? '' : c.kind === 'object' ? `${c.type}/${c.key}` : c.uuid, c.data]);
  const json = JSON.stringify(items);
  return Buffer.from(`${digest(json)} ${json}\n`, 'utf8');
}

function digest(json: string): string {
  return createHash('sha256').update(json).digest('hex').slice(0, 16);
}

function decodeRecord(line: string): FileChange[] | null {
  if (line.length < 18 || line[16] !== ' ') return null;
  const json = line.slice(17);
  if (digest(json) !== line.slice(0, 16)) return null;
  let items: unknown;
  try {
    items = JSON.parse(json);
  } catch {
    return null;
  }
  if (!Array.isArray(items)) return null;
  const out: FileChange[] = [];
  for (const it of items as unknown[]) {
    if (!Array.isArray(it) || it.length !== 3) return null;
    const [kind, uuid, data] = it as unknown[];
    if (data !== null && typeof data !== 'string') return null;
    if (kind === 'nextId' && typeof data === 'string') out.push({ kind, data });
    else if ((kind === 'config' || kind === 'domain' || kind === 'status') && typeof uuid === 'string' && UUID.test(uuid)) out.push({ kind, uuid, data });
    else if (kind === 'object' && typeof uuid === 'string') {
      const [type, key, extra] = uuid.split('/');
      if (extra !== undefined || !OBJECT_TYPE.test(type) || !OBJECT_KEY.test(key ?? '')) return null;
      out.push({ kind, type, key, data });
    } else return null;
  }
  return out;
}

interface Waiter {
  seq: number;
  done: () => void;
}

export class StateStore {
  readonly #configDir: string;
  readonly #statusDir: string;
  readonly #objectsDir: string;
  readonly #nextIdFile: string;
  readonly #marker: string;
  readonly #walFile: string;
  readonly #fs: WalFs;
  readonly #walMax: number;
  readonly #onFatal: (e: Error) => void;
  readonly #warn: (msg: string) => void;
  #fd = -1;
  readonly #tail: RecordTail; // the log's whole records: appended all or nothing
  readonly #dirty = new Map<string, string | null>(); // file -> content (null: remove) not yet checkpointed
  #appended = 0; // records appended so far
  #durable = 0; // records known to be on disk
  #waiters: Waiter[] = [];
  #flushScheduled = false;
  #syncing = false;
  #failed: Error | null = null;
  #closed = false;

  constructor(stateDir: string, runtimeDir: string, opts: StateStoreOptions = {}) {
    this.#configDir = path.join(stateDir, 'domains');
    this.#statusDir = path.join(runtimeDir, 'domains');
    this.#objectsDir = path.join(stateDir, 'objects');
    this.#nextIdFile = path.join(runtimeDir, 'next-id');
    this.#marker = path.join(stateDir, 'initialized');
    this.#walFile = path.join(stateDir, WAL_FILE);
    this.#fs = { ...NODE_WAL_FS, ...opts.fs };
    this.#tail = new RecordTail(this.#fs, 'the state log');
    this.#walMax = opts.walMaxBytes ?? WAL_MAX;
    this.#onFatal = opts.onFatal ?? defaultFatal;
    this.#warn = opts.warn ?? ((m) => process.stderr.write(`virtgate-helper: ${m}\n`));
    for (const d of [stateDir, this.#configDir, runtimeDir, this.#statusDir, this.#objectsDir]) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
  }

  // The per-domain files, then the log replayed over them (a torn or corrupt tail is cut off).
  // Unreadable or foreign files are reported through `warn` and skipped: one bad file must not hide the rest.
  load(warn: (msg: string) => void): LoadedState {
    const configs = new Map<string, string>();
    const legacyXml = new Map<string, string>();
    const statuses = new Map<string, DomainStatus>();
    for (const [dir, exts] of [
      [this.#configDir, ['json', 'xml']],
      [this.#statusDir, ['json']],
    ] as const) {
      for (const f of fs.readdirSync(dir)) {
        if (f.includes('.tmp-')) {
          fs.rmSync(path.join(dir, f), { force: true }); // left by a crash mid-write
          continue;
        }
        const m = UUID_FILE.exec(f);
        if (!m || !(exts as readonly string[]).includes(m[2])) {
          warn(`ignoring unexpected file ${path.join(dir, f)}`);
          continue;
        }
        const text = fs.readFileSync(path.join(dir, f), 'utf8');
        if (m[2] === 'xml') legacyXml.set(m[1], text);
        else if (dir === this.#configDir) configs.set(m[1], text);
        else {
          try {
            statuses.set(m[1], JSON.parse(text) as DomainStatus);
          } catch {
            warn(`ignoring unreadable status file ${path.join(dir, f)}`);
          }
        }
      }
    }
    const objects = new Map<string, Map<string, string>>();
    const objectsOf = (type: string): Map<string, string> => {
      let m = objects.get(type);
      if (!m) objects.set(type, (m = new Map()));
      return m;
    };
    for (const type of fs.readdirSync(this.#objectsDir)) {
      const dir = path.join(this.#objectsDir, type);
      if (!OBJECT_TYPE.test(type) || !fs.statSync(dir).isDirectory()) {
        warn(`ignoring unexpected file ${dir}`);
        continue;
      }
      for (const f of fs.readdirSync(dir)) {
        if (f.includes('.tmp-')) {
          fs.rmSync(path.join(dir, f), { force: true });
          continue;
        }
        const key = f.endsWith('.json') ? f.slice(0, -5) : '';
        if (!OBJECT_KEY.test(key)) {
          warn(`ignoring unexpected file ${path.join(dir, f)}`);
          continue;
        }
        objectsOf(type).set(key, fs.readFileSync(path.join(dir, f), 'utf8'));
      }
    }
    const firstStart = !fs.existsSync(this.#marker);
    let idText = readOrNull(this.#nextIdFile);
    // RUNTIME is wiped at host reboot (and by systemd at stop) while the log under STATE survives: running status
    // in the log then belongs to a boot that is gone, so only config records are replayed.
    const runtimeKept = firstStart || idText !== null;
    this.#openWal(warn, (c) => {
      const file = this.#pathOf(c);
      if (c.kind === 'domain') {
        if (c.data === null) configs.delete(c.uuid);
        else configs.set(c.uuid, c.data);
      } else if (c.kind === 'config') {
        if (c.data === null) legacyXml.delete(c.uuid);
        else legacyXml.set(c.uuid, c.data);
      } else if (c.kind === 'object') {
        if (c.data === null) objectsOf(c.type).delete(c.key);
        else objectsOf(c.type).set(c.key, c.data);
      } else if (!runtimeKept) return;
      else if (c.kind === 'status') {
        if (c.data === null) statuses.delete(c.uuid);
        else {
          try {
            statuses.set(c.uuid, JSON.parse(c.data) as DomainStatus);
          } catch {
            warn(`ignoring unreadable status record of domain ${c.uuid} in ${this.#walFile}`);
            statuses.delete(c.uuid);
          }
        }
      } else idText = c.data;
      this.#dirty.set(file, c.data);
    });
    const nextId = idText !== null && /^[0-9]{1,10}$/.test(idText.trim()) ? Number(idText.trim()) : null;
    return { firstStart, configs, legacyXml, statuses, nextId, objects };
  }

  #openWal(warn: (msg: string) => void, apply: (c: FileChange) => void): void {
    if (this.#fd >= 0) return;
    this.#fd = fs.openSync(this.#walFile, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_APPEND, 0o600);
    const buf = fs.readFileSync(this.#walFile);
    let off = 0;
    let records = 0;
    while (off < buf.length) {
      const nl = buf.indexOf(0x0a, off);
      if (nl < 0) {
        warn(`${this.#walFile}: torn last record (${buf.length - off} bytes) ignored`);
        break;
      }
      const changes = decodeRecord(buf.toString('utf8', off, nl));
      if (!changes) {
        warn(`${this.#walFile}: corrupt record at byte ${off}; it and the ${buf.length - nl - 1} bytes after it are ignored`);
        break;
      }
      for (const c of changes) apply(c);
      records++;
      off = nl + 1;
    }
    if (off < buf.length) {
      fs.ftruncateSync(this.#fd, off);
      fs.fdatasyncSync(this.#fd);
    }
    this.#tail.reset(off);
    if (records > 0) warn(`replayed ${records} record(s) from ${this.#walFile}`);
  }

  markInitialized(): void {
    writeAtomic(this.#marker, `${new Date().toISOString()}\n`);
  }

  #pathOf(c: FileChange): string {
    if (c.kind === 'nextId') return this.#nextIdFile;
    if (c.kind === 'object') {
      if (!OBJECT_TYPE.test(c.type) || !OBJECT_KEY.test(c.key)) throw new Error(`bad object record ${c.type}/${c.key}`);
      return path.join(this.#objectsDir, c.type, `${c.key}.json`);
    }
    if (c.kind === 'domain') return path.join(this.#configDir, `${c.uuid}.json`);
    return c.kind === 'config' ? path.join(this.#configDir, `${c.uuid}.xml`) : path.join(this.#statusDir, `${c.uuid}.json`);
  }

  // Appends one record with write(2), synchronously: all or nothing. On an error (ENOSPC, EIO, a short write) the
  // log is cut back to its last whole record and the error is rethrown; nothing changed. Durable once whenDurable fires.
  commit(changes: FileChange[]): void {
    if (this.#closed) throw Object.assign(new Error('state store closed'), { code: 'ECLOSED', syscall: 'write' });
    if (this.#failed) throw this.#failed;
    if (this.#fd < 0) this.#openWal(this.#warn, () => {});
    const rec = encodeRecord(changes);
    this.#tail.append(this.#fd, rec);
    for (const c of changes) this.#dirty.set(this.#pathOf(c), c.data);
    this.#appended++;
    this.#schedule();
  }

  // Every record appended so far durable now (a synchronous fdatasync); a failure is fatal, as for a batch.
  syncNow(): void {
    if (this.#failed) throw this.#failed;
    if (this.#durable >= this.#appended) return;
    const target = this.#appended;
    try {
      fs.fdatasyncSync(this.#fd);
    } catch (e) {
      this.#fatal(e as Error);
      throw this.#failed;
    }
    this.#release(target);
  }

  // Calls `done` once every record appended so far is on disk: at once if it already is, else after the batch's sync.
  whenDurable(done: () => void): void {
    if (this.#durable >= this.#appended) return done();
    this.#waiters.push({ seq: this.#appended, done });
  }

  get pendingRecords(): number {
    return this.#appended - this.#durable;
  }

  get walBytes(): number {
    return this.#tail.size;
  }

  #schedule(): void {
    if (this.#flushScheduled || this.#syncing) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  // One batch: everything appended up to now. At most one fdatasync in flight; appends during it form the next batch.
  #flush(): void {
    if (this.#closed || this.#syncing || this.#durable >= this.#appended) return;
    const target = this.#appended;
    if (this.#tail.size > this.#walMax && this.#tryCheckpoint()) return this.#release(target);
    this.#syncing = true;
    this.#fs.fdatasync(this.#fd, (err) => {
      this.#syncing = false;
      if (this.#closed) return;
      if (err) return this.#fatal(err);
      this.#release(target);
      if (this.#appended > this.#durable) this.#schedule();
    });
  }

  #release(seq: number): void {
    this.#durable = Math.max(this.#durable, seq); // a batch's sync may end after a later syncNow
    let i = 0;
    while (i < this.#waiters.length && this.#waiters[i].seq <= seq) i++;
    const ready = this.#waiters.slice(0, i);
    this.#waiters = this.#waiters.slice(i);
    for (const w of ready) w.done();
  }

  // PostgreSQL's fsync lesson: after a failed fdatasync the kernel may have dropped the dirty pages and a retry can
  // "succeed" without them. No answer held for this batch may go out; the store refuses all further work.
  #fatal(err: Error): void {
    this.#failed = Object.assign(new Error(`state log sync failed: ${err.message}`), {
      code: (err as NodeJS.ErrnoException).code ?? 'EIO',
      syscall: 'fdatasync',
    });
    this.#waiters = [];
    this.#onFatal(this.#failed);
  }

  #tryCheckpoint(): boolean {
    try {
      this.checkpoint();
      return true;
    } catch (e) {
      this.#warn(`checkpoint failed, the state log keeps growing: ${(e as Error).message}`);
      return false;
    }
  }

  // Writes every file changed since the last checkpoint atomically (temp, fsync, rename, one fsync per directory),
  // then empties the log. A crash at any point leaves files and log that replay to the same state.
  checkpoint(): void {
    if (this.#failed) throw this.#failed;
    if (this.#dirty.size > 0) {
      const dirs = new Set<string>();
      const entries = [...this.#dirty];
      const temps: string[] = [];
      try {
        for (const [file, data] of entries) {
          if (data === null) continue;
          if (path.dirname(path.dirname(file)) === this.#objectsDir) fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
          writeTemp(file, data);
          temps.push(tmpOf(file));
        }
      } catch (e) {
        // A full disk: the temporaries written so far would only hold space the log needs. The log stays as it is.
        for (const t of temps) fs.rmSync(t, { force: true });
        throw e;
      }
      for (const [file, data] of entries) {
        if (data === null) fs.rmSync(file, { force: true });
        else fs.renameSync(tmpOf(file), file);
        dirs.add(path.dirname(file));
      }
      for (const d of dirs) fsyncDir(d);
      for (const [file, data] of entries) if (this.#dirty.get(file) === data) this.#dirty.delete(file);
    }
    if (this.#fd >= 0 && this.#tail.size > 0) {
      this.#fs.ftruncateSync(this.#fd, 0);
      fs.fdatasyncSync(this.#fd);
      this.#tail.reset(0);
    }
    this.#release(this.#appended);
  }

  // Makes the next checkpoint write RUNTIME/next-id (the start-up checkpoint always does: its presence tells the next
  // start that RUNTIME survived, so the log's status records are replayed).
  noteNextId(n: number): void {
    this.#dirty.set(this.#nextIdFile, `${n}\n`);
  }

  // Clean shutdown: checkpoint (or at least sync the log), then close it. Held answers are dropped with their connections.
  close(): void {
    if (this.#closed) return;
    try {
      if (!this.#failed && this.#fd >= 0) {
        try {
          this.checkpoint();
        } catch (e) {
          this.#warn(`checkpoint at shutdown failed, the state log is kept: ${(e as Error).message}`);
          fs.fdatasyncSync(this.#fd);
        }
      }
    } finally {
      this.#closed = true;
      this.#waiters = [];
      if (this.#fd >= 0) fs.closeSync(this.#fd);
      this.#fd = -1;
    }
  }
}
