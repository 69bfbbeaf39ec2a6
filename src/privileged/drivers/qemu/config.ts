// SPDX-License-Identifier: Apache-2.0
// DomainDef -> QemuConfig: the subset of domain XML, typed; anything else is refused naming the element (helper side).
import { VG_ERR_CONFIG_UNSUPPORTED, VG_ERR_RESOURCE_DENIED } from '../../../common/errors';
import { type DomainDef, type XmlEl, elChild, parseMac } from '../../../ipc/objects/domain-def';
import { DriverError, driverError } from '../driver';

export const EMULATOR = '/usr/bin/qemu-system-x86_64';
export const QEMU_MAX_VCPUS = 255; // q35/pc without an IOMMU (x2apic) in QEMU 7.2
const MEM_MIN_KIB = 16n * 1024n; // QEMU refuses less than a few MiB; 16 MiB keeps a guest bootable at all
const MEM_MAX_KIB = 1n << 40n; // 1 PiB: far beyond this host, but a sane bound for argv arithmetic

export type DiskSource = { kind: 'file'; path: string } | { kind: 'volume'; pool: string; volume: string } | null;

export interface QemuDisk {
  target: string; // vda, sda, ...
  device: 'disk' | 'cdrom';
  bus: 'virtio' | 'sata';
  format: 'raw' | 'qcow2'; // declared, never probed
  readOnly: boolean;
  source: DiskSource; // null: an empty CD-ROM drive
  bootIndex: number | null; // <boot order>
}

export interface QemuNet {
  kind: 'user' | 'bridge'; // network 'default' is user-mode NAT (development only)
  bridge: string | null;
  mac: string;
  model: 'virtio' | 'e1000';
}

export interface QemuConfig {
  name: string;
  uuid: string;
  accel: 'tcg' | 'kvm';
  machine: 'q35' | 'pc';
  maxMemKiB: bigint;
  curMemKiB: bigint;
  vcpus: number;
  vcpusMax: number;
  kernel: string | null;
  initrd: string | null;
  cmdline: string | null;
  boot: ('hd' | 'cdrom' | 'network')[];
  acpi: boolean;
  clock: 'utc' | 'localtime';
  onPoweroff: 'destroy' | 'restart' | 'preserve';
  onReboot: 'destroy' | 'restart';
  onCrash: 'destroy' | 'restart' | 'preserve';
  disks: QemuDisk[];
  nets: QemuNet[];
  serial: boolean; // a <serial> or <console>: always one helper-bound socket, logged by the helper
  vnc: boolean; // -vnc none + add_client over QMP (a socket the front end gets)
  video: 'vga' | 'virtio' | 'cirrus' | null;
  balloon: boolean;
  rng: boolean;
  tablet: boolean;
  guestAgent: boolean; // <channel type='unix'> for org.qemu.guest_agent.0: a virtio-serial port on a helper-bound socket
}

export const GUEST_AGENT = 'org.qemu.guest_agent.0';

const unsupported = (what: string): DriverError => driverError(VG_ERR_CONFIG_UNSUPPORTED, what);

// Elements whose presence says nothing we must act on (addresses, aliases: QEMU assigns its own).
const IGNORED_DEVICE_KIDS = new Set(['address', 'alias']);

function onlyKids(n: XmlEl, allowed: readonly string[], where: string): void {
  for (const k of n.kids) if (!allowed.includes(k.tag) && !IGNORED_DEVICE_KIDS.has(k.tag)) throw unsupported(`<${k.tag}> in ${where}`);
}

function onlyAttrs(n: XmlEl, allowed: Record<string, readonly string[] | null>, where: string): void {
  for (const [k, v] of Object.entries(n.attrs)) {
    if (!(k in allowed)) throw unsupported(`attribute '${k}' of ${where}`);
    const values = allowed[k];
    if (values && !values.includes(v)) throw unsupported(`${where} ${k}='${v}'`);
  }
}

function bootOrder(n: XmlEl, where: string): number | null {
  const b = elChild(n, 'boot');
  if (!b) return null;
  const order = b.attrs.order ?? '';
  if (!/^[1-9][0-9]{0,2}$/.test(order)) throw unsupported(`<boot order='${order}'> of ${where}`);
  return Number(order);
}

