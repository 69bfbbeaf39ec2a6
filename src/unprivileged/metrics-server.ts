// SPDX-License-Identifier: Apache-2.0
// The metrics listener: plain HTTP, GET /metrics only, on a unix socket (0600 by default) and optionally loopback TCP.
// Apart from the libvirt listeners: a scraper never reaches the RPC code, and a client never reaches this one.
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { type Config, parseHostPort } from '../common/config';
import { VG_ERR_LISTEN } from '../common/errors';
import type { Metrics } from './metrics';
import { removeStaleSocket } from './unix-listen';

const MAX_HEADER_BYTES = 8 * 1024; // a scrape request is a request line and a few headers
const REQUEST_TIMEOUT_MS = 10_000; // whole request, headers included: a slow writer cannot hold a connection
const KEEPALIVE_MS = 30_000; // Prometheus reuses its connection between scrapes
const MAX_CONNECTIONS = 32; // per listener; beyond it new connections are closed at once

export interface MetricsServerOptions {
  config: Readonly<Config>;
  metrics: Metrics;
  log: (msg: string) => void;
}

export class MetricsServer {
  readonly #o: MetricsServerOptions;
  readonly #servers: http.Server[] = [];
  #busy = 0;
  addresses: string[] = [];

  constructor(o: MetricsServerOptions) {
    this.#o = o;
  }

  async start(): Promise<void> {
    const c = this.#o.config;
    const p = c.metricsSocket;
    fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o755 });
    await removeStaleSocket(p);
    const unix = this.#server();
    // Bound under umask 0177 (the bind is synchronous, the umask restored at once), then chmod: no one else can connect
    // between bind and chmod.
    await this.#listen(unix, { path: p }, `unix ${p}`, 0o177);
    fs.chmodSync(p, c.metricsSocketMode);
    this.addresses.push(p);
    if (c.metricsListen) {
      const { host, port } = parseHostPort(c.metricsListen, 'metricsListen');
      const tcp = this.#server();
      await this.#listen(tcp, { host, port }, `tcp ${c.metricsListen}`);
      const a = tcp.address() as net.AddressInfo;
      this.addresses.push(`${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`);
    }
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.#servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeAllConnections();
          }),
      ),
    );
    this.#servers.length = 0;
  }

  #server(): http.Server {
    const s = http.createServer({ maxHeaderSize: MAX_HEADER_BYTES, requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS }, (req, res) =>
      this.#handle(req, res),
    );
    s.keepAliveTimeout = KEEPALIVE_MS;
    s.maxConnections = MAX_CONNECTIONS;
    s.maxRequestsPerSocket = 1000;
    s.on('clientError', (_e, sock: net.Socket) => {
      if (sock.writable) sock.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else sock.destroy();
    });
    this.#servers.push(s);
    return s;
  }

  #listen(s: http.Server, where: net.ListenOptions, what: string, umask?: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      const old = umask === undefined ? null : process.umask(umask);
      try {
        s.listen(where, () => {
          s.off('error', reject);
          s.on('error', (e) => this.#o.log(`metrics listener ${what}: ${e.message}`));
          resolve();
        });
      } finally {
        if (old !== null) process.umask(old);
      }
    }).catch((e: NodeJS.ErrnoException) => {
      throw Object.assign(VG_ERR_LISTEN('metrics', what.replace(/^\w+ /, ''), e.code === 'EADDRINUSE' ? 'address in use' : e.message), { errno: e.code });
    });
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = req.url ?? '';
    const pathname = url.split('?', 1)[0];
    if (pathname !== '/metrics') return reply(res, 404, 'not found: the only resource is /metrics\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(res, 405, 'only GET\n', { Allow: 'GET, HEAD' });
    // A body on a scrape is no scrape; not reading it must not keep the connection for the next request.
    if (req.headers['transfer-encoding'] || Number(req.headers['content-length'] ?? 0) > 0)
      return reply(res, 413, 'no request body\n', { Connection: 'close' });
    if (this.#busy >= this.#o.config.metricsMaxScrapes) return reply(res, 503, 'too many scrapes at once\n', { 'Retry-After': '1' });
    this.#busy++;
    this.#o.metrics
      .render()
      .then(
        (text) => {
          res.writeHead(200, { 'Content-Type': this.#o.metrics.contentType, 'Cache-Control': 'no-store' });
          res.end(req.method === 'HEAD' ? undefined : text);
        },
        (e: Error) => {
          this.#o.log(`metrics: rendering failed: ${e.message}`);
          reply(res, 500, 'rendering failed\n');
        },
      )
      .finally(() => this.#busy--);
  }
}

function reply(res: http.ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}
