// SPDX-License-Identifier: Apache-2.0
// Real local users for tests that drive the daemon as someone else (peer-uid identities): create them, run as them.
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { type Requirement, have, missing, root, tool } from './skip';

const run = promisify(execFile);

export interface Result {
  rc: number;
  out: string;
  err: string;
}

// What running clients as other local users takes: root (to create and become them) and setpriv. When both hold,
// the users are created (once; kept for later runs).
export function localUsers(users: readonly string[], why = 'runs clients as other local users'): Requirement[] {
  const reqs = [root(why), tool('setpriv', 'util-linux')];
  if (missing(reqs).length === 0) {
    for (const u of users) {
      try {
        execFileSync('id', [u], { stdio: 'ignore' });
      } catch {
        execFileSync('useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', u]);
      }
    }
  }
  return reqs;
}

// The older yes/no form: true, or a SKIP line naming the test (a failure under CI=true).
export function ensureLocalUsers(testName: string, users: readonly string[], why = 'runs clients as other local users'): boolean {
  return have(localUsers(users, why), testName);
}

export const ids = (u: string): { uid: number; gid: number } => ({
  uid: Number(execFileSync('id', ['-u', u]).toString().trim()),
  gid: Number(execFileSync('id', ['-g', u]).toString().trim()),
});

// The command prefix that runs the rest as `user` (nothing for root); HOME under `home`, or /tmp.
export function asUser(user: string, home?: string): string[] {
  if (user === 'root') return [];
  const { uid, gid } = ids(user);
  return ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', 'env', `HOME=${home ? path.join(home, 'u', user) : '/tmp'}`];
}

// Each user's HOME for asUser(user, home): HOME/u/<user>, owned by that user.
export function makeUserHomes(home: string, users: readonly string[]): void {
  for (const u of users) {
    const dir = path.join(home, 'u', u);
    fs.mkdirSync(dir, { recursive: true });
    const { uid, gid } = ids(u);
    fs.chownSync(dir, uid, gid);
  }
}

// Runs argv and returns its exit code and output, whatever the exit code.
export async function exec(argv: string[], timeoutMs = 30000): Promise<Result> {
  try {
    const { stdout, stderr } = await run(argv[0], argv.slice(1), { timeout: timeoutMs });
    return { rc: 0, out: stdout, err: stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { rc: typeof x.code === 'number' ? x.code : -1, out: x.stdout, err: x.stderr };
  }
}

// libvirt's own test:///default, the reference output. Its virsh sometimes never exits (libvirt 9.0: about 1 run in 5
// of the managedsave script hangs after its last command, with all output written), so a run killed by the timeout
// is repeated, at most 3 times in all; our daemon's runs get no such second chance.
export async function referenceVirsh(...args: string[]): Promise<Result> {
  let r: Result = { rc: -1, out: '', err: '' };
  for (let attempt = 0; attempt < 3 && r.rc === -1; attempt++) r = await exec(['virsh', '-c', 'test:///default', ...args], 15000);
  return r;
}
