// SPDX-License-Identifier: Apache-2.0
// `virtgate start` / `npm start`: runs the helper and the front end as two processes, restarts either if it dies.
// It imports neither side's code: the boundary between them is the helper socket, as in production under systemd. Each
// process has a spare (bin/virtgate-spare.js: Node started, code loaded, nothing run) that replaces it when it dies.
// Run as root, only the helper keeps root: the network-facing front end runs as the `virtgate` system user, or
// nobody/nogroup when there is none (frontUser), with its own files and nothing of the helper's (prepareHome).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { EXIT_CONFIG } from '../common/exit-codes';
import { ClientFiles, ServerFiles, initCa, issueClient, issueServer } from '../pki/pki';
import { initAuditKeys } from '../audit/keys';
import { BUILTIN_ADMINS, unixIdentity } from '../policy/model';
import { auditPaths } from './audit';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const BIN = path.join(ROOT, 'bin');
// A spare process (bin/virtgate-spare.js preloaded) has its code loaded and waits for a byte on stdin to start: a
// crashed process is replaced by its spare without waiting for Node to start and load it again.
const SPARE = path.join(BIN, 'virtgate-spare.js');
const SPARE_AFTER_MS = 1000; // a new spare is made this long after a process is ready (not while it starts)
const DEV_TLS = '127.0.0.1:16514';
const LOCK = 'start.pid'; // HOME/start.pid: the supervisor that owns HOME (pid and start time)
const EMULATOR = '/usr/bin/qemu-system-x86_64';
const USAGE = `usage: virtgate start [--home DIR] [--tcp HOST:PORT] [--tls HOST:PORT] [--front-user USER] [--driver test|qemu] [--no-sandbox]
  --home DIR         keep all state under DIR (default ./.virtgate)
  --tcp HOST:PORT    also listen on plain TCP (loopback only; development)
  --tls HOST:PORT    mutual TLS with the development PKI under HOME/pki (default ${DEV_TLS}, or a free port if that is taken)
  --front-user USER  when run as root: run the front end as this user (name or uid; default the 'virtgate' system
                     user, else nobody); 'root' keeps it root, with a warning. The helper always runs as root.
  --driver NAME      test (default: the simulated hypervisor) or qemu (real VMs: also runs virtgate-launcher, as root,
                     which starts each QEMU jailed; needs root, qemu-system-x86, bubblewrap)
  --no-sandbox       do not apply the processes' seccomp allowlists (debugging only)
Run as another user, both processes run as that user, and that user is a host admin of this daemon.`;

export class StartError extends Error {}

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

// The account the front end runs as, and why (for the banner).
export interface FrontUser {
  uid: number;
  gid: number;
  name: string;
  why: string;
}

// getent, so NSS users (LDAP, systemd-sysusers) count as they do for id(1); null when there is no such entry.
function getent(db: 'passwd' | 'group', key: string): string[] | null {
  const r = spawnSync('getent', [db, key], { encoding: 'utf8' });
  if (r.status !== 0 || !r.stdout) return null;
  return r.stdout.split('\n')[0].split(':');
}

// Run as root: the `virtgate` system user, else nobody/nogroup, or --front-user. Run as anyone else: that user (the
// front end cannot be someone else without root).
export function frontUser(spec: string | undefined, me = process.getuid?.() ?? 0, myGid = process.getgid?.() ?? 0): FrontUser {
  const byName = (s: string): string[] | null => (/^[0-9]+$/.test(s) ? getent('passwd', String(Number(s))) : getent('passwd', s));
  if (me !== 0) {
    const pw = spec === undefined ? null : byName(spec);
    if (spec !== undefined && Number(pw?.[2] ?? spec) !== me)
      throw new StartError(`--front-user ${spec}: only root can run the front end as another user (you are uid ${me}; it runs as you)`);
    return { uid: me, gid: myGid, name: getent('passwd', String(me))?.[0] ?? String(me), why: 'the user who started it' };
  }
  if (spec === undefined) {
    const vg = getent('passwd', 'virtgate');
    if (vg) {
      if (Number(vg[2]) === 0 || Number(vg[3]) === 0) throw new StartError("the 'virtgate' user has uid or gid 0: it must be an unprivileged system user");
      return { uid: Number(vg[2]), gid: Number(vg[3]), name: 'virtgate', why: "the 'virtgate' system user" };
    }
    const nobody = getent('passwd', 'nobody');
    const nogroup = getent('group', 'nogroup');
    return {
      uid: nobody ? Number(nobody[2]) : 65534,
      gid: nogroup ? Number(nogroup[2]) : nobody ? Number(nobody[3]) : 65534,
      name: 'nobody',
      why: "nobody/nogroup: there is no 'virtgate' system user (useradd --system --no-create-home --shell /usr/sbin/nologin virtgate makes one)",
    };
  }
  const pw = byName(spec);
  if (!pw && !/^[0-9]+$/.test(spec)) throw new StartError(`--front-user ${spec}: no such user`);
  const uid = pw ? Number(pw[2]) : Number(spec);
  if (!Number.isInteger(uid) || uid > 0xfffffffe) throw new StartError(`--front-user ${spec}: not a valid uid`);
  // A bare uid with no passwd entry: the same number as the group, as 65534/65534.
  return { uid, gid: pw ? Number(pw[3]) : uid, name: pw ? pw[0] : String(uid), why: '--front-user' };
}

