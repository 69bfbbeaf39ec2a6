// SPDX-License-Identifier: Apache-2.0
// The one way a test says what it needs (root, a Debian package, a capability). A missing requirement skips visibly
// outside CI (a `SKIP:` line naming the test and what to install or which privilege), and FAILS under CI=true:
// .ci/run runs as root and installs every package, so there a missing requirement is a broken CI, not a reason to skip.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface Requirement {
  ok: boolean;
  need: string; // what is missing, and how to get it: "root", "virsh (Debian package libvirt-clients)"
}

export const inCi = (): boolean => process.env.CI === 'true';

export function root(why = ''): Requirement {
  return { ok: process.getuid?.() === 0, need: `root${why ? ` (${why})` : ''}` };
}

export function tool(cmd: string, pkg: string): Requirement {
  let ok = true;
  try {
    execFileSync('sh', ['-c', 'command -v "$0"', cmd], { stdio: 'ignore' });
  } catch {
    ok = false;
  }
  return { ok, need: `${cmd} (Debian package ${pkg})` };
}

export function file(p: string, pkg: string): Requirement {
  return { ok: fs.existsSync(p), need: `${p} (Debian package ${pkg})` };
}

// A capability found by trying it: probe returns null when it works, else why not.
export function capability(need: string, probe: () => string | null): Requirement {
  let why: string | null;
  try {
    why = probe();
  } catch (e) {
    why = (e as Error).message;
  }
  return { ok: why === null, need: why === null ? need : `${need}: ${why.trim().replace(/\s*\n\s*/g, '; ')}` };
}

export function missing(reqs: Requirement | readonly Requirement[]): string[] {
  return ([] as Requirement[])
    .concat(reqs)
    .filter((r) => !r.ok)
    .map((r) => r.need);
}

// Which test file asks: the SKIP line names it.
function here(): string {
  const file = (expect.getState() as { testPath?: string }).testPath;
  return file ? path.relative(path.resolve(__dirname, '..', '..'), file) : 'a test';
}

const message = (name: string, miss: string[]): string => `${here()} › ${name}: needs ${miss.join(', ')}`;

// The SKIP line outside CI; under CI, the error a failing test throws.
function announce(name: string, miss: string[]): void {
  if (!inCi()) process.stdout.write(`SKIP: ${message(name, miss)} (.ci/run provides it; under CI=true this fails)\n`);
}

function ciFailure(name: string, miss: string[]): () => never {
  return () => {
    throw new Error(`CI=true and a requirement is missing: ${message(name, miss)}`);
  };
}

// describe(name, fn) when every requirement holds; else a visible skip, or under CI one failing test in its place.
export function describeIf(reqs: Requirement | readonly Requirement[], name: string, fn: () => void): void {
  const miss = missing(reqs);
  if (miss.length === 0) return describe(name, fn);
  announce(name, miss);
  if (inCi()) describe(name, () => test('has what it needs', ciFailure(name, miss)));
  else describe.skip(name, fn);
}

export function testIf(reqs: Requirement | readonly Requirement[], name: string, fn: jest.ProvidesCallback, timeout?: number): void {
  const miss = missing(reqs);
  if (miss.length === 0) return test(name, fn, timeout);
  announce(name, miss);
  if (inCi()) test(name, ciFailure(name, miss));
  else test.skip(name, fn, timeout);
}

// For helpers that answer yes/no at module load (older call sites): prints the SKIP line, or throws under CI.
export function have(reqs: Requirement | readonly Requirement[], name: string): boolean {
  const miss = missing(reqs);
  if (miss.length === 0) return true;
  if (inCi()) ciFailure(name, miss)();
  announce(name, miss);
  return false;
}

// Requirements several tests share.
export const virshTool = (): Requirement => tool('virsh', 'libvirt-clients');
export const pyLibvirt = (): Requirement => file('/usr/lib/python3/dist-packages/libvirt.py', 'python3-libvirt');
export const libvirtDev = (): Requirement[] => [file('/usr/include/libvirt/libvirt.h', 'libvirt-dev'), tool('pkg-config', 'pkg-config'), tool('cc', 'gcc')];
export const saslScram = (): Requirement => file('/usr/lib/x86_64-linux-gnu/sasl2/libscram.so', 'libsasl2-modules');
