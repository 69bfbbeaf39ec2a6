// SPDX-License-Identifier: Apache-2.0
// Starts virtgate (start.js: helper + front end) on a private home with the test driver, and brings it to 3 running guests.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ListAllFlags, VirtgateClient } from '../../src/client';
import { ROOT, onCleanup, pgrep, stopChild } from './proc';
import { GUESTS, type Target } from './target';

const START = path.join(ROOT, 'build', 'src', 'cli', 'start.js');

const guestXml = (name: string): string =>
  `<domain type='test'><name>${name}</name><memory unit='MiB'>512</memory><vcpu>2</vcpu><os><type>hvm</type></os></domain>`;

// Plain TCP carries no identity (`tcp:anonymous`); grant it what local root and the admin certificate have, so the
// TCP row measures the transport and not a denial.
const POLICY = `g, unix:root, host-admin, *
g, x509:admin, host-admin, *
g, tcp:anonymous, host-admin, *
`;

// The virtgate target, plus its development PKI (HOME/pki: ca/, server/, admin/), which libvirtd's TLS listener reuses.
// conf: extra virtgate.conf lines (the audited-writes row starts a second daemon with `audit = false`), or a function
// of the new home that writes what the lines name there (the fleet row's database password file) and returns them.
// policy: replaces the policy above; tenant: every guest (the driver's own "test" included) belongs to that tenant.
export async function startVirtgate(
  log: (m: string) => void,
  opts: { conf?: string | ((home: string) => string); policy?: string; tenant?: string } = {},
): Promise<Target & { pki: string }> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-bench-'));
  fs.mkdirSync(path.join(home, 'etc'));
  fs.writeFileSync(path.join(home, 'etc', 'policy.csv'), opts.policy ?? POLICY);
  const conf = typeof opts.conf === 'function' ? opts.conf(home) : opts.conf;
  if (conf) fs.writeFileSync(path.join(home, 'etc', 'virtgate.conf'), conf);
  const args = [START, '--home', home, '--tcp', '127.0.0.1:0', '--tls', '127.0.0.1:0'];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = async (): Promise<void> => {
    await stopChild(proc);
    fs.rmSync(home, { recursive: true, force: true });
  };
  const forget = onCleanup(stop);
  let out = '';
  proc.stdout.setEncoding('utf8').on('data', (t: string) => (out += t));
  proc.stderr.setEncoding('utf8').on('data', (t: string) => (out += t));
  await new Promise<void>((resolve, reject) => {
    const deadline = Date.now() + 30000;
    const poll = (): void => {
      if (/Press Ctrl-C to stop/.test(out)) return resolve();
      if (proc.exitCode !== null || Date.now() > deadline) return reject(new Error(`virtgate did not start:\n${out}`));
      setTimeout(poll, 20);
    };
    poll();
  });
  // The front end prints the ports it bound.
  const port = (kind: string): number => Number(new RegExp(`virtgated: listening on ${kind} [^\\s]+:(\\d+)`).exec(out)?.[1]);
  const pki = path.join(home, 'pki');
  const sock = path.join(home, 'run', 'virtgate-sock');
  const unixUri = `test+unix:///default?socket=${sock}`;

  // test:///default has one running guest ("test"); define and start two more.
  const c = await VirtgateClient.connect(opts.tenant ? `${unixUri}&tenant=${opts.tenant}` : unixUri);
  try {
    for (let i = 2; i <= GUESTS; i++) await c.create(await c.defineXml(guestXml(`guest${i}`)));
    if (opts.tenant) await c.setTenant(await c.lookupByName('test'), opts.tenant);
    const running = (await c.listAllDomains(ListAllFlags.ACTIVE)).length;
    if (running !== GUESTS) throw new Error(`virtgate has ${running} running guests, expected ${GUESTS}`);
  } finally {
    await c.close();
  }
  log(`virtgate: started on ${home} (tcp port ${port('tcp')}, tls port ${port('tls')}, ${GUESTS} running guests)`);

  const front = `virtgated.js --home ${home}`;
  const helper = `virtgate-helper.js --socket ${path.join(home, 'run', 'helper-sock')}`;
  return {
    name: 'virtgate',
    unixUri,
    tcpUri: port('tcp') ? `test+tcp://127.0.0.1:${port('tcp')}/default` : null,
    tlsUri: port('tls') ? `test+tls://127.0.0.1:${port('tls')}/default?pkipath=${path.join(pki, 'admin')}` : null,
    pki,
    processes: () =>
      [
        { label: 'front end', pid: pgrep(front) },
        { label: 'helper', pid: pgrep(helper) },
      ].filter((p): p is { label: string; pid: number } => p.pid !== null),
    stop: async () => {
      forget();
      await stop();
    },
  };
}
