// SPDX-License-Identifier: Apache-2.0
// Networks over the helper IPC, pure: the typed network config (what the front end parses client XML into), its strict
// codec, and the NETWORK_READ / NETWORK_WRITE action groups. The helper never sees network XML: it checks these fields.
import { VG_ERR_IPC_VALIDATION } from '../../common/errors';
import { NAME_LIMITS } from '../../common/names';
import { XdrReader, XdrWriter } from '../../common/xdr';
import { action, actionGroup } from '../actions';
import { type Codec, checkRange, checkTenantName, uuidCodec } from '../shared';

export const NetLimits = {
  NAME_MAX: 64, // bytes, same rule as domain names
  NETWORKS_MAX: 16384, // REMOTE_NETWORK_LIST_MAX
  IPS_MAX: 16, // <ip> elements per network
  RANGES_MAX: 64, // <dhcp><range> per <ip>
  HOSTS_MAX: 256, // <dhcp><host> per <ip>: keeps a define well inside the IPC request cap
  FORWARD_IFS_MAX: 64, // <forward><interface> elements
  IFNAME_MAX: 15, // IFNAMSIZ - 1
  DNS_NAME_MAX: 253,
  HOST_ID_MAX: 130, // DHCPv6 DUID as hex pairs with colons
  ZONE_MAX: 64,
  MTU_MAX: 65535,
  DELAY_MAX: 0xffffffff, // stp delay, seconds (libvirt: unsigned long)
} as const;

// ---------- IP addresses (pure, no node:net: this file stays importable by both processes) ----------

// Dotted quad, decimal, no leading zeros: what inet_pton accepts.
export function parseIPv4(s: string): number[] | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out.push(n);
  }
  return out;
}

// RFC 4291 text forms (with :: and an IPv4 tail), no zone id: 8 16-bit words, or null.
export function parseIPv6(s: string): number[] | null {
  if (s.length > 45 || !/^[0-9A-Fa-f:.]+$/.test(s)) return null;
  let text = s;
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.')) {
    const v4 = parseIPv4(text.slice(lastColon + 1));
    if (!v4) return null;
    tail.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
    text = text.slice(0, lastColon + 1) + (text[lastColon - 1] === ':' ? '' : '0');
    if (text.endsWith(':0')) text = text.slice(0, -2);
    else if (!text.endsWith('::')) return null;
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const words = (h: string): number[] | null => {
    if (h === '') return [];
    const out: number[] = [];
    for (const g of h.split(':')) {
      if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = words(halves[0]);
  const rest = halves.length === 2 ? words(halves[1]) : [];
  if (!head || !rest) return null;
  const given = head.length + rest.length + tail.length;
  if (halves.length === 1) return given === 8 ? [...head, ...tail] : null;
  if (given > 7) return null;
  return [...head, ...new Array<number>(8 - given).fill(0), ...rest, ...tail];
}

// glibc inet_ntop: lower-case, longest run (>= 2) of zero words as ::, IPv4 tail for ::a.b.c.d and ::ffff:a.b.c.d.
export function formatIPv6(w: number[]): string {
  let best = { base: -1, len: 0 };
  let cur = { base: -1, len: 0 };
  for (let i = 0; i < 8; i++) {
    if (w[i] === 0) {
      cur = cur.base === -1 ? { base: i, len: 1 } : { base: cur.base, len: cur.len + 1 };
      if (cur.len > best.len) best = { ...cur };
    } else cur = { base: -1, len: 0 };
  }
  if (best.len < 2) best = { base: -1, len: 0 };
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (best.base !== -1 && i >= best.base && i < best.base + best.len) {
      if (i === best.base) out += ':';
      continue;
    }
    if (i !== 0) out += ':';
    if (i === 6 && best.base === 0 && (best.len === 6 || (best.len === 5 && w[5] === 0xffff))) {
      out += `${w[6] >> 8}.${w[6] & 0xff}.${w[7] >> 8}.${w[7] & 0xff}`;
      return out;
    }
    out += w[i].toString(16);
  }
  if (best.base !== -1 && best.base + best.len === 8) out += ':';
  return out;
}

export type IpFamily = 4 | 6;

// An address as libvirt prints it (virSocketAddrFormat), with its family; null if not a numeric address.
export function canonicalIp(s: string): { text: string; family: IpFamily; bytes: number[] } | null {
  const v4 = parseIPv4(s);
  if (v4) return { text: v4.join('.'), family: 4, bytes: v4 };
  const v6 = parseIPv6(s);
  if (v6) return { text: formatIPv6(v6), family: 6, bytes: v6.flatMap((x) => [x >> 8, x & 0xff]) };
  return null;
}

// ---------- field rules (both ends reject the same inputs) ----------

// Network names: the domain-name rule (libvirt only refuses '/'; we keep names safe for paths, policy and logs).
const NET_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.+:@-]*$/;
export const NETWORK_NAME_RULE = `1-${NetLimits.NAME_MAX} characters of [A-Za-z0-9_.+:@-], not starting with . + : @ or -`;
export const isNetworkName = (s: string): boolean => Buffer.byteLength(s) <= NetLimits.NAME_MAX && NET_NAME_RE.test(s);

