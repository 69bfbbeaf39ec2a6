// SPDX-License-Identifier: Apache-2.0
// Socket activation and readiness without systemd as PID 1: systemd-socket-activate binds the rw, ro and TLS sockets and
// starts virtgated on the first connection (LISTEN_FDS/LISTEN_FDNAMES); a python3 datagram socket stands in for
// $NOTIFY_SOCKET and records READY=1 / STOPPING=1 of the front end and the helper.
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { initCa, issueClient, issueServer } from '../../src/pki/pki';
import { ROOT, requireBuild } from '../helpers/daemon';
import { freePort } from '../../bench/lib/proc';

const run = promisify(execFile);
const NODE = process.execPath;

// Needs three Debian tools; under CI a missing one is a failure, elsewhere a printed skip.
function haveAll(): boolean {
  const missing = [
    ['systemd-socket-activate', 'systemd'],
    ['virsh', 'libvirt-clients'],
    ['python3', 'python3'],
  ].filter(([cmd]) => spawnOk('sh', ['-c', `command -v ${cmd}`]) === false);
  if (!missing.length) return true;
  const why = `needs ${missing.map(([c, p]) => `${c} (Debian package ${p})`).join(', ')}`;
  if (process.env.CI === 'true') throw new Error(`socket-activation.test.ts: ${why}`);
  process.stdout.write(`SKIP socket-activation.test.ts: ${why}\n`);
  return false;
}
function spawnOk(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const HAVE = haveAll();
const maybe = HAVE ? describe : describe.skip;

interface Proc {
  proc: ChildProcess;
  out: () => string;
  waitFor: (re: RegExp, ms?: number) => Promise<RegExpExecArray>;
}
function track(proc: ChildProcess): Proc {
  let out = '';
  proc.stdout?.setEncoding('utf8').on('data', (t: string) => (out += t));
  proc.stderr?.setEncoding('utf8').on('data', (t: string) => (out += t));
  const waitFor = (re: RegExp, ms = 20000): Promise<RegExpExecArray> =>
    new Promise((resolve, reject) => {
      const t0 = Date.now();
      const poll = (): void => {
        const m = re.exec(out);
        if (m) return resolve(m);
        if (proc.exitCode !== null || proc.signalCode !== null) return reject(new Error(`exited (${proc.exitCode ?? proc.signalCode}) before ${re}:\n${out}`));
        if (Date.now() - t0 > ms) return reject(new Error(`timed out waiting for ${re}:\n${out}`));
        setTimeout(poll, 20);
      };
      poll();
    });
  return { proc, out: () => out, waitFor };
}

// A stand-in for systemd's notify socket: one JSON line per datagram, with the receive time. '@name' = abstract.
const LISTENER = `
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
a = sys.argv[1]
s.bind('\\0' + a[1:] if a.startswith('@') else a)
print(json.dumps({'bound': a}), flush=True)
while True:
    d = s.recv(65536)
    print(json.dumps({'t': time.time(), 'msg': d.decode()}), flush=True)
`;
function notifyListener(addr: string): Proc & { messages: () => string[] } {
  const p = track(spawn('python3', ['-c', LISTENER, addr], { stdio: ['ignore', 'pipe', 'pipe'] }));
  const messages = (): string[] =>
    p
      .out()
      .split('\n')
      .filter((l) => l.startsWith('{"t"'))
      .map((l) => (JSON.parse(l) as { msg: string }).msg);
  return { ...p, messages };
}

function stopped(p: Proc, sig: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  return new Promise((resolve) => {
    if (p.proc.exitCode !== null || p.proc.signalCode !== null) return resolve();
    p.proc.once('exit', () => resolve());
    p.proc.kill(sig);
  });
}

maybe('socket activation and sd_notify', () => {
  let home: string;
  let helper: Proc;
  let helperNotify: ReturnType<typeof notifyListener>;
  const procs: Proc[] = [];

  beforeAll(async () => {
    requireBuild();
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-sockact-'));
    const pki = path.join(home, 'pki');
    initCa({ dir: path.join(pki, 'ca'), cn: 'socket activation CA' });
    issueServer({ dir: path.join(pki, 'server'), caDir: path.join(pki, 'ca'), hosts: ['localhost'], ips: ['127.0.0.1'] });
    issueClient({ dir: path.join(pki, 'admin'), caDir: path.join(pki, 'ca'), cn: 'admin' });
    fs.mkdirSync(path.join(home, 'run'), { recursive: true });
    // The helper in the abstract namespace, as systemd may hand out '@...' addresses.
    helperNotify = notifyListener(`@vg-notify-helper-${process.pid}`);
    procs.push(helperNotify);
    await helperNotify.waitFor(/"bound"/);
    helper = track(
      spawn(
        NODE,
        [path.join(ROOT, 'bin', 'virtgate-helper.js'), '--socket', path.join(home, 'run', 'helper-sock'), '--state-dir', path.join(home, 'lib', 'helper')],
        { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NOTIFY_SOCKET: `@vg-notify-helper-${process.pid}` } },
      ),
    );
    procs.push(helper);
    await helper.waitFor(/listening on/);
  });

  afterAll(async () => {
    for (const p of procs.reverse()) await stopped(p, p === helper ? 'SIGTERM' : 'SIGKILL');
    fs.rmSync(home, { recursive: true, force: true });
  });

  test('the helper sends READY=1 (abstract NOTIFY_SOCKET) once its socket accepts, after the seccomp filter is on', async () => {
    await waitUntil(() => helperNotify.messages().some((m) => m.startsWith('READY=1')));
    const ready = helperNotify.messages().find((m) => m.startsWith('READY=1'))!;
    expect(ready).toMatch(/^READY=1\nSTATUS=serving .*helper-sock \(driver test\)$/);
    expect(helper.out()).toMatch(/seccomp \d+ syscalls allowed, default kill/);
    await new Promise<void>((resolve, reject) => net.connect(path.join(home, 'run', 'helper-sock'), resolve).on('error', reject));
  });

  test('systemd-socket-activate: rw, ro and TLS sockets passed by name; virsh connects before the front end exists', async () => {
    const port = await freePort();
    const rw = path.join(home, 'run', 'virtgate-sock');
    const ro = path.join(home, 'run', 'virtgate-sock-ro');
    const notify = notifyListener(path.join(home, 'run', 'notify-front'));
    procs.push(notify);
    await notify.waitFor(/"bound"/);
    // The TLS config is off: the inherited virtgate-tls socket alone turns TLS on (the .socket unit is the config).
    const act = track(
      spawn(
        'systemd-socket-activate',
        [
          '-l',
          rw,
          '-l',
          ro,
          '-l',
          `127.0.0.1:${port}`,
          '--fdname=virtgate-sock:virtgate-sock-ro:virtgate-tls',
          '-E',
          'NOTIFY_SOCKET',
          NODE,
          path.join(ROOT, 'bin', 'virtgated.js'),
          '--home',
          home,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NOTIFY_SOCKET: path.join(home, 'run', 'notify-front') } },
      ),
    );
    procs.push(act);
    await act.waitFor(/Listening on .*virtgate-sock-ro/);
    await waitUntil(() => fs.existsSync(ro));
    const before = [fs.statSync(rw), fs.statSync(ro)];
    expect(act.out()).not.toMatch(/virtgated:/); // nothing started yet: the sockets are the activator's
    expect(notify.messages()).toEqual([]);

    // The first connection starts the front end; virsh's request waits in the socket's backlog meanwhile.
    const list = await run('virsh', ['-c', `test+unix:///default?socket=${rw}`, 'list', '--all', '--name'], { timeout: 30000 });
    expect(list.stdout).toMatch(/^test$/m);
    await act.waitFor(/listening on tls 127\.0\.0\.1:\d+ \(fd 5 from systemd\)/);
    expect(act.out()).toMatch(new RegExp(`listening on unix ${rw} \\(fd 3 from systemd\\)`));
    expect(act.out()).toMatch(new RegExp(`listening on unix ${ro} \\(fd 4 from systemd\\) \\(read-only\\)`));
    expect(act.out()).not.toMatch(/is not the configured/);
    await waitUntil(() => notify.messages().some((m) => m.startsWith('READY=1')));
    expect(notify.messages()[0]).toBe('READY=1\nSTATUS=serving on unix, unix-ro, tls');

    // The ro socket is read-only by listener, not by path: a write is refused there.
    const roWrite = await run('virsh', ['-c', `test+unix:///default?socket=${ro}`, 'setmem', 'test', '1048576'], { timeout: 30000 }).catch((e) => e);
    expect(String(roWrite.stderr)).toMatch(/read only|read-only/i);
    const tls = await run('virsh', ['-c', `test+tls://127.0.0.1:${port}/default?pkipath=${path.join(home, 'pki', 'admin')}`, 'dominfo', 'test'], {
      timeout: 30000,
    });
    expect(tls.stdout).toMatch(/Name:\s+test/);

    // The front end neither unlinked, re-created nor chmod'ed the sockets systemd owns (same inode, same mode).
    const after = [fs.statSync(rw), fs.statSync(ro)];
    expect(after.map((s) => [s.ino, s.mode])).toEqual(before.map((s) => [s.ino, s.mode]));
    expect(after[0].mode & 0o777).not.toBe(0o660); // the configured unixSocketMode was not applied to an inherited socket

    const pid = act.proc.pid!;
    await stopped(act);
    await waitUntil(() => notify.messages().some((m) => m.startsWith('STOPPING=1')));
    expect(notify.messages()).toEqual(['READY=1\nSTATUS=serving on unix, unix-ro, tls', 'STOPPING=1\nSTATUS=stopping']);
    expect(act.out()).toMatch(/virtgated: effective config/); // it was virtgated, exec'ed in place (LISTEN_PID = this pid)
    expect(pid).toBe(act.proc.pid);
    expect(fs.statSync(rw).ino).toBe(before[0].ino); // still there after the stop: the socket unit's to remove
  });

  test('without socket activation: READY=1 only once every listener accepts', async () => {
    const home2 = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-notify-'));
    const notify = notifyListener(path.join(home2, 'notify'));
    procs.push(notify);
    await notify.waitFor(/"bound"/);
    const rw = path.join(home2, 'run', 'virtgate-sock');
    const fe = track(
      spawn(NODE, [path.join(ROOT, 'bin', 'virtgated.js'), '--home', home2, '--helper-socket', path.join(home, 'run', 'helper-sock'), '--tcp', '127.0.0.1:0'], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, NOTIFY_SOCKET: path.join(home2, 'notify'), LISTEN_FDS: '1', LISTEN_PID: '1', LISTEN_FDNAMES: 'virtgate-sock' },
      }),
    );
    procs.push(fe);
    // As soon as READY=1 is read, every listener must answer: nothing is still being bound.
    await waitUntil(() => notify.messages().some((m) => m.startsWith('READY=1')), 20000, 2);
    const port = Number(/listening on tcp 127\.0\.0\.1:(\d+)/.exec(fe.out())?.[1] ?? NaN);
    for (const target of [rw, `${rw}-ro`]) await new Promise<void>((resolve, reject) => net.connect(target, resolve).on('error', reject));
    expect(port).toBeGreaterThan(0);
    // LISTEN_PID named another process: the variables were ignored, the sockets bound here with the configured modes.
    expect(fs.statSync(rw).mode & 0o777).toBe(0o660);
    expect(fs.statSync(`${rw}-ro`).mode & 0o777).toBe(0o666);
    expect(notify.messages()[0]).toBe('READY=1\nSTATUS=serving on unix, unix-ro, tcp');
    await stopped(fe);
    await waitUntil(() => notify.messages().length === 2);
    expect(notify.messages()[1]).toBe('STOPPING=1\nSTATUS=stopping');
    fs.rmSync(home2, { recursive: true, force: true });
  });

  test('children do not inherit LISTEN_* or NOTIFY_SOCKET (the syslog copy spawns logger(1): a stand-in dumps its env)', async () => {
    const home3 = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-childenv-'));
    const bin = path.join(home3, 'bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, 'logger'), '#!/bin/sh\nenv > "$VG_ENV_DUMP.tmp" && mv "$VG_ENV_DUMP.tmp" "$VG_ENV_DUMP"\nexec cat >/dev/null\n', {
      mode: 0o755,
    });
    fs.writeFileSync(path.join(home3, 'virtgate.conf'), 'auditCopy = "syslog"\n');
    const notify = notifyListener(path.join(home3, 'notify'));
    procs.push(notify);
    await notify.waitFor(/"bound"/);
    const rw = path.join(home3, 'sock');
    const dump = path.join(home3, 'env.txt');
    const act = track(
      spawn(
        'systemd-socket-activate',
        [
          ...['-l', rw, '-l', `${rw}-ro`, '--fdname=virtgate-sock:virtgate-sock-ro'],
          ...['-E', `PATH=${bin}:/usr/bin:/bin`, '-E', `VG_ENV_DUMP=${dump}`, '-E', `NOTIFY_SOCKET=${path.join(home3, 'notify')}`],
          ...[NODE, path.join(ROOT, 'bin', 'virtgated.js'), '--home', home3, '--config', path.join(home3, 'virtgate.conf')],
          ...['--helper-socket', path.join(home, 'run', 'helper-sock')],
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      ),
    );
    procs.push(act);
    await act.waitFor(/Listening on .*sock-ro/);
    await run('virsh', ['-c', `test+unix:///default?socket=${rw}`, 'list', '--all'], { timeout: 30000 });
    await waitUntil(() => fs.existsSync(dump) && notify.messages().length > 0);
    const env = fs.readFileSync(dump, 'utf8');
    expect(env).toMatch(new RegExp(`^VG_ENV_DUMP=${dump}$`, 'm')); // the stand-in really ran as the front end's child
    expect(env).not.toMatch(/^(LISTEN_FDS|LISTEN_PID|LISTEN_FDNAMES|NOTIFY_SOCKET)=/m);
    await stopped(act);
    fs.rmSync(home3, { recursive: true, force: true });
  });

  test('a socket name that is none of the listeners is refused with the config error', async () => {
    const fe = track(
      spawn(
        'systemd-socket-activate',
        ['-l', path.join(home, 'run', 'odd-sock'), '--fdname=libvirt-sock', NODE, path.join(ROOT, 'bin', 'virtgated.js'), '--home', home],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      ),
    );
    procs.push(fe);
    await fe.waitFor(/Listening on/);
    net.connect(path.join(home, 'run', 'odd-sock')).on('error', () => undefined);
    const code = await new Promise<number | null>((resolve) => fe.proc.once('close', (c) => resolve(c)));
    expect(code).toBe(78); // EX_CONFIG: a restart cannot fix it
    expect(fe.out()).toMatch(
      /virtgated: invalid configuration: LISTEN_FDNAMES: socket 'libvirt-sock' is none of virtgate-sock, virtgate-sock-ro, virtgate-tls/,
    );
  });

  test('the helper sends STOPPING=1 on SIGTERM', async () => {
    await stopped(helper);
    await waitUntil(() => helperNotify.messages().some((m) => m.startsWith('STOPPING=1')));
    expect(helperNotify.messages().at(-1)).toBe('STOPPING=1\nSTATUS=stopping');
  });
});

async function waitUntil(ok: () => boolean, ms = 20000, stepMs = 20): Promise<void> {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
