// SPDX-License-Identifier: Apache-2.0
// Opens the byte stream for a ConnectTarget (unix, tcp, tls) and completes libvirt's TLS confirmation; the only socket code in client/.
import { existsSync, readFileSync } from 'node:fs';
import * as net from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { VG_ERR_CLIENT_CLOSED, VG_ERR_CLIENT_TIMEOUT, VG_ERR_USAGE, type VgError } from '../common/errors';
import type { ConnectTarget } from './uri';

export interface PkiFiles {
  ca: string;
  cert: string | null; // the client certificate is optional: without it the server decides
  key: string | null;
}

const SYSTEM_CA = '/etc/pki/CA/cacert.pem';
const SYSTEM_CERT = '/etc/pki/libvirt/clientcert.pem';
const SYSTEM_KEY = '/etc/pki/libvirt/private/clientkey.pem';

// virnettlscontext.c:721-812: pkipath has no fallback; root uses the system paths; users fall back per file
// for the CA and as a pair for cert+key.
export function pkiFiles(pkiPath: string | null, env: { root: boolean; home: string; exists(p: string): boolean }): PkiFiles {
  const pair = (cert: string, key: string): Pick<PkiFiles, 'cert' | 'key'> => (env.exists(cert) && env.exists(key) ? { cert, key } : { cert: null, key: null });
  if (pkiPath) return { ca: join(pkiPath, 'cacert.pem'), ...pair(join(pkiPath, 'clientcert.pem'), join(pkiPath, 'clientkey.pem')) };
  if (env.root) return { ca: SYSTEM_CA, ...pair(SYSTEM_CERT, SYSTEM_KEY) };
  const dir = join(env.home, '.pki', 'libvirt');
  const ca = env.exists(join(dir, 'cacert.pem')) ? join(dir, 'cacert.pem') : SYSTEM_CA;
  const user = pair(join(dir, 'clientcert.pem'), join(dir, 'clientkey.pem'));
  return { ca, ...(user.cert ? user : pair(SYSTEM_CERT, SYSTEM_KEY)) };
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw VG_ERR_USAGE(`Cannot read ${what} '${file}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function connectFailed(where: string, err: Error): VgError {
  const e = VG_ERR_CLIENT_CLOSED(`Failed to connect to '${where}': ${(err as NodeJS.ErrnoException).code ?? err.message}`);
  e.cause = err;
  return e;
}

// libvirtd writes exactly one byte 0x01 inside TLS once it accepted our certificate (virnetserverclient.c:284-310);
// a server that rejects us just closes. Bytes after it belong to the RPC stream and are pushed back.
export function awaitTlsConfirmation(sock: Duplex): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      sock.off('readable', onReadable);
      sock.off('end', onEnd);
      sock.off('close', onEnd);
      sock.off('error', onError);
    };
    const fail = (err: VgError): void => {
      cleanup();
      sock.destroy();
      reject(err);
    };
    const onReadable = (): void => {
      const chunk = sock.read() as Buffer | null;
      if (chunk === null || chunk.length === 0) return;
      if (chunk[0] !== 0x01) return fail(VG_ERR_CLIENT_CLOSED('server verification (of our certificate or IP address) failed'));
      cleanup();
      if (chunk.length > 1) sock.unshift(chunk.subarray(1));
      resolve();
    };
    const onEnd = (): void => fail(VG_ERR_CLIENT_CLOSED('Unable to read TLS confirmation: connection closed by server'));
    const onError = (err: Error): void => {
      const e = VG_ERR_CLIENT_CLOSED(`Unable to read TLS confirmation: ${err.message}`);
      e.cause = err;
      fail(e);
    };
    sock.on('readable', onReadable);
    sock.once('end', onEnd);
    sock.once('close', onEnd);
    sock.once('error', onError);
  });
}

async function tlsConnect(t: ConnectTarget): Promise<tls.TLSSocket> {
  const files = pkiFiles(t.pkiPath, { root: process.geteuid?.() === 0, home: homedir(), exists: existsSync });
  const ca = readPem(files.ca, 'CA certificate');
  const cert = files.cert ? readPem(files.cert, 'client certificate') : undefined;
  const key = files.key ? readPem(files.key, 'client key') : undefined;
  return new Promise((resolve, reject) => {
    // No SNI, as libvirt; node still checks the certificate against `host` (names and IP SANs).
    const sock = tls.connect({ host: t.host!, port: t.port!, ca, cert, key, rejectUnauthorized: !t.noVerify, servername: '' });
    const onError = (err: Error): void => reject(connectFailed(`${t.host}:${t.port}`, err));
    sock.once('error', onError);
    sock.once('secureConnect', () => {
      sock.off('error', onError);
      resolve(sock);
    });
  });
}

function plainConnect(t: ConnectTarget): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const where = t.transport === 'unix' ? t.socketPath! : `${t.host}:${t.port}`;
    const sock = t.transport === 'unix' ? net.connect({ path: t.socketPath! }) : net.connect({ host: t.host!, port: t.port! });
    const onError = (err: Error): void => reject(connectFailed(where, err));
    sock.once('error', onError);
    sock.once('connect', () => {
      sock.off('error', onError);
      resolve(sock);
    });
  });
}

// Resolves once RPC may start. The caller owns the socket afterwards; on timeout a late socket is destroyed.
export function openTransport(t: ConnectTarget, timeoutMs = 0): Promise<Duplex> {
  const opening: Promise<Duplex> = t.transport === 'tls' ? tlsConnect(t).then((s) => awaitTlsConfirmation(s).then(() => s)) : plainConnect(t);
  if (timeoutMs <= 0) return opening;
  return new Promise((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      reject(VG_ERR_CLIENT_TIMEOUT(timeoutMs));
    }, timeoutMs);
    opening.then(
      (s) => {
        clearTimeout(timer);
        if (timedOut) s.destroy();
        else resolve(s);
      },
      (err) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
