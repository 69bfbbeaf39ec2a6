// SPDX-License-Identifier: Apache-2.0
// The SELinux module builds, links against Debian's base.pp and passes the boundary assertions (selinux/check.sh):
// front end, helper, and (issue 13) the launcher and the sVirt-style QEMU domain.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Requirement, testIf } from '../helpers/skip';

const DIR = path.resolve(__dirname, '..', '..', 'selinux');

function check(src?: string, ...args: string[]): { status: number | null; out: string } {
  const r = spawnSync('sh', [path.join(DIR, 'check.sh'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...(src ? { VIRTGATE_SELINUX_SRC: src } : {}) },
    timeout: 120000,
  });
  return { status: r.status, out: r.stdout + r.stderr };
}

// The SELinux tooling (exit 77 of `check.sh --probe`, with the packages to install) is a requirement; anything else
// check.sh reports, a failed download of Debian's base.pp included, is a failure.
const probe = check(undefined, '--probe');
const TOOLING: Requirement = {
  ok: probe.status === 0,
  need: probe.status === 77 ? probe.out.trim().replace(/^SKIP: /, 'SELinux tooling: ') : `check.sh --probe: exit ${probe.status}: ${probe.out.trim()}`,
};

let first: { status: number | null; out: string };
beforeAll(() => {
  if (TOOLING.ok) first = check();
}, 130000);

testIf(
  TOOLING,
  'module builds, links and meets the targets (front->helper 1 connectto rule, front caps 0, helper caps <= 3; launcher, QEMU)',
  () => {
    process.stdout.write(first.out);
    expect(first.status).toBe(0);
    expect(first.out).toMatch(/ok {3}front->helper allow rules: 1/);
    expect(first.out).toMatch(/ok {3}front capability rules: 0/);
    expect(first.out).toMatch(/ok {3}launcher->qemu transition: 1/);
    expect(first.out).toMatch(/ok {3}qemu is mcs_constrained_type/);
    expect(first.out).not.toMatch(/FAIL/);
  },
  130000,
);

testIf(
  TOOLING,
  'a capability granted to the front end fails the check',
  () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-se-'));
    for (const f of ['virtgate.te', 'virtgate.fc', 'virtgate.if']) fs.copyFileSync(path.join(DIR, f), path.join(dir, f));
    fs.appendFileSync(path.join(dir, 'virtgate.te'), '\nallow virtgate_front_t self:capability net_bind_service;\n');
    const r = check(dir);
    fs.rmSync(dir, { recursive: true, force: true });
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/FAIL front capability rules: want 0, got 1/);
  },
  130000,
);

testIf(
  TOOLING,
  'QEMU allowed to run a program, or the front end to reach the launcher, fails the check (issue 13)',
  () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-se-'));
    for (const f of ['virtgate.te', 'virtgate.fc', 'virtgate.if']) fs.copyFileSync(path.join(DIR, f), path.join(dir, f));
    fs.appendFileSync(
      path.join(dir, 'virtgate.te'),
      [
        '',
        'allow virtgate_qemu_t bin_t:file execute_no_trans;',
        'stream_connect_pattern(virtgate_front_t, virtgate_launcher_runtime_t, virtgate_launcher_runtime_t, virtgate_launcher_t)',
        'allow virtgate_qemu_t self:capability sys_admin;',
        '',
      ].join('\n'),
    );
    const r = check(dir);
    fs.rmSync(dir, { recursive: true, force: true });
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/FAIL qemu execute_no_trans: want 0, got 1/);
    expect(r.out).toMatch(/FAIL front->launcher allow rules: want 0, got 1/);
    expect(r.out).toMatch(/FAIL qemu capability rules: want 0, got 1/);
  },
  130000,
);

test('each rule in virtgate.te has a reason comment above its group', () => {
  const lines = fs.readFileSync(path.join(DIR, 'virtgate.te'), 'utf8').split('\n');
  lines.forEach((l, i) => {
    if (l.trim() && !l.startsWith('#') && (i === 0 || lines[i - 1].trim() === ''))
      throw new Error(`virtgate.te:${i + 1}: '${l}' has no reason comment above it`);
  });
});
