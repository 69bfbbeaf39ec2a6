// SPDX-License-Identifier: Apache-2.0
// Domain XML subset: untrusted text from the front end -> validated DomainDef -> our own libvirt-style XML (helper side).
import { randomBytes, randomUUID } from 'node:crypto';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { VG_ERR_CONFIG_UNSUPPORTED, VG_ERR_DOMAIN_ARG, VG_ERR_XML_DETAIL, VG_ERR_XML_INVALID } from '../../common/errors';
import { isTenantName } from '../../common/names';
import { IpcLimits, checkDomainName, uuidFromString, uuidToString } from '../../ipc/program';
import { driverError } from './driver';

// fast-xml-parser preserveOrder node: { tag: children, ':@'?: attrs } or { '#text': text }.
export type XmlNode = Record<string, unknown>;

export interface DomainDef {
  type: string;
  name: string;
  uuid: string; // canonical lower-case 8-4-4-4-12
  title: string | null;
  description: string | null;
  maxMemKiB: bigint;
  curMemKiB: bigint;
  vcpusMax: number;
  vcpus: number;
  osType: string; // 'hvm' | 'xen'
  arch: string;
  machine: string | null; // <os><type machine>
  osExtra: XmlNode[]; // <os> children besides type and boot (loader, kernel, bootmenu, ...), as given
  boot: string[];
  clockOffset: string;
  clock: XmlNode | null; // <clock> as given (timers, adjustment), re-serialised with its offset
  top: XmlNode[]; // other elements libvirt keeps (features, cpu, pm, ...), as given; written in libvirt's order
  metadata: XmlNode[]; // <metadata> children of other namespaces (ours is `tenant`, trusted only from our own files)
  onPoweroff: string;
  onReboot: string;
  onCrash: string;
  devices: XmlNode[]; // kept as given and re-serialised
  disks: DiskDef[]; // typed view of the <disk> devices, in order (stats; path confinement)
  nets: NetDef[]; // typed view of the <interface> devices, in order
  memballoon: boolean; // a <memballoon> whose model is not 'none'
  cpumask: number[] | null; // <vcpu cpuset>: sorted host CPU numbers
  vcpuPins: Map<number, number[]>; // <cputune><vcpupin vcpu cpuset>
  emulatorPin: number[] | null; // <cputune><emulatorpin cpuset>
  iothreadPins: Map<number, number[]>; // <cputune><iothreadpin iothread cpuset> (the ids live in top's <iothreadids>)
  memtune: MemTune;
  blkiotune: BlkioTune;
  numatune: { mode: number; nodeset: string } | null; // <numatune><memory>: mode index in NUMA_MODES
  tenant: string; // virtgate's record of the VM's tenant ('' = none); never taken from client XML
}

export interface DiskDef {
  type: string; // file | block | dir | network | volume | nvme | vhostuser
  device: string; // disk | cdrom | floppy | lun
  source: string | null; // file, dev or dir path; pool/volume; network name; null = empty (a cdrom without media)
  pool: string | null; // type='volume'
  volume: string | null;
  target: string; // <target dev>
  bus: string | null;
}

export interface NetDef {
  type: string; // network | bridge | user | ethernet | direct | ...
  mac: string | null; // lower-case aa:bb:cc:dd:ee:ff
  network: string | null; // <source network> (type='network')
  bridge: string | null; // <source bridge> (type='bridge')
  ifname: string | null; // <target dev>
  model: string | null;
}

// KiB; null = unlimited (not written)
export interface MemTune {
  hardLimit: bigint | null;
  softLimit: bigint | null;
  swapHardLimit: bigint | null;
  minGuarantee: bigint | null;
}

export interface BlkioDevice {
  path: string;
  weight: number;
  readIops: bigint;
  writeIops: bigint;
  readBytes: bigint;
  writeBytes: bigint;
}

export interface BlkioTune {
  weight: number; // 0 = unset
  devices: BlkioDevice[];
}

export const NUMA_MODES = ['strict', 'preferred', 'interleave', 'restrictive'] as const; // virDomainNumatuneMemMode

// Our <metadata> namespace: the tenant lives here in stored XML and in dumpxml output.
export const VG_TENANT_NS = 'https://virtgate.dev/xmlns/tenant/1';

// virDomainVirtType names libvirt accepts in <domain type>.
const VIRT_TYPES = new Set([
  'none',
  'qemu',
  'kqemu',
  'kvm',
  'xen',
  'lxc',
  'uml',
  'openvz',
  'test',
  'vmware',
  'hyperv',
  'vbox',
  'phyp',
  'parallels',
  'bhyve',
  'vz',
]);
const ARCHES = new Set([
  'aarch64',
  'alpha',
  'armv6l',
  'armv7l',
  'armv7b',
  'cris',
  'i686',
  'ia64',
  'lm32',
  'loongarch64',
  'm68k',
  'microblaze',
  'microblazeel',
  'mips',
  'mipsel',
  'mips64',
  'mips64el',
  'openrisc',
  'parisc',
  'parisc64',
  'ppc',
  'ppcle',
  'ppc64',
  'ppc64le',
  'ppcemb',
  'riscv32',
  'riscv64',
  's390',
  's390x',
  'sh4',
  'sh4eb',
  'sparc',
  'sparc64',
  'unicore32',
  'x86_64',
  'xtensa',
  'xtensaeb',
]);
const BOOT_DEVS = new Set(['fd', 'hd', 'cdrom', 'network']);
const LIFECYCLE_ACTIONS = new Set(['destroy', 'restart', 'rename-restart', 'preserve', 'coredump-destroy', 'coredump-restart']);
const CLOCK_OFFSETS = new Set(['utc', 'localtime', 'timezone', 'variable', 'absolute']);
const DEVICES_DEPTH_MAX = 16; // real domain XML is 5-6 levels deep (domain/devices/disk/source/host)

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  processEntities: true,
});

const invalid = (detail: string) => driverError(VG_ERR_XML_INVALID, detail);
// libvirt words some XML failures without the "XML error: " prefix: carry its whole text.
const detailed = (text: string) => driverError(VG_ERR_XML_DETAIL, text);
const badValue = (v: string, path: string) => invalid(`Invalid value '${v}' for element or attribute '${path}'`);

