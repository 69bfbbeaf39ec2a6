// SPDX-License-Identifier: Apache-2.0
// Process helpers for the bench: cleanup on exit/Ctrl-C, RSS from /proc, pgrep, fd limit, free ports, the C client.
import { type ChildProcess, execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

// The repository root, from build/bench/lib (npm run bench) or bench/lib (ts-jest). By package-lock.json: build/ has a
// package.json of its own (tsc copies it for src/common/version.ts).
export const ROOT = ((): string => {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package-lock.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
})();

// Everything the bench starts registers a stop function here; run() calls them all, also on SIGINT/SIGTERM.
const cleanups = new Set<() => Promise<void>>();
export function onCleanup(fn: () => Promise<void>): () => void {
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}
// A second caller (Ctrl-C during the normal finally) waits for the same run instead of returning early.
let cleaning: Promise<void> | null = null;
export function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    for (const fn of [...cleanups].reverse()) {
      cleanups.delete(fn);
      await fn().catch(() => undefined);
    }
    cleaning = null;
  })();
  return cleaning;
}

// SIGTERM one child we started and wait for it (SIGKILL after `graceMs`).
export function stopChild(proc: ChildProcess, graceMs = 5000): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    const kill = setTimeout(() => proc.kill('SIGKILL'), graceMs);
    proc.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    proc.kill('SIGTERM');
  });
}

export function rssKiB(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

export function pgrep(pattern: string): number | null {
  try {
    return Number(execFileSync('pgrep', ['-f', pattern]).toString().trim().split('\n')[0]);
  } catch {
    return null;
  }
}

// The soft RLIMIT_NOFILE our children inherit (node has no getrlimit).
export function fdLimit(): number {
  const out = execFileSync('sh', ['-c', 'ulimit -n']).toString().trim();
  return out === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(out);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface CResult {
  calls: number;
  seconds: number;
  guests: number;
  threads: number;
  failures: number;
}

// Builds bench/c/getinfo.c against libvirt-dev into build/bench/c; returns the binary or why it cannot.
export function buildCClient(): { bin: string } | { why: string } {
  const src = path.join(ROOT, 'bench', 'c', 'getinfo.c');
  const bin = path.join(ROOT, 'build', 'bench', 'c', 'getinfo');
  if (!fs.existsSync('/usr/include/libvirt/libvirt.h')) return { why: 'libvirt headers not found (install Debian package libvirt-dev)' };
  try {
    if (fs.existsSync(bin) && fs.statSync(bin).mtimeMs > fs.statSync(src).mtimeMs) return { bin };
    fs.mkdirSync(path.dirname(bin), { recursive: true });
    const flags = execFileSync('pkg-config', ['--cflags', '--libs', 'libvirt']).toString().trim().split(/\s+/).filter(Boolean);
    execFileSync('cc', ['-O2', '-Wall', '-Werror', '-o', bin, src, ...flags, '-lpthread'], { stdio: ['ignore', 'ignore', 'pipe'] });
    return { bin };
  } catch (e) {
    return { why: `cannot build bench/c/getinfo.c: ${(e as Error).message.split('\n')[0]}` };
  }
}

// Builds bench/c/echo.c (the C floor) into build/bench/c, with gnutls for its TLS listener when the headers are there.
export function buildCFloor(): { bin: string; tls: boolean } | { why: string } {
  const src = path.join(ROOT, 'bench', 'c', 'echo.c');
  const bin = path.join(ROOT, 'build', 'bench', 'c', 'echo');
  const tlsBin = `${bin}-tls`;
  try {
    for (const [out, tls] of [
      [tlsBin, true],
      [bin, false],
    ] as const) {
      if (fs.existsSync(out) && fs.statSync(out).mtimeMs > fs.statSync(src).mtimeMs) return { bin: out, tls };
    }
    fs.mkdirSync(path.dirname(bin), { recursive: true });
    try {
      const flags = execFileSync('pkg-config', ['--cflags', '--libs', 'gnutls'], { stdio: ['ignore', 'pipe', 'ignore'] })
        .toString()
        .trim()
        .split(/\s+/)
        .filter(Boolean);
      execFileSync('cc', ['-O2', '-Wall', '-Werror', '-DWITH_GNUTLS', '-o', tlsBin, src, ...flags], { stdio: ['ignore', 'ignore', 'pipe'] });
      return { bin: tlsBin, tls: true };
    } catch {
      execFileSync('cc', ['-O2', '-Wall', '-Werror', '-o', bin, src], { stdio: ['ignore', 'ignore', 'pipe'] });
      return { bin, tls: false };
    }
  } catch (e) {
    return { why: `cannot build bench/c/echo.c: ${(e as Error).message.split('\n')[0]}` };
  }
}

// One run of the C client; async so Ctrl-C is still handled while it runs.
// statsDomains: the bulk-stats mode (that many transient guests, then virConnectGetAllDomainStats per iteration).
export function runCClient(bin: string, uri: string, iterations: number, threads: number, statsDomains?: number): Promise<CResult> {
  return new Promise((resolve, reject) => {
    const args = [uri, String(iterations), String(threads), ...(statsDomains ? [String(statsDomains)] : [])];
    const child = execFile(bin, args, { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      forget();
      const line = stdout.trim().split('\n').pop() ?? '';
      if (line.startsWith('{')) return resolve(JSON.parse(line) as CResult);
      reject(new Error(`getinfo ${uri}: ${stderr.trim() || err?.message || 'no output'}`));
    });
    const forget = onCleanup(async () => {
      child.kill('SIGKILL');
    });
  });
}
