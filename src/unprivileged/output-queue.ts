// SPDX-License-Identifier: Apache-2.0
// A connection's outgoing bytes, counted as the memory they really take: frames the socket cannot take now are copied
// into 16 KiB segments (one queued 68-byte event costs 68 bytes, not a write request and its buffers of about 1 KB),
// and everything handed to the socket counts until the socket says it is written. One budget caps all connections.
import type net from 'node:net';

export const SEGMENT = 16 * 1024;

// The output bytes of every connection together; past `max` the connection with the most queued is dropped.
export class OutputBudget {
  readonly max: number;
  total = 0;
  readonly queues = new Set<OutputQueue>(); // queues holding anything

  constructor(max: number) {
    this.max = max;
  }

  largest(): OutputQueue | null {
    let best: OutputQueue | null = null;
    for (const q of this.queues) if (!best || q.queued > best.queued) best = q;
    return best;
  }
}

export interface OutputQueueOptions {
  sock: net.Socket;
  max: number; // bytes this connection may have queued (a single frame into an empty queue always goes)
  budget: OutputBudget;
  drop: (reason: string) => void; // the connection fell behind: close it with this reason
  pressure: (backedUp: boolean) => void; // stop/resume reading it while its output is backed up
}

export class OutputQueue {
  readonly #o: OutputQueueOptions;
  #segs: { data: Buffer; cost: number }[] = []; // closed segments waiting for 'drain', in order
  #cur: Buffer | null = null; // the open copy segment, #fill bytes used
  #fill = 0;
  #segBytes = 0; // memory held by #segs and #cur
  #inStream = 0; // handed to the socket, not yet written
  #backedUp = false;
  #dead = false;
  #empty: (() => void)[] = []; // waiting for every queued byte to be in the kernel (descriptor passing)

  constructor(o: OutputQueueOptions) {
    this.#o = o;
    o.sock.on('drain', () => this.#flush());
  }

  get queued(): number {
    return this.#inStream + this.#segBytes;
  }

  #waiting(): boolean {
    return this.#segs.length > 0 || this.#cur !== null;
  }

  write(buf: Buffer): void {
    if (this.#dead) return;
    const { max, budget } = this.#o;
    const before = this.queued;
    const cost = this.#cost(buf.length);
    if (before > 0 && before + cost > max) {
      this.#o.drop(`not reading its replies and events: ${before + cost} bytes queued, over maxOutputBytes (${max})`);
      return;
    }
    if (budget.total + cost > budget.max) {
      const victim = budget.largest();
      if (victim && victim !== this && victim.queued > before) {
        victim.#o.drop(
          `not reading its replies and events: the most queued (${victim.queued} bytes) when all clients together passed maxTotalOutputBytes (${budget.max})`,
        );
      } else {
        this.#o.drop(
          `not reading its replies and events: the most queued (${before + cost} bytes) when all clients together passed maxTotalOutputBytes (${budget.max})`,
        );
        return;
      }
    }
    if (!this.#waiting() && !this.#o.sock.writableNeedDrain) this.#send(buf);
    else this.#append(buf);
    this.#update();
  }

  // Memory a frame takes once queued: its own size when it goes straight to the socket or is large, else the room in
  // the open copy segment (0) or a new segment.
  #cost(len: number): number {
    if ((!this.#waiting() && !this.#o.sock.writableNeedDrain) || len >= SEGMENT) return len;
    return this.#cur && this.#fill + len <= SEGMENT ? 0 : SEGMENT;
  }

  #closeCur(): void {
    if (!this.#cur) return;
    this.#segs.push({ data: this.#cur.subarray(0, this.#fill), cost: SEGMENT });
    this.#cur = null;
    this.#fill = 0;
  }

  #append(buf: Buffer): void {
    if (buf.length >= SEGMENT) {
      this.#closeCur();
      this.#segs.push({ data: buf, cost: buf.length });
      this.#segBytes += buf.length;
      this.#o.budget.total += buf.length;
      return;
    }
    if (!this.#cur || this.#fill + buf.length > SEGMENT) {
      this.#closeCur();
      this.#cur = Buffer.allocUnsafeSlow(SEGMENT);
      this.#segBytes += SEGMENT;
      this.#o.budget.total += SEGMENT;
    }
    buf.copy(this.#cur, this.#fill);
    this.#fill += buf.length;
  }

  #send(buf: Buffer, n = buf.length): void {
    this.#inStream += n;
    this.#o.budget.total += n;
    this.#o.sock.write(buf, () => {
      if (this.#dead) return;
      this.#inStream -= n;
      this.#o.budget.total -= n;
      this.#update();
    });
  }

  #flush(): void {
    if (this.#dead || !this.#waiting()) return this.#update();
    this.#closeCur();
    const segs = this.#segs;
    this.#segs = [];
    this.#o.budget.total -= this.#segBytes;
    this.#segBytes = 0;
    // A copy segment's whole allocation stays counted until it is written.
    for (const seg of segs) this.#send(seg.data, seg.cost);
    this.#update();
  }

  // cb runs once nothing is queued: every byte written so far is in the kernel's socket buffer.
  whenEmpty(cb: () => void): void {
    if (this.#dead) return;
    if (this.queued === 0) return cb();
    this.#empty.push(cb);
  }

  #update(): void {
    if (this.#dead) return;
    if (this.queued === 0 && this.#empty.length) {
      const cbs = this.#empty;
      this.#empty = [];
      for (const cb of cbs) cb();
    }
    if (this.queued > 0) this.#o.budget.queues.add(this);
    else this.#o.budget.queues.delete(this);
    const backedUp = this.#waiting() || this.#o.sock.writableNeedDrain;
    if (backedUp !== this.#backedUp) {
      this.#backedUp = backedUp;
      this.#o.pressure(backedUp);
    }
  }

  // The connection is gone: its bytes leave the budget (write callbacks that still come change nothing).
  dispose(): void {
    if (this.#dead) return;
    this.#o.budget.total -= this.queued;
    this.#o.budget.queues.delete(this);
    this.#dead = true;
    this.#empty = [];
    this.#segs = [];
    this.#cur = null;
    this.#segBytes = 0;
    this.#inStream = 0;
  }
}
