// SPDX-License-Identifier: Apache-2.0
// The front end's copy of every domain's committed state, fed by the helper's subscription stream, so reads
// (GetInfo, GetState, lists, lookups) are answered without a helper round trip. Writes always go to the helper.
// The other objects' committed state (networks, pools, volumes, interfaces, node devices) comes on the same stream
// and is kept in `objects`.
import { closeSync, openSync, readSync } from 'node:fs';
import type { DomainInfo, DomainSnapshot, DomainSummary, LookupKey } from '../ipc/program';
import { LookupKind, parseCgroupCpuNs } from '../ipc/program';
import type { HelperClient } from './helper-client';
import { ObjectMirror } from './object-mirror';

// Map key of a uuid: its 16 bytes as a one-byte string (cheaper per call than the dashed form).
const keyOf = (uuid: Buffer): string => uuid.toString('latin1');

const CPU_READ = Buffer.alloc(4096); // one pread of an accounting file (cpu.stat is a few lines)

export class DomainMirror {
  readonly #byUuid = new Map<string, DomainSnapshot>();
  // Running VMs' open accounting files by uuid key: a GetInfo costs one pread, not open/fstat/read/close.
  readonly #cpuFds = new Map<string, number>();
  readonly #byName = new Map<string, DomainSnapshot>();
  readonly #byId = new Map<number, DomainSnapshot>(); // active domains only
  #synced = false;
  readonly objects: ObjectMirror;

  constructor(helper: HelperClient) {
    this.objects = new ObjectMirror(helper);
    helper.on('sync-start', () => this.#reset());
    helper.on('snapshot', (sn: DomainSnapshot) => this.#set(sn));
    helper.on('removed', (uuid: Buffer) => this.#remove(keyOf(uuid)));
    helper.on('up', () => (this.#synced = true));
    helper.on('down', () => this.#reset());
  }

  #reset(): void {
    this.#synced = false;
    for (const key of [...this.#cpuFds.keys()]) this.#closeCpu(key);
    this.#byUuid.clear();
    this.#byName.clear();
    this.#byId.clear();
  }

  #set(sn: DomainSnapshot): void {
    const key = keyOf(sn.info.uuid);
    this.#remove(key);
    this.#byUuid.set(key, sn);
    this.#byName.set(sn.info.name, sn);
    if (sn.info.id !== -1) this.#byId.set(sn.info.id, sn);
  }

  #remove(key: string): void {
    this.#closeCpu(key); // a new snapshot may name another file, or none
    const old = this.#byUuid.get(key);
    if (!old) return;
    this.#byUuid.delete(key);
    if (this.#byName.get(old.info.name) === old) this.#byName.delete(old.info.name);
    if (this.#byId.get(old.info.id) === old) this.#byId.delete(old.info.id);
  }

  // False while the helper is away or re-syncing: callers then ask the helper (and get its clear error).
  get synced(): boolean {
    return this.#synced;
  }

  get size(): number {
    return this.#byUuid.size;
  }

  // undefined = the mirror cannot answer (not synced, or the driver's figures need a fresh query); null = no such domain.
  info(uuid: Buffer, now = Date.now()): DomainInfo | null | undefined {
    if (!this.#synced) return undefined;
    const key = keyOf(uuid);
    const sn = this.#byUuid.get(key);
    if (!sn) return null;
    if (!sn.cpuClock) {
      const ns = sn.cpuFile ? this.#cpuNs(key, sn.cpuFile) : null;
      return ns === null ? undefined : { ...sn.info, cpuTimeNs: ns };
    }
    const ran = sn.cpuSinceMs === null ? 0n : BigInt(Math.max(0, now - sn.cpuSinceMs)) * 1_000_000n;
    return { ...sn.info, cpuTimeNs: sn.cpuBaseNs + ran };
  }

  list(): DomainSummary[] | undefined {
    if (!this.#synced) return undefined;
    return [...this.#byUuid.values()].map((sn) => sn.info);
  }

  lookup(key: LookupKey): DomainSummary | null | undefined {
    if (!this.#synced) return undefined;
    if (key.kind === LookupKind.UUID) return this.#byUuid.get(keyOf(key.uuid))?.info ?? null;
    if (key.kind === LookupKind.NAME) return this.#byName.get(key.name)?.info ?? null;
    return this.#byId.get(key.id)?.info ?? null;
  }

  // The VM's CPU time from its accounting file, kept open; null when it cannot be read now (closed, asked again next time).
  #cpuNs(key: string, file: string): bigint | null {
    let fd = this.#cpuFds.get(key);
    try {
      if (fd === undefined) this.#cpuFds.set(key, (fd = openSync(file, 'r')));
      const n = readSync(fd, CPU_READ, 0, CPU_READ.length, 0);
      const ns = parseCgroupCpuNs(file, CPU_READ.toString('latin1', 0, n));
      if (ns === null) this.#closeCpu(key);
      return ns;
    } catch {
      this.#closeCpu(key); // a stopped VM's cgroup is gone (ENODEV): the helper answers
      return null;
    }
  }

  #closeCpu(key: string): void {
    const fd = this.#cpuFds.get(key);
    if (fd === undefined) return;
    this.#cpuFds.delete(key);
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
  }
}
