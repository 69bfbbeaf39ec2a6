// SPDX-License-Identifier: Apache-2.0
// The shipped units: exposure score under target (systemd-analyze security --offline), no warnings, and verify passes.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const DIR = path.resolve(__dirname, '..', '..', 'systemd');
const have = spawnSync('systemd-analyze', ['--version']).status === 0;
if (!have) process.stdout.write('SKIP: systemd-analyze not found; install Debian package systemd\n');
const maybe = have ? test : test.skip;

// Gate from security-notes §3.2: --threshold takes 10x the printed score (exit 1 when above), and a typo only warns on
// stderr with exit 0, so any stderr output fails too.
function gate(unit: string, threshold: number): { rc: number | null; score: number; stderr: string } {
  const r = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', `--threshold=${threshold}`, unit], { encoding: 'utf8' });
  const m = /Overall exposure level for [^:]*: ([0-9.]+)/.exec(r.stdout);
  return { rc: r.status, score: m ? Number(m[1]) : NaN, stderr: r.stderr };
}

maybe.each([
  ['virtgate-helper.service', 25, 2.5],
  ['virtgated.service', 20, 2.0],
])('%s: exposure <= target, no stderr', (unit, threshold, max) => {
  const g = gate(path.join(DIR, unit), threshold);
  process.stdout.write(`${unit}: exposure ${g.score}\n`);
  expect(g.stderr).toBe('');
  expect(g.rc).toBe(0);
  expect(g.score).toBeLessThanOrEqual(max);
});

maybe('the gate catches a misspelt directive (exit 0, warning on stderr)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-unit-'));
  const typo = path.join(dir, 'typo.service');
  fs.writeFileSync(typo, fs.readFileSync(path.join(DIR, 'virtgated.service'), 'utf8').replace('ProtectSystem=strict', 'ProtectSytem=strict'));
  const g = gate(typo, 20);
  fs.rmSync(dir, { recursive: true, force: true });
  expect(g.rc).toBe(0);
  expect(g.stderr).toMatch(/Unknown key 'ProtectSytem'/);
});

maybe('systemd-analyze verify: all units together, offline, silent', () => {
  const units = fs
    .readdirSync(DIR)
    .filter((f) => /\.(service|socket)$/.test(f))
    .map((f) => path.join(DIR, f));
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', ...units], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
});

maybe('each directive group has a reason comment above it', () => {
  for (const f of fs.readdirSync(DIR).filter((x) => /\.(service|socket)$/.test(x))) {
    const lines = fs.readFileSync(path.join(DIR, f), 'utf8').split('\n');
    lines.forEach((l, i) => {
      // The first directive of a paragraph must follow a comment (or a section header).
      if (/^[A-Za-z]+=/.test(l) && (i === 0 || lines[i - 1].trim() === '')) throw new Error(`${f}:${i + 1}: ${l} has no reason comment above it`);
    });
  }
});
