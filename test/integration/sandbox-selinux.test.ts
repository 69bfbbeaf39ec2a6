// SPDX-License-Identifier: Apache-2.0
// The SELinux module builds, links against Debian's base.pp and passes the boundary assertions (selinux/check.sh).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const DIR = path.resolve(__dirname, '..', '..', 'selinux');

function check(src?: string): { status: number | null; out: string } {
  const r = spawnSync('sh', [path.join(DIR, 'check.sh')], {
    encoding: 'utf8',
    env: { ...process.env, ...(src ? { VIRTGATE_SELINUX_SRC: src } : {}) },
    timeout: 120000,
  });
  return { status: r.status, out: r.stdout + r.stderr };
}

let first: { status: number | null; out: string };
beforeAll(() => {
  first = check();
}, 130000);

test('module builds, links and meets the targets (front->helper 1 connectto rule, front caps 0, helper caps <= 3)', () => {
  if (first.status === 77) {
    process.stdout.write(first.out.split('\n').find((l) => l.startsWith('SKIP')) + '\n');
    return;
  }
  process.stdout.write(first.out);
  expect(first.status).toBe(0);
  expect(first.out).toMatch(/ok {3}front->helper allow rules: 1/);
  expect(first.out).toMatch(/ok {3}front capability rules: 0/);
  expect(first.out).not.toMatch(/FAIL/);
}, 130000);

test('a capability granted to the front end fails the check', () => {
  if (first.status === 77) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-se-'));
  for (const f of ['virtgate.te', 'virtgate.fc', 'virtgate.if']) fs.copyFileSync(path.join(DIR, f), path.join(dir, f));
  fs.appendFileSync(path.join(dir, 'virtgate.te'), '\nallow virtgate_front_t self:capability net_bind_service;\n');
  const r = check(dir);
  fs.rmSync(dir, { recursive: true, force: true });
  expect(r.status).toBe(1);
  expect(r.out).toMatch(/FAIL front capability rules: want 0, got 1/);
}, 130000);

test('each rule in virtgate.te has a reason comment above its group', () => {
  const lines = fs.readFileSync(path.join(DIR, 'virtgate.te'), 'utf8').split('\n');
  lines.forEach((l, i) => {
    if (l.trim() && !l.startsWith('#') && (i === 0 || lines[i - 1].trim() === ''))
      throw new Error(`virtgate.te:${i + 1}: '${l}' has no reason comment above it`);
  });
});
