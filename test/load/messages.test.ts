// SPDX-License-Identifier: Apache-2.0
// Item 1 of "bounded under abuse", small: unfinished large messages. A connection that has not opened (and one on the
// read-only socket) may send only a small message, so its 31 MiB claims are refused at the length word; what an
// authorized client held in large unfinished messages goes back to the system when it closes.
import { RssSampler, Tool } from '../../bench/rows/abuse';
import { ATTACKER_NEEDS, type LoadDaemon, MiB, attackers, expectLatencyFlat, startLoadDaemon, startProbe, stopToolsAfterEach } from './lib';
import { describeIf } from '../helpers/skip';

const users = attackers();
let d: LoadDaemon;
stopToolsAfterEach();

beforeAll(async () => {
  if (users) d = await startLoadDaemon('');
}, 60000);
afterAll(async () => d?.vg.stop());

describeIf(ATTACKER_NEEDS, 'unfinished large messages', () => {
  test('before open and on the read-only socket they are refused at the length word; RSS flat; others keep their latency', async () => {
    const [u1, u2] = users!; // u1 may read (viewer), u2 has no rights
    const probe = startProbe(d.vg.uri);
    await probe.ready();
    const rss = new RssSampler(d.front);
    const base = rss.now();
    try {
      // 12 connections of an unprivileged user claim 31 MiB before CONNECT_OPEN and push 8 MiB each; a user with no
      // rights (its CONNECT_OPEN is refused) tries the same after its open.
      const pre = new Tool({ mode: 'conns', to: d.ro, count: 12, claim: 32 * MiB - 8, bytes: 8 * MiB, batch: 12 }, u1);
      const noRights = new Tool({ mode: 'conns', to: d.ro, count: 4, open: true, claim: 32 * MiB - 8, bytes: 8 * MiB }, u2);
      expect((await pre.ready(30000)).closed).toBe(12);
      expect((await noRights.ready(30000)).closed).toBe(4);
      await pre.stop();
      await noRights.stop();
      // Opened read-only: 2 MiB is over maxReadOnlyMessageBytes (1 MiB), 900 KiB is within it (held, unfinished).
      const over = new Tool({ mode: 'conns', to: d.ro, count: 4, open: true, claim: 2 * MiB, bytes: MiB }, u1);
      const within = new Tool({ mode: 'conns', to: d.ro, count: 4, open: true, claim: 1000 * 1024, bytes: 900 * 1024 }, u1);
      expect((await over.ready(30000)).closed).toBe(4);
      expect((await within.ready(30000)).open).toBe(4);
      await over.stop();
      await within.stop();
      const p = await probe.stop();
      const grew = (rss.peakKiB - base) / 1024;
      process.stdout.write(
        `load/messages: RSS ${Math.round(base / 1024)} MiB, peak +${grew.toFixed(1)} MiB; probe p99 ${Number(p.p99Ms).toFixed(2)} ms over ${p.calls} calls\n`,
      );
      expect(grew).toBeLessThan(40); // 12 × 8 MiB would be 96 MiB if they were buffered
      expect(p.failures).toBe(0);
      await expectLatencyFlat(p, d.vg.uri);
      const log = d.vg.output().slice(d.logFrom);
      expect(log).toMatch(/closed: framing: .*33554424.*65536/);
      expect(log).toMatch(/closed: framing: .*2097152.*1048576/);
    } finally {
      rss.stop();
    }
  }, 60000);

  test("an authorized client's unfinished 24 MiB messages: others keep their latency, memory goes back when it closes", async () => {
    const rss = new RssSampler(d.front);
    const base = rss.now();
    const probe = startProbe(d.vg.uri);
    await probe.ready();
    try {
      const big = new Tool({ mode: 'conns', to: d.rw, count: 8, open: true, claim: 31 * MiB, bytes: 24 * MiB, batch: 8 });
      expect((await big.ready(30000)).open).toBe(8); // allowed: root, read-write, opened
      // Taking the 192 MiB in is paced (InputTurns): a small call never waits behind a whole burst of large input.
      const p = await probe.stop();
      process.stdout.write(`load/messages: authorized 8 × 24 MiB: probe p99 ${Number(p.p99Ms).toFixed(2)} ms over ${p.calls} calls\n`);
      expect(p.failures).toBe(0);
      await expectLatencyFlat(p, d.vg.uri);
      await new Promise((r) => setTimeout(r, 500));
      const peak = rss.now();
      await big.stop();
      // Memory returned: the front end is back near where it started within a few seconds, with nothing else going on.
      const deadline = Date.now() + 10000;
      let now = rss.now();
      while (now > base + 32 * 1024 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 250));
        now = rss.now();
      }
      process.stdout.write(
        `load/messages: authorized 8 × 24 MiB: RSS ${Math.round(base / 1024)} -> ${Math.round(peak / 1024)} -> ${Math.round(now / 1024)} MiB after close\n`,
      );
      expect(peak - base).toBeGreaterThan(150 * 1024); // the bytes were really held (the test measures something)
      expect(now - base).toBeLessThan(32 * 1024);
    } finally {
      rss.stop();
    }
  }, 60000);
});

describe('complete large messages', () => {
  // The largest string a call carries is 4 MiB (REMOTE_STRING_MAX) and domain XML is capped far lower, so a 3 MiB
  // definition is refused by its handler: that answer proves the whole message arrived, was paced and decoded.
  test('several clients send 3 MiB calls at once: each is answered by its handler, and the connections stay usable', async () => {
    const own = users ? d : await startLoadDaemon('');
    const { VirtgateClient } = await import('../../src/client');
    const pad = 'x'.repeat(3 * MiB);
    const clients = await Promise.all([0, 1, 2, 3].map(() => VirtgateClient.connect(own.vg.uri)));
    try {
      const answers = await Promise.all(
        clients.map((c, i) =>
          c.defineXml(`<domain type='test'><name>big${i}</name><description>${pad}</description><memory>1024</memory></domain>`).then(
            () => 'defined',
            (e: Error) => e.message,
          ),
        ),
      );
      expect(answers).toEqual(Array(4).fill('invalid argument: domain XML larger than 262144 bytes'));
      for (const c of clients) expect(await c.getHostname()).toBeTruthy();
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      if (!users) await own.vg.stop();
    }
  }, 60000);
});
