// SPDX-License-Identifier: Apache-2.0
// Snapshot and checkpoint XML on the unprivileged side: untrusted client text -> typed Moment (checked as libvirt 9.0's
// virDomainSnapshotDefParse / virDomainCheckpointDefParse check it, with their messages), and a typed moment -> XML
// exactly as virDomainSnapshotDefFormat / virDomainCheckpointDefFormat write it. The helper only sees typed moments;
// the <domain> element of a redefinition goes to it as a typed DomainDef, parsed here by ./domain.ts.
import type { DomainDef } from '../../ipc/objects/domain-def';
import { domainDefFromNode, formatDomainXml } from './domain';
import { type XmlNode, attrsOf, deepText, first, kids, readXmlRoot, tagOf } from './tree';
import { VG_ERR_CONFIG_UNSUPPORTED, VG_ERR_DOMAIN_INTERNAL, VG_ERR_XML_DETAIL, VG_ERR_XML_INVALID, VgError } from '../../common/errors';
import {
  CHECKPOINT_TYPES,
  Location,
  MOMENT_NAME_RULE,
  type Moment,
  type MomentDisk,
  MomentLimits,
  SNAPSHOT_LOCATIONS,
  SNAPSHOT_STATES,
  isAbsPath,
  isDiskTarget,
  isMomentName,
} from '../../ipc/objects/snapshot';

export const MOMENT_XML_MAX = 1024 * 1024; // bytes: a description and a whole domain XML fit

const invalid = (detail: string): VgError => VG_ERR_XML_INVALID(detail);
const internal = (detail: string): VgError => VG_ERR_DOMAIN_INTERNAL(detail);
const unsupported = (detail: string): VgError => VG_ERR_CONFIG_UNSUPPORTED(detail);

const attr = (n: XmlNode | undefined, name: string): string | undefined => attrsOf(n)[name];
const elements = (n: XmlNode): XmlNode[] => kids(n).filter((c) => tagOf(c) !== null);
// XPath string(): the concatenated text of the element; libvirt's virXPathString makes '' into NULL.
function textOf(n: XmlNode | undefined): string | null {
  const t = deepText(n);
  return t === '' ? null : t;
}

// One well-formed document with the expected root element, or libvirt-style XML errors ("(domain_snapshot):LINE: ...").
function parseRoot(xml: string, root: string, what: string): XmlNode {
  const top = readXmlRoot(xml, { trimValues: true, comments: false, maxBytes: MOMENT_XML_MAX }, (p) => {
    if (p.kind === 'too-large') return invalid(`document of ${p.bytes} bytes exceeds ${p.max}`);
    if (p.kind === 'empty') return VG_ERR_XML_DETAIL(`(${what}):1: Document is empty`);
    if (p.kind === 'dtd') return invalid(`DOCTYPE and ENTITY declarations are not allowed (line ${p.line})`);
    if (p.kind === 'syntax') return VG_ERR_XML_DETAIL(`(${what}):${p.line}: ${p.msg}${p.col ? ` (column ${p.col})` : ''}`);
    if (p.kind === 'entity') return invalid(`Entity '${p.name}' not defined (line ${p.line})`);
    return invalid('expecting exactly one root element');
  });
  const tag = tagOf(top);
  if (tag !== root) throw invalid(`expecting root element of '${root}', not '${tag}'`);
  return top;
}

function momentName(s: string | null, what: string): string {
  if (s === null) return '';
  if (!isMomentName(s)) throw invalid(`${what} name '${s.slice(0, 64)}${s.length > 64 ? '...' : ''}' is not accepted: names are ${MOMENT_NAME_RULE}`);
  return s;
}

function description(root: XmlNode): string | null {
  const d = textOf(first(root, 'description'));
  if (d !== null && Buffer.byteLength(d) > MomentLimits.DESCRIPTION_MAX) throw invalid(`description exceeds ${MomentLimits.DESCRIPTION_MAX} bytes`);
  return d;
}

