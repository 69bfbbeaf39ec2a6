// SPDX-License-Identifier: Apache-2.0
// `virtgate audit verify|query|init|rotate-key`: offline tools over the audit log files (no daemon connection).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { AuditAppender } from '../audit/appender';
import { verifyCollectorFile } from '../audit/central';
import { crossCheckStreams, readSealedRecords } from '../audit/cross-check';
import { logFiles } from '../audit/fs-layer';
import { type JournalReadState, journalFiles, streamJournal } from '../audit/journal';
import { type VerifyKey, initAuditKeys, loadVerifyKey } from '../audit/keys';
import { FORMATS, type Format, OUTCOMES, type QueryFilter, formatRecords, parseTime, queryOutcomes } from '../audit/query';
import type { AuditKind } from '../audit/schema';
import { readRecords, verifyFiles } from '../audit/verify';

// Every record kind, as a Record so that a kind added to the schema must be added here too.
const KIND_SET: Record<AuditKind, true> = { intent: true, outcome: true, denial: true, auth: true, event: true };
export const AUDIT_KINDS = Object.keys(KIND_SET) as AuditKind[];

export interface AuditIo {
  stdout(s: string): void;
  stderr(s: string): void;
  env: NodeJS.ProcessEnv;
}

// Where `virtgate start --home DIR` keeps audit state: the sealing state in its own directory, apart from the log; the
// verification key in the root helper's state directory, out of the front end's reach when set up as root.
export function auditPaths(home: string): { log: string; keyFile: string; verifyKey: string; journal: string } {
  return {
    log: path.join(home, 'log', 'audit.log'),
    keyFile: path.join(home, 'keys', 'audit.key'),
    verifyKey: path.join(home, 'lib', 'audit-verify.key'),
    journal: path.join(home, 'lib', 'helper-journal.log'), // the helper's state dir: not writable by the front end
  };
}

export const AUDIT_USAGE = `usage: virtgate audit COMMAND [OPTIONS]
  verify [--verify-key FILE] [--key FILE] [--no-anchor] [--allow-partial] [--cross-check HELPER_JOURNAL] [FILE...]
      check the chain, forward-secure MACs and anchor (KEY.anchor) of FILE and its rotated predecessors
      (FILE.<seq>); names the first bad record. A missing verification key or anchor is a failure
      --no-anchor             do not check the anchor (for archived copies)
      --allow-partial         the first file may start mid-chain (older files archived elsewhere)
      --cross-check JOURNAL   also check the helper's journal (and its rotated files) against the log, and resolve
                              each intent without an outcome: executed by the helper or not
  verify --collector FILE [--verify-key HOST=FILE ...] [--stale DURATION]
      a central collector's file (RFC 5424 lines as forwarded, several hosts): each host's chain separately, gaps,
      reordering, duplicates (a flagged re-send identical to the first copy is accepted), MACs of the hosts whose
      verification key is given, and with --stale (30s, 15m, 2h) a host whose last record is that much older than
      the newest host's; every problem names the host, the seq and the line
  query [--user U] [--tenant T] [--vm NAME|UUID] [--since TIME] [--until TIME] [--outcome O] [--kind K]
        [--format F] [FILE...]
      --user U                records of this user
      --tenant T              records in this tenant
      --vm NAME|UUID          records about this VM
      --since/--until TIME    RFC 3339 (2026-01-02T10:00:00Z, 2026-01-02) or relative (15m, 2h, 7d)
      --outcome O             ${OUTCOMES.join('|')}; an intent that no outcome record follows is "unknown"
      --kind K                ${AUDIT_KINDS.join('|')}
      --format F              ${FORMATS.join('|')} (default table)
  init [--force] [--owner UID:GID] [--key FILE] [--verify-key FILE]
      create the verification key and the sealing state (as root, before the front end first starts)
      --owner UID[:GID]       the front end's user, who gets the sealing state
      --force                 add a new seed to existing keys
  rotate-key [--key FILE] [--verify-key FILE] [--log FILE]
      add a new seed (needs write access to the verification key) and record the rotation in the log
      (not while the daemon holds the log)
      --log FILE              the log to record it in (default HOME/log/audit.log)
common options:
      --home DIR              default $VIRTGATE_HOME, else ./.virtgate; FILE defaults to HOME/log/audit.log
      --key FILE              the sealing state (default HOME/keys/audit.key)
      --verify-key FILE       the verification key (default HOME/lib/audit-verify.key)
      -h, --help              this text
exit status: 0 ok, 1 verification failed or problems found, 2 usage
`;

