// SPDX-License-Identifier: Apache-2.0
// The real daemon (supervisor, helper, front end) confines both processes by default: it serves GetInfo, every thread
// is filtered; `--no-sandbox` filters nothing. Throughput is the bench's business, not a test's (shared machines are
// noisy): `npm run bench` row "1 sequential" runs the daemon sandboxed, as here.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { VirtgateClient } from '../../src/client';

const ROOT = path.resolve(__dirname, '..', '..');
const START = path.join(ROOT, 'build', 'src', 'cli', 'start.js');
const CALLS = 1000;

interface Run {
  proc: ChildProcess;
  out: () => string;
  home: string;
}

async function start(sandbox: boolean): Promise<Run> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-sbx-'));
  const args = [START, '--home', home, '--tls', '127.0.0.1:0', ...(sandbox ? [] : ['--no-sandbox'])];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.setEncoding('utf8').on('data', (t: string) => (out += t));
  proc.stderr!.setEncoding('utf8').on('data', (t: string) => (out += t));
  const t0 = Date.now();
  while (!/Press Ctrl-C to stop/.test(out)) {
    if (proc.exitCode !== null || Date.now() - t0 > 20000) throw new Error(`daemon did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { proc, out: () => out, home };
}

async function stop(r: Run): Promise<void> {
  if (r.proc.exitCode === null) await new Promise<void>((res) => (r.proc.once('exit', () => res()), r.proc.kill('SIGTERM')));
  fs.rmSync(r.home, { recursive: true, force: true });
}

// CALLS GetInfo calls, each answered with the seed VM's figures: the sandboxed workload works, call after call.
async function getInfoCalls(home: string): Promise<void> {
  const c = await VirtgateClient.connect(`test+unix:///default?socket=${path.join(home, 'run', 'virtgate-sock')}`);
  const dom = await c.lookupByName('test');
  const seen = new Set<string>();
  for (let i = 0; i < CALLS; i++) {
    const info = await c.getInfo(dom);
    seen.add(`${info.state} ${info.maxMem} ${info.memory} ${info.nrVirtCpu}`);
  }
  await c.close();
  expect([...seen]).toEqual(['1 8388608 2097152 2']); // running, 8 GiB max, 2 GiB, 2 vcpus: every answer
}

function seccompOfAllThreads(pid: number): string[] {
  return fs.readdirSync(`/proc/${pid}/task`).map((t) => /^Seccomp:\s+(\d)/m.exec(fs.readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8'))![1]);
}

test('sandboxed helper (kill, AF_UNIX only) and front end (EPERM) serve GetInfo; --no-sandbox filters nothing', async () => {
  if (!fs.existsSync(START)) throw new Error('build output missing: run `npm run build` first');
  const plain = await start(false);
  try {
    await getInfoCalls(plain.home);
    expect(plain.out()).not.toMatch(/sandbox \(/);
    const front = Number(
      execFileSync('pgrep', ['-f', `virtgated.js --home ${plain.home}`])
        .toString()
        .trim()
        .split('\n')[0],
    );
    expect(new Set(seccompOfAllThreads(front))).toEqual(new Set(['0']));
  } finally {
    await stop(plain);
  }

  const boxed = await start(true);
  try {
    const out = boxed.out();
    expect(out).toMatch(/sandbox \(helper\): privdrop skipped \(helper stays root\); seccomp \d+ syscalls allowed, default kill-process/);
    expect(out).toMatch(/sandbox \(front\): .*seccomp \d+ syscalls allowed, default errno\(EPERM\)/);
    await getInfoCalls(boxed.home);
    const helperPid = Number(
      execFileSync('pgrep', ['-f', `virtgate-helper.js --socket ${path.join(boxed.home, 'run', 'helper-sock')}`])
        .toString()
        .trim()
        .split('\n')[0],
    );
    const frontPid = Number(
      execFileSync('pgrep', ['-f', `virtgated.js --home ${boxed.home}`])
        .toString()
        .trim()
        .split('\n')[0],
    );
    for (const pid of [helperPid, frontPid]) expect(new Set(seccompOfAllThreads(pid))).toEqual(new Set(['2']));
    // Still alive after the run: nothing in the workload hit the helper's kill action.
    expect(boxed.proc.exitCode).toBeNull();
    expect(out).not.toMatch(/exited \(/);
    for (const l of out.split('\n').filter((x) => / sandbox \(/.test(x))) process.stdout.write(`${l}\n`);
  } finally {
    await stop(boxed);
  }
}, 90000);
