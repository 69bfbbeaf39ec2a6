// SPDX-License-Identifier: Apache-2.0
// Shared shapes of answer functions: what an answer may use and how it signals a protocol violation (helper side).
import type { AnswerOf, RequestOp, Requests } from '../../ipc/program';
import type { Driver } from '../drivers/driver';

// The request ends the connection (openssh's fatal_f), never an error answer.
export class ProtocolViolation extends Error {
  override readonly name = 'ProtocolViolation';
}

export interface AnswerContext {
  readonly driver: Driver;
  subscribe(): void; // start pushing lifecycle events on this connection
}

export type AnswerFn<K extends RequestOp> = (ctx: AnswerContext, body: Requests[K]) => AnswerOf<K>;
