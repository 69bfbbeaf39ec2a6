// SPDX-License-Identifier: Apache-2.0
// EVENTS_SUBSCRIBE: domain snapshots and object states, then the sync-complete answer; changes and lifecycle events follow under the same id.
import type { Op } from '../../ipc/program';
import type { AnswerFn } from './types';

// The subscription's snapshots and object states go out first (from ctx.subscribe); this answer closes the initial sync.
export const answerEventsSubscribe: AnswerFn<typeof Op.EVENTS_SUBSCRIBE_REQ> = (ctx) => {
  const sent = ctx.subscribe();
  return sent ? sent.then(() => ({ event: null, synced: true })) : { event: null, synced: true };
};
