// SPDX-License-Identifier: Apache-2.0
// Storage pool and volume XML, front end only: the client's text -> typed configs (validated as libvirt 9.0's
// storage_conf.c validates, with libvirt's messages), and typed records -> XML exactly as libvirt formats it.
// The root helper never sees this XML; it re-checks the typed fields (../../ipc/objects/storage.ts).
import { randomBytes } from 'node:crypto';
import { VG_ERR_ARG_INVALID, VG_ERR_XML_DETAIL, VG_ERR_XML_INVALID, type VgError } from '../../common/errors';
import { uuidFromString, uuidToString } from '../../common/uuid';
import {
  POOL_FORMATS,
  POOL_TYPES,
  STORAGE_NAME_RULE,
  StorageLimits,
  VOL_FEATURES,
  VOL_FORMATS,
  VOL_TYPES,
  type PoolConfig,
  type PoolRecord,
  type PoolSource,
  type PoolType,
  type StoragePerms,
  type VolType,
  type VolumeConfig,
  type VolumeRecord,
  isStorageName,
  pathProblem,
} from '../../ipc/objects/storage';
import { type XmlNode, all, attrsOf, deepText, first, kids, readXmlRoot, tagOf } from './tree';

// Every pool type libvirt knows (virStoragePool enum): one of these that virtgate does not serve is "unsupported",
// anything else is libvirt's "Invalid value" error.
const LIBVIRT_POOL_TYPES = ['dir', 'fs', 'netfs', 'logical', 'disk', 'iscsi', 'iscsi-direct', 'scsi', 'mpath', 'rbd', 'sheepdog', 'gluster', 'zfs', 'vstorage'];
const XML_MAX = 1024 * 1024; // a pool or volume document; real ones are < 2 KiB

const xmlError = (detail: string): VgError => VG_ERR_XML_INVALID(detail);
const detailed = (text: string): VgError => VG_ERR_XML_DETAIL(text);
const unsupported = (text: string): VgError => VG_ERR_XML_DETAIL(`unsupported configuration: ${text}`);

const at = (parent: XmlNode | undefined, ...tags: string[]): XmlNode | undefined => tags.reduce<XmlNode | undefined>((n, t) => first(n, t), parent);

const textOf = deepText;
// libvirt's virXPathString: an empty result is NULL.
const stringOf = (n: XmlNode | undefined): string | null => {
  const t = textOf(n);
  return t === '' ? null : t;
};
const attrOf = (n: XmlNode | undefined, a: string): string | null => {
  const v = attrsOf(n)[a];
  return v === undefined || v === '' ? null : v;
};

// Parse into one root element named `root`; `what` is libvirt's document label, e.g. (storage_pool_definition).
function parseDocument(xml: string, root: string, what: string): XmlNode {
  const r = readXmlRoot(xml, { trimValues: false, comments: true, maxBytes: XML_MAX }, (p) => {
    if (p.kind === 'too-large') return detailed(`${what}: document larger than ${XML_MAX} bytes`);
    if (p.kind === 'empty') return detailed(`${what}:1: Document is empty`);
    if (p.kind === 'dtd') return detailed(`${what}:${p.line}: DOCTYPE and ENTITY declarations are not allowed`);
    if (p.kind === 'syntax') return detailed(`${what}:${p.line}: ${p.msg}`);
    if (p.kind === 'entity') return detailed(`${what}:${p.line}: Entity '${p.name}' not defined`);
    return detailed(`${what}: expecting exactly one root element`);
  });
  const name = tagOf(r)!;
  if (name !== root) throw xmlError(`expecting root element of '${root}', not '${name}'`);
  return r;
}

// virFileSanitizePath: '///' -> '/', no trailing '/', a leading '//' kept (POSIX); URIs left alone.
export function sanitizePath(p: string): string {
  const uri = p.indexOf('://');
  if (uri >= 0 && p.indexOf('/') > uri) return p;
  let cur = 0;
  let out = '';
  if (p[0] === '/' && p[1] === '/' && p[2] !== '/') {
    out = '//';
    cur = 2;
  }
  while (cur < p.length) {
    if (p[cur] !== '/') {
      out += p[cur++];
      continue;
    }
    while (p[++cur] === '/');
    if (out.length !== 0 && cur >= p.length) break;
    out += '/';
  }
  return out;
}

