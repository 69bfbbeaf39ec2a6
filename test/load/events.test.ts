// SPDX-License-Identifier: Apache-2.0
// Item 2 of "bounded under abuse", small: event output. Read-only subscribers that stop reading are dropped once their
// queued output (counted as the memory it takes) passes maxOutputBytes, with the reason logged; the front end's RSS
// stays within the budget; a subscriber that reads gets every event; registrations per connection are capped; and a
// normal client's GetInfo p99 stays under 50 ms while the writer keeps making events.
import { RssSampler, Tool } from '../../bench/rows/abuse';
import { ATTACKER_NEEDS, type LoadDaemon, attackers, expectLatencyFlat, sleep, startLoadDaemon, startProbe, stopToolsAfterEach } from './lib';
import { describeIf } from '../helpers/skip';

const users = attackers();
let d: LoadDaemon;
stopToolsAfterEach();

beforeAll(async () => {
  if (users) d = await startLoadDaemon('maxOutputBytes = 1048576\nmaxTotalOutputBytes = 4194304\nmaxEventRegistrations = 256\n');
}, 60000);
afterAll(async () => d?.vg.stop());

describeIf(ATTACKER_NEEDS, 'event output', () => {
  test('subscribers that stop reading are dropped with the reason; RSS bounded; a reading subscriber misses nothing; p99 flat', async () => {
    const [u1] = users!;
    const probe = startProbe(d.vg.uri);
    await probe.ready();
    const rss = new RssSampler(d.front);
    const base = rss.now();
    try {
      // 6 read-only subscribers with 256 lifecycle callbacks each: one event becomes 256 frames for each of them.
      const slow = new Tool({ mode: 'subscribe', to: d.ro, count: 6, callbacks: 256, read: false }, u1);
      const fast = new Tool({ mode: 'subscribe', to: d.ro, count: 1, callbacks: 1, read: true }, u1);
      expect(await slow.ready()).toMatchObject({ open: 6, ok: 6 * 256, refused: 0 });
      await fast.ready();
      const writer = new Tool({ mode: 'writer', uri: d.vg.uri, concurrency: 3 });
      await writer.ready();
      const dropped = await slow.until((m) => Number(m.closed) === 6, 40000);
      await sleep(500);
      const w = await writer.stop();
      await sleep(500); // the last events reach the reading subscriber
      const f = await fast.stop();
      const p = await probe.stop();
      const grew = (rss.peakKiB - base) / 1024;
      process.stdout.write(
        `load/events: RSS ${Math.round(base / 1024)} MiB, peak +${grew.toFixed(1)} MiB; ${w.writes} writes in ${Number(w.seconds).toFixed(1)} s; ` +
          `reading subscriber got ${f.events} events; probe p99 ${Number(p.p99Ms).toFixed(2)} ms (max ${Number(p.maxMs).toFixed(1)}) over ${p.calls} calls\n`,
      );
      expect(dropped.closed).toBe(6);
      expect(Number(w.failures)).toBe(0);
      // Every write was one lifecycle event (suspended / resumed): the subscriber that reads got each of them.
      expect(Number(f.events)).toBe(Number(w.writes));
      expect(Number(f.closed)).toBe(0);
      expect(grew).toBeLessThan(48); // the 4 MiB output budget plus the connections and the writer's own work
      expect(p.failures).toBe(0);
      await expectLatencyFlat(p, d.vg.uri);
      const log = d.vg.output().slice(d.logFrom);
      expect(log).toMatch(/closed: not reading its replies and events: .*(maxOutputBytes|maxTotalOutputBytes)/);
    } finally {
      rss.stop();
    }
  }, 60000);

  test('registrations per connection are capped at maxEventRegistrations', async () => {
    const [u1] = users!;
    const many = new Tool({ mode: 'subscribe', to: d.ro, count: 1, callbacks: 1000, read: true }, u1);
    expect(await many.ready()).toMatchObject({ open: 1, ok: 256, refused: 744 });
    await many.stop();
    expect(d.vg.output()).not.toMatch(/TypeError|RangeError/);
  }, 30000);
});
