// SPDX-License-Identifier: Apache-2.0
// QemuConfig + descriptor plan -> QEMU argv, strictly within the launcher's argv policy: every file is a descriptor (helper side).
import { createHash } from 'node:crypto';
import { GUEST_AGENT, type QemuConfig } from './config';

export const SANDBOX = 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny';
export const FD_BASE = 3; // descriptor i of the spawn message is fd 3+i in QEMU

// One layer of a disk's chain as opened by the helper: [top, its backing, ...].
export interface PlannedLayer {
  fd: number; // the helper's descriptor (sent to the launcher; never appears in argv)
  format: 'raw' | 'qcow2';
  readOnly: boolean;
}

// The descriptors the helper hands over, in message order; argv names each by its index.
export interface DescriptorPlan {
  qmp: number; // listening socket
  serial: number | null; // listening socket
  agent?: number | null; // listening socket of the guest agent's channel
  kernel: number | null; // sealed memfd
  initrd: number | null;
  disks: (PlannedLayer[] | null)[]; // by cfg.disks index; null = empty CD-ROM
  taps?: (number | null)[]; // by cfg.nets index: the tap descriptor of a bridged interface (null for user networking)
}

export interface BuiltArgv {
  argv: string[]; // after the emulator path
  fds: number[]; // the helper's descriptors, in order: QEMU sees fds[i] as 3+i
  digest: string; // sha256 of the argv (journaled)
}

export const argvDigest = (argv: readonly string[]): string => createHash('sha256').update(JSON.stringify(argv)).digest('hex');

