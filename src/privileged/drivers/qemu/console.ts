// SPDX-License-Identifier: Apache-2.0
// A running VM's serial console for the front end (root side). QEMU's chardev socket (RUNTIME/qemu/<uuid>/serial.sock,
// QEMU the server) serves ONE client, normally the helper's SerialLog. To open the console the helper drops its
// logger, connects a fresh client and hands that descriptor on (answers/console.ts); once the console closes, the
// logger reconnects. QEMU accepts the waiting client as soon as it sees the previous one hang up.
import { VG_ERR_DOMAIN_INTERNAL } from '../../../common/errors';
import { streamConnect } from '../../../sandbox/fdpass';
import { driverError } from '../driver';

const CONNECT_TRIES = 20; // EAGAIN: QEMU has not yet taken the previous client off its backlog
const CONNECT_WAIT_MS = 25;

// A connected, non-blocking, close-on-exec descriptor to the guest's console socket.
export async function connectConsole(socketPath: string): Promise<number> {
  for (let i = 0; i < CONNECT_TRIES; i++) {
    let fd: number | null;
    try {
      fd = streamConnect(socketPath);
    } catch (e) {
      throw driverError(VG_ERR_DOMAIN_INTERNAL, `cannot connect the console: ${(e as Error).message}`);
    }
    if (fd !== null) return fd;
    await new Promise((r) => setTimeout(r, CONNECT_WAIT_MS));
  }
  throw driverError(VG_ERR_DOMAIN_INTERNAL, 'cannot connect the console: QEMU is not accepting on its console socket');
}

// The device names a console may be asked by: the first serial port, by either of libvirt's aliases.
export function consoleDevOk(devName: string | null): boolean {
  return devName === null || devName === 'serial0' || devName === 'console0';
}