// virScaleInteger with libvirt's storage rules (virStorageSize): no unit = bytes; b/byte/bytes; k, KiB (1024);
// KB (1000); likewise M, G, T, P, E; the product must fit in 2^63-1.
export function scaleSize(value: bigint, unit: string | null): bigint {
  let scale = 1n;
  if (unit !== null && unit !== '') {
    const u = unit.toLowerCase();
    if (u === 'b' || u === 'byte' || u === 'bytes') scale = 1n;
    else {
      let base: bigint;
      if (u.length === 1 || u.slice(1) === 'ib') base = 1024n;
      else if (u[1] === 'b' && u.length === 2) base = 1000n;
      else throw VG_ERR_ARG_INVALID(`unknown suffix '${unit}'`);
      const power = 'kmgtpe'.indexOf(u[0]) + 1;
      if (power === 0) throw VG_ERR_ARG_INVALID(`unknown suffix '${unit}'`);
      scale = base ** BigInt(power);
    }
  }
  if (value !== 0n && value > StorageLimits.SIZE_MAX / scale) throw detailed(`numerical overflow: value too large: ${value}${unit ?? ''}`);
  return value * scale;
}

// virStorageSize: an unsigned decimal (strtoull: leading blanks, optional '+'; no '-'), then the unit.
export function parseSize(text: string, unit: string | null, element: 'capacity' | 'allocation'): bigint {
  const m = /^[ \t\n\v\f\r]*\+?([0-9]+)$/.exec(text);
  void element; // libvirt says "malformed capacity element" for <allocation> too
  if (!m) throw xmlError('malformed capacity element');
  const v = BigInt(m[1]);
  if (v > 0xffffffffffffffffn) throw xmlError('malformed capacity element'); // strtoull: ERANGE
  return scaleSize(v, unit);
}

function parsePerms(node: XmlNode | undefined): StoragePerms {
  if (!node) return { mode: -1, owner: -1, group: -1, label: '' };
  const modeText = stringOf(first(node, 'mode'));
  let mode = -1;
  if (modeText !== null) {
    // virStrToLong_i base 8: optional blanks and sign, octal digits, nothing after.
    const m = /^[ \t\n\v\f\r]*([+-]?)([0-7]+)$/.exec(modeText);
    const v = m ? parseInt(m[2], 8) * (m[1] === '-' ? -1 : 1) : NaN;
    if (!m || v < 0 || v > 0o777) throw xmlError('malformed octal mode');
    mode = v;
  }
  const id = (tag: 'owner' | 'group'): number => {
    const n = first(node, tag);
    if (!n) return -1;
    const t = textOf(n).trim();
    if (!/^-?[0-9]{1,10}$/.test(t) || (Number(t) !== -1 && (Number(t) < 0 || Number(t) > 0xffffffff))) throw xmlError(`malformed ${tag} element`);
    const v = Number(t);
    if (v > 0x7fffffff) throw unsupported(`${tag} ${v} is not supported by virtgate`); // formatted as a signed int by libvirt
    return v;
  };
  const owner = id('owner');
  const group = id('group');
  const label = stringOf(first(node, 'label')) ?? '';
  if (Buffer.byteLength(label) > StorageLimits.TEXT_MAX || !/^[\x20-\x7e]*$/.test(label))
    throw unsupported('permission label must be printable ASCII, at most 256 bytes');
  return { mode, owner, group, label };
}

// A target or source path: sanitized as libvirt does, then confined (absolute, no '.' or '..'): virtgate refuses what
// libvirt would keep (a relative path, '/../etc'), because the helper will only accept confined paths.
function confinedPath(raw: string, what: string): string {
  const p = sanitizePath(raw);
  const why = pathProblem(p);
  if (why !== null) throw xmlError(`${what} '${raw}' ${why}`);
  return p;
}

// ---------- pools ----------

