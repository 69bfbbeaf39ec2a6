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

// Fills the filesystem holding `dir`: whole pages until ENOSPC, then single bytes into the last partial page (so that
// even a one-line append is refused). Returns what frees the space again.
export function fillDisk(dir: string): () => void {
  const files = [path.join(dir, 'filler'), path.join(dir, 'filler2')];
  for (const [file, chunk, most] of [
    [files[0], Buffer.alloc(4096, 0x78), Infinity],
    [files[1], Buffer.from('x'), 4096],
  ] as const) {
    const fd = fs.openSync(file, 'w');
    try {
      for (let i = 0; i < most; i++) fs.writeSync(fd, chunk);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
    } finally {
      fs.closeSync(fd);
    }
  }
  return () => {
    for (const f of files) fs.rmSync(f, { force: true });
  };
}

// A tmpfs of `size` (mount's syntax: 512k) on `dir`; unmountTmpfs takes it away again (already gone: fine).
export function mountTmpfs(dir: string, size: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir]);
}

export function unmountTmpfs(dir: string): void {
  try {
    execFileSync('umount', [dir]);
  } catch {
    // already gone
  }
}
