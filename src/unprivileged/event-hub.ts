// SPDX-License-Identifier: Apache-2.0
// Fans the helper's lifecycle events out to the client connections that registered for them, filtered per object.
// An index of interested registrations (all domains, or one domain by UUID) keeps the cost of publishing an event
// proportional to the callbacks that get it, not to every connection and registration the daemon holds.
import type { LifecycleEvent } from '../ipc/program';
import { DomainEventId } from '../protocol/constants';
import { encodeEvent } from '../protocol/messages';
import { P } from '../protocol/procs/remote';
import type { EventRegistration, RegistrationWatcher, Session } from './session';

type Regs = Map<Session, Set<EventRegistration>>;

export class EventHub implements RegistrationWatcher {
  readonly #visible: (s: Session, ev: LifecycleEvent) => boolean;
  readonly #all: Regs = new Map(); // lifecycle callbacks for every domain
  readonly #byDomain = new Map<string, Regs>(); // lifecycle callbacks for one domain, by UUID (hex)

  constructor(visible: (s: Session, ev: LifecycleEvent) => boolean) {
    this.#visible = visible;
  }

  // Only lifecycle events are ever emitted: other event IDs are remembered by the session and cost nothing here.
  added(s: Session, reg: EventRegistration): void {
    if (reg.eventID !== DomainEventId.LIFECYCLE) return;
    const regs = reg.domUuid ? this.#domain(reg.domUuid.toString('hex'), true)! : this.#all;
    let set = regs.get(s);
    if (!set) regs.set(s, (set = new Set()));
    set.add(reg);
  }

  removed(s: Session, reg: EventRegistration): void {
    if (reg.eventID !== DomainEventId.LIFECYCLE) return;
    const key = reg.domUuid?.toString('hex');
    const regs = key ? this.#domain(key, false) : this.#all;
    const set = regs?.get(s);
    if (!regs || !set) return;
    set.delete(reg);
    if (set.size === 0) regs.delete(s);
    if (key && regs.size === 0) this.#byDomain.delete(key);
  }

  #domain(key: string, create: boolean): Regs | undefined {
    let regs = this.#byDomain.get(key);
    if (!regs && create) this.#byDomain.set(key, (regs = new Map()));
    return regs;
  }

  // Registrations indexed now (tests: the index must empty when connections go).
  get indexed(): number {
    let n = 0;
    for (const set of this.#all.values()) n += set.size;
    for (const regs of this.#byDomain.values()) for (const set of regs.values()) n += set.size;
    return n;
  }

  publish(ev: LifecycleEvent): void {
    const dom = { name: ev.domain.name, uuid: ev.domain.uuid, id: ev.domain.id };
    const one = this.#byDomain.get(ev.domain.uuid.toString('hex'));
    let legacyFrame: Buffer | null = null;
    const deliver = (s: Session, regs: Iterable<EventRegistration>): void => {
      if (s.closed || !s.opened || !this.#visible(s, ev)) return;
      for (const reg of regs) {
        if (s.closed) return; // sending may drop a connection that fell behind
        if (reg.legacy) {
          legacyFrame ??= encodeEvent(P.DOMAIN_EVENT_LIFECYCLE, { dom, event: ev.event, detail: ev.detail });
          s.send(legacyFrame);
        } else {
          s.send(encodeEvent(P.DOMAIN_EVENT_CALLBACK_LIFECYCLE, { callbackID: reg.callbackID, dom, event: ev.event, detail: ev.detail }));
        }
      }
    };
    // Copies: a send can drop a connection, and dropping it edits the index.
    for (const [s, set] of [...this.#all]) {
      const mine = one?.get(s);
      // Registered both ways: callbacks in registration order, as one list.
      deliver(s, mine ? [...set, ...mine].sort((a, b) => a.callbackID - b.callbackID) : [...set]);
    }
    if (one) for (const [s, set] of [...one]) if (!this.#all.has(s)) deliver(s, [...set]);
  }
}
