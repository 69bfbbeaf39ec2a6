// SPDX-License-Identifier: Apache-2.0
// Starts a private libvirtd (session mode, unprivileged, own config and socket dir, loopback TCP, test driver, 3 running guests).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, onCleanup, stopChild } from './proc';
import { GUESTS, type Target } from './target';

export const LIBVIRTD = '/usr/sbin/libvirtd';
const NOBODY = 65534;

// The test driver reads this node file from the URI path; its domains start out running. Every connection to a
// node file gets its own driver instance, so fixed UUIDs keep one connection's domain handles valid on another.
const nodeXml = (): string =>
  `<node>\n${Array.from(
    { length: GUESTS },
    (_, i) =>
      `  <domain type='test'><name>guest${i + 1}</name><uuid>6695eb01-f6a4-8304-79aa-97f2502e193${i}</uuid>` +
      `<memory unit='MiB'>512</memory><vcpu>2</vcpu><os><type>hvm</type></os></domain>\n`,
  ).join('')}</node>\n`;

const has = (cmd: string): boolean => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

export function libvirtdVersion(): string | null {
  try {
    return execFileSync(LIBVIRTD, ['--version']).toString().trim().split(/\s+/).pop() ?? null;
  } catch {
    return null;
  }
}

// Resolves to the target, or to the reason it could not start (the bench then reports virtgate alone).
// `pki` is virtgate's development PKI: libvirtd serves TLS with the same CA and server certificate, so one client
// certificate (pki/admin, a libvirt pkipath) reaches both.
export async function startLibvirtd(pki: string, maxClients: number, log: (m: string) => void, notes: string[]): Promise<Target | { why: string }> {
  if (!fs.existsSync(LIBVIRTD)) return { why: `${LIBVIRTD} not found (install Debian package libvirt-daemon)` };
  // As root, a second libvirtd would collide with the system one's pid files: run it as nobody in session mode.
  const asRoot = process.getuid?.() === 0;
  if (asRoot && !has('setpriv')) return { why: 'running as root and setpriv (util-linux) is missing, so libvirtd cannot be run unprivileged' };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-bench-libvirtd-'));
  const sockDir = path.join(dir, 'sock');
  const port = await freePort();
  const tlsPort = await freePort();
  fs.mkdirSync(sockDir);
  const tls = path.join(dir, 'tls');
  fs.mkdirSync(tls);
  fs.copyFileSync(path.join(pki, 'ca', 'cacert.pem'), path.join(tls, 'cacert.pem'));
  fs.copyFileSync(path.join(pki, 'server', 'servercert.pem'), path.join(tls, 'servercert.pem'));
  fs.copyFileSync(path.join(pki, 'server', 'private', 'serverkey.pem'), path.join(tls, 'serverkey.pem'));
  for (const d of ['run', 'config', 'cache']) fs.mkdirSync(path.join(dir, d));
  fs.writeFileSync(path.join(dir, 'guests.xml'), nodeXml());
  fs.writeFileSync(
    path.join(dir, 'libvirtd.conf'),
    [
      `unix_sock_dir = "${sockDir}"`,
      'unix_sock_rw_perms = "0777"',
      'unix_sock_ro_perms = "0777"',
      'auth_unix_rw = "none"',
      'auth_unix_ro = "none"',
      'listen_tls = 1',
      `tls_port = "${tlsPort}"`,
      `ca_file = "${path.join(tls, 'cacert.pem')}"`,
      `cert_file = "${path.join(tls, 'servercert.pem')}"`,
      `key_file = "${path.join(tls, 'serverkey.pem')}"`,
      'auth_tls = "none"',
      'listen_tcp = 1',
      'listen_addr = "127.0.0.1"',
      `tcp_port = "${port}"`,
      'auth_tcp = "none"',
      // Room for the many-clients row (libvirtd's defaults are 5000 and 20).
      `max_clients = ${Math.max(5000, maxClients + 100)}`,
      `max_anonymous_clients = ${maxClients + 100}`,
      '',
    ].join('\n'),
  );
  if (asRoot) execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, dir]);
  const env = {
    PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: dir,
    XDG_RUNTIME_DIR: path.join(dir, 'run'),
    XDG_CONFIG_HOME: path.join(dir, 'config'),
    XDG_CACHE_HOME: path.join(dir, 'cache'),
  };
  const args = ['-f', path.join(dir, 'libvirtd.conf'), '--listen'];
  // setpriv execs libvirtd, so the child's pid is libvirtd's.
  const proc: ChildProcess = asRoot
    ? spawn('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', LIBVIRTD, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(LIBVIRTD, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.setEncoding('utf8').on('data', (t: string) => (out += t));
  proc.stderr!.setEncoding('utf8').on('data', (t: string) => (out += t));
  proc.on('error', (e) => (out += `\nspawn: ${e.message}`));
  const stop = async (): Promise<void> => {
    await stopChild(proc);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const forget = onCleanup(stop);
  const sock = path.join(sockDir, 'libvirt-sock');
  const ready = await waitReady(proc, sock, [port, tlsPort]);
  if (ready !== true) {
    forget();
    await stop();
    const errors = out
      .split('\n')
      .filter((l) => / error : /.test(l) || /spawn:/.test(l))
      .slice(-3);
    return { why: `libvirtd did not start (${ready})${errors.length ? `: ${errors.join(' | ')}` : ''}` };
  }
  log(`libvirtd: started as ${asRoot ? 'nobody' : 'this user'} in ${dir} (tcp port ${port}, tls port ${tlsPort})`);
  notes.push('libvirtd test driver: each connection to a node file gets its own driver instance, which its per-connection RSS includes');
  const guests = path.join(dir, 'guests.xml');
  return {
    name: 'libvirtd',
    unixUri: `test+unix://${guests}?socket=${sock}`,
    tcpUri: `test+tcp://127.0.0.1:${port}${guests}`,
    tlsUri: `test+tls://127.0.0.1:${tlsPort}${guests}?pkipath=${path.join(pki, 'admin')}`,
    processes: () => (proc.pid ? [{ label: 'libvirtd', pid: proc.pid }] : []),
    stop: async () => {
      forget();
      await stop();
    },
  };
}

// True once the unix socket and the TCP ports accept, else why not.
async function waitReady(proc: ChildProcess, sock: string, ports: number[]): Promise<true | string> {
  const deadline = Date.now() + 20000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) return `exited with ${proc.signalCode ?? proc.exitCode}`;
    let up = await canConnect({ path: sock });
    for (const port of ports) up &&= await canConnect({ host: '127.0.0.1', port });
    if (up) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return 'not listening after 20 s';
}

function canConnect(opts: net.NetConnectOpts): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(opts, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}
