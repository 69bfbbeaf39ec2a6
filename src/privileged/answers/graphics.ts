// SPDX-License-Identifier: Apache-2.0
// openGraphics and sendKey of the DOMAIN_WRITE group, the screenshot of DOMAIN_READ (helper side): the driver opens a
// VNC client socket or a sealed screenshot memfd, the descriptor goes to the asking process over its descriptor
// channel and the answer carries the token. The helper never reads a display's or a screen's bytes.
import { VG_ERR_NOT_SUPPORTED } from '../../common/errors';
import { FdKind } from '../../ipc/fd-channel';
import type { ScreenshotAnswer } from '../../ipc/objects/graphics';
import type { Op, Requests } from '../../ipc/program';
import { driverError } from '../drivers/driver';
import type { AnswerContext } from './types';

type WriteBody = Requests[typeof Op.DOMAIN_WRITE_REQ];

// undefined: not ours (sendKey falls to the extra actions when the driver has no sendKeys: the test driver).
export function answerGraphics(ctx: AnswerContext, body: WriteBody): Promise<object> | undefined {
  const d = ctx.driver;
  if (body.action === 'openGraphics') {
    return (async () => {
      if (!d.openGraphics) throw driverError(VG_ERR_NOT_SUPPORTED, 'virDomainOpenGraphicsFD');
      const fd = await d.openGraphics(body.uuid, body.idx);
      return { token: ctx.passFd(fd, FdKind.GRAPHICS) }; // closes the helper's copy in any case
    })();
  }
  if (body.action === 'sendKey' && d.sendKeys) {
    const send = d.sendKeys.bind(d);
    return (async () => (await send(body.uuid, body.codeset, body.keycodes), {}))();
  }
  return undefined;
}

// A driver with screenshotFd (QEMU) answers with a token; one with screenshot (test) with the bytes.
export async function answerScreenshot(ctx: AnswerContext, uuid: Buffer, screen: number): Promise<ScreenshotAnswer> {
  const d = ctx.driver;
  if (d.screenshotFd) {
    const { mime, fd } = await d.screenshotFd(uuid, screen);
    return { mime, token: ctx.passFd(fd, FdKind.SCREENSHOT) };
  }
  if (!d.screenshot) throw driverError(VG_ERR_NOT_SUPPORTED, 'virDomainScreenshot');
  const { mime, data } = await d.screenshot(uuid, screen);
  return { mime, data };
}
