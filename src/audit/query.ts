// SPDX-License-Identifier: Apache-2.0
// Audit queries for auditors: filter records by who, tenant, VM, time and outcome; print as table, JSON or CSV (pure).
import type { AuditRecord } from './schema';

export interface QueryFilter {
  user?: string;
  tenant?: string;
  vm?: string; // name or UUID (with or without dashes)
  since?: Date;
  until?: Date;
  outcome?: 'success' | 'error' | 'denied' | 'allowed' | 'unknown'; // unknown: intents no outcome record follows
  kind?: string;
  requestId?: string;
}

export const OUTCOMES = ['success', 'error', 'denied', 'allowed', 'unknown'] as const;
export const FORMATS = ['table', 'json', 'csv'] as const;
export type Format = (typeof FORMATS)[number];

const bareUuid = (s: string): string => s.toLowerCase().replace(/-/g, '');

export function matches(r: AuditRecord, f: QueryFilter): boolean {
  if (f.user !== undefined && r.who?.user !== f.user) return false;
  if (f.tenant !== undefined && r.who?.tenant !== f.tenant) return false;
  if (f.kind !== undefined && r.kind !== f.kind) return false;
  if (f.requestId !== undefined && r.requestId !== f.requestId) return false;
  if (f.vm !== undefined) {
    const o = r.what?.object;
    if (!o || (o.name !== f.vm && (!o.uuid || bareUuid(o.uuid) !== bareUuid(f.vm)))) return false;
  }
  if (f.since || f.until) {
    const t = Date.parse(r.ts);
    if (f.since && t < f.since.getTime()) return false;
    if (f.until && t > f.until.getTime()) return false;
  }
  switch (f.outcome) {
    case 'success':
      return r.outcome?.result === 'success';
    case 'error':
      return r.outcome?.result === 'error';
    case 'denied':
      return r.decision?.result === 'deny';
    case 'allowed':
      return r.decision?.result === 'allow';
    case 'unknown':
      return r.kind === 'intent'; // and no outcome record follows: settled by queryOutcomes
    default:
      return true;
  }
}

export function query(records: Iterable<AuditRecord>, f: QueryFilter): AuditRecord[] {
  return queryOutcomes(records, f).records;
}

// The matching records, and among them the intents no outcome record follows ("outcome unknown": the front end stopped
// between the intent and the reply; `audit verify --cross-check` tells from the helper's journal whether they ran).
export function queryOutcomes(records: Iterable<AuditRecord>, f: QueryFilter): { records: AuditRecord[]; unknown: ReadonlySet<AuditRecord> } {
  let out: AuditRecord[] = [];
  const open = new Map<string, AuditRecord>(); // matched intents, by request id, until their outcome record is read
  for (const r of records) {
    if (r.kind === 'outcome' && r.requestId) open.delete(r.requestId);
    if (!matches(r, f)) continue;
    out.push(r);
    if (r.kind === 'intent' && r.requestId) open.set(r.requestId, r);
  }
  const unknown = new Set(open.values());
  if (f.outcome === 'unknown') out = out.filter((r) => unknown.has(r));
  return { records: out, unknown };
}

export const COLUMNS = [
  'time',
  'seq',
  'kind',
  'request',
  'user',
  'tenant',
  'auth',
  'source',
  'procedure',
  'permission',
  'object',
  'uuid',
  'args',
  'decision',
  'rule',
  'outcome',
  'error',
] as const;

function row(r: AuditRecord, unknown: boolean): string[] {
  const args = r.what?.args
    ? Object.entries(r.what.args)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')
    : '';
  const event = r.event
    ? `${r.event.name}${
        r.event.detail
          ? ' ' +
            Object.entries(r.event.detail)
              .map(([k, v]) => `${k}=${v}`)
              .join(' ')
          : ''
      }`
    : '';
  return [
    r.ts,
    String(r.seq),
    r.kind,
    r.requestId ?? '',
    r.who?.user ?? '',
    r.who?.tenant ?? '',
    r.who
      ? [
          r.who.method,
          r.who.fingerprint ? `fp=${r.who.fingerprint.slice(0, 16)}` : '',
          r.who.uid !== undefined ? `uid=${r.who.uid}` : '',
          r.who.pid !== undefined ? `pid=${r.who.pid}` : '',
        ]
          .filter(Boolean)
          .join(' ')
      : '',
    r.source ?? '',
    r.what?.procedure ?? event,
    r.what?.permission ?? '',
    r.what?.object?.name ?? '',
    r.what?.object?.uuid ?? '',
    args,
    r.decision?.result ?? '',
    r.decision?.rule ?? '',
    unknown ? 'unknown' : (r.outcome?.result ?? ''),
    unknown
      ? 'no outcome record (see audit verify --cross-check)'
      : r.outcome?.code
        ? `${r.outcome.code}${r.outcome.message ? ': ' + r.outcome.message : ''}`
        : '',
  ];
}

const TABLE_COLUMNS = [0, 1, 2, 3, 4, 5, 7, 8, 10, 13, 15, 16]; // the rest is in json/csv

// Intents in `unknown` show outcome "unknown" (table, csv) or carry "outcomeUnknown": true (json; not in the log itself).
export function formatRecords(records: readonly AuditRecord[], format: Format, unknown: ReadonlySet<AuditRecord> = new Set()): string {
  if (format === 'json')
    return '[\n' + records.map((r) => JSON.stringify(unknown.has(r) ? { ...r, outcomeUnknown: true } : r)).join(',\n') + (records.length ? '\n' : '') + ']\n';
  if (format === 'csv') return [COLUMNS.join(','), ...records.map((r) => row(r, unknown.has(r)).map(csvCell).join(','))].join('\r\n') + '\r\n';
  const header = TABLE_COLUMNS.map((i) => COLUMNS[i]);
  const rows = records.map((r) => {
    const all = row(r, unknown.has(r));
    return TABLE_COLUMNS.map((i) => all[i].replace(/[\r\n\t]/g, ' '));
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((x) => x[i].length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i < cells.length - 1 ? c.padEnd(widths[i]) : c))
      .join('  ')
      .trimEnd();
  return [line(header), '-'.repeat(widths.reduce((n, w) => n + w + 2, -2)), ...rows.map(line)].join('\n') + '\n';
}

// RFC 4180 quoting, plus a leading quote on cells a spreadsheet would run as a formula (CSV injection).
export function csvCell(s: string): string {
  const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

// --since/--until: an RFC 3339 time or date, or a relative "15m", "2h", "7d" before now.
export function parseTime(s: string, now = new Date()): Date | null {
  const rel = /^(\d+)([smhd])$/.exec(s);
  if (rel) return new Date(now.getTime() - Number(rel[1]) * { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[rel[2] as 's' | 'm' | 'h' | 'd']);
  const t = Date.parse(s);
  return Number.isNaN(t) ? null : new Date(t);
}
