// SPDX-License-Identifier: Apache-2.0
// Real QEMU guests for the qemu rows: virtgate's qemu driver (launcher + helper + front end on a private home) and a
// private libvirtd 9.0 in session mode (as nobody, its own QEMU driver), both given the same test guest (TCG).
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LIBVIRTD } from './libvirtd';
import { ROOT, onCleanup, stopChild } from './proc';

export const QEMU = '/usr/bin/qemu-system-x86_64';
const NOBODY = 65534;

export interface Guest {
  kernel: string;
  initrd: string;
  marker: string;
}

export interface QemuSide {
  name: 'virtgate' | 'libvirtd';
  uri: string;
  serialLog(name: string): string; // where the guest's serial output lands
  xml(name: string): string; // the domain XML for one guest
  stop(): Promise<void>;
}

// The test guest (tools/build-test-guest.sh, or VG_TEST_GUEST_DIR), or why it is missing.
export function benchGuest(): Guest | { why: string } {
  let dir = process.env.VG_TEST_GUEST_DIR;
  if (!dir) {
    dir = path.join(ROOT, '.cache', 'test-guest');
    try {
      execFileSync(path.join(ROOT, 'tools', 'build-test-guest.sh'), [], { stdio: 'ignore', timeout: 300_000 });
    } catch (e) {
      return { why: `the test guest could not be built (tools/build-test-guest.sh: ${(e as Error).message.split('\n')[0]})` };
    }
  }
  const files = ['vmlinuz', 'initrd.img', 'marker'].map((f) => path.join(dir, f));
  if (!files.every((f) => fs.existsSync(f))) return { why: `no test guest in ${dir}` };
  return { kernel: files[0], initrd: files[1], marker: fs.readFileSync(files[2], 'utf8').trim() };
}

export function qemuMissing(): string | null {
  if (process.getuid?.() !== 0) return 'the qemu driver needs root (launcher: cgroups, per-VM uids)';
  for (const f of [QEMU, '/usr/bin/bwrap', '/usr/bin/setpriv', '/usr/bin/virsh']) if (!fs.existsSync(f)) return `${f} not found`;
  return null;
}

const domainXml = (name: string, g: Guest, serial: string): string =>
  `<domain type='qemu'><name>${name}</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type><kernel>${g.kernel}</kernel><initrd>${g.initrd}</initrd>
  <cmdline>console=ttyS0 panic=-1</cmdline></os><features><acpi/></features><on_poweroff>destroy</on_poweroff>
  <devices>${serial}<memballoon model='virtio'/></devices></domain>\n`;

export function virsh(uri: string, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('virsh', ['-c', uri, ...args], { timeout: 120_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`virsh ${args.join(' ')}: ${stderr.trim() || err.message}`)) : resolve(stdout),
    );
  });
}

function waitOutput(get: () => string, proc: ChildProcess, re: RegExp, ms = 30000): Promise<void> {
  return new Promise((resolve, reject) => {
    const end = Date.now() + ms;
    const poll = (): void => {
      if (re.test(get())) return resolve();
      if (proc.exitCode !== null || proc.signalCode !== null || Date.now() > end) return reject(new Error(`waiting for ${re}: ${get().slice(-400)}`));
      setTimeout(poll, 20);
    };
    poll();
  });
}

function run(args: string[], sink: (t: string) => void, env?: NodeJS.ProcessEnv): ChildProcess {
  const p = spawn(args[0], args.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env });
  p.stdout!.setEncoding('utf8').on('data', sink);
  p.stderr!.setEncoding('utf8').on('data', sink);
  p.on('error', (e) => sink(`\nspawn: ${e.message}`));
  return p;
}

// SIGKILL whatever is left in our cgroup subtree (QEMUs), then remove it bottom-up.
function purgeCgroups(root: string): void {
  for (const ctrl of ['cpu', 'cpuacct', 'memory', 'pids']) {
    const top = path.join('/sys/fs/cgroup', ctrl, root);
    if (!fs.existsSync(top)) continue;
    const dirs: string[] = [];
    const walk = (d: string): void => {
      dirs.push(d);
      for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(d, e.name));
    };
    walk(top);
    for (const d of dirs)
      for (const pid of fs.readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean))
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* gone */
        }
    for (const d of dirs.reverse())
      for (let i = 0; i < 50; i++)
        try {
          fs.rmdirSync(d);
          break;
        } catch {
          execFileSync('sleep', ['0.05']);
        }
  }
}

