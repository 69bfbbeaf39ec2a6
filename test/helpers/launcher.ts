// SPDX-License-Identifier: Apache-2.0
// Starts the real virtgate-launcher (build/, as root) on a private socket and cgroup subtree for a test, and removes
// every process and cgroup it left behind (purge) so parallel test runs never collide.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Requirement, file, root } from './skip';

export const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'virtgate-launcher.js');
const MAIN = path.join(ROOT, 'build', 'src', 'launcher', 'main.js');
export const QEMU = '/usr/bin/qemu-system-x86_64';
export const SANDBOX = 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny';
const CONTROLLERS = ['cpu', 'cpuacct', 'memory', 'pids'];

// What a launcher test needs: root, QEMU, bubblewrap, setpriv, and the build.
export function launcherRequirements(): Requirement[] {
  return [
    root('the launcher creates cgroups and runs QEMU under per-VM uids'),
    file(QEMU, 'qemu-system-x86'),
    file('/usr/bin/bwrap', 'bubblewrap'),
    file('/usr/bin/setpriv', 'util-linux'),
    file(MAIN, 'none: run `npm run build` first'),
  ];
}

export interface RunningLauncher {
  dir: string;
  socket: string;
  logDir: string;
  cgroupRoot: string;
  pid: number;
  output(): string; // everything this launcher (and the ones restart() started) printed
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>; // SIGTERM; running VMs keep running
  kill9(): Promise<void>;
  restart(): Promise<void>; // a new launcher on the same socket and cgroup root (after stop or kill9)
  purge(): Promise<void>; // SIGKILL every process in the cgroup subtree, remove it, stop the launcher
}

export interface LauncherTestOptions {
  dir?: string; // default: a new mkdtemp directory
  cgroupRoot?: string; // default: a unique name per call
  allowUid?: number[]; // default [0]
  extraArgs?: string[];
}

let seq = 0;

export async function startLauncher(o: LauncherTestOptions = {}): Promise<RunningLauncher> {
  if (!fs.existsSync(MAIN)) throw new Error(`build output missing (${MAIN}): run \`npm run build\` first`);
  const dir = o.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'vg-launcher-'));
  const cgroupRoot = o.cgroupRoot ?? `vgtest-${process.pid}-${Date.now().toString(36)}-${seq++}`;
  const socket = path.join(dir, 'launcher.sock');
  const logDir = path.join(dir, 'launcher-logs');
  const args = [
    BIN,
    '--socket',
    socket,
    '--cgroup-root',
    cgroupRoot,
    '--log-dir',
    logDir,
    ...(o.allowUid ?? [0]).flatMap((u) => ['--allow-uid', String(u)]),
    ...(o.extraArgs ?? []),
  ];
  let out = '';
  let proc: ChildProcess;
  const launch = async (): Promise<void> => {
    const mark = out.length;
    proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.setEncoding('utf8').on('data', (t: string) => (out += t));
    proc.stderr!.setEncoding('utf8').on('data', (t: string) => (out += t));
    await waitFor(/listening on /, 20000, mark);
  };
  const waitFor = (re: RegExp, timeoutMs = 20000, from = 0): Promise<string> =>
    new Promise((resolve, reject) => {
      const started = Date.now();
      const poll = (): void => {
        const m = re.exec(out.slice(from));
        if (m) return resolve(m[0]);
        if (proc.exitCode !== null || proc.signalCode !== null) return reject(new Error(`launcher exited (${proc.exitCode ?? proc.signalCode}):\n${out}`));
        if (Date.now() - started > timeoutMs) return reject(new Error(`timed out waiting for ${re}:\n${out}`));
        setTimeout(poll, 10);
      };
      poll();
    });
  const ended = (sig: NodeJS.Signals): Promise<void> =>
    new Promise((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
      proc.once('exit', () => resolve());
      proc.kill(sig);
    });
  await launch();
  const self: RunningLauncher = {
    dir,
    socket,
    logDir,
    cgroupRoot,
    get pid() {
      return proc.pid!;
    },
    output: () => out,
    waitFor: (re, t) => waitFor(re, t),
    stop: () => ended('SIGTERM'),
    kill9: () => ended('SIGKILL'),
    restart: launch,
    purge: async () => {
      await ended('SIGTERM');
      await purgeCgroupRoot(cgroupRoot);
    },
  };
  return self;
}

// Every process under <ctrl>/<root> gets SIGKILL; then the directories go, deepest first.
export async function purgeCgroupRoot(cgroupRoot: string, mount = '/sys/fs/cgroup'): Promise<void> {
  const tops = CONTROLLERS.map((c) => path.join(mount, c, cgroupRoot)).filter((d) => fs.existsSync(d));
  const dirs = (d: string): string[] => [
    ...fs
      .readdirSync(d, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .flatMap((e) => dirs(path.join(d, e.name))),
    d,
  ];
  for (let attempt = 0; attempt < 100; attempt++) {
    let left = 0;
    for (const t of tops) {
      for (const d of dirs(t)) {
        for (const p of fs.readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
          left++;
          try {
            process.kill(Number(p), 'SIGKILL');
          } catch {
            // gone
          }
        }
      }
    }
    if (left === 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  for (const t of tops) {
    for (const d of dirs(t)) {
      for (let i = 0; i < 50; i++) {
        try {
          fs.rmdirSync(d);
          break;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') break;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    }
  }
}
