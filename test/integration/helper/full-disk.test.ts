// SPDX-License-Identifier: Apache-2.0
// The built helper with its state directory (state log, domain files, journal) on a real, full tmpfs (needs root):
// writes refused with a clear error and nothing torn, reads served, a restart while full serves too, nothing lost, and
// writes work again once space returns.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readJournal } from '../../../src/audit/journal';
import { type DomainSummary, LookupKind, Op } from '../../../src/ipc/program';
import { RawClient } from './ipc-client';
import { type Helper, startHelper, stopHelper, tempDir } from './spawn';
import { describeIf } from '../../helpers/skip';
import { fillDisk, mountTmpfs, tmpfs, unmountTmpfs } from '../../helpers/tmpfs';
import { dx } from '../../helpers/domain-def';

let n = 0;
const actor = () => ({ user: 'alice', tenant: 'acme', requestId: `full-${process.pid}-${++n}` });
const FULL = "<domain type='test'><name>full1</name><memory>1048576</memory><os><type>hvm</type></os></domain>";

describeIf(tmpfs(), 'the helper on a full disk', () => {
  let dir: string;
  let state: string;
  let h: Helper | null = null;

  let free = (): void => undefined;
  const fill = (): void => void (free = fillDisk(state));
  const ready = async (): Promise<RawClient> => {
    const c = await RawClient.connect(h!.socket);
    expect((await c.hello()).ok).toBe(true);
    return c;
  };
  const memoryOf = async (c: RawClient, uuid: Buffer): Promise<bigint> =>
    ((await c.call(Op.DOMAIN_READ_REQ, { action: 'info', uuid })) as unknown as { body: { memoryKiB: bigint } }).body.memoryKiB;

  beforeAll(() => {
    dir = tempDir();
    state = path.join(dir, 'state');
    mountTmpfs(state, '256k');
  });
  afterAll(async () => {
    if (h) await stopHelper(h, 'SIGKILL');
    unmountTmpfs(state);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('writes refused with a clear error, reads served, nothing torn; a restart while full serves; space back: writes work, nothing lost', async () => {
    h = await startHelper(dir);
    let c = await ready();
    const def = await c.call(Op.DOMAIN_WRITE_REQ, { action: 'define', actor: actor(), def: dx(FULL) });
    expect(def.ok).toBe(true);
    const uuid = (def as unknown as { body: DomainSummary }).body.uuid;
    expect(
      (await c.call(Op.DOMAIN_WRITE_REQ, { action: 'setMemory', actor: actor(), uuid, memoryKiB: 524288n, live: false, config: true, max: false })).ok,
    ).toBe(true);

    fill();
    // The last pages of the journal and the state log may still take a few lines: write until the first refusal.
    let accepted = 0;
    let refusal: { ok: boolean; code?: string; detail?: string } | null = null;
    for (let i = 0; i < 200 && !refusal; i++) {
      const a = await c.call(Op.DOMAIN_WRITE_REQ, {
        action: 'setMemory',
        actor: actor(),
        uuid,
        memoryKiB: BigInt(262144 + i),
        live: false,
        config: true,
        max: false,
      });
      if (a.ok) accepted++;
      else refusal = a as unknown as typeof refusal;
    }
    expect(refusal).toMatchObject({
      ok: false,
      code: 'VG_ERR_STORAGE',
      detail: expect.stringMatching(/^(helper journal unavailable \(ENOSPC\); write refused|write: ENOSPC)$/),
    });
    const lastAccepted = accepted ? BigInt(262144 + accepted - 1) : 524288n;
    // Every further write is refused the same way, and none of them changes anything.
    for (let i = 0; i < 5; i++) {
      expect(
        await c.call(Op.DOMAIN_WRITE_REQ, { action: 'setMemory', actor: actor(), uuid, memoryKiB: 131072n, live: false, config: true, max: false }),
      ).toMatchObject({
        ok: false,
        code: 'VG_ERR_STORAGE',
      });
    }
    // Reads are served.
    expect(
      ((await c.call(Op.DOMAIN_READ_REQ, { action: 'list' })) as unknown as { body: { domains: DomainSummary[] } }).body.domains.map((d) => d.name).sort(),
    ).toEqual(['full1', 'test']);
    expect(await c.call(Op.DOMAIN_READ_REQ, { action: 'xml', uuid, inactive: true })).toMatchObject({
      ok: true,
      body: { def: expect.objectContaining({ maxMemKiB: 1048576n }) },
    });
    expect(await c.call(Op.DOMAIN_READ_REQ, { action: 'xml', uuid, inactive: true })).toMatchObject({
      body: { def: expect.objectContaining({ curMemKiB: lastAccepted }) },
    });
    // The journal has no torn or glued line: whole records only, chain intact.
    const j1 = readJournal(path.join(state, 'helper-journal.log'));
    expect(j1.problem).toBeNull();
    expect(h.stderr()).toMatch(/helper journal unavailable \(ENOSPC\)|JOURNAL RESULT NOT WRITTEN YET|write: ENOSPC/);
    c.end();

    // A crash and a restart while the disk is still full: the helper starts (no start-up checkpoint possible) and serves.
    expect(await stopHelper(h, 'SIGKILL')).toBeNull();
    h = await startHelper(dir);
    expect(h.stderr()).toMatch(/start-up checkpoint failed, serving with the state log kept .*ENOSPC/);
    c = await ready();
    expect((await c.call(Op.DOMAIN_READ_REQ, { action: 'lookup', key: { kind: LookupKind.NAME, name: 'full1' } })).ok).toBe(true);
    expect(await c.call(Op.DOMAIN_READ_REQ, { action: 'xml', uuid, inactive: true })).toMatchObject({
      body: { def: expect.objectContaining({ curMemKiB: lastAccepted }) },
    });
    expect(
      await c.call(Op.DOMAIN_WRITE_REQ, { action: 'setMemory', actor: actor(), uuid, memoryKiB: 131072n, live: false, config: true, max: false }),
    ).toMatchObject({
      ok: false,
      code: 'VG_ERR_STORAGE',
    });
    expect(await memoryOf(c, uuid)).toBe(lastAccepted); // the refused write changed nothing

    // Space again: writes go through, with the request id a refused write carried.
    free();
    const retried = { user: 'alice', tenant: 'acme', requestId: `full-${process.pid}-${n}` };
    expect(
      await c.call(Op.DOMAIN_WRITE_REQ, { action: 'setMemory', actor: retried, uuid, memoryKiB: 131072n, live: false, config: true, max: false }),
    ).toMatchObject({
      ok: true,
    });
    c.end();
    expect(await stopHelper(h)).toBe(0);
    h = await startHelper(dir);
    c = await ready();
    expect(await c.call(Op.DOMAIN_READ_REQ, { action: 'xml', uuid, inactive: true })).toMatchObject({
      body: { def: expect.objectContaining({ curMemKiB: 131072n }) },
    });
    c.end();
    expect(await stopHelper(h)).toBe(0);
    h = null;
    expect(fs.statSync(path.join(state, 'state.wal')).size).toBe(0); // checkpointed once it could be
    const j2 = readJournal(path.join(state, 'helper-journal.log'));
    expect(j2.problem).toBeNull();
    // Every write the helper acknowledged has a begin and an ok end; the retried id ran once.
    const ends = j2.records.filter((r) => r.phase === 'end' && r.result === 'ok');
    expect(ends).toHaveLength(2 + accepted + 1);
    expect(j2.records.filter((r) => r.phase === 'begin' && r.requestId === retried.requestId)).toHaveLength(1);
  });
});
