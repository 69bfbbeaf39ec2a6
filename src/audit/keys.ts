// SPDX-License-Identifier: Apache-2.0
// Forward-secure sealing keys for the audit log, after systemd-journald's Forward Secure Sealing (FSS): journald's
// `journalctl --setup-keys` creates a sealing key, which the writer evolves and whose old states it erases, and a
// verification key kept elsewhere, from which a verifier derives every epoch's key. virtgate does the same with HMAC:
//
//   verification key (HOME/lib/audit-verify.key, root's, 0600): one JSON line per seed k0, oldest first
//   sealing state   (HOME/keys/audit.key, the front end's, 0600): {seedId, epoch, key k_epoch, ...} and nothing older
//   evolution:       k(i+1) = HMAC-SHA256(k(i), "virtgate-fss-next"), one-way: k(i+1) does not give k(i)
//
// Whoever holds the sealing state of epoch e (the front end's user, or an attacker who became it) can seal records as
// epoch e or later, never as an earlier epoch, so records sealed before the last evolution cannot be rewritten unseen.
import { createHmac, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { VG_ERR_AUDIT_KEY } from '../common/errors';
import { keyIdOf } from './schema';

const SEED_BYTES = 32; // k0: 256 random bits, the HMAC-SHA256 block-size-safe key length
const EVOLVE_LABEL = 'virtgate-fss-next';
export const DEFAULT_EPOCH_RECORDS = 1000; // evolve after this many records...
export const DEFAULT_EPOCH_SECONDS = 900; // ...or this many seconds (with at least one record sealed), whichever first
const MAX_EPOCH = 2 ** 32; // a record claiming a later epoch is refused before any derivation (bounds verify's work)

// k(i+1) from k(i). The caller zeroes k(i) once k(i+1) is durable.
export function evolveKey(k: Buffer): Buffer {
  return createHmac('sha256', k).update(EVOLVE_LABEL).digest();
}

// A record's `key` field: "<seedId>.<epoch>". The seed id is public (a hash of k0), the epoch a decimal integer.
export const keyField = (seedId: string, epoch: number): string => `${seedId}.${epoch}`;

export function parseKeyField(s: string): { seedId: string; epoch: number } | null {
  const m = /^([0-9a-f]{16})\.(0|[1-9]\d{0,9})$/.exec(s);
  if (!m) return null;
  const epoch = Number(m[2]);
  return epoch <= MAX_EPOCH ? { seedId: m[1], epoch } : null;
}

export interface EpochParams {
  epochRecords: number;
  epochSeconds: number;
}

export interface Seed extends EpochParams {
  id: string;
  created: string;
  seed: Buffer;
}

// The verifier's side: every seed, and the epoch keys derived from them (cached: verify walks epochs in order).
export class VerifyKey {
  readonly file: string;
  readonly seeds: readonly Seed[];
  readonly #index = new Map<string, number>();
  readonly #last = new Map<string, { epoch: number; key: Buffer }>(); // newest derivation per seed
  readonly #cache = new Map<string, Buffer>(); // key field -> k_epoch

  constructor(file: string, seeds: Seed[]) {
    this.file = file;
    this.seeds = seeds;
    seeds.forEach((s, i) => this.#index.set(s.id, i));
  }

  // Position of a seed in the file (seeds are appended, so a later seed has a larger index); -1 if unknown.
  seedIndex(seedId: string): number {
    return this.#index.get(seedId) ?? -1;
  }

  // k_epoch for a record's key field, or null for a field that names no seed of this file.
  keyFor(field: string): Buffer | null {
    const hit = this.#cache.get(field);
    if (hit) return hit;
    const p = parseKeyField(field);
    if (!p) return null;
    const i = this.#index.get(p.seedId);
    if (i === undefined) return null;
    const last = this.#last.get(p.seedId);
    let { epoch, key } = last && last.epoch <= p.epoch ? last : { epoch: 0, key: this.seeds[i].seed };
    while (epoch < p.epoch) {
      key = evolveKey(key);
      epoch += 1;
    }
    this.#last.set(p.seedId, { epoch, key });
    if (this.#cache.size > 100_000) this.#cache.clear(); // derivations are cheap to redo; memory stays bounded
    this.#cache.set(field, key);
    return key;
  }
}

// The writer's side: the current epoch's key and nothing that derives an earlier one.
export interface SealState extends EpochParams {
  seedId: string;
  epoch: number;
  key: Buffer;
  epochStart: string; // when this epoch began (RFC 3339)
  previous: string[]; // ids of older seeds (rotation, re-initialisation): the log may end with records they sealed
}

export const stateKeyField = (s: SealState): string => keyField(s.seedId, s.epoch);

// Refuses a key file others could read or write, as ssh does for private keys.
function readPrivate(file: string): string {
  let st: fs.Stats;
  let text: string;
  try {
    st = fs.statSync(file);
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw VG_ERR_AUDIT_KEY(file, (e as NodeJS.ErrnoException).code ?? (e as Error).message);
  }
  if (!st.isFile()) throw VG_ERR_AUDIT_KEY(file, 'not a regular file');
  if ((st.mode & 0o077) !== 0) throw VG_ERR_AUDIT_KEY(file, `mode ${(st.mode & 0o777).toString(8)} is too open; must be 0600`);
  return text;
}

const posInt = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) > 0;

export function loadVerifyKey(file: string): VerifyKey {
  const seeds: Seed[] = [];
  for (const [i, line] of readPrivate(file).split('\n').entries()) {
    if (!line.trim()) continue;
    let s: Seed;
    try {
      const o = JSON.parse(line) as { id: string; created: string; seed: string; epochRecords: number; epochSeconds: number };
      s = { id: o.id, created: o.created, seed: Buffer.from(o.seed, 'base64'), epochRecords: o.epochRecords, epochSeconds: o.epochSeconds };
    } catch {
      throw VG_ERR_AUDIT_KEY(file, `line ${i + 1} is not a verification key`);
    }
    if (s.seed.length !== SEED_BYTES || keyIdOf(s.seed) !== s.id) throw VG_ERR_AUDIT_KEY(file, `line ${i + 1}: seed does not match its id`);
    if (!posInt(s.epochRecords) || !posInt(s.epochSeconds)) throw VG_ERR_AUDIT_KEY(file, `line ${i + 1}: bad epoch parameters`);
    seeds.push(s);
  }
  if (!seeds.length) throw VG_ERR_AUDIT_KEY(file, 'no seed');
  return new VerifyKey(file, seeds);
}

export function loadSealState(file: string): SealState {
  const text = readPrivate(file).trim();
  let s: SealState;
  try {
    const o = JSON.parse(text) as Omit<SealState, 'key'> & { key: string };
    s = { ...o, key: Buffer.from(o.key, 'base64') };
  } catch {
    throw VG_ERR_AUDIT_KEY(file, 'not a sealing state (a key file from before forward-secure sealing? see README, Audit)');
  }
  const ok =
    typeof s.seedId === 'string' &&
    /^[0-9a-f]{16}$/.test(s.seedId) &&
    Number.isSafeInteger(s.epoch) &&
    s.epoch >= 0 &&
    s.epoch <= MAX_EPOCH &&
    s.key.length === SEED_BYTES &&
    posInt(s.epochRecords) &&
    posInt(s.epochSeconds) &&
    typeof s.epochStart === 'string' &&
    Array.isArray(s.previous) &&
    s.previous.every((p) => typeof p === 'string');
  if (!ok) throw VG_ERR_AUDIT_KEY(file, 'not a sealing state (a key file from before forward-secure sealing? see README, Audit)');
  return s;
}

export const sealStateText = (s: SealState): string =>
  JSON.stringify({
    seedId: s.seedId,
    epoch: s.epoch,
    key: s.key.toString('base64'),
    epochStart: s.epochStart,
    epochRecords: s.epochRecords,
    epochSeconds: s.epochSeconds,
    previous: s.previous,
  }) + '\n';

const seedLine = (s: Seed): string =>
  JSON.stringify({ id: s.id, created: s.created, seed: s.seed.toString('base64'), epochRecords: s.epochRecords, epochSeconds: s.epochSeconds }) + '\n';

// Writes to a temporary 0600 file, syncs, renames it over and syncs the directory: a crash leaves the old or the new file.
export function writeFileAtomic(file: string, text: string, owner?: { uid: number; gid: number }): void {
  const tmp = `${file}.tmp-${process.pid}`;
  // Root writes here into the front end's keys/: a planted link at tmp is removed, never followed (O_EXCL).
  fs.rmSync(tmp, { force: true });
  const fd = fs.openSync(tmp, 'wx', 0o600);
  try {
    fs.fchmodSync(fd, 0o600); // umask cannot widen it, but an existing tmp file could be wider
    if (owner) fs.fchownSync(fd, owner.uid, owner.gid);
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  syncDir(path.dirname(file));
}

export function syncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function newSeed(p: Partial<EpochParams>): Seed {
  const seed = randomBytes(SEED_BYTES);
  return {
    id: keyIdOf(seed),
    created: new Date().toISOString(),
    seed,
    epochRecords: p.epochRecords ?? DEFAULT_EPOCH_RECORDS,
    epochSeconds: p.epochSeconds ?? DEFAULT_EPOCH_SECONDS,
  };
}

const firstState = (s: Seed, previous: string[]): SealState => ({
  seedId: s.id,
  epoch: 0,
  key: Buffer.from(s.seed), // a copy: the seed itself never leaves the verification side
  epochStart: s.created,
  epochRecords: s.epochRecords,
  epochSeconds: s.epochSeconds,
  previous,
});

// Whether a file may exist: anything but ENOENT counts (a front end that may not even look into HOME/lib must not
// conclude that no verification key was ever made).
export function mayExist(file: string): boolean {
  try {
    fs.statSync(file);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

export interface InitOptions extends Partial<EpochParams> {
  verifyKeyFile: string;
  sealFile: string;
  owner?: { uid: number; gid: number }; // the front end's user: gets the sealing state (and its directory when created here)
  force?: boolean; // keys exist: append a new seed (old seeds stay, so old records still verify) and start a new sealing state
}

// Set-up (`virtgate audit init`, or the daemon on first start): a new seed into the verification key, its epoch 0 into
// the sealing state. Refuses if either file exists, unless `force`.
export function initAuditKeys(o: InitOptions): { seedId: string; previous: string[] } {
  const vExists = mayExist(o.verifyKeyFile);
  const sExists = mayExist(o.sealFile);
  if ((vExists || sExists) && !o.force) {
    throw VG_ERR_AUDIT_KEY(
      vExists ? o.verifyKeyFile : o.sealFile,
      "exists (a chain was set up already); 'virtgate audit init --force' starts a new seed and keeps the old ones",
    );
  }
  const old = vExists ? loadVerifyKey(o.verifyKeyFile).seeds : [];
  const s = newSeed(o);
  fs.mkdirSync(path.dirname(o.verifyKeyFile), { recursive: true, mode: 0o700 });
  writeFileAtomic(o.verifyKeyFile, [...old, s].map(seedLine).join(''));
  const sealDir = path.dirname(o.sealFile);
  if (!fs.existsSync(sealDir)) {
    fs.mkdirSync(sealDir, { recursive: true, mode: 0o700 });
    if (o.owner) fs.chownSync(sealDir, o.owner.uid, o.owner.gid);
  }
  const previous = old.map((x) => x.id);
  writeFileAtomic(o.sealFile, sealStateText(firstState(s, previous)), o.owner);
  return { seedId: s.id, previous };
}

// Key rotation: a new seed appended to the verification key (needs write access to it: root in production) and a new
// sealing state at its epoch 0. The caller records the rotation with the new state.
export function rotateSeed(verifyKeyFile: string, sealFile: string, current: SealState): SealState {
  const v = loadVerifyKey(verifyKeyFile);
  const s = newSeed(current);
  writeFileAtomic(verifyKeyFile, [...v.seeds, s].map(seedLine).join(''));
  let owner: { uid: number; gid: number } | undefined;
  try {
    const st = fs.statSync(sealFile);
    owner = { uid: st.uid, gid: st.gid }; // root rotating for the front end keeps the file the front end's
  } catch {
    // no sealing state yet
  }
  const next = firstState(s, [...current.previous, current.seedId]);
  writeFileAtomic(sealFile, sealStateText(next), owner);
  return next;
}

// Where the verification key lives by default: HOME/lib (the root helper's 0700 state directory) next to HOME/keys.
export function defaultVerifyKeyFile(sealFile: string): string {
  return path.join(path.dirname(path.dirname(path.resolve(sealFile))), 'lib', 'audit-verify.key');
}
