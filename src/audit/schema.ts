// SPDX-License-Identifier: Apache-2.0
// Audit record schema and chain primitives, pure (no I/O): shared by the front end's appender, verify and the helper journal.
import { createHash, createHmac, hash } from 'node:crypto';

export const AUDIT_VERSION = 1;
export const GENESIS = '0'.repeat(64); // `prev` of the very first record of a log

export type AuditKind = 'intent' | 'outcome' | 'denial' | 'auth' | 'event';

// NIST AU-3 (f) / PCI 10.2.2: the individual, not just the account that ran the daemon.
export interface Who {
  user: string;
  tenant: string;
  method: string; // none | peercred | x509 | sasl
  fingerprint?: string; // sha256 of the client certificate (x509)
  dn?: string;
  uid?: number; // unix peer (peercred)
  gid?: number;
  pid?: number;
}

export interface What {
  procedure: string; // libvirt procedure name, e.g. domainSetMemory
  permission?: string; // e.g. domain:write
  // The object as the helper knows it (the record the decision used); clientName only when the client sent another name.
  object?: { kind?: string; name?: string; uuid?: string; tenant?: string; clientName?: string };
  helperOp?: string; // the helper request this write became (DOMAIN_WRITE_REQ.control, ...)
  digest?: string; // sha256 of that request with its actor blanked: the helper journals the same (cross-check)
  args?: ArgSummary; // never secrets: sizes, counts, flags, hashes of XML
}

export type ArgSummary = Record<string, string | number | boolean>;

export interface DecisionField {
  result: 'allow' | 'deny';
  rule: string;
}

export interface OutcomeField {
  result: 'success' | 'error';
  code?: string; // VG_ERR_* on error
  message?: string;
}

export interface EventField {
  name: string; // daemon-start, daemon-stop, policy-reload, key-rotated, recovered-torn-line, log-rotated, log-recreated, audit-restored, auth-*
  detail?: Record<string, string | number | boolean>;
}

// What callers supply; the appender adds v, seq, ts, host, key, prev and mac.
export interface AuditInput {
  kind: AuditKind;
  requestId?: string; // links an intent to its outcome (and to the helper journal)
  who?: Who;
  source?: string; // address:port, or unix:uid=N,pid=N
  what?: What;
  decision?: DecisionField;
  outcome?: OutcomeField;
  event?: EventField;
}

export interface AuditRecord extends AuditInput {
  v: number;
  seq: number;
  ts: string; // RFC 3339 UTC, milliseconds
  host: string;
  key: string; // id of the HMAC key that sealed this record
  prev: string; // sha256 (hex) of the previous record's line
  mac: string; // hmac-sha256 (hex) of this line without its mac field
}

export interface SealParams {
  seq: number;
  ts: string;
  host: string;
  keyId: string;
  key: Buffer;
  prev: string;
}

// One line without the newline. Field order is fixed here, so the bytes are the canonical form:
// verify recomputes the MAC over the exact bytes that were written, with no re-serialisation.
export function sealRecord(input: AuditInput, p: SealParams): string {
  const body = JSON.stringify({
    v: AUDIT_VERSION,
    seq: p.seq,
    ts: p.ts,
    host: p.host,
    kind: input.kind,
    requestId: input.requestId,
    who: input.who,
    source: input.source,
    what: input.what,
    decision: input.decision,
    outcome: input.outcome,
    event: input.event,
    key: p.keyId,
    prev: p.prev,
  });
  const mac = hmacHex(p.key, body);
  return `${body.slice(0, -1)},"mac":"${mac}"}`;
}

const MAC_HEAD = ',"mac":"';
const MAC_TAIL_LEN = MAC_HEAD.length + 64 + 2; // ,"mac":"<64 hex>"}
const HEX64 = /^[0-9a-f]{64}$/;

// Splits a sealed line into the MACed body and the MAC; null if the line has no well-formed mac field at its end.
// A fixed-width suffix, not a regex over the line: verify does this 50,000 times.
export function splitMac(line: string): { body: string; mac: string } | null {
  const at = line.length - MAC_TAIL_LEN;
  if (at < 1 || !line.startsWith(MAC_HEAD, at) || !line.endsWith('"}')) return null;
  const mac = line.slice(at + MAC_HEAD.length, line.length - 2);
  if (!HEX64.test(mac)) return null;
  return { body: line.slice(0, at) + '}', mac };
}

export function hmacHex(key: Buffer, body: string): string {
  return createHmac('sha256', key).update(body).digest('hex');
}

export function lineHash(line: string): string {
  return hash('sha256', line, 'hex'); // one-shot: no Hash object per record
}

// A key's public id: enough to pick the right key at verify time, useless for forging.
export function keyIdOf(key: Buffer): string {
  return createHash('sha256').update('virtgate-audit-key-id\0').update(key).digest('hex').slice(0, 16);
}

const XML_KEYS = new Set(['xml', 'xmlDesc', 'xmlin']);
// Secrets are never written, not even hashed (an unsalted hash of a short password is a guess away): only that one was given.
const SECRET_KEYS = new Set(['password']);
const STRING_MAX = 128; // longer strings are hashed: the log records what was asked, not payloads

// Generic argument summary: numbers, booleans and short printable strings kept; XML and long strings hashed;
// 16-byte buffers printed as UUIDs; nested objects (the domain reference) left to `what.object`.
export function summarizeArgs(args: Record<string, unknown> | null | undefined): ArgSummary {
  const out: ArgSummary = {};
  if (!args) return out;
  for (const [k, v] of Object.entries(args)) {
    if (SECRET_KEYS.has(k)) out[`${k}Given`] = v !== null && v !== undefined;
    else if (typeof v === 'number' || typeof v === 'boolean') out[k] = v;
    else if (typeof v === 'bigint') out[k] = v.toString();
    else if (typeof v === 'string') {
      if (XML_KEYS.has(k) || v.length > STRING_MAX || /[^\x20-\x7e]/.test(v)) {
        out[`${k}Sha256`] = createHash('sha256').update(v).digest('hex');
        out[`${k}Bytes`] = Buffer.byteLength(v);
      } else out[k] = v;
    } else if (Buffer.isBuffer(v) && v.length === 16) out[k] = formatUuid(v);
  }
  return out;
}

export function formatUuid(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// Structural check of a parsed line; returns what is wrong, or null.
export function checkShape(r: unknown): string | null {
  if (typeof r !== 'object' || r === null || Array.isArray(r)) return 'not an object';
  const o = r as Record<string, unknown>;
  if (o.v !== AUDIT_VERSION) return `unknown version ${String(o.v)}`;
  if (!Number.isSafeInteger(o.seq) || (o.seq as number) < 0) return 'bad seq';
  for (const f of ['ts', 'host', 'kind', 'key', 'prev', 'mac']) if (typeof o[f] !== 'string') return `missing ${f}`;
  if (!['intent', 'outcome', 'denial', 'auth', 'event'].includes(o.kind as string)) return `unknown kind ${String(o.kind)}`;
  return null;
}