function diskOf(n: XmlEl, i: number): QemuDisk {
  const device = n.attrs.device ?? 'disk';
  const type = n.attrs.type ?? 'file';
  const target = elChild(n, 'target')?.attrs ?? {};
  const where = `disk '${target.dev ?? i}'`;
  onlyAttrs(n, { type: ['file', 'volume'], device: ['disk', 'cdrom'] }, `<disk>`);
  onlyKids(n, ['driver', 'source', 'target', 'readonly', 'boot', 'serial'], where);
  if (!target.dev || !/^(vd|sd|hd)[a-z]{1,3}$/.test(target.dev)) throw unsupported(`${where}: target dev '${target.dev ?? ''}'`);
  const bus = target.bus ?? (device === 'cdrom' ? 'sata' : 'virtio');
  for (const k of Object.keys(target)) if (k !== 'dev' && k !== 'bus') throw unsupported(`attribute '${k}' of <target> in ${where}`);
  // virtio disks; sata ones too (virt-install's choice for an OS it does not know), on the machine's AHCI/IDE bus.
  if (device === 'disk' && bus !== 'virtio' && bus !== 'sata') throw unsupported(`${where}: bus '${bus}' (disks are virtio or sata)`);
  if (device === 'cdrom' && bus !== 'sata') throw unsupported(`${where}: bus '${bus}' (CD-ROMs are sata)`);
  const drv = elChild(n, 'driver');
  if (drv)
    onlyAttrs(drv, { name: ['qemu'], type: ['raw', 'qcow2'], cache: ['none', 'default', 'writeback'], discard: ['unmap', 'ignore'] }, `<driver> of ${where}`);
  // Declared, never probed: a missing type means raw, as libvirt's default without probing.
  const format = (drv?.attrs.type ?? 'raw') as 'raw' | 'qcow2';
  const src = elChild(n, 'source');
  let source: DiskSource = null;
  if (src) {
    if (type === 'file') {
      onlyAttrs(src, { file: null }, `<source> of ${where}`);
      const path = src.attrs.file ?? '';
      if (!path.startsWith('/') || path.includes('\0')) throw unsupported(`${where}: source file '${path}' is not an absolute path`);
      source = { kind: 'file', path };
    } else {
      onlyAttrs(src, { pool: null, volume: null }, `<source> of ${where}`);
      if (!src.attrs.pool || !src.attrs.volume) throw unsupported(`${where}: a volume source names a pool and a volume`);
      source = { kind: 'volume', pool: src.attrs.pool, volume: src.attrs.volume };
    }
    if (src.kids.length > 0) throw unsupported(`<${src.kids[0].tag}> in the <source> of ${where}`);
  }
  if (source === null && device !== 'cdrom') throw unsupported(`${where}: a disk without a source`);
  const readOnly = device === 'cdrom' || elChild(n, 'readonly') !== undefined;
  return { target: target.dev, device: device as 'disk' | 'cdrom', bus: bus as 'virtio' | 'sata', format, readOnly, source, bootIndex: bootOrder(n, where) };
}

// A locally administered MAC derived from the uuid and index when none is given (libvirt's 52:54:00 prefix).
function defaultMac(uuid: string, i: number): string {
  const h = uuid.replace(/-/g, '');
  const b = [parseInt(h.slice(0, 2), 16), parseInt(h.slice(2, 4), 16), (parseInt(h.slice(4, 6), 16) + i) & 0xff];
  return ['52', '54', '00', ...b.map((x) => x.toString(16).padStart(2, '0'))].join(':');
}