export function parsePoolXml(xml: string): PoolConfig {
  const root = parseDocument(xml, 'pool', '(storage_pool_definition)');
  const typeText = attrsOf(root).type;
  if (typeText === undefined) throw xmlError("Missing required attribute 'type' in element 'pool'");
  if (!LIBVIRT_POOL_TYPES.includes(typeText)) throw xmlError(`Invalid value for attribute 'type' in element 'pool': '${typeText}'.`);
  if (!(POOL_TYPES as readonly string[]).includes(typeText)) throw unsupported(`virtgate does not serve storage pools of type '${typeText}'`);
  const type = typeText as PoolType;

  const src = first(root, 'source');
  const source = parsePoolSource(src, type);

  const name = stringOf(first(root, 'name'));
  if (name === null) throw xmlError('missing pool source name element');
  if (name.includes('/')) throw xmlError(`name ${name} cannot contain '/'`);
  if (!isStorageName(name)) throw xmlError(`pool name '${name}' is not accepted by virtgate: ${STORAGE_NAME_RULE}`);

  const uuidText = stringOf(first(root, 'uuid'));
  let uuid: Buffer;
  if (uuidText === null) uuid = randomUuid();
  else {
    const u = uuidFromString(uuidText);
    if (!u) throw xmlError('malformed uuid element');
    uuid = u;
  }

  let cow: PoolConfig['cow'] = '';
  const cowNode = at(root, 'features', 'cow');
  if (cowNode) {
    const state = attrsOf(cowNode).state;
    if (state !== undefined) {
      if (state !== 'yes' && state !== 'no') throw xmlError(`Invalid value for attribute 'state' in element 'cow': '${state}'.`);
      if (type !== 'dir' && type !== 'fs')
        throw detailed("this function is not supported by the connection driver: cow feature may only be used for 'fs' and 'dir' pools");
      cow = state;
    }
  }

  if (type === 'netfs' && source.hosts.length === 0) throw xmlError('missing storage pool source host name');
  if (type === 'netfs' && source.dir === '') throw xmlError('missing storage pool source path');
  if (type === 'fs' && source.devices.length === 0) throw xmlError('missing storage pool source device name');

  const targetText = stringOf(at(root, 'target', 'path'));
  if (targetText === null) throw xmlError('missing storage pool target path');
  const targetPath = confinedPath(targetText, 'storage pool target path');
  const perms = parsePerms(at(root, 'target', 'permissions'));

  const refresh = attrOf(at(root, 'refresh', 'volume'), 'allocation');
  if (refresh !== null) throw unsupported('virtgate does not serve <refresh> in pool XML');

  // What libvirt keeps but prints only for some types: drop what this type never prints (virStoragePoolSourceFormat).
  return {
    type,
    name,
    uuid,
    source: {
      ...source,
      hosts: type === 'netfs' ? source.hosts : [],
      devices: type === 'fs' ? source.devices : [],
      dir: type === 'netfs' ? source.dir : '',
    },
    targetPath,
    perms,
    cow,
  };
}

function parsePoolSource(src: XmlNode | undefined, type: PoolType): PoolSource {
  const formats = POOL_FORMATS[type];
  let format = formats.length ? formats[0] : '';
  const formatText = attrOf(first(src, 'format'), 'type');
  if (formats.length && formatText !== null) {
    if (!formats.includes(formatText)) throw unsupported(`unknown pool format type ${formatText}`);
    format = formatText;
  }
  if (src && first(src, 'auth')) throw unsupported('virtgate does not serve storage pool <auth>');
  if (src && first(src, 'adapter')) throw unsupported('virtgate does not serve storage pool <adapter>');

  const hosts = all(src, 'host').map((h) => {
    const name = attrOf(h, 'name');
    if (name === null) throw xmlError('missing storage pool host name');
    if (!/^[A-Za-z0-9_.:[\]-]{1,255}$/.test(name)) throw unsupported(`storage pool host name '${name}' is not a host name or address`);
    const portText = attrsOf(h).port;
    let port = 0;
    if (portText !== undefined) {
      if (!/^[+-]?[0-9]+$/.test(portText.trim()) || Math.abs(Number(portText)) > 0x7fffffff)
        throw xmlError(`Invalid value for attribute 'port' in element 'host': '${portText}'. Expected integer value`);
      port = Number(portText);
      if (port < 0 || port > 65535) throw unsupported(`storage pool host port ${port} out of range`);
    }
    return { name, port };
  });
  if (hosts.length > StorageLimits.HOSTS_MAX) throw unsupported(`at most ${StorageLimits.HOSTS_MAX} source hosts`);

  const devices = all(src, 'device').map((d) => {
    const path = attrOf(d, 'path');
    if (path === null) throw xmlError('missing storage pool source device path');
    const sep = attrsOf(d).part_separator;
    if (sep !== undefined && sep !== 'yes' && sep !== 'no') throw xmlError(`Invalid value for attribute 'part_separator' in element 'device': '${sep}'.`);
    return { path: confinedPath(path, 'storage pool source device'), partSeparator: (sep ?? '') as '' | 'yes' | 'no' };
  });
  if (devices.length > StorageLimits.DEVICES_MAX) throw unsupported(`at most ${StorageLimits.DEVICES_MAX} source devices`);

  const dirText = attrOf(first(src, 'dir'), 'path');
  const dir = dirText === null ? '' : confinedPath(dirText, 'storage pool source path');

  const protocolVer = attrOf(first(src, 'protocol'), 'ver') ?? '';
  if (protocolVer !== '') {
    // libvirt compares the format's enum number with NETFS_NFS (1) / NETFS_AUTO (0), whatever the pool type.
    const idx = formats.length ? formats.indexOf(format) : 0;
    if (idx !== 0 && idx !== 1) throw unsupported(`storage pool protocol ver unsupported for pool type '${POOL_FORMATS.netfs[idx] ?? '(null)'}'`);
    if (protocolVer.includes(',')) throw detailed(`storage pool protocol ver '${protocolVer}' must not contain ','`);
    if (!/^[0-9.]{1,16}$/.test(protocolVer)) throw unsupported(`storage pool protocol ver '${protocolVer}' is not a version number`);
  }
  const text = (v: string | null, what: string): string => {
    if (v === null) return '';
    if (Buffer.byteLength(v) > StorageLimits.TEXT_MAX || !/^[\x20-\x7e]*$/.test(v)) throw unsupported(`${what} must be printable ASCII, at most 256 bytes`);
    return v;
  };
  return {
    hosts,
    devices,
    dir,
    format,
    protocolVer,
    vendor: text(attrOf(first(src, 'vendor'), 'name'), 'vendor name'),
    product: text(attrOf(first(src, 'product'), 'name'), 'product name'),
  };
}

