// SPDX-License-Identifier: Apache-2.0
// Per-object job queue [libvirt's virDomainObjBeginJob]: writes to one object run one at a time, in arrival order,
// while writes to other objects and all reads go on. A job's failure never blocks the next one.
export class JobQueue {
  readonly #tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, job: () => T | Promise<T>): Promise<T> {
    const prev = this.#tails.get(key) ?? Promise.resolve();
    const next = prev.then(job, job);
    const tail = next.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key); // the last job of this key: forget it
    });
    return next;
  }

  // Objects with a job queued or running (tests: the map must empty).
  get busy(): number {
    return this.#tails.size;
  }
}

// The object a write names: its uuid, else its name (and pool, for volumes), else the whole group (define, create).
export function jobKey(opName: string, body: unknown): string {
  const b = body as { uuid?: unknown; name?: unknown; pool?: unknown };
  if (Buffer.isBuffer(b.uuid)) return `${opName}:${b.uuid.toString('hex')}`;
  const pool = Buffer.isBuffer(b.pool) ? b.pool.toString('hex') : typeof b.pool === 'string' ? b.pool : '';
  if (typeof b.name === 'string') return `${opName}:${pool}/${b.name}`;
  return opName;
}
