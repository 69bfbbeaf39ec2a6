// SPDX-License-Identifier: Apache-2.0
// Test-only: run the built helper (node bin/virtgate-helper.js) on a temp dir and wait for its ready line.
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../../..');
export const HELPER_BIN = path.join(ROOT, 'bin', 'virtgate-helper.js');

export interface Helper {
  proc: ChildProcess;
  dir: string;
  socket: string;
  stderr: () => string;
  exited: Promise<number | null>;
}

export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'vg-helper-'));
}

export function startHelper(dir: string, extra: string[] = []): Promise<Helper> {
  if (!fs.existsSync(path.join(ROOT, 'build', 'src', 'privileged', 'main.js'))) throw new Error('build the helper first: npx tsc -p tsconfig.build.json');
  const socket = path.join(dir, 'helper.sock');
  const proc = spawn(process.execPath, [HELPER_BIN, '--socket', socket, '--state-dir', path.join(dir, 'state'), ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  let out = '';
  proc.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`helper did not start: ${err}`)), 10_000);
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) {
        clearTimeout(timer);
        resolve({ proc, dir, socket, stderr: () => err, exited });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`helper exited with ${code}: ${err}`));
    });
  });
}

export async function stopHelper(h: Helper, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (h.proc.exitCode === null && h.proc.signalCode === null) h.proc.kill(signal);
  return h.exited;
}
