// SPDX-License-Identifier: Apache-2.0
// NODE_FACTS: host and hypervisor facts for the front end's connect/node procedures (helper side of the IPC boundary).
import type { Op } from '../../ipc/program';
import type { AnswerFn } from './types';

export const answerNodeFacts: AnswerFn<typeof Op.NODE_FACTS_REQ> = (ctx) => ctx.driver.nodeFacts();
