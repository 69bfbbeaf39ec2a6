// SPDX-License-Identifier: Apache-2.0
// Domain XML subset: untrusted text from the front end -> validated DomainDef -> our own libvirt-style XML (helper side).
import { randomUUID } from 'node:crypto';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { VG_ERR_DOMAIN_ARG, VG_ERR_XML_DETAIL, VG_ERR_XML_INVALID } from '../../common/errors';
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
  boot: string[];
  clockOffset: string;
  onPoweroff: string;
  onReboot: string;
  onCrash: string;
  devices: XmlNode[]; // kept as given and re-serialised; the test driver never acts on them
  tenant: string; // virtgate's record of the VM's tenant ('' = none); never taken from client XML
}

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
const DEVICES_DEPTH_MAX = 16; // real device trees are 3-4 levels deep

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
const first = (parent: XmlNode, tag: string): XmlNode | undefined => kids(parent).find((c) => tagOf(c) === tag);
const all = (parent: XmlNode, tag: string): XmlNode[] => kids(parent).filter((c) => tagOf(c) === tag);
const textOf = (n: XmlNode | undefined): string | undefined =>
  n === undefined
    ? undefined
    : kids(n)
        .map((c) => (typeof c['#text'] === 'string' ? c['#text'] : ''))
        .join('');

function checkWellFormed(xml: string): void {
  if (xml.trim() === '') throw invalid('Document is empty');
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

export function parseMemoryKiB(text: string, unit: string | undefined, path: string): bigint {
  const v = text.trim();
  if (!/^[0-9]{1,20}$/.test(v)) throw badValue(text, path);
  const bytes = BigInt(v) * scaleFor(unit);
  const kib = (bytes + 1023n) / 1024n; // libvirt rounds up to whole KiB
  if (kib > IpcLimits.MEMORY_KIB_MAX) throw badValue(text, path);
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
  if (depth > DEVICES_DEPTH_MAX) throw invalid(`<devices> nested deeper than ${DEVICES_DEPTH_MAX} levels`);
  for (const n of nodes) if (tagOf(n) !== null) checkTree(kids(n), depth + 1);
}

function oneOf(parent: XmlNode, tag: string, allowed: Set<string>, dflt: string): string {
  const t = textOf(first(parent, tag));
  if (t === undefined) return dflt;
  if (!allowed.has(t)) throw badValue(t, `./${tag}[1]`);
  return t;
}

// `trusted` only for the helper's own stored files: client XML never sets a tenant (our metadata is dropped with the rest).
export function parseDomainXml(xml: string, opts: { trusted?: boolean; warn?: (msg: string) => void } = {}): DomainDef {
  checkWellFormed(xml);
  const roots = (parser.parse(xml) as XmlNode[]).filter((n) => tagOf(n) !== null);
  if (roots.length !== 1) throw invalid('expecting exactly one root element');
  const root = roots[0];
  const rootTag = tagOf(root);
  if (rootTag !== 'domain') throw invalid(`expecting root element of 'domain', not '${rootTag}'`);

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

  const os = first(root, 'os');
  const osTypeNode = os && first(os, 'type');
  const osTypeText = textOf(osTypeNode)?.trim();
  if (!osTypeNode || !osTypeText) throw invalid('an os <type> must be specified');
  const osType = osTypeText === 'linux' ? 'xen' : osTypeText; // libvirt's historical alias
  if (osType !== 'hvm' && osType !== 'xen') throw detailed(`unsupported configuration: unknown OS type '${osTypeText}'`);
  const arch = attrsOf(osTypeNode).arch ?? 'i686';
  if (!ARCHES.has(arch)) throw detailed(`unsupported configuration: Unknown architecture ${arch}`);
  const boot = all(os, 'boot').map((b) => attrsOf(b).dev ?? '');
  for (const dev of boot) if (!BOOT_DEVS.has(dev)) throw detailed(`internal error: unknown boot device '${dev}'`);

  const clock = first(root, 'clock');
  const clockOffset = clock ? (attrsOf(clock).offset ?? 'utc') : 'utc';
  if (!CLOCK_OFFSETS.has(clockOffset)) throw badValue(clockOffset, './clock/@offset');

  const devicesNode = first(root, 'devices');
  const devices = devicesNode ? kids(devicesNode).filter((n) => tagOf(n) !== null) : [];
  checkTree(devices, 1);

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
    boot: boot.length > 0 ? boot : ['hd'],
    clockOffset,
    onPoweroff: oneOf(root, 'on_poweroff', LIFECYCLE_ACTIONS, 'destroy'),
    onReboot: oneOf(root, 'on_reboot', LIFECYCLE_ACTIONS, 'restart'),
    onCrash: oneOf(root, 'on_crash', LIFECYCLE_ACTIONS, 'destroy'),
    devices,
    tenant: opts.trusted ? storedTenant(root, opts.warn) : '',
  };
}