// Linux interface names (dev_valid_name): 1-15 bytes, no '/', ':' or white space, not '.' or '..'.
export const isIfName = (s: string): boolean =>
  s.length >= 1 && Buffer.byteLength(s) <= NetLimits.IFNAME_MAX && !/[/:\s]/.test(s) && /^[\x21-\x7e]+$/.test(s) && s !== '.' && s !== '..';
export const isDnsName = (s: string): boolean => s.length <= NetLimits.DNS_NAME_MAX && /^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$/.test(s);
export const isZoneName = (s: string): boolean => s.length <= NetLimits.ZONE_MAX && /^[A-Za-z0-9_][A-Za-z0-9_-]*$/.test(s);
export const isMac = (s: string): boolean => /^([0-9A-Fa-f]{1,2}:){5}[0-9A-Fa-f]{1,2}$/.test(s);
export const isHostId = (s: string): boolean => s.length >= 1 && s.length <= NetLimits.HOST_ID_MAX && /^[0-9A-Fa-f:]+$/.test(s);
// dnsmasq host names: libvirt wants an alphanumeric first character.
export const isDhcpHostName = (s: string): boolean => s.length <= NetLimits.DNS_NAME_MAX && /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(s);

// ---------- the typed network config ----------

export const FORWARD_MODES = ['nat', 'route', 'open', 'bridge', 'private', 'vepa', 'passthrough', 'hostdev'] as const;
export type ForwardMode = (typeof FORWARD_MODES)[number];
export const MAC_TABLE_MANAGERS = ['kernel', 'libvirt'] as const;
export type Tristate = '' | 'yes' | 'no'; // '' = absent (libvirt's VIR_TRISTATE_BOOL_ABSENT)
const TRISTATES: readonly Tristate[] = ['', 'yes', 'no'];

export interface DhcpRange {
  start: string; // canonical address text
  end: string;
}

export interface DhcpHost {
  mac: string; // '' = absent; kept as written, as libvirt does
  id: string;
  name: string;
  ip: string; // canonical
}

export interface NetworkIp {
  family: '' | 'ipv4' | 'ipv6'; // as written; '' = absent
  address: string; // canonical
  netmask: string; // canonical or ''
  prefix: number; // 0 = absent
  localPtr: Tristate;
  ranges: DhcpRange[];
  hosts: DhcpHost[];
}

