// SPDX-License-Identifier: Apache-2.0
// PKI tooling: chains verified by node's X509Certificate, libvirt's file layout and modes, revocation into a signed CRL, the CLI.
import { X509Certificate, createPrivateKey, verify } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import forge from 'node-forge';
import { pkiMain } from '../../../src/cli/pki';
import { initCa, issueClient, issueServer, readIndex, revoke, writeCrl } from '../../../src/pki/pki';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

let root: string;
let caDir: string;
let ca: X509Certificate;
const x509 = (file: string): X509Certificate => new X509Certificate(fs.readFileSync(file));
const mode = (file: string): number => fs.statSync(file).mode & 0o777;

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-pki-unit-'));
  caDir = path.join(root, 'ca');
  const t = Date.now();
  initCa({ dir: caDir, cn: 'unit CA' });
  process.stdout.write(`CA with a 2048-bit RSA key: ${Date.now() - t} ms\n`);
  ca = x509(path.join(caDir, 'cacert.pem'));
});

test('the CA is self-signed, a CA, and its key is 0600 in a 0700 private/', () => {
  expect(ca.ca).toBe(true);
  expect(ca.subject).toBe('CN=unit CA');
  expect(ca.verify(ca.publicKey)).toBe(true);
  expect(mode(path.join(caDir, 'private', 'cakey.pem'))).toBe(0o600);
  expect(mode(path.join(caDir, 'private'))).toBe(0o700);
  expect(ca.checkPrivateKey(createPrivateKey(fs.readFileSync(path.join(caDir, 'private', 'cakey.pem'))))).toBe(true);
});

