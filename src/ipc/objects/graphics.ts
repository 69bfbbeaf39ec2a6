// SPDX-License-Identifier: Apache-2.0
// A VM's display and screen (pure): openGraphics of the DOMAIN_WRITE group (136..143) and the screenshot answer of
// DOMAIN_READ. The helper hands a VNC client socket or a screenshot memfd over the descriptor channel
// (ipc/fd-channel.ts); the answers carry only the token naming it. openGraphics is a write: journaled, audited.
import { VG_ERR_IPC_VALIDATION } from '../../common/errors';
import type { XdrReader, XdrWriter } from '../../common/xdr';
import { action } from '../actions';
import { FD_TOKEN_BYTES } from '../fd-channel';
import { type Codec, checkRange, rec, uuidCodec } from '../shared';

export const GRAPHICS_IDX_MAX = 15; // libvirt domains have a handful of <graphics> at most
export const SCREENSHOT_BYTES_MAX = 8 * 1024 * 1024; // 8 MiB: larger screenshots are refused by both sides

const idx: Codec<number> = { encode: (w, v) => void w.u32(v), decode: (r) => checkRange(r.u32('idx'), 0, GRAPHICS_IDX_MAX, 'idx') };
const token: Codec<Buffer> = {
  encode: (w, v) => void w.opaqueFixed(v, FD_TOKEN_BYTES),
  decode: (r) => Buffer.from(r.opaqueFixed(FD_TOKEN_BYTES, 'token')),
};

export const GRAPHICS_ACTIONS = {
  // A connected socket to the VM's VNC server (a fresh client, no VNC auth: the front end authorised the caller).
  openGraphics: action(136, rec<{ uuid: Buffer; idx: number }>({ uuid: uuidCodec, idx }), rec<{ token: Buffer }>({ token })),
};

// The screenshot answer: the image's bytes (the test driver's small file) or a token for a sealed memfd holding them
// (QEMU's screendump: the bytes never cross the IPC). Wire: string mime; u32 kind (0 bytes, 1 token); opaque or token.
export type ScreenshotAnswer = { mime: string; data: Buffer; token?: undefined } | { mime: string; token: Buffer; data?: undefined };
export const screenshotAnswer: Codec<ScreenshotAnswer> = {
  encode: (w: XdrWriter, v: ScreenshotAnswer) => {
    w.string(v.mime, 64);
    if (v.token) w.u32(1).opaqueFixed(v.token, FD_TOKEN_BYTES);
    else w.u32(0).opaque(v.data!, SCREENSHOT_BYTES_MAX);
  },
  decode: (r: XdrReader) => {
    const mime = r.string(64, 'mime');
    if (!/^image\/[a-z0-9.+-]{1,40}$/.test(mime)) throw VG_ERR_IPC_VALIDATION('mime', 'must be image/TYPE');
    const kind = r.u32('kind');
    if (kind === 1) return { mime, token: Buffer.from(r.opaqueFixed(FD_TOKEN_BYTES, 'token')) };
    if (kind !== 0) throw VG_ERR_IPC_VALIDATION('kind', 'must be 0 (bytes) or 1 (token)');
    return { mime, data: Buffer.from(r.opaque(SCREENSHOT_BYTES_MAX, 'screenshot')) };
  },
};
