// SPDX-License-Identifier: Apache-2.0
// DOMAIN_WRITE: define, create, undefine, lifecycle control, memory, vCPUs, tenant reassignment, and the extra write
// actions; definitions arrive typed and field-checked by the codec, the driver checks confinement (helper side).
import type { Op } from '../../ipc/program';
import { answerDomainWriteExtra } from './domain-extra';
import { type AnswerFn, ProtocolViolation } from './types';

export const answerDomainWrite: AnswerFn<typeof Op.DOMAIN_WRITE_REQ> = async (ctx, body) => {
  const d = ctx.driver;
  switch (body.action) {
    case 'define':
      return d.define(body.def, body.actor.tenant);
    case 'createXml':
      return d.createXml(body.def, body.actor.tenant);
    case 'undefine':
      await d.undefine(body.uuid, body.removeManagedSave, body.removeSnapshots);
      return {};
    case 'control':
      return d.control(body.uuid, body.control);
    case 'setMemory':
      await d.setMemory(body.uuid, body.memoryKiB, body);
      return {};
    case 'setVcpus':
      await d.setVcpus(body.uuid, body.nvcpus, body);
      return {};
    case 'setTenant':
      // A new VM belongs to the requesting session's tenant; only this action ever moves one.
      return d.setTenant(body.uuid, body.tenant);
    default: {
      const extra = answerDomainWriteExtra(ctx, body);
      if (extra === undefined) throw new ProtocolViolation(`DOMAIN_WRITE action ${String((body as { action: unknown }).action)} has no answer`);
      return extra;
    }
  }
};