function lineOf(xml: string, pos: number): number {
  let line = 1;
  for (let i = 0; i < pos; i++) if (xml.charCodeAt(i) === 10) line++;
  return line;
}

function tagOf(n: XmlNode): string | null {
  for (const k of Object.keys(n)) if (k !== ':@' && k !== '#text') return k;
  return null;
}

const kids = (n: XmlNode): XmlNode[] => (n[tagOf(n) ?? ''] as XmlNode[] | undefined) ?? [];
const attrsOf = (n: XmlNode): Record<string, string> => (n[':@'] as Record<string, string> | undefined) ?? {};
// For checks over the kept elements (./host-resources.ts).
export { attrsOf as xmlAttrs, kids as xmlKids, tagOf as xmlTag };
const first = (parent: XmlNode, tag: string): XmlNode | undefined => kids(parent).find((c) => tagOf(c) === tag);
const all = (parent: XmlNode, tag: string): XmlNode[] => kids(parent).filter((c) => tagOf(c) === tag);
const textOf = (n: XmlNode | undefined): string | undefined =>
  n === undefined
    ? undefined
    : kids(n)
        .map((c) => (typeof c['#text'] === 'string' ? c['#text'] : ''))
        .join('');

const ELEMENTS_MAX = 20000; // a 134 KB domain of 1200 disks has ~5000; bounds the helper's parse time (~0.1 s)

function checkWellFormed(xml: string): void {
  if (xml.trim() === '') throw invalid('Document is empty');
  let tags = 0;
  for (let i = xml.indexOf('<'); i !== -1; i = xml.indexOf('<', i + 1)) if (++tags > ELEMENTS_MAX * 2) break;
  if (tags > ELEMENTS_MAX * 2) throw invalid(`more than ${ELEMENTS_MAX} elements`);
  // No DTDs at all: entity expansion is not something the root helper should do on untrusted input.
  const dtd = /<!(DOCTYPE|ENTITY)/i.exec(xml);
  if (dtd) throw invalid(`DOCTYPE and ENTITY declarations are not allowed (line ${lineOf(xml, dtd.index)})`);
  const res = XMLValidator.validate(xml);
  if (res !== true) {
    const { msg, line, col } = res.err;
    throw invalid(col ? `${msg} (line ${line}, column ${col})` : `${msg} (line ${line})`);
  }
  const ent = /&(?!(?:amp|lt|gt|quot|apos|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});)([^;\s<&]{0,32})/.exec(xml);
  if (ent) throw invalid(`Entity '${ent[1]}' not defined (line ${lineOf(xml, ent.index)})`);
}

// libvirt virScaleInteger: no unit = KiB; b/bytes; k/KiB (1024); KB (1000); likewise M, G, T, P, E.
function scaleFor(unit: string | undefined): bigint {
  if (unit === undefined || unit === '') return 1024n;
  const u = unit.toLowerCase();
  if (u === 'b' || u === 'byte' || u === 'bytes') return 1n;
  const power = 'kmgtpe'.indexOf(u[0]) + 1;
  const rest = u.slice(1);
  if (power > 0 && (rest === '' || rest === 'ib')) return 1024n ** BigInt(power);
  if (power > 0 && rest === 'b') return 1000n ** BigInt(power);
  throw driverError(VG_ERR_DOMAIN_ARG, `unknown suffix '${unit}'`);
}

export function parseMemoryKiB(text: string, unit: string | undefined, path: string, max: bigint = IpcLimits.MEMORY_KIB_MAX): bigint {
  const v = text.trim();
  if (!/^[0-9]{1,20}$/.test(v)) throw badValue(text, path);
  const bytes = BigInt(v) * scaleFor(unit);
  const kib = (bytes + 1023n) / 1024n; // libvirt rounds up to whole KiB
  if (kib > max) throw badValue(text, path);
  return kib;
}

function parseCount(text: string, what: string): number {
  const v = text.trim();
  if (!/^[0-9]{1,10}$/.test(v)) throw invalid(`${what} vcpus count must be an integer`);
  const n = Number(v);
  if (n < 1 || n > IpcLimits.VCPUS_MAX) throw badValue(text, './vcpu[1]');
  return n;
}

function checkTree(nodes: XmlNode[], depth: number): void {
  if (depth > DEVICES_DEPTH_MAX) throw invalid(`elements nested deeper than ${DEVICES_DEPTH_MAX} levels`);
  for (const n of nodes) if (tagOf(n) !== null) checkTree(kids(n), depth + 1);
}

function oneOf(parent: XmlNode, tag: string, allowed: Set<string>, dflt: string): string {
  const t = textOf(first(parent, tag));
  if (t === undefined) return dflt;
  if (!allowed.has(t)) throw badValue(t, `./${tag}[1]`);
  return t;
}

// ---------- CPU bitmaps (virBitmapParse / virBitmapFormat) ----------

export const CPUMASK_LEN = 16384; // VIR_DOMAIN_CPUMASK_LEN: highest CPU number + 1 a cpuset may name

const bitmapError = (text: string) => driverError(VG_ERR_DOMAIN_ARG, `Failed to parse bitmap '${text}'`);

// "0-3,^2,5" with spaces around tokens: a sorted list of CPU numbers (possibly empty after ^N). Throws libvirt's error.
export function parseBitmap(text: string, size = CPUMASK_LEN): number[] {
  const set = new Set<number>();
  const parts = text.split(',');
  if (text.trim() === '') throw bitmapError(text);
  if (parts.length > 1 && parts[parts.length - 1].trim() === '') parts.pop(); // libvirt accepts one trailing comma
  for (const part of parts) {
    const m = /^\s*(\^)?([0-9]+)\s*(?:-\s*([0-9]+)\s*)?$/.exec(part);
    if (!m || (m[1] && m[3] !== undefined)) throw bitmapError(text);
    const start = Number(m[2]);
    const last = m[3] === undefined ? start : Number(m[3]);
    if (m[2].length > 10 || (m[3] ?? '').length > 10 || last < start || last >= size) throw bitmapError(text);
    if (m[1]) set.delete(start);
    else for (let i = start; i <= last; i++) set.add(i);
  }
  return [...set].sort((a, b) => a - b);
}

