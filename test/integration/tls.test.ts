// SPDX-License-Identifier: Apache-2.0
// The TLS listener of a started daemon: certificates made by src/pki, the TS client, and every refusal with its reason on both sides.
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { VirtgateClient } from '../../src/client';
import { openTransport } from '../../src/client/transport';
import { parseUri } from '../../src/client/uri';
import { initCa, issueClient, issueServer, revoke, writeCrl } from '../../src/pki/pki';
import { dnAllowed } from '../../src/unprivileged/tls';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';

const DAY = 86_400_000;

// One PKI for both daemons; each client directory is a libvirt pkipath.
function makePki(home: string): Record<string, string> {
  const pki = path.join(home, 'pki');
  const ca = path.join(pki, 'ca');
  initCa({ dir: ca, cn: 'tls test CA' });
  issueServer({ dir: path.join(pki, 'server'), caDir: ca, hosts: ['localhost'], ips: ['127.0.0.1'] });
  const dirs: Record<string, string> = {};
  const client = (name: string, cn: string, o?: string, extra = {}): void => {
    dirs[name] = path.join(pki, name);
    issueClient({ dir: dirs[name], caDir: ca, cn, o, ...extra });
  };
  client('admin', 'admin');
  client('alice', 'alice', 'acme');
  client('mallory', 'mallory', 'evil');
  client('expired', 'admin', undefined, { notBefore: new Date(Date.now() - 10 * DAY), days: 1 });
  client('revoked', 'bob', 'acme');
  revoke({ caDir: ca, certFile: path.join(dirs.revoked, 'clientcert.pem') });
  writeCrl({ caDir: ca });
  // Another CA with the same name (a forged look-alike), its client certificate next to our CA certificate so the client still trusts the server.
  const other = path.join(home, 'other-ca');
  initCa({ dir: other, cn: 'tls test CA' });
  client('stranger', 'admin');
  fs.rmSync(path.join(dirs.stranger), { recursive: true });
  issueClient({ dir: dirs.stranger, caDir: other, cn: 'admin' });
  fs.copyFileSync(path.join(ca, 'cacert.pem'), path.join(dirs.stranger, 'cacert.pem'));
  dirs.nocert = path.join(pki, 'nocert');
  fs.mkdirSync(dirs.nocert);
  fs.copyFileSync(path.join(ca, 'cacert.pem'), path.join(dirs.nocert, 'cacert.pem'));
  return dirs;
}

