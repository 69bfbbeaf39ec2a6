// SPDX-License-Identifier: Apache-2.0
// The whole daemon with the root helper's state directory (HOME/lib: state log, domain files, journal, verification
// key) on a real, full tmpfs (needs root): writes refused with a clear error, reads served, a helper killed and
// restarted while the disk is full serves reads again, space back: writes work, and `audit verify --cross-check` passes.
// And the helper's first-ever start on a full disk: it serves the seed domain from memory and saves it once space returns.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readJournal } from '../../src/audit/journal';
import type { AuditRecord } from '../../src/audit/schema';
import { type RemoteDomain, VirtgateClient } from '../../src/client';
import { ROOT, type RunningDaemon, startDaemon } from '../helpers/daemon';
import { canMountTmpfs, fillDisk, mountTmpfs, unmountTmpfs } from '../helpers/tmpfs';

const dm = canMountTmpfs('helper full-disk test') ? describe : describe.skip;

function verify(home: string, ...extra: string[]): { rc: number; out: string } {
  try {
    return { rc: 0, out: execFileSync(process.execPath, [path.join(ROOT, 'bin', 'virtgate.js'), 'audit', 'verify', '--home', home, ...extra]).toString() };
  } catch (e) {
    const x = e as { status: number; stdout: Buffer };
    return { rc: x.status, out: x.stdout.toString() };
  }
}

const xml = (name: string): string => `<domain type='test'><name>${name}</name><memory unit='MiB'>512</memory><os><type>hvm</type></os></domain>`;
const REFUSED = /cannot persist domain state: (helper journal unavailable \(ENOSPC\); write refused|write: ENOSPC)/;

// Retries fn until it resolves (the front end reconnects to a restarted helper by itself).
async function eventually<T>(fn: () => Promise<T>, ms = 20000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > until) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

// A daemon home whose lib/ (the helper's state directory) is a 512 KiB tmpfs.
function tmpfsHome(prefix: string): { home: string; lib: string } {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const lib = path.join(home, 'lib');
  mountTmpfs(lib, '512k');
  return { home, lib };
}

function removeHome(home: string, lib: string): void {
  unmountTmpfs(lib);
  fs.rmSync(home, { recursive: true, force: true });
}

