// SPDX-License-Identifier: Apache-2.0
// The front end's copy of every network, storage pool, volume, interface and node device as the helper committed it,
// fed by the helper's subscription stream (initial sync, then each write's changes before that write's answer), so
// lists, lookups, info and is-active/is-persistent are answered without a helper round trip. Every method answers
// undefined while the helper is away or re-syncing: the caller then asks the helper (and gets its clear error).
import type { IfaceSummary, NodeDevDef } from '../ipc/objects/host-objects';
import type { NetworkKey, NetworkSummary } from '../ipc/objects/network';
import type { ObjectState, ObjectStateChange, ObjectStateType } from '../ipc/objects/object-state';
import { objectStateKey } from '../ipc/objects/object-state';
import type { PoolRecord, VolumeRecord } from '../ipc/objects/storage';
import type { HelperClient } from './helper-client';

type StateOf<T extends ObjectStateType> = Extract<ObjectState, { type: T }>;

export class ObjectMirror {
  // Per type, key (objectStateKey) -> the helper's record, in the helper's order of first appearance.
  readonly #byKey = new Map<ObjectStateType, Map<string, ObjectState>>();
  #synced = false;

  constructor(helper: Pick<HelperClient, 'on'>) {
    helper.on('sync-start', () => this.#reset());
    helper.on('objectState', (c: ObjectStateChange) => this.#apply(c));
    helper.on('up', () => (this.#synced = true));
    helper.on('down', () => this.#reset());
  }

  get synced(): boolean {
    return this.#synced;
  }

  // How many objects of each type are held (tests, diagnostics).
  size(type: ObjectStateType): number {
    return this.#byKey.get(type)?.size ?? 0;
  }

  #reset(): void {
    this.#synced = false;
    this.#byKey.clear();
  }

  #map(type: ObjectStateType): Map<string, ObjectState> {
    let m = this.#byKey.get(type);
    if (!m) this.#byKey.set(type, (m = new Map()));
    return m;
  }

  #apply(c: ObjectStateChange): void {
    if (c.set) this.#map(c.set.type).set(objectStateKey(c.set), c.set);
    else this.#map(c.removed.type).delete(c.removed.key);
  }

  #all<T extends ObjectStateType>(type: T): StateOf<T>[] | undefined {
    if (!this.#synced) return undefined;
    return [...(this.#byKey.get(type)?.values() ?? [])] as StateOf<T>[];
  }

  // ---------- networks ----------

  networks(): NetworkSummary[] | undefined {
    return this.#all('network')?.map((s) => s.network);
  }

  // null: no such network.
  network(key: NetworkKey): NetworkSummary | null | undefined {
    const all = this.networks();
    if (!all) return undefined;
    return (key.uuid !== undefined ? all.find((n) => n.uuid.equals(key.uuid)) : all.find((n) => n.name === key.name)) ?? null;
  }

  // ---------- storage pools and volumes ----------

  pools(): PoolRecord[] | undefined {
    return this.#all('pool')?.map((s) => s.pool);
  }

  // No lookup by name here: names are unique per tenant, the storage handlers choose among pools().

  poolByUuid(uuid: Buffer): PoolRecord | null | undefined {
    if (!this.#synced) return undefined;
    const s = this.#byKey.get('pool')?.get(uuid.toString('hex')) as StateOf<'pool'> | undefined;
    return s?.pool ?? null;
  }

  // The volumes of a running pool (the stream carries no others: callers check the pool's state first).
  volumes(pool: Buffer): VolumeRecord[] | undefined {
    return this.#all('volume')
      ?.map((s) => s.vol)
      .filter((v) => v.poolUuid.equals(pool));
  }

  volumeByName(pool: Buffer, name: string): VolumeRecord | null | undefined {
    if (!this.#synced) return undefined;
    const s = this.#byKey.get('volume')?.get(`${pool.toString('hex')}/${name}`) as StateOf<'volume'> | undefined;
    return s?.vol ?? null;
  }

  // By key or path (both the volume's path here), over running pools, as the helper searches.
  volumeByPath(path: string): VolumeRecord | null | undefined {
    return this.#all('volume')?.find((s) => s.vol.path === path)?.vol ?? (this.#synced ? null : undefined);
  }

  // ---------- interfaces and node devices ----------

  ifaces(): IfaceSummary[] | undefined {
    return this.#all('iface')?.map((s) => s.iface);
  }

  iface(name: string): IfaceSummary | null | undefined {
    if (!this.#synced) return undefined;
    return (this.#byKey.get('iface')?.get(name) as StateOf<'iface'> | undefined)?.iface ?? null;
  }

  devices(): NodeDevDef[] | undefined {
    return this.#all('nodedev')?.map((s) => s.dev);
  }

  device(name: string): NodeDevDef | null | undefined {
    if (!this.#synced) return undefined;
    return (this.#byKey.get('nodedev')?.get(name) as StateOf<'nodedev'> | undefined)?.dev ?? null;
  }
}
