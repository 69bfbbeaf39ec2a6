// SPDX-License-Identifier: Apache-2.0
// Shares the event loop between connections that stream large messages and everyone else. Taking in a large message
// costs CPU per byte (the copy into its buffer, and the kernel's page faults on fresh pages: about 250 MB/s on this
// 2-core VM), and libuv reads up to 32 chunks from one socket before it looks at another. Measured: an authorized
// client's 40 × 31 MiB messages held one loop turn for up to 90 ms, and a small call's p99 went to 80-240 ms. So each
// loop turn may copy at most `perTurn` bytes of large-message input in total; a connection past that stops reading until
// the next turn (a check-phase callback, after the turn's other I/O). Small messages never wait here.

export const LARGE_INPUT_PER_TURN = 1024 * 1024;

export class InputTurns {
  #spent = 0; // large-message bytes taken in during this turn
  #waiting: Array<() => void> = [];
  #scheduled = false;
  yields = 0; // connections asked to wait a turn (tests, stats)

  constructor(
    readonly perTurn = LARGE_INPUT_PER_TURN,
    private readonly nextTurn: (f: () => void) => void = setImmediate,
  ) {}

  // `bytes` of large-message input were just taken in. True: the caller must stop reading; `resume` is called at the
  // start of the next turn.
  spend(bytes: number, resume: () => void): boolean {
    this.#spent += bytes;
    if (!this.#scheduled) {
      this.#scheduled = true;
      this.nextTurn(this.#turn);
    }
    if (this.#spent < this.perTurn) return false;
    this.#waiting.push(resume);
    this.yields++;
    return true;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  readonly #turn = (): void => {
    this.#scheduled = false;
    this.#spent = 0;
    const resume = this.#waiting;
    this.#waiting = [];
    for (const r of resume) r();
  };
}
