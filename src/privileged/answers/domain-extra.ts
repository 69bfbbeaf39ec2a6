// SPDX-License-Identifier: Apache-2.0
// Answers of the extra domain actions (stats, tuning, ...); undefined = not an extra action.
import type { Op, Requests } from '../../ipc/program';
import type { AnswerContext, AnswerFn } from './types';

export function answerDomainReadExtra(
  _ctx: AnswerContext,
  _body: Requests[typeof Op.DOMAIN_READ_REQ],
): ReturnType<AnswerFn<typeof Op.DOMAIN_READ_REQ>> | undefined {
  return undefined;
}

export function answerDomainWriteExtra(
  _ctx: AnswerContext,
  _body: Requests[typeof Op.DOMAIN_WRITE_REQ],
): ReturnType<AnswerFn<typeof Op.DOMAIN_WRITE_REQ>> | undefined {
  return undefined;
}