type Options = NonNullable<ParseArgsConfig['options']>;
const COMMON: Options = { home: { type: 'string' }, key: { type: 'string' }, 'verify-key': { type: 'string' }, help: { type: 'boolean', short: 'h' } };
const SPECS: Record<string, Options> = {
  verify: {
    ...COMMON,
    'verify-key': { type: 'string', multiple: true },
    'no-anchor': { type: 'boolean' },
    'allow-partial': { type: 'boolean' },
    'cross-check': { type: 'string' },
    collector: { type: 'string' },
    stale: { type: 'string' },
  },
  query: {
    ...COMMON,
    user: { type: 'string' },
    tenant: { type: 'string' },
    vm: { type: 'string' },
    since: { type: 'string' },
    until: { type: 'string' },
    outcome: { type: 'string' },
    kind: { type: 'string' },
    format: { type: 'string' },
  },
  'rotate-key': { ...COMMON, log: { type: 'string' } },
  init: { ...COMMON, force: { type: 'boolean' }, owner: { type: 'string' } },
};

class Usage extends Error {}

export async function auditMain(argv: string[], io: AuditIo): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd) {
    io.stderr(AUDIT_USAGE);
    return 2;
  }
  if (cmd === 'help' || cmd === '--help' || cmd === '-h') {
    io.stdout(AUDIT_USAGE);
    return 0;
  }
  const spec = SPECS[cmd];
  try {
    if (!spec) throw new Usage(`unknown audit command: '${cmd}'`);
    let values: Record<string, string | boolean | undefined>;
    let positionals: string[];
    try {
      ({ values, positionals } = parseArgs({ args: rest, options: spec, allowPositionals: true, strict: true }) as {
        values: Record<string, string | boolean | undefined>;
        positionals: string[];
      });
    } catch (e) {
      throw new Usage(`audit ${cmd}: ${(e as Error).message}`);
    }
    if (values.help) {
      io.stdout(AUDIT_USAGE);
      return 0;
    }
    const home = path.resolve(str(values.home) ?? io.env.VIRTGATE_HOME ?? '.virtgate');
    const paths = auditPaths(home);
    const keyFile = path.resolve(str(values.key) ?? paths.keyFile);
    const vks = values['verify-key'] as unknown as string[] | string | undefined;
    if (cmd === 'verify' && values.collector !== undefined) return collector(str(values.collector)!, Array.isArray(vks) ? vks : [], values, positionals, io);
    if (values.stale !== undefined) throw new Usage('audit verify: --stale goes with --collector');
    const verifyKey = path.resolve((Array.isArray(vks) ? vks[vks.length - 1] : vks) ?? paths.verifyKey);
    if (cmd === 'init') return init(keyFile, verifyKey, values, positionals, io);
    if (cmd === 'rotate-key') return await rotateKey(str(values.log) ?? positionals[0] ?? paths.log, keyFile, verifyKey, io);
    if (cmd === 'verify') return verify(expand(positionals.length ? positionals : [paths.log]), keyFile, verifyKey, values, io);
    const q = queryOptions(values); // a bad option is a usage error before any file is read
    return runQuery(expand(positionals.length ? positionals : [paths.log]), q, io);
  } catch (e) {
    if (e instanceof Usage) {
      io.stderr(`error: ${e.message}\n${AUDIT_USAGE}`);
      return 2;
    }
    io.stderr(`error: ${(e as Error).message}\n`);
    return 1;
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

// Each active log brings its rotated predecessors (oldest first); other files are taken as given, in the order given.
function expand(args: string[]): string[] {
  const out = new Set<string>();
  for (const a of args) {
    const f = path.resolve(a);
    const set = logFiles(f);
    if (set.length && set[set.length - 1] === f) set.forEach((x) => out.add(x));
    else if (fs.existsSync(f)) out.add(f);
    else throw new Error(`${a}: no such file`);
  }
  return [...out];
}

function verify(files: string[], keyFile: string, verifyKey: string, v: Record<string, unknown>, io: AuditIo): number {
  let keys: VerifyKey;
  try {
    keys = loadVerifyKey(verifyKey);
  } catch (e) {
    // Without it nothing tells a genuine log from one re-sealed by whoever holds the front end's sealing state.
    io.stdout(
      `FAILED (verification key): ${(e as Error).message}: cannot check the MACs (the verification key is root's: run as root, or give --verify-key FILE)\n`,
    );
    return 1;
  }
  const r = verifyFiles(files, { keys, anchor: v['no-anchor'] ? null : `${keyFile}.anchor`, allowPartial: v['allow-partial'] === true });
  let rc = 0;
  if (r.ok) {
    io.stdout(`ok: ${r.records} records, seq ${r.firstSeq}..${r.lastSeq}, ${r.files.length} file(s), chain and MACs verified in ${r.ms.toFixed(0)} ms\n`);
    if (r.prunedThrough) io.stdout(`  seqs 0..${r.prunedThrough.seq} were pruned by retention (log-pruned record seq ${r.prunedThrough.recordSeq})\n`);
    if (!r.anchorChecked) io.stdout('  anchor not checked (--no-anchor): records cut off the end would not be seen\n');
  } else {
    io.stdout(`FAILED (${r.problem!.kind}): ${r.problem!.message}\n`);
    io.stdout(`  ${r.records} records verified before it, seq ${r.firstSeq}..${r.lastSeq}\n`);
    rc = 1;
  }
  const jf = str(v['cross-check']);
  if (jf) rc = Math.max(rc, verifyCrossCheck(files, path.resolve(jf), io));
  return rc;
}

// Streams both logs (constant memory); the journal's rotated files (JOURNAL.<seq>) come with it.
function verifyCrossCheck(files: string[], jf: string, io: AuditIo): number {
  if (!fs.existsSync(jf)) {
    io.stdout(`FAILED (helper journal): ${jf}: no such file\n`);
    return 1;
  }
  const set = journalFiles(jf);
  const jfiles = set.length && set[set.length - 1] === jf ? set : [jf];
  let state: JournalReadState = { problem: null, records: 0, files: jfiles };
  const t0 = process.hrtime.bigint();
  const r = crossCheckStreams(
    () => readSealedRecords(files),
    () => streamJournal(jfiles, (state = { problem: null, records: 0, files: jfiles })),
  );
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  let rc = 0;
  if (state.problem) {
    io.stdout(`FAILED (helper journal): ${state.problem}\n`);
    rc = 1;
  }
  for (const p of r.problems) io.stdout(`FAILED (cross-check): ${p.message}\n`);
  if (r.problems.length) rc = 1;
  else
    io.stdout(
      `ok: cross-check: all ${r.writes} writes in the helper journal have front-end audit records; every audited success of a helper request is journaled (${jfiles.length} journal file(s), ${ms.toFixed(0)} ms)\n`,
    );
  if (r.uncheckable)
    io.stdout(
      `  not checkable: ${r.uncheckable} audited helper request(s) older than the helper journal's first record${state.prunedThrough !== undefined ? ` (its seqs 0..${state.prunedThrough} pruned by retention)` : ''}\n`,
    );
  for (const x of r.resolutions) io.stdout(`resolved: ${x.message}\n`);
  return rc;
}

// A duration: 90 (seconds), 30s, 15m, 2h, 7d.
export function parseDuration(s: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d)?$/.exec(s);
  if (!m) return null;
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
}

