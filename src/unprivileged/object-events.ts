// SPDX-License-Identifier: Apache-2.0
// Client registrations for network, storage pool and node device events, and their delivery, filtered per object as
// domain events are: a client hears of an object only if it may getattr it. Each object type's handlers file says how
// its events look on the wire (registerObjectEventKind); the helper's stream feeds publish().
import { VG_ERR_ARG_INVALID } from '../common/errors';
import type { ObjectEvent, ObjectEventType } from '../ipc/program';
import type { PolicyObject } from '../policy/authorizer';
import type { Session } from './session';

export interface ObjectEventKind {
  permission: string; // what a client must hold on the object to hear of it, e.g. 'network:getattr'
  object(ev: ObjectEvent): PolicyObject; // the event's object, as the helper recorded it
  // The MESSAGE(s) a callback registered for `eventID` gets for this event ([] = none: e.g. a refresh to a lifecycle callback).
  frames(callbackID: number, eventID: number, ev: ObjectEvent): Buffer[];
}

const KINDS = new Map<ObjectEventType, ObjectEventKind>();

export function registerObjectEventKind(type: ObjectEventType, kind: ObjectEventKind): void {
  if (KINDS.has(type)) throw new Error(`object event kind ${type} registered twice`);
  KINDS.set(type, kind);
}

// Per connection, like domain callbacks: a client cannot make the daemon hold unbounded registrations.
export const OBJECT_REGISTRATIONS_MAX = 1024;

interface Registration {
  type: ObjectEventType;
  eventID: number; // the type's event id (lifecycle, refresh, update)
  uuid: Buffer | null; // one object, or all of the type
}

export class ObjectEventHub {
  readonly #visible: (s: Session, o: PolicyObject, permission: string) => boolean;
  readonly #regs = new Map<Session, Map<number, Registration>>();

  constructor(visible: (s: Session, o: PolicyObject, permission: string) => boolean) {
    this.#visible = visible;
  }

  register(s: Session, type: ObjectEventType, eventID: number, callbackID: number, uuid: Buffer | null): void {
    this.#prune();
    let mine = this.#regs.get(s);
    if (!mine) this.#regs.set(s, (mine = new Map()));
    if (mine.size >= OBJECT_REGISTRATIONS_MAX) throw VG_ERR_ARG_INVALID(`at most ${OBJECT_REGISTRATIONS_MAX} object event callbacks per connection`);
    mine.set(callbackID, { type, eventID, uuid: uuid ? Buffer.from(uuid) : null });
  }

  // False when the connection holds no such callback of this type (libvirt: "callback not registered").
  deregister(s: Session, type: ObjectEventType, callbackID: number): boolean {
    const mine = this.#regs.get(s);
    if (mine?.get(callbackID)?.type !== type) return false;
    mine.delete(callbackID);
    if (mine.size === 0) this.#regs.delete(s);
    return true;
  }

  // Registrations held now (tests: closed connections' registrations must go).
  get registered(): number {
    this.#prune();
    let n = 0;
    for (const m of this.#regs.values()) n += m.size;
    return n;
  }

  publish(ev: ObjectEvent): void {
    const kind = KINDS.get(ev.type);
    if (!kind) return;
    const object = kind.object(ev);
    for (const [s, mine] of [...this.#regs]) {
      if (s.closed) {
        this.#regs.delete(s);
        continue;
      }
      if (!s.opened || !this.#visible(s, object, kind.permission)) continue;
      for (const [callbackID, reg] of [...mine].sort((a, b) => a[0] - b[0])) {
        if (reg.type !== ev.type || (reg.uuid && !reg.uuid.equals(ev.uuid))) continue;
        for (const frame of kind.frames(callbackID, reg.eventID, ev)) {
          if (s.closed) break; // sending may drop a connection that fell behind
          s.send(frame);
        }
      }
    }
  }

  #prune(): void {
    for (const s of this.#regs.keys()) if (s.closed) this.#regs.delete(s);
  }
}
