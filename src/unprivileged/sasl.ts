// SPDX-License-Identifier: Apache-2.0
// Server side of libvirt's SASL authentication (AUTH_SASL_INIT/START/STEP): SCRAM-SHA-256 (RFC 5802, 7677) and PLAIN.
// Network-facing: every message from the client is untrusted text; failures never say which part was wrong.
import crypto from 'node:crypto';
import type { SaslUser, UserDb } from '../accounts/user-db';

export const SCRAM = 'SCRAM-SHA-256';
export const PLAIN = 'PLAIN';
const NONCE_BYTES = 24;

export type StepResult =
  { kind: 'continue'; data: Buffer | null } | { kind: 'success'; user: string; data: Buffer | null } | { kind: 'failure'; reason: string }; // reason is for our log only, never for the client

export interface SaslSession {
  readonly mech: string;
  // The user name the next step's message claims, parsed as step() would, without acting on it; null when the message
  // names no one (it then cannot succeed). The caller waits for that user's turn before calling step().
  claimedUser(data: Buffer): string | null;
  step(data: Buffer | null): Promise<StepResult>;
}

// PLAIN sends the password in clear: offered only inside TLS (the caller decides through `mechanisms`).
export function mechanisms(secureTransport: boolean): string[] {
  return secureTransport ? [SCRAM, PLAIN] : [SCRAM];
}

export function startSession(mech: string, db: UserDb): SaslSession | null {
  if (mech === SCRAM) return new ScramServer(db);
  if (mech === PLAIN) return new PlainServer(db);
  return null;
}

// RFC 5802 §5.1: saslname escapes ',' and '='.
function unescapeName(s: string): string | null {
  if (/=(?!2C|3D)/.test(s)) return null;
  return s.replace(/=2C/g, ',').replace(/=3D/g, '=');
}

const hmac = (key: Buffer, text: string): Buffer => crypto.createHmac('sha256', key).update(text).digest();
const sha256 = (b: Buffer): Buffer => crypto.createHash('sha256').update(b).digest();

// client-first-message: the user name and the bare part, or why it is refused.
function parseClientFirst(msg: string): { name: string; bare: string; cnonce: string } | string {
  // gs2-header: cbind flag ("n" or "y"; no channel binding is offered, so "p=" is refused), optional authzid.
  const m = /^([ny]),(a=[^,]*)?,(.*)$/.exec(msg);
  if (!m) return 'malformed client-first-message';
  const bare = m[3];
  const fields = bare.split(',');
  if (fields.length < 2 || !fields[0].startsWith('n=') || !fields[1].startsWith('r=')) return 'client-first-message needs n= and r=';
  const name = unescapeName(fields[0].slice(2));
  const cnonce = fields[1].slice(2);
  if (!name || !/^[\x21-\x2b\x2d-\x7e]+$/.test(cnonce)) return 'bad user name or nonce';
  if (m[2] && unescapeName(m[2].slice(2)) !== name) return 'authzid differs from the user';
  return { name, bare, cnonce };
}

class ScramServer implements SaslSession {
  readonly mech = SCRAM;
  readonly #db: UserDb;
  #state: 'first' | 'final' | 'done' = 'first';
  #user: SaslUser | null = null;
  #name = '';
  #gs2Header = '';
  #clientFirstBare = '';
  #serverFirst = '';
  #nonce = '';

  constructor(db: UserDb) {
    this.#db = db;
  }

  async step(data: Buffer | null): Promise<StepResult> {
    if (this.#state === 'first') {
      // No initial response: send an empty challenge and wait for client-first in the next step.
      if (data === null) return { kind: 'continue', data: Buffer.alloc(0) };
      return this.#first(data.toString('utf8'));
    }
    if (this.#state === 'final' && data !== null) return this.#final(data.toString('utf8'));
    this.#state = 'done';
    return { kind: 'failure', reason: 'unexpected SCRAM step' };
  }

  claimedUser(data: Buffer): string | null {
    if (this.#state !== 'first') return null;
    const p = parseClientFirst(data.toString('utf8'));
    return typeof p === 'string' ? null : p.name;
  }

  #first(msg: string): StepResult {
    const p = parseClientFirst(msg);
    if (typeof p === 'string') return this.#fail(p);
    const { name, bare, cnonce } = p;
    this.#name = name;
    this.#gs2Header = msg.slice(0, msg.length - bare.length);
    this.#clientFirstBare = bare;
    this.#user = this.#db.get(name);
    // Unknown users get a deterministic fake salt so the exchange looks the same: no user enumeration.
    const salt = this.#user?.scram.salt ?? this.#db.fakeSalt(name);
    const iterations = this.#user?.scram.iterations ?? this.#db.defaultIterations;
    this.#nonce = cnonce + crypto.randomBytes(NONCE_BYTES).toString('base64');
    this.#serverFirst = `r=${this.#nonce},s=${salt.toString('base64')},i=${iterations}`;
    this.#state = 'final';
    return { kind: 'continue', data: Buffer.from(this.#serverFirst) };
  }

  #final(msg: string): StepResult {
    this.#state = 'done';
    const m = /^c=([^,]*),r=([^,]*)(,.*)?,p=([A-Za-z0-9+/=]+)$/.exec(msg);
    if (!m) return this.#fail('malformed client-final-message');
    if (Buffer.from(m[1], 'base64').toString('utf8') !== this.#gs2Header) return this.#fail('channel binding mismatch');
    if (m[2] !== this.#nonce) return this.#fail('nonce mismatch');
    const withoutProof = msg.slice(0, msg.lastIndexOf(',p='));
    const authMessage = `${this.#clientFirstBare},${this.#serverFirst},${withoutProof}`;
    const proof = Buffer.from(m[4], 'base64');
    const user = this.#user;
    if (!user || proof.length !== 32) return this.#fail(user ? 'bad proof length' : `unknown user '${this.#name}'`);
    const clientKey = Buffer.alloc(32);
    const signature = hmac(user.scram.storedKey, authMessage);
    for (let i = 0; i < 32; i++) clientKey[i] = proof[i] ^ signature[i];
    if (!crypto.timingSafeEqual(sha256(clientKey), user.scram.storedKey)) return this.#fail(`wrong password for '${this.#name}'`);
    const serverSignature = hmac(user.scram.serverKey, authMessage);
    return { kind: 'success', user: user.name, data: Buffer.from(`v=${serverSignature.toString('base64')}`) };
  }

  #fail(reason: string): StepResult {
    this.#state = 'done';
    return { kind: 'failure', reason };
  }
}

class PlainServer implements SaslSession {
  readonly mech = PLAIN;
  readonly #db: UserDb;
  #done = false;

  constructor(db: UserDb) {
    this.#db = db;
  }

  claimedUser(data: Buffer): string | null {
    const parts = data.toString('utf8').split('\0');
    return !this.#done && parts.length === 3 && parts[1] !== '' ? parts[1] : null;
  }

  async step(data: Buffer | null): Promise<StepResult> {
    if (this.#done) return { kind: 'failure', reason: 'unexpected PLAIN step' };
    if (data === null) return { kind: 'continue', data: Buffer.alloc(0) };
    this.#done = true;
    const parts = data.toString('utf8').split('\0');
    if (parts.length !== 3) return { kind: 'failure', reason: 'malformed PLAIN message' };
    const [authzid, name, password] = parts;
    if (authzid !== '' && authzid !== name) return { kind: 'failure', reason: 'authzid differs from the user' };
    const ok = await this.#db.verifyPassword(name, password);
    return ok ? { kind: 'success', user: name, data: null } : { kind: 'failure', reason: `PLAIN login refused for '${name}'` };
  }
}
