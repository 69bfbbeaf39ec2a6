// SPDX-License-Identifier: Apache-2.0
// PolicyRuntime with policyStore = 'postgresql' and no database answering: never open. The cache decides when present;
// without one everything is denied; status() says which source is in force.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PolicyRuntime } from '../../../src/unprivileged/policy-runtime';

// A loopback port nobody listens on: connect() is refused at once.
async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const alice = { user: 'unix:alice', tenant: 'acme', readOnly: false };
const vm = { kind: 'domain' as const, name: 'web', tenant: 'acme' };

test('database down, no cache: everything denied, status none; with a cache: the cache decides, status cache', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-pgstore-'));
  const cacheFile = path.join(dir, 'cache', 'policy.csv');
  const lines: string[] = [];
  const database = { conn: `host=127.0.0.1 port=${await deadPort()} dbname=x user=y` };
  const mk = (): PolicyRuntime =>
    new PolicyRuntime({ policyFile: path.join(dir, 'unused.csv'), log: (m) => lines.push(m), watch: false, signals: false, database, cacheFile });
  let rt = mk();
  const first = await rt.ready;
  if (first) throw new Error(lines.join('\n'));
  expect(rt.can(alice, vm, 'domain:getattr').allowed).toBe(false);
  expect(rt.can({ user: 'unix:root', tenant: '', readOnly: false }, { kind: 'connect', name: 'test' }, 'connect:getattr').allowed).toBe(false);
  expect(rt.status()).toMatchObject({ source: 'none', connected: false, lastLoad: null, rules: 0 });
  expect(rt.status().lastError).toMatch(/no usable policy cache/);
  expect(lines.join('\n')).toMatch(/policy load failed \(start\), denying everything/);
  rt.close();

  fs.mkdirSync(path.dirname(cacheFile));
  fs.writeFileSync(cacheFile, '# virtgate policy cache: the last good rows read from postgresql://y@127.0.0.1/x at 2026-01-01\ng, alice, viewer, acme\n');
  rt = mk();
  expect(await rt.ready).toBe(true);
  expect(rt.can(alice, vm, 'domain:getattr').allowed).toBe(true);
  expect(rt.can(alice, vm, 'domain:start').allowed).toBe(false);
  expect(rt.status()).toMatchObject({ source: 'cache', connected: false, lastError: null });
  expect(lines.join('\n')).toMatch(/policy loaded \(start\) from the cache .*the database is unreachable/);
  rt.close();

  // A file that is not our cache (say, a policy.csv copied there) is not taken for one.
  fs.writeFileSync(cacheFile, 'g, alice, host-admin, *\n');
  rt = mk();
  expect(await rt.ready).toBe(false);
  expect(rt.can(alice, vm, 'domain:getattr').allowed).toBe(false);
  rt.close();
  fs.rmSync(dir, { recursive: true });
}, 30_000);

test('a database that accepts and never answers: the start gives up after the connect timeout and takes the cache', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-pgstore-'));
  const cacheFile = path.join(dir, 'policy.csv');
  fs.writeFileSync(cacheFile, '# virtgate policy cache: the last good rows read from postgresql://y@127.0.0.1/x at 2026-01-01\ng, alice, viewer, acme\n');
  const held: net.Socket[] = [];
  const srv = net.createServer((s) => held.push(s)); // a blackhole: TCP accepted, no protocol byte ever
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  const lines: string[] = [];
  const rt = new PolicyRuntime({
    policyFile: path.join(dir, 'unused.csv'),
    log: (m) => lines.push(m),
    watch: false,
    signals: false,
    database: { conn: `host=127.0.0.1 port=${port} dbname=x user=y` },
    cacheFile,
  });
  try {
    expect(rt.can(alice, vm, 'domain:getattr').allowed).toBe(false); // nothing loaded yet: deny
    expect(await rt.ready).toBe(true);
    expect(rt.status().source).toBe('cache');
    expect(rt.can(alice, vm, 'domain:getattr').allowed).toBe(true);
    expect(lines.join('\n')).toMatch(/unreachable \(start\): .*timeout/i);
  } finally {
    rt.close();
    for (const s of held) s.destroy();
    srv.close();
    fs.rmSync(dir, { recursive: true });
  }
}, 30_000);
