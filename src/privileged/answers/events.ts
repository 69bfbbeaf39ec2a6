// SPDX-License-Identifier: Apache-2.0
// EVENTS_SUBSCRIBE: domain snapshots, then the sync-complete answer; changes and lifecycle events follow under the same id.
import type { Op } from '../../ipc/program';
import type { AnswerFn } from './types';

// The subscription's snapshots go out first (from ctx.subscribe); this answer closes the initial sync.
export const answerEventsSubscribe: AnswerFn<typeof Op.EVENTS_SUBSCRIBE_REQ> = (ctx) => {
  ctx.subscribe();
  return { event: null, synced: true };
};
