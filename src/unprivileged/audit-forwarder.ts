// SPDX-License-Identifier: Apache-2.0
// The front end's audit forwarder: RFC 5425 (syslog over TLS, mutual x509) to a central collector, fed by the
// store-and-forward reader of src/audit/forward.ts; unacknowledged bytes come from the kernel (SIOCOUTQ).
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { AuditForwarder, type ForwardConnection, type ForwarderStatus } from '../audit/forward';
import { type Config, parseHostPort } from '../common/config';
import { koffi } from '../sandbox/libc';

const SIOCOUTQ = 0x5411; // = TIOCOUTQ: bytes in the socket's send queue not yet acknowledged by the peer
const CONNECT_TIMEOUT_MS = 10_000;

type Ioctl = (fd: number, req: number, out: Int32Array) => number;
let ioctlFn: Ioctl | null | undefined;

// Bytes of fd's TCP send queue the peer has not acknowledged; null when the kernel cannot say.
export function tcpUnacked(fd: number): number | null {
  try {
    ioctlFn ??= koffi().load('libc.so.6').func('int ioctl(int fd, unsigned long req, _Out_ int *out)') as Ioctl;
  } catch {
    ioctlFn = null;
  }
  if (!ioctlFn || fd < 0) return null;
  const out = new Int32Array(1);
  return ioctlFn(fd, SIOCOUTQ, out) === 0 ? out[0] : null;
}

export interface ForwardTlsOptions {
  host: string;
  port: number;
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
  name: string; // the name the collector's certificate must carry
}

export function connectTls(o: ForwardTlsOptions): Promise<ForwardConnection> {
  return new Promise((resolve, reject) => {
    const raw = net.connect({ host: o.host, port: o.port });
    const isIp = net.isIP(o.name) !== 0;
    const s = tls.connect({
      socket: raw,
      ca: o.ca,
      cert: o.cert,
      key: o.key,
      servername: isIp ? undefined : o.name,
      minVersion: 'TLSv1.2',
      checkServerIdentity: (_host, cert) => tls.checkServerIdentity(o.name, cert),
    });
    const timer = setTimeout(() => s.destroy(new Error(`TLS connection to ${o.host}:${o.port} timed out`)), CONNECT_TIMEOUT_MS);
    let settled = false;
    let endErr: Error | null = null;
    const closed = new Promise<Error | null>((res) => s.once('close', () => res(endErr)));
    s.on('error', (e) => {
      endErr ??= e;
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        reject(e);
      }
    });
    s.once('secureConnect', () => {
      settled = true;
      clearTimeout(timer);
      raw.setKeepAlive(true, 10_000);
      // Anything the collector sends is ignored (RFC 5425 has no acknowledgements); reading keeps the FIN visible.
      s.on('data', () => undefined);
      const fd = (raw as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
      resolve({
        write: (buf) =>
          new Promise<void>((res, rej) => {
            if (s.destroyed || !s.writable) return rej(endErr ?? new Error('connection closed'));
            // Accepted into the stream: go on at once (a later failure ends the connection, and `closed` says so);
            // over the high-water mark: wait for drain (backpressure).
            if (s.write(buf)) res();
            else s.once('drain', () => res());
          }),
        unacked: () => {
          const q = tcpUnacked(fd);
          return q === null ? null : q + s.writableLength + raw.writableLength;
        },
        closed,
        destroy: () => {
          s.end(); // close_notify, so the collector sees a clean end
          setTimeout(() => s.destroy(), 1000).unref();
        },
      });
    });
  });
}

// The forwarder for a resolved config, or null when `auditForward` is off.
export function createAuditForwarder(
  c: Readonly<Config>,
  durableSeq: () => number,
  log: (m: string) => void,
): { forwarder: AuditForwarder; target: string } | null {
  if (!c.auditForward) return null;
  const { host, port } = parseHostPort(c.auditForward, 'auditForward');
  const read = (f: string): Buffer => fs.readFileSync(f);
  const opts = (): ForwardTlsOptions => ({
    host,
    port,
    ca: read(c.auditForwardCa),
    cert: read(c.auditForwardCert),
    key: read(c.auditForwardKey),
    name: c.auditForwardName || host,
  });
  const forwarder = new AuditForwarder({
    file: c.auditLog,
    cursorFile: c.auditForwardCursor || undefined,
    connect: () => connectTls(opts()), // files re-read at each connection: renewed certificates take effect
    durableSeq,
    log,
  });
  return { forwarder, target: `${host}:${port} (collector name ${c.auditForwardName || host}, client cert ${path.basename(c.auditForwardCert)})` };
}

export type { ForwarderStatus };