// [1,2,3,5] -> "1-3,5"
export function formatBitmap(bits: readonly number[]): string {
  const out: string[] = [];
  for (let i = 0; i < bits.length;) {
    let j = i;
    while (j + 1 < bits.length && bits[j + 1] === bits[j] + 1) j++;
    out.push(j === i ? `${bits[i]}` : `${bits[i]}-${bits[j]}`);
    i = j + 1;
  }
  return out.join(',');
}

// A cpuset attribute: parsed, and refused when it names no CPU at all.
function cpuset(text: string): number[] {
  const bits = parseBitmap(text);
  if (bits.length === 0) throw driverError(VG_ERR_CONFIG_UNSUPPORTED, `Invalid value of 'cpuset': ${text}`);
  return bits;
}

// ---------- typed views of devices ----------

const MAC_RE = /^[0-9a-fA-F]{1,2}(:[0-9a-fA-F]{1,2}){5}$/;

// virMacAddrParse: six colon-separated hex octets; formatted as two lower-case digits each.
export function parseMac(text: string): string | null {
  if (!MAC_RE.test(text)) return null;
  return text
    .split(':')
    .map((o) => o.toLowerCase().padStart(2, '0'))
    .join(':');
}

function diskOf(n: XmlNode): DiskDef {
  const a = attrsOf(n);
  const src = first(n, 'source');
  const sa = src ? attrsOf(src) : {};
  const target = first(n, 'target');
  const ta = target ? attrsOf(target) : {};
  if (!ta.dev) throw detailed('internal error: missing disk target'); // XXX: libvirt's wording differs per disk kind
  const type = a.type ?? 'file';
  const pool = type === 'volume' ? (sa.pool ?? null) : null;
  const volume = type === 'volume' ? (sa.volume ?? null) : null;
  const source = (type === 'volume' ? (pool && volume ? `${pool}/${volume}` : null) : (sa.file ?? sa.dev ?? sa.dir ?? sa.name ?? null)) || null;
  return { type, device: a.device ?? 'disk', source, pool, volume, target: ta.dev, bus: ta.bus ?? null };
}

function netOf(n: XmlNode): NetDef {
  const a = attrsOf(n);
  const src = first(n, 'source');
  const sa = src ? attrsOf(src) : {};
  const macNode = first(n, 'mac');
  let mac: string | null = null;
  if (macNode) {
    const text = attrsOf(macNode).address ?? '';
    mac = parseMac(text);
    if (mac === null) throw detailed(`internal error: unable to parse mac address '${text}'`);
  }
  const target = first(n, 'target');
  const model = first(n, 'model');
  return {
    type: a.type ?? '',
    mac,
    network: a.type === 'network' ? (sa.network ?? null) : null,
    bridge: a.type === 'bridge' ? (sa.bridge ?? null) : null,
    ifname: (target && attrsOf(target).dev) || null,
    model: (model && attrsOf(model).type) || null,
  };
}

export function devicesOf(devices: XmlNode[]): Pick<DomainDef, 'disks' | 'nets' | 'memballoon'> {
  return {
    disks: devices.filter((d) => tagOf(d) === 'disk').map(diskOf),
    nets: devices.filter((d) => tagOf(d) === 'interface').map(netOf),
    memballoon: devices.some((d) => tagOf(d) === 'memballoon' && attrsOf(d).model !== 'none'),
  };
}

function parseCputune(root: XmlNode, vcpusMax: number): { vcpuPins: Map<number, number[]>; emulatorPin: number[] | null; iothreadPins: Map<number, number[]> } {
  const vcpuPins = new Map<number, number[]>();
  const iothreadPins = new Map<number, number[]>();
  const tune = first(root, 'cputune');
  if (!tune) return { vcpuPins, emulatorPin: null, iothreadPins };
  for (const pin of all(tune, 'vcpupin')) {
    const a = attrsOf(pin);
    if (a.vcpu === undefined) throw invalid("Missing required attribute 'vcpu' in element 'vcpupin'");
    if (!/^[0-9]{1,9}$/.test(a.vcpu))
      throw invalid(`Invalid value for attribute 'vcpu' in element 'vcpupin': '${a.vcpu}'. Expected non-negative integer value`);
    const id = Number(a.vcpu);
    if (id >= vcpusMax) continue; // libvirt: "Ignoring vcpupin for missing vcpus"
    if (a.cpuset === undefined) throw detailed('internal error: missing cpuset for vcpupin');
    if (vcpuPins.has(id)) throw detailed(`internal error: duplicate vcpupin for vcpu '${id}'`);
    vcpuPins.set(id, cpuset(a.cpuset));
  }
  const emu = all(tune, 'emulatorpin');
  if (emu.length > 1) throw detailed('unsupported configuration: only one emulatorpin is supported');
  let emulatorPin: number[] | null = null;
  if (emu.length === 1) {
    const c = attrsOf(emu[0]).cpuset;
    if (c === undefined) throw detailed('internal error: missing cpuset for emulatorpin');
    emulatorPin = cpuset(c);
  }
  for (const pin of all(tune, 'iothreadpin')) {
    const a = attrsOf(pin);
    if (!/^[0-9]{1,9}$/.test(a.iothread ?? '') || Number(a.iothread) === 0)
      throw detailed(`internal error: invalid setting for iothread '${a.iothread ?? ''}'`);
    if (a.cpuset === undefined) throw detailed('internal error: missing cpuset for iothreadpin');
    if (iothreadPins.has(Number(a.iothread))) throw detailed(`internal error: duplicate iothreadpin for same iothread '${a.iothread}'`);
    iothreadPins.set(Number(a.iothread), cpuset(a.cpuset));
  }
  return { vcpuPins, emulatorPin, iothreadPins };
}

// ---------- memtune, blkiotune, numatune ----------

const PARAM_UNLIMITED_KIB = 9007199254740991n; // VIR_DOMAIN_MEMORY_PARAM_UNLIMITED: this or more means no limit

