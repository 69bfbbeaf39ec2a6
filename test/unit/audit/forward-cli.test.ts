// SPDX-License-Identifier: Apache-2.0
// `virtgate audit verify --collector FILE [--verify-key HOST=FILE ...] [--stale D]`: output names host and seq; exit codes.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AuditAppender } from '../../../src/audit/appender';
import { formatRecord } from '../../../src/audit/forward-format';
import type { AuditRecord } from '../../../src/audit/schema';
import { auditMain, parseDuration } from '../../../src/cli/audit';
import { tempDir } from './helpers';

let dir: string;
const vkey = (h: string): string => path.join(dir, h, 'v.key');

async function hostLines(h: string, n: number, t0: number): Promise<string[]> {
  let t = t0;
  const a = await AuditAppender.open({
    file: path.join(dir, h, 'audit.log'),
    keyFile: path.join(dir, h, 'keys', 'a.key'),
    verifyKeyFile: vkey(h),
    host: h,
    now: () => new Date((t += 1000)),
  });
  for (let i = 0; i < n; i++) await a.append({ kind: 'event', event: { name: 'e', detail: { i } } });
  await a.close();
  return fs
    .readFileSync(path.join(dir, h, 'audit.log'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => formatRecord(l, JSON.parse(l) as AuditRecord, { resent: false }));
}

function run(args: string[]): Promise<{ rc: number; out: string }> {
  let out = '';
  return auditMain(args, { stdout: (s) => void (out += s), stderr: (s) => void (out += s), env: {} }).then((rc) => ({ rc, out }));
}

let file: string;
beforeAll(async () => {
  dir = tempDir('vg-fwd-cli-');
  const a = await hostLines('alpha', 6, Date.parse('2026-01-01T00:00:00Z'));
  const b = await hostLines('beta', 3, Date.parse('2026-01-01T00:00:00Z'));
  file = path.join(dir, 'central.log');
  fs.writeFileSync(file, [...a, ...b].join('\n') + '\n');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('ok with both keys; --stale names the host that stopped', async () => {
  const ok = await run(['verify', '--collector', file, '--verify-key', `alpha=${vkey('alpha')}`, '--verify-key', `beta=${vkey('beta')}`]);
  expect(ok.out).toMatch(/^ok: host alpha: 6 records, seq 0\.\.5, .*chain and MACs checked$/m);
  expect(ok.out).toMatch(/^ok: host beta: 3 records/m);
  expect(ok.rc).toBe(0);
  const stale = await run(['verify', '--collector', file, '--stale', '2s']);
  expect(stale.out).toMatch(/FAILED \(stale\): host beta seq 2: .* older than the newest host's/);
  expect(stale.out).toMatch(/MACs not checked/);
  expect(stale.rc).toBe(1);
});

test('a key for a host that sent nothing is a problem', async () => {
  const r = await run(['verify', '--collector', file, '--verify-key', `gamma=${vkey('alpha')}`]);
  expect(r.out).toMatch(/FAILED \(stale\): host gamma: no record from this host/);
  expect(r.rc).toBe(1);
});

test('the wrong host key fails the MACs', async () => {
  const r = await run(['verify', '--collector', file, '--verify-key', `alpha=${vkey('beta')}`]);
  expect(r.out).toMatch(/FAILED \(forged\): host alpha seq 0:/);
  expect(r.rc).toBe(1);
});

test('usage errors exit 2', async () => {
  expect((await run(['verify', '--collector', file, '--verify-key', 'nohost'])).rc).toBe(2);
  expect((await run(['verify', '--collector', file, '--stale', 'soon'])).rc).toBe(2);
  expect((await run(['verify', '--stale', '1m'])).rc).toBe(2);
  expect((await run(['verify', '--collector', file, 'extra'])).rc).toBe(2);
  expect((await run(['verify', '--collector', path.join(dir, 'none')])).rc).toBe(1);
});

test.each([
  ['90', 90_000],
  ['30s', 30_000],
  ['15m', 900_000],
  ['2h', 7_200_000],
  ['1d', 86_400_000],
  ['x', null],
  ['-1m', null],
])('duration %s', (s, ms) => expect(parseDuration(s)).toBe(ms));