async function startTls(home: string, conf: string): Promise<{ vg: RunningDaemon; port: number }> {
  fs.mkdirSync(path.join(home, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(home, 'etc', 'virtgate.conf'), conf);
  const vg = await startDaemon({ home, extraArgs: ['--tls', '127.0.0.1:0'] });
  return { vg, port: Number(/listening on tls 127\.0\.0\.1:(\d+)/.exec(vg.output())![1]) };
}

describe('TLS listener', () => {
  let home: string;
  let dirs: Record<string, string>;
  let vg: RunningDaemon;
  let port: number;
  const uri = (dir: string): string => `test+tls://127.0.0.1:${port}/default?pkipath=${dir}`;
  const logged = (re: RegExp): Promise<string> => vg.waitFor(re, 5000);

  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-tls-'));
    dirs = makePki(home);
    ({ vg, port } = await startTls(home, 'tlsAllowedDnList = ["CN=admin", "O=acme,CN=*"]\ntlsHandshakeTimeout = 2\n'));
  });
  afterAll(() => vg?.stop());

  test('an allowed client certificate connects; the daemon logs user, DN and SHA-256 fingerprint', async () => {
    const c = await VirtgateClient.connect(uri(dirs.admin));
    expect((await c.listAllDomains()).map((d) => d.name)).toContain('test');
    await c.close();
    const fp = new X509Certificate(fs.readFileSync(path.join(dirs.admin, 'clientcert.pem'))).fingerprint256;
    await logged(new RegExp(`authenticated as 'admin' \\(x509 dn 'CN=admin', sha256 ${fp}\\)`));
  });

  // Admission only (the 0x01 confirmation): what alice may then do is RBAC's business.
  test('a glob in the allowlist admits a tenant: O=acme,CN=*', async () => {
    const sock = await openTransport(parseUri(uri(dirs.alice)));
    sock.destroy();
    await logged(/authenticated as 'alice' \(x509 dn 'O=acme,CN=alice'/);
  });

  // As libvirtd: the server closes instead of sending 0x01, so the client (virsh too) reports the confirmation read;
  // the reason is in the daemon's log as VG_ERR_TLS_REFUSED.
  test.each([
    ['no client certificate', 'nocert', /VG_ERR_TLS_REFUSED: .*: no client certificate/],
    ['a certificate from another CA', 'stranger', /VG_ERR_TLS_REFUSED: .*client certificate 'CN=admin' not verified: (UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)/],
    ['an expired certificate', 'expired', /VG_ERR_TLS_REFUSED: .*client certificate 'CN=admin' not verified: CERT_HAS_EXPIRED/],
    ['a revoked certificate (CRL)', 'revoked', /VG_ERR_TLS_REFUSED: .*client certificate 'O=acme,CN=bob' not verified: CERT_REVOKED/],
    ['a DN outside the allowlist', 'mallory', /VG_ERR_TLS_REFUSED: .*client DN 'O=evil,CN=mallory' is not in tlsAllowedDnList/],
  ])('refused: %s', async (_what, dir, serverRe) => {
    const from = vg.output().length;
    await expect(VirtgateClient.connect(uri(dirs[dir]))).rejects.toThrow(/Unable to read TLS confirmation: connection closed by server/);
    await vg.waitFor(serverRe, 5000, from);
  });

  test('refused: a plaintext libvirt client on the TLS port is dropped', async () => {
    const from = vg.output().length;
    const sock = net.connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    sock.on('data', (b) => got.push(b));
    // AUTH_LIST call header, as a plain-TCP client would send it.
    sock.write(Buffer.from('0000001c2000808600000001000000420000000000000000000000000000', 'hex').subarray(0, 28));
    await new Promise((resolve) => sock.on('close', resolve));
    expect(Buffer.concat(got).includes(0x01) && Buffer.concat(got).length === 1).toBe(false);
    await vg.waitFor(/VG_ERR_TLS_REFUSED: .*(wrong version number|packet length too long|http request|unexpected)/, 5000, from);
  });

  test('refused: a client that stalls in the handshake is dropped after tlsHandshakeTimeout', async () => {
    const from = vg.output().length;
    const started = Date.now();
    const sock = net.connect(port, '127.0.0.1');
    sock.on('data', () => undefined);
    await new Promise((resolve) => sock.on('close', resolve));
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThanOrEqual(1500);
    expect(waited).toBeLessThan(6000);
    await vg.waitFor(/VG_ERR_TLS_REFUSED: .*TLS handshake not finished in time/, 5000, from);
  });

  test('an empty allowlist admits no one', async () => {
    const home2 = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-tls-empty-'));
    const pki = path.join(home, 'pki');
    const conf = [
      `tlsCaFile = "${pki}/ca/cacert.pem"`,
      `tlsCertFile = "${pki}/server/servercert.pem"`,
      `tlsKeyFile = "${pki}/server/private/serverkey.pem"`,
      'tlsAllowedDnList = []',
      '',
    ].join('\n');
    const second = await startTls(home2, conf);
    try {
      const u = `test+tls://127.0.0.1:${second.port}/default?pkipath=${dirs.admin}`;
      await expect(VirtgateClient.connect(u)).rejects.toThrow(/Unable to read TLS confirmation: connection closed by server/);
      await second.vg.waitFor(/VG_ERR_TLS_REFUSED: .*client DN 'CN=admin' is not in tlsAllowedDnList \(empty: no one is admitted\)/, 5000);
    } finally {
      await second.vg.stop();
    }
  });

  test('tlsUserField chooses the subject attribute that names the user', async () => {
    const home3 = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-tls-field-'));
    const pki = path.join(home, 'pki');
    const conf = [
      `tlsCaFile = "${pki}/ca/cacert.pem"`,
      `tlsCertFile = "${pki}/server/servercert.pem"`,
      `tlsKeyFile = "${pki}/server/private/serverkey.pem"`,
      'tlsUserField = "O"',
      '',
    ].join('\n');
    const third = await startTls(home3, conf);
    try {
      const sock = await openTransport(parseUri(`test+tls://127.0.0.1:${third.port}/default?pkipath=${dirs.alice}`));
      sock.destroy();
      await third.vg.waitFor(/authenticated as 'acme' \(x509 dn 'O=acme,CN=alice'/, 5000);
      // A certificate without that attribute names no one: refused.
      await expect(VirtgateClient.connect(`test+tls://127.0.0.1:${third.port}/default?pkipath=${dirs.admin}`)).rejects.toThrow(/TLS confirmation/);
      await third.vg.waitFor(/VG_ERR_TLS_REFUSED: .*client certificate O null is not a user name/, 5000);
    } finally {
      await third.vg.stop();
    }
  });
});

describe('tlsAllowedDnList globs (libvirt g_pattern_match_simple)', () => {
  test.each([
    ['CN=admin', ['*'], true],
    ['CN=admin', [], false],
    ['CN=admin', ['CN=admin'], true],
    ['CN=admin2', ['CN=admin'], false],
    ['O=acme,CN=alice', ['O=acme,CN=*'], true],
    ['O=acme,CN=alice', ['O=acm?,CN=alic?'], true],
    ['O=evil,CN=alice', ['O=acme,CN=*'], false],
    ['O=acme.x,CN=a', ['O=acme?x,CN=a'], true],
    ['O=acmeXx,CN=a', ['O=acme.x,CN=a'], false],
  ])('%s against %j -> %s', (dn, globs, want) => {
    expect(dnAllowed(dn, globs)).toBe(want);
  });
});
