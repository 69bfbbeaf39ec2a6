// SPDX-License-Identifier: Apache-2.0
// Definition answers: define, create from XML, undefine, tenant reassignment; the XML is re-validated by the driver (helper side of the IPC boundary).
import type { Op } from '../../ipc/program';
import type { AnswerFn } from './types';

export const answerDomainDefine: AnswerFn<typeof Op.DOMAIN_DEFINE_REQ> = (ctx, body) => ctx.driver.define(body.xml, body.actor.tenant);

export const answerDomainCreateXml: AnswerFn<typeof Op.DOMAIN_CREATE_XML_REQ> = (ctx, body) => ctx.driver.createXml(body.xml, body.actor.tenant);

export const answerDomainUndefine: AnswerFn<typeof Op.DOMAIN_UNDEFINE_REQ> = (ctx, body) => {
  ctx.driver.undefine(body.uuid);
  return {};
};

// A new VM belongs to the requesting session's tenant; only this op ever moves one (the front end lets host admins ask).
export const answerDomainSetTenant: AnswerFn<typeof Op.DOMAIN_SET_TENANT_REQ> = (ctx, body) => ctx.driver.setTenant(body.uuid, body.tenant);