dm('the helper state directory on a full filesystem (whole daemon)', () => {
  let vg: RunningDaemon;
  let home: string;
  let lib: string;
  beforeAll(async () => {
    ({ home, lib } = tmpfsHome('vg-helper-full-'));
    vg = await startDaemon({ home });
  });
  afterAll(async () => {
    await vg?.stop();
    removeHome(home, lib);
  });

  test('writes refused with the reason, reads served, a helper restart while full serves, nothing lost; space back: writes work and verify --cross-check passes', async () => {
    const c = await VirtgateClient.connect(vg.uri);
    const dom: RemoteDomain = await c.defineXml(xml('hfull'));
    await c.setMemory(dom, 400000, 2);

    const free = fillDisk(lib);
    let accepted = 0;
    let refusal: Error | null = null;
    for (let i = 0; i < 200 && !refusal; i++) {
      await c.setMemory(dom, 300000 + i, 2).then(
        () => void accepted++,
        (e: Error) => void (refusal = e),
      );
    }
    expect(refusal).not.toBeNull();
    expect(refusal!.message).toMatch(REFUSED);
    const kept = accepted ? 300000 + accepted - 1 : 400000;
    await expect(c.setMemory(dom, 123456, 2)).rejects.toThrow(REFUSED);
    expect((await c.listAllDomains()).map((d) => d.name)).toContain('hfull'); // reads go on
    expect(await c.getXmlDesc(dom, 2)).toContain(`<currentMemory unit='KiB'>${kept}</currentMemory>`);
    await c.close().catch(() => undefined);

    // The helper dies while the disk is full; the supervisor restarts it, and it starts and serves.
    const mark = vg.output().length;
    process.kill(vg.helperPid(), 'SIGKILL');
    await vg.waitFor(/start-up checkpoint failed, serving with the state log kept .*ENOSPC/, 20000, mark);
    const c2 = await eventually(async () => {
      const x = await VirtgateClient.connect(vg.uri);
      await x.listAllDomains();
      return x;
    });
    const again = await c2.lookupByName('hfull');
    expect(await c2.getXmlDesc(again, 2)).toContain(`<currentMemory unit='KiB'>${kept}</currentMemory>`);
    await expect(c2.setMemory(again, 123456, 2)).rejects.toThrow(REFUSED);

    // Space back: writes work at once, and the state is all there.
    free();
    await c2.setMemory(again, 222222, 2);
    expect(await c2.getXmlDesc(again, 2)).toContain("<currentMemory unit='KiB'>222222</currentMemory>");
    await c2.close();

    await vg.stop();
    const j = readJournal(path.join(lib, 'helper-journal.log'));
    expect(j.problem).toBeNull();
    const v = verify(home, '--cross-check', path.join(lib, 'helper-journal.log'));
    expect(v.out).toMatch(/^ok: \d+ records/);
    expect(v.out).toMatch(/ok: cross-check: all \d+ writes/);
    expect(v.rc).toBe(0);
    // Every refused write has its intent and an error outcome in the audit log; none is recorded as a success.
    const recs = fs
      .readFileSync(path.join(home, 'log', 'audit.log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as AuditRecord);
    const refusedOutcomes = recs.filter((r) => r.kind === 'outcome' && r.outcome?.result === 'error' && r.what?.object?.name === 'hfull');
    expect(refusedOutcomes.length).toBeGreaterThanOrEqual(3);
    expect(refusedOutcomes.every((r) => r.outcome?.code === 'VG_ERR_STORAGE')).toBe(true);
  });
});

dm("the helper's first-ever start on a full filesystem (whole daemon)", () => {
  let vg: RunningDaemon | null = null;
  let home: string;
  let lib: string;

  beforeAll(() => ({ home, lib } = tmpfsHome('vg-helper-first-full-')));
  afterAll(async () => {
    await vg?.stop();
    removeHome(home, lib);
  });

  test('it starts and serves the seed domain, refuses writes with the full-disk error, and saves the seed once space returns', async () => {
    // The audit keys exist (made by `audit init`, as start does when they are missing); then the disk fills up before
    // the helper has ever written its state.
    execFileSync(process.execPath, [path.join(ROOT, 'bin', 'virtgate.js'), 'audit', 'init', '--home', home]);
    const free = fillDisk(lib);
    vg = await startDaemon({ home });
    await vg.waitFor(/first start: the seed domain cannot be saved \(write: ENOSPC\): served from memory/);
    expect(fs.existsSync(path.join(lib, 'initialized'))).toBe(false);
    const c = await eventually(async () => {
      const x = await VirtgateClient.connect(vg!.uri);
      await x.listAllDomains();
      return x;
    });
    expect((await c.listAllDomains()).map((d) => d.name)).toEqual(['test']);
    const seed = await c.lookupByName('test');
    expect(await c.getXmlDesc(seed, 0)).toContain("<currentMemory unit='KiB'>2097152</currentMemory>");
    await expect(c.setMemory(seed, 1048576, 2)).rejects.toThrow(REFUSED);
    await expect(c.defineXml(xml('first-full'))).rejects.toThrow(REFUSED);
    expect((await c.listAllDomains()).map((d) => d.name)).toEqual(['test']);

    // Space back: the seed is saved by itself (no write needed), then writes work.
    const mark = vg.output().length;
    free();
    await vg.waitFor(/first start: seed domain saved; writes accepted/, 10000, mark);
    expect(fs.existsSync(path.join(lib, 'initialized'))).toBe(true);
    await c.setMemory(seed, 1048576, 2);
    await c.close();

    // A restarted helper finds the saved state: not seeded again (the write stays), no domain lost.
    const mark2 = vg.output().length;
    process.kill(vg.helperPid(), 'SIGKILL');
    await vg.waitFor(/virtgate-helper: listening on/, 20000, mark2);
    const c2 = await eventually(async () => {
      const x = await VirtgateClient.connect(vg!.uri);
      await x.listAllDomains();
      return x;
    });
    const again = await c2.lookupByName('test');
    expect(await c2.getXmlDesc(again, 2)).toContain("<currentMemory unit='KiB'>1048576</currentMemory>");
    await c2.close();
    await vg.stop();
    vg = null;
    const v = verify(home, '--cross-check', path.join(lib, 'helper-journal.log'));
    expect(v.out).toMatch(/ok: cross-check: all \d+ writes/);
    expect(v.rc).toBe(0);
  });
});
