// SPDX-License-Identifier: Apache-2.0
// tlsHandshakeTimeout on an injected clock: the TLS listener's deadline is armed per connection with the configured
// length, fires only for a handshake still unfinished, and is cleared by a finished or a failed one. Real sockets and
// certificates; only the timer is ours, so nothing waits on the wall clock. (The started daemon: integration/tls.test.ts.)
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { resolveConfig } from '../../../src/common/config';
import { initCa, issueClient, issueServer } from '../../../src/pki/pki';
import { type HandshakeTimers, createTlsServer } from '../../../src/unprivileged/tls';

interface Deadline {
  fn: () => void;
  ms: number;
  cleared: boolean;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-tls-deadline-'));
const pki = path.join(dir, 'pki');
let server: tls.Server;
let port: number;
const deadlines: Deadline[] = [];
const logs: string[] = [];
const clients: string[] = [];
const timers: HandshakeTimers = {
  setTimeout: (fn, ms) => {
    const d = { fn, ms, cleared: false };
    deadlines.push(d);
    return d;
  },
  clearTimeout: (h) => void ((h as Deadline).cleared = true),
};

const until = async (cond: () => boolean, what: string): Promise<void> => {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!cond()) throw new Error(`never: ${what}`);
};
const closed = (s: net.Socket): Promise<void> => new Promise((r) => (s.destroyed ? r() : s.once('close', () => r())));

beforeAll(async () => {
  initCa({ dir: path.join(pki, 'ca'), cn: 'deadline test CA' });
  issueServer({ dir: path.join(pki, 'server'), caDir: path.join(pki, 'ca'), hosts: ['localhost'], ips: ['127.0.0.1'] });
  issueClient({ dir: path.join(pki, 'admin'), caDir: path.join(pki, 'ca'), cn: 'admin' });
  const config = resolveConfig({ home: dir, tlsHandshakeTimeout: 7 });
  server = createTlsServer({ config, log: (m) => logs.push(m), onClient: (_s, id) => clients.push(id.user), timers });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  port = (server.address() as net.AddressInfo).port;
}, 60000);
afterAll(async () => {
  await new Promise((r) => server.close(r));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a stalled handshake: the deadline is armed with tlsHandshakeTimeout (7 s), and only its expiry drops the client', async () => {
  const from = deadlines.length;
  const sock = net.connect(port, '127.0.0.1');
  sock.on('data', () => undefined);
  await until(() => deadlines.length === from + 1, 'a deadline armed');
  const d = deadlines[from];
  expect(d.ms).toBe(7000);
  await new Promise((r) => setTimeout(r, 50));
  expect(sock.destroyed).toBe(false); // nothing else closes it
  d.fn(); // the 7 s are up
  await closed(sock);
  expect(logs.filter((l) => /TLS handshake not finished in time/.test(l))).toEqual([
    expect.stringMatching(/^VG_ERR_TLS_REFUSED: .*127\.0\.0\.1:\d+: TLS handshake not finished in time$/),
  ]);
});

test('a finished handshake clears its deadline: firing it afterwards changes nothing', async () => {
  const from = deadlines.length;
  const c = tls.connect({
    port,
    host: '127.0.0.1',
    servername: 'localhost',
    ca: fs.readFileSync(path.join(pki, 'ca', 'cacert.pem')),
    cert: fs.readFileSync(path.join(pki, 'admin', 'clientcert.pem')),
    key: fs.readFileSync(path.join(pki, 'admin', 'private', 'clientkey.pem')),
  });
  const confirmation = await new Promise<Buffer>((r) => c.once('data', r));
  expect(confirmation).toEqual(Buffer.from([1])); // libvirt's "accepted" byte
  expect(clients).toContain('admin');
  const d = deadlines[from];
  expect(d.cleared).toBe(true);
  const logged = logs.length;
  d.fn();
  await new Promise((r) => setTimeout(r, 50));
  expect(c.destroyed).toBe(false);
  expect(logs.length).toBe(logged);
  c.destroy();
});

test('a failed handshake (a plaintext client) clears its deadline too: one refusal line, with the real reason', async () => {
  const from = deadlines.length;
  const logged = logs.length;
  const sock = net.connect(port, '127.0.0.1');
  sock.on('error', () => undefined);
  sock.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  await closed(sock);
  await until(() => deadlines[from]?.cleared === true, 'the deadline cleared');
  deadlines[from].fn();
  const lines = logs.slice(logged);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^VG_ERR_TLS_REFUSED: /);
  expect(lines[0]).not.toMatch(/not finished in time/);
});
