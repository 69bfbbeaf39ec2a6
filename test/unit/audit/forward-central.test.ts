// SPDX-License-Identifier: Apache-2.0
// Central verification of a collector file: per host chains, gaps, reordering, duplicates, tampering, stale hosts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AuditAppender } from '../../../src/audit/appender';
import { verifyCollectorLines } from '../../../src/audit/central';
import { formatRecord } from '../../../src/audit/forward-format';
import { loadVerifyKey } from '../../../src/audit/keys';
import type { AuditRecord } from '../../../src/audit/schema';
import { tempDir } from './helpers';

interface Host {
  name: string;
  lines: string[];
  keyFile: string;
}

async function host(dir: string, name: string, n: number, t0: number): Promise<Host> {
  const d = path.join(dir, name);
  let t = t0;
  const a = await AuditAppender.open({
    file: path.join(d, 'audit.log'),
    keyFile: path.join(d, 'keys', 'audit.key'),
    verifyKeyFile: path.join(d, 'lib', 'v.key'),
    host: name,
    now: () => new Date((t += 1000)),
  });
  for (let i = 0; i < n; i++) await a.append({ kind: 'event', event: { name: 'e', detail: { i } } });
  await a.close();
  return { name, lines: fs.readFileSync(path.join(d, 'audit.log'), 'utf8').trim().split('\n'), keyFile: path.join(d, 'lib', 'v.key') };
}

const msg = (l: string, resent = false): string => formatRecord(l, JSON.parse(l) as AuditRecord, { resent });

describe('verify --collector', () => {
  let dir: string;
  let a: Host;
  let b: Host;
  beforeAll(async () => {
    dir = tempDir('vg-central-');
    a = await host(dir, 'host-a', 12, Date.parse('2026-01-01T00:00:00Z'));
    b = await host(dir, 'host-b', 8, Date.parse('2026-01-01T00:00:00Z'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  // Interleaved as two forwarders would land in one file.
  const mix = (x: string[], y: string[]): string[] => {
    const out: string[] = [];
    for (let i = 0; i < Math.max(x.length, y.length); i++) out.push(...(i < x.length ? [x[i]] : []), ...(i < y.length ? [y[i]] : []));
    return out;
  };
  const keys = () =>
    new Map([
      ['host-a', loadVerifyKey(a.keyFile)],
      ['host-b', loadVerifyKey(b.keyFile)],
    ]);

  test('two interleaved hosts, other traffic and flagged re-sends: ok', () => {
    const file = mix(
      a.lines.map((l) => msg(l)),
      b.lines.map((l) => msg(l)),
    );
    // a reconnect re-sent a's seqs 3..5 flagged, after 5 had arrived once
    const at = file.indexOf(msg(a.lines[5]));
    file.splice(at + 1, 0, ...a.lines.slice(3, 6).map((l) => msg(l, true)), '<13>1 2026-01-01T00:00:00Z x sshd 1 - - hello');
    const r = verifyCollectorLines(file, { keys: keys() });
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.skipped).toBe(1);
    expect(r.hosts.map((h) => [h.host, h.records, h.firstSeq, h.lastSeq, h.resentDuplicates, h.macChecked])).toEqual([
      ['host-a', 12, 0, 11, 3, true],
      ['host-b', 8, 0, 7, 0, true],
    ]);
  });

  test('a duplicate without the flag is named', () => {
    const file = a.lines.map((l) => msg(l));
    file.splice(6, 0, msg(a.lines[4]));
    const r = verifyCollectorLines(file);
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'duplicate', host: 'host-a', seq: 4, line: 7 })]);
  });

  test('a flagged re-send that differs from the first copy is named', () => {
    const edited = a.lines[4].replace('"i":4', '"i":5');
    const file = [...a.lines.map((l) => msg(l)), msg(edited, true)];
    const r = verifyCollectorLines(file);
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'conflict', host: 'host-a', seq: 4, line: 13 })]);
  });

  test('a deleted line is a gap naming host and seq', () => {
    const file = mix(
      a.lines.map((l) => msg(l)),
      b.lines.map((l) => msg(l)),
    );
    file.splice(file.indexOf(msg(b.lines[3])), 1);
    const r = verifyCollectorLines(file);
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'gap', host: 'host-b', seq: 3 })]);
    expect(r.problems[0].message).toMatch(/seq 3 is missing before seq 4/);
  });

  test('swapped lines are reordered', () => {
    const file = a.lines.map((l) => msg(l));
    [file[5], file[6]] = [file[6], file[5]];
    const r = verifyCollectorLines(file);
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'reordered', host: 'host-a', seq: 5, line: 7 })]);
  });

  test('an edited record: the chain names it without keys, the MAC with keys', () => {
    const file = a.lines.map((l) => msg(l));
    file[7] = msg(a.lines[7].replace('"i":7', '"i":70'));
    const plain = verifyCollectorLines(file);
    expect(plain.problems).toEqual([expect.objectContaining({ kind: 'chain', host: 'host-a', seq: 8 })]);
    const keyed = verifyCollectorLines(file, { keys: keys() });
    expect(keyed.problems).toEqual([expect.objectContaining({ kind: 'edited', host: 'host-a', seq: 7, line: 8 })]);
  });

  test('a record re-sealed with a guessed key and re-chained is caught by the MAC', () => {
    const file = a.lines.map((l) => msg(l));
    const body = JSON.parse(a.lines[11]) as Record<string, unknown>;
    body.event = { name: 'forged' };
    file[11] = msg(JSON.stringify(body));
    expect(verifyCollectorLines(file).problems).toEqual([]); // the last record: nothing chains to it
    expect(verifyCollectorLines(file, { keys: keys() }).problems).toEqual([expect.objectContaining({ kind: 'edited', seq: 11 })]);
  });

  test('header seq differing from the sealed seq, and a broken line', () => {
    const file = a.lines.map((l) => msg(l));
    file[2] = file[2].replace('seq="2"', 'seq="9"');
    file[4] = file[4].slice(0, 120);
    const kinds = verifyCollectorLines(file).problems.map((p) => p.kind);
    expect(kinds).toEqual(expect.arrayContaining(['edited', 'malformed']));
  });

  test('a host that stopped sending is stale', () => {
    const file = mix(
      a.lines.map((l) => msg(l)),
      b.lines.slice(0, 3).map((l) => msg(l)),
    );
    const r = verifyCollectorLines(file, { staleMs: 5000 });
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'stale', host: 'host-b', seq: 2 })]);
    expect(verifyCollectorLines(file, { staleMs: 60_000 }).problems).toEqual([]);
  });
});
