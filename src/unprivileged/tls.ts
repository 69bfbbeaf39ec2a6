// SPDX-License-Identifier: Apache-2.0
// virtgated's TLS edge: mutual x509, the client-DN allowlist and libvirt's one-byte confirmation; hands on verified sockets with an x509 Identity.
// CA, CRL and server certificate/key are reloaded on SIGHUP and when their files change, for new connections at once.
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import type { Config } from '../common/config';
import { VG_ERR_CONFIG_INVALID, VG_ERR_TLS_REFUSED, type VgError } from '../common/errors';
import { NAME_RULE, isUserName } from '../common/names';
import type { Identity } from './session';

// libvirtd queues exactly this one application-data byte once it accepts the client (virnetserverclient.c:284-310).
const CONFIRMATION = Buffer.from([0x01]);
const RELOAD_DEBOUNCE_MS = 200; // writers (pki crl, editors, atomic renames) touch a file several times in a row

export interface TlsListenerOptions {
  config: Readonly<Config>;
  log: (msg: string) => void;
  onClient: (sock: tls.TLSSocket, identity: Identity) => void;
  timers?: HandshakeTimers; // the handshake deadline's clock: the global timers unless a test drives it
}

export interface HandshakeTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const REAL_TIMERS: HandshakeTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export function createTlsServer(opts: TlsListenerOptions): tls.Server {
  const { config, log } = opts;
  const creds = readCredentials(config);
  const server = tls.createServer({
    ...creds.options,
    requestCert: true,
    // Checked in x509Identity instead: with rejectUnauthorized node drops a bad certificate silently, and we want the reason in the log.
    rejectUnauthorized: false,
    handshakeTimeout: config.tlsHandshakeTimeout * 2000, // a backstop only: the deadline below fires first
    minVersion: config.tlsMinVersion as tls.SecureVersion,
    maxVersion: config.tlsMaxVersion as tls.SecureVersion,
    ...(config.tlsCiphers ? { ciphers: config.tlsCiphers } : {}),
  });
  // tlsHandshakeTimeout, on our own timer (node's cannot take another clock): keyed by the peer's address and port, which
  // no two live connections share; cleared when the handshake ends either way or the connection closes.
  const timers = opts.timers ?? REAL_TIMERS;
  const deadlines = new Map<string, unknown>();
  const peer = (s: net.Socket): string => `${s.remoteAddress}:${s.remotePort}`;
  const handshakeOver = (s: net.Socket): void => {
    const key = peer(s);
    if (!deadlines.has(key)) return;
    timers.clearTimeout(deadlines.get(key));
    deadlines.delete(key);
  };
  server.on('connection', (raw: net.Socket) => {
    const key = peer(raw);
    const h = timers.setTimeout(() => {
      if (deadlines.get(key) !== h) return;
      deadlines.delete(key);
      const e = VG_ERR_TLS_REFUSED(`${key}: TLS handshake not finished in time`);
      log(`${e.code}: ${e.message}`);
      raw.destroy();
    }, config.tlsHandshakeTimeout * 1000);
    deadlines.set(key, h);
    raw.once('close', () => {
      // By the captured key: a closed socket's address may be gone.
      if (deadlines.get(key) !== h) return;
      timers.clearTimeout(h);
      deadlines.delete(key);
    });
  });
  server.on('secureConnection', (sock: tls.TLSSocket) => {
    handshakeOver(sock);
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
    handshakeOver(sock);
    const e = VG_ERR_TLS_REFUSED(`${sock.remoteAddress}:${sock.remotePort}: ${handshakeFailure(err)}`);
    log(`${e.code}: ${e.message}`);
    sock.destroy();
  });
  const reloader = new CredentialReloader(server, config, log, creds);
  server.on('close', () => reloader.close());
  return server;
}

// The listener's credentials and protocol settings as read from the files now (the VNC proxy reads them per
// connection: a CRL written a moment ago applies to its next client). Throws VG_ERR_CONFIG_INVALID naming the file.
export function currentServerOptions(config: Readonly<Config>): tls.TlsOptions {
  return {
    ...readCredentials(config).options,
    minVersion: config.tlsMinVersion as tls.SecureVersion,
    maxVersion: config.tlsMaxVersion as tls.SecureVersion,
    ...(config.tlsCiphers ? { ciphers: config.tlsCiphers } : {}),
  };
}

