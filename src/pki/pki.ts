// SPDX-License-Identifier: Apache-2.0
// Certificate authority tooling over node-forge: CA, server and client certificates, revocation and CRL, in libvirt's file layout.
import fs from 'node:fs';
import path from 'node:path';
import forge from 'node-forge';
import { VG_ERR_PKI_EXISTS, VG_ERR_PKI_INVALID } from '../common/errors';

const KEY_BITS = 2048; // forge uses node's native RSA keygen: ~0.1-0.4 s per key
const DAY_MS = 86_400_000;
const CLOCK_SKEW_MS = 5 * 60_000; // notBefore slightly in the past so a peer with a slow clock accepts a fresh certificate

// Files under a CA directory (the CA's own layout is ours; libvirt only ever sees cacert.pem and cacrl.pem).
export const CaFiles = {
  cert: 'cacert.pem',
  key: path.join('private', 'cakey.pem'),
  crl: 'cacrl.pem',
  index: 'index.json',
} as const;

// libvirt's names: server side /etc/pki/libvirt/{servercert.pem,private/serverkey.pem}; client ?pkipath=DIR/{cacert,clientcert,clientkey}.pem.
export const ServerFiles = { cert: 'servercert.pem', key: path.join('private', 'serverkey.pem') } as const;
export const ClientFiles = { cert: 'clientcert.pem', key: path.join('private', 'clientkey.pem'), pkipathKey: 'clientkey.pem', ca: 'cacert.pem' } as const;

export interface IndexEntry {
  serial: string; // hex
  kind: 'server' | 'client';
  subject: string;
  notAfter: string; // ISO
  revoked?: string; // ISO revocation time
}

export interface Validity {
  days?: number;
  notBefore?: Date; // default now minus clock skew; tests back-date to make expired certificates
}

interface Ca {
  dir: string;
  cert: forge.pki.Certificate;
  key: forge.pki.rsa.PrivateKey;
}

export function initCa(opts: { dir: string; cn?: string; days?: number }): { certFile: string } {
  const certFile = path.join(opts.dir, CaFiles.cert);
  refuseExisting(certFile);
  const keys = forge.pki.rsa.generateKeyPair(KEY_BITS);
  const subject = [{ name: 'commonName', value: opts.cn ?? 'virtgate CA' }];
  const cert = newCertificate(keys.publicKey, subject, { days: opts.days ?? 3650 });
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  writePrivate(path.join(opts.dir, CaFiles.key), forge.pki.privateKeyToPem(keys.privateKey));
  writePublic(path.join(opts.dir, CaFiles.index), '[]\n');
  writePublic(certFile, forge.pki.certificateToPem(cert));
  return { certFile };
}

export function issueServer(opts: { dir: string; caDir: string; hosts: string[]; ips: string[] } & Validity): { certFile: string; keyFile: string } {
  if (opts.hosts.length + opts.ips.length === 0) throw VG_ERR_PKI_INVALID('a server certificate needs at least one --host or --ip');
  const altNames = [...opts.hosts.map((value) => ({ type: 2, value: checkHost(value) })), ...opts.ips.map((ip) => ({ type: 7, ip: checkIp(ip) }))];
  const certFile = path.join(opts.dir, ServerFiles.cert);
  refuseExisting(certFile);
  const cn = opts.hosts[0] ?? opts.ips[0];
  const { pem, keyPem } = issueLeaf(loadCa(opts.caDir), 'server', [{ name: 'commonName', value: cn }], opts, [
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames },
  ]);
  const keyFile = path.join(opts.dir, ServerFiles.key);
  writePrivate(keyFile, keyPem);
  writePublic(certFile, pem);
  return { certFile, keyFile };
}

// DN order O then CN, as in libvirt's tls_allowed_dn_list examples ("O=tenant,CN=user").
export function issueClient(opts: { dir: string; caDir: string; cn: string; o?: string } & Validity): { certFile: string; keyFile: string } {
  if (!/^[A-Za-z0-9_.@-]{1,64}$/.test(opts.cn)) throw VG_ERR_PKI_INVALID(`client CN '${opts.cn}' must be a user name ([A-Za-z0-9_.@-], 1-64 characters)`);
  const certFile = path.join(opts.dir, ClientFiles.cert);
  refuseExisting(certFile);
  const subject = [...(opts.o ? [{ name: 'organizationName', value: opts.o }] : []), { name: 'commonName', value: opts.cn }];
  const ca = loadCa(opts.caDir);
  const { pem, keyPem } = issueLeaf(ca, 'client', subject, opts, [{ name: 'extKeyUsage', clientAuth: true }]);
  const keyFile = path.join(opts.dir, ClientFiles.key);
  writePrivate(keyFile, keyPem);
  // The same key again at DIR/clientkey.pem, with the CA certificate, so DIR works as a libvirt ?pkipath=DIR.
  writePrivate(path.join(opts.dir, ClientFiles.pkipathKey), keyPem);
  writePublic(path.join(opts.dir, ClientFiles.ca), forge.pki.certificateToPem(ca.cert));
  writePublic(certFile, pem);
  return { certFile, keyFile };
}