function storedTenant(root: XmlNode, warn?: (msg: string) => void): string {
  const md = first(root, 'metadata');
  for (const el of md ? kids(md) : []) {
    const tag = tagOf(el);
    if (tag === null || tag.replace(/^[^:]*:/, '') !== 'tenant') continue;
    if (!Object.entries(attrsOf(el)).some(([k, v]) => /^xmlns(:|$)/.test(k) && v === VG_TENANT_NS)) continue;
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
const attrList = (a: Record<string, string>) =>
  Object.entries(a)
    .map(([k, v]) => ` ${k}='${escAttr(v)}'`)
    .join('');

function nodeXml(n: XmlNode, indent: string, out: string[]): void {
  const tag = tagOf(n);
  if (tag === null) return;
  const children = kids(n);
  const elements = children.filter((c) => tagOf(c) !== null);
  const text = textOf(n) ?? '';
  const open = `${indent}<${tag}${attrList(attrsOf(n))}`;
  if (elements.length === 0) {
    out.push(text === '' ? `${open}/>` : `${open}>${escText(text)}</${tag}>`);
    return;
  }
  out.push(`${open}>`);
  for (const c of elements) nodeXml(c, `${indent}  `, out);
  out.push(`${indent}</${tag}>`);
}

// Same element order and layout as libvirt's virDomainDefFormat for the parts we model.
export function formatDomainXml(def: DomainDef, liveId: number | null): string {
  const o: string[] = [];
  o.push(`<domain type='${escAttr(def.type)}'${liveId !== null ? ` id='${liveId}'` : ''}>`);
  o.push(`  <name>${escText(def.name)}</name>`);
  o.push(`  <uuid>${def.uuid}</uuid>`);
  if (def.title !== null) o.push(`  <title>${escText(def.title)}</title>`);
  if (def.description !== null) o.push(`  <description>${escText(def.description)}</description>`);
  if (def.tenant !== '')
    o.push('  <metadata>', `    <virtgate:tenant xmlns:virtgate='${VG_TENANT_NS}'>${escText(def.tenant)}</virtgate:tenant>`, '  </metadata>');
  o.push(`  <memory unit='KiB'>${def.maxMemKiB}</memory>`);
  o.push(`  <currentMemory unit='KiB'>${def.curMemKiB}</currentMemory>`);
  const current = def.vcpus !== def.vcpusMax ? ` current='${def.vcpus}'` : '';
  o.push(`  <vcpu placement='static'${current}>${def.vcpusMax}</vcpu>`);
  o.push('  <os>', `    <type arch='${def.arch}'>${def.osType}</type>`);
  for (const dev of def.boot) o.push(`    <boot dev='${dev}'/>`);
  o.push('  </os>');
  o.push(`  <clock offset='${def.clockOffset}'/>`);
  o.push(`  <on_poweroff>${def.onPoweroff}</on_poweroff>`, `  <on_reboot>${def.onReboot}</on_reboot>`, `  <on_crash>${def.onCrash}</on_crash>`);
  o.push('  <devices>');
  for (const d of def.devices) nodeXml(d, '    ', o);
  o.push('  </devices>', '</domain>');
  return `${o.join('\n')}\n`;
}