// virXPathLongLong("string(./creationTime)"): a whole decimal number or the given error.
function creationTime(root: XmlNode, what: string): bigint {
  const t = textOf(first(root, 'creationTime'));
  if (t === null || !/^[+-]?[0-9]{1,19}$/.test(t.trim())) throw internal(`missing creationTime from existing ${what}`);
  const v = BigInt(t.trim());
  if (v < 0n || v > 0x7fffffffffffffffn) throw internal(`missing creationTime from existing ${what}`);
  return v;
}

// The <domain> element of a redefinition, parsed here into a typed definition (the helper never sees domain XML).
function domainDef(root: XmlNode, tag: string): DomainDef | null {
  const dom = first(root, tag);
  if (!dom || attr(dom, 'type') === undefined) return null; // older snapshots: <domain><uuid/></domain> only
  return domainDefFromNode(dom);
}

// virXMLPropEnumDefault(..., VIR_XML_PROP_NONZERO): absent = default (0), 'default' itself is refused.
function enumProp(node: XmlNode, name: string, values: readonly string[], element: string): number {
  const v = attr(node, name);
  if (v === undefined) return 0;
  const i = values.indexOf(v);
  if (i <= 0) throw invalid(`Invalid value for attribute '${name}' in element '${element}': '${v}'.`);
  return i;
}

const FORMATS = ['raw', 'dir', 'bochs', 'cloop', 'dmg', 'iso', 'vpc', 'vdi', 'fat', 'vhd', 'ploop', 'cow', 'qcow', 'qcow2', 'qed', 'vmdk'];

function snapshotDisk(node: XmlNode, redefine: boolean): MomentDisk {
  const name = attr(node, 'name');
  if (name === undefined) throw internal('missing name from disk snapshot element');
  if (!isDiskTarget(name)) throw unsupported(`no disk named '${name.slice(0, 64)}'`);
  let location = enumProp(node, 'snapshot', SNAPSHOT_LOCATIONS, 'disk');
  const type = attr(node, 'type') ?? 'file';
  if (type === 'volume' || type === 'dir') throw invalid(`unsupported disk snapshot type '${type}'`);
  if (type !== 'file' && type !== 'block') throw unsupported(`disk snapshot type '${type.slice(0, 32)}' is not supported by virtgate`);
  if (redefine && first(node, 'snapshotDeleteInProgress')) throw unsupported('snapshotDeleteInProgress is not supported by virtgate');
  const src = first(node, 'source');
  const source = src ? (attr(src, type === 'block' ? 'dev' : 'file') ?? '') : '';
  if (source !== '' && !isAbsPath(source)) throw invalid(`disk snapshot image path '${source.slice(0, 256)}' must be absolute`);
  const driver = attr(first(node, 'driver'), 'type') ?? '';
  if (driver !== '' && !FORMATS.includes(driver)) throw unsupported(`unknown disk snapshot driver '${driver.slice(0, 32)}'`);
  if (location === Location.DEFAULT && (source !== '' || driver !== '')) location = Location.EXTERNAL;
  return { name, location, sourceType: source !== '' || driver !== '' ? type : '', source, driver, bitmap: '' };
}

function disks<T>(root: XmlNode, parse: (n: XmlNode) => T): T[] {
  const list = elements(first(root, 'disks') ?? { disks: [] });
  if (list.length > MomentLimits.DISKS_MAX) throw unsupported(`more than ${MomentLimits.DISKS_MAX} disks`);
  return list.map(parse);
}

// libvirt reports these parse errors from VIR_FROM_DOMAIN_SNAPSHOT (35) / VIR_FROM_DOMAIN_CHECKPOINT (69).
const FROM_SNAPSHOT = 35;
const FROM_CHECKPOINT = 69;
function reported<T>(from: number, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (e instanceof VgError) throw new VgError(e.code, e.message, e.virCode, from);
    throw e;
  }
}