function randomUuid(): Buffer {
  const b = randomBytes(16);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  return b;
}

// virBufferEscapeString's XML escaping.
export const esc = (s: string): string => s.replace(/[&<>'"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', "'": '&apos;', '"': '&quot;' })[c]!);

function permsXml(p: StoragePerms, indent: string): string[] {
  if (p.mode === -1 && p.owner === -1 && p.group === -1 && p.label === '') return [];
  const out = [`${indent}<permissions>`];
  if (p.mode !== -1) out.push(`${indent}  <mode>0${p.mode.toString(8)}</mode>`);
  if (p.owner !== -1) out.push(`${indent}  <owner>${p.owner}</owner>`);
  if (p.group !== -1) out.push(`${indent}  <group>${p.group}</group>`);
  if (p.label !== '') out.push(`${indent}  <label>${esc(p.label)}</label>`);
  out.push(`${indent}</permissions>`);
  return out;
}

// virStoragePoolDefFormat.
export function formatPoolXml(p: PoolRecord): string {
  const c = p.config;
  const s = c.source;
  const out = [
    `<pool type='${c.type}'>`,
    `  <name>${esc(c.name)}</name>`,
    `  <uuid>${uuidToString(c.uuid)}</uuid>`,
    `  <capacity unit='bytes'>${p.capacity}</capacity>`,
    `  <allocation unit='bytes'>${p.allocation}</allocation>`,
    `  <available unit='bytes'>${p.available}</available>`,
  ];
  if (c.cow !== '') out.push('  <features>', `    <cow state='${c.cow}'/>`, '  </features>');
  out.push('  <source>');
  if (c.type === 'netfs') for (const h of s.hosts) out.push(`    <host name='${esc(h.name)}'${h.port ? ` port='${h.port}'` : ''}/>`);
  if (c.type === 'fs')
    for (const d of s.devices) out.push(`    <device path='${esc(d.path)}'${d.partSeparator ? ` part_separator='${d.partSeparator}'` : ''}/>`);
  if (c.type === 'netfs' && s.dir !== '') out.push(`    <dir path='${esc(s.dir)}'/>`);
  if (c.type !== 'dir') out.push(`    <format type='${s.format}'/>`);
  if (s.protocolVer) out.push(`    <protocol ver='${esc(s.protocolVer)}'/>`);
  if (s.vendor) out.push(`    <vendor name='${esc(s.vendor)}'/>`);
  if (s.product) out.push(`    <product name='${esc(s.product)}'/>`);
  out.push('  </source>', '  <target>', `    <path>${esc(c.targetPath)}</path>`, ...permsXml(c.perms, '    '), '  </target>', '</pool>');
  return out.join('\n') + '\n';
}

// ---------- volumes ----------