export interface NetworkConfig {
  name: string;
  uuid: Buffer;
  ipv6: boolean; // <network ipv6='yes'>: guest-to-guest IPv6 without a gateway
  trustGuestRxFilters: Tristate;
  forward: {
    mode: ForwardMode | ''; // '' = no <forward>
    dev: string; // first <interface>, also written as <forward dev=...>
    interfaces: string[]; // every <interface dev=...>, dev first
    managed: boolean; // hostdev only
    natStart: string; // <nat><address start end>, canonical IPv4 or ''
    natEnd: string;
    portStart: number; // <nat><port>, 0 = absent
    portEnd: number;
    natIpv6: Tristate;
  };
  bridge: {
    name: string; // '' = absent
    zone: string;
    stp: boolean;
    delay: number;
    macTableManager: '' | 'kernel' | 'libvirt';
  };
  mtu: number; // 0 = absent
  mac: string; // '' = absent; lower-case aa:bb:cc:dd:ee:ff
  domain: { name: string; localOnly: Tristate }; // name '' = absent
  ips: NetworkIp[];
}

// What a list or lookup answers: identity, tenancy and the state libvirt reports.
export interface NetworkSummary {
  name: string;
  uuid: Buffer;
  tenant: string; // '' = shared
  active: boolean;
  persistent: boolean;
  autostart: boolean;
}

// ---------- codecs ----------

const bad = (field: string, why: string) => VG_ERR_IPC_VALIDATION(field, why);

function checked(ok: boolean, v: string, field: string, why: string): string {
  if (!ok) throw bad(field, why);
  return v;
}

export function checkNetworkName(name: string, field = 'name'): string {
  return checked(isNetworkName(name), name, field, `network names are ${NETWORK_NAME_RULE}`);
}

// An address field: canonical text of the wanted family ('' allowed only where `optional`).
function checkIp(v: string, field: string, opts: { family?: IpFamily; optional?: boolean } = {}): string {
  if (v === '' && opts.optional) return v;
  const c = canonicalIp(v);
  if (!c || c.text !== v || (opts.family !== undefined && c.family !== opts.family)) throw bad(field, 'must be a canonical IP address');
  return v;
}

const str = (w: XdrWriter, v: string, max: number) => void w.string(v, max);
const rstr = (r: XdrReader, max: number, field: string) => r.string(max, field);
const tristate = (r: XdrReader, field: string): Tristate => {
  const v = r.string(3, field) as Tristate;
  if (!TRISTATES.includes(v)) throw bad(field, "must be '', 'yes' or 'no'");
  return v;
};
const IP_TEXT_MAX = 45;

const rangeCodec: Codec<DhcpRange> = {
  encode: (w, v) => (str(w, v.start, IP_TEXT_MAX), str(w, v.end, IP_TEXT_MAX)),
  decode: (r) => ({ start: checkIp(rstr(r, IP_TEXT_MAX, 'range.start'), 'range.start'), end: checkIp(rstr(r, IP_TEXT_MAX, 'range.end'), 'range.end') }),
};

export const dhcpHostCodec: Codec<DhcpHost> = {
  encode: (w, v) => (str(w, v.mac, 17), str(w, v.id, NetLimits.HOST_ID_MAX), str(w, v.name, NetLimits.DNS_NAME_MAX), str(w, v.ip, IP_TEXT_MAX)),
  decode: (r) => {
    const mac = rstr(r, 17, 'host.mac');
    const id = rstr(r, NetLimits.HOST_ID_MAX, 'host.id');
    const name = rstr(r, NetLimits.DNS_NAME_MAX, 'host.name');
    const ip = rstr(r, IP_TEXT_MAX, 'host.ip');
    checked(mac === '' || isMac(mac), mac, 'host.mac', 'must be a MAC address');
    checked(id === '' || isHostId(id), id, 'host.id', 'must be hex digits and colons');
    checked(name === '' || isDhcpHostName(name), name, 'host.name', 'must be a host name');
    if (mac === '' && id === '' && name === '' && ip === '') throw bad('host', 'needs a mac, id, name or ip');
    return { mac, id, name, ip: checkIp(ip, 'host.ip', { optional: true }) }; // no ip: only in an update's delete
  },
};
export const dhcpRangeCodec = rangeCodec;

