// SPDX-License-Identifier: Apache-2.0
// Interface XML (front end): untrusted client text -> validated IfaceDef (libvirt 9.0 interface_conf.c rules), and
// IfaceDef -> the exact text virInterfaceDefFormat writes. The helper never sees the XML, only the typed config.
import { VG_ERR_XML_DETAIL, VG_ERR_XML_INVALID } from '../../common/errors';
import {
  ARP_VALIDATES,
  BOND_MODES,
  HOST_NAME_RULE,
  HostLimits,
  IFACE_TYPES,
  type IfaceBond,
  type IfaceDef,
  type IfaceProto,
  type IfaceType,
  LINK_STATES,
  MII_CARRIERS,
  checkIfaceShape,
  isAddress,
  isHostObjectName,
  isMac,
  memberAllowed,
} from '../../ipc/objects/host-objects';
import { type XmlNode, all, attrsOf, deepText, first, kids, readXmlRoot, tagOf, tooDeep } from './tree';

// ---------- the shared XML reader (./tree.ts), worded for the host-object documents ----------

export type { XmlNode };
export { all, first, kids, tagOf };
export const attr = (n: XmlNode, name: string): string | null => attrsOf(n)[name] ?? null;

export const xmlError = (detail: string) => VG_ERR_XML_INVALID(detail);

// XPath string(): the concatenated text; libvirt's virXPathString answers NULL for an empty result.
export function textOf(n: XmlNode | undefined): string | null {
  if (n === undefined) return null;
  const t = deepText(n);
  return t === '' ? null : t;
}

const DEPTH_MAX = 16; // interface and device documents are 4-5 levels deep

// Well-formed, no DTD, one root named `root`; what virXMLParse checks before the driver's parser runs.
export function parseRoot(xml: string, root: string, label: string): XmlNode {
  const r = readXmlRoot(xml, { trimValues: true, comments: false }, (p) => {
    if (p.kind === 'empty') return VG_ERR_XML_DETAIL(`${label}:1: Document is empty`);
    if (p.kind === 'dtd') return xmlError(`DOCTYPE and ENTITY declarations are not allowed (line ${p.line})`);
    if (p.kind === 'syntax') return VG_ERR_XML_DETAIL(`${label}:${p.line}: ${p.msg}`);
    if (p.kind === 'entity') return VG_ERR_XML_DETAIL(`${label}:${p.line}: Entity '${p.name}' not defined`);
    return VG_ERR_XML_DETAIL(`${label}:1: Extra content at the end of the document`);
  });
  if (tooDeep(kids(r), 2, DEPTH_MAX)) throw xmlError(`elements nested deeper than ${DEPTH_MAX} levels`);
  if (tagOf(r) !== root) throw xmlError(`expecting root element of '${root}', not '${tagOf(r)}'`);
  return r;
}

// virXMLPropEnum's wording.
export function propEnum<T extends string>(n: XmlNode, name: string, values: readonly T[], required: boolean): T | null {
  const v = attr(n, name);
  if (v === null) {
    if (required) throw xmlError(`Missing required attribute '${name}' in element '${tagOf(n)}'`);
    return null;
  }
  if (!(values as readonly string[]).includes(v) || v === '') throw xmlError(`Invalid value for attribute '${name}' in element '${tagOf(n)}': '${v}'.`);
  return v as T;
}

