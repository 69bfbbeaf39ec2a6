// SPDX-License-Identifier: Apache-2.0
// Tap devices for bridged interfaces (launcher boundary): made here, where CAP_NET_ADMIN is, enslaved to an existing
// bridge and handed over as a descriptor; QEMU gets `-netdev tap,fd=N` and never a name, a script or a helper. The
// tap is not persistent: it goes away with the last descriptor, i.e. when QEMU exits.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { IFNAME_RE, LauncherErrorCode } from '../ipc/launcher';
import { errno, koffi } from '../sandbox/libc';
import { LauncherFailure } from './launcher';

const TUNSETIFF = 0x400454ca; // _IOW('T', 202, int)
const IFF_TAP = 0x0002;
const IFF_NO_PI = 0x1000;
const IFF_VNET_HDR = 0x4000; // virtio-net offloads, as libvirt opens its taps
const IFREQ_SIZE = 40;
const IP = '/usr/sbin/ip'; // iproute2: enslaving and raising a link through netlink is its job
const IP_TIMEOUT_MS = 5000;

type Ioctl = (fd: number, req: number, arg: Buffer) => number;
let ioctlFn: Ioctl | null = null;
const ioctl = (fd: number, req: number, arg: Buffer): number => {
  ioctlFn ??= koffi().load('libc.so.6').func('int ioctl(int fd, unsigned long req, _Inout_ uint8_t *arg)') as Ioctl;
  return ioctlFn(fd, req, arg);
};

const failed = (msg: string): LauncherFailure => new LauncherFailure(LauncherErrorCode.TAP_FAILED, msg);

export function createTap(bridge: string): { fd: number; ifname: string } {
  if (!IFNAME_RE.test(bridge)) throw failed(`'${bridge}' is not an interface name`);
  // Only an existing bridge: the launcher never creates one, nor attaches a tap to a plain interface.
  if (!fs.existsSync(`/sys/class/net/${bridge}/bridge`)) throw failed(`'${bridge}' is not a bridge on this host`);
  let fd: number;
  try {
    fd = fs.openSync('/dev/net/tun', fs.constants.O_RDWR); // Node opens with O_CLOEXEC
  } catch (e) {
    throw failed(`cannot open /dev/net/tun: ${(e as Error).message}`);
  }
  try {
    const ifr = Buffer.alloc(IFREQ_SIZE);
    ifr.write('vgtap%d', 0, 'latin1'); // the kernel picks the first free number
    ifr.writeUInt16LE(IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, 16);
    if (ioctl(fd, TUNSETIFF, ifr) !== 0) throw failed(`TUNSETIFF failed (errno ${errno()})`);
    const ifname = ifr.toString('latin1', 0, 16).replace(/\0[\s\S]*$/, '');
    if (!IFNAME_RE.test(ifname)) throw failed(`the kernel named the tap '${ifname}'`);
    const r = spawnSync(IP, ['link', 'set', 'dev', ifname, 'master', bridge, 'up'], {
      encoding: 'utf8',
      timeout: IP_TIMEOUT_MS,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (r.status !== 0) throw failed(`cannot attach ${ifname} to ${bridge}: ${(r.stderr || r.error?.message || `status ${r.status}`).trim()}`);
    return { fd, ifname };
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}
