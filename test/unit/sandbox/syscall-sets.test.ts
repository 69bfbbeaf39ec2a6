// SPDX-License-Identifier: Apache-2.0
// The committed syscall lists: what they must and must not contain, and that they match this machine's systemd.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { FRONT_SYSCALLS, HELPER_SYSCALLS, SYSTEM_SERVICE } from '../../../src/sandbox/syscall-sets';
import { capability, testIf, tool } from '../../helpers/skip';

const ROOT = path.resolve(__dirname, '..', '..', '..');

test('front and helper lists are subsets of @system-service without the dangerous groups', () => {
  const service = new Set(SYSTEM_SERVICE);
  for (const s of [...FRONT_SYSCALLS, ...HELPER_SYSCALLS]) expect(service.has(s)).toBe(true);
  for (const bad of [
    'mount',
    'umount2',
    'reboot',
    'ptrace',
    'chroot',
    'pivot_root',
    'setuid',
    'setgroups',
    'setrlimit',
    'bpf',
    'init_module',
    'kexec_load',
    'swapon',
    'settimeofday',
  ]) {
    expect(FRONT_SYSCALLS).not.toContain(bad);
    expect(HELPER_SYSCALLS).not.toContain(bad);
  }
  for (const bad of ['add_key', 'keyctl', 'mlock', 'mlockall', 'execve', 'execveat', 'fork', 'vfork', 'process_vm_readv', 'process_vm_writev'])
    expect(HELPER_SYSCALLS).not.toContain(bad);
  // The front end's audit sink spawns `logger`: exec stays allowed there.
  expect(FRONT_SYSCALLS).toContain('execve');
});

test('what Node needs to run is in both lists', () => {
  for (const need of [
    'read',
    'write',
    'openat',
    'mmap',
    'mprotect',
    'futex',
    'epoll_wait',
    'epoll_pwait',
    'clone3',
    'rseq',
    'socket',
    'connect',
    'accept4',
    'fsync',
    'fdatasync',
    'rename',
    'getrandom',
    'madvise',
    'prctl',
  ]) {
    expect(FRONT_SYSCALLS).toContain(need);
    expect(HELPER_SYSCALLS).toContain(need);
  }
});

// The lists are generated from systemd-analyze's groups of one systemd release: compare on that release (Debian 12's,
// which CI has). Another release is not a failure of this code, so outside CI it skips naming the release it needs.
const COMMITTED = fs.readFileSync(path.join(ROOT, 'src', 'sandbox', 'syscall-sets.ts'), 'utf8');
const SOURCE = /source: (systemd \d+)/.exec(COMMITTED)![1];
const analyze = tool('systemd-analyze', 'systemd');
const sameSystemd = capability(`${SOURCE} (the committed lists' source; on another release regenerate with node src/sandbox/gen-syscall-sets.mjs)`, () => {
  if (!analyze.ok) return null; // the tool requirement says what is missing
  const here = execFileSync('systemd-analyze', ['--version'], { encoding: 'utf8' }).split('\n')[0];
  return here.startsWith(`${SOURCE} `) ? null : `this machine has ${here}`;
});

testIf([analyze, sameSystemd], 'matches `node src/sandbox/gen-syscall-sets.mjs` on this systemd (regenerate when systemd changes)', () => {
  // Any failure of the generator is a failure here, not a skip.
  const fresh = execFileSync(process.execPath, [path.join(ROOT, 'src', 'sandbox', 'gen-syscall-sets.mjs'), '--stdout'], { encoding: 'utf8' });
  expect(fresh).toContain(`source: ${SOURCE} `);
  expect(fresh.replace(/\(source: [^)]*\)\)?/, '')).toBe(COMMITTED.replace(/\(source: [^)]*\)\)?/, ''));
});
