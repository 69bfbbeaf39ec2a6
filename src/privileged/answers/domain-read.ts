// SPDX-License-Identifier: Apache-2.0
// Read-only domain answers: list, lookup, info, XML (helper side of the IPC boundary).
import type { Op } from '../../ipc/program';
import type { AnswerFn } from './types';

export const answerDomainList: AnswerFn<typeof Op.DOMAIN_LIST_REQ> = (ctx) => ({ domains: ctx.driver.list() });

export const answerDomainLookup: AnswerFn<typeof Op.DOMAIN_LOOKUP_REQ> = (ctx, body) => ctx.driver.lookup(body.key);

export const answerDomainInfo: AnswerFn<typeof Op.DOMAIN_INFO_REQ> = (ctx, body) => ctx.driver.info(body.uuid);

export const answerDomainXml: AnswerFn<typeof Op.DOMAIN_XML_REQ> = (ctx, body) => ({ xml: ctx.driver.xml(body.uuid, body.inactive) });