function netOf(n: XmlEl, i: number, uuid: string): QemuNet {
  const type = n.attrs.type ?? '';
  const where = `interface ${i}`;
  onlyAttrs(n, { type: ['user', 'network', 'bridge'] }, '<interface>');
  onlyKids(n, ['mac', 'source', 'model', 'target', 'boot'], where);
  const src = elChild(n, 'source')?.attrs ?? {};
  let kind: QemuNet['kind'] = 'user';
  let bridge: string | null = null;
  if (type === 'network') {
    // Only the built-in `default` network, served as user-mode NAT (development only: guests reach the host's loopback).
    if (src.network !== 'default') throw unsupported(`${where}: network '${src.network ?? ''}' (only 'default', user-mode NAT)`);
  } else if (type === 'bridge') {
    bridge = src.bridge ?? '';
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(bridge)) throw unsupported(`${where}: bridge name '${bridge}'`);
    kind = 'bridge';
  }
  const model = elChild(n, 'model')?.attrs.type ?? 'virtio';
  if (model !== 'virtio' && model !== 'e1000') throw unsupported(`${where}: model '${model}'`);
  const macText = elChild(n, 'mac')?.attrs.address;
  const mac = macText !== undefined ? parseMac(macText) : defaultMac(uuid, i);
  if (mac === null) throw unsupported(`${where}: mac '${macText}'`);
  return { kind, bridge, mac, model };
}

function osOf(def: DomainDef): Pick<QemuConfig, 'kernel' | 'initrd' | 'cmdline' | 'acpi'> {
  const out: Pick<QemuConfig, 'kernel' | 'initrd' | 'cmdline' | 'acpi'> = { kernel: null, initrd: null, cmdline: null, acpi: false };
  for (const n of def.osExtra) {
    const t = n.text.trim();
    if (n.tag === 'kernel' || n.tag === 'initrd') {
      if (!t.startsWith('/')) throw unsupported(`<os><${n.tag}> '${t}' is not an absolute path`);
      out[n.tag] = t;
    } else if (n.tag === 'cmdline') out.cmdline = n.text;
    else if (n.tag === 'acpi')
      continue; // <os><acpi><table>: not ours; refused below if it has tables
    else throw unsupported(`<os><${n.tag}>`);
    if (n.kids.length > 0) throw unsupported(`<${n.kids[0].tag}> in <os><${n.tag}>`);
  }
  if (out.initrd && !out.kernel) throw unsupported('<os><initrd> without <os><kernel>');
  if (out.cmdline !== null && !out.kernel) throw unsupported('<os><cmdline> without <os><kernel>');
  if (out.cmdline !== null && (out.cmdline.length > 4096 || /[\0\n]/.test(out.cmdline)))
    throw unsupported('<os><cmdline> longer than 4096 bytes or multi-line');
  return out;
}

function topOf(def: DomainDef): boolean {
  let acpi = false;
  for (const n of def.top) {
    if (n.tag === 'features') {
      for (const f of n.kids) {
        if (f.tag === 'acpi') acpi = true;
        else if (f.tag !== 'apic' && f.tag !== 'pae' && f.tag !== 'vmport') throw unsupported(`<features><${f.tag}>`);
        if (f.tag === 'vmport' && f.attrs.state !== 'off') throw unsupported(`<features><vmport state='${f.attrs.state ?? ''}'>`);
      }
    } else if (n.tag === 'cpu') {
      // virt-install's default; TCG runs its own model either way (host-passthrough would need KVM).
      const mode = n.attrs.mode ?? '';
      if (!(mode === 'host-model' || (mode === 'custom' && n.kids.length === 0)) || n.kids.length > 0) throw unsupported(`<cpu mode='${mode}'>`);
    } else if (n.tag === 'pm') {
      continue; // suspend-to-mem/disk hints: QEMU's defaults
    } else throw unsupported(`<${n.tag}>`);
  }
  return acpi;
}

