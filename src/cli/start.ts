// SPDX-License-Identifier: Apache-2.0
// `virtgate start` / `npm start`: runs the helper and the front end as two processes, restarts either if it dies.
// It imports neither side's code: the boundary between them is the helper socket, as in production under systemd. Each
// process has a spare (bin/virtgate-spare.js: Node started, code loaded, nothing run) that replaces it when it dies.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ClientFiles, ServerFiles, initCa, issueClient, issueServer } from '../pki/pki';
import { initAuditKeys } from '../audit/keys';
import { auditPaths } from './audit';

const BIN = path.resolve(__dirname, '..', '..', '..', 'bin');
// A spare process (bin/virtgate-spare.js preloaded) has its code loaded and waits for a byte on stdin to start: a
// crashed process is replaced by its spare without waiting for Node to start and load it again.
const SPARE = path.join(BIN, 'virtgate-spare.js');
const SPARE_AFTER_MS = 1000; // a new spare is made this long after a process is ready (not while it starts)
const DEV_TLS = '127.0.0.1:16514';
const USAGE = `usage: virtgate start [--home DIR] [--tcp HOST:PORT] [--tls HOST:PORT] [--front-user UID] [--no-sandbox]
  --home DIR        keep all state under DIR (default ./.virtgate)
  --tcp HOST:PORT   also listen on plain TCP (loopback only; development)
  --tls HOST:PORT   mutual TLS with the development PKI under HOME/pki (default ${DEV_TLS}, or a free port if that is taken)
  --front-user UID  when run as root: run the front end as this uid (the helper stays root)
  --no-sandbox      do not apply the processes' seccomp allowlists (debugging only)`;

interface Child {
  name: string;
  args: string[];
  uid?: number;
  gid?: number;
  proc: ChildProcess | null;
  ready: RegExp;
  backoff: RestartBackoff;
  output: string;
  standby: ChildProcess | null; // a spare: loaded, waiting to replace this process
}

// How long a crashed process waits before it is started again. The first crash after a stable run restarts at once
// (the front end is serving again within about half a second, and it reconnects to a new helper by itself); only a
// process that keeps dying soon after start (a crash loop) waits longer: 200 ms, 400 ms, ... up to 3 s. A process
// that stayed up for stableMs since it was ready starts over at no delay.
export class RestartBackoff {
  #crashes = 0; // since the last stable run
  #readyAt: number | null = null;
  constructor(
    readonly stableMs = 3000,
    readonly maxMs = 3000,
  ) {}

  ready(now = Date.now()): void {
    this.#readyAt = now;
  }

