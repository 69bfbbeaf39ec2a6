// SPDX-License-Identifier: Apache-2.0
// Domain XML on the unprivileged side: untrusted client text -> a checked DomainDef (libvirt 9.0's rules and
// messages for the subset we model), and a DomainDef -> the text virDomainDefFormat writes. The root helper gets
// and returns DomainDefs (../../ipc/objects/domain-def.ts) and never sees this XML.
import { type VncListen, liveGraphics } from './graphics';
import { randomBytes, randomUUID } from 'node:crypto';
import { VG_ERR_CONFIG_UNSUPPORTED, VG_ERR_DOMAIN_ARG, VG_ERR_XML_DETAIL, VG_ERR_XML_INVALID, type VgError } from '../../common/errors';
import { isTenantName } from '../../common/names';
import { IpcLimits, checkDomainName, uuidFromString, uuidToString } from '../../ipc/program';
import {
  ARCHES,
  type BlkioDevice,
  type BlkioTune,
  BOOT_DEVS,
  CLOCK_OFFSETS,
  DEVICE_ORDER,
  type DomainDef,
  DomainDefLimits,
  LIFECYCLE_ACTIONS,
  type MemTune,
  NUMA_MODES,
  OS_AFTER_BOOT,
  OS_BEFORE_BOOT,
  PARAM_UNLIMITED_KIB,
  TOP_AFTER_DEVICES,
  TOP_AFTER_LIFECYCLE,
  TOP_AFTER_OS,
  TOP_AFTER_TUNE,
  TOP_AFTER_VCPU,
  TOP_BEFORE_OS,
  TOP_BEFORE_VCPU,
  TOP_ORDER,
  VG_TENANT_NS,
  VIRT_TYPES,
  type XmlEl,
  decodeDomainDef,
  devicesOf,
  encodeDomainDef,
  formatBitmap,
  metadataIn,
  nsOf as elNs,
  parseBitmap,
  parseMac,
  treeProblem,
} from '../../ipc/objects/domain-def';
import { type XmlNode, all, attrsOf, first, kids, ownText as textOf, readXmlRoot, tagOf, tooDeep } from './tree';

export type { DomainDef };
export { VG_TENANT_NS, formatBitmap, parseBitmap };

const DEVICES_DEPTH_MAX = DomainDefLimits.DEPTH_MAX;
const ELEMENTS_MAX = DomainDefLimits.ELEMENTS_MAX;

const invalid = (detail: string): VgError => VG_ERR_XML_INVALID(detail);
// libvirt words some XML failures without the "XML error: " prefix: carry its whole text.
const detailed = (text: string): VgError => VG_ERR_XML_DETAIL(text);
const badValue = (v: string, path: string) => invalid(`Invalid value '${v}' for element or attribute '${path}'`);

function readDocument(xml: string): XmlNode {
  return readXmlRoot(xml, { trimValues: true, comments: false, maxBytes: IpcLimits.XML_MAX, maxElements: ELEMENTS_MAX }, (p) => {
    if (p.kind === 'too-large') return invalid(`domain XML larger than ${p.max} bytes`);
    if (p.kind === 'too-many') return invalid(`more than ${p.max} elements`);
    if (p.kind === 'empty') return invalid('Document is empty');
    if (p.kind === 'dtd') return invalid(`DOCTYPE and ENTITY declarations are not allowed (line ${p.line})`);
    if (p.kind === 'syntax') return invalid(p.col ? `${p.msg} (line ${p.line}, column ${p.col})` : `${p.msg} (line ${p.line})`);
    if (p.kind === 'entity') return invalid(`Entity '${p.name}' not defined (line ${p.line})`);
    return invalid(p.kind === 'roots' && p.count === 0 ? 'Document is empty' : 'expecting exactly one root element');
  });
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
  throw VG_ERR_DOMAIN_ARG(`unknown suffix '${unit}'`);
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
  if (tooDeep(nodes, depth, DEVICES_DEPTH_MAX)) throw invalid(`elements nested deeper than ${DEVICES_DEPTH_MAX} levels`);
}

function oneOf(parent: XmlNode, tag: string, allowed: ReadonlySet<string>, dflt: string): string {
  const t = textOf(first(parent, tag));
  if (t === undefined) return dflt;
  if (!allowed.has(t)) throw badValue(t, `./${tag}[1]`);
  return t;
}

// ---------- CPU bitmaps (virBitmapParse / virBitmapFormat, ../../ipc/objects/domain-def.ts) ----------

const bitmapError = (text: string) => VG_ERR_DOMAIN_ARG(`Failed to parse bitmap '${text}'`);
const bitmapOf = (text: string): number[] =>
  parseBitmap(text) ??
  (() => {
    throw bitmapError(text);
  })();

