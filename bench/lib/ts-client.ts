// SPDX-License-Identifier: Apache-2.0
// The TypeScript client's side of the rows: connect and list the running guests, sequential and pipelined GetInfo loops.
import { ListAllFlags, type RemoteDomain, VirtgateClient } from '../../src/client';
import { type Figures, figures } from './ctx';

export async function openWithGuests(uri: string): Promise<{ c: VirtgateClient; doms: RemoteDomain[] }> {
  const c = await VirtgateClient.connect(uri);
  const doms = await c.listAllDomains(ListAllFlags.ACTIVE);
  if (doms.length === 0) throw new Error(`no running guests at ${uri}`);
  return { c, doms };
}

// One call at a time, like the C client's loop: iterations × guests calls.
export async function tsSequential(uri: string, iterations: number): Promise<Figures> {
  const { c, doms } = await openWithGuests(uri);
  try {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) for (const d of doms) await c.getInfo(d);
    return figures(iterations * doms.length, Number(process.hrtime.bigint() - t0) / 1e9);
  } finally {
    await c.close();
  }
}

// `inFlight` loops on one connection, each awaiting its own calls, `total` calls in all.
export async function tsPipelined(uri: string, total: number, inFlight: number): Promise<Figures> {
  const { c, doms } = await openWithGuests(uri);
  try {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < total) await c.getInfo(doms[next++ % doms.length]);
    };
    const t0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: inFlight }, worker));
    return figures(total, Number(process.hrtime.bigint() - t0) / 1e9);
  } finally {
    await c.close();
  }
}
