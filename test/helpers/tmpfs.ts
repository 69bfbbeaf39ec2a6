// SPDX-License-Identifier: Apache-2.0
// Full-disk tests mount a small tmpfs: true when this process may, else a printed SKIP naming the test and why.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function canMountTmpfs(what: string): boolean {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-mnt-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', dir], { stdio: 'ignore' });
    execFileSync('umount', [dir]);
    return true;
  } catch {
    process.stdout.write(`SKIP: ${what} cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)\n`);
    return false;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
