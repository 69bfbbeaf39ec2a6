// SPDX-License-Identifier: Apache-2.0
// HELLO: the version handshake that opens every helper connection (helper side of the IPC boundary).
import { IPC_VERSION, Op } from '../../ipc/program';
import { type AnswerFn, ProtocolViolation } from './types';

export const answerHello: AnswerFn<typeof Op.HELLO_REQ> = (ctx, body) => {
  if (body.version !== IPC_VERSION) throw new ProtocolViolation(`HELLO version ${body.version}, expected ${IPC_VERSION}`);
  return { version: IPC_VERSION, driver: ctx.driver.name };
};
