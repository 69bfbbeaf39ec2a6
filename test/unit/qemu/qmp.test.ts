// SPDX-License-Identifier: Apache-2.0
// QMP client: against a real QEMU (monitor listener bound here, passed as a descriptor) and against a hostile fake.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { QMP_LINE_MAX, QmpClient, QmpError, type QmpEvent } from '../../../src/privileged/drivers/qemu/qmp';

const EMU = '/usr/bin/qemu-system-x86_64';
const haveQemu = fs.existsSync(EMU);
let dir: string;
const servers: net.Server[] = [];
const procs: ChildProcess[] = [];

beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-qmp-'))));
afterAll(() => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  for (const s of servers) s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function listen(name: string, onConn?: (s: net.Socket) => void): Promise<{ path: string; fd: number; release: () => Promise<void> }> {
  const p = path.join(dir, name);
  const srv = net.createServer(onConn ?? (() => undefined));
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(p, r));
  // Handed to QEMU, this process must stop accepting on it: release closes our copy (QEMU keeps its own).
  return {
    path: p,
    fd: (srv as unknown as { _handle: { fd: number } })._handle.fd,
    release: async () => {
      // Node unlinks the path on close: keep it under another name meanwhile.
      fs.renameSync(p, `${p}.keep`);
      await new Promise<void>((r) => srv.close(() => r()));
      fs.renameSync(`${p}.keep`, p);
    },
  };
}

(haveQemu ? describe : describe.skip)('against QEMU 7.2', () => {
  test('greeting, capabilities, execute, events, errors; close when QEMU dies', async () => {
    // A listener bound here and handed over, as the helper does; QEMU never sees a path.
    const l = await listen('qmp-real.sock');
    const q = spawn(
      EMU,
      ['-machine', 'none', '-S', '-nodefaults', '-display', 'none', '-chardev', 'socket,id=m,fd=3,server=on,wait=off', '-mon', 'chardev=m,mode=control'],
      {
        stdio: ['ignore', 'ignore', 'pipe', l.fd],
      },
    );
    procs.push(q);
    await l.release();
    const c = await QmpClient.connect(l.path);
    expect(await c.execute('query-status')).toMatchObject({ status: 'prelaunch', running: false });
    const events: QmpEvent[] = [];
    c.on('event', (e: QmpEvent) => events.push(e));
    await c.execute('cont');
    await c.execute('stop');
    for (let i = 0; i < 100 && events.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(events.map((e) => e.event)).toEqual(['RESUME', 'STOP']);
    expect(events[0].timestamp?.seconds).toBeGreaterThan(0);
    await expect(c.execute('no-such-command')).rejects.toBeInstanceOf(QmpError);
    const closed = new Promise((r) => c.once('close', r));
    q.kill('SIGKILL');
    // A clean EOF, or a reset when the killed QEMU left our last bytes unread.
    const why = (await closed) as string;
    expect(why).toMatch(/^(monitor closed|socket error: read ECONNRESET)$/);
    await expect(c.execute('query-status')).rejects.toThrow(why);
  });
});

// A fake monitor that greets, accepts capabilities, then sends what the test says.
async function fake(after: string | Buffer): Promise<QmpClient> {
  const l = await listen(`fake-${Math.random().toString(36).slice(2)}.sock`, (s) => {
    s.write('{"QMP": {"version": {}, "capabilities": []}}\r\n');
    s.once('data', (d) => {
      const id = JSON.parse(d.toString()).id;
      s.write(`{"return": {}, "id": "${id}"}\r\n`);
      s.on('data', () => s.write(after));
    });
  });
  return QmpClient.connect(l.path, 2000);
}

describe('a hostile monitor', () => {
  test.each([
    ['not JSON', 'hello\n', /not JSON/],
    ['an array', '[1]\n', /not an object/],
    ['an answer without our id', '{"return": {}}\n', /without our id/],
    ['a bad event name', '{"event": "x y"}\n', /malformed QMP event/],
    ['event data not an object', '{"event": "STOP", "data": 1}\n', /data is not an object/],
    ['a second greeting', '{"QMP": {}}\n', /greeting/],
  ])('%s closes the monitor', async (_what, line, why) => {
    const c = await fake(line);
    const closed = new Promise<string>((r) => c.once('close', r));
    await expect(c.execute('query-status')).rejects.toThrow();
    expect(await closed).toMatch(why);
  });

  test('a line over 1 MiB closes the monitor without buffering it whole', async () => {
    const c = await fake(Buffer.alloc(QMP_LINE_MAX + 10, 'a'));
    const closed = new Promise<string>((r) => c.once('close', r));
    await expect(c.execute('query-status')).rejects.toThrow(/longer than/);
    expect(await closed).toMatch(/longer than 1048576/);
  });

  test('no answer: execute times out, the monitor stays usable', async () => {
    const c = await fake('');
    await expect(c.execute('query-status', undefined, 200)).rejects.toThrow(/no answer within 200 ms/);
    expect(c.closed).toBe(false);
    c.close();
  });

  test('no greeting: connect fails in time', async () => {
    const l = await listen('silent.sock');
    await expect(QmpClient.connect(l.path, 300)).rejects.toThrow(/greeting/);
  });
});