// The checks a definition passes at define time (typed, no host access) and again at start.
export function qemuConfigOf(def: DomainDef): QemuConfig {
  if (def.type !== 'qemu' && def.type !== 'kvm') throw unsupported(`domain type '${def.type}' (this host runs 'qemu' and, where usable, 'kvm')`);
  if (def.osType !== 'hvm') throw unsupported(`os type '${def.osType}'`);
  if (def.arch !== 'x86_64') throw unsupported(`architecture '${def.arch}'`);
  const machine = def.machine ?? 'q35';
  // Versioned names (pc-q35-7.2, pc-i440fx-7.2) are the same two machines.
  const m = /^(?:(q35|pc)|pc-(q35|i440fx)-[0-9]{1,2}\.[0-9]{1,2})$/.exec(machine);
  if (!m) throw unsupported(`machine '${machine}' (q35 or pc)`);
  const kind = m[1] ?? (m[2] === 'q35' ? 'q35' : 'pc');
  if (def.maxMemKiB < MEM_MIN_KIB || def.maxMemKiB > MEM_MAX_KIB) throw unsupported(`memory ${def.maxMemKiB} KiB (16 MiB .. 1 PiB)`);
  if (def.curMemKiB > def.maxMemKiB || def.curMemKiB < MEM_MIN_KIB) throw unsupported(`currentMemory ${def.curMemKiB} KiB`);
  if (def.vcpusMax < 1 || def.vcpusMax > QEMU_MAX_VCPUS || def.vcpus < 1 || def.vcpus > def.vcpusMax) throw unsupported(`vcpu ${def.vcpus}/${def.vcpusMax}`);
  if (def.cpumask || def.vcpuPins.size > 0 || def.emulatorPin || def.iothreadPins.size > 0) throw unsupported('CPU pinning (<vcpu cpuset>, <cputune>)');
  if (def.numatune) throw unsupported('<numatune>');
  if (Object.values(def.memtune).some((v) => v !== null)) throw unsupported('<memtune>');
  if (def.blkiotune.weight !== 0 || def.blkiotune.devices.length > 0) throw unsupported('<blkiotune>');
  const clockOffset = def.clockOffset;
  if (clockOffset !== 'utc' && clockOffset !== 'localtime') throw unsupported(`<clock offset='${clockOffset}'>`);
  if (def.clock?.kids.some((k) => k.tag !== 'timer')) throw unsupported(`<${def.clock.kids.find((k) => k.tag !== 'timer')!.tag}> in <clock>`);
  const pick = <T extends string>(v: string, ok: readonly T[], what: string): T => {
    if (!(ok as readonly string[]).includes(v)) throw unsupported(`<${what}>${v}</${what}>`);
    return v as T;
  };
  const os = osOf(def);
  const acpi = topOf(def);
  for (const b of def.boot) if (b === 'fd') throw unsupported("<boot dev='fd'>");
  const cfg: QemuConfig = {
    name: def.name,
    uuid: def.uuid,
    accel: def.type === 'kvm' ? 'kvm' : 'tcg',
    machine: kind as 'q35' | 'pc',
    maxMemKiB: def.maxMemKiB,
    curMemKiB: def.curMemKiB,
    vcpus: def.vcpus,
    vcpusMax: def.vcpusMax,
    ...os,
    acpi,
    boot: def.boot as QemuConfig['boot'],
    clock: clockOffset,
    onPoweroff: pick(def.onPoweroff, ['destroy', 'restart', 'preserve'] as const, 'on_poweroff'),
    onReboot: pick(def.onReboot, ['destroy', 'restart'] as const, 'on_reboot'),
    onCrash: pick(def.onCrash, ['destroy', 'restart', 'preserve'] as const, 'on_crash'),
    disks: [],
    nets: [],
    serial: false,
    vnc: false,
    video: null,
    balloon: false,
    rng: false,
    tablet: false,
    guestAgent: false,
  };
  let nets = 0;
  for (const n of def.devices) {
    switch (n.tag) {
      case 'emulator':
        if (n.text.trim() !== EMULATOR) throw unsupported(`<emulator>${n.text.trim()}</emulator> (only ${EMULATOR})`);
        break;
      case 'disk':
        cfg.disks.push(diskOf(n, cfg.disks.length));
        break;
      case 'controller':
        // The buses we use come with the machine (q35: pcie, sata, usb via qemu-xhci); nothing to add for them.
        if (!['pci', 'sata', 'usb', 'ide', 'virtio-serial', 'scsi'].includes(n.attrs.type ?? ''))
          throw unsupported(`<controller type='${n.attrs.type ?? ''}'>`);
        break;
      case 'interface':
        cfg.nets.push(netOf(n, nets++, def.uuid));
        break;
      case 'serial':
      case 'console': {
        const t = n.attrs.type ?? 'pty';
        if (t !== 'pty' && t !== 'unix') throw unsupported(`<${n.tag} type='${t}'> (pty or unix: a helper-bound socket)`);
        const target = elChild(n, 'target');
        if (target && (target.attrs.type ?? 'serial') !== 'serial' && target.attrs.type !== 'isa-serial')
          throw unsupported(`<${n.tag}><target type='${target.attrs.type}'>`);
        if (target?.attrs.port !== undefined && target.attrs.port !== '0') throw unsupported(`<${n.tag}> port ${target.attrs.port} (one serial port)`);
        cfg.serial = true;
        break;
      }
      case 'graphics':
        if (n.attrs.type !== 'vnc') throw unsupported(`<graphics type='${n.attrs.type ?? ''}'> (vnc only)`);
        if (cfg.vnc) throw unsupported('a second <graphics>');
        cfg.vnc = true;
        break;
      case 'video': {
        const model = elChild(n, 'model')?.attrs.type ?? 'vga';
        if (model === 'none') break;
        if (model !== 'vga' && model !== 'virtio' && model !== 'cirrus') throw unsupported(`<video><model type='${model}'>`);
        if (cfg.video) throw unsupported('a second <video>');
        cfg.video = model;
        break;
      }
      case 'memballoon': {
        const model = n.attrs.model ?? 'virtio';
        if (model === 'none') break;
        if (model !== 'virtio') throw unsupported(`<memballoon model='${model}'>`);
        cfg.balloon = true;
        break;
      }
      case 'rng': {
        if ((n.attrs.model ?? '') !== 'virtio') throw unsupported(`<rng model='${n.attrs.model ?? ''}'>`);
        const be = elChild(n, 'backend');
        // The builtin backend (getrandom in QEMU): no host device is handed over, so any random backend maps to it.
        if (be && (be.attrs.model ?? '') !== 'random' && be.attrs.model !== 'builtin') throw unsupported(`<rng><backend model='${be.attrs.model ?? ''}'>`);
        cfg.rng = true;
        break;
      }
      case 'input': {
        const type = n.attrs.type ?? '';
        const bus = n.attrs.bus ?? '';
        if (type === 'tablet' && (bus === 'usb' || bus === '')) cfg.tablet = true;
        else if ((type === 'mouse' || type === 'keyboard') && bus === 'ps2')
          break; // implicit on x86 machines
        else throw unsupported(`<input type='${type}' bus='${bus}'>`);
        break;
      }
      case 'channel': {
        // What virt-manager and virt-install add by default. The socket is the helper's (a client's source path is
        // not used); nothing in the helper talks to the agent yet.
        if ((n.attrs.type ?? '') !== 'unix') throw unsupported(`<channel type='${n.attrs.type ?? ''}'> (unix only)`);
        const target = elChild(n, 'target');
        if (target?.attrs.type !== 'virtio' || target.attrs.name !== GUEST_AGENT)
          throw unsupported(`<channel> other than <target type='virtio' name='${GUEST_AGENT}'/>`);
        if (cfg.guestAgent) throw unsupported('a second guest agent <channel>');
        cfg.guestAgent = true;
        break;
      }
      default:
        throw unsupported(`<${n.tag}> device`);
    }
  }
  if (cfg.disks.filter((d) => d.bus === 'sata').length > (cfg.machine === 'q35' ? 6 : 4))
    throw unsupported('more sata disks and CD-ROMs than the machine has ports');
  if (new Set(cfg.disks.map((d) => d.target)).size !== cfg.disks.length) throw unsupported('two disks with one target');
  if (cfg.disks.length > 64 || cfg.nets.length > 16) throw unsupported('more than 64 disks or 16 interfaces');
  return cfg;
}

// A tenant's VM names no kernel path and no bridge; its disks must be in pools it may use (the driver checks those,
// and openPoolDisk again when it opens them).
export function confineQemu(cfg: QemuConfig, tenant: string): void {
  if (tenant === '') return;
  const refuse = (what: string) =>
    driverError(VG_ERR_RESOURCE_DENIED, `${what}; tenant '${tenant}' may use only its own or shared storage volumes and networks`);
  if (cfg.kernel || cfg.initrd) throw refuse('<os><kernel>/<initrd> name host paths');
  for (const n of cfg.nets) if (n.kind === 'bridge') throw refuse(`interface on bridge '${n.bridge}' (host admins only)`);
}
