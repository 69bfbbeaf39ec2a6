// SPDX-License-Identifier: Apache-2.0
// Builds bench/c/getinfo.c against libvirt-dev (once per build dir) for interop tests and the bench.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { have, libvirtDev } from './skip';

export function buildCClient(root: string, outDir: string): string | null {
  const src = path.join(root, 'bench', 'c', 'getinfo.c');
  const bin = path.join(outDir, 'getinfo');
  if (!have(libvirtDev(), 'the C client (bench/c/getinfo.c)')) return null;
  if (fs.existsSync(bin) && fs.statSync(bin).mtimeMs > fs.statSync(src).mtimeMs) return bin;
  fs.mkdirSync(outDir, { recursive: true });
  const flags = execFileSync('pkg-config', ['--cflags', '--libs', 'libvirt']).toString().trim().split(/\s+/).filter(Boolean);
  execFileSync('cc', ['-O2', '-Wall', '-Werror', '-o', bin, src, ...flags, '-lpthread']);
  return bin;
}
