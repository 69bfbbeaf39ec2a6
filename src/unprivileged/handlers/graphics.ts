// SPDX-License-Identifier: Apache-2.0
// A VM's display and screen (front end): virDomainOpenGraphicsFD (343) hands the client a connected VNC socket as a
// descriptor (REPLY_WITH_FDS, unix connections only); virDomainOpenGraphics (249, the client's own socket) is refused;
// a QEMU screenshot arrives as a sealed memfd this front end streams. The helper only opens: bytes never pass it.
import * as fs from 'node:fs';
import { VG_ERR_ARG_UNSUPPORTED, VG_ERR_INTERNAL, VG_ERR_NOT_SUPPORTED } from '../../common/errors';
import { FdKind } from '../../ipc/fd-channel';
import { SCREENSHOT_BYTES_MAX } from '../../ipc/objects/graphics';
import { Op } from '../../ipc/program';
import { GRAPHICS_PROCS, VIR_DOMAIN_OPEN_GRAPHICS_SKIPAUTH } from '../../protocol/procs/graphics';
import { closeFd } from '../../sandbox/fdpass';
import type { ByteSource } from '../streams';
import { type Entry, type HandlerContext, checkFlags, entry } from './common';

async function openGraphicsFd(ctx: HandlerContext, uuid: Buffer, idx: number, flags: number): Promise<void> {
  checkFlags(flags, VIR_DOMAIN_OPEN_GRAPHICS_SKIPAUTH, 'virDomainOpenGraphicsFD');
  // Checked before the helper opens anything: libvirt's client refuses too, a raw client gets the same answer.
  if (!ctx.session.canPassFds)
    throw VG_ERR_ARG_UNSUPPORTED('virDomainOpenGraphicsFD: descriptors can be passed only over a local unix socket (use the VNC proxy remotely)');
  if (!ctx.takeFd || !ctx.replyWithFds) throw VG_ERR_NOT_SUPPORTED('virDomainOpenGraphicsFD');
  const { token } = await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'openGraphics', { uuid, idx, actor: ctx.actor() });
  const fd = await ctx.takeFd(token, FdKind.GRAPHICS);
  ctx.replyWithFds([fd]); // the session sends it after the reply and closes our copy
}

// A screenshot memfd from the helper as a download source; the size is checked before anything is sent.
export async function screenshotSource(ctx: HandlerContext, token: Buffer): Promise<ByteSource> {
  if (!ctx.takeFd) throw VG_ERR_INTERNAL('no descriptor channel');
  const fd = await ctx.takeFd(token, FdKind.SCREENSHOT);
  let size: number;
  try {
    size = fs.fstatSync(fd).size;
    if (size > SCREENSHOT_BYTES_MAX) throw VG_ERR_INTERNAL(`screenshot of ${size} bytes is over the ${SCREENSHOT_BYTES_MAX}-byte limit`);
  } catch (e) {
    closeFd(fd);
    throw e;
  }
  let at = 0;
  let closed = false;
  return {
    read: async (max) => {
      if (at >= size) return null;
      const buf = Buffer.allocUnsafe(Math.min(max, size - at));
      const bytesRead = await new Promise<number>((resolve) => fs.read(fd, buf, 0, buf.length, at, (e, n) => resolve(e ? 0 : n)));
      if (bytesRead === 0) return null; // sealed: cannot shrink; a read error ends the stream short
      at += bytesRead;
      return buf.subarray(0, bytesRead);
    },
    close: () => {
      if (closed) return;
      closed = true;
      closeFd(fd);
    },
  };
}

export const graphicsHandlers: Entry[] = [
  entry(GRAPHICS_PROCS.DOMAIN_OPEN_GRAPHICS_FD, async (ctx, { dom, idx, flags }) => openGraphicsFd(ctx, dom.uuid, idx, flags)),
  // Arrives as CALL_WITH_FDS and is refused by the session; a plain CALL of it lands here.
  entry(GRAPHICS_PROCS.DOMAIN_OPEN_GRAPHICS, async () => {
    throw VG_ERR_NOT_SUPPORTED('virDomainOpenGraphics: virtgate does not accept file descriptors from clients; use virDomainOpenGraphicsFD');
  }),
];
