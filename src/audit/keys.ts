// SPDX-License-Identifier: Apache-2.0
// The audit HMAC key file, kept apart from the log: mode 0600, one JSON line per key, newest last (old keys stay for verify).
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { VG_ERR_AUDIT_KEY } from '../common/errors';
import { keyIdOf } from './schema';

const KEY_BYTES = 32; // HMAC-SHA256 block-size-safe key

export interface AuditKey {
  id: string;
  created: string;
  key: Buffer;
}

export interface KeyRing {
  current: AuditKey;
  byId: Map<string, AuditKey>;
}

// Refuses a key file that others could read or write, as ssh does for private keys.
export function loadKeys(file: string): KeyRing {
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
  const byId = new Map<string, AuditKey>();
  let current: AuditKey | undefined;
  for (const [i, line] of text.split('\n').entries()) {
    if (!line.trim()) continue;
    let k: AuditKey;
    try {
      const o = JSON.parse(line) as { id: string; created: string; key: string };
      k = { id: o.id, created: o.created, key: Buffer.from(o.key, 'base64') };
    } catch {
      throw VG_ERR_AUDIT_KEY(file, `line ${i + 1} is not a key`);
    }
    if (k.key.length !== KEY_BYTES || keyIdOf(k.key) !== k.id) throw VG_ERR_AUDIT_KEY(file, `line ${i + 1}: key does not match its id`);
    byId.set(k.id, k);
    current = k;
  }
  if (!current) throw VG_ERR_AUDIT_KEY(file, 'no key');
  return { current, byId };
}

function newKey(): AuditKey {
  const key = randomBytes(KEY_BYTES);
  return { id: keyIdOf(key), created: new Date().toISOString(), key };
}

const keyLine = (k: AuditKey): string => JSON.stringify({ id: k.id, created: k.created, key: k.key.toString('base64') }) + '\n';

// Writes the whole ring to a temporary 0600 file, syncs and renames it over: a crash leaves the old or the new ring.
function writeRing(file: string, keys: AuditKey[]): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.fchmodSync(fd, 0o600); // umask cannot widen it, but an existing tmp file could be wider
    fs.writeSync(fd, keys.map(keyLine).join(''));
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

// Creates the key file if it does not exist; returns the ring either way.
export function ensureKeys(file: string): KeyRing {
  if (!fs.existsSync(file)) {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    writeRing(file, [newKey()]);
  }
  return loadKeys(file);
}

// Adds a new current key; old keys stay so that records they sealed still verify.
export function addKey(file: string): { ring: KeyRing; previous: AuditKey } {
  const ring = loadKeys(file);
  const k = newKey();
  writeRing(file, [...ring.byId.values(), k]);
  return { ring: loadKeys(file), previous: ring.current };
}