// virStorageVolDefParseXML for a volume of a pool of `poolType` (all served types take file formats).
export function parseVolumeXml(xml: string, poolType: PoolType): VolumeConfig {
  void poolType; // dir, fs and netfs pools share one option set (virStorageFileFormat, default raw)
  const root = parseDocument(xml, 'volume', '(storage_volume_definition)');
  const name = stringOf(first(root, 'name'));
  if (name === null) throw xmlError('missing volume name element');
  if (!isStorageName(name)) throw xmlError(`volume name '${name}' is not accepted by virtgate: ${STORAGE_NAME_RULE}`);

  let type: VolType = 'file';
  const typeText = attrOf(root, 'type');
  if (typeText !== null) {
    if (!(VOL_TYPES as readonly string[]).includes(typeText)) throw unsupported(`unknown volume type '${typeText}'`);
    type = typeText as VolType;
  }

  const volFormat = (text: string | null): string => {
    if (text === null) return 'raw';
    if (!(VOL_FORMATS as readonly string[]).includes(text)) throw unsupported(`unknown volume format type ${text}`);
    return text;
  };

  let backing: VolumeConfig['backing'] = null;
  const backingPath = stringOf(at(root, 'backingStore', 'path'));
  if (backingPath !== null) {
    const why = pathProblem(backingPath);
    if (why !== null) throw xmlError(`backing store path '${backingPath}' ${why}`);
    if (at(root, 'backingStore', 'permissions')) throw unsupported('virtgate does not serve <backingStore><permissions>');
    backing = { path: backingPath, format: volFormat(attrOf(at(root, 'backingStore', 'format'), 'type')) };
  }

  const capNode = first(root, 'capacity');
  const capText = stringOf(capNode);
  if (capText === null) throw xmlError('missing capacity element');
  const capacity = parseSize(capText, attrOf(capNode, 'unit'), 'capacity');
  const allocNode = first(root, 'allocation');
  const allocText = stringOf(allocNode);
  const allocation = allocText === null ? capacity : parseSize(allocText, attrOf(allocNode, 'unit'), 'allocation');

  const target = first(root, 'target');
  const format = volFormat(attrOf(first(target, 'format'), 'type'));
  const perms = parsePerms(first(target, 'permissions'));
  if (first(target, 'encryption')) throw unsupported('virtgate does not serve encrypted volumes');
  if (first(target, 'clusterSize')) throw unsupported('virtgate does not serve <clusterSize>');

  let compat = stringOf(first(target, 'compat')) ?? '';
  if (compat !== '') {
    const parts = compat.split('.');
    if (parts.length < 2 || !/^[0-9]{1,5}$/.test(parts[0]) || !/^[0-9]{1,5}$/.test(parts.slice(1).join('.')))
      throw xmlError("forbidden characters in 'compat' attribute");
  }
  const nocow = first(target, 'nocow') !== undefined;

  let features: string[] | null = null;
  const featNode = first(target, 'features');
  if (featNode) {
    if (compat === '') compat = '1.1';
    const set = new Set<string>();
    for (const f of kids(featNode)) {
      const t = tagOf(f);
      if (t === null) continue;
      if (!(VOL_FEATURES as readonly string[]).includes(t)) throw unsupported(`unsupported feature ${t}`);
      set.add(t);
    }
    features = VOL_FEATURES.filter((f) => set.has(f));
  }
  return { name, type, capacity, allocation, format, perms, backing, compat, nocow, features };
}

// virStorageVolDefFormat (no extents, no timestamps: the test driver keeps neither).
export function formatVolumeXml(v: VolumeRecord): string {
  const c = v.config;
  const out = [
    `<volume type='${c.type}'>`,
    `  <name>${esc(c.name)}</name>`,
    `  <key>${esc(v.key)}</key>`,
    `  <capacity unit='bytes'>${c.capacity}</capacity>`,
    `  <allocation unit='bytes'>${c.allocation}</allocation>`,
    '  <target>',
    `    <path>${esc(v.path)}</path>`,
    `    <format type='${c.format}'/>`,
    ...permsXml(c.perms, '    '),
  ];
  if (c.compat !== '') out.push(`    <compat>${esc(c.compat)}</compat>`);
  if (c.features !== null) {
    if (c.features.length === 0) out.push('    <features/>');
    else out.push('    <features>', ...c.features.map((f) => `      <${f}/>`), '    </features>');
  }
  out.push('  </target>');
  if (c.backing) out.push('  <backingStore>', `    <path>${esc(c.backing.path)}</path>`, `    <format type='${c.backing.format}'/>`, '  </backingStore>');
  out.push('</volume>');
  return out.join('\n') + '\n';
}