const ipCodec: Codec<NetworkIp> = {
  encode(w, v) {
    str(w, v.family, 4);
    str(w, v.address, IP_TEXT_MAX);
    str(w, v.netmask, IP_TEXT_MAX);
    w.u32(v.prefix);
    str(w, v.localPtr, 3);
    w.array(v.ranges, NetLimits.RANGES_MAX, rangeCodec.encode);
    w.array(v.hosts, NetLimits.HOSTS_MAX, dhcpHostCodec.encode);
  },
  decode(r) {
    const family = rstr(r, 4, 'ip.family');
    if (family !== '' && family !== 'ipv4' && family !== 'ipv6') throw bad('ip.family', "must be '', 'ipv4' or 'ipv6'");
    const want: IpFamily = family === 'ipv6' ? 6 : 4;
    const address = checkIp(rstr(r, IP_TEXT_MAX, 'ip.address'), 'ip.address', { family: want });
    const netmask = checkIp(rstr(r, IP_TEXT_MAX, 'ip.netmask'), 'ip.netmask', { family: 4, optional: true });
    const prefix = checkRange(r.u32('ip.prefix'), 0, want === 4 ? 32 : 128, 'ip.prefix');
    if (netmask !== '' && (want === 6 || prefix !== 0)) throw bad('ip.netmask', 'only for IPv4, without a prefix');
    const localPtr = tristate(r, 'ip.localPtr');
    const ranges = r.array(NetLimits.RANGES_MAX, rangeCodec.decode, 'ip.ranges');
    const hosts = r.array(NetLimits.HOSTS_MAX, dhcpHostCodec.decode, 'ip.hosts');
    if (hosts.some((h) => h.ip === '')) throw bad('ip.hosts', 'every DHCP host of a network has an ip');
    return { family, address, netmask, prefix, localPtr, ranges, hosts } as NetworkIp;
  },
};

