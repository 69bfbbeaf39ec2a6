// SPDX-License-Identifier: Apache-2.0
// The front end's helper client while the helper is away: it says it is waiting (at once, then every waitLogMs), and
// it connects as soon as a helper's socket appears, not when its backoff next fires (the backoff here is 20 s, so
// only the directory watch can bring it back within the test's bounds; the control without the watch shows that).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runHelper } from '../../src/privileged/helper';
import { HelperClient } from '../../src/unprivileged/helper-client';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function helperIn(dir: string): Promise<() => Promise<void>> {
  return runHelper({
    socket: path.join(dir, 'run', 'helper-sock'),
    stateDir: path.join(dir, 'lib'),
    runtimeDir: path.join(dir, 'run', 'helper'),
    allowUids: [process.getuid?.() ?? 0],
    socketMode: 0o600,
    socketGroup: null,
    driver: 'test',
    sandbox: false,
    journalMaxBytes: 0,
    journal: path.join(dir, 'lib', 'helper-journal.log'),
  });
}

async function readyWithin(c: HelperClient, ms: number): Promise<number | null> {
  const t0 = Date.now();
  try {
    await c.waitReady(ms);
    return Date.now() - t0;
  } catch {
    return null;
  }
}

describe('helper client while the helper is away', () => {
  let dir: string;
  const stops: (() => Promise<void>)[] = [];
  const clients: HelperClient[] = [];
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-reconnect-'));
    fs.mkdirSync(path.join(dir, 'run'));
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    for (const s of stops.splice(0)) await s().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const client = (watch: boolean, logs: string[]): HelperClient => {
    const c = new HelperClient({
      socketPath: path.join(dir, 'run', 'helper-sock'),
      reconnectMinMs: 20000,
      reconnectMaxMs: 20000,
      waitLogMs: 300,
      watch,
      log: (m) => logs.push(m),
    });
    clients.push(c);
    return c;
  };

  test('logs that it is waiting at once and then every waitLogMs; connects as soon as the helper listens', async () => {
    const logs: string[] = [];
    const c = client(true, logs);
    c.start();
    await sleep(100);
    expect(logs).toEqual([`waiting for the helper at ${path.join(dir, 'run', 'helper-sock')} (ENOENT)`]);
    await sleep(750);
    expect(logs.filter((l) => l.startsWith('still waiting for the helper at ')).length).toBe(2);
    expect(c.ready).toBe(false);

    stops.push(await helperIn(dir));
    const ms = await readyWithin(c, 2000); // the backoff would take 20 s
    expect(ms).not.toBeNull();
    expect(logs[logs.length - 1]).toMatch(/^helper connected \(driver test\) after waiting \d+ ms$/);
    const reminders = logs.length;
    await sleep(700);
    expect(logs.length).toBe(reminders); // no more reminders once connected

    // The helper goes away and a new one starts: the client is back on the new one at once.
    await stops.pop()!();
    await sleep(200);
    expect(c.ready).toBe(false);
    expect(logs).toContain('helper connection lost; reconnecting');
    expect(logs[logs.length - 1]).toMatch(/^waiting for the helper at \S+ \((ENOENT|ECONNREFUSED)\)$/);
    stops.push(await helperIn(dir));
    expect(await readyWithin(c, 2000)).not.toBeNull();

    // Our own close() loses nothing: no "connection lost" line, no 'down', no reconnect.
    const before = logs.length;
    let downs = 0;
    c.on('down', () => downs++);
    c.close();
    await sleep(200);
    expect(logs.slice(before)).toEqual([]);
    expect(downs).toBe(0);
  });

  test('control: without the watch only the (here 20 s) backoff would bring it back', async () => {
    const logs: string[] = [];
    const c = client(false, logs);
    c.start();
    await sleep(100);
    stops.push(await helperIn(dir));
    expect(await readyWithin(c, 1500)).toBeNull();
    expect(logs[0]).toMatch(/^waiting for the helper at /);
  });
});
