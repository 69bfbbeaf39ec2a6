// SPDX-License-Identifier: Apache-2.0
// The store-and-forward reader: reads the log files (rotation included), never past the durable seq, keeps a cursor,
// and re-sends, flagged, what a lost connection may have dropped.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AuditAppender } from '../../../src/audit/appender';
import { verifyCollectorLines } from '../../../src/audit/central';
import { AuditForwarder, type ForwardConnection, LogReader, readCursor } from '../../../src/audit/forward';
import { FrameDecoder, parseMessage } from '../../../src/audit/forward-format';
import { tempDir } from './helpers';

// A collector that keeps every message, whose kernel acknowledges (or not) as the test says.
class FakeCollector {
  received: string[] = [];
  acking = true;
  connects = 0;
  refuse = false;
  #end: ((e: Error | null) => void) | null = null;

  connect = async (): Promise<ForwardConnection> => {
    if (this.refuse) throw new Error('ECONNREFUSED');
    this.connects += 1;
    const dec = new FrameDecoder();
    let alive = true;
    let unacked = 0;
    const closed = new Promise<Error | null>((r) => (this.#end = r));
    return {
      write: async (buf) => {
        if (!alive) throw new Error('EPIPE');
        // While not acking, the bytes sit in our send queue: a loss drops them.
        if (this.acking) this.received.push(...dec.push(buf));
        else unacked += buf.length;
      },
      unacked: () => (this.acking ? 0 : unacked),
      closed,
      destroy: () => {
        alive = false;
        this.#end?.(null);
      },
    };
  };

  drop(): void {
    this.#end?.(new Error('ECONNRESET'));
  }
}

const until = async (cond: () => boolean, ms = 10_000): Promise<void> => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('audit forwarder (store and forward)', () => {
  let dir: string;
  let app: AuditAppender;
  let file: string;
  const add = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) await app.append({ kind: 'event', event: { name: 'e', detail: { i } } });
  };
  beforeEach(async () => {
    dir = tempDir('vg-fwd-');
    file = path.join(dir, 'log', 'audit.log');
    app = await open();
  });
  const open = (maxBytes?: number): Promise<AuditAppender> =>
    AuditAppender.open({ file, keyFile: path.join(dir, 'keys', 'audit.key'), verifyKeyFile: path.join(dir, 'lib', 'v.key'), maxBytes, host: 'h1' });
  afterEach(async () => {
    await app.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('LogReader follows rotation in seq order', async () => {
    await app.close();
    app = await open(3000);
    await add(40);
    expect(fs.readdirSync(path.dirname(file)).filter((f) => /\.\d{12}$/.test(f)).length).toBeGreaterThan(2);
    const r = new LogReader(file);
    await r.seek(5);
    const seqs: number[] = [];
    for (let x = await r.next(); x; x = await r.next()) seqs.push(x.rec.seq);
    await add(10); // rotates again while the reader sits at the end
    for (let x = await r.next(); x; x = await r.next()) seqs.push(x.rec.seq);
    await r.close();
    const last = app.stats().seq; // rotation adds its own records
    expect(last).toBeGreaterThan(50);
    expect(seqs).toEqual(Array.from({ length: last - 4 }, (_, i) => i + 5));
  });

  const forwarder = (c: FakeCollector, durable = () => app.stats().seq): AuditForwarder =>
    new AuditForwarder({ file, connect: c.connect, durableSeq: durable, graceMs: 0, pollMs: 10, backoffMs: [10, 50], log: () => undefined });

  test('forwards everything in order, advances the cursor, never reads past the durable seq', async () => {
    await add(30);
    const c = new FakeCollector();
    let limit = 9;
    const f = forwarder(c, () => limit);
    f.start();
    await until(() => f.status().ackedSeq === 9);
    await new Promise((r) => setTimeout(r, 100));
    expect(c.received).toHaveLength(10); // seq 10.. is on disk but not durable as far as the forwarder knows
    limit = app.stats().seq;
    await add(5);
    limit = app.stats().seq;
    await until(() => f.status().ackedSeq === limit);
    expect(f.status()).toMatchObject({ connected: true, lagRecords: 0, resent: 0 });
    await f.stop();
    const seqs = c.received.map((m) => parseMessage(m)!.seq);
    expect(seqs).toEqual(Array.from({ length: limit + 1 }, (_, i) => i));
    expect(c.received.every((m) => !parseMessage(m)!.resent)).toBe(true);
    expect(readCursor(`${file}.forward-cursor`)!.acked).toBe(limit);
  });

  test('a lost connection re-sends what was not acknowledged, flagged; central verify passes', async () => {
    await add(10);
    const c = new FakeCollector();
    const f = forwarder(c);
    f.start();
    await until(() => f.status().ackedSeq === 9);
    c.acking = false; // the next records leave but are never acknowledged ...
    await add(10);
    await until(() => f.status().sentSeq === 19);
    c.refuse = true;
    c.drop(); // ... and the connection dies with them
    await until(() => !f.status().connected);
    await add(5); // written while the collector is away: the log keeps them
    expect(f.status().lagRecords).toBe(15);
    c.refuse = false;
    c.acking = true;
    await until(() => f.status().ackedSeq === 24);
    await f.stop();
    const got = c.received.map((m) => parseMessage(m)!);
    expect(got.map((m) => m.seq)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect(got.filter((m) => m.resent).map((m) => m.seq)).toEqual(Array.from({ length: 10 }, (_, i) => i + 10));
    expect(f.status().resent).toBe(10);
    expect(verifyCollectorLines(c.received).problems).toEqual([]);
  });

  test('after a restart it resumes from the cursor; records possibly sent before go out flagged', async () => {
    await add(10);
    const c = new FakeCollector();
    const f1 = forwarder(c);
    f1.start();
    await until(() => f1.status().ackedSeq === 9);
    c.acking = false;
    await add(5);
    await until(() => f1.status().sentSeq === 14);
    await f1.stop(); // seqs 10..14 were sent, never acknowledged
    expect(readCursor(`${file}.forward-cursor`)).toMatchObject({ acked: 9 });
    c.acking = true;
    const n = c.received.length;
    const f2 = forwarder(c);
    f2.start();
    await add(3);
    await until(() => f2.status().ackedSeq === 17);
    await f2.stop();
    const again = c.received.slice(n).map((m) => parseMessage(m)!);
    expect(again.map((m) => m.seq)).toEqual([10, 11, 12, 13, 14, 15, 16, 17]);
    expect(again.map((m) => m.resent)).toEqual([true, true, true, true, true, true, true, true]); // within the reserved range
    expect(verifyCollectorLines(c.received).problems).toEqual([]);
  });

  test('a record past the durable seq is read again once durable (a failed batch may replace it)', async () => {
    await add(5);
    await app.close();
    const size = fs.statSync(file).size;
    const fake = (v: string): string =>
      JSON.stringify({ v: 1, seq: 5, ts: new Date().toISOString(), host: 'h1', kind: 'event', event: { name: v }, key: 'k', prev: 'p', mac: 'm' });
    fs.appendFileSync(file, fake('cut-off') + '\n'); // written, never synced: the appender cuts it off
    const c = new FakeCollector();
    let durable = 4;
    const f = forwarder(c, () => durable);
    f.start();
    await until(() => f.status().ackedSeq === 4);
    await new Promise((r) => setTimeout(r, 100)); // the forwarder has seen seq 5 on disk by now
    fs.truncateSync(file, size);
    fs.appendFileSync(file, fake('durable') + '\n');
    durable = 5;
    await until(() => f.status().ackedSeq === 5);
    await f.stop();
    const last = parseMessage(c.received[c.received.length - 1])!;
    expect(last.seq).toBe(5);
    expect(last.msg).toContain('"name":"durable"');
    expect(c.received.join('\n')).not.toContain('cut-off');
    fs.truncateSync(file, size); // the fake record goes again before the appender opens the log
    app = await open(); // afterEach closes it
  });

  test('a collector that never answers holds no writes and bounded memory', async () => {
    const c = new FakeCollector();
    c.refuse = true;
    const f = forwarder(c);
    f.start();
    await add(50); // completes although nothing can be forwarded
    expect(f.status()).toMatchObject({ connected: false, sentSeq: -1, lagRecords: 50 });
    expect(f.status().lastError).toMatch(/ECONNREFUSED/);
    await f.stop();
  });
});