function parseMemtune(root: XmlNode): MemTune {
  const t = first(root, 'memtune');
  const limit = (tag: string): bigint | null => {
    const n = t && first(t, tag);
    if (!n) return null;
    const v = parseMemoryKiB(textOf(n) ?? '', attrsOf(n).unit, `./memtune/${tag}[1]`, PARAM_UNLIMITED_KIB);
    return v >= PARAM_UNLIMITED_KIB ? null : v;
  };
  return { hardLimit: limit('hard_limit'), softLimit: limit('soft_limit'), swapHardLimit: limit('swap_hard_limit'), minGuarantee: limit('min_guarantee') };
}

function uintText(n: XmlNode | undefined, path: string, max: bigint): bigint {
  const t = (textOf(n) ?? '').trim();
  if (!/^[0-9]{1,20}$/.test(t) || BigInt(t) > max) throw badValue(t, path);
  return BigInt(t);
}

function parseBlkiotune(root: XmlNode): BlkioTune {
  const t = first(root, 'blkiotune');
  if (!t) return { weight: 0, devices: [] };
  const w = first(t, 'weight');
  const weight = w ? Number(uintText(w, './blkiotune/weight[1]', 0xffffffffn)) : 0;
  const devices: BlkioDevice[] = [];
  for (const d of all(t, 'device')) {
    const path = (textOf(first(d, 'path')) ?? '').trim();
    if (path === '') throw detailed('internal error: missing per-device path');
    if (devices.some((x) => x.path === path)) throw detailed(`internal error: duplicate blkio device path '${path}'`);
    const num = (tag: string, max: bigint) => {
      const n = first(d, tag);
      return n ? uintText(n, `./blkiotune/device/${tag}[1]`, max) : 0n;
    };
    devices.push({
      path,
      weight: Number(num('weight', 0xffffffffn)),
      readIops: num('read_iops_sec', 0xffffffffn),
      writeIops: num('write_iops_sec', 0xffffffffn),
      readBytes: num('read_bytes_sec', 0xffffffffffffffffn),
      writeBytes: num('write_bytes_sec', 0xffffffffffffffffn),
    });
  }
  return { weight, devices };
}

function parseNumatune(root: XmlNode): DomainDef['numatune'] {
  const mem = first(root, 'numatune') && first(first(root, 'numatune')!, 'memory');
  if (!mem) return null;
  const a = attrsOf(mem);
  const mode = NUMA_MODES.indexOf((a.mode ?? 'strict') as (typeof NUMA_MODES)[number]);
  if (mode < 0) throw invalid(`Invalid value for attribute 'mode' in element 'memory': '${a.mode}'.`);
  if (a.nodeset === undefined) return a.placement === 'auto' ? { mode, nodeset: '' } : null;
  const bits = parseBitmap(a.nodeset);
  if (bits.length === 0) throw driverError(VG_ERR_CONFIG_UNSUPPORTED, `Invalid value of 'nodeset': ${a.nodeset}`);
  return { mode, nodeset: formatBitmap(bits) };
}

function formatTunes(def: DomainDef, o: string[]): void {
  const b = def.blkiotune;
  if (b.weight !== 0 || b.devices.length > 0) {
    o.push('  <blkiotune>');
    if (b.weight !== 0) o.push(`    <weight>${b.weight}</weight>`);
    for (const d of b.devices) {
      o.push('    <device>', `      <path>${escText(d.path)}</path>`);
      if (d.weight !== 0) o.push(`      <weight>${d.weight}</weight>`);
      if (d.readIops !== 0n) o.push(`      <read_iops_sec>${d.readIops}</read_iops_sec>`);
      if (d.writeIops !== 0n) o.push(`      <write_iops_sec>${d.writeIops}</write_iops_sec>`);
      if (d.readBytes !== 0n) o.push(`      <read_bytes_sec>${d.readBytes}</read_bytes_sec>`);
      if (d.writeBytes !== 0n) o.push(`      <write_bytes_sec>${d.writeBytes}</write_bytes_sec>`);
      o.push('    </device>');
    }
    o.push('  </blkiotune>');
  }
  const m = def.memtune;
  const lines: string[] = [];
  if (m.hardLimit !== null) lines.push(`    <hard_limit unit='KiB'>${m.hardLimit}</hard_limit>`);
  if (m.softLimit !== null) lines.push(`    <soft_limit unit='KiB'>${m.softLimit}</soft_limit>`);
  if (m.minGuarantee !== null) lines.push(`    <min_guarantee unit='KiB'>${m.minGuarantee}</min_guarantee>`);
  if (m.swapHardLimit !== null) lines.push(`    <swap_hard_limit unit='KiB'>${m.swapHardLimit}</swap_hard_limit>`);
  if (lines.length > 0) o.push('  <memtune>', ...lines, '  </memtune>');
}

