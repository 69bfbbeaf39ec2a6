// SPDX-License-Identifier: Apache-2.0
// Domain event callbacks: registrations live in the Session; ../event-hub sends the event frames.
import { VG_ERR_ARG_INVALID, VG_ERR_INTERNAL } from '../../common/errors';
import { PD } from '../../protocol/procs/domain-extra';
import { DomainEventId } from '../../protocol/constants';
import { P, allProcs } from '../../protocol/procs/remote';
import type { RemoteDomain } from '../../protocol/types';
import type { EventRegistration } from '../session';
import { type Entry, type HandlerContext, entry } from './common';

function register(ctx: HandlerContext, eventID: number, dom: RemoteDomain | null, legacy: boolean): EventRegistration {
  if (eventID < 0 || eventID >= DomainEventId.LAST) throw VG_ERR_ARG_INVALID(`unsupported event ID ${eventID}`);
  // Each callback costs memory here and one event frame per event: a connection holds at most maxEventRegistrations.
  const max = ctx.session.maxEventRegistrations;
  if (ctx.session.events.size >= max) throw VG_ERR_ARG_INVALID(`too many event callbacks on this connection (maxEventRegistrations = ${max})`);
  const reg: EventRegistration = { callbackID: ctx.nextCallbackId(), eventID, domUuid: dom ? dom.uuid : null, legacy };
  ctx.session.events.set(reg.callbackID, reg);
  return reg;
}

// Every event ID is accepted and remembered; only lifecycle (0) events are ever emitted.
export const eventHandlers: Entry[] = [
  entry(P.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, async (ctx, { eventID, dom }) => ({ callbackID: register(ctx, eventID, dom, false).callbackID })),
  entry(P.CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY, async (ctx, { callbackID }) => {
    if (!ctx.session.events.delete(callbackID)) throw VG_ERR_ARG_INVALID(`callback ${callbackID} not registered`);
  }),
  entry(P.CONNECT_DOMAIN_EVENT_REGISTER_ANY, async (ctx, { eventID }) => {
    for (const r of ctx.session.events.values()) if (r.legacy && r.eventID === eventID) throw VG_ERR_ARG_INVALID(`event ${eventID} already registered`);
    register(ctx, eventID, null, true);
  }),
  entry(P.CONNECT_DOMAIN_EVENT_DEREGISTER_ANY, async (ctx, { eventID }) => {
    for (const [id, r] of ctx.session.events) {
      if (r.legacy && r.eventID === eventID) {
        ctx.session.events.delete(id);
        return;
      }
    }
    throw VG_ERR_ARG_INVALID(`event ${eventID} not registered`);
  }),
  // Old-style lifecycle callbacks: libvirtd registers one legacy lifecycle callback per call, and drops the first
  // lifecycle registration of the connection on deregister.
  entry(PD.CONNECT_DOMAIN_EVENT_REGISTER, async (ctx) => {
    register(ctx, DomainEventId.LIFECYCLE, null, true);
    return { cbRegistered: 0 };
  }),
  entry(PD.CONNECT_DOMAIN_EVENT_DEREGISTER, async (ctx) => {
    for (const [id, r] of ctx.session.events) {
      if (r.eventID === DomainEventId.LIFECYCLE) {
        ctx.session.events.delete(id);
        return { cbRegistered: 0 };
      }
    }
    throw VG_ERR_INTERNAL(`domain event ${DomainEventId.LIFECYCLE} not registered`);
  }),
];

// Messages the server sends; a client calling them gets libvirtd's unknown-procedure answer (see Session).
export const SERVER_MESSAGES = allProcs()
  .filter((p) => p.message)
  .map((p) => p.proc); // every object's event MESSAGEs