// virtgate with --driver qemu: launcher (own socket + cgroup root), helper, front end; policy: root is host-admin.
export async function startVirtgateQemu(g: Guest, log: (m: string) => void): Promise<QemuSide> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-bench-qemu-'));
  for (const d of ['etc', 'run', 'lib', 'launcher']) fs.mkdirSync(path.join(home, d), { recursive: true, mode: 0o755 });
  fs.writeFileSync(path.join(home, 'etc', 'policy.csv'), 'g, unix:root, host-admin, *\n');
  const cgroupRoot = `vgbench-${process.pid}-${Date.now().toString(36)}`;
  let out = '';
  const sink = (t: string): void => void (out += t);
  const procs: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    for (const p of procs.reverse()) await stopChild(p);
    purgeCgroups(cgroupRoot);
    fs.rmSync(home, { recursive: true, force: true });
  };
  const forget = onCleanup(stop);
  const node = (script: string, args: string[], ready: RegExp): Promise<void> => {
    const p = run([process.execPath, path.join(ROOT, 'bin', script), ...args], sink);
    procs.push(p);
    return waitOutput(() => out, p, ready);
  };
  const launcherSock = path.join(home, 'launcher', 'launcher.sock');
  const helperSock = path.join(home, 'run', 'helper-sock');
  try {
    await node(
      'virtgate-launcher.js',
      ['--socket', launcherSock, '--cgroup-root', cgroupRoot, '--log-dir', path.join(home, 'launcher', 'logs'), '--allow-uid', '0'],
      /listening on /,
    );
    await node(
      'virtgate-helper.js',
      [
        ...['--socket', helperSock, '--state-dir', path.join(home, 'lib'), '--runtime-dir', path.join(home, 'run', 'helper')],
        ...['--journal', path.join(home, 'lib', 'helper-journal.log'), '--driver', 'qemu', '--launcher-socket', launcherSock, '--cgroup-root', cgroupRoot],
      ],
      /virtgate-helper: listening on/,
    );
    await node('virtgated.js', ['--home', home, '--helper-socket', helperSock], /listening on unix/);
  } catch (e) {
    forget();
    await stop();
    throw e;
  }
  log(`virtgate (qemu driver): started in ${home}, cgroup root ${cgroupRoot}`);
  const uri = `qemu+unix:///system?socket=${path.join(home, 'run', 'virtgate-sock')}`;
  const uuidOf = new Map<string, string>();
  return {
    name: 'virtgate',
    uri,
    // The helper logs the serial console itself, by UUID.
    serialLog: (name) => {
      if (!uuidOf.has(name)) uuidOf.set(name, execFileSync('virsh', ['-c', uri, 'domuuid', name]).toString().trim());
      return path.join(home, 'lib', 'qemu', 'logs', `${uuidOf.get(name)}.serial.log`);
    },
    xml: (name) => domainXml(name, g, "<serial type='pty'/>"),
    stop: async () => {
      forget();
      await stop();
    },
  };
}

// A private libvirtd in session mode as nobody (libvirtd-side-by-side.md): its QEMU driver runs QEMU as nobody too.
// The guest's files are copied into its directory so nobody can read them; the serial log is a <log file=...>.
export async function startLibvirtdQemu(g: Guest, log: (m: string) => void): Promise<QemuSide | { why: string }> {
  if (!fs.existsSync(LIBVIRTD)) return { why: `${LIBVIRTD} not found (install Debian package libvirt-daemon)` };
  if (!fs.existsSync('/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so'))
    return { why: 'libvirtd QEMU driver not found (install Debian package libvirt-daemon-driver-qemu)' };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-bench-lvqemu-'));
  fs.chmodSync(dir, 0o755);
  const sockDir = path.join(dir, 'sock');
  for (const d of ['sock', 'run', 'config', 'cache', 'logs', 'guest']) fs.mkdirSync(path.join(dir, d));
  const local: Guest = { kernel: path.join(dir, 'guest', 'vmlinuz'), initrd: path.join(dir, 'guest', 'initrd.img'), marker: g.marker };
  fs.copyFileSync(g.kernel, local.kernel);
  fs.copyFileSync(g.initrd, local.initrd);
  fs.writeFileSync(
    path.join(dir, 'libvirtd.conf'),
    [
      `unix_sock_dir = "${sockDir}"`,
      'unix_sock_rw_perms = "0777"',
      'auth_unix_rw = "none"',
      'auth_unix_ro = "none"',
      'listen_tcp = 0',
      'listen_tls = 0',
      '',
    ].join('\n'),
  );
  execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, dir]);
  const env = {
    PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: dir,
    XDG_RUNTIME_DIR: path.join(dir, 'run'),
    XDG_CONFIG_HOME: path.join(dir, 'config'),
    XDG_CACHE_HOME: path.join(dir, 'cache'),
  };
  let out = '';
  const proc = run(
    ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', LIBVIRTD, '-f', path.join(dir, 'libvirtd.conf')],
    (t) => void (out += t),
    env,
  );
  const uri = `qemu+unix:///session?socket=${path.join(sockDir, 'libvirt-sock')}`;
  const stop = async (): Promise<void> => {
    // Session QEMUs outlive libvirtd: destroy them first.
    for (const n of (await virsh(uri, 'list', '--name').catch(() => '')).split('\n').filter(Boolean)) await virsh(uri, 'destroy', n).catch(() => undefined);
    await stopChild(proc);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const forget = onCleanup(stop);
  const deadline = Date.now() + 20000;
  while (!fs.existsSync(path.join(sockDir, 'libvirt-sock'))) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      forget();
      await stop();
      return { why: `libvirtd did not start: ${out.trim().split('\n').slice(-2).join(' | ')}` };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  log(`libvirtd (qemu driver, session as nobody): started in ${dir}`);
  const logOf = (name: string): string => path.join(dir, 'logs', `${name}.serial.log`);
  return {
    name: 'libvirtd',
    uri,
    serialLog: logOf,
    xml: (name) => domainXml(name, local, `<serial type='pty'><log file='${logOf(name)}' append='off'/></serial>`),
    stop: async () => {
      forget();
      await stop();
    },
  };
}
