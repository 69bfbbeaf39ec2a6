// SPDX-License-Identifier: Apache-2.0
// virtgated's TLS edge: mutual x509, the client-DN allowlist and libvirt's one-byte confirmation; hands on verified sockets with an x509 Identity.
import type { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import tls from 'node:tls';
import type { Config } from '../common/config';
import { VG_ERR_CONFIG_INVALID, VG_ERR_TLS_REFUSED, type VgError } from '../common/errors';
import type { Identity } from './session';

// libvirtd queues exactly this one application-data byte once it accepts the client (virnetserverclient.c:284-310).
const CONFIRMATION = Buffer.from([0x01]);
const USER_NAME = /^[A-Za-z0-9_.@-]{1,64}$/; // what `virtgate pki client --cn` issues

export interface TlsListenerOptions {
  config: Readonly<Config>;
  log: (msg: string) => void;
  onClient: (sock: tls.TLSSocket, identity: Identity) => void;
}

export function createTlsServer(opts: TlsListenerOptions): tls.Server {
  const { config, log } = opts;
  const server = tls.createServer({
    ...readCredentials(config),
    requestCert: true,
    // Checked in x509Identity instead: with rejectUnauthorized node drops a bad certificate silently, and we want the reason in the log.
    rejectUnauthorized: false,
    handshakeTimeout: config.tlsHandshakeTimeout * 1000,
    minVersion: config.tlsMinVersion as tls.SecureVersion,
    maxVersion: config.tlsMaxVersion as tls.SecureVersion,
    ...(config.tlsCiphers ? { ciphers: config.tlsCiphers } : {}),
  });
  server.on('secureConnection', (sock: tls.TLSSocket) => {
    let identity: Identity;
    try {
      identity = x509Identity(sock, config.tlsAllowedDnList, config.tlsUserField);
    } catch (e) {
      // libvirt never sends 0x00: a refused client just sees the connection close.
      log(`${(e as VgError).code}: ${(e as Error).message}`);
      sock.destroy();
      return;
    }
    // Synchronously, in this handler: OpenSSL's TLS 1.3 session tickets then leave in the same flush as the byte, and libvirt's
    // single-record confirmation read does not see the tickets alone and fail with EAGAIN (libvirt-wire.md §8.4).
    sock.write(CONFIRMATION);
    log(`tls: ${identity.source} authenticated as '${identity.user}' (x509 dn '${identity.dn}', sha256 ${identity.fingerprint})`);
    opts.onClient(sock, identity);
  });
  server.on('tlsClientError', (err: Error & { code?: string }, sock: tls.TLSSocket) => {
    const e = VG_ERR_TLS_REFUSED(`${sock.remoteAddress}:${sock.remotePort}: ${handshakeFailure(err)}`);
    log(`${e.code}: ${e.message}`);
    sock.destroy();
  });
  return server;
}

function readCredentials(config: Readonly<Config>): Pick<tls.TlsOptions, 'ca' | 'cert' | 'key' | 'crl'> {
  const read = (key: keyof Config, file: string): Buffer => {
    try {
      return fs.readFileSync(file);
    } catch (e) {
      throw VG_ERR_CONFIG_INVALID(key, `cannot read '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  // An explicit CRL must exist; the default one is optional, as libvirtd's cacrl.pem.
  const defaultCrl = `${config.tlsCaFile.replace(/[^/]*$/, '')}cacrl.pem`;
  const crlFile = config.tlsCrlFile || (fs.existsSync(defaultCrl) ? defaultCrl : '');
  return {
    ca: read('tlsCaFile', config.tlsCaFile),
    cert: read('tlsCertFile', config.tlsCertFile),
    key: read('tlsKeyFile', config.tlsKeyFile),
    ...(crlFile ? { crl: read('tlsCrlFile', crlFile) } : {}),
  };
}

// The certificate chain is already verified by OpenSSL; what is left is libvirt's tls_allowed_dn_list and the user name.
function x509Identity(sock: tls.TLSSocket, allowed: readonly string[], userField: string): Identity {
  const source = `${sock.remoteAddress}:${sock.remotePort}`;
  const cert = sock.getPeerX509Certificate();
  if (!cert) throw VG_ERR_TLS_REFUSED(`${source}: no client certificate`);
  if (!sock.authorized) throw VG_ERR_TLS_REFUSED(`${source}: client certificate '${certificateDn(cert)}' not verified: ${String(sock.authorizationError)}`);
  const dn = certificateDn(cert);
  if (!dnAllowed(dn, allowed)) throw VG_ERR_TLS_REFUSED(`${source}: client DN '${dn}' is not in tlsAllowedDnList${allowed.length ? '' : ' (empty: no one is admitted)'}`);
  // The user is one subject attribute (tlsUserField, CN by default); the most specific (last) one if repeated.
  const name = subjectFields(cert).filter(([k]) => k === userField).pop()?.[1];
  if (name === undefined || !USER_NAME.test(name)) throw VG_ERR_TLS_REFUSED(`${source}: client certificate ${userField} ${JSON.stringify(name ?? null)} is not a user name`);
  return { user: name, method: 'x509', source, dn, fingerprint: cert.fingerprint256 };
}

// Node prints the subject one RDN per line, in certificate order, values RFC 4514-escaped: join them as "O=acme,CN=alice".
export function certificateDn(cert: X509Certificate): string {
  return cert.subject.split('\n').filter(Boolean).join(',');
}

function subjectFields(cert: X509Certificate): [string, string][] {
  return cert.subject
    .split('\n')
    .filter(Boolean)
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]);
}

// libvirt matches with g_pattern_match_simple: '*' any run of characters (commas included), '?' one character.
export function dnAllowed(dn: string, globs: readonly string[]): boolean {
  return globs.some((g) => new RegExp(`^${g.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 's').test(dn));
}

function handshakeFailure(err: Error & { code?: string }): string {
  if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return 'TLS handshake not finished in time';
  // OpenSSL's reason, e.g. "certificate has expired", "wrong version number" (a plaintext client).
  const reason = /error:[0-9A-F]+:[^:]*:[^:]*:(.*)$/.exec(err.message)?.[1];
  return reason ?? err.message;
}
