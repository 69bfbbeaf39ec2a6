// SPDX-License-Identifier: Apache-2.0
// Lifecycle and resource answers: start/stop/pause/reboot, memory, vCPUs (helper side of the IPC boundary).
import type { Op } from '../../ipc/program';
import type { AnswerFn } from './types';

export const answerDomainControl: AnswerFn<typeof Op.DOMAIN_CONTROL_REQ> = (ctx, body) => ctx.driver.control(body.uuid, body.action);

export const answerDomainSetMemory: AnswerFn<typeof Op.DOMAIN_SET_MEMORY_REQ> = (ctx, { uuid, memoryKiB, live, config, max }) => {
  ctx.driver.setMemory(uuid, memoryKiB, { live, config, max });
  return {};
};

export const answerDomainSetVcpus: AnswerFn<typeof Op.DOMAIN_SET_VCPUS_REQ> = (ctx, { uuid, nvcpus, live, config, max }) => {
  ctx.driver.setVcpus(uuid, nvcpus, { live, config, max });
  return {};
};
