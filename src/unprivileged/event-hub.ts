// SPDX-License-Identifier: Apache-2.0
// Fans the helper's lifecycle events out to every subscribed client connection, filtered per object.
import type { LifecycleEvent } from '../ipc/program';
import { DomainEventId } from '../protocol/constants';
import { encodeEvent } from '../protocol/messages';
import { P } from '../protocol/procs/remote';
import type { Session } from './session';

export class EventHub {
  readonly #sessions: Set<Session>;
  readonly #visible: (s: Session, ev: LifecycleEvent) => boolean;

  constructor(sessions: Set<Session>, visible: (s: Session, ev: LifecycleEvent) => boolean) {
    this.#sessions = sessions;
    this.#visible = visible;
  }

  publish(ev: LifecycleEvent): void {
    const dom = { name: ev.domain.name, uuid: ev.domain.uuid, id: ev.domain.id };
    let legacyFrame: Buffer | null = null;
    for (const s of this.#sessions) {
      if (s.closed || s.events.size === 0 || !s.opened) continue;
      let checked: boolean | null = null;
      for (const reg of s.events.values()) {
        if (reg.eventID !== DomainEventId.LIFECYCLE) continue;
        if (reg.domUuid && !reg.domUuid.equals(ev.domain.uuid)) continue;
        checked ??= this.#visible(s, ev);
        if (!checked) break;
        if (reg.legacy) {
          legacyFrame ??= encodeEvent(P.DOMAIN_EVENT_LIFECYCLE, { dom, event: ev.event, detail: ev.detail });
          s.send(legacyFrame);
        } else {
          s.send(encodeEvent(P.DOMAIN_EVENT_CALLBACK_LIFECYCLE, { callbackID: reg.callbackID, dom, event: ev.event, detail: ev.detail }));
        }
      }
    }
  }
}