export function escapeXml(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

// ---------- parse ----------

const INT_RE = /^[+-]?[0-9]{1,10}$/;
function intOf(s: string | null, min: number, max: number): number | null {
  if (s === null || !INT_RE.test(s.trim())) return null;
  const n = Number(s.trim());
  return n >= min && n <= max ? n : null;
}
const INT_MIN = -0x80000000;
const INT_MAX = 0x7fffffff;

function ifaceName(n: XmlNode, what: string): string {
  const name = attr(n, 'name');
  if (name === null) throw xmlError(what);
  if (!isHostObjectName(name)) throw xmlError(`interface name '${name}' is not allowed: ${HOST_NAME_RULE}`);
  return name;
}

function address(s: string, what: string): string {
  if (!isAddress(s)) throw xmlError(`invalid ${what} '${s}'`);
  return s;
}

function parseProto(p: XmlNode): IfaceProto {
  const family = attr(p, 'family');
  if (family === null) throw xmlError('protocol misses the family attribute');
  if (family !== 'ipv4' && family !== 'ipv6') throw xmlError(`unsupported protocol family '${family}'`);
  const route = first(p, 'route');
  const gw = route ? attr(route, 'gateway') : null;
  const dhcp = first(p, 'dhcp');
  let peerdns: -1 | 0 | 1 = -1;
  if (dhcp) {
    const v = attr(dhcp, 'peerdns');
    if (v !== null) {
      if (v !== 'yes' && v !== 'no') throw xmlError(`Invalid value for attribute 'peerdns' in element 'dhcp': '${v}'. Expected 'yes' or 'no'`);
      peerdns = v === 'yes' ? 1 : 0;
    }
  }
  const ips = [];
  for (const ip of all(p, 'ip')) {
    const a = attr(ip, 'address');
    if (a === null) continue; // libvirt keeps an address-less <ip> and never prints it
    const pfx = attr(ip, 'prefix');
    const prefix = pfx === null ? 0 : intOf(pfx, INT_MIN, INT_MAX);
    if (prefix === null) throw xmlError(`Invalid value for attribute 'prefix' in element 'ip': '${pfx}'. Expected integer value`);
    if (prefix < 0 || prefix > 128) throw xmlError(`invalid prefix '${pfx}'`);
    ips.push({ address: address(a, 'ip address'), prefix });
  }
  if (ips.length > HostLimits.IPS_MAX) throw xmlError(`more than ${HostLimits.IPS_MAX} addresses in one protocol`);
  return {
    family,
    autoconf: family === 'ipv6' && first(p, 'autoconf') !== undefined,
    dhcp: dhcp !== undefined,
    peerdns,
    ips,
    gateway: gw === null || gw === '' ? null : address(gw, 'route gateway'),
  };
}

function parseBond(b: XmlNode): IfaceBond {
  const mode = attr(b, 'mode');
  if (mode !== null && !(BOND_MODES as readonly string[]).includes(mode)) throw xmlError(`unknown bonding mode ${mode}`);
  const bond: IfaceBond = {
    mode: (mode ?? '') as IfaceBond['mode'],
    monitor: 'none',
    freq: 0,
    downdelay: 0,
    updelay: 0,
    carrier: '',
    interval: 0,
    target: null,
    validate: '',
  };
  const mii = first(b, 'miimon');
  const arp = first(b, 'arpmon');
  if (mii) {
    bond.monitor = 'miimon';
    const freq = intOf(attr(mii, 'freq'), INT_MIN, INT_MAX);
    if (freq === null) throw xmlError('bond interface miimon freq missing or invalid');
    bond.freq = freq;
    for (const k of ['downdelay', 'updelay'] as const) {
      const v = attr(mii, k);
      if (v === null) continue;
      const n = intOf(v, INT_MIN, INT_MAX);
      if (n === null) throw xmlError(`bond interface miimon ${k} invalid`);
      bond[k] = n;
    }
    const carrier = attr(mii, 'carrier');
    if (carrier !== null && !(MII_CARRIERS as readonly string[]).includes(carrier)) throw xmlError(`unknown mii bonding carrier ${carrier}`);
    bond.carrier = (carrier ?? '') as IfaceBond['carrier'];
  } else if (arp) {
    bond.monitor = 'arpmon';
    const interval = intOf(attr(arp, 'interval'), INT_MIN, INT_MAX);
    if (interval === null) throw xmlError('bond interface arpmon interval missing or invalid');
    bond.interval = interval;
    const target = attr(arp, 'target');
    if (target === null || target === '') throw xmlError('bond interface arpmon target missing');
    bond.target = address(target, 'arpmon target');
    const validate = attr(arp, 'validate');
    if (validate !== null && !(ARP_VALIDATES as readonly string[]).includes(validate)) throw xmlError(`unknown arp bonding validate ${validate}`);
    bond.validate = (validate ?? '') as IfaceBond['validate'];
  }
  return bond;
}

function parseIface(n: XmlNode, parent: IfaceType | null): IfaceDef {
  const type = propEnum(n, 'type', IFACE_TYPES, true)!;
  if (!memberAllowed(parent, type)) throw xmlError(`interface has unsupported type '${type}'`);
  const name = ifaceName(n, 'interface has no name');
  const def: IfaceDef = {
    type,
    name,
    startmode: '',
    mtu: 0,
    protos: [],
    linkSpeed: 0,
    linkState: '',
    mac: null,
    stp: -1,
    delay: null,
    bond: null,
    vlanTag: null,
    vlanDev: null,
    members: [],
  };
  if (parent === null) {
    const start = first(n, 'start');
    const mode = start ? attr(start, 'mode') : null;
    if (mode !== null && mode !== '') {
      if (mode !== 'onboot' && mode !== 'hotplug' && mode !== 'none') throw xmlError(`unknown interface startmode ${mode}`);
      def.startmode = mode;
    }
    const mtu = first(n, 'mtu');
    const size = mtu ? attr(mtu, 'size') : null;
    if (size !== null && size !== '') {
      const v = intOf(size, 0, 0xffffffff);
      if (v === null) throw xmlError(`invalid mtu size '${size}'`);
      if (v > HostLimits.MTU_MAX) throw xmlError(`value of the 'size' attribute of 'mtu' element must be at most ${HostLimits.MTU_MAX}`);
      def.mtu = v;
    }
    def.protos = all(n, 'protocol').map(parseProto);
    if (new Set(def.protos.map((p) => p.family)).size !== def.protos.length) throw xmlError('more than one protocol of the same family');
  }
  if (type !== 'bridge') {
    const lnk = first(n, 'link');
    if (lnk) {
      def.linkState = propEnum(lnk, 'state', LINK_STATES, false) ?? '';
      const speed = attr(lnk, 'speed');
      if (speed !== null) {
        const v = intOf(speed, 0, 0xffffffff);
        if (v === null || speed.trim().startsWith('-'))
          throw xmlError(`Invalid value for attribute 'speed' in element 'link': '${speed}'. Expected non-negative integer value`);
        def.linkSpeed = v;
      }
    }
  }
  const members = (holder: XmlNode): IfaceDef[] => {
    const list = all(holder, 'interface');
    if (list.length > HostLimits.IFACE_CHILDREN_MAX) throw xmlError(`more than ${HostLimits.IFACE_CHILDREN_MAX} member interfaces`);
    return list.map((m) => parseIface(m, type));
  };
  switch (type) {
    case 'ethernet': {
      const m = first(n, 'mac');
      const a = m ? attr(m, 'address') : null;
      if (a !== null && a !== '') {
        if (!isMac(a)) throw xmlError(`invalid MAC address '${a}'`);
        def.mac = a;
      }
      break;
    }
    case 'bridge': {
      const br = first(n, 'bridge');
      if (!br) throw xmlError('bridge interface misses the bridge element');
      const stp = attr(br, 'stp');
      // libvirt reports the bad value yet keeps going (returns 0): the bridge ends up with stp unset.
      if (stp === 'on') def.stp = 1;
      else if (stp === 'off') def.stp = 0;
      const delay = attr(br, 'delay');
      if (delay !== null) {
        if (!/^[0-9]{1,6}(\.[0-9]{1,6})?$/.test(delay)) throw xmlError(`invalid bridge delay '${delay}'`);
        def.delay = delay;
      }
      def.members = members(br);
      break;
    }
    case 'bond': {
      const b = first(n, 'bond');
      if (!b) throw xmlError('bond interface misses the bond element');
      def.bond = parseBond(b);
      def.members = members(b);
      break;
    }
    case 'vlan': {
      const v = first(n, 'vlan');
      if (!v) throw xmlError('vlan interface misses the vlan element');
      const tag = attr(v, 'tag');
      if (tag === null || tag === '') throw xmlError('vlan interface misses the tag attribute');
      if (!/^[0-9]{1,4}$/.test(tag)) throw xmlError(`invalid vlan tag '${tag}'`);
      const dev = first(v, 'interface');
      const devName = dev ? attr(dev, 'name') : null;
      if (devName === null || devName === '') throw xmlError('vlan interface misses name attribute');
      if (!isHostObjectName(devName)) throw xmlError(`interface name '${devName}' is not allowed: ${HOST_NAME_RULE}`);
      def.vlanTag = tag;
      def.vlanDev = devName;
      break;
    }
  }
  checkIfaceShape(def, parent);
  return def;
}

// virInterfaceDefParseString: the one entry for client XML.
export function parseInterfaceXml(xml: string): IfaceDef {
  return parseIface(parseRoot(xml, 'interface', '(interface_definition)'), null);
}

// ---------- format (virInterfaceDefFormat, byte for byte) ----------

function formatProtos(d: IfaceDef, out: string[], ind: string): void {
  for (const p of d.protos) {
    out.push(`${ind}<protocol family='${p.family}'>`);
    const i2 = ind + '  ';
    if (p.autoconf) out.push(`${i2}<autoconf/>`);
    if (p.dhcp) out.push(p.peerdns === 0 ? `${i2}<dhcp peerdns='no'/>` : p.peerdns === 1 ? `${i2}<dhcp peerdns='yes'/>` : `${i2}<dhcp/>`);
    for (const ip of p.ips) out.push(`${i2}<ip address='${escapeXml(ip.address)}'${ip.prefix !== 0 ? ` prefix='${ip.prefix}'` : ''}/>`);
    if (p.gateway !== null) out.push(`${i2}<route gateway='${escapeXml(p.gateway)}'/>`);
    out.push(`${ind}</protocol>`);
  }
}

function formatIface(d: IfaceDef, top: boolean, out: string[], ind: string): void {
  out.push(`${ind}<interface type='${d.type}' name='${escapeXml(d.name)}'>`);
  const i2 = ind + '  ';
  if (top) {
    if (d.startmode !== '') out.push(`${i2}<start mode='${d.startmode}'/>`);
    if (d.mtu) out.push(`${i2}<mtu size='${d.mtu}'/>`);
    formatProtos(d, out, i2);
  }
  if (d.type !== 'bridge' && (d.linkSpeed || d.linkState !== '')) {
    out.push(`${i2}<link${d.linkSpeed ? ` speed='${d.linkSpeed}'` : ''}${d.linkState !== '' ? ` state='${d.linkState}'` : ''}/>`);
  }
  const i3 = i2 + '  ';
  switch (d.type) {
    case 'ethernet':
      if (d.mac !== null) out.push(`${i2}<mac address='${escapeXml(d.mac)}'/>`);
      break;
    case 'bridge':
      out.push(`${i2}<bridge${d.stp === 1 ? " stp='on'" : d.stp === 0 ? " stp='off'" : ''}${d.delay !== null ? ` delay='${escapeXml(d.delay)}'` : ''}>`);
      for (const m of d.members) formatIface(m, false, out, i3);
      out.push(`${i2}</bridge>`);
      break;
    case 'bond': {
      const b = d.bond!;
      out.push(`${i2}<bond${b.mode !== '' ? ` mode='${b.mode}'` : ''}>`);
      if (b.monitor === 'miimon') {
        const extra = `${b.downdelay > 0 ? ` downdelay='${b.downdelay}'` : ''}${b.updelay > 0 ? ` updelay='${b.updelay}'` : ''}${b.carrier !== '' ? ` carrier='${b.carrier}'` : ''}`;
        out.push(`${i3}<miimon freq='${b.freq}'${extra}/>`);
      } else if (b.monitor === 'arpmon') {
        out.push(`${i3}<arpmon interval='${b.interval}' target='${escapeXml(b.target ?? '')}'${b.validate !== '' ? ` validate='${b.validate}'` : ''}/>`);
      }
      for (const m of d.members) formatIface(m, false, out, i3);
      out.push(`${i2}</bond>`);
      break;
    }
    case 'vlan':
      out.push(`${i2}<vlan tag='${escapeXml(d.vlanTag ?? '')}'>`);
      out.push(`${i3}<interface name='${escapeXml(d.vlanDev ?? '')}'/>`);
      out.push(`${i2}</vlan>`);
      break;
  }
  out.push(`${ind}</interface>`);
}

export function formatInterfaceXml(d: IfaceDef): string {
  const out: string[] = [];
  formatIface(d, true, out, '');
  return out.join('\n') + '\n';
}
