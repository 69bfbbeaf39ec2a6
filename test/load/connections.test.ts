// SPDX-License-Identifier: Apache-2.0
// Item 3 of "bounded under abuse", small: connection limits. One overall maxClients across every listener, a cap per
// local uid on the unix sockets and per address on TCP and TLS, a per-source share of the unauthenticated slots, an
// openTimeout for connections that never open, and refusals logged (rate-limited, with a count of the rest).
import { Tool } from '../../bench/rows/abuse';
import { VirtgateClient } from '../../src/client';
import { ATTACKER_NEEDS, type LoadDaemon, attackers, expectLatencyFlat, sleep, startLoadDaemon, startProbe, stopToolsAfterEach } from './lib';
import { describeIf } from '../helpers/skip';

const users = attackers();
let d: LoadDaemon;
stopToolsAfterEach();

const CONF = 'maxClients = 50\nmaxClientsPerUid = 20\nmaxClientsPerSource = 10\nmaxAnonymousClients = 6\nmaxAnonymousClientsPerSource = 2\nopenTimeout = 3\n';

beforeAll(async () => {
  if (users) d = await startLoadDaemon(CONF, { tcp: true });
}, 60000);
afterAll(async () => d?.vg.stop());

async function getInfoWorks(uri: string): Promise<void> {
  const c = await VirtgateClient.connect(uri);
  try {
    const [dom] = await c.listAllDomains();
    expect((await c.getInfo(dom)).state).toBeGreaterThan(0);
  } finally {
    await c.close();
  }
}

describeIf(ATTACKER_NEEDS, 'connection limits', () => {
  test('one uid gets maxClientsPerUid; others still get in; idle never-opened connections go at openTimeout; refusals logged with a count', async () => {
    const [, u2] = users!;
    const from = d.vg.output().length;
    const probe = startProbe(d.vg.uri);
    await probe.ready();
    const idle = new Tool({ mode: 'conns', to: d.ro, count: 30, batch: 30 }, u2);
    expect(await idle.ready()).toMatchObject({ open: 20, closed: 10 });
    await getInfoWorks(d.vg.uri); // root, read-write: not locked out
    await getInfoWorks(d.vg.uriRo); // root on the read-only socket too
    const p = await probe.stop();
    expect(p.failures).toBe(0);
    await expectLatencyFlat(p, d.vg.uri);
    // Never opened: dropped after openTimeout (3 s), and the same uid may connect again.
    await idle.until((m) => Number(m.closed) === 30, 10000);
    const again = new Tool({ mode: 'conns', to: d.ro, count: 5 }, u2);
    expect(await again.ready()).toMatchObject({ open: 5 });
    await again.stop();
    await idle.stop();
    await d.vg.waitFor(/refused 9 more connection\(s\) for maxClientsPerUid/, 10000, from);
    const log = d.vg.output().slice(from);
    expect(log).toMatch(new RegExp(`refusing connection from unix uid ${u2.uid}: uid ${u2.uid} has 20 connections already \\(maxClientsPerUid\\)`));
    expect(log.match(/refusing connection from .*maxClientsPerUid/g)).toHaveLength(1); // one line, then a count
    expect(log).toMatch(/no CONNECT_OPEN within 3 s \(openTimeout\)/);
  }, 60000);

  test('maxClients is one limit across the read-only, read-write and TCP listeners', async () => {
    const [u1, u2] = users!;
    const from = d.vg.output().length;
    const a = new Tool({ mode: 'conns', to: d.ro, count: 20, open: true }, u1); // opened: openTimeout does not apply
    const b = new Tool({ mode: 'conns', to: d.rw, count: 20, open: true });
    expect(await a.ready()).toMatchObject({ open: 20 });
    expect(await b.ready()).toMatchObject({ open: 20 });
    const c = new Tool({ mode: 'conns', to: d.ro, count: 20, open: true }, u2);
    expect(await c.ready()).toMatchObject({ open: 10, closed: 10 }); // 50 in all
    const tcp = new Tool({ mode: 'conns', to: { host: '127.0.0.1', port: d.vg.tcpPort! }, count: 1 });
    expect(await tcp.ready()).toMatchObject({ open: 0, closed: 1 });
    for (const t of [a, b, c, tcp]) await t.stop();
    expect(d.vg.output().slice(from)).toMatch(/refusing connection from .*: 50 connections already \(maxClients\)/);
    await sleep(300);
    await getInfoWorks(d.vg.uri); // the slots come back
  }, 60000);

  test('TCP: maxClientsPerSource per address; TLS: idle connections from one address take at most maxAnonymousClientsPerSource', async () => {
    const from = d.vg.output().length;
    const tcp = new Tool({ mode: 'conns', to: { host: '127.0.0.1', port: d.vg.tcpPort!, localAddress: '127.0.0.3' }, count: 15, batch: 15 });
    expect(await tcp.ready()).toMatchObject({ open: 10, closed: 5 });
    const tlsPort = Number(/listening on tls [^\s]+:(\d+)/.exec(d.vg.output())![1]);
    const idle = new Tool({ mode: 'conns', to: { host: '127.0.0.1', port: tlsPort, localAddress: '127.0.0.2' }, count: 10, batch: 10 });
    expect(await idle.ready()).toMatchObject({ open: 2, closed: 8 });
    // A TLS client from another address still gets a slot, its handshake and GetInfo.
    await getInfoWorks(`test+tls://127.0.0.1:${tlsPort}/default?pkipath=${d.vg.home}/pki/admin`);
    await tcp.stop();
    await idle.stop();
    const log = d.vg.output().slice(from);
    expect(log).toMatch(/refusing connection from 127\.0\.0\.3:\d+: 127\.0\.0\.3 has 10 connections already \(maxClientsPerSource\)/);
    expect(log).toMatch(/refusing connection from 127\.0\.0\.2:\d+: 127\.0\.0\.2 has 2 unauthenticated connections already \(maxAnonymousClientsPerSource\)/);
  }, 60000);

  test('TLS: an authenticated connection no longer counts as unauthenticated (more than maxAnonymousClientsPerSource clients from one address)', async () => {
    const from = d.vg.output().length;
    const tlsPort = Number(/listening on tls [^\s]+:(\d+)/.exec(d.vg.output())![1]);
    const { VirtgateClient } = await import('../../src/client');
    const uri = `test+tls://127.0.0.1:${tlsPort}/default?pkipath=${d.vg.home}/pki/admin`;
    const clients = [];
    try {
      // One after another, each authenticated before the next: 5 from 127.0.0.1 where at most 2 may be unauthenticated.
      for (let i = 0; i < 5; i++) {
        const c = await VirtgateClient.connect(uri);
        clients.push(c);
        expect(await c.getHostname()).toBeTruthy();
      }
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
    expect(d.vg.output().slice(from)).not.toMatch(/unauthenticated connections already/);
  }, 60000);
});