// Everything the front end must reach as its own user: HOME (or the nearest existing directory above it) and its code.
// Checked by a child running as that user, so ACLs, mounts and NSS groups count; the message names the first directory
// on the way that stops it. Nothing is changed: directories above HOME are not ours to open up.
function checkReachable(u: FrontUser, home: string): void {
  let existing = home;
  while (!fs.existsSync(existing)) existing = path.dirname(existing);
  const code = [path.join(BIN, 'virtgated.js'), SPARE, path.join(ROOT, 'build', 'src', 'unprivileged', 'main.js')];
  const deps = path.dirname(require.resolve('casbin/package.json'));
  const targets: [string, 'x' | 'r'][] = [[existing, 'x'], ...code.map((c): [string, 'r'] => [c, 'r']), [deps, 'x']];
  const probe = `const fs = require('fs'), path = require('path'), out = [];
for (const [p, need] of JSON.parse(process.argv[1])) {
  const steps = []; for (let d = path.dirname(p); ; d = path.dirname(d)) { steps.unshift(d); if (d === '/') break; }
  const at = steps.find((d) => { try { fs.accessSync(d, fs.constants.X_OK); return false; } catch { return true; } });
  if (at) { out.push({ p, at }); continue; }
  try { fs.accessSync(p, need === 'x' ? fs.constants.X_OK : fs.constants.R_OK); } catch { out.push({ p, at: p }); }
}
console.log(JSON.stringify(out));`;
  const r = spawnSync(process.execPath, ['-e', probe, JSON.stringify(targets)], { uid: u.uid, gid: u.gid, cwd: '/', encoding: 'utf8', timeout: 30000 });
  const who = `uid ${u.uid} (${u.name})`;
  if (r.status !== 0 || r.error) throw new StartError(`cannot run ${process.execPath} as ${who}: ${r.error?.message ?? r.stderr.trim()}`);
  const failed = JSON.parse(r.stdout) as { p: string; at: string }[];
  const mode = (d: string): string => {
    try {
      const st = fs.statSync(d);
      return `mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}, owner ${st.uid}:${st.gid}`;
    } catch {
      return 'not found';
    }
  };
  const fix = '--front-user USER (a user who can reach it)';
  for (const { p, at } of failed) {
    if (p === existing) {
      if (at === home && fs.statSync(home).uid === process.getuid?.()) continue; // HOME itself: ours to open (prepareHome)
      throw new StartError(
        `the front end runs as ${who} and cannot enter ${at} (${mode(at)}) on the way to HOME ${home}. ` +
          `Use --home DIR somewhere it can reach (e.g. --home /var/tmp/virtgate), or ${fix}; virtgate start does not change directories above HOME.`,
      );
    }
    throw new StartError(
      `the front end runs as ${who} and cannot read its code: ${at} (${mode(at)}) stops it from reaching ${p}. ` +
        `Put the checkout (with build/ and node_modules) where that user can read it, or use ${fix}.`,
    );
  }
}

// Field 22 of /proc/PID/stat (start time in clock ticks): a pid and its start time name one process, never a reused pid.
function startTime(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function alive(pid: number, started: string | undefined): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const now = startTime(pid);
  return started === undefined || now === null || now === started;
}

// The live supervisor recorded in HOME/start.pid, if any (read only).
export function lockHolder(home: string): number | null {
  let text: string;
  try {
    text = fs.readFileSync(path.join(home, LOCK), 'utf8');
  } catch {
    return null;
  }
  const [pid, started] = text.trim().split(/\s+/);
  return /^[1-9][0-9]*$/.test(pid) && alive(Number(pid), started || undefined) ? Number(pid) : null;
}