function collector(file: string, vks: string[], v: Record<string, unknown>, positionals: string[], io: AuditIo): number {
  if (positionals.length) throw new Usage(`audit verify --collector: unexpected argument '${positionals[0]}'`);
  const keys = new Map<string, VerifyKey>();
  for (const x of vks) {
    const i = x.indexOf('=');
    if (i <= 0) throw new Usage(`audit verify --collector: --verify-key must be HOST=FILE, got '${x}'`);
    keys.set(x.slice(0, i), loadVerifyKey(path.resolve(x.slice(i + 1))));
  }
  let staleMs: number | undefined;
  if (v.stale !== undefined) {
    const d = parseDuration(str(v.stale) ?? '');
    if (d === null) throw new Usage(`audit verify: --stale '${str(v.stale)}' is not a duration (30s, 15m, 2h)`);
    staleMs = d;
  }
  if (!fs.existsSync(file)) throw new Error(`${file}: no such file`);
  const r = verifyCollectorFile(path.resolve(file), { keys, staleMs });
  for (const k of keys.keys())
    if (!r.hosts.some((h) => h.host === k)) r.problems.push({ kind: 'stale', host: k, line: 0, message: 'no record from this host in the file' });
  for (const h of r.hosts) {
    const mine = r.problems.filter((p) => p.host === h.host);
    const what = `${h.records} records, seq ${h.firstSeq}..${h.lastSeq}, last ${h.lastTs}, ${h.resentDuplicates} flagged re-send(s) accepted, chain${h.macChecked ? ' and MACs' : ''} checked${h.macChecked ? '' : ' (no verification key: MACs not checked)'}`;
    io.stdout(`${mine.length ? 'FAILED' : 'ok'}: host ${h.host}: ${what}\n`);
  }
  for (const p of r.problems) io.stdout(`FAILED (${p.kind}): host ${p.host}${p.seq !== undefined ? ` seq ${p.seq}` : ''}: ${p.message}\n`);
  io.stdout(
    `${r.ok && r.problems.length === 0 ? 'ok' : 'FAILED'}: ${r.hosts.length} host(s), ${r.lines} line(s) (${r.skipped} not virtgate audit messages) in ${file}\n`,
  );
  return r.problems.length ? 1 : 0;
}

