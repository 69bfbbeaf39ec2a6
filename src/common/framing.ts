// SPDX-License-Identifier: Apache-2.0
// Splits a byte stream into u32-length-prefixed frames; the length is checked before any allocation.
import { VG_ERR_FRAME_LENGTH, VgError } from './errors';

export interface FrameLimits {
  min: number; // smallest valid frame, length word included
  max: number; // largest valid frame, length word included
  // Raw bytes that follow a frame on the stream and belong to no frame (libvirt's CALL_WITH_FDS sends one byte per
  // descriptor after the message): skipped. May throw: the decoder fails as for a bad length.
  skipAfter?: (frame: Buffer) => number;
}

// A frame larger than this is assembled in one buffer of its exact size, allocated once its length word is checked
// (untouched pages cost no memory: only the bytes received do), instead of a list of read chunks joined at the end.
// One allocation that size is returned to the system whole when it is freed; thousands of 64 KiB read chunks are not.
export const LARGE_FRAME = 64 * 1024;

// Holds at most one partial frame. `push` returns whole frames (each a Buffer that includes the length word).
// After an error the decoder is poisoned: the caller must close the stream.
export class FrameDecoder {
  readonly #min: number;
  #max: number;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #need = 0; // length of the frame being assembled, 0 while the length word is incomplete
  #big: Buffer | null = null; // a large frame being assembled in place
  #bigPos = 0;
  #failed: VgError | null = null;
  #skip = 0; // raw bytes still to drop before the next frame
  readonly #skipAfter: ((frame: Buffer) => number) | undefined;
  largeBytesIn = 0; // bytes copied into large frames' buffers so far: the per-byte work a reader may need to pace

  constructor(limits: FrameLimits) {
    if (limits.min < 4 || limits.max < limits.min) throw new Error('invalid frame limits');
    this.#min = limits.min;
    this.#max = limits.max;
    this.#skipAfter = limits.skipAfter;
  }

  // Bytes to drop after `frame` (may throw: then the decoder is poisoned).
  #after(frame: Buffer): void {
    if (!this.#skipAfter) return;
    try {
      this.#skip += this.#skipAfter(frame);
    } catch (e) {
      this.#failed = e instanceof VgError ? e : VG_ERR_FRAME_LENGTH(0, this.#min, this.#max);
      this.release();
      throw this.#failed;
    }
  }

  // The largest frame from now on; a frame whose length word was already accepted keeps its length.
  setMax(max: number): void {
    if (max < this.#min) throw new Error('invalid frame limits');
    this.#max = max;
  }

  get max(): number {
    return this.#max;
  }

  // Bytes held for the partial frame.
  get buffered(): number {
    return this.#big ? this.#bigPos : this.#buffered;
  }

  push(chunk: Buffer): Buffer[] {
    if (this.#failed) throw this.#failed;
    const out: Buffer[] = [];
    let data = chunk;
    if (this.#skip > 0) {
      const n = Math.min(this.#skip, data.length);
      this.#skip -= n;
      data = data.subarray(n);
      if (data.length === 0) return out;
      chunk = data;
    }
    if (this.#big) {
      const big = this.#big;
      const n = Math.min(big.length - this.#bigPos, chunk.length);
      chunk.copy(big, this.#bigPos, 0, n);
      this.#bigPos += n;
      this.largeBytesIn += n;
      if (this.#bigPos < big.length) return out;
      out.push(big);
      this.#big = null;
      this.#bigPos = 0;
      this.#need = 0;
      this.#after(big);
      data = chunk.subarray(n);
      const k = Math.min(this.#skip, data.length);
      this.#skip -= k;
      data = data.subarray(k);
      if (data.length === 0) return out;
    }
    let accepted = 0; // a length word checked on an earlier push (the limit may have changed since)
    if (this.#buffered > 0) {
      accepted = this.#need;
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
      if (!(pos === 0 && accepted > 0 && len === accepted) && (len < this.#min || len > this.#max)) {
        this.#failed = VG_ERR_FRAME_LENGTH(len, this.#min, this.#max);
        this.release();
        throw this.#failed;
      }
      if (data.length - pos < len) break;
      const frame = data.subarray(pos, pos + len);
      out.push(frame);
      pos += len;
      this.#after(frame);
      if (this.#skip > 0) {
        const k = Math.min(this.#skip, data.length - pos);
        this.#skip -= k;
        pos += k;
      }
    }
    this.#need = 0;
    if (pos < data.length) {
      const rest = data.subarray(pos);
      this.#need = rest.length >= 4 ? rest.readUInt32BE(0) : 0;
      if (this.#need > LARGE_FRAME) {
        this.#big = Buffer.allocUnsafeSlow(this.#need);
        this.#bigPos = rest.copy(this.#big, 0);
        this.largeBytesIn += this.#bigPos;
      } else {
        // Copy the tail so the caller's large chunk is not retained by a small partial frame.
        this.#chunks = [Buffer.from(rest)];
        this.#buffered = rest.length;
      }
    }
    return out;
  }

  // Drops the partial frame (the stream is closing): nothing stays reachable from the decoder.
  release(): void {
    this.#big = null;
    this.#bigPos = 0;
    this.#chunks = [];
    this.#buffered = 0;
    this.#need = 0;
  }

  // Bytes still expected for the partial frame (0 if none or unknown yet).
  get pending(): number {
    if (this.#big) return this.#big.length - this.#bigPos;
    return this.#need > 0 ? this.#need - this.#buffered : 0;
  }
}