// libvirt's node names: libvirt-N-storage / libvirt-N-format, N counting layers over every disk.
export function buildArgv(cfg: QemuConfig, plan: DescriptorPlan): BuiltArgv {
  const fds: number[] = [];
  const pass = (fd: number): number => fds.push(fd) - 1 + FD_BASE;
  const a: string[] = [];
  const push = (...x: string[]) => void a.push(...x);
  const machine = [cfg.machine, 'usb=off', ...(cfg.acpi ? [] : ['acpi=off'])];
  push('-name', `guest=${cfg.name.replace(/,/g, ',,')},debug-threads=on`);
  push('-uuid', cfg.uuid);
  push('-machine', machine.join(','));
  push('-accel', cfg.accel);
  push('-m', `size=${cfg.maxMemKiB}k`);
  push('-overcommit', 'mem-lock=off');
  push('-smp', `${cfg.vcpus},maxcpus=${cfg.vcpusMax},sockets=${cfg.vcpusMax},cores=1,threads=1`);
  push('-no-user-config', '-nodefaults', '-display', 'none');
  push('-sandbox', SANDBOX);
  push('-msg', 'timestamp=on');
  // Monitor first: descriptor 0 is always the QMP listener.
  push('-chardev', `socket,id=charmonitor,fd=${pass(plan.qmp)},server=on,wait=off`);
  push('-mon', 'chardev=charmonitor,mode=control');
  push('-rtc', `base=${cfg.clock},driftfix=slew`);
  // The driver decides what a guest poweroff means (on_poweroff); a guest reboot stays a reset unless on_reboot=destroy.
  push('-no-shutdown');
  if (cfg.onReboot === 'destroy') push('-action', 'reboot=shutdown');
  push('-S');
  if (cfg.kernel) {
    if (plan.kernel === null) throw new Error('argv: kernel planned without a descriptor');
    push('-kernel', `/proc/self/fd/${pass(plan.kernel)}`);
    if (cfg.initrd) {
      if (plan.initrd === null) throw new Error('argv: initrd planned without a descriptor');
      push('-initrd', `/proc/self/fd/${pass(plan.initrd)}`);
    }
    if (cfg.cmdline !== null) push('-append', cfg.cmdline);
  }
  const order = cfg.boot.map((b) => ({ hd: 'c', cdrom: 'd', network: 'n' })[b]).join('');
  if (order && !cfg.disks.some((d) => d.bootIndex !== null)) push('-boot', `order=${order}`);
  if (cfg.serial) {
    if (plan.serial === null) throw new Error('argv: serial planned without a descriptor');
    push('-chardev', `socket,id=charserial0,fd=${pass(plan.serial)},server=on,wait=off`);
    push('-serial', 'chardev:charserial0');
  }
  // Disks: each layer its own fdset and -blockdev pair; the chain is explicit ("backing": the next layer or null).
  let node = 0;
  let fdset = 0;
  let sata = 0;
  cfg.disks.forEach((d, i) => {
    const layers = plan.disks[i];
    let top: string | null = null;
    if (layers) {
      if (layers.length === 0) throw new Error(`argv: disk ${d.target} has no layers`);
      const names = layers.map(() => ++node);
      const sets = layers.map(() => ++fdset);
      // Descriptors in chain order (top first); -blockdev bottom first: a backing node must exist before its user.
      layers.forEach((l, j) => push('-add-fd', `fd=${pass(l.fd)},set=${sets[j]},opaque=${d.target}-${j}`));
      for (let j = layers.length - 1; j >= 0; j--) {
        const l = layers[j];
        const n = names[j];
        const ro = l.readOnly || j > 0;
        push(
          '-blockdev',
          JSON.stringify({ driver: 'file', filename: `/dev/fdset/${sets[j]}`, 'node-name': `libvirt-${n}-storage`, 'read-only': ro, 'auto-read-only': false }),
        );
        const fmt: Record<string, unknown> = { 'node-name': `libvirt-${n}-format`, 'read-only': ro, driver: l.format, file: `libvirt-${n}-storage` };
        if (l.format === 'qcow2') fmt.backing = j + 1 < layers.length ? `libvirt-${names[j + 1]}-format` : null;
        push('-blockdev', JSON.stringify(fmt));
      }
      top = `libvirt-${names[0]}-format`;
    }
    const boot = d.bootIndex !== null ? `,bootindex=${d.bootIndex}` : '';
    if (d.bus === 'virtio') {
      if (!top) throw new Error(`argv: virtio disk ${d.target} without a source`);
      push('-device', `virtio-blk-pci,drive=${top},id=virtio-disk${i}${boot}`);
    } else {
      // q35's built-in AHCI has ports ide.0..ide.5; pc's IDE has ide.0 and ide.1 with two units each.
      const bus = cfg.machine === 'q35' ? `bus=ide.${sata}` : `bus=ide.${sata >> 1},unit=${sata & 1}`;
      sata++;
      if (d.device === 'cdrom') push('-device', `ide-cd,${bus},id=sata0-0-${i}${top ? `,drive=${top}` : ''}${boot}`);
      else {
        if (!top) throw new Error(`argv: sata disk ${d.target} without a source`);
        push('-device', `ide-hd,${bus},id=sata0-0-${i},drive=${top}${boot}`);
      }
    }
  });
  cfg.nets.forEach((n, i) => {
    if (n.kind === 'user') push('-netdev', `user,id=hostnet${i}`);
    else {
      const tap = plan.taps?.[i];
      if (tap === undefined || tap === null) throw new Error(`argv: bridge interface ${i} planned without a tap descriptor`);
      push('-netdev', `tap,id=hostnet${i},fd=${pass(tap)}`);
    }
    push('-device', `${n.model === 'virtio' ? 'virtio-net-pci' : 'e1000'},netdev=hostnet${i},id=net${i},mac=${n.mac}`);
  });
  if (cfg.vnc) push('-vnc', 'none');
  const video = cfg.video ?? (cfg.vnc ? 'vga' : null);
  push('-vga', 'none');
  if (video) push('-device', `${{ vga: 'VGA', virtio: 'virtio-vga', cirrus: 'cirrus-vga' }[video]},id=video0`);
  if (cfg.tablet) push('-device', 'qemu-xhci,id=usb', '-device', 'usb-tablet,id=input0,bus=usb.0,port=1');
  if (cfg.guestAgent) {
    if (plan.agent == null) throw new Error('argv: guest agent channel planned without a descriptor');
    push('-device', 'virtio-serial-pci,id=virtio-serial0');
    push('-chardev', `socket,id=charchannel0,fd=${pass(plan.agent)},server=on,wait=off`);
    push('-device', `virtserialport,bus=virtio-serial0.0,nr=1,chardev=charchannel0,id=channel0,name=${GUEST_AGENT}`);
  }
  if (cfg.balloon) push('-device', 'virtio-balloon-pci,id=balloon0');
  if (cfg.rng) push('-object', 'rng-builtin,id=objrng0', '-device', 'virtio-rng-pci,rng=objrng0,id=rng0');
  return { argv: a, fds, digest: argvDigest(a) };
}
