// SPDX-License-Identifier: Apache-2.0
// Durable driver state on the helper's own disk: persistent configs under STATE, running status under RUNTIME; atomic writes.
import * as fs from 'node:fs';
import * as path from 'node:path';

// Running status of one domain, as written to RUNTIME/domains/<uuid>.json.
export interface DomainStatus {
  state: number;
  reason: number;
  id: number;
  cpuNs: string; // bigint as decimal text
  since: number | null; // wall-clock ms when the current running stretch began (wall clock survives restarts)
  persistent: boolean;
  liveXml: string | null; // the live definition while active
}

export interface LoadedState {
  firstStart: boolean;
  configs: Map<string, string>; // uuid -> config XML
  statuses: Map<string, DomainStatus>;
  nextId: number | null;
}

// One planned file change; the driver hands a batch to commit().
export type FileChange = { kind: 'config' | 'status'; uuid: string; data: string | null } | { kind: 'nextId'; data: string };

const UUID_FILE = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.(xml|json)$/;

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

// Write temp, fsync, rename over, fsync the directory: a crash leaves the old or the new file, never a torn one.
function writeAtomic(file: string, data: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    fsyncDir(path.dirname(file));
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

function removeDurably(file: string): void {
  fs.rmSync(file, { force: true });
  fsyncDir(path.dirname(file));
}

export class StateStore {
  readonly #configDir: string;
  readonly #statusDir: string;
  readonly #nextIdFile: string;
  readonly #marker: string;

  constructor(stateDir: string, runtimeDir: string) {
    this.#configDir = path.join(stateDir, 'domains');
    this.#statusDir = path.join(runtimeDir, 'domains');
    this.#nextIdFile = path.join(runtimeDir, 'next-id');
    this.#marker = path.join(stateDir, 'initialized');
    for (const d of [stateDir, this.#configDir, runtimeDir, this.#statusDir]) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
  }

  // Unreadable or foreign files are reported through `warn` and skipped: one bad file must not hide the rest.
  load(warn: (msg: string) => void): LoadedState {
    const configs = new Map<string, string>();
    const statuses = new Map<string, DomainStatus>();
    for (const [dir, ext] of [[this.#configDir, 'xml'], [this.#statusDir, 'json']] as const) {
      for (const f of fs.readdirSync(dir)) {
        if (f.includes('.tmp-')) {
          fs.rmSync(path.join(dir, f), { force: true }); // left by a crash mid-write
          continue;
        }
        const m = UUID_FILE.exec(f);
        if (!m || m[2] !== ext) {
          warn(`ignoring unexpected file ${path.join(dir, f)}`);
          continue;
        }
        const text = fs.readFileSync(path.join(dir, f), 'utf8');
        if (ext === 'xml') configs.set(m[1], text);
        else {
          try {
            statuses.set(m[1], JSON.parse(text) as DomainStatus);
          } catch {
            warn(`ignoring unreadable status file ${path.join(dir, f)}`);
          }
        }
      }
    }
    const idText = readOrNull(this.#nextIdFile);
    const nextId = idText !== null && /^[0-9]{1,10}$/.test(idText.trim()) ? Number(idText.trim()) : null;
    return { firstStart: !fs.existsSync(this.#marker), configs, statuses, nextId };
  }

  markInitialized(): void {
    writeAtomic(this.#marker, `${new Date().toISOString()}\n`);
  }

  #pathOf(c: FileChange): string {
    if (c.kind === 'nextId') return this.#nextIdFile;
    return c.kind === 'config' ? path.join(this.#configDir, `${c.uuid}.xml`) : path.join(this.#statusDir, `${c.uuid}.json`);
  }

  // All or nothing, best effort: on a failure the files already changed are put back, then the error is rethrown.
  commit(changes: FileChange[]): void {
    const done: { file: string; old: string | null }[] = [];
    try {
      for (const c of changes) {
        const file = this.#pathOf(c);
        const old = readOrNull(file);
        if (c.data === null) removeDurably(file);
        else writeAtomic(file, c.data);
        done.push({ file, old });
      }
    } catch (e) {
      for (const { file, old } of done.reverse()) {
        try {
          if (old === null) removeDurably(file);
          else writeAtomic(file, old);
        } catch {
          // XXX: the disk refuses even the rollback; the next successful write of this domain repairs it.
        }
      }
      throw e;
    }
  }
}
