// SPDX-License-Identifier: Apache-2.0
// Full-disk tests mount a small tmpfs: the requirement (tried, not guessed), and the older yes/no form.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Requirement, capability, have } from './skip';

export function tmpfs(): Requirement {
  return capability('a tmpfs mount (root with CAP_SYS_ADMIN)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-mnt-probe-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
      execFileSync('umount', [dir]);
      return null;
    } catch (e) {
      return String((e as { stderr?: Buffer }).stderr ?? (e as Error).message).trim() || 'mount failed';
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

// True when this process may mount a tmpfs; else a SKIP line naming the test (a failure under CI=true).
export function canMountTmpfs(what: string): boolean {
  return have(tmpfs(), what);
}
