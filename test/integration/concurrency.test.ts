// SPDX-License-Identifier: Apache-2.0
// 100 concurrent clients doing mixed reads and writes through the real daemon: no lost or torn state, no crossed replies.
import { VirtgateClient } from '../../src/client';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';

const CLIENTS = 100;
const ROUNDS = 5;

let vg: RunningDaemon;
beforeAll(async () => (vg = await startDaemon()));
afterAll(async () => vg?.stop());

const xml = (name: string, mib: number): string =>
  `<domain type='test'><name>${name}</name><memory unit='MiB'>${mib}</memory><vcpu>4</vcpu><os><type>hvm</type></os></domain>`;

test(`${CLIENTS} clients, each driving its own VM while reading everyone's`, async () => {
  const clients = await Promise.all(Array.from({ length: CLIENTS }, () => VirtgateClient.connect(vg.uri)));
  const failures: string[] = [];
  await Promise.all(
    clients.map(async (c, i) => {
      const name = `cc-${i}`;
      try {
        let dom = await c.defineXml(xml(name, 256 + i));
        for (let round = 0; round < ROUNDS; round++) {
          dom = await c.create(dom);
          const want = BigInt((128 + i + round) * 1024);
          // Several calls in flight on one connection, reads and writes interleaved.
          const [, list] = await Promise.all([c.setMemory(dom, want, 1), c.listAllDomains(0), c.getState(dom)]);
          if (!list.some((d) => d.name === name)) failures.push(`${name}: missing from list`);
          const info = await c.getInfo(dom);
          if (info.memory !== want) failures.push(`${name}: memory ${info.memory} != ${want}`);
          if (info.maxMem !== BigInt((256 + i) * 1024)) failures.push(`${name}: maxMem ${info.maxMem}`);
          await c.suspend(dom);
          if ((await c.getState(dom)).state !== 3) failures.push(`${name}: not paused`);
          await c.resume(dom);
          await c.destroy(dom);
          if (await c.isActive(dom)) failures.push(`${name}: still active`);
        }
        const again = await c.lookupByName(name);
        if (again.uuid.compare(dom.uuid) !== 0) failures.push(`${name}: uuid changed`);
        await c.undefine(dom);
      } catch (e) {
        failures.push(`${name}: ${(e as Error).message}`);
      }
    }),
  );
  expect(failures).toEqual([]);
  const left = await clients[0].listAllDomains(0);
  expect(left.map((d) => d.name)).toEqual(['test']);
  await Promise.all(clients.map((c) => c.close()));
}, 120000);
