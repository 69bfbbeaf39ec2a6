// SPDX-License-Identifier: Apache-2.0
// The per-object job queue, alone and inside the IPC server with a driver that takes time (as QMP will): writes to one
// object never overlap and keep their order, writes to other objects and reads go on meanwhile.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Op } from '../../../src/ipc/program';
import { TestDriver } from '../../../src/privileged/drivers/test-driver';
import { IpcServer } from '../../../src/privileged/ipc-server';
import { JobQueue, jobKey } from '../../../src/privileged/jobs';
import { RawClient } from '../../integration/helper/ipc-client';
import { dx } from '../../helpers/domain-def';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('jobs of one key run one at a time in order; other keys overlap; a failure does not block the next', async () => {
  const q = new JobQueue();
  const log: string[] = [];
  const job =
    (name: string, ms: number, fail = false) =>
    async () => {
      log.push(`start ${name}`);
      await tick(ms);
      log.push(`end ${name}`);
      if (fail) throw new Error(name);
      return name;
    };
  const a1 = q.run('a', job('a1', 30, true));
  const a2 = q.run('a', job('a2', 5));
  const b1 = q.run('b', job('b1', 5));
  await expect(a1).rejects.toThrow('a1');
  await expect(a2).resolves.toBe('a2');
  await expect(b1).resolves.toBe('b1');
  expect(log.indexOf('start a2')).toBeGreaterThan(log.indexOf('end a1')); // never overlapping on one key
  expect(log.indexOf('start b1')).toBeLessThan(log.indexOf('end a1')); // another key went on meanwhile
  await tick(0);
  expect(q.busy).toBe(0); // nothing is held once the jobs are done
});

test('the job key is the object a write names', () => {
  const uuid = Buffer.alloc(16, 0xab);
  expect(jobKey('DOMAIN_WRITE_REQ', { uuid })).toBe(`DOMAIN_WRITE_REQ:${'ab'.repeat(16)}`);
  expect(jobKey('VOLUME_WRITE_REQ', { pool: 'p', name: 'v' })).toBe('VOLUME_WRITE_REQ:p/v');
  expect(jobKey('DOMAIN_WRITE_REQ', { xml: '<domain/>' })).toBe('DOMAIN_WRITE_REQ');
});

describe('inside the IPC server, with a driver that answers later', () => {
  let dir: string;
  let server: IpcServer;
  afterEach(async () => {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('two writes to one VM run in turn, a write to another VM and a read overtake them', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-jobs-'));
    const d = new TestDriver({ stateDir: path.join(dir, 'state'), runtimeDir: path.join(dir, 'run'), warn: () => {} });
    const xml = (n: string) => `<domain type='test'><name>${n}</name><memory>1024</memory><os><type>hvm</type></os></domain>`;
    const slow = await d.define(dx(xml('slow')), '');
    const fast = await d.define(dx(xml('fast')), '');
    const order: string[] = [];
    const setMemory = d.setMemory.bind(d);
    // A hypervisor call that takes 80 ms for the VM `slow` (QMP-like), at once for the others.
    d.setMemory = async (uuid, kib, flags) => {
      const name = uuid.equals(slow.uuid) ? 'slow' : 'fast';
      order.push(`begin ${name} ${kib}`);
      if (name === 'slow') await tick(80);
      await setMemory(uuid, kib, flags);
      order.push(`end ${name} ${kib}`);
    };
    server = new IpcServer({ driver: d, allowUids: [process.getuid!()], log: () => {} });
    const socket = path.join(dir, 's.sock');
    await server.listen(socket);
    const c = await RawClient.connect(socket);
    await c.hello();
    const actor = (r: string) => ({ user: 'u', tenant: '', requestId: r });
    const set = (r: string, uuid: Buffer, kib: bigint) =>
      c.request(Op.DOMAIN_WRITE_REQ, { action: 'setMemory', actor: actor(r), uuid, memoryKiB: kib, live: false, config: true, max: false });
    const slow1 = set('r1', slow.uuid, 512n);
    const slow2 = set('r2', slow.uuid, 768n);
    const other = set('r3', fast.uuid, 256n);
    const read = c.request(Op.DOMAIN_READ_REQ, { action: 'info', uuid: slow.uuid });
    const ids: number[] = [];
    for (let i = 1; i <= 4; i++) ids.push((await c.answer(i)).id);
    expect(ids.indexOf(read)).toBeLessThan(ids.indexOf(slow1)); // the read did not wait for the slow write
    expect(ids.indexOf(other)).toBeLessThan(ids.indexOf(slow1)); // nor did the other VM's write
    expect(ids.indexOf(slow1)).toBeLessThan(ids.indexOf(slow2)); // one VM's writes keep their order
    expect(order.indexOf('begin slow 768')).toBeGreaterThan(order.indexOf('end slow 512')); // and never overlap
    expect((await d.info(slow.uuid)).maxMemKiB).toBeGreaterThan(0n);
    c.end();
  });
});
