// SPDX-License-Identifier: Apache-2.0
// Password users for SASL logins: one JSON file, mode 0600, scrypt for PLAIN and SCRAM-SHA-256 keys (never passwords).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { VG_ERR_USERDB } from '../common/errors';

const SCRYPT = { N: 1 << 15, r: 8, p: 1, keylen: 32, maxmem: 64 * 1024 * 1024 }; // ~100 ms, 32 MiB per guess
// PBKDF2 iterations for SCRAM's Hi(): the client computes it at every login; Cyrus caps what it accepts.
export const SCRAM_ITERATIONS = 65_536; // Cyrus SASL clients refuse counts above 0x10000 ("iteration-count is too big")
const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$/;

export interface SaslUser {
  name: string;
  scrypt: { salt: Buffer; hash: Buffer; N: number; r: number; p: number };
  scram: { salt: Buffer; iterations: number; storedKey: Buffer; serverKey: Buffer };
}

export interface StoredUser {
  scrypt: { salt: string; hash: string; N: number; r: number; p: number };
  scram: { salt: string; iterations: number; storedKey: string; serverKey: string };
}

export function checkUserName(name: string): string {
  if (!NAME_RE.test(name)) throw VG_ERR_USERDB(`user names are 1-64 characters of [A-Za-z0-9_.@-]: '${name}'`);
  return name;
}

export function deriveCredentials(name: string, password: string, iterations = SCRAM_ITERATIONS): SaslUser {
  if (password.length < 8) throw VG_ERR_USERDB('passwords need at least 8 characters');
  const scryptSalt = crypto.randomBytes(16);
  const hash = crypto.scryptSync(password.normalize('NFKC'), scryptSalt, SCRYPT.keylen, SCRYPT);
  const salt = crypto.randomBytes(16);
  // RFC 5802: SaltedPassword = Hi(Normalize(password), salt, i); StoredKey = H(HMAC(SP, "Client Key")).
  const salted = crypto.pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = crypto.createHmac('sha256', salted).update('Client Key').digest();
  return {
    name,
    scrypt: { salt: scryptSalt, hash, N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p },
    scram: {
      salt,
      iterations,
      storedKey: crypto.createHash('sha256').update(clientKey).digest(),
      serverKey: crypto.createHmac('sha256', salted).update('Server Key').digest(),
    },
  };
}

export class UserDb {
  readonly file: string;
  readonly defaultIterations = SCRAM_ITERATIONS;
  #users = new Map<string, SaslUser>();
  #fakeKey = crypto.randomBytes(32);

  constructor(file: string) {
    this.file = file;
  }

  // A missing file is an empty database; a file others can read is refused outright.
  load(): this {
    let text: string;
    try {
      const st = fs.statSync(this.file);
      if ((st.mode & 0o077) !== 0) throw VG_ERR_USERDB(`${this.file} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
      text = fs.readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        this.#users.clear();
        return this;
      }
      throw e;
    }
    let parsed: { version?: number; users?: Record<string, StoredUser> };
    try {
      parsed = JSON.parse(text);
    } catch {
      throw VG_ERR_USERDB(`${this.file} is not valid JSON`);
    }
    if (parsed.version !== 1 || typeof parsed.users !== 'object' || parsed.users === null) throw VG_ERR_USERDB(`${this.file}: unsupported format`);
    const users = new Map<string, SaslUser>();
    for (const [name, u] of Object.entries(parsed.users)) {
      checkUserName(name);
      const b = (s: string): Buffer => Buffer.from(s, 'base64');
      users.set(name, {
        name,
        scrypt: { ...u.scrypt, salt: b(u.scrypt.salt), hash: b(u.scrypt.hash) },
        scram: { salt: b(u.scram.salt), iterations: u.scram.iterations, storedKey: b(u.scram.storedKey), serverKey: b(u.scram.serverKey) },
      });
    }
    this.#users = users;
    return this;
  }

  get(name: string): SaslUser | null {
    return this.#users.get(name) ?? null;
  }

  names(): string[] {
    return [...this.#users.keys()].sort();
  }

  set(user: SaslUser): void {
    this.#users.set(checkUserName(user.name), user);
  }

  delete(name: string): boolean {
    return this.#users.delete(name);
  }

  // Same salt for the same unknown name within one process: a probe cannot tell unknown from known.
  fakeSalt(name: string): Buffer {
    return crypto.createHmac('sha256', this.#fakeKey).update(name).digest().subarray(0, 16);
  }

  async verifyPassword(name: string, password: string): Promise<boolean> {
    const u = this.#users.get(name);
    const salt = u?.scrypt.salt ?? this.fakeSalt(name);
    const params = u ? { N: u.scrypt.N, r: u.scrypt.r, p: u.scrypt.p, maxmem: SCRYPT.maxmem } : SCRYPT;
    // Hash even for unknown users so the timing does not tell them apart.
    const got = await new Promise<Buffer>((resolve, reject) =>
      crypto.scrypt(password.normalize('NFKC'), salt, SCRYPT.keylen, params, (e, k) => (e ? reject(e) : resolve(k))),
    );
    return u !== undefined && crypto.timingSafeEqual(got, u.scrypt.hash);
  }

  save(): void {
    const users: Record<string, StoredUser> = {};
    for (const [name, u] of this.#users) users[name] = storedUser(u);
    writeFileAtomic(this.file, usersFileText(users));
  }
}

// A user as the file (and the PostgreSQL users table's data column) stores it: keys and salts, never a password.
export function storedUser(u: SaslUser): StoredUser {
  const s = (b: Buffer): string => b.toString('base64');
  return {
    scrypt: { salt: s(u.scrypt.salt), hash: s(u.scrypt.hash), N: u.scrypt.N, r: u.scrypt.r, p: u.scrypt.p },
    scram: { salt: s(u.scram.salt), iterations: u.scram.iterations, storedKey: s(u.scram.storedKey), serverKey: s(u.scram.serverKey) },
  };
}

export const usersFileText = (users: Record<string, StoredUser>): string => JSON.stringify({ version: 1, users }, null, 1) + '\n';

// Atomic: temp file (0600) + fsync + rename + fsync of the directory. Run as root, the new file keeps the owner of
// the one it replaces, so `virtgate user ...` as root does not lock the daemon's own user out of its files.
export function writeFileAtomic(file: string, text: string): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  let owner: fs.Stats | null = null;
  try {
    owner = fs.statSync(file);
  } catch {
    // a new file: the caller's
  }
  const tmp = `${file}.tmp-${process.pid}`;
  // Root writes here into the front end's etc/: a planted link at tmp is removed, never followed (O_EXCL).
  fs.rmSync(tmp, { force: true });
  const fd = fs.openSync(tmp, 'wx', 0o600);
  try {
    if (owner && process.getuid?.() === 0) fs.fchownSync(fd, owner.uid, owner.gid);
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  const dfd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(dfd);
  } finally {
    fs.closeSync(dfd);
  }
}
