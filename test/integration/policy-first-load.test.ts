// SPDX-License-Identifier: Apache-2.0
// No client is let in before the first policy load, and the first SASL users sync, are over. The failure this guards
// against: a database slow to answer at start, and the first clients refused by the empty "no policy loaded"
// authorizer (or an empty users file) although the cache would have let them in. A database that accepts TCP and never
// answers holds each load for the connect timeout (5 s); the daemon must not listen meanwhile.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { VirtgateClient } from '../../src/client';
import { CACHE_HEADER } from '../../src/unprivileged/policy-runtime';
import { testIf, virshTool } from '../helpers/skip';
import { asUser, exec, localUsers } from '../helpers/users';

// A home whose database accepts connections and never answers; conf lines name it as DB.
async function withStalledDatabase(conf: string[], body: (vg: RunningDaemon, startMs: number) => Promise<void>, opts = { cache: true }): Promise<void> {
  const held: net.Socket[] = [];
  const stalled = net.createServer((s) => held.push(s.on('error', () => undefined)));
  await new Promise<void>((r) => stalled.listen(0, '127.0.0.1', r));
  const db = `postgresql://virtgate@127.0.0.1:${(stalled.address() as net.AddressInfo).port}/postgres`;
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-first-load-'));
  let vg: RunningDaemon | null = null;
  try {
    fs.mkdirSync(path.join(home, 'etc'));
    fs.writeFileSync(path.join(home, 'etc', 'virtgate.conf'), [...conf.map((l) => l.replace('DB', db)), ''].join('\n'));
    // The last good rows (as the daemon writes them): plain TCP is host admin, which no built-in rule grants.
    fs.mkdirSync(path.join(home, 'cache'), { mode: 0o700 });
    if (opts.cache)
      fs.writeFileSync(
        path.join(home, 'cache', 'policy.csv'),
        `${CACHE_HEADER} postgresql://virtgate@127.0.0.1/postgres at 2026-11-27T00:00:00.000Z\ng, tcp:anonymous, host-admin, *\n`,
        { mode: 0o600 },
      );
    const t0 = Date.now();
    vg = await startDaemon({ home, tcp: true });
    const startMs = Date.now() - t0;
    expect(held.length).toBeGreaterThan(0); // the daemon did reach the database
    await body(vg, startMs);
  } finally {
    await vg?.stop();
    for (const s of held) s.destroy();
    stalled.close();
    fs.rmSync(home, { recursive: true, force: true });
  }
}

// Where re first matches in the daemon's output, and where its first listener opened.
const positions = (out: string, re: RegExp): { at: number; listening: number } => ({ at: out.search(re), listening: out.search(/listening on (unix|tcp)/) });

test('a policy database that stalls at start holds the listeners; the first call is decided by the cache, not denied', async () => {
  await withStalledDatabase(['policyStore = "postgresql"', 'policyDatabase = "DB"'], async (vg, startMs) => {
    const { at, listening } = positions(vg.output(), /policy loaded \(start\) from the cache/);
    expect(at).toBeGreaterThan(-1);
    expect(listening).toBeGreaterThan(at);
    expect(startMs).toBeGreaterThanOrEqual(4000); // it waited for the connect timeout
    const c = await VirtgateClient.connect(`test+tcp://127.0.0.1:${vg.tcpPort}/default`);
    try {
      expect((await c.listAllDomains(0)).length).toBeGreaterThan(0); // allowed by the cache's rule
    } finally {
      await c.close();
    }
  });
}, 60_000);

test('a users database that stalls at start holds the listeners until the first sync gives up (the users cache stays)', async () => {
  // The policy from a file (loaded at once), the SASL users from the stalled database.
  await withStalledDatabase(['usersStore = "postgresql"', 'authUnixRw = "sasl"', 'policyDatabase = "DB"'], async (vg, startMs) => {
    const { at, listening } = positions(vg.output(), /SASL users not reloaded \(start\), keeping the users in force/);
    expect(at).toBeGreaterThan(-1);
    expect(listening).toBeGreaterThan(at);
    expect(startMs).toBeGreaterThanOrEqual(4000);
  });
}, 60_000);

// The promise the wait must not weaken: never open. No cache and the database silent: once the daemon listens, a
// local user (alice, her own uid, through the world-writable socket with real virsh) is refused, and so is root.
testIf(
  [...localUsers(['alice'], 'connects as a local user'), virshTool()],
  'no cache and a database that stalls: after the wait everything is refused, root included (fail closed)',
  async () => {
    await withStalledDatabase(
      ['policyStore = "postgresql"', 'policyDatabase = "DB"', 'unixSocketMode = 0o666'],
      async (vg, startMs) => {
        const { at, listening } = positions(vg.output(), /policy load failed \(start\), denying everything/);
        expect(at).toBeGreaterThan(-1);
        expect(listening).toBeGreaterThan(at);
        expect(startMs).toBeGreaterThanOrEqual(4000);
        const alice = await exec([...asUser('alice'), 'virsh', '-c', vg.uri, 'list', '--all']);
        expect(alice.rc).not.toBe(0);
        expect(alice.err).toMatch(/access denied/);
        const asRoot = async (uri: string): Promise<void> => {
          const c = await VirtgateClient.connect(uri);
          try {
            await c.listAllDomains(0);
          } finally {
            await c.close();
          }
        };
        await expect(asRoot(vg.uri)).rejects.toThrow(/access denied/);
        await expect(asRoot(`test+tcp://127.0.0.1:${vg.tcpPort}/default`)).rejects.toThrow(/access denied/);
      },
      { cache: false },
    );
  },
  60_000,
);
