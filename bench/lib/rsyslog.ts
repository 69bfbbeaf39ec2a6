// SPDX-License-Identifier: Apache-2.0
// A private rsyslogd collector for a test (and the bench's fleet row): imtcp with TLS (gtls, x509/name mutual auth) on a free loopback port,
// every virtgate message written whole (%rawmsg%) to one file; certificates from `virtgate pki`.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ROOT, freePort } from './proc';

export const RSYSLOGD = '/usr/sbin/rsyslogd';
const CLI = path.join(ROOT, 'bin', 'virtgate.js');

export function pki(args: string[]): string {
  return execFileSync(process.execPath, [CLI, 'pki', ...args], { encoding: 'utf8' });
}

// A CA, the collector's server certificate (127.0.0.1 and "collector") and one client certificate per host.
export function makeCollectorPki(dir: string, hosts: string[]): { ca: string; serverCert: string; serverKey: string; clients: Record<string, string> } {
  const ca = path.join(dir, 'ca');
  pki(['init-ca', '--dir', ca]);
  pki(['server', '--dir', path.join(dir, 'server'), '--ca', ca, '--host', 'collector', '--ip', '127.0.0.1']);
  const clients: Record<string, string> = {};
  for (const h of hosts) {
    clients[h] = path.join(dir, 'clients', h);
    pki(['client', '--dir', clients[h], '--ca', ca, '--cn', h]);
  }
  return {
    ca: path.join(ca, 'cacert.pem'),
    serverCert: path.join(dir, 'server', 'servercert.pem'),
    serverKey: path.join(dir, 'server', 'private', 'serverkey.pem'),
    clients,
  };
}

export interface Collector {
  port: number;
  file: string; // where every received message lands, one per line
  start(): Promise<void>;
  stop(): Promise<void>;
  running(): boolean;
  output(): string;
}

export function rsyslogConf(o: { dir: string; port: number; ca: string; cert: string; key: string; peers: string[]; file: string }): string {
  return `global(workDirectory="${o.dir}/work" maxMessageSize="64k"
  defaultNetstreamDriver="gtls"
  defaultNetstreamDriverCAFile="${o.ca}"
  defaultNetstreamDriverCertFile="${o.cert}"
  defaultNetstreamDriverKeyFile="${o.key}")
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="x509/name"
  permittedPeer=[${o.peers.map((p) => `"${p}"`).join(',')}])
input(type="imtcp" port="${o.port}" address="127.0.0.1")
template(name="whole" type="string" string="%rawmsg%\\n")
action(type="omfile" file="${o.file}" template="whole")
`;
}

// Started by the caller (start()), stopped with SIGTERM (stop()); the port stays the same across restarts.
export async function makeCollector(dir: string, certs: { ca: string; serverCert: string; serverKey: string }, peers: string[]): Promise<Collector> {
  fs.mkdirSync(path.join(dir, 'work'), { recursive: true });
  const port = await freePort();
  const file = path.join(dir, 'central.log');
  const conf = path.join(dir, 'rsyslog.conf');
  fs.writeFileSync(conf, rsyslogConf({ dir, port, ca: certs.ca, cert: certs.serverCert, key: certs.serverKey, peers, file }));
  const pidFile = path.join(dir, 'rsyslogd.pid');
  let proc: ChildProcess | null = null;
  let out = '';
  const listening = async (): Promise<boolean> =>
    new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
  return {
    port,
    file,
    output: () => out,
    running: () => proc !== null && proc.exitCode === null && proc.signalCode === null,
    async start() {
      fs.rmSync(pidFile, { force: true });
      proc = spawn(RSYSLOGD, ['-n', '-f', conf, '-i', pidFile], { stdio: ['ignore', 'pipe', 'pipe'] });
      proc.stdout!.setEncoding('utf8').on('data', (t: string) => (out += t));
      proc.stderr!.setEncoding('utf8').on('data', (t: string) => (out += t));
      const t0 = Date.now();
      while (!(await listening())) {
        if (proc.exitCode !== null) throw new Error(`rsyslogd exited (${proc.exitCode}):\n${out}`);
        if (Date.now() - t0 > 20_000) throw new Error(`rsyslogd did not listen on ${port}:\n${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop() {
      const p = proc;
      proc = null;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => p.kill('SIGKILL'), 15_000);
        p.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        p.kill('SIGTERM');
      });
    },
  };
}
