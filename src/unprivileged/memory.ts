// SPDX-License-Identifier: Apache-2.0
// Gives memory back after a large message or a connection that held a lot. Node frees a Buffer's bytes only when the
// garbage collector finds it unreachable, and an idle daemon allocates too little to run a collection: 40 closed
// connections' 31 MiB of unfinished messages stayed resident until the next busy moment. After such a release we ask
// for a full collection (twice: buffers freed by the first are returned to the system by the second's sweep), at most
// once every MIN_INTERVAL_MS, so a stream of large messages cannot turn it into a pause for everyone. Then
// malloc_trim(0): the small buffers (read chunks, output segments) live in glibc's heaps, which keep freed pages.
import v8 from 'node:v8';
import vm from 'node:vm';
import { mallocTrim } from '../sandbox/libc';

const FIRST_MS = 250;
const SECOND_MS = 1000;
const MIN_INTERVAL_MS = 2000;

type Gc = () => void;

function loadGc(): Gc | null {
  const g = (globalThis as { gc?: Gc }).gc;
  if (typeof g === 'function') return g;
  try {
    v8.setFlagsFromString('--expose-gc');
    const f = vm.runInNewContext('gc') as unknown;
    return typeof f === 'function' ? (f as Gc) : null;
  } catch {
    return null;
  }
}

export class MemoryReclaimer {
  #gc: Gc | null | undefined; // undefined: not looked up yet
  #timer: NodeJS.Timeout | null = null;
  #last = 0;
  runs = 0; // collections asked for (tests)

  request(): void {
    if (this.#timer) return;
    this.#gc ??= loadGc();
    if (!this.#gc) return;
    const gc = this.#gc;
    const wait = Math.max(FIRST_MS, this.#last + MIN_INTERVAL_MS - Date.now());
    this.#timer = setTimeout(() => {
      gc();
      this.runs++;
      this.#timer = setTimeout(() => {
        gc();
        mallocTrim();
        this.runs++;
        this.#last = Date.now();
        this.#timer = null;
      }, SECOND_MS).unref();
    }, wait).unref();
  }
}
