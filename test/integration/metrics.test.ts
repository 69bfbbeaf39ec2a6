// SPDX-License-Identifier: Apache-2.0
// The metrics listener of a real daemon (start.js as root: the front end runs as an unprivileged user): its socket's
// mode and owner, a local user who cannot scrape it, what it answers besides GET /metrics, and label cardinality that
// a client sending unknown procedure numbers cannot grow.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { describeIf, root } from '../helpers/skip';
import { asUser, exec, localUsers } from '../helpers/users';

jest.setTimeout(120_000);

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function get(
  target: { socketPath: string } | { port: number },
  reqPath: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const where = 'socketPath' in target ? { socketPath: target.socketPath } : { host: '127.0.0.1', port: target.port };
    const req = http.request({ ...where, path: reqPath, method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (t: string) => (body += t));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

// The series of one metric family: 'name{labels}' -> value.
function series(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^(\S+)\s+(\S+)$/.exec(line);
    if (m && (m[1] === name || m[1].startsWith(`${name}{`))) out.set(m[1], Number(m[2]));
  }
  return out;
}

// Every virtgate_ series name with its labels (values dropped).
const virtgateSeries = (text: string): Set<string> =>
  new Set(
    text
      .split('\n')
      .filter((l) => l.startsWith('virtgate_'))
      .map((l) => l.split(' ')[0]),
  );

// Raw libvirt calls on the daemon's unix socket: one 28-byte header per call (REMOTE program, version 1, CALL, status OK).
async function rawCalls(sock: string, calls: { prog: number; proc: number }[]): Promise<number> {
  const c = net.connect(sock);
  await new Promise<void>((resolve, reject) => c.once('connect', resolve).once('error', reject));
  const frames = calls.map(({ prog, proc }, i) => {
    const b = Buffer.alloc(28);
    b.writeUInt32BE(28, 0);
    b.writeUInt32BE(prog, 4);
    b.writeUInt32BE(1, 8);
    b.writeInt32BE(proc, 12);
    b.writeInt32BE(0, 16); // CALL
    b.writeUInt32BE(i + 1, 20);
    b.writeInt32BE(0, 24);
    return b;
  });
  c.write(Buffer.concat(frames));
  // One reply (an error) per call; count them by their length words.
  let buf = Buffer.alloc(0);
  let replies = 0;
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`only ${replies} of ${calls.length} replies`)), 30_000);
    c.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4 && buf.length >= buf.readUInt32BE(0)) {
        buf = buf.subarray(buf.readUInt32BE(0));
        if (++replies === calls.length) {
          clearTimeout(t);
          resolve();
        }
      }
    });
    c.on('error', reject);
  });
  c.destroy();
  return replies;
}

const REMOTE = 0x20008086;

