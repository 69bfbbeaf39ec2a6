// SPDX-License-Identifier: Apache-2.0
// A VM's screen, keyboard and VNC display over QMP (helper side): the helper never reads a display's or a screenshot's
// bytes. A display is one end of a socketpair given to QEMU (getfd + add_client); a screenshot is QEMU's screendump
// into a memfd given to it through an fdset (add-fd + /dev/fdset/N), sealed before it leaves the helper.
import * as fs from 'node:fs';
import { closeFd, streamPair } from '../../../sandbox/fdpass';
import { MFD, O_CLOEXEC, SEAL, addSeals, memfdCreate } from '../../../sandbox/files';
import { toQnums } from '../../qemu/keycodes';
import type { QmpClient } from './qmp';

export const SCREENSHOT_MAX = 8 * 1024 * 1024; // 8 MiB: a 1920x1200 PPM is 6.6 MiB; larger is refused, not streamed
// PPM, as libvirt 9.0 asks for. QEMU 7.2 also writes PNG (format: 'png'; 1.5 KB where the PPM is 864 KB), but its PNG
// path leaves the fdset behind after remove-fd (an entry per screenshot in QEMU's monitor): measured, not used.
export const SCREENSHOT_MIME = 'image/x-portable-pixmap';
export const SEND_KEY_HOLD_MS = 100; // libvirt's default holdtime

let seq = 0;

// A connected stream socket whose peer is a fresh VNC client of QEMU (no VNC auth: whoever holds it was authorised by
// the front end). The caller owns the returned descriptor.
export async function openDisplay(qmp: QmpClient): Promise<number> {
  const [ours, theirs] = streamPair();
  const fdname = `vg-vnc-${process.pid}-${++seq}`;
  try {
    await qmp.executeWithFd('getfd', { fdname }, theirs);
  } catch (e) {
    closeFd(ours);
    throw e;
  } finally {
    closeFd(theirs); // QEMU has its own copy now
  }
  try {
    await qmp.execute('add_client', { protocol: 'vnc', fdname, skipauth: true });
  } catch (e) {
    closeFd(ours);
    await qmp.execute('closefd', { fdname }).catch(() => undefined); // add_client failed before taking it
    throw e;
  }
  return ours;
}

// The guest's screen as a sealed memfd holding a PPM; the caller owns the descriptor.
export async function screendump(qmp: QmpClient): Promise<{ mime: string; fd: number; size: number }> {
  const memfd = memfdCreate('virtgate-screenshot', MFD.CLOEXEC | MFD.ALLOW_SEALING);
  try {
    // QEMU dups an fdset member only when its access mode is exactly the one it opens with (O_WRONLY).
    const wfd = fs.openSync(`/proc/self/fd/${memfd}`, fs.constants.O_WRONLY | O_CLOEXEC);
    let set: number;
    try {
      const r = (await qmp.executeWithFd('add-fd', { opaque: 'virtgate-screenshot' }, wfd)) as { 'fdset-id'?: unknown };
      if (!Number.isInteger(r?.['fdset-id'])) throw new Error('add-fd answered without an fdset-id');
      set = r['fdset-id'] as number;
    } finally {
      fs.closeSync(wfd);
    }
    try {
      await qmp.execute('screendump', { filename: `/dev/fdset/${set}` });
    } finally {
      await qmp.execute('remove-fd', { 'fdset-id': set }).catch(() => undefined);
    }
    // Sealed: QEMU (untrusted) keeps no way to change or grow the image after we checked it.
    addSeals(memfd, SEAL.SHRINK | SEAL.GROW | SEAL.WRITE | SEAL.SEAL);
    const size = fs.fstatSync(memfd).size;
    if (size === 0) throw new Error('QEMU wrote an empty screenshot');
    if (size > SCREENSHOT_MAX) throw new Error(`screenshot of ${size} bytes is over the ${SCREENSHOT_MAX}-byte limit`);
    const head = Buffer.alloc(2);
    fs.readSync(memfd, head, 0, 2, 0);
    if (head.toString('latin1') !== 'P6') throw new Error('QEMU wrote a screenshot that is not a PPM');
    return { mime: SCREENSHOT_MIME, fd: memfd, size };
  } catch (e) {
    closeFd(memfd);
    throw e;
  }
}

// One chord: the keys are pressed in order, held, released in reverse (QMP send-key; QEMU queues chords in order).
export async function sendKeys(qmp: QmpClient, codeset: number, keycodes: readonly number[], holdMs = SEND_KEY_HOLD_MS): Promise<void> {
  const keys = toQnums(codeset, keycodes).map((n) => ({ type: 'number', data: n }));
  await qmp.execute('send-key', { keys, 'hold-time': holdMs });
}
