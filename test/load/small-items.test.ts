// SPDX-License-Identifier: Apache-2.0
// The small items of "bounded under abuse": the frame deadline does not run while the server itself has stopped
// reading a connection (backpressure), and a SIGHUP that arrives while the front end is still loading is harmless.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ListAllFlags, VirtgateClient } from '../../src/client';
import { encodeMessage } from '../../src/protocol/header';
import { P } from '../../src/protocol/procs/remote';
import { ROOT } from '../helpers/daemon';
import { type LoadDaemon, sleep, startLoadDaemon } from './lib';

let d: LoadDaemon;
beforeAll(async () => {
  d = await startLoadDaemon('frameTimeout = 2\n');
}, 60000);
afterAll(async () => d?.vg.stop());

const msg = (proc: number, serial: number, body?: Parameters<typeof encodeMessage>[1]): Buffer =>
  encodeMessage({ prog: 0x20008086, vers: 1, proc, type: 0, serial, status: 0 }, body);

test('a client that pipelines and reads late is not dropped as "incomplete message" while we are the ones not reading', async () => {
  const c = await VirtgateClient.connect(d.vg.uri);
  const [dom] = await c.listAllDomains(ListAllFlags.ACTIVE);
  await c.close();
  const N = 20000;
  const sock = net.createConnection(d.vg.sock);
  await new Promise((r) => sock.once('connect', r));
  let closed = false;
  sock.on('close', () => (closed = true));
  sock.pause(); // read nothing for now: our replies back up, the server stops reading us with a partial frame held
  const calls = [msg(66, 0), msg(1, 1, (w) => P.CONNECT_OPEN.args.encode(w, { name: 'test:///default', flags: 0 }))];
  for (let i = 0; i < N; i++) calls.push(msg(P.DOMAIN_GET_INFO.proc, 2 + i, (w) => P.DOMAIN_GET_INFO.args.encode(w, { dom })));
  const last = msg(P.DOMAIN_GET_INFO.proc, 2 + N, (w) => P.DOMAIN_GET_INFO.args.encode(w, { dom }));
  sock.write(Buffer.concat([...calls, last.subarray(0, 10)]));
  await sleep(5000); // 2.5 × frameTimeout
  expect(closed).toBe(false);
  let replies = 0;
  let buf = Buffer.alloc(0);
  sock.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 4 && buf.length >= buf.readUInt32BE(0)) {
      replies++;
      buf = buf.subarray(buf.readUInt32BE(0));
    }
  });
  sock.resume();
  const deadline = Date.now() + 20000;
  while (replies < N + 2 && !closed && Date.now() < deadline) await sleep(50);
  expect(replies).toBe(N + 2);
  sock.write(last.subarray(10));
  while (replies < N + 3 && !closed && Date.now() < deadline) await sleep(20);
  expect(replies).toBe(N + 3);
  expect(closed).toBe(false);
  sock.destroy();
  expect(d.vg.output().slice(d.logFrom)).not.toMatch(/incomplete message not finished in time/);
}, 60000);

test('a client that really stalls mid-message is still dropped at the deadline, with the reason', async () => {
  const sock = net.createConnection(d.vg.sock);
  await new Promise((r) => sock.once('connect', r));
  let closed = false;
  sock.on('close', () => (closed = true));
  sock.on('error', () => undefined);
  sock.on('data', () => undefined); // reading: a socket that reads nothing never sees the server close it
  const open = msg(1, 1, (w) => P.CONNECT_OPEN.args.encode(w, { name: 'test:///default', flags: 0 }));
  sock.write(Buffer.concat([msg(66, 0), open.subarray(0, 20)]));
  const t0 = Date.now();
  while (!closed && Date.now() - t0 < 8000) await sleep(50);
  expect(closed).toBe(true);
  expect(d.vg.output().slice(d.logFrom)).toMatch(/incomplete message not finished in time \(20 of its bytes in 2 s, frameTimeout\)/);
}, 30000);

test('SIGHUP while the front end is still loading does not kill it', async () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-hup-'));
  // A preload sends the front end a SIGHUP from inside, at the moment its first own module (build/src/...) is about to
  // load: before anything of virtgated has run. Without a handler installed first, that signal terminates it.
  const preload = path.join(home, 'hup-early.js');
  fs.writeFileSync(
    preload,
    `const Module = require('module'); const p = require('path'); const fs = require('fs'); const load = Module._load; let sent = false;
     Module._load = function (req, parent, isMain) {
       if (!sent && parent && parent.filename && /build[\\/]src[\\/]/.test(p.resolve(p.dirname(parent.filename), req))) {
         sent = true; fs.writeSync(2, 'HUP-SENT listeners=' + process.listenerCount('SIGHUP') + '\\n'); process.kill(process.pid, 'SIGHUP');
       }
       return load.apply(this, arguments);
     };`,
  );
  // No helper: after loading, the front end waits for one, which leaves time to see that it survived.
  const proc = spawn(
    process.execPath,
    ['-r', preload, path.join(ROOT, 'bin', 'virtgated.js'), '--home', home, '--helper-socket', path.join(home, 'none'), '--no-sandbox'],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let err = '';
  proc.stderr!.setEncoding('utf8').on('data', (t: string) => (err += t));
  try {
    const t0 = Date.now();
    while (!/HUP-SENT/.test(err) && proc.exitCode === null && proc.signalCode === null && Date.now() - t0 < 10000) await sleep(20);
    await sleep(1000);
    expect(err).toMatch(/HUP-SENT listeners=1/);
    expect(proc.signalCode).toBeNull();
    expect(proc.exitCode).toBeNull();
    proc.kill('SIGHUP'); // and later ones too
    await sleep(300);
    expect(proc.signalCode).toBeNull();
  } finally {
    proc.kill('SIGKILL');
    fs.rmSync(home, { recursive: true, force: true });
  }
}, 30000);
