// SPDX-License-Identifier: Apache-2.0
// The QEMU driver wired to the real host: launcher client (reconnecting), fd passing, disks, kernels (helper side).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bindUnixListener, closeFd } from '../../../sandbox/fdpass';
import { LauncherClient } from '../../launcher-client';
import { openPoolDisk } from '../../qemu/disk';
import { kernelMemfd } from '../../qemu/kernel';
import { QemuDriver, type QemuDriverOptions } from './driver';
import type { QemuHost } from './host';

const RECONNECT_MS = 250; // the launcher restarts in well under a second; VMs never depend on this connection
const BOOT_MARK = 'helper-started'; // under RUNTIME (wiped at host boot): absent = first helper start of this boot

export interface QemuWiringOptions {
  stateDir: string;
  runtimeDir: string;
  launcherSocket: string;
  cgroupRoot: string;
  pools?: QemuDriverOptions['pools'];
  journalSpawn?: QemuDriverOptions['journalSpawn'];
  warn?: (msg: string) => void;
}

// Opens the driver, connects the launcher and re-attaches running VMs before the helper serves its first request (so a
// restarted helper answers "running" at once); autostart VMs start on the first helper start after a host boot.
export async function openQemuDriver(o: QemuWiringOptions): Promise<QemuDriver> {
  const warn = o.warn ?? ((m: string) => process.stderr.write(`virtgate-helper: ${m}\n`));
  const mark = path.join(o.runtimeDir, 'qemu', BOOT_MARK);
  const boot = !fs.existsSync(mark);
  let client: LauncherClient | null = null;
  let timer: NodeJS.Timeout | null = null;
  let closed = false;
  let attached = false;
  const self: { driver: QemuDriver | null } = { driver: null }; // the reconnect loop needs the driver it belongs to
  const connect = async (): Promise<void> => {
    timer = null;
    if (closed) return;
    try {
      const c = await LauncherClient.connect(o.launcherSocket);
      client = c;
      c.on('close', (why: string) => {
        if (client === c) client = null;
        if (closed) return;
        warn(`launcher connection lost (${why}); reconnecting (running VMs are not affected)`);
        schedule();
      });
    } catch (e) {
      if (!closed && !timer) schedule();
      if (!attached) warn(`launcher not reachable yet (${(e as Error).message}); retrying`);
      return;
    }
    if (!attached) {
      attached = true;
      await self.driver?.reattach(boot).catch((e: Error) => warn(`re-attach failed: ${e.message}`));
      // Capabilities: probed once per emulator build (cached under STATE), after the VMs are back.
      void self.driver?.probe().catch((e: Error) => warn(`QEMU probe failed (capabilities stay minimal): ${e.message}`));
    }
  };
  const schedule = (): void => {
    if (closed || timer) return;
    timer = setTimeout(() => void connect(), RECONNECT_MS);
    timer.unref();
  };
  const host: QemuHost = {
    launcher: () => client,
    bindListener: (p) => bindUnixListener(p, 0o600),
    closeFd,
    kernelMemfd,
    openDisk: openPoolDisk,
  };
  const driver = new QemuDriver({
    stateDir: o.stateDir,
    runtimeDir: o.runtimeDir,
    host,
    cgroupRoot: o.cgroupRoot,
    ...(o.pools ? { pools: o.pools } : {}),
    warn,
    journalSpawn: o.journalSpawn,
    onClose: () => {
      closed = true;
      if (timer) clearTimeout(timer);
      client?.close();
    },
  });
  self.driver = driver;
  await connect();
  fs.writeFileSync(mark, `${process.pid}\n`, { mode: 0o600 });
  return driver;
}
