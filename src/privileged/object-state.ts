// SPDX-License-Identifier: Apache-2.0
// The subscription stream's object state (helper side): every network, pool, volume, interface and node device once at
// subscribe time, then after each write of their ops the records that changed (and the removals), before that write's
// answer, so a front end that heard the answer already holds the new state. Each subscriber diffs against what it was
// itself sent, so a front end that reconnects starts from a full sync.
import {
  type ObjectState,
  type ObjectStateChange,
  type ObjectStateType,
  OBJECT_STATE_TYPES,
  encodeObjectState,
  objectStateKey,
} from '../ipc/objects/object-state';
import { Op } from '../ipc/program';
import type { Driver } from './drivers/driver';
import { DriverError } from './drivers/driver';

// The write ops that change these objects, and which types each may change (a pool's figures move with its volumes;
// stopping or deleting a pool takes its volumes out of reach).
export const OBJECT_STATE_OPS: ReadonlyMap<number, readonly ObjectStateType[]> = new Map<number, readonly ObjectStateType[]>([
  [Op.NETWORK_WRITE_REQ, ['network']],
  [Op.POOL_WRITE_REQ, ['pool', 'volume']],
  [Op.VOLUME_WRITE_REQ, ['pool', 'volume']],
  [Op.IFACE_WRITE_REQ, ['iface']],
  [Op.NODEDEV_WRITE_REQ, ['nodedev']],
]);

// Every object of these types as the driver holds it now; synchronous unless the driver answers later.
export function collectObjectState(driver: Driver, types: readonly ObjectStateType[]): ObjectState[] | Promise<ObjectState[]> {
  const out: ObjectState[] = [];
  let later: Promise<ObjectState[]> | null = null;
  for (const type of types) {
    if (type === 'network' && driver.networks) {
      const nets = driver.networks.list();
      if (nets instanceof Promise) later = nets.then((ns) => ns.map((network) => ({ type, network })));
      else for (const network of nets) out.push({ type, network });
    } else if (type === 'pool' && driver.pools) {
      for (const pool of driver.pools.listPools()) out.push({ type, pool });
    } else if (type === 'volume' && driver.pools) {
      // Volumes of running pools only: lookups in a stopped pool fail on the pool ("not active"), as the helper's do.
      for (const p of driver.pools.listPools()) {
        if (!p.active) continue;
        try {
          for (const vol of driver.pools.listVolumes(p.config.uuid)) out.push({ type, vol });
        } catch (e) {
          if (!(e instanceof DriverError)) throw e;
        }
      }
    } else if (type === 'iface' && driver.interfaces) {
      for (const iface of driver.interfaces.list()) out.push({ type, iface });
    } else if (type === 'nodedev' && driver.nodeDevices) {
      for (const dev of driver.nodeDevices.list()) out.push({ type, dev });
    }
  }
  return later ? later.then((rest) => [...out, ...rest]) : out;
}

export class ObjectStateFeed {
  readonly #driver: Driver;
  readonly #send: (change: ObjectStateChange) => void;
  readonly #sent = new Map<string, Buffer>(); // `type:key` -> the record's bytes as last sent
  #tail: Promise<void> | null = null; // refreshes waiting on an asynchronous driver run in order

  constructor(driver: Driver, send: (change: ObjectStateChange) => void) {
    this.#driver = driver;
    this.#send = send;
  }

  // The full state of every type (a new subscriber's initial sync).
  syncAll(): void | Promise<void> {
    return this.refresh(OBJECT_STATE_TYPES);
  }

  // Sends what changed in these types since this subscriber last heard; at once when the driver answers at once.
  refresh(types: readonly ObjectStateType[]): void | Promise<void> {
    if (this.#tail) return this.#track(this.#tail.then(() => this.#run(types)));
    const r = this.#run(types);
    return r instanceof Promise ? this.#track(r) : undefined;
  }

  #run(types: readonly ObjectStateType[]): void | Promise<void> {
    const got = collectObjectState(this.#driver, types);
    if (got instanceof Promise) return got.then((list) => this.#diff(types, list));
    this.#diff(types, got);
  }

  #track(p: Promise<void>): Promise<void> {
    const tail: Promise<void> = p
      .catch(() => undefined)
      .then(() => {
        if (this.#tail === tail) this.#tail = null;
      });
    this.#tail = tail;
    return p;
  }

  // Removals first (a name may move to a new object in the same change), then new and changed records.
  #diff(types: readonly ObjectStateType[], list: ObjectState[]): void {
    const now = new Map<string, { state: ObjectState; bytes: Buffer }>();
    for (const state of list) now.set(`${state.type}:${objectStateKey(state)}`, { state, bytes: encodeObjectState(state) });
    for (const k of [...this.#sent.keys()]) {
      const type = k.slice(0, k.indexOf(':')) as ObjectStateType;
      if (!types.includes(type) || now.has(k)) continue;
      this.#sent.delete(k);
      this.#send({ removed: { type, key: k.slice(type.length + 1) } });
    }
    for (const [k, { state, bytes }] of now) {
      if (this.#sent.get(k)?.equals(bytes)) continue;
      this.#sent.set(k, bytes);
      this.#send({ set: state });
    }
  }
}