// A cpuset attribute: parsed, and refused when it names no CPU at all.
function cpuset(text: string): number[] {
  const bits = bitmapOf(text);
  if (bits.length === 0) throw VG_ERR_CONFIG_UNSUPPORTED(`Invalid value of 'cpuset': ${text}`);
  return bits;
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
  const bits = bitmapOf(a.nodeset);
  if (bits.length === 0) throw VG_ERR_CONFIG_UNSUPPORTED(`Invalid value of 'nodeset': ${a.nodeset}`);
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

export interface DomainParseOptions {
  trusted?: boolean; // only for virtgate's own files (the one-shot conversion of stored XML): client XML never sets a tenant
  warn?: (msg: string) => void;
  // The qemu driver refuses libvirt's QEMU namespace (<qemu:commandline>, <qemu:override>, ...): raw arguments would
  // bypass the launcher's argv policy. The test driver drops it unread, as libvirt's test driver does.
  refuseQemuNamespace?: boolean;
}

export const QEMU_NS = 'http://libvirt.org/schemas/domain/qemu/1.0';

export function parseDomainXml(xml: string, opts: DomainParseOptions = {}): DomainDef {
  const root = readDocument(xml);
  const rootTag = tagOf(root);
  if (rootTag !== 'domain') throw invalid(`expecting root element of 'domain', not '${rootTag}'`);
  return domainDefFromNode(root, opts);
}

// A <domain> element already parsed (alone, or inside another document such as a snapshot's) -> a DomainDef that
// the helper's decoder accepts.
export function domainDefFromNode(root: XmlNode, opts: DomainParseOptions = {}): DomainDef {
  checkTree(kids(root), 1); // the whole document, dropped parts included
  if (opts.refuseQemuNamespace) {
    const declared = (n: XmlNode, prefix: string): string | undefined => attrsOf(n)[`xmlns:${prefix}`] ?? attrsOf(root)[`xmlns:${prefix}`];
    for (const n of kids(root)) {
      const tag = tagOf(n);
      const colon = tag?.indexOf(':') ?? -1;
      if (tag && colon > 0 && declared(n, tag.slice(0, colon)) === QEMU_NS)
        throw VG_ERR_CONFIG_UNSUPPORTED(`<${tag}> (QEMU passthrough is not offered: every QEMU argument comes from the typed configuration)`);
    }
  }
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
  const metadata = mdNode ? kids(mdNode).filter((n) => tagOf(n) !== null && nodeNs(n) !== null && !inTenantNs(n)) : [];
  checkTree(metadata, 2);

  const osEls = osExtra.map(toEl);
  const deviceEls = devices.map(toEl);
  const def: DomainDef = {
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
    osExtra: osEls,
    // libvirt adds <boot dev='hd'/> unless something else says how to boot; it reads the first four
    boot: boot.length > 0 || osEls.some((n) => n.tag === 'kernel') ? boot.slice(0, DomainDefLimits.BOOT_MAX) : ['hd'],
    clockOffset,
    clock: clock ? toEl(clock) : null,
    top: top.map(toEl),
    metadata: metadata.map(toEl),
    onPoweroff: oneOf(root, 'on_poweroff', LIFECYCLE_ACTIONS, 'destroy'),
    onReboot: oneOf(root, 'on_reboot', LIFECYCLE_ACTIONS, 'restart'),
    onCrash: oneOf(root, 'on_crash', LIFECYCLE_ACTIONS, 'destroy'),
    devices: deviceEls,
    ...devicesOf(deviceEls, detailed),
    cpumask,
    vcpuPins,
    emulatorPin,
    iothreadPins,
    memtune: parseMemtune(root),
    blkiotune: parseBlkiotune(root),
    numatune: parseNumatune(root),
    tenant: opts.trusted ? storedTenant(root, opts.warn) : '',
  };
  checkSendable(def);
  return def;
}

// What the helper's decoder would refuse (a name outside the XML-name subset, too many attributes, a definition over
// the size budget), refused here as an XML error: the front end never sends a definition that ends its connection.
function checkSendable(def: DomainDef): void {
  const p = treeProblem([...def.osExtra, ...def.top, ...def.metadata, ...def.devices, ...(def.clock ? [def.clock] : [])], 1);
  if (p) throw invalid(p);
  try {
    decodeDomainDef(encodeDomainDef(def));
  } catch (e) {
    throw invalid(`definition not accepted: ${(e as Error).message}`);
  }
}

// A parsed node -> the element tree that crosses the IPC (text: the element's own text nodes).
function toEl(n: XmlNode): XmlEl {
  return {
    tag: tagOf(n)!,
    attrs: { ...attrsOf(n) },
    text: textOf(n) ?? '',
    kids: kids(n)
      .filter((c) => tagOf(c) !== null)
      .map(toEl),
  };
}

// The namespace a parsed element declares for its own name (elNs for the node form).
const nodeNs = (n: XmlNode): string | null => elNs({ tag: tagOf(n) ?? '', attrs: attrsOf(n), text: '', kids: [] });
const inTenantNs = (el: XmlNode): boolean => Object.entries(attrsOf(el)).some(([k, v]) => /^xmlns(:|$)/.test(k) && v === VG_TENANT_NS);

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

function nodeXml(n: XmlEl, indent: string, out: string[], q: "'" | '"' = "'"): void {
  const open = `${indent}<${n.tag}${attrList(n.attrs, q)}`;
  if (n.kids.length === 0) {
    out.push(n.text === '' ? `${open}/>` : `${open}>${escText(n.text)}</${n.tag}>`);
    return;
  }
  out.push(`${open}>`);
  for (const c of n.kids) nodeXml(c, `${indent}  `, out, q);
  out.push(`${indent}</${n.tag}>`);
}

// ---------- metadata elements (virDomainDefSetMetadata / virDomainObjGetMetadata) ----------

const NCNAME_RE = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const localName = (tag: string) => tag.slice(tag.indexOf(':') + 1);

// The element of namespace `uri` (the helper hands back the tree), without its prefix and declaration, as libvirt
// hands it back; null if none.
export function metadataElement(def: DomainDef, uri: string): string | null {
  const n = metadataIn(def, uri);
  return n === null ? null : metadataElementXml(n);
}

export function metadataElementXml(n: XmlEl): string {
  const prefix = n.tag.includes(':') ? n.tag.slice(0, n.tag.indexOf(':')) : null;
  const strip = (x: XmlEl): XmlEl => ({
    tag: prefix !== null && x.tag.startsWith(`${prefix}:`) ? localName(x.tag) : x.tag,
    attrs: Object.fromEntries(Object.entries(x.attrs).filter(([k]) => k !== (prefix === null ? 'xmlns' : `xmlns:${prefix}`))),
    text: x.text,
    kids: x.kids.map(strip),
  });
  const out: string[] = [];
  nodeXml(strip(n), '', out, '"');
  return out.join('\n');
}

// The client's metadata XML as the element libvirt stores: its names put in `key:`, declaring `uri`.
export function metadataElementOf(xml: string, key: string | null, uri: string): XmlEl {
  if (key === null || !NCNAME_RE.test(key) || key.toLowerCase().startsWith('xml'))
    throw detailed('internal error: failed to validate prefix for a new XML namespace');
  if (uri === VG_TENANT_NS) throw VG_ERR_DOMAIN_ARG('the tenant namespace is set with virtgate vm set-tenant');
  const root = readDocument(xml);
  checkTree(kids(root), 2);
  const inject = (x: XmlNode, top: boolean): XmlEl => {
    const attrs = Object.fromEntries(Object.entries(attrsOf(x)).filter(([k]) => k !== 'xmlns' && !k.startsWith('xmlns:')));
    return {
      tag: `${key}:${localName(tagOf(x)!)}`,
      attrs: top ? { [`xmlns:${key}`]: uri, ...attrs } : attrs,
      text: textOf(x) ?? '',
      kids: kids(x)
        .filter((c) => tagOf(c) !== null)
        .map((c) => inject(c, false)),
    };
  };
  const el = inject(root, true);
  const p = treeProblem([el], 1);
  if (p) throw invalid(p);
  if (elNs(el) !== uri) throw invalid('metadata element namespace');
  return el;
}

export interface FormatOptions {
  secure?: boolean; // VIR_DOMAIN_XML_SECURE: graphics passwords are written only with it (default: written)
  vncListen?: VncListen | null; // a running QEMU VM's VNC proxy port (none: the display is reachable by descriptor only)
}

// Same element order and layout as libvirt's virDomainDefFormat for the parts we model.
export function formatDomainXml(def: DomainDef, liveId: number | null, opts: FormatOptions = {}): string {
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
    for (const tag of tags) for (const n of def.top) if (n.tag === tag) nodeXml(n, '  ', o);
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
    for (const tag of tags) for (const n of def.osExtra) if (n.tag === tag) nodeXml(n, '    ', o);
  };
  osKids(OS_BEFORE_BOOT);
  for (const dev of def.boot) o.push(`    <boot dev='${dev}'/>`);
  osKids(OS_AFTER_BOOT);
  o.push('  </os>');
  tops(TOP_AFTER_OS);
  const clock: XmlEl = def.clock
    ? { ...def.clock, attrs: { ...def.clock.attrs, offset: def.clockOffset } }
    : { tag: 'clock', attrs: { offset: def.clockOffset }, text: '', kids: [] };
  nodeXml(clock, '  ', o);
  o.push(`  <on_poweroff>${def.onPoweroff}</on_poweroff>`, `  <on_reboot>${def.onReboot}</on_reboot>`, `  <on_crash>${def.onCrash}</on_crash>`);
  tops(TOP_AFTER_LIFECYCLE);
  o.push('  <devices>');
  const secure = opts.secure ?? true;
  for (const dev of def.devices) {
    const d = liveId !== null ? liveGraphics(dev, def.type, opts.vncListen ?? null) : dev;
    // virDomainGraphicsDefFormat writes passwd only for VIR_DOMAIN_DEF_FORMAT_SECURE.
    if (!secure && d.tag === 'graphics' && 'passwd' in d.attrs) {
      const { passwd: _hidden, ...attrs } = d.attrs;
      nodeXml({ ...d, attrs }, '    ', o);
    } else nodeXml(d, '    ', o);
  }
  o.push('  </devices>');
  tops(TOP_AFTER_DEVICES);
  o.push('</domain>');
  return `${o.join('\n')}\n`;
}