export const networkConfigCodec: Codec<NetworkConfig> = {
  encode(w, v) {
    str(w, v.name, NetLimits.NAME_MAX);
    uuidCodec.encode(w, v.uuid);
    w.bool(v.ipv6);
    str(w, v.trustGuestRxFilters, 3);
    const f = v.forward;
    str(w, f.mode, 16);
    str(w, f.dev, NetLimits.IFNAME_MAX);
    w.array(f.interfaces, NetLimits.FORWARD_IFS_MAX, (w2, s) => str(w2, s, NetLimits.IFNAME_MAX));
    w.bool(f.managed);
    str(w, f.natStart, 15);
    str(w, f.natEnd, 15);
    w.u32(f.portStart).u32(f.portEnd);
    str(w, f.natIpv6, 3);
    const b = v.bridge;
    str(w, b.name, NetLimits.IFNAME_MAX);
    str(w, b.zone, NetLimits.ZONE_MAX);
    w.bool(b.stp).u32(b.delay);
    str(w, b.macTableManager, 8);
    w.u32(v.mtu);
    str(w, v.mac, 17);
    str(w, v.domain.name, NetLimits.DNS_NAME_MAX);
    str(w, v.domain.localOnly, 3);
    w.array(v.ips, NetLimits.IPS_MAX, ipCodec.encode);
  },
  decode(r) {
    const name = checkNetworkName(rstr(r, NetLimits.NAME_MAX, 'name'));
    const uuid = uuidCodec.decode(r);
    const ipv6 = r.bool('ipv6');
    const trustGuestRxFilters = tristate(r, 'trustGuestRxFilters');
    const mode = rstr(r, 16, 'forward.mode') as ForwardMode | '';
    if (mode !== '' && !FORWARD_MODES.includes(mode)) throw bad('forward.mode', 'unknown forward mode');
    const ifname = (s: string, field: string) => checked(isIfName(s), s, field, 'must be an interface name');
    const dev = rstr(r, NetLimits.IFNAME_MAX, 'forward.dev');
    if (dev !== '') ifname(dev, 'forward.dev');
    const interfaces = r.array(
      NetLimits.FORWARD_IFS_MAX,
      (r2) => ifname(rstr(r2, NetLimits.IFNAME_MAX, 'forward.interface'), 'forward.interface'),
      'forward.interfaces',
    );
    if (new Set(interfaces).size !== interfaces.length || (interfaces.length > 0 && interfaces[0] !== dev) || (dev !== '' && interfaces.length === 0))
      throw bad('forward.interfaces', 'unique, the first one being forward.dev');
    const managed = r.bool('forward.managed');
    const natStart = checkIp(rstr(r, 15, 'forward.natStart'), 'forward.natStart', { family: 4, optional: true });
    const natEnd = checkIp(rstr(r, 15, 'forward.natEnd'), 'forward.natEnd', { family: 4, optional: true });
    if ((natStart === '') !== (natEnd === '')) throw bad('forward.nat', 'start and end go together');
    const portStart = checkRange(r.u32('forward.portStart'), 0, 65535, 'forward.portStart');
    const portEnd = checkRange(r.u32('forward.portEnd'), 0, 65535, 'forward.portEnd');
    if (portEnd !== 0 && portEnd < portStart) throw bad('forward.portEnd', 'below the start port');
    const natIpv6 = tristate(r, 'forward.natIpv6');
    if (mode !== 'nat' && (natStart !== '' || portStart !== 0 || portEnd !== 0 || natIpv6 !== '')) throw bad('forward.nat', "only with mode 'nat'");
    const bname = rstr(r, NetLimits.IFNAME_MAX, 'bridge.name');
    if (bname !== '') ifname(bname, 'bridge.name');
    const zone = rstr(r, NetLimits.ZONE_MAX, 'bridge.zone');
    checked(zone === '' || isZoneName(zone), zone, 'bridge.zone', 'must be a zone name');
    const stp = r.bool('bridge.stp');
    const delay = r.u32('bridge.delay');
    const macTableManager = rstr(r, 8, 'bridge.macTableManager') as '' | 'kernel' | 'libvirt';
    if (macTableManager !== '' && !MAC_TABLE_MANAGERS.includes(macTableManager)) throw bad('bridge.macTableManager', "must be '', 'kernel' or 'libvirt'");
    const mtu = checkRange(r.u32('mtu'), 0, NetLimits.MTU_MAX, 'mtu');
    const mac = rstr(r, 17, 'mac');
    checked(mac === '' || /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac), mac, 'mac', 'must be a lower-case MAC address');
    const dname = rstr(r, NetLimits.DNS_NAME_MAX, 'domain.name');
    checked(dname === '' || isDnsName(dname), dname, 'domain.name', 'must be a DNS name');
    const localOnly = tristate(r, 'domain.localOnly');
    const ips = r.array(NetLimits.IPS_MAX, ipCodec.decode, 'ips');
    return {
      name,
      uuid,
      ipv6,
      trustGuestRxFilters,
      forward: { mode, dev, interfaces, managed, natStart, natEnd, portStart, portEnd, natIpv6 },
      bridge: { name: bname, zone, stp, delay, macTableManager },
      mtu,
      mac,
      domain: { name: dname, localOnly },
      ips,
    };
  },
};

export const networkSummaryCodec: Codec<NetworkSummary> = {
  encode(w, v) {
    str(w, v.name, NetLimits.NAME_MAX);
    uuidCodec.encode(w, v.uuid);
    str(w, v.tenant, NAME_LIMITS.TENANT_MAX);
    w.bool(v.active).bool(v.persistent).bool(v.autostart);
  },
  decode(r) {
    return {
      name: checkNetworkName(rstr(r, NetLimits.NAME_MAX, 'name')),
      uuid: uuidCodec.decode(r),
      tenant: checkTenantName(rstr(r, NAME_LIMITS.TENANT_MAX, 'tenant')),
      active: r.bool('active'),
      persistent: r.bool('persistent'),
      autostart: r.bool('autostart'),
    };
  },
};

