// SPDX-License-Identifier: Apache-2.0
// Shared shapes of answer functions: what an answer may use and how it signals a protocol violation (helper side).
import type { Answers, Op, RequestOp, Requests } from '../../ipc/program';
import type { Driver } from '../drivers/driver';

// The request ends the connection (openssh's fatal_f), never an error answer.
export class ProtocolViolation extends Error {
  override readonly name = 'ProtocolViolation';
}

export interface AnswerContext {
  readonly driver: Driver;
  subscribe(): void; // start pushing lifecycle events on this connection
}

// Request op -> its answer op (X_ANS = X_REQ + 1), as a type.
export interface AnswerOpOf {
  [Op.HELLO_REQ]: typeof Op.HELLO_ANS;
  [Op.NODE_FACTS_REQ]: typeof Op.NODE_FACTS_ANS;
  [Op.DOMAIN_LIST_REQ]: typeof Op.DOMAIN_LIST_ANS;
  [Op.DOMAIN_LOOKUP_REQ]: typeof Op.DOMAIN_LOOKUP_ANS;
  [Op.DOMAIN_INFO_REQ]: typeof Op.DOMAIN_INFO_ANS;
  [Op.DOMAIN_XML_REQ]: typeof Op.DOMAIN_XML_ANS;
  [Op.DOMAIN_DEFINE_REQ]: typeof Op.DOMAIN_DEFINE_ANS;
  [Op.DOMAIN_CREATE_XML_REQ]: typeof Op.DOMAIN_CREATE_XML_ANS;
  [Op.DOMAIN_UNDEFINE_REQ]: typeof Op.DOMAIN_UNDEFINE_ANS;
  [Op.DOMAIN_CONTROL_REQ]: typeof Op.DOMAIN_CONTROL_ANS;
  [Op.DOMAIN_SET_MEMORY_REQ]: typeof Op.DOMAIN_SET_MEMORY_ANS;
  [Op.DOMAIN_SET_VCPUS_REQ]: typeof Op.DOMAIN_SET_VCPUS_ANS;
  [Op.EVENTS_SUBSCRIBE_REQ]: typeof Op.EVENTS_SUBSCRIBE_ANS;
  [Op.DOMAIN_SET_TENANT_REQ]: typeof Op.DOMAIN_SET_TENANT_ANS;
}

export type AnswerFn<K extends RequestOp> = (ctx: AnswerContext, body: Requests[K]) => Answers[AnswerOpOf[K]];