// virDomainSnapshotDefParseString; redefine: VIR_DOMAIN_SNAPSHOT_PARSE_REDEFINE.
export const parseSnapshotXml = (xml: string, redefine: boolean): Moment => reported(FROM_SNAPSHOT, () => snapshotXml(xml, redefine));

function snapshotXml(xml: string, redefine: boolean): Moment {
  const root = parseRoot(xml, 'domainsnapshot', 'domain_snapshot');
  const name = momentName(textOf(first(root, 'name')), 'snapshot');
  if (name === '' && redefine) throw invalid('a redefined snapshot must have a name');
  const m: Moment = { name, description: description(root), parent: '', creationTime: -1n, state: 0, memory: 0, memoryFile: '', disks: [], def: null };
  let offline = false;
  if (redefine) {
    m.creationTime = creationTime(root, 'snapshot');
    m.parent = momentName(textOf(first(first(root, 'parent'), 'name')), 'parent snapshot');
    const state = textOf(first(root, 'state'));
    if (state === null) throw invalid('missing state from existing snapshot');
    m.state = (SNAPSHOT_STATES as readonly string[]).indexOf(state);
    if (m.state <= 0) throw unsupported(`Invalid state '${state.slice(0, 64)}' in domain snapshot XML`);
    offline = m.state === 5 || m.state === 8;
    m.def = domainDef(root, 'domain');
    if (first(root, 'inactiveDomain')) throw unsupported('inactiveDomain in snapshot XML is not supported by virtgate');
  }
  const mem = first(root, 'memory');
  if (mem) {
    m.memoryFile = attr(mem, 'file') ?? '';
    m.memory = enumProp(mem, 'snapshot', SNAPSHOT_LOCATIONS, 'memory');
    if (m.memory === Location.MANUAL) throw invalid("'manual' memory snapshot mode not supported");
  }
  if (m.memory === Location.DEFAULT) {
    if (m.memoryFile !== '') m.memory = Location.EXTERNAL;
    else if (redefine) m.memory = offline ? Location.NO : Location.INTERNAL;
  }
  if (m.memoryFile !== '' && m.memory !== Location.EXTERNAL) throw invalid(`memory filename '${m.memoryFile.slice(0, 256)}' requires external snapshot`);
  if (m.memoryFile === '' && m.memory === Location.EXTERNAL) throw invalid('external memory snapshots require a filename');
  if (offline && m.memory !== Location.DEFAULT && m.memory !== Location.NO) throw invalid('memory state cannot be saved with offline or disk-only snapshot');
  if (m.memoryFile !== '' && !isAbsPath(m.memoryFile)) throw invalid(`memory snapshot file path (${m.memoryFile.slice(0, 256)}) must be absolute`);
  m.disks = disks(root, (n) => snapshotDisk(n, redefine));
  return m;
}

// virDomainCheckpointDefParseString; redefine: VIR_DOMAIN_CHECKPOINT_PARSE_REDEFINE.
export const parseCheckpointXml = (xml: string, redefine: boolean): Moment => reported(FROM_CHECKPOINT, () => checkpointXml(xml, redefine));

function checkpointXml(xml: string, redefine: boolean): Moment {
  const root = parseRoot(xml, 'domaincheckpoint', 'domain_checkpoint');
  const name = momentName(textOf(first(root, 'name')), 'checkpoint');
  if (name === '' && redefine) throw invalid('a redefined checkpoint must have a name');
  const m: Moment = { name, description: description(root), parent: '', creationTime: -1n, state: 0, memory: 0, memoryFile: '', disks: [], def: null };
  if (redefine) {
    m.creationTime = creationTime(root, 'checkpoint');
    m.parent = momentName(textOf(first(first(root, 'parent'), 'name')), 'parent checkpoint');
    m.def = domainDef(root, 'domain');
  }
  m.disks = disks(root, (n) => {
    const dn = attr(n, 'name');
    if (dn === undefined || !isDiskTarget(dn)) throw invalid('disk element needs a disk name');
    const type = attr(n, 'checkpoint');
    const location = type === undefined ? 2 : (CHECKPOINT_TYPES as readonly string[]).indexOf(type);
    if (location <= 0) throw invalid(`Invalid value for attribute 'checkpoint' in element 'disk': '${String(type).slice(0, 32)}'.`);
    const bitmap = momentName(attr(n, 'bitmap') ?? null, 'bitmap');
    return { name: dn, location, sourceType: '', source: '', driver: '', bitmap };
  });
  return m;
}