export function revoke(opts: { caDir: string; certFile: string }): IndexEntry {
  const ca = loadCa(opts.caDir);
  const cert = readCert(opts.certFile);
  if (!issuedBy(ca, cert)) throw VG_ERR_PKI_INVALID(`${opts.certFile} was not issued by the CA in ${opts.caDir}`);
  const index = readIndex(opts.caDir);
  const entry = index.find((e) => e.serial === cert.serialNumber);
  if (!entry) throw VG_ERR_PKI_INVALID(`serial ${cert.serialNumber} is not in ${path.join(opts.caDir, CaFiles.index)}`);
  entry.revoked ??= new Date().toISOString();
  writeIndex(opts.caDir, index);
  return entry;
}

// X.509 v2 CRL (RFC 5280 §5.1); forge has no CRL builder, so the ASN.1 is assembled here and signed with the CA key.
export function writeCrl(opts: { caDir: string; days?: number; now?: Date }): { crlFile: string; revoked: number } {
  const ca = loadCa(opts.caDir);
  const revoked = readIndex(opts.caDir).filter((e) => e.revoked);
  const now = opts.now ?? new Date();
  const { asn1 } = forge;
  const T = asn1.Type;
  const U = asn1.Class.UNIVERSAL;
  const seq = (v: forge.asn1.Asn1[]): forge.asn1.Asn1 => asn1.create(U, T.SEQUENCE, true, v);
  const int = (hex: string): forge.asn1.Asn1 => asn1.create(U, T.INTEGER, false, forge.util.hexToBytes(hex));
  const time = (d: Date): forge.asn1.Asn1 => asn1.create(U, T.UTCTIME, false, asn1.dateToUtcTime(d));
  const sigAlg = seq([asn1.create(U, T.OID, false, asn1.oidToDer(forge.pki.oids.sha256WithRSAEncryption).getBytes()), asn1.create(U, T.NULL, false, '')]);
  const crlNumber = Math.floor(now.getTime() / 1000)
    .toString(16)
    .padStart(16, '0'); // monotonic enough for one CA
  const tbs = seq([
    asn1.create(U, T.INTEGER, false, asn1.integerToDer(1).getBytes()), // v2
    sigAlg,
    forge.pki.distinguishedNameToAsn1(ca.cert.subject),
    time(now),
    time(new Date(now.getTime() + (opts.days ?? 30) * DAY_MS)),
    ...(revoked.length ? [seq(revoked.map((e) => seq([int(e.serial), time(new Date(e.revoked!))])))] : []),
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [
      seq([
        seq([asn1.create(U, T.OID, false, asn1.oidToDer('2.5.29.20').getBytes()), asn1.create(U, T.OCTETSTRING, false, asn1.toDer(int(crlNumber)).getBytes())]),
      ]),
    ]),
  ]);
  const md = forge.md.sha256.create();
  md.update(asn1.toDer(tbs).getBytes());
  const signature = ca.key.sign(md);
  const der = asn1.toDer(seq([tbs, sigAlg, asn1.create(U, T.BITSTRING, false, String.fromCharCode(0) + signature)])).getBytes();
  const crlFile = path.join(opts.caDir, CaFiles.crl);
  writePublic(crlFile, forge.pem.encode({ type: 'X509 CRL', body: der }));
  return { crlFile, revoked: revoked.length };
}

export function readIndex(caDir: string): IndexEntry[] {
  return JSON.parse(fs.readFileSync(path.join(caDir, CaFiles.index), 'utf8')) as IndexEntry[];
}

function writeIndex(caDir: string, index: IndexEntry[]): void {
  writePublic(path.join(caDir, CaFiles.index), `${JSON.stringify(index, null, 1)}\n`);
}

// forge's verify throws when the issuer name differs and returns false when only the signature does.
function issuedBy(ca: Ca, cert: forge.pki.Certificate): boolean {
  try {
    return ca.cert.verify(cert);
  } catch {
    return false;
  }
}

function loadCa(dir: string): Ca {
  const cert = readCert(path.join(dir, CaFiles.cert));
  let key: forge.pki.rsa.PrivateKey;
  try {
    key = forge.pki.privateKeyFromPem(fs.readFileSync(path.join(dir, CaFiles.key), 'utf8')) as forge.pki.rsa.PrivateKey;
  } catch (e) {
    throw VG_ERR_PKI_INVALID(`cannot read CA key ${path.join(dir, CaFiles.key)}: ${(e as Error).message}`);
  }
  return { dir, cert, key };
}