function queryOptions(v: Record<string, unknown>): { filter: QueryFilter; format: Format } {
  const f: QueryFilter = { user: str(v.user), tenant: str(v.tenant), vm: str(v.vm), kind: str(v.kind) };
  if (f.kind !== undefined && !Object.hasOwn(KIND_SET, f.kind)) throw new Usage(`audit query: --kind must be one of ${AUDIT_KINDS.join(', ')}`);
  for (const k of ['since', 'until'] as const) {
    const s = str(v[k]);
    if (s === undefined) continue;
    const t = parseTime(s);
    if (!t) throw new Usage(`audit query: --${k} '${s}' is not a time (RFC 3339 or 15m/2h/7d)`);
    f[k] = t;
  }
  const outcome = str(v.outcome);
  if (outcome !== undefined) {
    if (!(OUTCOMES as readonly string[]).includes(outcome)) throw new Usage(`audit query: --outcome must be one of ${OUTCOMES.join(', ')}`);
    f.outcome = outcome as QueryFilter['outcome'];
  }
  const format = str(v.format) ?? 'table';
  if (!(FORMATS as readonly string[]).includes(format)) throw new Usage(`audit query: --format must be one of ${FORMATS.join(', ')}`);
  return { filter: f, format: format as Format };
}

function runQuery(files: string[], q: { filter: QueryFilter; format: Format }, io: AuditIo): number {
  const r = queryOutcomes(readRecords(files), q.filter);
  io.stdout(formatRecords(r.records, q.format, r.unknown));
  return 0;
}

function init(keyFile: string, verifyKey: string, v: Record<string, unknown>, positionals: string[], io: AuditIo): number {
  if (positionals.length) throw new Usage(`audit init: unexpected argument '${positionals[0]}'`);
  const o = str(v.owner);
  let owner: { uid: number; gid: number } | undefined;
  if (o !== undefined) {
    const m = /^(\d+)(?::(\d+))?$/.exec(o);
    if (!m) throw new Usage(`audit init: --owner must be UID or UID:GID, got '${o}'`);
    owner = { uid: Number(m[1]), gid: Number(m[2] ?? m[1]) };
  }
  const r = initAuditKeys({ verifyKeyFile: verifyKey, sealFile: keyFile, owner, force: v.force === true });
  io.stdout(
    `audit keys: seed ${r.seedId}${r.previous.length ? ` (added after ${r.previous.length} older seed(s))` : ''}\n  verification key: ${verifyKey} (keep it from the front end's user)\n  sealing state:    ${keyFile}\n`,
  );
  return 0;
}

async function rotateKey(log: string, keyFile: string, verifyKey: string, io: AuditIo): Promise<number> {
  const a = await AuditAppender.open({ file: path.resolve(log), keyFile, verifyKeyFile: verifyKey, createKey: false, log: (m) => io.stderr(`${m}\n`) });
  try {
    const r = await a.rotateKey();
    io.stdout(`audit key rotated: seed ${r.previous} -> ${r.current} (recorded as seq ${r.seq}); ${verifyKey} keeps both for verify\n`);
  } finally {
    await a.close();
  }
  return 0;
}