type CredentialOptions = Pick<tls.TlsOptions, 'ca' | 'cert' | 'key' | 'crl'>;

interface Credentials {
  options: CredentialOptions;
  files: string[]; // what was read, for the log
  crlFile: string; // '' = no CRL in force
}

// Keeps the listener's CA, CRL and server certificate current: on SIGHUP and on a change in their directories
// (debounced), new material is read, checked and swapped in with setSecureContext, so the next handshake uses it
// (a CRL just written by `virtgate pki crl` refuses a revoked client at once). Material that does not load (an
// unparsable file, a key that does not match the certificate, a CRL that vanished) is refused loudly and the
// material in force stays. The new context also has new session-ticket keys: no session made before resumes.
class CredentialReloader {
  #current: Credentials;
  #timer: NodeJS.Timeout | null = null;
  #watchers: fs.FSWatcher[] = [];
  readonly #onHup = (): void => void this.reload('SIGHUP');

  constructor(
    private readonly server: tls.Server,
    private readonly config: Readonly<Config>,
    private readonly log: (msg: string) => void,
    initial: Credentials,
  ) {
    this.#current = initial;
    process.on('SIGHUP', this.#onHup);
    this.#watch();
  }

  reload(why: string): boolean {
    let next: Credentials;
    try {
      next = readCredentials(this.config);
      if (this.#current.crlFile && !next.crlFile) throw new Error(`the CRL ${this.#current.crlFile} is gone: revoked certificates would be admitted again`);
      checkCa(next.options.ca as Buffer, this.config.tlsCaFile);
      // Throws on a certificate or key that does not parse, a key that does not match, a CRL that does not parse.
      tls.createSecureContext({ ...next.options, minVersion: this.config.tlsMinVersion as tls.SecureVersion });
    } catch (e) {
      this.log(`TLS CREDENTIALS RELOAD FAILED (${why}), keeping the CA, CRL and server certificate in force: ${(e as Error).message}`);
      return false;
    }
    this.server.setSecureContext({
      ...next.options,
      minVersion: this.config.tlsMinVersion as tls.SecureVersion,
      maxVersion: this.config.tlsMaxVersion as tls.SecureVersion,
      ...(this.config.tlsCiphers ? { ciphers: this.config.tlsCiphers } : {}),
    });
    this.#current = next;
    this.log(`tls: credentials reloaded (${why}): ${next.files.join(', ')}${next.crlFile ? '' : ' (no CRL: revocation is not checked)'}`);
    return true;
  }

  // The directories, not the files: `pki crl`, editors and atomic writers replace files by rename.
  #watch(): void {
    const c = this.config;
    const files = [c.tlsCaFile, c.tlsCertFile, c.tlsKeyFile, c.tlsCrlFile || defaultCrlFile(c)].filter(Boolean).map((f) => path.resolve(f));
    for (const dir of new Set(files.map((f) => path.dirname(f)))) {
      const names = new Set(files.filter((f) => path.dirname(f) === dir).map((f) => path.basename(f)));
      try {
        const w = fs.watch(dir, { persistent: false }, (_event, name) => {
          if (name !== null && !names.has(name.toString())) return;
          if (this.#timer) clearTimeout(this.#timer);
          this.#timer = setTimeout(() => void this.reload('file change'), RELOAD_DEBOUNCE_MS);
          this.#timer.unref();
        });
        w.on('error', (e) => this.log(`tls: watching ${dir} failed: ${e.message}; SIGHUP still reloads the certificates and CRL`));
        this.#watchers.push(w);
      } catch (e) {
        this.log(`tls: cannot watch ${dir}: ${(e as Error).message}; SIGHUP still reloads the certificates and CRL`);
      }
    }
  }

  close(): void {
    for (const w of this.#watchers) w.close();
    this.#watchers = [];
    if (this.#timer) clearTimeout(this.#timer);
    process.off('SIGHUP', this.#onHup);
  }
}

// Node accepts a CA file with no certificate in it (and then verifies no one): refuse that on reload instead.
function checkCa(ca: Buffer, file: string): void {
  const pems = ca.toString('latin1').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  if (pems.length === 0) throw new Error(`${file}: no certificate in it`);
  for (const pem of pems) {
    try {
      new X509Certificate(pem);
    } catch (e) {
      throw new Error(`${file}: a certificate does not parse: ${(e as Error).message}`);
    }
  }
}

// libvirtd's cacrl.pem next to the CA certificate: used when it exists (the default CRL is optional).
function defaultCrlFile(config: Readonly<Config>): string {
  return `${config.tlsCaFile.replace(/[^/]*$/, '')}cacrl.pem`;
}

function readCredentials(config: Readonly<Config>): Credentials {
  const read = (key: keyof Config, file: string): Buffer => {
    try {
      return fs.readFileSync(file);
    } catch (e) {
      throw VG_ERR_CONFIG_INVALID(key, `cannot read '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  // An explicit CRL must exist; the default one is optional, as libvirtd's cacrl.pem.
  const defaultCrl = defaultCrlFile(config);
  const crlFile = config.tlsCrlFile || (fs.existsSync(defaultCrl) ? defaultCrl : '');
  return {
    options: {
      ca: read('tlsCaFile', config.tlsCaFile),
      cert: read('tlsCertFile', config.tlsCertFile),
      key: read('tlsKeyFile', config.tlsKeyFile),
      ...(crlFile ? { crl: read('tlsCrlFile', crlFile) } : {}),
    },
    files: [config.tlsCaFile, config.tlsCertFile, config.tlsKeyFile, ...(crlFile ? [crlFile] : [])],
    crlFile,
  };
}

// The certificate chain is already verified by OpenSSL; what is left is libvirt's tls_allowed_dn_list and the user name.
export function x509Identity(sock: tls.TLSSocket, allowed: readonly string[], userField: string): Identity {
  const source = `${sock.remoteAddress}:${sock.remotePort}`;
  const cert = sock.getPeerX509Certificate();
  if (!cert) throw VG_ERR_TLS_REFUSED(`${source}: no client certificate`);
  if (!sock.authorized) throw VG_ERR_TLS_REFUSED(`${source}: client certificate '${certificateDn(cert)}' not verified: ${String(sock.authorizationError)}`);
  const dn = certificateDn(cert);
  if (!dnAllowed(dn, allowed))
    throw VG_ERR_TLS_REFUSED(`${source}: client DN '${dn}' is not in tlsAllowedDnList${allowed.length ? '' : ' (empty: no one is admitted)'}`);
  // The user is one subject attribute (tlsUserField, CN by default), present exactly once: with two, which one names the
  // user would be a guess (`CN=rt_alice,CN=root` must not become root).
  const names = subjectFields(cert)
    .filter(([k]) => k === userField)
    .map(([, v]) => v);
  if (names.length > 1)
    throw VG_ERR_TLS_REFUSED(`${source}: client certificate '${dn}' has ${names.length} ${userField} attributes: the user must be named exactly once`);
  const name = names[0];
  if (name === undefined || name === '')
    throw VG_ERR_TLS_REFUSED(`${source}: client certificate '${dn}' has ${name === undefined ? 'no' : 'an empty'} ${userField}: it names no user`);
  if (!isUserName(name)) throw VG_ERR_TLS_REFUSED(`${source}: client certificate ${userField} ${JSON.stringify(name)} is not a user name (${NAME_RULE})`);
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
  return globs.some((g) =>
    new RegExp(
      `^${g
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.')}$`,
      's',
    ).test(dn),
  );
}

function handshakeFailure(err: Error & { code?: string }): string {
  if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return 'TLS handshake not finished in time';
  // OpenSSL's reason, e.g. "certificate has expired", "wrong version number" (a plaintext client).
  const reason = /error:[0-9A-F]+:[^:]*:[^:]*:(.*)$/.exec(err.message)?.[1];
  return reason ?? err.message;
}