// `trusted` only for the helper's own stored files: client XML never sets a tenant (our metadata is dropped with the rest).
export function parseDomainXml(xml: string, opts: { trusted?: boolean; warn?: (msg: string) => void } = {}): DomainDef {
  checkWellFormed(xml);
  const roots = (parser.parse(xml) as XmlNode[]).filter((n) => tagOf(n) !== null);
  if (roots.length !== 1) throw invalid('expecting exactly one root element');
  const root = roots[0];
  const rootTag = tagOf(root);
  if (rootTag !== 'domain') throw invalid(`expecting root element of 'domain', not '${rootTag}'`);
  checkTree(kids(root), 1); // the whole document, dropped parts included

  const type = attrsOf(root).type;
  if (type === undefined || type === '') throw detailed('internal error: missing domain type attribute');
  if (!VIRT_TYPES.has(type)) throw detailed(`unsupported configuration: invalid domain type ${type}`);

  const name = textOf(first(root, 'name'))?.trim() ?? '';
  if (name === '') throw detailed('missing name information');
  if (name.includes('/')) throw invalid(`name ${name} cannot contain '/'`);
  try {
    checkDomainName(name);
  } catch {
    throw invalid(`name '${name}' is not allowed: domain names are 1-${IpcLimits.NAME_MAX} characters of [A-Za-z0-9_.+:@-], not starting with . + : @ or -`);
  }

  const uuidText = textOf(first(root, 'uuid'));
  let uuid: string;
  if (uuidText === undefined) uuid = randomUUID();
  else {
    const raw = uuidFromString(uuidText.trim());
    if (!raw) throw detailed('internal error: malformed uuid element');
    uuid = uuidToString(raw);
  }

  const memNode = first(root, 'memory');
  const maxMemKiB = memNode ? parseMemoryKiB(textOf(memNode) ?? '', attrsOf(memNode).unit, './memory[1]') : 0n;
  if (maxMemKiB === 0n) throw invalid('Memory size must be specified via <memory> or in the <numa> configuration');
  const curNode = first(root, 'currentMemory');
  let curMemKiB = curNode ? parseMemoryKiB(textOf(curNode) ?? '', attrsOf(curNode).unit, './currentMemory[1]') : maxMemKiB;
  if (curMemKiB === 0n || curMemKiB > maxMemKiB) curMemKiB = maxMemKiB; // libvirt clamps the balloon to the maximum

  const vcpuNode = first(root, 'vcpu');
  const vcpusMax = vcpuNode ? parseCount(textOf(vcpuNode) ?? '', 'maximum') : 1;
  const currentAttr = vcpuNode ? attrsOf(vcpuNode).current : undefined;
  const vcpus = currentAttr === undefined ? vcpusMax : parseCount(currentAttr, 'current');
  if (vcpus > vcpusMax) throw detailed('unsupported configuration: maximum vCPU count must not be less than current vCPU count');
  const cpusetAttr = vcpuNode ? attrsOf(vcpuNode).cpuset : undefined;
  const cpumask = cpusetAttr === undefined || attrsOf(vcpuNode!).placement === 'auto' ? null : cpuset(cpusetAttr);
  const { vcpuPins, emulatorPin, iothreadPins } = parseCputune(root, vcpusMax);

  const os = first(root, 'os');
  const osTypeNode = os && first(os, 'type');
  const osTypeText = textOf(osTypeNode)?.trim();
  if (!osTypeNode || !osTypeText) throw invalid('an os <type> must be specified');
  const osType = osTypeText === 'linux' ? 'xen' : osTypeText; // libvirt's historical alias
  if (osType !== 'hvm' && osType !== 'xen') throw detailed(`unsupported configuration: unknown OS type '${osTypeText}'`);
  const arch = attrsOf(osTypeNode).arch ?? 'i686';
  const machine = attrsOf(osTypeNode).machine ?? null;
  const osExtra = kids(os!).filter((n) => OS_BEFORE_BOOT.includes(tagOf(n) ?? '') || OS_AFTER_BOOT.includes(tagOf(n) ?? ''));
  checkTree(osExtra, 2);
  if (!ARCHES.has(arch)) throw detailed(`unsupported configuration: Unknown architecture ${arch}`);
  const boot = all(os, 'boot').map((b) => attrsOf(b).dev ?? '');
  for (const dev of boot) if (!BOOT_DEVS.has(dev)) throw detailed(`internal error: unknown boot device '${dev}'`);

  const clock = first(root, 'clock');
  const clockOffset = clock ? (attrsOf(clock).offset ?? 'utc') : 'utc';
  if (!CLOCK_OFFSETS.has(clockOffset)) throw badValue(clockOffset, './clock/@offset');

  if (clock) checkTree(kids(clock), 2);

  const devicesNode = first(root, 'devices');
  // Device kinds libvirt does not know are dropped, as its parser does.
  const devices = devicesNode ? kids(devicesNode).filter((n) => DEVICE_ORDER.includes(tagOf(n) ?? '')) : [];
  checkTree(devices, 1);
  orderDevices(devices);
  normaliseDevices(devices);
  addDriveAddresses(devices);
  const top = kids(root).filter((n) => TOP_ORDER.includes(tagOf(n) ?? ''));
  checkTree(top, 1);
  const mdNode = first(root, 'metadata');
  // libvirt keeps the <metadata> children that are in a namespace of their own (ours: trusted only from our files).
  const metadata = mdNode ? kids(mdNode).filter((n) => tagOf(n) !== null && nsOf(n) !== null && !inTenantNs(n)) : [];
  checkTree(metadata, 2);

  return {
    type,
    name,
    uuid,
    title: textOf(first(root, 'title')) ?? null,
    description: textOf(first(root, 'description')) ?? null,
    maxMemKiB,
    curMemKiB,
    vcpusMax,
    vcpus,
    osType,
    arch,
    machine,
    osExtra,
    // libvirt adds <boot dev='hd'/> unless something else says how to boot
    boot: boot.length > 0 || osExtra.some((n) => tagOf(n) === 'kernel') ? boot : ['hd'],
    clockOffset,
    clock: clock ?? null,
    top,
    metadata,
    onPoweroff: oneOf(root, 'on_poweroff', LIFECYCLE_ACTIONS, 'destroy'),
    onReboot: oneOf(root, 'on_reboot', LIFECYCLE_ACTIONS, 'restart'),
    onCrash: oneOf(root, 'on_crash', LIFECYCLE_ACTIONS, 'destroy'),
    devices,
    ...devicesOf(devices),
    cpumask,
    vcpuPins,
    emulatorPin,
    iothreadPins,
    memtune: parseMemtune(root),
    blkiotune: parseBlkiotune(root),
    numatune: parseNumatune(root),
    tenant: opts.trusted ? storedTenant(root, opts.warn) : '',
  };
}

const inTenantNs = (el: XmlNode): boolean => Object.entries(attrsOf(el)).some(([k, v]) => /^xmlns(:|$)/.test(k) && v === VG_TENANT_NS);