// ---------- formatting ----------

// virBufferEscapeString: < > & ' " as entities.
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
const indent = (text: string, by: string): string =>
  text
    .split('\n')
    .map((l) => (l === '' ? l : by + l))
    .join('\n');

function head(out: string[], m: Moment, description: boolean): void {
  out.push(`  <name>${esc(m.name)}</name>`);
  if (description && m.description !== null) out.push(`  <description>${esc(m.description)}</description>`);
}

function parentAndTime(out: string[], m: Moment): void {
  if (m.parent !== '') out.push('  <parent>', `    <name>${esc(m.parent)}</name>`, '  </parent>');
  if (m.creationTime > 0n) out.push(`  <creationTime>${m.creationTime}</creationTime>`);
}

function domainOut(out: string[], m: Moment, uuid: string | null): string {
  let text = out.join('\n') + '\n';
  if (m.def !== null) {
    const xml = formatDomainXml(m.def, null);
    text += indent(xml.endsWith('\n') ? xml : `${xml}\n`, '  ');
  } else if (uuid !== null) text += `  <domain>\n    <uuid>${uuid}</uuid>\n  </domain>\n`;
  return text;
}

// virDomainSnapshotDefFormat (the <domain> the helper keeps, as inactive domain XML, indented into it).
export function formatSnapshotXml(m: Moment, domainUuid: string): string {
  const out = ['<domainsnapshot>'];
  head(out, m, true);
  if (m.state > 0) out.push(`  <state>${SNAPSHOT_STATES[m.state]}</state>`);
  parentAndTime(out, m);
  if (m.memory > 0) out.push(`  <memory snapshot='${SNAPSHOT_LOCATIONS[m.memory]}'${m.memoryFile !== '' ? ` file='${esc(m.memoryFile)}'` : ''}/>`);
  if (m.disks.length > 0) {
    out.push('  <disks>');
    for (const d of m.disks) {
      const attrs = `name='${esc(d.name)}'${d.location > 0 ? ` snapshot='${SNAPSHOT_LOCATIONS[d.location]}'` : ''}`;
      if (d.source === '' && d.driver === '') {
        out.push(`    <disk ${attrs}/>`);
        continue;
      }
      out.push(`    <disk ${attrs} type='${d.sourceType || 'file'}'>`);
      if (d.driver !== '') out.push(`      <driver type='${esc(d.driver)}'/>`);
      if (d.source !== '') out.push(`      <source ${d.sourceType === 'block' ? 'dev' : 'file'}='${esc(d.source)}'/>`);
      out.push('    </disk>');
    }
    out.push('  </disks>');
  }
  return `${domainOut(out, m, domainUuid)}</domainsnapshot>\n`;
}

// virDomainCheckpointDefFormat; noDomain: VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN.
export function formatCheckpointXml(m: Moment, noDomain: boolean): string {
  const out = ['<domaincheckpoint>'];
  head(out, m, true);
  parentAndTime(out, m);
  if (m.disks.length > 0) {
    out.push('  <disks>');
    for (const d of m.disks) {
      const type = d.location > 0 ? ` checkpoint='${CHECKPOINT_TYPES[d.location]}'` : '';
      out.push(`    <disk name='${esc(d.name)}'${type}${d.bitmap !== '' ? ` bitmap='${esc(d.bitmap)}'` : ''}/>`);
    }
    out.push('  </disks>');
  }
  return `${domainOut(out, noDomain ? { ...m, def: null } : m, null)}</domaincheckpoint>\n`;
}