  // The process exited: the delay before the next start.
  exited(now = Date.now()): number {
    if (this.#readyAt !== null && now - this.#readyAt >= this.stableMs) this.#crashes = 0;
    this.#readyAt = null;
    const n = this.#crashes++;
    return n === 0 ? 0 : Math.min(100 * 2 ** n, this.maxMs);
  }
}

// First run: a development CA, a server certificate for localhost and an `admin` client whose directory is a libvirt pkipath.
function ensureDevPki(pki: string): void {
  const ca = path.join(pki, 'ca');
  const made: string[] = [];
  if (!fs.existsSync(path.join(ca, 'cacert.pem'))) made.push(initCa({ dir: ca, cn: 'virtgate development CA' }).certFile);
  const server = path.join(pki, 'server');
  if (!fs.existsSync(path.join(server, ServerFiles.cert)))
    made.push(issueServer({ dir: server, caDir: ca, hosts: ['localhost'], ips: ['127.0.0.1', '::1'] }).certFile);
  const admin = path.join(pki, 'admin');
  if (!fs.existsSync(path.join(admin, ClientFiles.cert))) made.push(issueClient({ dir: admin, caDir: ca, cn: 'admin' }).certFile);
  if (made.length) process.stdout.write(`virtgate: created development PKI: ${made.join(', ')}\n`);
}

function chownTree(p: string, uid: number): void {
  fs.chownSync(p, uid, uid);
  if (fs.statSync(p).isDirectory()) for (const n of fs.readdirSync(p)) chownTree(path.join(p, n), uid);
}

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        home: { type: 'string' },
        tcp: { type: 'string' },
        tls: { type: 'string' },
        'front-user': { type: 'string' },
        'no-sandbox': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    process.stderr.write(`virtgate start: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const home = path.resolve(values.home ?? '.virtgate');
  const run = path.join(home, 'run');
  fs.mkdirSync(run, { recursive: true, mode: 0o755 });
  fs.mkdirSync(path.join(home, 'lib'), { recursive: true, mode: 0o700 });
  // The audit log and its key live apart (auditPaths in ./audit); both belong to whoever runs the front end.
  for (const d of ['log', 'keys']) {
    fs.mkdirSync(path.join(home, d), { recursive: true, mode: 0o700 });
  }
  const helperSocket = path.join(run, 'helper-sock');
  const frontUid = values['front-user'] !== undefined ? Number(values['front-user']) : undefined;
  if (frontUid !== undefined && (!Number.isInteger(frontUid) || process.getuid?.() !== 0)) {
    process.stderr.write('virtgate start: --front-user needs a numeric uid and root\n');
    return 2;
  }
  const allowUid = String(frontUid ?? process.getuid?.() ?? 0);
  const pki = path.join(home, 'pki');
  ensureDevPki(pki);
  // Forward-secure audit keys are made here, by whoever starts the daemon (root in production), before the front end
  // runs: the verification key stays in HOME/lib, out of the front end's reach; only the sealing state is handed over.
  const ap = auditPaths(home);
  if (!fs.existsSync(ap.verifyKey) && !fs.existsSync(ap.keyFile) && !fs.existsSync(ap.log)) {
    initAuditKeys({ verifyKeyFile: ap.verifyKey, sealFile: ap.keyFile, owner: frontUid !== undefined ? { uid: frontUid, gid: frontUid } : undefined });
  }
  if (frontUid !== undefined) {
    // The front end reads its own key; the CA key stays root's.
    for (const p of [path.dirname(path.join(pki, 'server', ServerFiles.key)), path.join(pki, 'server', ServerFiles.key)]) fs.chownSync(p, frontUid, frontUid);
    for (const d of ['log', 'keys']) chownTree(path.join(home, d), frontUid);
  }

  const helper: Child = {
    name: 'helper',
    args: [
      path.join(BIN, 'virtgate-helper.js'),
      ...['--socket', helperSocket, '--state-dir', path.join(home, 'lib'), '--runtime-dir', path.join(run, 'helper'), '--allow-uid', allowUid],
      ...['--journal', auditPaths(home).journal],
      ...(values['no-sandbox'] ? ['--no-sandbox'] : []),
    ],
    proc: null,
    ready: /listening on/,
    backoff: new RestartBackoff(),
    output: '',
    standby: null,
  };
  const frontArgs = [path.join(BIN, 'virtgated.js'), '--home', home, '--helper-socket', helperSocket];
  if (values.tcp) frontArgs.push('--tcp', values.tcp);
  if (values['no-sandbox']) frontArgs.push('--no-sandbox'); // both processes run their seccomp allowlists otherwise
  // The default port may be taken (libvirtd, another virtgate): then the front end picks a free one and prints it.
  frontArgs.push('--tls', values.tls ?? DEV_TLS, ...(values.tls === undefined ? ['--tls-port-fallback'] : []));
  const front: Child = {
    name: 'front end',
    args: frontArgs,
    uid: frontUid,
    gid: frontUid,
    proc: null,
    ready: /listening on tls \S+:\d+/,
    backoff: new RestartBackoff(),
    output: '',
    standby: null,
  };

  let stopping = false;
  const loaded = (c: Child): ChildProcess => {
    const p = spawn(process.execPath, ['-r', SPARE, ...c.args], { stdio: ['pipe', 'pipe', 'inherit'], uid: c.uid, gid: c.gid });
    p.stdin!.on('error', () => undefined); // a spare that died before it was woken
    return p;
  };
  const spawnSpare = (c: Child): void => {
    if (stopping || c.standby) return;
    const p = loaded(c);
    p.on('exit', () => {
      if (c.standby === p) c.standby = null;
    });
    c.standby = p;
  };
  // The spare when one is loaded, else a new process (woken at once); the byte on stdin starts it.
  const start = (c: Child): ChildProcess => {
    const s = c.standby;
    c.standby = null;
    const p = s && s.exitCode === null && s.signalCode === null ? s : loaded(c);
    p.stdin!.end('1');
    return p;
  };
  const launch = (c: Child): Promise<void> =>
    new Promise((resolve, reject) => {
      const p = start(c);
      c.proc = p;
      let seen = false;
      p.stdout!.setEncoding('utf8');
      c.output = '';
      p.stdout!.on('data', (text: string) => {
        process.stdout.write(text);
        if (!seen) c.output += text;
        if (!seen && c.ready.test(c.output)) {
          seen = true;
          c.backoff.ready();
          setTimeout(() => spawnSpare(c), SPARE_AFTER_MS).unref();
          resolve();
        }
      });
      p.on('exit', (code, signal) => {
        c.proc = null;
        if (!seen) reject(new Error(`${c.name} exited during start-up (${signal ?? code})`));
        if (stopping) return;
        // A crashed process is restarted (at once unless it is crash-looping); the front end reconnects to a new helper
        // by itself, as soon as the helper's socket appears.
        const delay = c.backoff.exited();
        process.stderr.write(`virtgate: ${c.name} exited (${signal ?? code}); restarting ${delay ? `in ${delay} ms` : 'now'}\n`);
        setTimeout(() => {
          if (!stopping) launch(c).catch((e: Error) => process.stderr.write(`virtgate: ${e.message}\n`));
        }, delay);
      });
    });

  try {
    await launch(helper);
    await launch(front);
  } catch (e) {
    // A half-started daemon must not leave an orphaned helper behind (or a restart loop).
    stopping = true;
    for (const p of [front.proc, helper.proc, front.standby, helper.standby]) p?.kill('SIGTERM');
    throw e;
  }

  const rw = path.join(run, 'virtgate-sock');
  const ro = path.join(run, 'virtgate-sock-ro');
  const tlsPort = /listening on tls \S+:(\d+)/.exec(front.output)![1];
  process.stdout.write(
    [
      '',
      `virtgate is running (test driver), state under ${home}`,
      '  virsh -c ' + `'test+unix:///default?socket=${rw}' list --all`,
      '  virsh -r -c ' + `'test+unix:///default?socket=${ro}' list --all`,
      `  virtgate -c 'test+unix:///default?socket=${rw}' list --all`,
      ...(values.tcp ? [`  virsh -c 'test+tcp://${values.tcp}/default' list --all`] : []),
      `  virsh -c 'test+tls://localhost:${tlsPort}/default?pkipath=${path.join(pki, 'admin')}' list --all`,
      'Press Ctrl-C to stop.',
      '',
    ].join('\n'),
  );

  return new Promise<number>((resolve) => {
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      for (const c of [front, helper]) c.standby?.kill('SIGTERM'); // their stdin closing would end them too
      const procs = [front.proc, helper.proc].filter((p): p is ChildProcess => p !== null);
      let left = procs.length;
      if (left === 0) resolve(0);
      for (const p of procs) {
        p.once('exit', () => {
          if (--left === 0) resolve(0);
        });
        p.kill('SIGTERM');
      }
      setTimeout(() => procs.forEach((p) => p.kill('SIGKILL')), 5000).unref();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: Error) => {
      process.stderr.write(`virtgate start: ${e.message}\n`);
      process.exit(1);
    },
  );
}