// <os> children libvirt keeps, before and after the <boot> list (virDomainDefFormatInternal's order).
const OS_BEFORE_BOOT = [
  'firmware',
  'loader',
  'nvram',
  'init',
  'initarg',
  'initenv',
  'initdir',
  'inituser',
  'initgroup',
  'kernel',
  'initrd',
  'cmdline',
  'shim',
  'dtb',
  'acpi',
];
const OS_AFTER_BOOT = ['bootmenu', 'smbios', 'bios'];
// Top-level elements kept as given, each group at its place in libvirt's output (the rest have their own fields).
const TOP_BEFORE_VCPU = ['maxMemory'];
const TOP_AFTER_TUNE = ['memoryBacking'];
const TOP_AFTER_VCPU = ['vcpus', 'iothreads', 'iothreadids'];
const TOP_BEFORE_OS = ['resource', 'sysinfo', 'bootloader', 'bootloader_args'];
const TOP_AFTER_OS = ['idmap', 'features', 'cpu'];
const TOP_AFTER_LIFECYCLE = ['on_lockfailure', 'pm', 'perf'];
const TOP_AFTER_DEVICES = ['seclabel', 'keywrap', 'launchSecurity'];
const TOP_ORDER = [...TOP_BEFORE_VCPU, ...TOP_AFTER_TUNE, ...TOP_AFTER_VCPU, ...TOP_BEFORE_OS, ...TOP_AFTER_OS, ...TOP_AFTER_LIFECYCLE, ...TOP_AFTER_DEVICES];

// Disk buses libvirt infers from the target name (virDomainDiskDefAssignAddress's prefixes).
const BUS_BY_PREFIX: [string, string][] = [
  ['vd', 'virtio'],
  ['xvd', 'xen'],
  ['sd', 'scsi'],
  ['hd', 'ide'],
  ['fd', 'fdc'],
  ['ubd', 'uml'],
];

const el = (tag: string, attrs: Record<string, string>, children: XmlNode[] = []): XmlNode => ({ [tag]: children, ':@': attrs });

function randomMac(): string {
  const b = randomBytes(3);
  return `52:54:00:${[...b].map((x) => x.toString(16).padStart(2, '0')).join(':')}`;
}

// What libvirt's parser and the test driver's define fill in: a MAC per interface, testnetN names, disk buses,
// the primary video, a <listen> for a graphics listen attribute.
function normaliseDevices(devices: XmlNode[]): void {
  const ifnames = new Set<string>();
  for (const d of devices) {
    if (tagOf(d) !== 'interface') continue;
    const t = first(d, 'target');
    if (t && attrsOf(t).dev) ifnames.add(attrsOf(t).dev);
  }
  let video = false;
  for (const d of devices) {
    const tag = tagOf(d);
    const children = kids(d);
    if (tag === 'interface') {
      const mac = first(d, 'mac');
      if (!mac) children.unshift(el('mac', { address: randomMac() }));
      else {
        const norm = parseMac(attrsOf(mac).address ?? '');
        if (norm) (mac[':@'] as Record<string, string>).address = norm;
      }
      const t = first(d, 'target');
      if (!t || !attrsOf(t).dev) {
        let n = 0;
        while (ifnames.has(`testnet${n}`)) n++;
        ifnames.add(`testnet${n}`);
        if (t) t[':@'] = { ...attrsOf(t), dev: `testnet${n}` };
        else {
          const after = Math.max(
            children.findIndex((c) => tagOf(c) === 'source'),
            children.findIndex((c) => tagOf(c) === 'mac'),
          );
          children.splice(after + 1, 0, el('target', { dev: `testnet${n}` }));
        }
      }
    } else if (tag === 'disk') {
      const { type, device, ...rest } = attrsOf(d);
      d[':@'] = { type: type ?? 'file', device: device ?? 'disk', ...rest };
      const t = first(d, 'target');
      const a = t ? attrsOf(t) : {};
      if (t && a.dev && !a.bus) {
        const bus = BUS_BY_PREFIX.find(([p]) => a.dev.startsWith(p))?.[1];
        if (bus) t[':@'] = { ...a, bus };
      }
    } else if (tag === 'video' && !video) {
      video = true;
      const m = first(d, 'model');
      if (m && attrsOf(m).primary === undefined) m[':@'] = { ...attrsOf(m), primary: 'yes' };
    } else if (tag === 'graphics') {
      const a = attrsOf(d);
      if (a.listen !== undefined && !first(d, 'listen')) children.push(el('listen', { type: 'address', address: a.listen }));
    }
  }
}

// virDomainDefFormatInternal writes devices grouped by kind, in this order.
const DEVICE_ORDER = [
  'emulator',
  'disk',
  'controller',
  'lease',
  'filesystem',
  'interface',
  'smartcard',
  'serial',
  'parallel',
  'console',
  'channel',
  'input',
  'tpm',
  'graphics',
  'sound',
  'audio',
  'video',
  'hostdev',
  'redirdev',
  'redirfilter',
  'hub',
  'watchdog',
  'memballoon',
  'rng',
  'nvram',
  'panic',
  'shmem',
  'memory',
  'iommu',
  'vsock',
  'crypto',
];

// virDiskNameToIndex: hda -> 0, sdb -> 1, vdaa -> 26; -1 for names without a known prefix.
export function diskNameIndex(name: string): number {
  const prefix = ['fd', 'hd', 'vd', 'sd', 'xvd', 'ubd'].find((p) => name.startsWith(p));
  if (prefix === undefined) return -1;
  const m = /^([a-z]{1,20})([0-9]*)$/.exec(name.slice(prefix.length));
  if (!m) return -1;
  let idx = 0;
  for (let i = 0; i < m[1].length; i++) idx = (idx + (i < 1 ? 0 : 1)) * 26 + (m[1].charCodeAt(i) - 97);
  return idx;
}

const targetDev = (d: XmlNode): string => {
  const t = first(d, 'target');
  return (t && attrsOf(t).dev) || '';
};

// Devices by kind, stable; disks as virDomainDiskInsert places each parsed one: before the first disk of the same
// (explicitly given) bus with a higher drive index, else after the last disk of that bus, else at the end.
function orderDevices(devices: XmlNode[]): void {
  type Disk = { d: XmlNode; bus: string; dev: string; idx: number };
  const disks: Disk[] = [];
  for (const d of devices) {
    if (tagOf(d) !== 'disk') continue;
    const t = first(d, 'target');
    const dev = targetDev(d);
    const disk = { d, bus: (t && attrsOf(t).bus) || '', dev, idx: diskNameIndex(dev) };
    let insertAt = -1;
    for (let i = disks.length - 1; i >= 0; i--) {
      const o = disks[i];
      if (o.bus !== disk.bus) continue;
      if (o.dev && disk.dev && o.idx > disk.idx) insertAt = i;
      else if (insertAt === -1) insertAt = i + 1;
    }
    disks.splice(insertAt === -1 ? disks.length : insertAt, 0, disk);
  }
  const rank = (d: XmlNode) => DEVICE_ORDER.indexOf(tagOf(d) ?? '');
  const sorted = devices
    .filter((d) => tagOf(d) !== 'disk')
    .map((d, i) => ({ d, i }))
    .sort((a, b) => rank(a.d) - rank(b.d) || a.i - b.i)
    .map((x) => x.d);
  const at = sorted.findIndex((d) => rank(d) > DEVICE_ORDER.indexOf('disk'));
  sorted.splice(at === -1 ? sorted.length : at, 0, ...disks.map((x) => x.d));
  devices.splice(0, devices.length, ...sorted);
}

