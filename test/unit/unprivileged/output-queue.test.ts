// SPDX-License-Identifier: Apache-2.0
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { OutputBudget, OutputQueue, SEGMENT } from '../../../src/unprivileged/output-queue';

// A socket that takes `room` bytes, then needs a drain; written() gives back every byte in order.
class FakeSock extends EventEmitter {
  writableNeedDrain = false;
  out: Buffer[] = [];
  pending: (() => void)[] = [];
  constructor(public room: number) {
    super();
  }
  write(b: Buffer, cb: () => void): boolean {
    this.out.push(Buffer.from(b));
    this.pending.push(cb);
    this.room -= b.length;
    if (this.room <= 0) this.writableNeedDrain = true;
    return !this.writableNeedDrain;
  }
  drain(room: number): void {
    this.room = room;
    this.writableNeedDrain = false;
    for (const cb of this.pending.splice(0)) cb();
    this.emit('drain');
  }
  written(): Buffer {
    return Buffer.concat(this.out);
  }
}

function setup(room: number, max = 1 << 20, total = 1 << 22) {
  const sock = new FakeSock(room);
  const budget = new OutputBudget(total);
  const drops: string[] = [];
  const pressure: boolean[] = [];
  const q = new OutputQueue({ sock: sock as unknown as net.Socket, max, budget, drop: (r) => drops.push(r), pressure: (b) => pressure.push(b) });
  return { sock, budget, q, drops, pressure };
}

const frame = (i: number, len: number): Buffer => Buffer.alloc(len, i % 251);

test('frames of every size come out whole and in order across segments and drains', () => {
  const { sock, q, budget } = setup(100);
  const sent: Buffer[] = [];
  const sizes = [68, 5000, 68, SEGMENT - 10, 20, 40000, 68, 68, SEGMENT, 3, 70000, 1];
  for (let round = 0; round < 5; round++) {
    sizes.forEach((n, i) => {
      const f = frame(round * 100 + i, n);
      sent.push(f);
      q.write(f);
    });
    sock.drain(10000);
  }
  for (let i = 0; i < 20; i++) sock.drain(1 << 30);
  expect(sock.written().equals(Buffer.concat(sent))).toBe(true);
  expect(q.queued).toBe(0);
  expect(budget.total).toBe(0);
});

test('queued memory is counted as held (segments), the connection is dropped past max, pressure follows the backlog', () => {
  const { sock, q, drops, pressure, budget } = setup(0, 4 * SEGMENT);
  q.write(frame(1, 68)); // goes to the socket, which is then full
  expect(pressure).toEqual([true]);
  for (let i = 0; i < 2 * (SEGMENT / 68); i++) q.write(frame(i, 68)); // 3 segments (a 16 KiB segment holds 240)
  expect(drops).toEqual([]);
  expect(q.queued).toBeLessThanOrEqual(4 * SEGMENT);
  expect(budget.total).toBe(q.queued);
  for (let i = 0; i < 2 * (SEGMENT / 68); i++) q.write(frame(i, 68)); // a 5th segment would pass 4
  expect(drops[0]).toMatch(/over maxOutputBytes/);
  sock.drain(1 << 30);
  sock.drain(1 << 30);
  expect(pressure[pressure.length - 1]).toBe(false);
});

test('past the total budget the connection with the most queued is dropped, and dispose returns its bytes', () => {
  const budget = new OutputBudget(3 * SEGMENT);
  const mk = () => {
    const sock = new FakeSock(0);
    const drops: string[] = [];
    const q = new OutputQueue({ sock: sock as unknown as net.Socket, max: 1 << 20, budget, drop: (r) => drops.push(r), pressure: () => undefined });
    return { q, drops };
  };
  const a = mk();
  const b = mk();
  a.q.write(frame(0, 10));
  b.q.write(frame(0, 10));
  for (let i = 0; i < 2 * (SEGMENT / 100); i++) a.q.write(frame(i, 100)); // a: two segments
  b.q.write(frame(1, 100)); // b's first segment passes the total: a has the most and goes
  expect(a.drops[0]).toMatch(/maxTotalOutputBytes/);
  expect(b.drops).toEqual([]);
  a.q.dispose();
  expect(budget.total).toBe(b.q.queued);
});
