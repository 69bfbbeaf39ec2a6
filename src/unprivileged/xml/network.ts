// SPDX-License-Identifier: Apache-2.0
// Network XML on the unprivileged side: untrusted client text -> typed NetworkConfig (checked as libvirt 9.0's
// virNetworkDefParseXML checks it, with its messages), and a typed config -> XML exactly as virNetworkDefFormat writes it.
// The root helper only ever sees the typed config.
import { randomBytes } from 'node:crypto';
import { VG_ERR_DOMAIN_INTERNAL, VG_ERR_XML_DETAIL, VG_ERR_XML_INVALID, type VgError } from '../../common/errors';
import { uuidFromString, uuidToString } from '../../common/uuid';
import { VG_ERR_ARG_INVALID, VG_ERR_NOT_SUPPORTED } from '../../common/errors';
import {
  type DhcpHost,
  type DhcpRange,
  FORWARD_MODES,
  type ForwardMode,
  type NetworkConfig,
  type NetworkIp,
  NETWORK_NAME_RULE,
  NetLimits,
  type Tristate,
  canonicalIp,
  checkNetworkConfig,
  isDhcpHostName,
  isDnsName,
  isIfName,
  isMac,
  isNetworkName,
  isZoneName,
  ipIndexForUpdate,
  UpdateSection,
  type UpdateItem,
} from '../../ipc/objects/network';
import { type XmlNode, all, attrsOf, first, kids, ownText, readXmlRoot, tagOf } from './tree';

export const NETWORK_XML_MAX = 1024 * 1024; // bytes; far above any real network, far below REMOTE_STRING_MAX

const invalid = (detail: string): VgError => VG_ERR_XML_INVALID(detail); // "XML error: ..."
const detailed = (text: string): VgError => VG_ERR_XML_DETAIL(text); // libvirt's whole text, prefix included
const internal = (detail: string): VgError => VG_ERR_DOMAIN_INTERNAL(detail); // "internal error: ..."
const unsupported = (what: string): VgError => detailed(`unsupported configuration: ${what} is not supported by virtgate in network XML`);

const attr = (n: XmlNode | undefined, name: string): string | undefined => attrsOf(n)[name];
const textOf = ownText;

// One well-formed document with the expected root element, or libvirt-style XML errors.
function parseRoot(xml: string, root: string | null): XmlNode {
  const r = readXmlRoot(xml, { trimValues: true, comments: false, maxBytes: NETWORK_XML_MAX }, (p) => {
    if (p.kind === 'too-large') return invalid(`document of ${p.bytes} bytes exceeds ${p.max}`);
    if (p.kind === 'empty') return invalid('Document is empty');
    if (p.kind === 'dtd') return invalid(`DOCTYPE and ENTITY declarations are not allowed (line ${p.line})`);
    // libxml2's report is "(network_definition):LINE: MESSAGE" with VIR_ERR_XML_DETAIL; the message is fast-xml-parser's.
    if (p.kind === 'syntax') return detailed(`(network_definition):${p.line}: ${p.msg}${p.col ? ` (column ${p.col})` : ''}`);
    if (p.kind === 'entity') return invalid(`Entity '${p.name}' not defined (line ${p.line})`);
    return invalid('expecting exactly one root element');
  });
  const tag = tagOf(r);
  if (root !== null && tag !== root) throw invalid(`expecting root element of '${root}', not '${tag}'`);
  return r;
}

function tristateProp(node: XmlNode | undefined, name: string, element: string): Tristate {
  const v = attr(node, name);
  if (v === undefined) return '';
  if (v !== 'yes' && v !== 'no') throw invalid(`Invalid value for attribute '${name}' in element '${element}': '${v}'.`);
  return v;
}

// ---------- addresses ----------

interface Addr {
  text: string;
  family: 4 | 6;
  bytes: number[];
}

const addrOf = (s: string): Addr | null => canonicalIp(s);

// virSocketAddrParse failing on its own (dhcp ranges): getaddrinfo's wording.
function sockAddr(s: string): Addr {
  const a = addrOf(s);
  if (!a) throw detailed(`Cannot parse socket address '${s}': Name or service not known`);
  return a;
}