// virDomainDiskDefAssignAddress for drive buses, then virDomainDefAddImplicitControllers (SCSI, FDC, IDE, SATA).
function addDriveAddresses(devices: XmlNode[]): void {
  const layout: Record<string, (idx: number) => [number, number, number]> = {
    scsi: (i) => [Math.floor(i / 7), 0, i % 7],
    ide: (i) => [Math.floor(i / 4), Math.floor((i % 4) / 2), i % 2],
    sata: (i) => [Math.floor(i / 6), 0, i % 6],
    fdc: (i) => [Math.floor(i / 2), 0, i % 2],
  };
  const maxController: Record<string, number> = {};
  for (const d of devices) {
    if (tagOf(d) !== 'disk') continue;
    const t = first(d, 'target');
    const bus = t ? attrsOf(t).bus : undefined;
    if (bus === undefined || !layout[bus]) continue;
    let addr = first(d, 'address');
    if (!addr) {
      const idx = diskNameIndex(targetDev(d));
      if (idx < 0) continue;
      const [controller, b, unit] = layout[bus](idx);
      addr = el('address', { type: 'drive', controller: String(controller), bus: String(b), target: '0', unit: String(unit) });
      kids(d).push(addr);
    }
    const c = Number(attrsOf(addr).controller ?? '0');
    if (attrsOf(addr).type === 'drive' && Number.isInteger(c) && c >= 0 && c < 64) maxController[bus] = Math.max(maxController[bus] ?? -1, c);
  }
  const have = new Set(devices.filter((d) => tagOf(d) === 'controller').map((d) => `${attrsOf(d).type}/${attrsOf(d).index ?? '0'}`));
  let at = devices.reduce((last, d, i) => (tagOf(d) === 'disk' || tagOf(d) === 'controller' || tagOf(d) === 'emulator' ? i + 1 : last), 0);
  for (const type of ['scsi', 'fdc', 'ide', 'sata']) {
    for (let i = 0; i <= (maxController[type] ?? -1); i++) {
      if (have.has(`${type}/${i}`)) continue;
      devices.splice(at++, 0, el('controller', { type, index: String(i) }));
    }
  }
}

function storedTenant(root: XmlNode, warn?: (msg: string) => void): string {
  const md = first(root, 'metadata');
  for (const el of md ? kids(md) : []) {
    const tag = tagOf(el);
    if (tag === null || tag.replace(/^[^:]*:/, '') !== 'tenant') continue;
    if (!inTenantNs(el)) continue;
    const t = (textOf(el) ?? '').trim();
    // A name no policy can hold (written by an older version): keep the VM, host admins only, and say so; never drop it.
    if (!isTenantName(t)) {
      warn?.(
        `stored tenant name of domain '${String(textOf(first(root, 'name')) ?? '?').slice(0, 64)}' is malformed (${t.length} characters); the VM is kept without a tenant (host admins only) until reassigned`,
      );
      return '';
    }
    return t;
  }
  return '';
}