describeIf([root('the front end drops to an unprivileged user only when started as root'), ...localUsers(['alice'])], 'metrics listener', () => {
  let d: RunningDaemon;
  let home: string;
  let msock: string;
  let tcpPort: number;

  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-metrics-'));
    fs.mkdirSync(path.join(home, 'etc'));
    fs.writeFileSync(path.join(home, 'etc', 'virtgate.conf'), 'metricsListen = "127.0.0.1:0"\n');
    d = await startDaemon({ home });
    msock = path.join(home, 'run', 'metrics-sock');
    tcpPort = Number(/metrics on tcp 127\.0\.0\.1:(\d+)/.exec(await d.waitFor(/metrics on tcp 127\.0\.0\.1:\d+/))![1]);
  });

  afterAll(async () => {
    await d?.stop();
    fs.rmSync(home, { recursive: true, force: true });
  });

  test('the unix socket is mode 0600 and owned by the front end user, not root', () => {
    const st = fs.lstatSync(msock);
    expect(st.isSocket()).toBe(true);
    expect((st.mode & 0o777).toString(8)).toBe('600');
    const front = fs.lstatSync(d.sock).uid; // the client socket the front end made
    expect(st.uid).toBe(front);
    expect(st.uid).not.toBe(0);
  });

  test('a local user who is not the front end cannot connect to it (EACCES), though the directory is reachable', async () => {
    const probe = (p: string): string[] => [
      process.execPath,
      '-e',
      `require('net').connect(${JSON.stringify(p)}).on('connect',()=>{console.log('CONNECTED');process.exit(0)}).on('error',e=>{console.log(e.code);process.exit(3)})`,
    ];
    const r = await exec([...asUser('alice'), ...probe(msock)]);
    expect(r.out.trim()).toBe('EACCES');
    expect(r.rc).toBe(3);
    // Control: alice reaches the world-connectable read-only client socket beside it, so EACCES is the mode's doing.
    const ro = await exec([...asUser('alice'), ...probe(d.sockRo)]);
    expect(ro.out.trim()).toBe('CONNECTED');
  });

  test('GET /metrics answers the exposition format on both listeners', async () => {
    for (const target of [{ socketPath: msock }, { port: tcpPort }]) {
      const r = await get(target, '/metrics');
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(r.body).toMatch(/^# HELP virtgate_calls_total /m);
      expect(r.body).toMatch(/^virtgate_helper_up 1$/m);
      expect(r.body).toMatch(/^virtgate_vms\{state="running",tenant=""\} 1$/m);
      expect(r.body).toMatch(/^process_cpu_seconds_total /m);
      // Status of other components, read at the scrape: the file policy store is in force and loads cleanly.
      expect(r.body).toMatch(/^virtgate_policy_source\{source="file"\} 1$/m);
      expect(r.body).toMatch(/^virtgate_policy_reload_failing 0$/m);
      expect(r.body).toMatch(/^virtgate_policy_rules [1-9]\d*$/m);
    }
  });

  test('anything else: 404 for other paths, 405 for other methods, 413 with a body, 400 for oversized headers', async () => {
    const t = { socketPath: msock };
    for (const p of ['/', '/metrics/', '/metricsx', '/../metrics', '/api/v1/query']) expect((await get(t, p)).status).toBe(404);
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      const r = await get(t, '/metrics', { method });
      expect(r.status).toBe(405);
      expect(r.headers.allow).toBe('GET, HEAD');
    }
    expect((await get(t, '/metrics', { headers: { 'Content-Length': '5' }, body: 'hello' })).status).toBe(413);
    expect((await get(t, '/metrics', { method: 'HEAD' })).status).toBe(200);
    const big = await get(t, '/metrics', { headers: { 'X-Junk': 'a'.repeat(16 * 1024) } }).catch((e: Error) => e);
    if (big instanceof Error) expect(big.message).toMatch(/socket hang up|ECONNRESET|Parse Error/);
    else expect(big.status).toBe(400);
    // Still serving afterwards.
    expect((await get(t, '/metrics')).status).toBe(200);
  });

  test('unknown procedure numbers and programs are counted as procedure="unknown" and add no series', async () => {
    const before = await get({ socketPath: msock }, '/metrics');
    const unknownBefore = series(before.body, 'virtgate_calls_total').get('virtgate_calls_total{procedure="unknown",outcome="error"}') ?? 0;
    const calls = [
      ...Array.from({ length: 300 }, (_, i) => ({ prog: REMOTE, proc: 100_000 + i * 7919 })),
      ...Array.from({ length: 20 }, (_, i) => ({ prog: 0x1000 + i, proc: 1 })),
    ];
    expect(await rawCalls(d.sock, calls)).toBe(calls.length);
    const after = await get({ socketPath: msock }, '/metrics');
    const unknownAfter = series(after.body, 'virtgate_calls_total').get('virtgate_calls_total{procedure="unknown",outcome="error"}');
    expect(unknownAfter).toBe(unknownBefore + calls.length);
    expect(after.body).not.toMatch(/procedure="\d/);
    // The same series as before, plus at most the connection's own (logins, connections by listener).
    const added = [...virtgateSeries(after.body)].filter((s) => !virtgateSeries(before.body).has(s));
    // (and the log's rate limit, per component: the unknown procedures are logged, then suppressed)
    expect(added.every((s) => /^virtgate_(logins_total|connections_total|connections|log_lines_suppressed)\{/.test(s))).toBe(true);
    expect(added.length).toBeLessThanOrEqual(4);
  });

  test('a helper killed and restarted shows as helper_restarts_total 1; helper_up is 1 again', async () => {
    const scrape = async (): Promise<string> => (await get({ socketPath: msock }, '/metrics')).body;
    expect(await scrape()).toMatch(/^virtgate_helper_restarts_total 0$/m);
    const mark = d.output().length;
    process.kill(d.helperPid(), 'SIGKILL');
    await d.waitFor(/helper connected/, 30_000, mark);
    const text = await scrape();
    expect(text).toMatch(/^virtgate_helper_restarts_total 1$/m);
    expect(text).toMatch(/^virtgate_helper_up 1$/m);
  });
});

describeIf(root('start.js as root'), 'metrics = false', () => {
  let d: RunningDaemon;
  let home: string;
  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-metrics-off-'));
    fs.mkdirSync(path.join(home, 'etc'));
    fs.writeFileSync(path.join(home, 'etc', 'virtgate.conf'), 'metrics = false\nmetricsListen = "127.0.0.1:0"\n');
    d = await startDaemon({ home });
  });
  afterAll(async () => {
    await d?.stop();
    fs.rmSync(home, { recursive: true, force: true });
  });

  test('no metrics socket, no metrics port', () => {
    expect(fs.existsSync(path.join(home, 'run', 'metrics-sock'))).toBe(false);
    expect(d.output()).not.toMatch(/metrics on/);
  });
});
