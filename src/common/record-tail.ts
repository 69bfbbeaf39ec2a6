// SPDX-License-Identifier: Apache-2.0
// The end of an append-only file of whole records (the helper's journal and its state log), appended all or nothing;
// pure: the caller passes the two file calls (injectable, so tests can refuse or shorten writes).

export interface AppendFs {
  writeSync(fd: number, buf: Buffer): number;
  ftruncateSync(fd: number, len: number): void;
}

export class RecordTail {
  size = 0; // bytes of whole records
  #torn = false; // a failed append may have left bytes past size: cut them before the next append

  constructor(
    readonly afs: AppendFs,
    readonly what: string, // names the file in a short write's error: 'the helper journal'
  ) {}

  // Whole records end at `size` (a new file, a recovered one, one cut to empty).
  reset(size: number): void {
    this.size = size;
    this.#torn = false;
  }

  // One record with write(2): all or nothing. A refused or short write is cut back to the last whole record and
  // rethrown (a short write as ENOSPC), so the caller changes nothing; if even the cut fails, the next append cuts first
  // (and throws again while the disk refuses).
  append(fd: number, buf: Buffer): void {
    if (this.#torn) {
      this.afs.ftruncateSync(fd, this.size);
      this.#torn = false;
    }
    try {
      const n = this.afs.writeSync(fd, buf);
      if (n !== buf.length)
        throw Object.assign(new Error(`ENOSPC: short write to ${this.what} (${n} of ${buf.length} bytes)`), { code: 'ENOSPC', syscall: 'write' });
    } catch (e) {
      this.#torn = true;
      try {
        this.afs.ftruncateSync(fd, this.size);
        this.#torn = false;
      } catch {
        // cut again before the next append
      }
      throw e;
    }
    this.size += buf.length;
  }
}