const escText = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const escAttr = (s: string) => escText(s).replace(/'/g, '&apos;').replace(/"/g, '&quot;');
// libvirt writes its own attributes in single quotes; copied metadata nodes come out of libxml2 in double quotes.
const attrList = (a: Record<string, string>, q: "'" | '"' = "'") =>
  Object.entries(a)
    .map(([k, v]) => ` ${k}=${q}${q === "'" ? escAttr(v) : escText(v).replace(/"/g, '&quot;')}${q}`)
    .join('');

function nodeXml(n: XmlNode, indent: string, out: string[], q: "'" | '"' = "'"): void {
  const tag = tagOf(n);
  if (tag === null) return;
  const children = kids(n);
  const elements = children.filter((c) => tagOf(c) !== null);
  const text = textOf(n) ?? '';
  const open = `${indent}<${tag}${attrList(attrsOf(n), q)}`;
  if (elements.length === 0) {
    out.push(text === '' ? `${open}/>` : `${open}>${escText(text)}</${tag}>`);
    return;
  }
  out.push(`${open}>`);
  for (const c of elements) nodeXml(c, `${indent}  `, out, q);
  out.push(`${indent}</${tag}>`);
}

// ---------- metadata elements (virDomainDefSetMetadata / virDomainObjGetMetadata) ----------

// The namespace URI an element declares for its own name: xmlns:PREFIX for a prefixed name, else xmlns.
function nsOf(n: XmlNode): string | null {
  const tag = tagOf(n) ?? '';
  const i = tag.indexOf(':');
  const v = attrsOf(n)[i === -1 ? 'xmlns' : `xmlns:${tag.slice(0, i)}`];
  return v === undefined || v === '' ? null : v;
}

const NCNAME_RE = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const localName = (tag: string) => tag.slice(tag.indexOf(':') + 1);

// The element of namespace `uri`, without its prefix and declaration, as libvirt hands it back; null if none.
export function metadataElement(def: DomainDef, uri: string): string | null {
  const n = def.metadata.find((m) => nsOf(m) === uri);
  if (!n) return null;
  const tag = tagOf(n)!;
  const prefix = tag.includes(':') ? tag.slice(0, tag.indexOf(':')) : null;
  const strip = (x: XmlNode): XmlNode => {
    const t = tagOf(x)!;
    const name = prefix !== null && t.startsWith(`${prefix}:`) ? localName(t) : t;
    const attrs = Object.fromEntries(Object.entries(attrsOf(x)).filter(([k]) => k !== (prefix === null ? 'xmlns' : `xmlns:${prefix}`)));
    return { [name]: kids(x).map((c) => (tagOf(c) === null ? c : strip(c))), ':@': attrs };
  };
  const out: string[] = [];
  nodeXml(strip(n), '', out, '"');
  return out.join('\n');
}

// Replaces (or with null removes) the element of namespace `uri`: the given XML, its elements put in `key:`.
export function withMetadataElement(def: DomainDef, xml: string | null, key: string | null, uri: string): DomainDef {
  const rest = def.metadata.filter((m) => nsOf(m) !== uri);
  if (xml === null) return { ...def, metadata: rest };
  if (key === null || !NCNAME_RE.test(key) || key.toLowerCase().startsWith('xml'))
    throw detailed('internal error: failed to validate prefix for a new XML namespace');
  if (uri === VG_TENANT_NS) throw driverError(VG_ERR_DOMAIN_ARG, 'the tenant namespace is set with virtgate vm set-tenant');
  checkWellFormed(xml);
  const roots = (parser.parse(xml) as XmlNode[]).filter((n) => tagOf(n) !== null);
  if (roots.length !== 1) throw invalid('metadata is one element');
  checkTree(kids(roots[0]), 2);
  const inject = (x: XmlNode, top: boolean): XmlNode => {
    const name = `${key}:${localName(tagOf(x)!)}`;
    const attrs = Object.fromEntries(Object.entries(attrsOf(x)).filter(([k]) => k !== 'xmlns' && !k.startsWith('xmlns:')));
    return { [name]: kids(x).map((c) => (tagOf(c) === null ? c : inject(c, false))), ':@': top ? { [`xmlns:${key}`]: uri, ...attrs } : attrs };
  };
  return { ...def, metadata: [...rest, inject(roots[0], true)] };
}

// Same element order and layout as libvirt's virDomainDefFormat for the parts we model.
export function formatDomainXml(def: DomainDef, liveId: number | null): string {
  const o: string[] = [];
  o.push(`<domain type='${escAttr(def.type)}'${liveId !== null ? ` id='${liveId}'` : ''}>`);
  o.push(`  <name>${escText(def.name)}</name>`);
  o.push(`  <uuid>${def.uuid}</uuid>`);
  if (def.title !== null) o.push(`  <title>${escText(def.title)}</title>`);
  if (def.description !== null) o.push(`  <description>${escText(def.description)}</description>`);
  if (def.tenant !== '' || def.metadata.length > 0) {
    o.push('  <metadata>');
    for (const m of def.metadata) nodeXml(m, '    ', o, '"');
    if (def.tenant !== '') o.push(`    <virtgate:tenant xmlns:virtgate='${VG_TENANT_NS}'>${escText(def.tenant)}</virtgate:tenant>`);
    o.push('  </metadata>');
  }
  const tops = (tags: string[]) => {
    for (const tag of tags) for (const n of def.top) if (tagOf(n) === tag) nodeXml(n, '  ', o);
  };
  tops(TOP_BEFORE_VCPU);
  o.push(`  <memory unit='KiB'>${def.maxMemKiB}</memory>`);
  o.push(`  <currentMemory unit='KiB'>${def.curMemKiB}</currentMemory>`);
  const current = def.vcpus !== def.vcpusMax ? ` current='${def.vcpus}'` : '';
  formatTunes(def, o);
  tops(TOP_AFTER_TUNE);
  const mask = def.cpumask ? ` cpuset='${formatBitmap(def.cpumask)}'` : '';
  o.push(`  <vcpu placement='static'${mask}${current}>${def.vcpusMax}</vcpu>`);
  tops(TOP_AFTER_VCPU);
  if (def.vcpuPins.size > 0 || def.emulatorPin || def.iothreadPins.size > 0) {
    o.push('  <cputune>');
    for (const [id, bits] of [...def.vcpuPins].sort((a, b) => a[0] - b[0])) o.push(`    <vcpupin vcpu='${id}' cpuset='${formatBitmap(bits)}'/>`);
    if (def.emulatorPin) o.push(`    <emulatorpin cpuset='${formatBitmap(def.emulatorPin)}'/>`);
    for (const [id, bits] of [...def.iothreadPins].sort((a, b) => a[0] - b[0])) o.push(`    <iothreadpin iothread='${id}' cpuset='${formatBitmap(bits)}'/>`);
    o.push('  </cputune>');
  }
  if (def.numatune) {
    const ns = def.numatune.nodeset === '' ? " placement='auto'" : ` nodeset='${def.numatune.nodeset}'`;
    o.push('  <numatune>', `    <memory mode='${NUMA_MODES[def.numatune.mode]}'${ns}/>`, '  </numatune>');
  }
  tops(TOP_BEFORE_OS);
  const machine = def.machine !== null ? ` machine='${escAttr(def.machine)}'` : '';
  o.push('  <os>', `    <type arch='${def.arch}'${machine}>${def.osType}</type>`);
  const osKids = (tags: string[]) => {
    for (const tag of tags) for (const n of def.osExtra) if (tagOf(n) === tag) nodeXml(n, '    ', o);
  };
  osKids(OS_BEFORE_BOOT);
  for (const dev of def.boot) o.push(`    <boot dev='${dev}'/>`);
  osKids(OS_AFTER_BOOT);
  o.push('  </os>');
  tops(TOP_AFTER_OS);
  nodeXml(def.clock ? { clock: kids(def.clock), ':@': { ...attrsOf(def.clock), offset: def.clockOffset } } : el('clock', { offset: def.clockOffset }), '  ', o);
  o.push(`  <on_poweroff>${def.onPoweroff}</on_poweroff>`, `  <on_reboot>${def.onReboot}</on_reboot>`, `  <on_crash>${def.onCrash}</on_crash>`);
  tops(TOP_AFTER_LIFECYCLE);
  o.push('  <devices>');
  for (const d of def.devices) nodeXml(d, '    ', o);
  o.push('  </devices>');
  tops(TOP_AFTER_DEVICES);
  o.push('</domain>');
  return `${o.join('\n')}\n`;
}
