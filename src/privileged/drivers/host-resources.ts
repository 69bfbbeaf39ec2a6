// SPDX-License-Identifier: Apache-2.0
// What in a domain definition (typed, decoded from the IPC; never XML text) names a resource of the host itself (a file, a device, a socket, a port, a
// bridge): a tenant's VM may use none of them, only its tenant's (or shared) volumes and networks (helper side).
import type { DomainDef, XmlEl } from '../../ipc/objects/domain-def';

// Character devices whose backends stay inside the VM's own process (a pty, nothing, the SPICE agent channel).
const CHARDEV_CONFINED = new Set(['pty', 'null', 'vc', 'spicevmc', 'spiceport', 'qemu-vdagent']);
const CHARDEVS = new Set(['serial', 'parallel', 'console', 'channel']);
// Devices that hand the guest something of the host, whatever their attributes say.
const HOST_DEVICES = new Set(['hostdev', 'filesystem', 'smartcard', 'redirdev', 'shmem', 'tpm', 'rng', 'vsock', 'iommu']);
// <os> children that are host paths (firmware, kernel, initrd, device tree, NVRAM store).
const OS_PATHS = new Set(['loader', 'nvram', 'kernel', 'initrd', 'dtb']);

// One line per host resource the definition names, for the refusal's text; [] = none.
export function hostResourcesOf(def: Pick<DomainDef, 'devices' | 'osExtra'>): string[] {
  const out: string[] = [];
  for (const n of def.osExtra) {
    const tag = n.tag;
    if (OS_PATHS.has(tag)) out.push(`<os><${tag}> (a host path)`);
  }
  for (const n of def.devices) {
    const tag = n.tag;
    const type = n.attrs.type ?? '';
    if (HOST_DEVICES.has(tag)) out.push(`<${tag}> device`);
    else if (CHARDEVS.has(tag) && type !== '' && !CHARDEV_CONFINED.has(type)) out.push(`<${tag} type='${type}'> (a host file, device, socket or port)`);
    else if (tag === 'input' && (type === 'passthrough' || type === 'evdev')) out.push(`<input type='${type}'> (a host input device)`);
    else if (tag === 'graphics' && hasSocket(n)) out.push(`<graphics> listening on a host socket path`);
  }
  return out;
}

function hasSocket(n: XmlEl): boolean {
  if (n.attrs.socket) return true;
  return n.kids.some((c) => c.tag === 'listen' && (c.attrs.type === 'socket' || c.attrs.socket !== undefined));
}