// ---------- action bodies ----------

type Obj<T> = Codec<T>;
const fields = <T extends object>(enc: (w: XdrWriter, v: T) => void, dec: (r: XdrReader) => T): Obj<T> => ({ encode: enc, decode: dec });

// No fields (shared's `empty` is typed Record<string, never>, which no `{ action }` body satisfies).
const none = fields<object>(
  () => undefined,
  () => ({}),
);
const uuidBody = fields<{ uuid: Buffer }>(
  (w, v) => uuidCodec.encode(w, v.uuid),
  (r) => ({ uuid: uuidCodec.decode(r) }),
);
const summaryBody = fields<{ network: NetworkSummary }>(
  (w, v) => networkSummaryCodec.encode(w, v.network),
  (r) => ({ network: networkSummaryCodec.decode(r) }),
);
const configBody = fields<{ config: NetworkConfig }>(
  (w, v) => networkConfigCodec.encode(w, v.config),
  (r) => ({ config: networkConfigCodec.decode(r) }),
);

// lookup: by name or by uuid (exactly one).
export type NetworkKey = { name: string; uuid?: undefined } | { uuid: Buffer; name?: undefined };
const lookupBody = fields<{ key: NetworkKey }>(
  (w, v) => {
    if (v.key.uuid !== undefined) {
      w.u32(1);
      uuidCodec.encode(w, v.key.uuid);
    } else {
      w.u32(0);
      str(w, v.key.name, NetLimits.NAME_MAX);
    }
  },
  (r) => {
    const kind = r.u32('key.kind');
    if (kind === 0) return { key: { name: checkNetworkName(rstr(r, NetLimits.NAME_MAX, 'key.name'), 'key.name') } };
    if (kind === 1) return { key: { uuid: uuidCodec.decode(r) } };
    throw bad('key.kind', `unknown kind ${kind}`);
  },
);

const listAnswer = fields<{ networks: NetworkSummary[] }>(
  (w, v) => void w.array(v.networks, NetLimits.NETWORKS_MAX, networkSummaryCodec.encode),
  (r) => ({ networks: r.array(NetLimits.NETWORKS_MAX, networkSummaryCodec.decode, 'networks') }),
);

// get: the summary with the config libvirt would format (the live one, or the persistent one for `inactive`).
const getRequest = fields<{ uuid: Buffer; inactive: boolean }>(
  (w, v) => (uuidCodec.encode(w, v.uuid), w.bool(v.inactive)),
  (r) => ({ uuid: uuidCodec.decode(r), inactive: r.bool('inactive') }),
);
const getAnswer = fields<{ network: NetworkSummary; config: NetworkConfig }>(
  (w, v) => (networkSummaryCodec.encode(w, v.network), networkConfigCodec.encode(w, v.config)),
  (r) => ({ network: networkSummaryCodec.decode(r), config: networkConfigCodec.decode(r) }),
);

const autostartRequest = fields<{ uuid: Buffer; autostart: boolean }>(
  (w, v) => (uuidCodec.encode(w, v.uuid), w.bool(v.autostart)),
  (r) => ({ uuid: uuidCodec.decode(r), autostart: r.bool('autostart') }),
);

// virNetworkUpdateCommand / virNetworkUpdateSection numbers (libvirt-network.h).
export const UpdateCommand = { MODIFY: 1, DELETE: 2, ADD_LAST: 3, ADD_FIRST: 4 } as const;
export const UpdateSection = { IP_DHCP_HOST: 4, IP_DHCP_RANGE: 5 } as const;
export type UpdateItem = { section: 4; host: DhcpHost } | { section: 5; range: DhcpRange };

export interface UpdateRequest {
  uuid: Buffer;
  command: number;
  parentIndex: number; // -1 = the first <ip> that has (or may have) DHCP
  live: boolean;
  config: boolean;
  item: UpdateItem;
}

