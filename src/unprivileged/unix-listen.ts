// SPDX-License-Identifier: Apache-2.0
// Before binding a unix socket path: a leftover socket from a crash is removed, a live one or any other file is not.
import fs from 'node:fs';
import net from 'node:net';
import { VG_ERR_LISTEN } from '../common/errors';

// A socket file nobody answers on is left over from a crash and removed; one a live daemon answers on is in use, and
// taking it over would silently cut that daemon off from its clients.
export async function removeStaleSocket(p: string): Promise<void> {
  try {
    if (!fs.lstatSync(p).isSocket()) return; // listen() then fails with EADDRINUSE: never remove a file that is no socket
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.connect(p, () => (probe.destroy(), resolve(true)));
    probe.on('error', () => resolve(false));
  });
  if (live) throw Object.assign(VG_ERR_LISTEN('unix', p, 'address in use'), { errno: 'EADDRINUSE' });
  fs.rmSync(p, { force: true });
}