test('a server certificate: chains to the CA, DNS and IP SANs, serverAuth, not a CA', () => {
  const dir = path.join(root, 'server');
  issueServer({ dir, caDir, hosts: ['localhost', 'vm.example'], ips: ['127.0.0.1', '::1'] });
  const cert = x509(path.join(dir, 'servercert.pem'));
  expect(cert.checkIssued(ca)).toBe(true);
  expect(cert.verify(ca.publicKey)).toBe(true);
  expect(cert.ca).toBe(false);
  expect(cert.keyUsage).toEqual([SERVER_AUTH]);
  expect(cert.subjectAltName).toBe('DNS:localhost, DNS:vm.example, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
  expect(cert.checkHost('localhost')).toBe('localhost');
  expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
  expect(mode(path.join(dir, 'private', 'serverkey.pem'))).toBe(0o600);
  expect(cert.checkPrivateKey(createPrivateKey(fs.readFileSync(path.join(dir, 'private', 'serverkey.pem'))))).toBe(true);
  const forged = forge.pki.certificateFromPem(cert.toString());
  expect(forged.getExtension('keyUsage')).toMatchObject({ digitalSignature: true, keyEncipherment: true, keyCertSign: false });
});

test('a client directory is a libvirt pkipath: cacert.pem, clientcert.pem, clientkey.pem (and private/clientkey.pem)', () => {
  const dir = path.join(root, 'alice');
  issueClient({ dir, caDir, cn: 'alice', o: 'acme' });
  const cert = x509(path.join(dir, 'clientcert.pem'));
  expect(cert.subject).toBe('O=acme\nCN=alice');
  expect(cert.verify(ca.publicKey)).toBe(true);
  expect(cert.keyUsage).toEqual([CLIENT_AUTH]);
  expect(fs.readFileSync(path.join(dir, 'cacert.pem'), 'utf8')).toBe(fs.readFileSync(path.join(caDir, 'cacert.pem'), 'utf8'));
  for (const key of ['clientkey.pem', 'private/clientkey.pem']) {
    expect(mode(path.join(dir, key))).toBe(0o600);
    expect(cert.checkPrivateKey(createPrivateKey(fs.readFileSync(path.join(dir, key))))).toBe(true);
  }
  expect(readIndex(caDir).map((e) => e.subject)).toContain('O=acme,CN=alice');
});

test('nothing is overwritten, and a CN must be a user name', () => {
  expect(() => initCa({ dir: caDir })).toThrow(expect.objectContaining({ code: 'VG_ERR_PKI_EXISTS' }));
  expect(() => issueClient({ dir: path.join(root, 'alice'), caDir, cn: 'alice' })).toThrow(expect.objectContaining({ code: 'VG_ERR_PKI_EXISTS' }));
  expect(() => issueClient({ dir: path.join(root, 'x'), caDir, cn: 'a,CN=admin' })).toThrow(expect.objectContaining({ code: 'VG_ERR_PKI_INVALID' }));
  expect(() => issueServer({ dir: path.join(root, 'y'), caDir, hosts: [], ips: [] })).toThrow(/at least one/);
});

test('validity can be back-dated (an expired certificate for tests)', () => {
  const dir = path.join(root, 'expired');
  issueClient({ dir, caDir, cn: 'old', notBefore: new Date(Date.now() - 10 * 86_400_000), days: 1 });
  expect(new Date(x509(path.join(dir, 'clientcert.pem')).validTo).getTime()).toBeLessThan(Date.now());
});

// Parse the CRL with forge's ASN.1 reader and verify its signature with node's crypto against the CA key.
function readCrl(file: string): { serials: string[]; verified: boolean } {
  const der = forge.pem.decode(fs.readFileSync(file, 'utf8'))[0].body;
  const list = forge.asn1.fromDer(der);
  const [tbs, , sig] = list.value as forge.asn1.Asn1[];
  const fields = tbs.value as forge.asn1.Asn1[];
  const revoked = fields.find((f, i) => i > 4 && f.type === forge.asn1.Type.SEQUENCE);
  const serials = ((revoked?.value ?? []) as forge.asn1.Asn1[]).map((entry) => forge.util.bytesToHex((entry.value as forge.asn1.Asn1[])[0].value as string));
  const tbsDer = Buffer.from(forge.asn1.toDer(tbs).getBytes(), 'binary');
  const signature = Buffer.from((sig.value as string).slice(1), 'binary');
  return { serials, verified: verify('sha256', tbsDer, ca.publicKey, signature) };
}

test('revoke then crl: the serial is in a CRL signed by the CA; an empty CRL before', () => {
  const dir = path.join(root, 'bob');
  issueClient({ dir, caDir, cn: 'bob' });
  expect(readCrl(writeCrl({ caDir }).crlFile)).toEqual({ serials: [], verified: true });
  const entry = revoke({ caDir, certFile: path.join(dir, 'clientcert.pem') });
  const serial = x509(path.join(dir, 'clientcert.pem')).serialNumber.toLowerCase();
  expect(entry.serial).toBe(serial);
  const { crlFile, revoked } = writeCrl({ caDir });
  expect(revoked).toBe(1);
  expect(readCrl(crlFile)).toEqual({ serials: [serial], verified: true });
});

test('a certificate from another CA cannot be revoked here', () => {
  const other = path.join(root, 'other-ca');
  initCa({ dir: other });
  issueClient({ dir: path.join(root, 'stranger'), caDir: other, cn: 'stranger' });
  expect(() => revoke({ caDir, certFile: path.join(root, 'stranger', 'clientcert.pem') })).toThrow(/was not issued by the CA/);
});

describe('virtgate pki CLI', () => {
  const run = (...args: string[]): { rc: number; out: string; err: string } => {
    let out = '';
    let err = '';
    const rc = pkiMain(args, { stdout: (s) => void (out += s), stderr: (s) => void (err += s) });
    return { rc, out, err };
  };

  test('init-ca, server, client, revoke, crl', () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-pki-cli-'));
    const c = path.join(d, 'ca');
    expect(run('init-ca', '--dir', c, '--cn', 'cli CA', '--days', '30')).toMatchObject({ rc: 0 });
    expect(run('server', '--dir', path.join(d, 's'), '--ca', c, '--host', 'localhost', '--ip', '127.0.0.1')).toMatchObject({ rc: 0 });
    const client = run('client', '--dir', path.join(d, 'u'), '--ca', c, '--cn', 'carol', '--o', 'acme');
    expect(client).toMatchObject({ rc: 0, out: expect.stringContaining(`?pkipath=${path.join(d, 'u')}`) });
    expect(run('revoke', '--ca', c, '--cert', path.join(d, 'u', 'clientcert.pem'))).toMatchObject({ rc: 0, out: expect.stringContaining('O=acme,CN=carol') });
    expect(run('crl', '--ca', c)).toMatchObject({ rc: 0, out: expect.stringContaining('(1 revoked)') });
    expect(x509(path.join(d, 's', 'servercert.pem')).subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1');
  });

  test.each([
    [[], 2, /usage: virtgate pki/],
    [['client', '--dir', '/tmp/x'], 2, /--ca is required/],
    [['init-ca', '--dir', '/tmp/x', '--days', '0'], 2, /--days must be a positive integer/],
    [['frob'], 2, /unknown command 'frob'/],
    [['client', '--bogus'], 2, /Unknown option '--bogus'/],
    [['crl', '--ca', '/nonexistent'], 1, /cannot read certificate/],
  ])('%j exits %d', (args, rc, re) => {
    const r = run(...(args as string[]));
    expect(r.rc).toBe(rc);
    expect(r.err).toMatch(re);
  });
});