const updateRequest = fields<UpdateRequest>(
  (w, v) => {
    uuidCodec.encode(w, v.uuid);
    w.u32(v.command).i32(v.parentIndex).bool(v.live).bool(v.config).u32(v.item.section);
    if (v.item.section === UpdateSection.IP_DHCP_HOST) dhcpHostCodec.encode(w, v.item.host);
    else rangeCodec.encode(w, v.item.range);
  },
  (r) => {
    const uuid = uuidCodec.decode(r);
    const command = checkRange(r.u32('command'), 1, 4, 'command');
    const parentIndex = checkRange(r.i32('parentIndex'), -1, NetLimits.IPS_MAX - 1, 'parentIndex');
    const live = r.bool('live');
    const config = r.bool('config');
    const section = r.u32('section');
    let item: UpdateItem;
    if (section === UpdateSection.IP_DHCP_HOST) item = { section, host: dhcpHostCodec.decode(r) };
    else if (section === UpdateSection.IP_DHCP_RANGE) item = { section, range: rangeCodec.decode(r) };
    else throw bad('section', `unsupported section ${section}`);
    return { uuid, command, parentIndex, live, config, item };
  },
);

// virNetworkIPDefByIndex: the <ip> a DHCP update applies to: an index, or (-1) the one with DHCP, else the first
// IPv4, else the first IPv6. -1 when there is none. Both ends use it: the front end to check the snippet, the helper to apply it.
export function ipIndexForUpdate(cfg: NetworkConfig, parentIndex: number): number {
  if (parentIndex >= 0) return parentIndex < cfg.ips.length ? parentIndex : -1;
  const fam = (ip: NetworkIp) => canonicalIp(ip.address)?.family;
  let i = cfg.ips.findIndex((ip) => ip.ranges.length > 0 || ip.hosts.length > 0);
  if (i < 0) i = cfg.ips.findIndex((ip) => fam(ip) === 4);
  if (i < 0) i = cfg.ips.findIndex((ip) => fam(ip) === 6);
  return i;
}

// Read actions: every answer is the helper's record (real name and tenant), never the front end's claim.
export const NETWORK_READ = actionGroup('NETWORK_READ', false, {
  list: action(0, none, listAnswer),
  lookup: action(1, lookupBody, summaryBody),
  get: action(2, getRequest, getAnswer),
});

// Write actions: the helper records the actor's tenant on a new network and refuses any change to another tenant's.
export const NETWORK_WRITE = actionGroup('NETWORK_WRITE', true, {
  define: action(0, configBody, summaryBody),
  create: action(1, configBody, summaryBody), // a transient network, started
  undefine: action(2, uuidBody, summaryBody),
  start: action(3, uuidBody, summaryBody),
  destroy: action(4, uuidBody, summaryBody),
  setAutostart: action(5, autostartRequest, summaryBody),
  update: action(6, updateRequest, summaryBody),
});

// The one JSON form of a config in the helper's state records; read back through the same strict decoder.
export function configToJson(c: NetworkConfig): Record<string, unknown> {
  return { ...c, uuid: c.uuid.toString('hex') };
}

export function configFromJson(j: unknown): NetworkConfig {
  const o = j as Record<string, unknown> | null;
  if (!o || typeof o !== 'object' || typeof o.uuid !== 'string' || !/^[0-9a-f]{32}$/.test(o.uuid)) throw bad('record', 'not a network config');
  return checkNetworkConfig({ ...(o as unknown as NetworkConfig), uuid: Buffer.from(o.uuid, 'hex') });
}

// A config built in memory (a parser's output, a stored record) passes the decoder's every check, or throws.
export function checkNetworkConfig(c: NetworkConfig): NetworkConfig {
  const w = new XdrWriter(256);
  try {
    networkConfigCodec.encode(w, c);
  } catch (e) {
    throw bad('config', e instanceof Error ? e.message : String(e));
  }
  const r = new XdrReader(w.finish(), 0);
  const out = networkConfigCodec.decode(r);
  r.ensureConsumed('config');
  return out;
}
