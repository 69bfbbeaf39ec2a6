// SPDX-License-Identifier: Apache-2.0
// The live <graphics> of a QEMU VM as it really is (front end, pure). QEMU runs with -vnc none: the display has no
// listening port, it is reached only through virDomainOpenGraphicsFD (or the front end's VNC proxy when it runs one
// for this VM), so the live XML says <listen type='none'/> as libvirt does, and virsh domdisplay / vncdisplay answer
// "no display" instead of pointing at a port nobody listens on. With a proxy port: libvirt's address listen form.
import type { XmlEl } from '../../ipc/objects/domain-def';

export interface VncListen {
  address: string;
  port: number;
}

const QEMU_TYPES = new Set(['qemu', 'kvm']);

// The element to write for `d` in a live definition of domain type `type`; other elements are returned unchanged.
export function liveGraphics(d: XmlEl, type: string, listen: VncListen | null): XmlEl {
  if (d.tag !== 'graphics' || d.attrs.type !== 'vnc' || !QEMU_TYPES.has(type)) return d;
  const keep: Record<string, string> = {};
  if (d.attrs.keymap !== undefined) keep.keymap = d.attrs.keymap;
  if (d.attrs.passwd !== undefined) keep.passwd = d.attrs.passwd;
  if (!listen) return { tag: 'graphics', attrs: { type: 'vnc', ...keep }, text: '', kids: [{ tag: 'listen', attrs: { type: 'none' }, text: '', kids: [] }] };
  return {
    tag: 'graphics',
    attrs: { type: 'vnc', port: String(listen.port), autoport: 'yes', listen: listen.address, ...keep },
    text: '',
    kids: [{ tag: 'listen', attrs: { type: 'address', address: listen.address }, text: '', kids: [] }],
  };
}
