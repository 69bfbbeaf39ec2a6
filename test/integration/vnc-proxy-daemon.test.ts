// SPDX-License-Identifier: Apache-2.0
// The remote-display listeners of a started daemon (test driver): a VM with VNC graphics gets a port while it runs and
// loses it when it stops; a user of another tenant is refused with an audited denial before any display is opened.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { VirtgateClient } from '../../src/client';
import { resolveConfig } from '../../src/common/config';
import { initCa, issueClient, issueServer } from '../../src/pki/pki';
import { Daemon } from '../../src/unprivileged/daemon';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { type VncCreds, connect, vncOpen } from '../helpers/vnc-client';

const POLICY = 'g, x509:alice, owner, acme\ng, x509:bob, owner, globex\n';
const XML = (name: string, graphics: boolean): string =>
  `<domain type='test'><name>${name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type>hvm</type></os><devices>${graphics ? "<graphics type='vnc'/>" : ''}</devices></domain>`;

describe('remote displays of a started daemon', () => {
  let home: string;
  let vg: RunningDaemon;
  let tlsPort: number;
  const creds: Record<string, VncCreds> = {};
  const base = 20000 + Math.floor(Math.random() * 20000);
  const uri = (who: string, tenant: string): string => `test+tls://127.0.0.1:${tlsPort}/default?pkipath=${path.join(home, 'pki', who)}&tenant=${tenant}`;

  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-vncd-'));
    const pki = path.join(home, 'pki');
    const ca = path.join(pki, 'ca');
    initCa({ dir: ca, cn: 'vnc daemon test CA' });
    issueServer({ dir: path.join(pki, 'server'), caDir: ca, hosts: ['localhost'], ips: ['127.0.0.1'] });
    for (const [who, o] of [
      ['alice', 'acme'],
      ['bob', 'globex'],
    ]) {
      issueClient({ dir: path.join(pki, who), caDir: ca, cn: who, o });
      creds[who] = {
        ca: fs.readFileSync(path.join(ca, 'cacert.pem')),
        cert: fs.readFileSync(path.join(pki, who, 'clientcert.pem')),
        key: fs.readFileSync(path.join(pki, who, 'clientkey.pem')),
      };
    }
    fs.mkdirSync(path.join(home, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(home, 'etc', 'virtgate.conf'), `vncListen = "127.0.0.1"\nvncPortMin = ${base}\nvncPortMax = ${base + 20}\n`);
    vg = await startDaemon({ home, policy: POLICY, extraArgs: ['--tls', '127.0.0.1:0'] });
    tlsPort = Number(/listening on tls 127\.0\.0\.1:(\d+)/.exec(vg.output())![1]);
  }, 60000);
  afterAll(() => vg?.stop());

  test('a VM with VNC graphics has a port while it runs; another tenant is refused; the port closes with the VM', async () => {
    await vg.waitFor(/vnc: remote displays on 127\.0\.0\.1 ports \d+\.\.\d+/);
    const alice = await VirtgateClient.connect(uri('alice', 'acme'));
    const plain = await alice.create(await alice.defineXml(XML('plain1', false)));
    const dom = await alice.create(await alice.defineXml(XML('vnc1', true)));
    const uuid = Buffer.from(dom.uuid)
      .toString('hex')
      .replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');
    const line = await vg.waitFor(new RegExp(`vnc: ${uuid}: listening on 127\\.0\\.0\\.1:(\\d+)`));
    const port = Number(/:(\d+)$/.exec(line)![1]);
    expect(port).toBeGreaterThanOrEqual(base);
    expect(port).toBeLessThanOrEqual(base + 20);

    const from = vg.output().length;
    expect(await vncOpen(port, creds.bob)).toMatchObject({ result: 'refused', reason: 'access denied' });
    await vg.waitFor(/vnc: .*x509:bob on vnc1 .*domain:getattr/, 5000, from);
    // alice may; the test driver has no display to open, which she is told (and which is audited as her failed open).
    expect(await vncOpen(port, creds.alice)).toMatchObject({ result: 'refused', reason: 'display not available' });

    // Both are in the durable audit log, with the certificate's identity.
    type Rec = { kind: string; who: { user: string; dn?: string }; what: { procedure: string; permission?: string }; outcome?: { result: string } };
    const query = (user: string): Rec[] =>
      JSON.parse(
        execFileSync(
          process.execPath,
          [path.join(__dirname, '..', '..', 'bin', 'virtgate.js'), 'audit', 'query', '--user', user, '--format', 'json', path.join(home, 'log', 'audit.log')],
          {
            encoding: 'utf8',
          },
        ),
      ) as Rec[];
    const bobs = query('bob').filter((r) => r.what?.procedure === 'vncOpen');
    expect(bobs).toEqual([expect.objectContaining({ kind: 'denial', who: expect.objectContaining({ dn: 'O=globex,CN=bob' }) })]);
    const alices = query('alice').filter((r) => r.what?.procedure === 'vncOpen');
    expect(alices.map((r) => [r.kind, r.outcome?.result])).toEqual([
      ['intent', undefined],
      ['outcome', 'error'],
    ]);

    await alice.destroy(dom);
    await vg.waitFor(new RegExp(`vnc: ${uuid}: listener 127\\.0\\.0\\.1:${port} closed`));
    await expect(connect(port)).rejects.toThrow(/ECONNREFUSED/);
    // The VM without graphics never had a listener.
    const puuid = Buffer.from(plain.uuid).toString('hex').slice(0, 8);
    expect(vg.output()).not.toMatch(new RegExp(`vnc: ${puuid}[-0-9a-f]*: listening`));
    await alice.close();
  });
});

// In process, with no TLS listener configured: the refusal is the remote displays' own, before the helper is reached.
test('remote displays without readable TLS credentials: the daemon refuses to start (fail closed), naming the file', async () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-vncd-nocred-'));
  const logs: string[] = [];
  const d = new Daemon(resolveConfig({ home, audit: false, vncListen: '127.0.0.1', tlsCaFile: path.join(home, 'missing-ca.pem') }), {
    log: (m) => logs.push(m),
  });
  try {
    await expect(d.start()).rejects.toThrow(/tlsCaFile.*missing-ca\.pem.*ENOENT/);
    expect(logs.join('\n')).not.toMatch(/vnc: remote displays on/);
  } finally {
    d.vnc?.close();
    d.helper.close();
    (d.authorizer as { close?: () => void }).close?.();
    fs.rmSync(home, { recursive: true, force: true });
  }
});
