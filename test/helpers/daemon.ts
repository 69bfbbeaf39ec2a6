// SPDX-License-Identifier: Apache-2.0
// Starts the real daemon (supervisor + helper + front end processes) on a private home directory for a test.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type RunningLauncher, startLauncher } from './launcher';
import { have, tool } from './skip';

export const ROOT = path.resolve(__dirname, '..', '..');
export const START = path.join(ROOT, 'build', 'src', 'cli', 'start.js');

export interface RunningDaemon {
  home: string;
  sock: string;
  sockRo: string;
  helperSock: string;
  tcpPort: number | null;
  uri: string;
  uriRo: string;
  output(): string;
  helperPid(): number;
  waitFor(re: RegExp, timeoutMs?: number, from?: number): Promise<string>;
  stop(): Promise<void>;
}

export function requireBuild(): void {
  if (!fs.existsSync(START)) throw new Error(`build output missing (${START}): run \`npm run build\` first (npm test does)`);
}

// policy: written to HOME/etc/policy.csv before start (RBAC, issue 5); without it the built-in default (unix:root, x509:admin) applies.
export async function startDaemon(opts: { tcp?: boolean; home?: string; extraArgs?: string[]; policy?: string } = {}): Promise<RunningDaemon> {
  requireBuild();
  const home = opts.home ?? fs.mkdtempSync(path.join(os.tmpdir(), 'vg-test-'));
  if (opts.policy !== undefined) {
    fs.mkdirSync(path.join(home, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(home, 'etc', 'policy.csv'), opts.policy);
  }
  const args = [START, '--home', home, ...(opts.tcp ? ['--tcp', '127.0.0.1:0'] : []), ...(opts.extraArgs ?? [])];
  const proc: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.setEncoding('utf8').on('data', (t: string) => (out += t));
  proc.stderr!.setEncoding('utf8').on('data', (t: string) => (out += t));
  const waitFor = (re: RegExp, timeoutMs = 20000, from = 0): Promise<string> =>
    new Promise((resolve, reject) => {
      const started = Date.now();
      const poll = (): void => {
        const m = re.exec(out.slice(from));
        if (m) return resolve(m[0]);
        if (proc.exitCode !== null) return reject(new Error(`daemon exited (${proc.exitCode}):\n${out}`));
        if (Date.now() - started > timeoutMs) return reject(new Error(`timed out waiting for ${re}:\n${out}`));
        setTimeout(poll, 20);
      };
      poll();
    });
  await waitFor(/Press Ctrl-C to stop/);
  const tcp = /listening on tcp [^\s]+:(\d+)/.exec(out);
  const sock = path.join(home, 'run', 'virtgate-sock');
  return {
    home,
    sock,
    sockRo: `${sock}-ro`,
    helperSock: path.join(home, 'run', 'helper-sock'),
    tcpPort: tcp ? Number(tcp[1]) : null,
    uri: `test+unix:///default?socket=${sock}`,
    uriRo: `test+unix:///default?socket=${sock}-ro`,
    output: () => out,
    helperPid: () =>
      Number(
        execFileSync('pgrep', ['-f', `virtgate-helper.js --socket ${path.join(home, 'run', 'helper-sock')}`])
          .toString()
          .trim()
          .split('\n')[0],
      ),
    waitFor,
    stop: async () => {
      await new Promise<void>((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      });
      await reapLeftovers(home);
    },
  };
}

// Once the supervisor has exited, none of its processes (helper, front end, their spares) may outlive it: a survivor
// holds the test's pipes open (jest never exits) and is a supervisor bug. Spares end when their stdin closes, a moment
// after; anything still there after 5 s is killed and reported as this test's failure.
async function reapLeftovers(home: string): Promise<void> {
  const survivors = (): number[] => {
    try {
      return execFileSync('pgrep', ['-f', `${home}/`])
        .toString()
        .trim()
        .split('\n')
        .filter(Boolean)
        .map(Number)
        .filter((p) => p !== process.pid);
    } catch {
      return []; // pgrep: nothing matched
    }
  };
  for (let i = 0; i < 50 && survivors().length > 0; i++) await new Promise((r) => setTimeout(r, 100));
  const left = survivors();
  if (left.length === 0) return;
  const what = left.map((pid) => {
    try {
      return `${pid}: ${fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').slice(0, 160)}`;
    } catch {
      return String(pid);
    }
  });
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(`the daemon's supervisor exited but left processes behind (killed now):\n${what.join('\n')}`);
}

// A Debian package's tool: true, or a printed SKIP line (a failure under CI=true; see skip.ts).
export function haveTool(cmd: string, pkg: string): boolean {
  return have(tool(cmd, pkg), cmd);
}

// ---------- the QEMU driver (issue 13) ----------

export interface RunningQemuDaemon {
  home: string;
  sock: string;
  uri: string; // qemu+unix:///system?socket=...
  launcher: RunningLauncher;
  output(): string;
  helperPid(): number;
  waitFor(re: RegExp, timeoutMs?: number, from?: number): Promise<string>;
  killHelper9(): Promise<void>; // kill -9 of the helper; start it again with startHelper() (a supervisor's job)
  startHelper(): Promise<void>;
  killFront9(): Promise<void>; // kill -9 of the front end; start it again with startFront()
  startFront(): Promise<void>;
  serialLog(uuid: string): string;
  journal(): string;
  stop(): Promise<void>; // front end, helper, launcher, then every QEMU of this run's cgroup root
}

// The three processes of `--driver qemu` on a private home: the launcher (test/helpers/launcher.ts, its own cgroup
// root), the helper with the qemu driver, and the front end (unix socket; plain TCP on loopback when asked).
// `conf`: HOME/etc/virtgate.conf; with `otherUsers` the home is searchable by everyone, for clients run as local users.
export async function startQemuDaemon(
  opts: { policy?: string; tcp?: boolean; sandbox?: boolean; conf?: string; otherUsers?: boolean; launcherArgs?: string[] } = {},
): Promise<RunningQemuDaemon> {
  requireBuild();
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-qemu-'));
  for (const d of ['etc', 'run', 'lib']) fs.mkdirSync(path.join(home, d), { recursive: true, mode: 0o755 });
  if (opts.policy !== undefined) fs.writeFileSync(path.join(home, 'etc', 'policy.csv'), opts.policy);
  if (opts.conf !== undefined) fs.writeFileSync(path.join(home, 'etc', 'virtgate.conf'), opts.conf);
  if (opts.otherUsers) fs.chmodSync(home, 0o755);
  const launcher = await startLauncher({ dir: path.join(home, 'launcher'), extraArgs: opts.launcherArgs });
  fs.mkdirSync(path.join(home, 'launcher'), { recursive: true });
  const helperSock = path.join(home, 'run', 'helper-sock');
  let out = '';
  const procs: ChildProcess[] = [];
  const run = (args: string[]): ChildProcess => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout!.setEncoding('utf8').on('data', (t: string) => (out += t));
    p.stderr!.setEncoding('utf8').on('data', (t: string) => (out += t));
    procs.push(p);
    return p;
  };
  const waitFor = (re: RegExp, timeoutMs = 20000, from = 0): Promise<string> =>
    new Promise((resolve, reject) => {
      const started = Date.now();
      const poll = (): void => {
        const m = re.exec(out.slice(from));
        if (m) return resolve(m[0]);
        if (Date.now() - started > timeoutMs) return reject(new Error(`timed out waiting for ${re}:\n${out}`));
        setTimeout(poll, 10);
      };
      poll();
    });
  const journal = path.join(home, 'lib', 'helper-journal.log');
  let helper: ChildProcess | null = null;
  const startHelper = async (): Promise<void> => {
    const mark = out.length;
    helper = run([
      path.join(ROOT, 'bin', 'virtgate-helper.js'),
      ...['--socket', helperSock, '--state-dir', path.join(home, 'lib'), '--runtime-dir', path.join(home, 'run', 'helper')],
      ...['--journal', journal, '--driver', 'qemu', '--launcher-socket', launcher.socket, '--cgroup-root', launcher.cgroupRoot],
      ...(opts.sandbox === false ? ['--no-sandbox'] : []),
    ]);
    await waitFor(/virtgate-helper: listening on/, 20000, mark);
  };
  const ended = (p: ChildProcess | null, sig: NodeJS.Signals): Promise<void> =>
    new Promise((resolve) => {
      if (!p || p.exitCode !== null || p.signalCode !== null) return resolve();
      p.once('exit', () => resolve());
      p.kill(sig);
    });
  let front: ChildProcess | null = null;
  const stop = async (): Promise<void> => {
    await ended(front, 'SIGTERM');
    await ended(helper, 'SIGTERM');
    await launcher.purge();
    fs.rmSync(home, { recursive: true, force: true });
  };
  const startFront = async (): Promise<void> => {
    const mark = out.length;
    front = run([path.join(ROOT, 'bin', 'virtgated.js'), '--home', home, '--helper-socket', helperSock, ...(opts.tcp ? ['--tcp', '127.0.0.1:0'] : [])]);
    await waitFor(/listening on unix/, 20000, mark);
  };
  try {
    await startHelper();
    await startFront();
  } catch (e) {
    await stop();
    throw e;
  }
  const sock = path.join(home, 'run', 'virtgate-sock');
  return {
    home,
    sock,
    uri: `qemu+unix:///system?socket=${sock}`,
    launcher,
    output: () => out,
    helperPid: () => helper?.pid ?? -1,
    waitFor,
    killHelper9: () => ended(helper, 'SIGKILL'),
    startHelper,
    killFront9: () => ended(front, 'SIGKILL'),
    startFront,
    serialLog: (uuid) => path.join(home, 'lib', 'qemu', 'logs', `${uuid}.serial.log`),
    journal: () => (fs.existsSync(journal) ? fs.readFileSync(journal, 'utf8') : ''),
    stop,
  };
}
