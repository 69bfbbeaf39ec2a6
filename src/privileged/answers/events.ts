// SPDX-License-Identifier: Apache-2.0
// EVENTS_SUBSCRIBE: the ack answer; lifecycle events then follow under the same request id (helper side of the IPC boundary).
import type { Op } from '../../ipc/program';
import type { AnswerFn } from './types';

export const answerEventsSubscribe: AnswerFn<typeof Op.EVENTS_SUBSCRIBE_REQ> = (ctx) => {
  ctx.subscribe();
  return { event: null };
};