// One supervisor per HOME: HOME/start.pid, created exclusively, holds "PID STARTTIME". A file whose process is gone (or
// whose pid now belongs to another process) is stale and replaced. Returns the pid of a live holder, or the release.
export function takeLock(home: string): { heldBy: number } | { release: () => void } {
  const file = path.join(home, LOCK);
  const mine = `${process.pid} ${startTime(process.pid) ?? ''}\n`;
  for (let attempt = 0; ; attempt++) {
    try {
      fs.writeFileSync(file, mine, { flag: 'wx', mode: 0o644 });
      const release = (): void => {
        try {
          if (fs.readFileSync(file, 'utf8') === mine) fs.unlinkSync(file);
        } catch {
          // already gone
        }
      };
      return { release };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw e;
    }
    const holder = lockHolder(home);
    if (holder !== null) return { heldBy: holder };
    fs.rmSync(file, { force: true });
  }
}

// True when something accepts connections on the unix socket at p (a stale socket file refuses them).
export function socketLive(p: string): Promise<boolean> {
  return new Promise((resolve) => {
    if (!fs.existsSync(p)) return resolve(false);
    const s = net.connect(p, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

function chownTree(p: string, uid: number, gid: number): void {
  const st = fs.lstatSync(p);
  if (st.isSymbolicLink()) return; // never follow a link out of the tree
  fs.lchownSync(p, uid, gid);
  if (st.isDirectory()) for (const n of fs.readdirSync(p)) chownTree(path.join(p, n), uid, gid);
}

// mkdir -p, with every directory it creates at `mode` (umask cannot narrow it); existing ones are left alone.
function mkdirs(dir: string, mode: number): void {
  const first = fs.mkdirSync(dir, { recursive: true, mode });
  if (first === undefined) return;
  for (let d = dir; ; d = path.dirname(d)) {
    fs.chmodSync(d, mode);
    if (d === first) break;
  }
}

// The layout, as root with the front end as user F (uid, gid G):
//   HOME        ours; searchable by F                       lib/          helper state: root 0700 (verify key too)
//   run/        root:G 1775: F makes its sockets, cannot rename or remove the helper's (sticky)
//   run/helper  helper runtime: root 0700                   run/helper-sock  root:G 0660, allow-list F only
//   log/ keys/  F 0700 (audit log, sealing state)           pki/server/private/serverkey.pem  F 0600
//   etc/        F: the front end reads policy and users and writes SASL lockouts; nothing else reads it as root but
//               the CLI, which never follows a planted link (atomic writes by rename)
// Not root (or F = root): everything is the caller's, as before.
function prepareHome(home: string, f: FrontUser, drops: boolean): void {
  const run = path.join(home, 'run');
  mkdirs(run, 0o755);
  mkdirs(path.join(home, 'lib'), 0o700);
  for (const d of ['log', 'keys', 'etc', 'cache']) mkdirs(path.join(home, d), d === 'etc' ? 0o755 : 0o700); // cache/: the front end's (policy cache)
  const pki = path.join(home, 'pki');
  ensureDevPki(pki);
  // Forward-secure audit keys are made here, by whoever starts the daemon (root in production), before the front end
  // runs: the verification key stays in HOME/lib, out of the front end's reach; only the sealing state is handed over.
  const ap = auditPaths(home);
  if (!fs.existsSync(ap.verifyKey) && !fs.existsSync(ap.keyFile) && !fs.existsSync(ap.log)) {
    initAuditKeys({ verifyKeyFile: ap.verifyKey, sealFile: ap.keyFile, owner: drops ? { uid: f.uid, gid: f.gid } : undefined });
  }
  if (!drops) return;
  const homeSt = fs.statSync(home);
  if ((homeSt.mode & 0o001) === 0) {
    fs.chmodSync(home, (homeSt.mode & 0o7777) | 0o001); // search only: HOME is not listed, lib/ stays 0700
    process.stdout.write(`virtgate: made ${home} searchable (o+x) for the front end's uid ${f.uid}\n`);
  }
  const lib = path.join(home, 'lib');
  if (fs.statSync(lib).uid !== 0) throw new StartError(`${lib} (the helper's state) is not owned by root; refusing to run the helper on it`);
  fs.chmodSync(lib, 0o700);
  fs.chownSync(run, 0, f.gid);
  fs.chmodSync(run, 0o1775);
  // The helper's runtime directory is made here, before the front end runs, so it can never be the front end's.
  const rt = path.join(run, 'helper');
  fs.mkdirSync(rt, { recursive: true, mode: 0o700 });
  const rtSt = fs.lstatSync(rt);
  if (!rtSt.isDirectory() || rtSt.uid !== 0) throw new StartError(`${rt} is not a directory owned by root; move it away`);
  fs.chmodSync(rt, 0o700);
  // Sockets a front end of another user left behind: F could not replace them in the sticky run/.
  for (const n of ['virtgate-sock', 'virtgate-sock-ro']) {
    const s = path.join(run, n);
    const st = fs.lstatSync(s, { throwIfNoEntry: false });
    if (st?.isSocket() && st.uid !== f.uid) fs.unlinkSync(s);
  }
  for (const d of ['log', 'keys', 'etc', 'cache']) chownTree(path.join(home, d), f.uid, f.gid);
  // The front end reads its own TLS key; the CA key stays root's.
  const key = path.join(pki, 'server', ServerFiles.key);
  for (const p of [path.dirname(key), key]) fs.chownSync(p, f.uid, f.gid);
  // ... and its audit-forwarding client key when made at the default place (docs/audit-forwarding.md)
  const fwd = path.join(pki, 'forward', 'private', 'clientkey.pem');
  if (fs.existsSync(fwd)) for (const p of [path.dirname(fwd), fwd]) fs.chownSync(p, f.uid, f.gid);
}

// The uid a running process has, from /proc (what it really runs as, not what was asked for).
function uidOf(pid: number | undefined): string {
  try {
    return /^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1];
  } catch {
    return '?';
  }
}

// A refusal (HOME in use, a user who cannot reach HOME) is one line and exit 1, also under `virtgate start`.
export async function main(argv: string[]): Promise<number> {
  try {
    return await serve(argv);
  } catch (e) {
    if (!(e instanceof StartError)) throw e;
    process.stderr.write(`virtgate start: ${e.message}\n`);
    return 1;
  }
}

async function serve(argv: string[]): Promise<number> {
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
        driver: { type: 'string' },
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
  const me = process.getuid?.() ?? 0;
  const driver = values.driver ?? 'test';
  if (driver !== 'test' && driver !== 'qemu') {
    process.stderr.write(`virtgate start: --driver: unknown driver '${driver}' (test or qemu)\n${USAGE}\n`);
    return 2;
  }
  // Refused before anything is written: real VMs need the emulator and a root launcher to jail it.
  if (driver === 'qemu' && !fs.existsSync(EMULATOR))
    throw new StartError(`--driver qemu: ${EMULATOR} is not installed (apt-get install qemu-system-x86 qemu-utils bubblewrap)`);
  if (driver === 'qemu' && me !== 0) throw new StartError('--driver qemu: run as root (the launcher creates cgroups and runs each QEMU under its own uid)');
  let f: FrontUser;
  try {
    f = frontUser(values['front-user']);
  } catch (e) {
    process.stderr.write(`virtgate start: ${(e as Error).message}\n`);
    return 2;
  }
  const drops = f.uid !== me; // root starting a front end as another user
  if (me === 0 && f.uid === 0)
    process.stderr.write('virtgate start: WARNING: the front end runs as root (--front-user root): the network-facing process has every privilege\n');
  const run = path.join(home, 'run');
  const helperSocket = path.join(run, 'helper-sock');
  const launcherSocket = path.join(run, 'launcher-sock');
  // Nothing under HOME is written before this point and the lock below: a second start on a live HOME changes nothing.
  const inUse = (pid: number): StartError =>
    new StartError(`${home} is in use by a running virtgate (supervisor pid ${pid}); stop it first (Ctrl-C where it runs, or kill ${pid})`);
  const holder = fs.existsSync(home) ? lockHolder(home) : null;
  if (holder !== null) throw inUse(holder);
  if (drops) checkReachable(f, home);
  // A helper or front end left running by a supervisor that died (or started by hand) still owns the state.
  for (const s of [helperSocket, path.join(run, 'virtgate-sock')]) {
    if (await socketLive(s)) throw new StartError(`${s} is in use by a running process (a helper or front end whose supervisor is gone?); stop it first`);
  }
  if (!fs.existsSync(home)) mkdirs(home, 0o755);
  const lock = takeLock(home); // exclusive: of two starts racing past the checks above, one gets here
  if ('heldBy' in lock) throw inUse(lock.heldBy);
  process.on('exit', lock.release);
  prepareHome(home, f, drops);

  // Domain XML an older version stored becomes typed JSON first, in a process of its own: the helper parses no XML.
  const upgrade = spawnSync(
    process.execPath,
    [path.join(BIN, 'virtgate-upgrade-state.js'), '--state-dir', path.join(home, 'lib'), '--runtime-dir', path.join(run, 'helper')],
    { stdio: ['ignore', 'inherit', 'inherit'], timeout: 120000 },
  );
  if (upgrade.status !== 0) throw new StartError(`converting stored domain XML failed (virtgate-upgrade-state exit ${upgrade.status ?? upgrade.signal})`);
  const helper: Child = {
    name: 'helper',
    args: [
      path.join(BIN, 'virtgate-helper.js'),
      ...['--socket', helperSocket, '--state-dir', path.join(home, 'lib'), '--runtime-dir', path.join(run, 'helper'), '--allow-uid', String(f.uid)],
      // The front end reaches the helper through its group; only its uid is on the allow-list.
      ...(drops ? ['--socket-mode', '0660', '--socket-group', String(f.gid)] : []),
      ...['--journal', auditPaths(home).journal],
      ...(driver === 'qemu' ? ['--driver', 'qemu', '--launcher-socket', launcherSocket] : []),
      ...(values['no-sandbox'] ? ['--no-sandbox'] : []),
    ],
    proc: null,
    ready: /listening on/,
    backoff: new RestartBackoff(),
    output: '',
    standby: null,
  };
  // With --driver qemu, a third process before the helper: the launcher (root), the only one that may exec. Its socket
  // is root 0600 and serves uid 0 only; QEMU's own output goes to HOME/lib/launcher-logs (root 0700).
  const launcher: Child | null =
    driver === 'qemu'
      ? {
          name: 'launcher',
          args: [
            path.join(BIN, 'virtgate-launcher.js'),
            ...['--socket', launcherSocket, '--log-dir', path.join(home, 'lib', 'launcher-logs'), '--allow-uid', '0'],
            ...(values['no-sandbox'] ? ['--no-sandbox'] : []),
          ],
          proc: null,
          ready: /listening on/,
          backoff: new RestartBackoff(),
          output: '',
          standby: null,
        }
      : null;
  const frontArgs = [path.join(BIN, 'virtgated.js'), '--home', home, '--helper-socket', helperSocket];
  if (values.tcp) frontArgs.push('--tcp', values.tcp);
  if (values['no-sandbox']) frontArgs.push('--no-sandbox'); // both processes run their seccomp allowlists otherwise
  // The default port may be taken (libvirtd, another virtgate): then the front end picks a free one and prints it.
  frontArgs.push('--tls', values.tls ?? DEV_TLS, ...(values.tls === undefined ? ['--tls-port-fallback'] : []));
  // Whoever starts the daemon administers it; root is a built-in host admin already.
  const starter = unixIdentity(me, fs.readFileSync('/etc/passwd', 'utf8'));
  if (me !== 0) frontArgs.push('--host-admin', starter);
  const front: Child = {
    name: 'front end',
    args: frontArgs,
    uid: drops ? f.uid : undefined,
    gid: drops ? f.gid : undefined,
    proc: null,
    ready: /listening on tls \S+:\d+/,
    backoff: new RestartBackoff(),
    output: '',
    standby: null,
  };

  let stopping = false;
  // Stops both processes and makes main() return this status; set once the daemon is up.
  let fatal: (code: number) => void = () => undefined;
  // With uid/gid, libuv also calls setgroups(0): the front end keeps no supplementary group of root's.
  const loaded = (c: Child): ChildProcess => {
    const p = spawn(process.execPath, ['-r', SPARE, ...c.args], {
      stdio: ['pipe', 'pipe', 'inherit'],
      uid: c.uid,
      gid: c.gid,
      cwd: c.uid !== undefined ? '/' : undefined,
    });
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
        if (!seen) {
          // Not restarted: the caller stops the other process and reports (its own message is already on stderr).
          const why = code === EXIT_CONFIG ? 'a configuration problem or a taken address' : `${signal ?? code}`;
          reject(Object.assign(new Error(`${c.name} exited during start-up (${why})`), { exitCode: code === EXIT_CONFIG ? EXIT_CONFIG : 1 }));
          return;
        }
        if (stopping) return;
        if (code === EXIT_CONFIG) {
          // Restarting cannot fix a bad configuration or a taken address (the config may have changed under it).
          process.stderr.write(`virtgate: ${c.name} exited (${code}: a configuration problem or a taken address); not restarting, stopping\n`);
          fatal(EXIT_CONFIG);
          return;
        }
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
    if (launcher) await launch(launcher);
    await launch(helper);
    await launch(front);
  } catch (e) {
    // A half-started daemon must not leave an orphaned helper behind (or a restart loop). VMs keep running.
    stopping = true;
    for (const p of [front.proc, helper.proc, front.standby, helper.standby, launcher?.proc, launcher?.standby]) p?.kill('SIGTERM');
    throw e;
  }

  const rw = path.join(run, 'virtgate-sock');
  const ro = path.join(run, 'virtgate-sock-ro');
  const tlsPort = /listening on tls \S+:(\d+)/.exec(front.output)![1];
  const tcp = /listening on tcp (\S+)/.exec(front.output)?.[1];
  const admins = [...BUILTIN_ADMINS, ...(me !== 0 ? [starter] : [])];
  const [scheme, uriPath] = driver === 'qemu' ? ['qemu', '/system'] : ['test', '/default'];
  // Every command below works as printed, from any directory, for the user who ran this (the test runs each one).
  process.stdout.write(
    [
      '',
      `virtgate is running (${driver} driver), state under ${home}`,
      ...(launcher ? [`  launcher   pid ${launcher.proc?.pid}, uid ${uidOf(launcher.proc?.pid)} (root): starts each QEMU jailed`] : []),
      `  helper     pid ${helper.proc?.pid}, uid ${uidOf(helper.proc?.pid)}${me === 0 ? ' (root)' : ''}`,
      `  front end  pid ${front.proc?.pid}, uid ${uidOf(front.proc?.pid)} (${f.name}): ${f.why}`,
      `  host admins: ${admins.join(', ')} (built in; a policy.csv adds to them unless it says 'builtin, off')`,
      ...(tcp ? [`  plain TCP on ${tcp}: clients there are tcp:anonymous, who may do nothing until policy.csv grants it`] : []),
      `Try, as ${starter.slice(5)}:`,
      `  virsh -c '${scheme}+unix://${uriPath}?socket=${rw}' list --all`,
      `  virsh -r -c '${scheme}+unix://${uriPath}?socket=${ro}' list --all`,
      `  ${path.join(BIN, 'virtgate.js')} -c '${scheme}+unix://${uriPath}?socket=${rw}' list --all`,
      `  virsh -c '${scheme}+tls://localhost:${tlsPort}${uriPath}?pkipath=${path.join(home, 'pki', 'admin')}' list --all`,
      'Press Ctrl-C to stop.',
      '',
    ].join('\n'),
  );

  return new Promise<number>((resolve) => {
    let status = 0;
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      for (const c of [front, helper, ...(launcher ? [launcher] : [])]) c.standby?.kill('SIGTERM'); // their stdin closing would end them too
      // The front end first: it finishes its calls and records daemon-stop while the helper still answers; then the
      // helper. (Ctrl-C in a terminal signals all three at once; this order is for a SIGTERM to the supervisor.)
      const alive = (p: ChildProcess | null): p is ChildProcess => p !== null && p.exitCode === null && p.signalCode === null;
      const ended = (p: ChildProcess | null): Promise<void> => (alive(p) ? new Promise((r) => p.once('exit', () => r())) : Promise.resolve());
      const f = front.proc;
      const h = helper.proc;
      const l = launcher?.proc ?? null;
      const kill = setTimeout(() => [f, h, l].forEach((p) => alive(p) && p.kill('SIGKILL')), 5000);
      kill.unref();
      if (alive(f)) f.kill('SIGTERM');
      void ended(f)
        .then(() => {
          if (alive(h)) h.kill('SIGTERM');
          return ended(h);
        })
        .then(() => {
          // The launcher last; the VMs it started keep running (their own sessions and cgroups).
          if (alive(l)) l.kill('SIGTERM');
          return ended(l);
        })
        .then(() => {
          clearTimeout(kill);
          resolve(status);
        });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    fatal = (code) => {
      status = code;
      stop();
    };
  });
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: Error & { exitCode?: number }) => {
      process.stderr.write(`virtgate start: ${e.message}\n`);
      process.exit(e.exitCode ?? 1);
    },
  );
}
