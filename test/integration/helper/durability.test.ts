// SPDX-License-Identifier: Apache-2.0
// The built helper (sandboxed) under write load: group-committed state log, kill -9, restart; every write whose answer
// was received is there afterwards. A clean stop checkpoints (the log ends empty) without dying of SIGSYS.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Op } from '../../../src/ipc/program';
import type { AnswerFrame, DomainSummary } from '../../../src/ipc/program';
import { ACTOR, RawClient } from './ipc-client';
import { type Helper, startHelper, stopHelper, tempDir } from './spawn';
import { dx } from '../../helpers/domain-def';
import type { DomainDef } from '../../../src/ipc/objects/domain-def';

const dirs: string[] = [];
const helpers: Helper[] = [];
const start = async (d: string): Promise<Helper> => {
  const h = await startHelper(d);
  helpers.push(h);
  return h;
};
afterAll(async () => {
  for (const h of helpers) await stopHelper(h, 'SIGKILL');
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const body = <T>(a: AnswerFrame): T => {
  if (!a.ok) throw new Error(`${a.code}: ${a.detail}`);
  return a.body as T;
};
const vm = (name: string) => `<domain type='test'><name>${name}</name><memory>1048576</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>`;

async function ready(socket: string): Promise<RawClient> {
  const c = await RawClient.connect(socket);
  await c.hello();
  return c;
}

test('kill -9 under write load, then restart: every acknowledged write is present', async () => {
  const d = tempDir();
  dirs.push(d);
  const h = await start(d);
  const WRITERS = 6; // the helper takes 8 connections
  const clients = await Promise.all(Array.from({ length: WRITERS }, () => ready(h.socket)));
  const uuids = await Promise.all(
    clients.map(async (c, i) => body<DomainSummary>(await c.call(Op.DOMAIN_WRITE_REQ, { action: 'define', actor: ACTOR, def: dx(vm(`w-${i}`)) })).uuid),
  );
  const acked = new Array<number>(WRITERS).fill(0); // last memory value whose answer came back, per writer
  const defined: string[][] = clients.map(() => []); // VMs whose define was answered
  let stop = false;
  const load = clients.map(async (c, i) => {
    for (let k = 1; !stop; k++) {
      try {
        const a = await c.call(Op.DOMAIN_WRITE_REQ, {
          action: 'setMemory',
          actor: ACTOR,
          uuid: uuids[i],
          memoryKiB: BigInt(1024 + k),
          live: false,
          config: true,
          max: false,
        });
        if (a.ok) acked[i] = 1024 + k;
        if (k % 20 === 0) {
          const name = `d-${i}-${k}`;
          if ((await c.call(Op.DOMAIN_WRITE_REQ, { action: 'define', actor: ACTOR, def: dx(vm(name)) })).ok) defined[i].push(name);
        }
      } catch {
        return; // the helper is gone
      }
    }
  });
  await new Promise((r) => setTimeout(r, 800));
  h.proc.kill('SIGKILL');
  expect(await h.exited).toBeNull();
  expect(h.proc.signalCode).toBe('SIGKILL');
  stop = true;
  await Promise.all(load);
  const total = acked.reduce((a, b) => a + b - 1024, 0);
  expect(total).toBeGreaterThan(50); // there was real load

  const h2 = await start(d);
  expect(h2.stderr()).toMatch(/replayed \d+ record\(s\)/); // the kill left work in the log
  const c = await ready(h2.socket);
  for (const [i, u] of uuids.entries()) {
    const mem = Number(body<{ def: DomainDef }>(await c.call(Op.DOMAIN_READ_REQ, { action: 'xml', uuid: u, inactive: true })).def.curMemKiB);
    // The answered write is there; at most the one in flight when the helper died may have landed too.
    expect([acked[i], acked[i] + 1]).toContain(mem);
  }
  const names = new Set(body<{ domains: DomainSummary[] }>(await c.call(Op.DOMAIN_READ_REQ, { action: 'list' })).domains.map((x) => x.name));
  for (const n of defined.flat()) expect(names.has(n)).toBe(true);
  c.end();
  expect(await stopHelper(h2)).toBe(0); // clean stop: a checkpoint, in the sandbox (a SIGSYS would show here)
  expect(h2.proc.signalCode).toBeNull();
  expect(fs.statSync(path.join(d, 'state', 'state.wal')).size).toBe(0);
  // And the checkpointed files alone carry the state.
  const h3 = await start(d);
  const c3 = await ready(h3.socket);
  const def0 = body<{ def: DomainDef }>(await c3.call(Op.DOMAIN_READ_REQ, { action: 'xml', uuid: uuids[0], inactive: true })).def;
  expect(def0.curMemKiB).toBeGreaterThan(0n);
  expect(h3.stderr()).not.toMatch(/replayed/);
  c3.end();
  expect(await stopHelper(h3)).toBe(0);
  for (const w of clients) w.end();
}, 60000);
