// SPDX-License-Identifier: Apache-2.0
// The TLS listener of a started daemon: certificates made by src/pki, the TS client, and every refusal with its reason on both sides.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import forge from 'node-forge';
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
    [
      'a certificate from another CA',
      'stranger',
      /VG_ERR_TLS_REFUSED: .*client certificate 'CN=admin' not verified: (UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)/,
    ],
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
    // The reason says which deadline closed it; its length (tlsHandshakeTimeout = 2 here) is checked on an injected
    // clock in unit/unprivileged/tls-handshake.test.ts. Timers never fire early, so this lower bound holds under any load.
    await vg.waitFor(/VG_ERR_TLS_REFUSED: .*TLS handshake not finished in time/, 10000, from);
    expect(waited).toBeGreaterThanOrEqual(1990);
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
      await third.vg.waitFor(/VG_ERR_TLS_REFUSED: .*client certificate 'CN=admin' has no O: it names no user/, 5000);
    } finally {
      await third.vg.stop();
    }
  });
});

// A client certificate with any subject: issued by src/pki, then its subject rewritten and signed again by the CA
// (`virtgate pki client` itself only issues one CN, but another CA tool may not).
function clientWithSubject(dir: string, caDir: string, subject: [string, string][]): void {
  issueClient({ dir, caDir, cn: 'placeholder' });
  const file = path.join(dir, 'clientcert.pem');
  const cert = forge.pki.certificateFromPem(fs.readFileSync(file, 'utf8'));
  cert.setSubject(subject.map(([shortName, value]) => ({ shortName, value })));
  cert.sign(forge.pki.privateKeyFromPem(fs.readFileSync(path.join(caDir, 'private', 'cakey.pem'), 'utf8')), forge.md.sha256.create());
  fs.writeFileSync(file, forge.pki.certificateToPem(cert));
}

const frontEndPid = (home: string): number =>
  Number(
    execFileSync('pgrep', ['-f', `virtgated.js --home ${home}`])
      .toString()
      .trim()
      .split('\n')[0],
  );

