// SPDX-License-Identifier: Apache-2.0
// DOMAIN_WRITE: define, create, undefine, lifecycle control, memory, vCPUs, tenant reassignment, and the extra write
// actions; definitions arrive typed and field-checked by the codec, the driver checks confinement (helper side).
import type { Op } from '../../ipc/program';
import { answerConsole } from './console';
import { answerGraphics } from './graphics';
import { answerDomainWriteExtra } from './domain-extra';
import { type AnswerFn, ProtocolViolation } from './types';
import { VG_ERR_NOT_SUPPORTED } from '../../common/errors';
import { type Driver, type SaveDriver, driverError } from '../drivers/driver';

function saves(d: Driver): SaveDriver {
  if (!d.saves) throw driverError(VG_ERR_NOT_SUPPORTED, 'save and restore to a file');
  return d.saves;
}

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
    // Save and restore to a client-named file; the driver applies the tenant's directory rule (drivers/save-images.ts).
    case 'saveTo':
      await saves(d).saveTo(body.uuid, body.path, body.actor.tenant);
      return {};
    case 'restoreFrom':
      return saves(d).restoreFrom(body.path, body.actor.tenant);
    case 'saveImageRead':
      return { def: await saves(d).saveImageRead(body.path, body.actor.tenant) };
    case 'saveImageDefine':
      await saves(d).saveImageDefine(body.path, body.def, body.actor.tenant);
      return {};
    case 'coreDump':
      await saves(d).coreDump(body.uuid, body.path, body.crash, body.actor.tenant);
      return {};
    default: {
      const extra = answerGraphics(ctx, body) ?? answerDomainWriteExtra(ctx, body) ?? answerConsole(ctx, body);
      if (extra === undefined) throw new ProtocolViolation(`DOMAIN_WRITE action ${String((body as { action: unknown }).action)} has no answer`);
      return extra;
    }
  }
};