function maskBits(mask: Addr): number {
  let bits = 0;
  let ended = false;
  for (const b of mask.bytes) {
    for (let i = 7; i >= 0; i--) {
      const one = ((b >> i) & 1) === 1;
      if (one && ended) return -1;
      if (one) bits++;
      else ended = true;
    }
  }
  return bits;
}

// virSocketAddrGetIPPrefix
function ipPrefix(address: Addr, netmask: Addr | null, prefix: number): number {
  if (prefix > 0) return prefix;
  if (netmask) return maskBits(netmask);
  if (address.family === 4) {
    const o = address.bytes[0];
    if (address.bytes.every((b) => b === 0)) return 0;
    if ((o & 0x80) === 0) return 8;
    if ((o & 0xc0) === 0x80) return 16;
    if ((o & 0xe0) === 0xc0) return 24;
    return -1;
  }
  return address.bytes.every((b) => b === 0) ? 0 : 64;
}

const maskBytes = (prefix: number, len: number): number[] =>
  Array.from({ length: len }, (_, i) => {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    return (0xff << (8 - bits)) & 0xff;
  });
const sameBytes = (a: number[], b: number[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

// virSocketAddrGetRange, with libvirt's messages; network/prefix only for DHCP ranges.
function checkRange(start: Addr, end: Addr, network: Addr | null, prefix: number): void {
  const [s, e] = [start.text, end.text];
  if (start.family !== end.family) throw internal(`mismatch of address family in range ${s} - ${e}`);
  if (network) {
    const n = network.text;
    if (start.family !== network.family) throw internal(`mismatch of address family in range ${s} - ${e} for network ${n}`);
    if (prefix < 0 || prefix > (network.family === 4 ? 32 : 128)) throw internal(`bad prefix ${prefix} for network ${n} when  checking range ${s} - ${e}`);
    const mask = maskBytes(prefix, network.bytes.length);
    const masked = (a: Addr) => a.bytes.map((b, i) => b & mask[i]);
    const net = masked(network);
    if (!sameBytes(masked(start), net) || !sameBytes(masked(end), net)) throw internal(`range ${s} - ${e} is not entirely within network ${n}/${prefix}`);
    if (start.family === 4) {
      const broadcast = network.bytes.map((b, i) => b | (~mask[i] & 0xff));
      if (sameBytes(start.bytes, net)) throw internal(`start of range ${s} - ${e} in network ${n}/${prefix} is the network address`);
      if (sameBytes(end.bytes, broadcast)) throw internal(`end of range ${s} - ${e} in network ${n}/${prefix} is the broadcast address`);
    }
  }
  // Legacy checks: everything but the last 16 bits equal, start <= end.
  const head = start.bytes.length - 2;
  if (!sameBytes(start.bytes.slice(0, head), end.bytes.slice(0, head))) throw internal(`range ${s} - ${e} is too large (> 65535)`);
  const low = (a: Addr) => a.bytes[head] * 256 + a.bytes[head + 1];
  if (low(end) < low(start)) throw internal(start.family === 4 ? `range ${s} - ${e} is reversed ` : `range ${s} - ${e} start larger than end`);
}

// ---------- parse ----------

function parseDhcpHost(node: XmlNode, net: string, ip: Addr, partialOkay = false): DhcpHost {
  const mac = attr(node, 'mac');
  if (mac !== undefined) {
    if (ip.family === 6) throw invalid(`Invalid to specify MAC address '${mac}' in network '${net}' IPv6 static host definition`);
    if (!isMac(mac)) throw invalid(`Cannot parse MAC address '${mac}' in network '${net}'`);
    if ((parseInt(mac.split(':')[0], 16) & 1) === 1) throw invalid(`expected unicast mac address, found multicast '${mac}' in network '${net}'`);
  }
  const id = attr(node, 'id');
  if (id !== undefined) {
    const badChar = /[^0-9a-fA-F:]/.exec(id);
    if (badChar) throw invalid(`Invalid character '${badChar[0]}' in id '${id}' of network '${net}'`);
    if (id.length > NetLimits.HOST_ID_MAX) throw invalid(`id '${id}' of network '${net}' is longer than ${NetLimits.HOST_ID_MAX} characters`);
  }
  const name = attr(node, 'name');
  if (name !== undefined && !/^[A-Za-z0-9]/.test(name)) throw invalid(`Cannot use host name '${name}' in network '${net}'`);
  if (name !== undefined && !isDhcpHostName(name)) throw invalid(`Cannot use host name '${name}' in network '${net}'`);
  const ipText = attr(node, 'ip');
  const addr = ipText === undefined ? null : addrOf(ipText);
  if (ipText !== undefined && !addr) throw invalid(`Invalid IP address in static host definition for network '${net}'`);
  if (partialOkay) {
    // An update's delete: any one of the three finds the entry.
    if (mac === undefined && name === undefined && !addr)
      throw invalid(`At least one of name, mac, or ip attribute must be specified for static host definition in network '${net}' `);
    if (first(node, 'lease')) throw unsupported('<lease> in a DHCP <host>');
    return { mac: mac ?? '', id: id ?? '', name: name ?? '', ip: addr?.text ?? '' };
  }
  if (ip.family === 6) {
    if (id === undefined && name === undefined) throw invalid(`Static host definition in IPv6 network '${net}' must have id or name attribute`);
  } else if (mac === undefined && name === undefined) throw invalid(`Static host definition in IPv4 network '${net}' must have mac or name attribute`);
  if (!addr) throw invalid(`Missing IP address in static host definition for network '${net}'`);
  if (first(node, 'lease')) throw unsupported('<lease> in a DHCP <host>');
  return { mac: mac ?? '', id: id ?? '', name: name ?? '', ip: addr.text };
}

// virNetworkDHCPRangeDefParseXML
function parseDhcpRange(node: XmlNode, net: string, address: Addr, prefix: number): DhcpRange {
  const s = attr(node, 'start');
  if (s === undefined) throw invalid(`Missing 'start' attribute in dhcp range for network '${net}'`);
  const start = sockAddr(s);
  const e = attr(node, 'end');
  if (e === undefined) throw invalid(`Missing 'end' attribute in dhcp range for network '${net}'`);
  const end = sockAddr(e);
  checkRange(start, end, address, prefix);
  if (first(node, 'lease')) throw unsupported('<lease> in a DHCP <range>');
  return { start: start.text, end: end.text };
}

function parseIp(node: XmlNode, net: string): NetworkIp {
  const family = attr(node, 'family');
  const addressText = attr(node, 'address');
  if (addressText === undefined) throw invalid(`Missing required address attribute in network '${net}'`);
  const address = addrOf(addressText);
  if (!address) throw invalid(`Invalid address '${addressText}' in network '${net}'`);
  const netmaskText = attr(node, 'netmask');
  const netmask = netmaskText === undefined ? null : addrOf(netmaskText);
  if (netmaskText !== undefined && !netmask) throw invalid(`Invalid netmask '${netmaskText}' in network '${net}'`);
  const prefixText = attr(node, 'prefix');
  let prefix = 0;
  if (prefixText !== undefined) {
    if (!/^[0-9]{1,10}$/.test(prefixText.trim()) || Number(prefixText) > 0xffffffff)
      throw invalid(`Invalid value for attribute 'prefix' in element 'ip': '${prefixText}'. Expected non-negative integer value`);
    prefix = Number(prefixText);
  }
  const localPtr = tristateProp(node, 'localPtr', 'ip');
  const cfg = (msg: string) => detailed(`unsupported configuration: ${msg}`);
  if (family === undefined || family === 'ipv4') {
    if (address.family !== 4) throw cfg(`${family === undefined ? 'no' : 'ipv4'} family specified for non-IPv4 address '${addressText}' in network '${net}'`);
    if (netmask) {
      if (netmask.family !== 4) throw cfg(`Invalid netmask '${netmaskText}' for address '${addressText}' in network '${net}' (both must be IPv4)`);
      if (prefix > 0) throw cfg(`Network '${net}' IP address cannot have both a prefix and a netmask`);
    } else if (prefix > 32) throw cfg(`Invalid IPv4 prefix '${prefix}' in network '${net}'`);
  } else if (family === 'ipv6') {
    if (address.family !== 6) throw cfg(`Family 'ipv6' specified for non-IPv6 address '${addressText}' in network '${net}'`);
    if (netmask) throw cfg(`netmask not allowed for IPv6 address '${addressText}' in network '${net}'`);
    if (prefix > 128) throw cfg(`Invalid IPv6 prefix '${prefix}' in network '${net}'`);
  } else throw invalid(`Unrecognized family '${family}' in network '${net}'`);

  const ranges: DhcpRange[] = [];
  const hosts: DhcpHost[] = [];
  const dhcp = first(node, 'dhcp');
  if (dhcp) {
    for (const c of kids(dhcp)) {
      const tag = tagOf(c);
      if (tag === 'range') {
        if (ranges.length >= NetLimits.RANGES_MAX) throw invalid(`more than ${NetLimits.RANGES_MAX} DHCP ranges in one <ip> of network '${net}'`);
        ranges.push(parseDhcpRange(c, net, address, ipPrefix(address, netmask, prefix)));
      } else if (tag === 'host') {
        if (hosts.length >= NetLimits.HOSTS_MAX) throw invalid(`more than ${NetLimits.HOSTS_MAX} DHCP hosts in one <ip> of network '${net}'`);
        hosts.push(parseDhcpHost(c, net, address));
      } else if (tag === 'bootp' && address.family === 4 && attr(c, 'file') !== undefined) throw unsupported('<bootp>');
    }
  }
  if (first(node, 'tftp')) {
    if (address.family !== 4) throw cfg(`Unsupported <tftp> element in an IPv6 element in network '${net}'`);
    throw unsupported('<tftp>');
  }
  return {
    family: (family ?? '') as NetworkIp['family'],
    address: address.text,
    netmask: netmask?.text ?? '',
    prefix,
    localPtr,
    ranges,
    hosts,
  };
}

function parseForward(node: XmlNode, net: string): NetworkConfig['forward'] {
  const modeText = attr(node, 'mode');
  let mode: ForwardMode | '' = 'nat';
  if (modeText !== undefined) {
    if (modeText === 'none') mode = '';
    else if ((FORWARD_MODES as readonly string[]).includes(modeText)) mode = modeText as ForwardMode;
    else throw detailed(`unsupported configuration: unknown forwarding type '${modeText}'`);
  }
  const managed = (attr(node, 'managed') ?? '').toLowerCase() === 'yes';
  const driver = first(node, 'driver');
  if (driver && attr(driver, 'name') !== undefined) throw unsupported('<forward><driver>');
  const addresses = all(node, 'address');
  const pfs = all(node, 'pf');
  const nats = all(node, 'nat');
  let natStart = '';
  let natEnd = '';
  let portStart = 0;
  let portEnd = 0;
  let natIpv6: Tristate = '';
  if (nats.length > 1) throw invalid(`Only one <nat> element is allowed in <forward> of network ${net}`);
  if (nats.length === 1) {
    const nat = nats[0];
    if (mode !== 'nat') throw invalid(`The <nat> element can only be used when <forward> 'mode' is 'nat' in network ${net}`);
    natIpv6 = tristateProp(nat, 'ipv6', 'nat');
    const natAddrs = all(nat, 'address');
    if (natAddrs.length > 1) throw invalid(`Only one <address> element is allowed in <nat> in <forward> in network ${net}`);
    if (natAddrs.length === 1) {
      const s = attr(natAddrs[0], 'start');
      if (s === undefined) throw invalid(`missing 'start' attribute in <address> element in <nat> in <forward> in network ${net}`);
      const e = attr(natAddrs[0], 'end');
      if (e === undefined) throw invalid(`missing 'end' attribute in <address> element in <nat> in <forward> in network ${net}`);
      const start = addrOf(s);
      if (!start || start.family !== 4) throw invalid(`Bad ipv4 start address '${s}' in <nat> in <forward> in network '${net}'`);
      const end = addrOf(e);
      if (!end || end.family !== 4) throw invalid(`Bad ipv4 end address '${e}' in <nat> in <forward> in network '${net}'`);
      checkRange(start, end, null, 0);
      natStart = start.text;
      natEnd = end.text;
    }
    const ports = all(nat, 'port');
    if (ports.length > 1) throw invalid(`Only one <port> element is allowed in <nat> in <forward> in network ${net}`);
    if (ports.length === 1) {
      const uint = (v: string | undefined): number | null => (v !== undefined && /^[0-9]{1,10}$/.test(v.trim()) ? Number(v) : null);
      const ps = uint(attr(ports[0], 'start'));
      if (ps === null || ps > 65535) throw detailed(`Missing or invalid 'start' attribute in <port> in <nat> in <forward> in network ${net}`);
      const pe = uint(attr(ports[0], 'end'));
      if (pe === null || pe > 65535 || pe < ps) throw detailed(`Missing or invalid 'end' attribute in <port> in <nat> in <forward> in network ${net}`);
      portStart = ps;
      portEnd = pe;
    }
  }
  const dev = attr(node, 'dev');
  if (dev !== undefined && (addresses.length > 0 || pfs.length > 0))
    throw invalid(`the <forward> 'dev' attribute cannot be used when <address> or <pf> sub-elements are present in network ${net}`);
  const interfaces: string[] = [];
  const ifNodes = all(node, 'interface');
  if (ifNodes.length > NetLimits.FORWARD_IFS_MAX) throw invalid(`more than ${NetLimits.FORWARD_IFS_MAX} <interface> elements in <forward> of network ${net}`);
  const checkIf = (d: string): string => {
    if (!isIfName(d)) throw detailed(`unsupported configuration: '${d}' in network '${net}' is not a valid interface name`);
    return d;
  };
  if (ifNodes.length > 0 || dev !== undefined) {
    if (dev !== undefined) interfaces.push(checkIf(dev));
    ifNodes.forEach((n, i) => {
      const d = attr(n, 'dev');
      if (d === undefined) throw invalid(`Missing required dev attribute in <forward> <interface> element of network ${net}`);
      if (i === 0 && dev !== undefined) {
        if (d !== dev) throw invalid(`<forward dev='${dev}'> must match first <interface dev='${d}'/> in network ${net}`);
        return;
      }
      if (interfaces.includes(d)) throw invalid(`interface '${d}' can only be listed once in network ${net}`);
      interfaces.push(checkIf(d));
    });
  } else if (addresses.length > 0) throw unsupported('<forward><address>');
  else if (pfs.length > 1) throw invalid(`Only one <pf> element is allowed in <forward> of network ${net}`);
  else if (pfs.length === 1) throw unsupported('<forward><pf>');
  return { mode, dev: interfaces[0] ?? '', interfaces, managed, natStart, natEnd, portStart, portEnd, natIpv6 };
}

// Client network XML -> typed config. Throws VgError with libvirt's wording (or a clear refusal for what we do not model).
export function parseNetworkXml(xml: string): NetworkConfig {
  const root = parseRoot(xml, 'network');

  const name = textOf(first(root, 'name')) ?? '';
  if (name === '') throw detailed('missing name information');
  if (name.includes('/')) throw detailed('invalid char in name: /');
  if (!isNetworkName(name)) throw invalid(`network name '${name}' is not allowed: network names are ${NETWORK_NAME_RULE}`);

  const uuidText = textOf(first(root, 'uuid'));
  let uuid: Buffer;
  if (uuidText === undefined || uuidText === '') uuid = randomUuid();
  else {
    const raw = uuidFromString(uuidText);
    if (!raw) throw internal('malformed uuid element');
    uuid = raw;
  }

  const ipv6Text = attr(root, 'ipv6');
  if (ipv6Text !== undefined && ipv6Text !== 'yes' && ipv6Text !== 'no') throw invalid(`Invalid ipv6 setting '${ipv6Text}' in network '${name}'`);
  const trustGuestRxFilters = tristateProp(root, 'trustGuestRxFilters', 'network');

  const domainNode = first(root, 'domain');
  const domainName = attr(domainNode, 'name') ?? '';
  if (domainName !== '' && !isDnsName(domainName))
    throw detailed(`unsupported configuration: domain name '${domainName}' in network '${name}' is not a DNS name`);
  const localOnly = tristateProp(domainNode, 'localOnly', 'domain');

  for (const tag of ['bandwidth', 'vlan', 'port']) if (first(root, tag)) throw unsupported(`<${tag}>`);

  const bridgeNode = first(root, 'bridge');
  const bridgeName = attr(bridgeNode, 'name') ?? '';
  if (bridgeName !== '' && !isIfName(bridgeName))
    throw detailed(`unsupported configuration: bridge name '${bridgeName}' in network '${name}' is not a valid interface name`);
  const zone = attr(bridgeNode, 'zone') ?? '';
  if (zone !== '' && !isZoneName(zone)) throw detailed(`unsupported configuration: bridge zone '${zone}' in network '${name}' is not a zone name`);
  const stpText = attr(bridgeNode, 'stp');
  const stp = stpText !== 'off';
  const delayText = attr(bridgeNode, 'delay');
  let delay = 0;
  if (delayText !== undefined) {
    if (!/^\s*\+?[0-9]{1,10}$/.test(delayText) || Number(delayText) > NetLimits.DELAY_MAX) throw invalid(`Invalid delay value in network '${name}'`);
    delay = Number(delayText);
  }
  const mtmText = attr(bridgeNode, 'macTableManager');
  let macTableManager: NetworkConfig['bridge']['macTableManager'] = '';
  if (mtmText !== undefined) {
    if (mtmText !== 'kernel' && mtmText !== 'libvirt') throw invalid(`Invalid macTableManager setting '${mtmText}' in network '${name}'`);
    macTableManager = mtmText;
  }

  const macText = attr(first(root, 'mac'), 'address');
  let mac = '';
  if (macText !== undefined) {
    if (!isMac(macText)) throw invalid(`Invalid bridge mac address '${macText}' in network '${name}'`);
    const octets = macText.split(':').map((o) => parseInt(o, 16));
    if ((octets[0] & 1) === 1) throw invalid(`Invalid multicast bridge mac address '${macText}' in network '${name}'`);
    mac = octets.map((o) => o.toString(16).padStart(2, '0')).join(':');
  }

  const mtuText = attr(first(root, 'mtu'), 'size');
  let mtu = 0;
  if (mtuText !== undefined) {
    if (!/^[0-9]{1,10}$/.test(mtuText) || Number(mtuText) > NetLimits.MTU_MAX) throw invalid(`Invalid mtu size '${mtuText}' in network '${name}'`);
    mtu = Number(mtuText);
  }

  for (const tag of ['dns', 'virtualport', 'portgroup']) if (first(root, tag)) throw unsupported(`<${tag}>`);

  const ipNodes = all(root, 'ip');
  if (ipNodes.length > NetLimits.IPS_MAX) throw invalid(`more than ${NetLimits.IPS_MAX} <ip> elements in network '${name}'`);
  const ips = ipNodes.map((n) => parseIp(n, name));

  if (first(root, 'route')) throw unsupported('<route>');

  const forwardNode = first(root, 'forward');
  const forward = forwardNode
    ? parseForward(forwardNode, name)
    : { mode: '' as const, dev: '', interfaces: [], managed: false, natStart: '', natEnd: '', portStart: 0, portEnd: 0, natIpv6: '' as Tristate };

  // What libvirt checks across elements for each forward mode.
  const mode = forward.mode;
  if (mode === 'route' || mode === 'nat' || mode === 'open') {
    if (ips.length === 0) throw invalid(`${mode} forwarding requested, but no IP address provided for network '${name}'`);
    if (forward.interfaces.length > 1) throw invalid(`multiple forwarding interfaces specified for network '${name}', only one is supported`);
    if (mode === 'open' && forward.interfaces.length > 0) throw invalid(`forward dev not allowed for network '${name}' with forward mode='${mode}'`);
  } else if (mode !== '') {
    if (mode !== 'bridge') {
      if (bridgeName !== '') throw invalid(`bridge name not allowed in ${mode} mode (network '${name}')`);
      if (zone !== '') throw invalid(`bridge zone not allowed in ${mode} mode (network '${name}')`);
      if (macTableManager !== '') throw invalid(`bridge macTableManager setting not allowed in ${mode} mode (network '${name}')`);
    }
    if (delay !== 0 || stpText !== undefined || zone !== '')
      throw invalid(`bridge delay/stp/zone options only allowed in route, nat, and isolated mode, not in ${mode} (network '${name}')`);
    if (bridgeName !== '' && forward.interfaces.length > 0)
      throw invalid(`A network with forward mode='${mode}' can specify a bridge name or a forward dev, but not both (network '${name}')`);
  }
  if (mtu !== 0 && !(mode === '' || mode === 'nat' || mode === 'route' || mode === 'open'))
    throw invalid(`mtu size only allowed in open, route, nat, and isolated mode, not in ${mode} (network '${name}')`);

  if (first(root, 'metadata')) throw unsupported('<metadata>');

  const config: NetworkConfig = {
    name,
    uuid,
    ipv6: ipv6Text === 'yes',
    trustGuestRxFilters,
    forward,
    bridge: { name: bridgeName, zone, stp, delay, macTableManager },
    mtu,
    mac,
    domain: { name: domainName, localOnly },
    ips,
  };
  // The IPC decoder's own checks, run here too: what parses is what the helper will accept.
  return checkNetworkConfig(config);
}

function randomUuid(): Buffer {
  const b = randomBytes(16);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  return b;
}

// ---------- format (virNetworkDefFormatBuf) ----------

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');

function formatIp(ip: NetworkIp, out: string[]): void {
  let line = '  <ip';
  if (ip.family !== '') line += ` family='${ip.family}'`;
  line += ` address='${ip.address}'`;
  if (ip.netmask !== '') line += ` netmask='${ip.netmask}'`;
  if (ip.prefix > 0) line += ` prefix='${ip.prefix}'`;
  if (ip.localPtr !== '') line += ` localPtr='${ip.localPtr}'`;
  out.push(`${line}>`);
  if (ip.ranges.length > 0 || ip.hosts.length > 0) {
    out.push('    <dhcp>');
    for (const r of ip.ranges) out.push(`      <range start='${r.start}' end='${r.end}'/>`);
    for (const h of ip.hosts) {
      let l = '      <host';
      if (h.mac !== '') l += ` mac='${h.mac}'`;
      if (h.id !== '') l += ` id='${h.id}'`;
      if (h.name !== '') l += ` name='${h.name}'`;
      l += ` ip='${h.ip}'`;
      out.push(`${l}/>`);
    }
    out.push('    </dhcp>');
  }
  out.push('  </ip>');
}

// Typed config -> the XML libvirt 9.0 formats for it (two-space indent, single quotes, trailing newline).
export function formatNetworkXml(c: NetworkConfig): string {
  const out: string[] = [];
  let open = '<network';
  if (c.ipv6) open += " ipv6='yes'";
  if (c.trustGuestRxFilters !== '') open += ` trustGuestRxFilters='${c.trustGuestRxFilters}'`;
  out.push(`${open}>`);
  out.push(`  <name>${esc(c.name)}</name>`);
  out.push(`  <uuid>${uuidToString(c.uuid)}</uuid>`);
  const f = c.forward;
  if (f.mode !== '') {
    let line = '  <forward';
    if (f.dev !== '') line += ` dev='${esc(f.dev)}'`;
    line += ` mode='${f.mode}'`;
    if (f.mode === 'hostdev') line += f.managed ? " managed='yes'" : " managed='no'";
    const short = !(f.interfaces.length > 0 || f.natStart !== '' || f.natEnd !== '' || f.portStart !== 0 || f.portEnd !== 0 || f.natIpv6 !== '');
    out.push(`${line}${short ? '/' : ''}>`);
    if (f.mode === 'nat' && (f.natStart !== '' || f.natEnd !== '' || f.portStart !== 0 || f.portEnd !== 0 || f.natIpv6 !== '')) {
      let nat = '    <nat';
      if (f.natIpv6 !== '') nat += ` ipv6='${f.natIpv6}'`;
      if (f.natStart === '' && f.natEnd === '' && f.portStart === 0 && f.portEnd === 0) out.push(`${nat}/>`);
      else {
        out.push(`${nat}>`);
        if (f.natStart !== '') out.push(`      <address start='${f.natStart}'${f.natEnd !== '' ? ` end='${f.natEnd}'` : ''}/>`);
        if (f.portStart !== 0 || f.portEnd !== 0) out.push(`      <port start='${f.portStart}'${f.portEnd !== 0 ? ` end='${f.portEnd}'` : ''}/>`);
        out.push('    </nat>');
      }
    }
    for (const i of f.interfaces) out.push(`    <interface dev='${esc(i)}'/>`);
    if (!short) out.push('  </forward>');
  }
  const hasBridge = f.mode === '' || f.mode === 'nat' || f.mode === 'route' || f.mode === 'open';
  const b = c.bridge;
  if (hasBridge || b.name !== '' || b.macTableManager !== '') {
    let line = '  <bridge';
    if (b.name !== '') line += ` name='${esc(b.name)}'`;
    if (b.zone !== '') line += ` zone='${esc(b.zone)}'`;
    if (hasBridge) line += ` stp='${b.stp ? 'on' : 'off'}' delay='${b.delay}'`;
    if (b.macTableManager !== '') line += ` macTableManager='${b.macTableManager}'`;
    out.push(`${line}/>`);
  }
  if (c.mtu !== 0) out.push(`  <mtu size='${c.mtu}'/>`);
  if (c.mac !== '') out.push(`  <mac address='${c.mac}'/>`);
  if (c.domain.name !== '') out.push(`  <domain name='${c.domain.name}'${c.domain.localOnly !== '' ? ` localOnly='${c.domain.localOnly}'` : ''}/>`);
  for (const ip of c.ips) formatIp(ip, out);
  out.push('</network>');
  return `${out.join('\n')}\n`;
}

// ---------- networkUpdate snippets (virNetworkDefUpdateSection) ----------

// virNetworkUpdateSection names, for libvirt's "can't update" wording.
const SECTION_NAMES = [
  'none',
  'bridge',
  'domain',
  'ip',
  'ip-dhcp-host',
  'ip-dhcp-range',
  'forward',
  'forward-interface',
  'forward-pf',
  'portgroup',
  'dns-host',
  'dns-txt',
  'dns-srv',
];

// One <host> or <range> snippet, checked against the <ip> it will go into (the config it updates, as the helper has it).
export function parseUpdateItem(section: number, command: number, xml: string, cfg: NetworkConfig, parentIndex: number): UpdateItem {
  if (command < 1 || command > 4) throw VG_ERR_ARG_INVALID(`unrecognized network update command code ${command}`);
  if (section !== UpdateSection.IP_DHCP_HOST && section !== UpdateSection.IP_DHCP_RANGE) {
    const name = SECTION_NAMES[section];
    if (name === undefined) throw VG_ERR_ARG_INVALID(`can't update unrecognized section of network '${cfg.name}'`);
    throw VG_ERR_NOT_SUPPORTED(`virNetworkUpdate of the '${name}' section (virtgate updates ip-dhcp-host and ip-dhcp-range)`);
  }
  const node = parseRoot(xml, null);
  const want = section === UpdateSection.IP_DHCP_HOST ? 'host' : 'range';
  const tag = tagOf(node);
  if (tag !== want) throw invalid(`unexpected element <${tag}>, expecting <${want}>, while updating network '${cfg.name}'`);
  const index = ipIndexForUpdate(cfg, parentIndex);
  // No <ip> to go into: the helper answers with libvirt's message; the snippet still has to be well-formed.
  const ip = index >= 0 ? cfg.ips[index] : null;
  const address = ip ? addrOf(ip.address) : null;
  const here = address ?? { text: '0.0.0.0', family: 4 as const, bytes: [0, 0, 0, 0] };
  if (section === UpdateSection.IP_DHCP_HOST) return { section, host: parseDhcpHost(node, cfg.name, here, command === 2) };
  if (command === 1) throw VG_ERR_NOT_SUPPORTED('dhcp ranges cannot be modified, only added or deleted');
  const prefix = ip && address ? ipPrefix(address, ip.netmask ? addrOf(ip.netmask) : null, ip.prefix) : 0;
  return { section, range: ip ? parseDhcpRange(node, cfg.name, here, prefix) : parseDhcpRange(node, cfg.name, here, 0) };
}
