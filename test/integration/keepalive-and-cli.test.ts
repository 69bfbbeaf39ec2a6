// SPDX-License-Identifier: Apache-2.0
// Server-side keepalive (libvirtd semantics), the virtgate CLI end to end, and a clean Ctrl-C of the supervisor.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, type RunningDaemon, startDaemon } from '../helpers/daemon';
import { RawClient } from '../helpers/raw';

const CLI = path.join(ROOT, 'bin', 'virtgate.js');
let vg: RunningDaemon;

beforeAll(async () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-ka-'));
  fs.mkdirSync(path.join(home, 'etc'));
  fs.writeFileSync(path.join(home, 'etc', 'virtgate.conf'), 'keepaliveInterval = 1\nkeepaliveCount = 2\n');
  vg = await startDaemon({ home });
});
afterAll(async () => vg?.stop());

const cli = (...args: string[]): { rc: number; out: string; err: string } => {
  const r = spawnSync(process.execPath, [CLI, '-c', vg.uri, ...args], { encoding: 'utf8', timeout: 30000 });
  return { rc: r.status ?? -1, out: r.stdout, err: r.stderr };
};

// The timing itself (ping after interval s, drop after interval × (count + 1) s, a PONG restarts it) is checked on an
// injected clock in unit/unprivileged/keepalive.test.ts; here, the wiring in the real daemon, with no wall-clock window:
// two idle clients, the one that did not ask for keepalive connected first, so it has been silent at least as long.
test('a client that asked for keepalive is pinged and dropped when it never answers; one that did not ask is neither', async () => {
  const quiet = await RawClient.connect(vg.sock);
  quiet.call(66, 0); // AUTH_LIST: any call; no keepalive asked
  await quiet.waitReplies(1);
  const asked = await RawClient.connect(vg.sock);
  asked.call(60, 0, (w) => w.i32(10)); // CONNECT_SUPPORTS_FEATURE(PROGRAM_KEEPALIVE)
  await asked.waitReplies(1);
  const from = vg.output().length;
  expect(await asked.waitClosed(15000)).toBe(true);
  const pings = asked.replies.filter((r) => r.header.prog === 0x6b656570 && r.header.proc === 1);
  expect(pings.length).toBeGreaterThanOrEqual(1);
  await vg.waitFor(/closed: keepalive timeout/, 5000, from);
  expect(quiet.closed).toBe(false);
  expect(quiet.replies).toHaveLength(1); // no ping
  quiet.end();
});

test('virtgate CLI against the real daemon: tables, lifecycle, errors and exit codes', () => {
  expect(cli('list', '--all')).toMatchObject({ rc: 0, out: expect.stringMatching(/1\s+test\s+running/) });
  expect(cli('dominfo', 'test').out).toMatch(/UUID:\s+6695eb01-f6a4-8304-79aa-97f2502e193f/);
  expect(cli('suspend', 'test')).toMatchObject({ rc: 0 });
  expect(cli('domstate', 'test').out.trim()).toBe('paused');
  expect(cli('resume', 'test').rc).toBe(0);
  expect(cli('nodeinfo').out).toMatch(/CPU model:\s+i686/);
  const missing = cli('dominfo', 'nosuch');
  expect(missing.rc).toBe(1);
  expect(missing.err).toMatch(/^error: /m);
  expect(cli('frobnicate').rc).toBe(2);
});

test('Ctrl-C (SIGINT) stops the supervisor, the helper and the front end cleanly', async () => {
  const other = await startDaemon();
  const helperPid = other.helperPid();
  const stopped = other.stop(); // SIGTERM
  await stopped;
  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const deadline = Date.now() + 5000;
  while (alive(helperPid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  expect(alive(helperPid)).toBe(false);
  // SIGINT path through a real process group, as a terminal sends it.
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-int-'));
  const out = execFileSync(
    'bash',
    [
      '-c',
      `node ${path.join(ROOT, 'build/src/cli/start.js')} --home ${home} & p=$!; for i in $(seq 100); do [ -S ${home}/run/virtgate-sock-ro ] && break; sleep 0.1; done; sleep 0.5; kill -INT $p; wait $p; echo rc=$?; pgrep -f "[v]irtgate-helper.js --socket ${home}" || echo no-helper`,
    ],
    { encoding: 'utf8', timeout: 30000 },
  );
  expect(out).toMatch(/rc=0/);
  expect(out).toMatch(/no-helper/);
});
