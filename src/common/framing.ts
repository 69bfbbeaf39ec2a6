// SPDX-License-Identifier: Apache-2.0
// Splits a byte stream into u32-length-prefixed frames; the length is checked before any allocation.
import { VG_ERR_FRAME_LENGTH, VgError } from './errors';

export interface FrameLimits {
  min: number; // smallest valid frame, length word included
  max: number; // largest valid frame, length word included
}

// Holds at most one partial frame. `push` returns whole frames (each a Buffer that includes the length word).
// After an error the decoder is poisoned: the caller must close the stream.
export class FrameDecoder {
  readonly #limits: FrameLimits;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #need = 0; // length of the frame being assembled, 0 while the length word is incomplete
  #failed: VgError | null = null;

  constructor(limits: FrameLimits) {
    if (limits.min < 4 || limits.max < limits.min) throw new Error('invalid frame limits');
    this.#limits = limits;
  }

  get buffered(): number {
    return this.#buffered;
  }

  push(chunk: Buffer): Buffer[] {
    if (this.#failed) throw this.#failed;
    const out: Buffer[] = [];
    let data = chunk;
    if (this.#buffered > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      // Length already validated and frame still incomplete: keep the chunk, copy nothing yet.
      if (this.#need > 0 && this.#buffered < this.#need) return out;
      data = Buffer.concat(this.#chunks, this.#buffered);
      this.#chunks = [];
      this.#buffered = 0;
    }
    let pos = 0;
    while (data.length - pos >= 4) {
      const len = data.readUInt32BE(pos);
      if (len < this.#limits.min || len > this.#limits.max) {
        this.#failed = VG_ERR_FRAME_LENGTH(len, this.#limits.min, this.#limits.max);
        throw this.#failed;
      }
      if (data.length - pos < len) break;
      out.push(data.subarray(pos, pos + len));
      pos += len;
    }
    if (pos < data.length) {
      // Copy the tail so the caller's large chunk is not retained by a small partial frame.
      const rest = Buffer.from(data.subarray(pos));
      this.#chunks = [rest];
      this.#buffered = rest.length;
      this.#need = rest.length >= 4 ? rest.readUInt32BE(0) : 0;
    } else {
      this.#need = 0;
    }
    return out;
  }

  // Bytes still expected for the partial frame (0 if none or unknown yet).
  get pending(): number {
    return this.#need > 0 ? this.#need - this.#buffered : 0;
  }
}
