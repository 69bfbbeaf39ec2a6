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
import { type ObjectEvent, Op } from '../ipc/program';
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

// The volumes a write may change: one pool's (a pool write), one volume (a volume write names its pool and volume);
// null: any. A write costs the objects it may change, not every volume on the host.
export type VolumeScope = { pool: Buffer; name: string | null } | null;

export function volumeScopeOfWrite(op: number, body: unknown): VolumeScope {
  const b = body as { pool?: unknown; uuid?: unknown; name?: unknown; config?: { uuid?: unknown; name?: unknown } };
  if (op === Op.VOLUME_WRITE_REQ) {
    const name = typeof b.name === 'string' ? b.name : typeof b.config?.name === 'string' ? b.config.name : null;
    return Buffer.isBuffer(b.pool) && b.pool.length === 16 ? { pool: b.pool, name } : null;
  }
  for (const u of [b.pool, b.uuid, b.config?.uuid]) if (Buffer.isBuffer(u) && u.length === 16) return { pool: u, name: null };
  return null;
}

// What an object event's object may have changed: refreshed before the event goes out, so a subscriber holds the
// object's new state when it hears the event (as a domain's snapshot precedes its lifecycle event).
export function changedByEvent(ev: ObjectEvent): { types: readonly ObjectStateType[]; scope: VolumeScope } {
  if (ev.type === 'pool') return { types: ['pool', 'volume'], scope: { pool: ev.uuid, name: null } };
  return { types: [ev.type], scope: null };
}

// Every object of these types as the driver holds it now (volumes: within `scope`); synchronous unless the driver
// answers later.
export function collectObjectState(driver: Driver, types: readonly ObjectStateType[], scope: VolumeScope = null): ObjectState[] | Promise<ObjectState[]> {
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
        if (!p.active || (scope !== null && !p.config.uuid.equals(scope.pool))) continue;
        try {
          const vols = scope?.name != null ? [driver.pools.volumeByName(p.config.uuid, scope.name)] : driver.pools.listVolumes(p.config.uuid);
          for (const vol of vols) out.push({ type, vol });
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

  // Sends what changed in these types since this subscriber last heard (volumes: of `pool` only, when given: a write
  // to one pool costs that pool's volumes, not every volume's); at once when the driver answers at once.
  refresh(types: readonly ObjectStateType[], scope: VolumeScope = null): void | Promise<void> {
    if (this.#tail) return this.#track(this.#tail.then(() => this.#run(types, scope)));
    const r = this.#run(types, scope);
    return r instanceof Promise ? this.#track(r) : undefined;
  }

  #run(types: readonly ObjectStateType[], scope: VolumeScope): void | Promise<void> {
    const got = collectObjectState(this.#driver, types, scope);
    const prefix = scope === null ? 'volume:' : `volume:${scope.pool.toString('hex')}/`;
    const inScope = (k: string): boolean => (scope?.name != null ? k === `${prefix}${scope.name}` : k.startsWith(prefix));
    if (got instanceof Promise) return got.then((list) => this.#diff(types, inScope, list));
    this.#diff(types, inScope, got);
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
  // `inScope`: whether a volume's key was within what was collected (others are neither removed nor resent).
  #diff(types: readonly ObjectStateType[], inScope: (key: string) => boolean, list: ObjectState[]): void {
    const now = new Map<string, { state: ObjectState; bytes: Buffer }>();
    for (const state of list) now.set(`${state.type}:${objectStateKey(state)}`, { state, bytes: encodeObjectState(state) });
    for (const k of [...this.#sent.keys()]) {
      const type = k.slice(0, k.indexOf(':')) as ObjectStateType;
      if (!types.includes(type) || now.has(k) || (type === 'volume' && !inScope(k))) continue;
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