describe('certificate identities, and revocation without a restart', () => {
  let home: string;
  let pki: string;
  let ca: string;
  const dirs: Record<string, string> = {};
  const uri = (port: number, who: string): string => `test+tls://127.0.0.1:${port}/default?pkipath=${dirs[who]}`;
  // Admitted (libvirt's confirmation byte received) or refused at the TLS edge; what the user may then do is RBAC's business.
  const works = async (port: number, who: string): Promise<boolean> => {
    try {
      (await openTransport(parseUri(uri(port, who)))).destroy();
      return true;
    } catch (e) {
      if (/TLS confirmation/.test((e as Error).message)) return false;
      throw e;
    }
  };

  beforeAll(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-tls-id-'));
    pki = path.join(home, 'pki');
    ca = path.join(pki, 'ca');
    initCa({ dir: ca, cn: 'identity test CA' });
    issueServer({ dir: path.join(pki, 'server'), caDir: ca, hosts: ['localhost'], ips: ['127.0.0.1'] });
    for (const cn of ['admin', 'root', 'carol', 'dave', 'erin', 'frank']) {
      dirs[cn] = path.join(pki, cn);
      issueClient({ dir: dirs[cn], caDir: ca, cn });
    }
    dirs.twoCn = path.join(pki, 'two-cn');
    clientWithSubject(dirs.twoCn, ca, [
      ['CN', 'rt_alice'],
      ['CN', 'root'],
    ]);
    dirs.emptyCn = path.join(pki, 'empty-cn');
    clientWithSubject(dirs.emptyCn, ca, [
      ['O', 'acme'],
      ['CN', ''],
    ]);
    dirs.badCn = path.join(pki, 'bad-cn');
    clientWithSubject(dirs.badCn, ca, [['CN', '-root']]);
    writeCrl({ caDir: ca });
  });
  afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

  describe('one daemon, built-in default policy, CRL through a link reloaded on SIGHUP only', () => {
    let vg: RunningDaemon;
    let port: number;
    beforeAll(async () => {
      // The CRL file the daemon reads is a link in a directory of its own: rewriting its target changes nothing the
      // daemon watches, so only the signal can make it read the new CRL.
      fs.mkdirSync(path.join(home, 'crl'));
      fs.symlinkSync(path.join(ca, 'cacrl.pem'), path.join(home, 'crl', 'current.pem'));
      ({ vg, port } = await startTls(home, `tlsCrlFile = "${path.join(home, 'crl', 'current.pem')}"\n`));
    });
    afterAll(() => vg?.stop());

    test('a certificate CN=root is not the local root: no host admin rights; local root and x509:admin are', async () => {
      // Admitted at the TLS edge as the user root, then denied: x509:root holds nothing in the built-in policy.
      await expect(VirtgateClient.connect(uri(port, 'root'))).rejects.toThrow(/access denied/);
      await vg.waitFor(/authenticated as 'root' \(x509 dn 'CN=root'/, 5000);
      const local = await VirtgateClient.connect(vg.uri); // this test runs as root: unix:root
      try {
        expect((await local.listAllDomains()).map((d) => d.name)).toContain('test');
      } finally {
        await local.close();
      }
      const admin = await VirtgateClient.connect(uri(port, 'admin'));
      try {
        expect((await admin.listAllDomains()).map((d) => d.name)).toContain('test');
      } finally {
        await admin.close();
      }
    });

    test.each([
      [
        'two CNs (CN=rt_alice,CN=root)',
        'twoCn',
        /VG_ERR_TLS_REFUSED: .*client certificate 'CN=rt_alice,CN=root' has 2 CN attributes: the user must be named exactly once/,
      ],
      ['an empty CN', 'emptyCn', /VG_ERR_TLS_REFUSED: .*client certificate 'O=acme,CN=' has an empty CN: it names no user/],
      ['a CN that is no user name', 'badCn', /VG_ERR_TLS_REFUSED: .*client certificate CN "-root" is not a user name/],
    ])('refused at the handshake: %s', async (_what, who, re) => {
      const from = vg.output().length;
      await expect(VirtgateClient.connect(uri(port, who))).rejects.toThrow(/Unable to read TLS confirmation: connection closed by server/);
      await vg.waitFor(re, 5000, from);
      expect(vg.output().slice(from)).not.toMatch(/authenticated as/);
    });

    test('revoke + pki crl + SIGHUP: the next connection with that certificate is refused, others still work', async () => {
      expect(await works(port, 'dave')).toBe(true);
      revoke({ caDir: ca, certFile: path.join(dirs.dave, 'clientcert.pem') });
      writeCrl({ caDir: ca });
      await new Promise((r) => setTimeout(r, 800)); // longer than the reload debounce: nothing watched has changed
      expect(await works(port, 'dave')).toBe(true);
      const from = vg.output().length;
      process.kill(frontEndPid(home), 'SIGHUP');
      await vg.waitFor(/tls: credentials reloaded \(SIGHUP\)/, 5000, from);
      expect(await works(port, 'dave')).toBe(false);
      await vg.waitFor(/VG_ERR_TLS_REFUSED: .*client certificate 'CN=dave' not verified: CERT_REVOKED/, 5000, from);
      expect(await works(port, 'carol')).toBe(true);
    });
  });

  describe('a second daemon: the default CRL (HOME/pki/ca/cacrl.pem), reloaded when the file changes', () => {
    let vg: RunningDaemon;
    let port: number;
    let home2: string;
    beforeAll(async () => {
      home2 = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-tls-crl-'));
      const conf = [
        `tlsCaFile = "${ca}/cacert.pem"`,
        `tlsCertFile = "${pki}/server/servercert.pem"`,
        `tlsKeyFile = "${pki}/server/private/serverkey.pem"`,
        '',
      ].join('\n');
      ({ vg, port } = await startTls(home2, conf));
    });
    afterAll(async () => {
      await vg?.stop();
      fs.rmSync(home2, { recursive: true, force: true });
    });

    test('revoke + pki crl, no signal: the next connection with that certificate is refused, others still work', async () => {
      expect(await works(port, 'erin')).toBe(true);
      const from = vg.output().length;
      revoke({ caDir: ca, certFile: path.join(dirs.erin, 'clientcert.pem') });
      writeCrl({ caDir: ca });
      await vg.waitFor(/tls: credentials reloaded \(file change\)/, 5000, from);
      expect(await works(port, 'erin')).toBe(false);
      await vg.waitFor(/VG_ERR_TLS_REFUSED: .*client certificate 'CN=erin' not verified: CERT_REVOKED/, 5000, from);
      expect(await works(port, 'carol')).toBe(true);
    });

    test('a CRL that does not parse, or vanishes, is refused loudly and the CRL in force stays', async () => {
      const crl = path.join(ca, 'cacrl.pem');
      const good = fs.readFileSync(crl);
      let from = vg.output().length;
      fs.writeFileSync(crl, '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n');
      await vg.waitFor(/TLS CREDENTIALS RELOAD FAILED \(file change\), keeping the CA, CRL and server certificate in force: .*CRL/, 5000, from);
      expect(await works(port, 'erin')).toBe(false); // still revoked
      expect(await works(port, 'frank')).toBe(true);
      from = vg.output().length;
      fs.rmSync(crl);
      await vg.waitFor(/TLS CREDENTIALS RELOAD FAILED \(file change\), .*the CRL .*cacrl\.pem is gone/, 5000, from);
      expect(await works(port, 'erin')).toBe(false);
      from = vg.output().length;
      fs.writeFileSync(path.join(ca, 'cacert.pem.new'), 'not a certificate\n');
      fs.renameSync(path.join(ca, 'cacert.pem.new'), path.join(ca, 'cacert.pem.broken')); // an unrelated file: ignored
      fs.writeFileSync(crl, good);
      await vg.waitFor(/tls: credentials reloaded \(file change\)/, 5000, from);
      expect(await works(port, 'erin')).toBe(false);
      expect(await works(port, 'frank')).toBe(true);
    });
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
