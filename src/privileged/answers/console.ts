// SPDX-License-Identifier: Apache-2.0
// openConsole / closeConsole of the DOMAIN_WRITE group (helper side): the driver connects the guest's console socket,
// the descriptor goes to the asking process over its descriptor channel, the answer carries the token. The console
// stays this connection's until closeConsole, or until this connection or its channel closes (the front end died).
import { VG_ERR_NOT_SUPPORTED } from '../../common/errors';
import { FdKind } from '../../ipc/fd-channel';
import type { Op, Requests } from '../../ipc/program';
import { uuidToString } from '../../ipc/program';
import { driverError } from '../drivers/driver';
import type { AnswerContext } from './types';

type WriteBody = Requests[typeof Op.DOMAIN_WRITE_REQ];

// undefined: not a console action.
export function answerConsole(ctx: AnswerContext, body: WriteBody): Promise<object> | undefined {
  if (body.action === 'openConsole') return openConsole(ctx, body.uuid, body.devName);
  if (body.action === 'closeConsole') {
    const key = `console:${uuidToString(body.uuid)}`;
    ctx.onClose(key, null);
    ctx.driver.consoleClosed?.(body.uuid);
    return Promise.resolve({});
  }
  return undefined;
}

async function openConsole(ctx: AnswerContext, uuid: Buffer, devName: string | null): Promise<{ token: Buffer }> {
  const d = ctx.driver;
  if (!d.openConsole) throw driverError(VG_ERR_NOT_SUPPORTED, 'virDomainOpenConsole');
  const fd = await d.openConsole(uuid, devName);
  let token: Buffer;
  try {
    token = ctx.passFd(fd, FdKind.CONSOLE); // closes the helper's copy in any case
  } catch (e) {
    d.consoleClosed?.(uuid);
    throw e;
  }
  ctx.onClose(`console:${uuidToString(uuid)}`, () => d.consoleClosed?.(uuid));
  return { token };
}