function readCert(file: string): forge.pki.Certificate {
  try {
    return forge.pki.certificateFromPem(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw VG_ERR_PKI_INVALID(`cannot read certificate ${file}: ${(e as Error).message}`);
  }
}

function issueLeaf(
  ca: Ca,
  kind: IndexEntry['kind'],
  subject: forge.pki.CertificateField[],
  validity: Validity,
  extra: object[],
): { pem: string; keyPem: string } {
  const keys = forge.pki.rsa.generateKeyPair(KEY_BITS);
  const cert = newCertificate(keys.publicKey, subject, { days: validity.days ?? 825, notBefore: validity.notBefore });
  cert.setIssuer(ca.cert.subject.attributes);
  // What libvirt's client checks (virNetTLSContextCheckCertKeyUsage/KeyPurpose): not a CA, signature + key encipherment, the right purpose.
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    ...extra,
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: ca.cert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(ca.key, forge.md.sha256.create());
  const index = readIndex(ca.dir);
  index.push({
    serial: cert.serialNumber,
    kind,
    subject: subject.map((a) => `${a.shortName ?? shortName(a.name)}=${String(a.value)}`).join(','),
    notAfter: cert.validity.notAfter.toISOString(),
  });
  writeIndex(ca.dir, index);
  return { pem: forge.pki.certificateToPem(cert), keyPem: forge.pki.privateKeyToPem(keys.privateKey) };
}

function shortName(name: string | undefined): string {
  return name === 'commonName' ? 'CN' : name === 'organizationName' ? 'O' : String(name);
}

function newCertificate(publicKey: forge.pki.PublicKey, subject: forge.pki.CertificateField[], v: Validity): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  // 16 random bytes with the top bit clear: a positive INTEGER of fixed length (RFC 5280 §4.1.2.2).
  const serial = Buffer.from(forge.random.getBytesSync(16), 'binary');
  serial[0] &= 0x7f;
  serial[0] |= 0x10;
  cert.serialNumber = serial.toString('hex');
  const from = v.notBefore ?? new Date(Date.now() - CLOCK_SKEW_MS);
  cert.validity.notBefore = from;
  cert.validity.notAfter = new Date(from.getTime() + (v.days ?? 825) * DAY_MS);
  cert.setSubject(subject);
  return cert;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function isIpv6(s: string): boolean {
  let text = s;
  let groups = 8;
  const v4 = /^(.*:)([^:]+)$/.exec(text); // ::ffff:192.0.2.1: the last two groups written as IPv4
  if (v4 && v4[2].includes('.')) {
    if (!IPV4.test(v4[2])) return false;
    text = v4[1].endsWith('::') ? v4[1] : v4[1].slice(0, -1);
    groups = 6;
  }
  const halves = text.split('::');
  if (halves.length > 2) return false;
  const parts = halves.map((h) => (h === '' ? [] : h.split(':')));
  if (!parts.flat().every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return false;
  const n = parts.flat().length;
  return halves.length === 2 ? n < groups : n === groups;
}

// Returns the address as the certificate encoder takes it: an IPv6 address's dotted IPv4 tail as two hex groups.
export function checkIp(ip: string): string {
  if (IPV4.test(ip)) return ip;
  if (!isIpv6(ip)) throw VG_ERR_PKI_INVALID(`--ip '${ip}' is not an IPv4 or IPv6 address`);
  return ip.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_, a, b, c, d) => `${((+a << 8) | +b).toString(16)}:${((+c << 8) | +d).toString(16)}`);
}

// A DNS name as RFC 1123 allows it (labels of letters, digits and inner hyphens, at most 63 characters, 253 in all),
// optionally a leading '*.' wildcard label. An address belongs in --ip: clients match an IP only against IP entries.
export function checkHost(host: string): string {
  if (IPV4.test(host) || isIpv6(host)) throw VG_ERR_PKI_INVALID(`--host '${host}' is an IP address: give it as --ip ${host}`);
  const name = host.startsWith('*.') ? host.slice(2) : host;
  const label = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
  if (host.length > 253 || !name.split('.').every((l) => label.test(l)))
    throw VG_ERR_PKI_INVALID(`--host '${host}' is not a DNS name (RFC 1123: dot-separated labels of letters, digits and inner hyphens, 1-63 characters each)`);
  return host;
}

// Also creates the target directory: world-readable (certificates), only private/ is 0700.
function refuseExisting(file: string): void {
  if (fs.existsSync(file)) throw VG_ERR_PKI_EXISTS(file);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
}

// Key files: file 0600 even when it already existed with a looser mode; private/ directories 0700.
function writePrivate(file: string, data: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  if (path.basename(path.dirname(file)) === 'private') fs.chmodSync(path.dirname(file), 0o700);
  const fd = fs.openSync(file, 'w', 0o600);
  try {
    fs.fchmodSync(fd, 0o600);
    fs.writeFileSync(fd, data);
  } finally {
    fs.closeSync(fd);
  }
}

function writePublic(file: string, data: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  fs.writeFileSync(file, data, { mode: 0o644 });
}
