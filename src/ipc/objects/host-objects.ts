// SPDX-License-Identifier: Apache-2.0
// Host objects over the helper IPC, pure: interfaces, node devices and host facts as typed configs, their validators and
// the action groups IFACE_READ/IFACE_WRITE/NODEDEV_READ/NODEDEV_WRITE/HOST_READ. The front end parses client XML into
// these shapes; the helper sees only typed fields, each checked here by the decoder (both ends refuse the same inputs).
import { createHash } from 'node:crypto';
import { VG_ERR_IPC_VALIDATION } from '../../common/errors';
import type { XdrReader, XdrWriter } from '../../common/xdr';
import { action, actionGroup } from '../actions';
import { type Codec, checkRange } from '../shared';

export { uuidFromString, uuidToString } from '../shared';

export const HostLimits = {
  NAME_MAX: 64, // interface and node device names (IFNAMSIZ is 16; libvirt itself sets no bound)
  IFACES_MAX: 1024, // REMOTE_INTERFACE_LIST_MAX is 16384; a host with more is not one we serve
  IFACE_CHILDREN_MAX: 64, // bridge/bond members
  IFACE_DEPTH_MAX: 3, // bridge > bond > ethernet is the deepest libvirt allows
  PROTOS_MAX: 2, // ipv4, ipv6
  IPS_MAX: 64,
  DEVICES_MAX: 4096,
  CAPS_MAX: 8,
  TEXT_MAX: 256, // free text of a system capability (vendor, version, ...)
  MTU_MAX: 100000, // virInterfaceDefParseMtu
  CPU_STATS_MAX: 16, // REMOTE_NODE_CPU_STATS_MAX
  CPUMAP_MAX: 2048, // REMOTE_CPUMAP_MAX
  CPU_MODELS_MAX: 8192, // REMOTE_CONNECT_CPU_MODELS_MAX
  CELLS_MAX: 1024, // REMOTE_NODE_MAX_CELLS
  SYSINFO_ENTRIES_MAX: 256,
  DOMCAPS_XML_MAX: 1024 * 1024, // as the capabilities XML of NODE_FACTS
} as const;

// An action without fields (`empty` of ../shared types as Record<string, never>, which no `{ action }` body satisfies).
const nothing: Codec<object> = { encode() {}, decode: () => ({}) };

// ---------- field rules ----------

// Interface and node device names: they become policy objects (`iface:NAME`, `nodedev:NAME`) and journal text.
const HOST_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.:@+-]{0,63}$/;
export const HOST_NAME_RULE = '1-64 characters of [A-Za-z0-9_.:@+-], not starting with . : @ + or -';
export const isHostObjectName = (s: string): boolean => HOST_NAME_RE.test(s);
export function checkHostName(s: string, field: string): string {
  if (!isHostObjectName(s)) throw VG_ERR_IPC_VALIDATION(field, HOST_NAME_RULE);
  return s;
}

// MAC addresses: 6 octets (ethernet) up to 20 (infiniband), colon separated.
const MAC_RE = /^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5,19}$/;
export const isMac = (s: string): boolean => MAC_RE.test(s);
const ADDR_RE = /^[0-9A-Fa-f.:]{1,45}$/; // an IPv4 or IPv6 literal's characters; libvirt keeps it as text
export const isAddress = (s: string): boolean => ADDR_RE.test(s);
const WWN_RE = /^(0x)?[0-9A-Fa-f]{16}$/; // virValidateWWN
export const isWwn = (s: string): boolean => WWN_RE.test(s);
// Free text shown in XML: printable, no markup characters, bounded.
const TEXT_RE = /^[^\x00-\x1f\x7f<>&]*$/;
export const isPlainText = (s: string): boolean => s.length <= HostLimits.TEXT_MAX && TEXT_RE.test(s);

function check<T>(ok: boolean, v: T, field: string, rule: string): T {
  if (!ok) throw VG_ERR_IPC_VALIDATION(field, rule);
  return v;
}

const mac = (s: string, f: string) => check(isMac(s), s, f, 'must be a MAC address');
const addr = (s: string, f: string) => check(isAddress(s), s, f, 'must be an IP address');
const wwn = (s: string, f: string) => check(isWwn(s), s, f, 'must be 16 hex digits');
const text = (s: string, f: string) => check(isPlainText(s), s, f, `must be printable text without <>& of at most ${HostLimits.TEXT_MAX} characters`);

const optStr = (w: XdrWriter, v: string | null, max: number) => w.optional(v, (w2, s) => void w2.string(s, max));
const readOpt = <T>(r: XdrReader, max: number, f: string, chk: (s: string, f: string) => T): T | null => r.optional((r2) => chk(r2.string(max, f), f));
const enumOf = <T extends string>(values: readonly T[], s: string, f: string): T =>
  check((values as readonly string[]).includes(s), s as T, f, `must be one of ${values.join(', ')}`);

// ---------- interfaces (virInterfaceDef) ----------

export const IFACE_TYPES = ['ethernet', 'bridge', 'bond', 'vlan'] as const;
export type IfaceType = (typeof IFACE_TYPES)[number];
export const START_MODES = ['', 'none', 'onboot', 'hotplug'] as const; // '' = not given
export const BOND_MODES = ['', 'balance-rr', 'active-backup', 'balance-xor', 'broadcast', '802.3ad', 'balance-tlb', 'balance-alb'] as const;
export const MII_CARRIERS = ['', 'ioctl', 'netif'] as const;
export const ARP_VALIDATES = ['', 'active', 'backup', 'all'] as const;
// virNetDevIfState; '' = not given.
export const LINK_STATES = ['', 'unknown', 'notpresent', 'down', 'lowerlayerdown', 'testing', 'dormant', 'up'] as const;

export interface IfaceIp {
  address: string;
  prefix: number; // 0 = not given
}
export interface IfaceProto {
  family: 'ipv4' | 'ipv6';
  autoconf: boolean; // ipv6 only
  dhcp: boolean;
  peerdns: -1 | 0 | 1; // -1 = not given
  ips: IfaceIp[];
  gateway: string | null;
}
export interface IfaceBond {
  mode: (typeof BOND_MODES)[number];
  monitor: 'none' | 'miimon' | 'arpmon';
  freq: number;
  downdelay: number;
  updelay: number;
  carrier: (typeof MII_CARRIERS)[number];
  interval: number;
  target: string | null;
  validate: (typeof ARP_VALIDATES)[number];
}
export interface IfaceDef {
  type: IfaceType;
  name: string;
  startmode: (typeof START_MODES)[number]; // top level only
  mtu: number; // 0 = not given; top level only
  protos: IfaceProto[]; // top level only
  linkSpeed: number; // 0 = not given; not for bridges
  linkState: (typeof LINK_STATES)[number];
  mac: string | null; // ethernet only
  stp: -1 | 0 | 1; // bridge: -1 = not given
  delay: string | null; // bridge forward delay, kept as text as libvirt does
  bond: IfaceBond | null;
  vlanTag: string | null;
  vlanDev: string | null;
  members: IfaceDef[]; // bridge and bond
}

// Which member types a parent allows (virInterfaceDefParseXML); null = top level.
export function memberAllowed(parent: IfaceType | null, child: IfaceType): boolean {
  if (parent === null) return true;
  if (parent === 'bond') return child === 'ethernet';
  if (parent === 'bridge') return child !== 'bridge';
  return false;
}

const protoCodec: Codec<IfaceProto> = {
  encode(w, p) {
    w.string(p.family, 8).bool(p.autoconf).bool(p.dhcp).i32(p.peerdns);
    w.array(p.ips, HostLimits.IPS_MAX, (w2, ip) => void w2.string(ip.address, 64).i32(ip.prefix));
    optStr(w, p.gateway, 64);
  },
  decode(r) {
    const family = enumOf(['ipv4', 'ipv6'] as const, r.string(8, 'proto.family'), 'proto.family');
    const autoconf = r.bool('proto.autoconf');
    if (autoconf && family !== 'ipv6') throw VG_ERR_IPC_VALIDATION('proto.autoconf', 'ipv6 only');
    return {
      family,
      autoconf,
      dhcp: r.bool('proto.dhcp'),
      peerdns: checkRange(r.i32('proto.peerdns'), -1, 1, 'proto.peerdns') as -1 | 0 | 1,
      ips: r.array(
        HostLimits.IPS_MAX,
        (r2) => ({ address: addr(r2.string(64, 'ip.address'), 'ip.address'), prefix: checkRange(r2.i32('ip.prefix'), 0, 128, 'ip.prefix') }),
        'proto.ips',
      ),
      gateway: readOpt(r, 64, 'proto.gateway', addr),
    };
  },
};

const bondCodec: Codec<IfaceBond> = {
  encode(w, b) {
    w.string(b.mode, 16).string(b.monitor, 8).i32(b.freq).i32(b.downdelay).i32(b.updelay).string(b.carrier, 8).i32(b.interval);
    optStr(w, b.target, 64);
    w.string(b.validate, 8);
  },
  decode(r) {
    const b: IfaceBond = {
      mode: enumOf(BOND_MODES, r.string(16, 'bond.mode'), 'bond.mode'),
      monitor: enumOf(['none', 'miimon', 'arpmon'] as const, r.string(8, 'bond.monitor'), 'bond.monitor'),
      freq: checkRange(r.i32('bond.freq'), -0x80000000, 0x7fffffff, 'bond.freq'),
      downdelay: checkRange(r.i32('bond.downdelay'), -0x80000000, 0x7fffffff, 'bond.downdelay'),
      updelay: checkRange(r.i32('bond.updelay'), -0x80000000, 0x7fffffff, 'bond.updelay'),
      carrier: enumOf(MII_CARRIERS, r.string(8, 'bond.carrier'), 'bond.carrier'),
      interval: checkRange(r.i32('bond.interval'), -0x80000000, 0x7fffffff, 'bond.interval'),
      target: readOpt(r, 64, 'bond.target', addr),
      validate: enumOf(ARP_VALIDATES, r.string(8, 'bond.validate'), 'bond.validate'),
    };
    if (b.monitor === 'arpmon' && b.target === null) throw VG_ERR_IPC_VALIDATION('bond.target', 'arp monitoring needs a target');
    return b;
  },
};

function encodeIface(w: XdrWriter, d: IfaceDef, depth: number): void {
  if (depth > HostLimits.IFACE_DEPTH_MAX) throw VG_ERR_IPC_VALIDATION('iface', 'nested too deep');
  w.string(d.type, 8).string(d.name, HostLimits.NAME_MAX).string(d.startmode, 8).u32(d.mtu);
  w.array(d.protos, HostLimits.PROTOS_MAX, protoCodec.encode);
  w.u32(d.linkSpeed).string(d.linkState, 16);
  optStr(w, d.mac, 64);
  w.i32(d.stp);
  optStr(w, d.delay, 16);
  w.optional(d.bond, bondCodec.encode);
  optStr(w, d.vlanTag, 8);
  optStr(w, d.vlanDev, HostLimits.NAME_MAX);
  w.array(d.members, HostLimits.IFACE_CHILDREN_MAX, (w2, m) => encodeIface(w2, m, depth + 1));
}

function decodeIface(r: XdrReader, parent: IfaceType | null, depth: number): IfaceDef {
  if (depth > HostLimits.IFACE_DEPTH_MAX) throw VG_ERR_IPC_VALIDATION('iface', 'nested too deep');
  const type = enumOf(IFACE_TYPES, r.string(8, 'iface.type'), 'iface.type');
  if (!memberAllowed(parent, type)) throw VG_ERR_IPC_VALIDATION('iface.type', `a ${parent} cannot hold a ${type}`);
  const d: IfaceDef = {
    type,
    name: checkHostName(r.string(HostLimits.NAME_MAX, 'iface.name'), 'iface.name'),
    startmode: enumOf(START_MODES, r.string(8, 'iface.startmode'), 'iface.startmode'),
    mtu: checkRange(r.u32('iface.mtu'), 0, HostLimits.MTU_MAX, 'iface.mtu'),
    protos: r.array(HostLimits.PROTOS_MAX, protoCodec.decode, 'iface.protos'),
    linkSpeed: r.u32('iface.linkSpeed'),
    linkState: enumOf(LINK_STATES, r.string(16, 'iface.linkState'), 'iface.linkState'),
    mac: readOpt(r, 64, 'iface.mac', mac),
    stp: checkRange(r.i32('iface.stp'), -1, 1, 'iface.stp') as -1 | 0 | 1,
    delay: readOpt(r, 16, 'iface.delay', (s, f) => check(/^[0-9]{1,6}(\.[0-9]{1,6})?$/.test(s), s, f, 'must be a number of seconds')),
    bond: r.optional(bondCodec.decode),
    vlanTag: readOpt(r, 8, 'iface.vlanTag', (s, f) => check(/^[0-9]{1,4}$/.test(s), s, f, 'must be a VLAN id')),
    vlanDev: readOpt(r, HostLimits.NAME_MAX, 'iface.vlanDev', checkHostName),
    members: [],
  };
  d.members = r.array(HostLimits.IFACE_CHILDREN_MAX, (r2) => decodeIface(r2, type, depth + 1), 'iface.members');
  checkIfaceShape(d, parent);
  return d;
}

// Which fields a type (and level) may carry: what libvirt's parser would have kept.
export function checkIfaceShape(d: IfaceDef, parent: IfaceType | null): void {
  const bad = (f: string, why: string) => {
    throw VG_ERR_IPC_VALIDATION(`iface.${f}`, why);
  };
  if (parent !== null && (d.startmode !== '' || d.mtu !== 0 || d.protos.length > 0)) bad('startmode', 'start mode, mtu and protocols are top level only');
  if (d.type === 'bridge' && (d.linkSpeed !== 0 || d.linkState !== '')) bad('link', 'a bridge has no link state');
  if (d.type !== 'ethernet' && d.mac !== null) bad('mac', 'ethernet only');
  if (d.type !== 'bridge' && (d.stp !== -1 || d.delay !== null)) bad('stp', 'bridge only');
  if ((d.type === 'bond') !== (d.bond !== null)) bad('bond', 'bond interfaces only, and always there');
  if ((d.type === 'vlan') !== (d.vlanTag !== null && d.vlanDev !== null)) bad('vlanTag', 'vlan interfaces only, and always there');
  if (d.type !== 'bridge' && d.type !== 'bond' && d.members.length > 0) bad('members', 'bridge and bond only');
  if (new Set(d.protos.map((p) => p.family)).size !== d.protos.length) bad('protos', 'one protocol per family');
}

export const ifaceDefCodec: Codec<IfaceDef> = { encode: (w, d) => encodeIface(w, d, 0), decode: (r) => decodeIface(r, null, 0) };

export interface IfaceSummary {
  name: string;
  mac: string; // '' when the interface has none (not ethernet)
  active: boolean;
}

export const ifaceSummaryCodec: Codec<IfaceSummary> = {
  encode: (w, s) => void w.string(s.name, HostLimits.NAME_MAX).string(s.mac, 64).bool(s.active),
  decode: (r) => {
    const name = checkHostName(r.string(HostLimits.NAME_MAX, 'name'), 'name');
    const m = r.string(64, 'mac');
    return { name, mac: m === '' ? '' : mac(m, 'mac'), active: r.bool('active') };
  },
};

const nameReq: Codec<{ name: string }> = {
  encode: (w, v) => void w.string(v.name, HostLimits.NAME_MAX),
  decode: (r) => ({ name: checkHostName(r.string(HostLimits.NAME_MAX, 'name'), 'name') }),
};

export const IFACE_READ = actionGroup('IFACE_READ', false, {
  list: action(0, nothing, {
    encode: (w, v: { ifaces: IfaceSummary[] }) => void w.array(v.ifaces, HostLimits.IFACES_MAX, ifaceSummaryCodec.encode),
    decode: (r) => ({ ifaces: r.array(HostLimits.IFACES_MAX, ifaceSummaryCodec.decode, 'ifaces') }),
  }),
  get: action(1, nameReq, {
    encode: (w, v: { def: IfaceDef; active: boolean }) => (ifaceDefCodec.encode(w, v.def), void w.bool(v.active)),
    decode: (r) => ({ def: ifaceDefCodec.decode(r), active: r.bool('active') }),
  }),
});

export const IFACE_WRITE = actionGroup('IFACE_WRITE', true, {
  define: action(
    0,
    { encode: (w, v: { def: IfaceDef }) => ifaceDefCodec.encode(w, v.def), decode: (r) => ({ def: ifaceDefCodec.decode(r) }) },
    ifaceSummaryCodec,
  ),
  undefine: action(1, nameReq, nothing),
  start: action(2, nameReq, nothing),
  stop: action(3, nameReq, nothing),
  begin: action(4, nothing, nothing),
  commit: action(5, nothing, nothing),
  rollback: action(6, nothing, nothing),
});

// ---------- node devices (virNodeDeviceDef, the capabilities the test driver has) ----------

export interface SystemCap {
  type: 'system';
  product: string | null;
  hardware: { vendor: string | null; version: string | null; serial: string | null; uuid: Buffer };
  firmware: { vendor: string | null; version: string | null; releaseDate: string | null };
}
export interface ScsiHostCap {
  type: 'scsi_host';
  host: number;
  uniqueId: number; // -1 = not given
  fc: { wwnn: string; wwpn: string; fabricWwn: string | null } | null;
  vports: { max: number; inUse: number } | null; // vport_ops
}
export type NodeDevCap = SystemCap | ScsiHostCap;

// Node devices have no uuid; their events carry this one, derived from the name, so an event filter for one device
// (CONNECT_NODE_DEVICE_EVENT_REGISTER_ANY with a device) works like the uuid filters of the other objects.
export const nodeDevEventUuid = (name: string): Buffer => createHash('sha256').update(`nodedev:${name}`).digest().subarray(0, 16);

export interface NodeDevDef {
  name: string;
  parent: string | null;
  caps: NodeDevCap[];
}

// What a vHBA creation needs (virNodeDeviceCreateXML of an fc_host scsi_host): where, and the new port's names.
export interface VhbaRequest {
  parent: string | null;
  parentWwnn: string | null;
  parentWwpn: string | null;
  parentFabricWwn: string | null;
  wwnn: string;
  wwpn: string;
}

const capCodec: Codec<NodeDevCap> = {
  encode(w, c) {
    w.string(c.type, 16);
    if (c.type === 'system') {
      optStr(w, c.product, HostLimits.TEXT_MAX);
      for (const v of [c.hardware.vendor, c.hardware.version, c.hardware.serial]) optStr(w, v, HostLimits.TEXT_MAX);
      w.opaqueFixed(c.hardware.uuid, 16);
      for (const v of [c.firmware.vendor, c.firmware.version, c.firmware.releaseDate]) optStr(w, v, HostLimits.TEXT_MAX);
    } else {
      w.u32(c.host).i32(c.uniqueId);
      w.optional(c.fc, (w2, fc) => {
        w2.string(fc.wwnn, 18).string(fc.wwpn, 18);
        optStr(w2, fc.fabricWwn, 18);
      });
      w.optional(c.vports, (w2, v) => void w2.u32(v.max).u32(v.inUse));
    }
  },
  decode(r) {
    const type = enumOf(['system', 'scsi_host'] as const, r.string(16, 'cap.type'), 'cap.type');
    if (type === 'system') {
      const t = (f: string) => readOpt(r, HostLimits.TEXT_MAX, f, text);
      const product = t('product');
      const hardware = {
        vendor: t('hardware.vendor'),
        version: t('hardware.version'),
        serial: t('hardware.serial'),
        uuid: Buffer.from(r.opaqueFixed(16, 'uuid')),
      };
      return { type, product, hardware, firmware: { vendor: t('firmware.vendor'), version: t('firmware.version'), releaseDate: t('firmware.releaseDate') } };
    }
    return {
      type,
      host: checkRange(r.u32('scsi.host'), 0, 0x7fffffff, 'scsi.host'),
      uniqueId: checkRange(r.i32('scsi.uniqueId'), -1, 0x7fffffff, 'scsi.uniqueId'),
      fc: r.optional((r2) => ({
        wwnn: wwn(r2.string(18, 'fc.wwnn'), 'fc.wwnn'),
        wwpn: wwn(r2.string(18, 'fc.wwpn'), 'fc.wwpn'),
        fabricWwn: readOpt(r2, 18, 'fc.fabricWwn', wwn),
      })),
      vports: r.optional((r2) => ({
        max: checkRange(r2.u32('vports.max'), 0, 0xffff, 'vports.max'),
        inUse: checkRange(r2.u32('vports.inUse'), 0, 0xffff, 'vports.inUse'),
      })),
    };
  },
};

export const nodeDevDefCodec: Codec<NodeDevDef> = {
  encode(w, d) {
    w.string(d.name, HostLimits.NAME_MAX);
    optStr(w, d.parent, HostLimits.NAME_MAX);
    w.array(d.caps, HostLimits.CAPS_MAX, capCodec.encode);
  },
  decode(r) {
    const name = checkHostName(r.string(HostLimits.NAME_MAX, 'dev.name'), 'dev.name');
    const parent = readOpt(r, HostLimits.NAME_MAX, 'dev.parent', checkHostName);
    const caps = r.array(HostLimits.CAPS_MAX, capCodec.decode, 'dev.caps');
    if (caps.length === 0) throw VG_ERR_IPC_VALIDATION('dev.caps', 'a device has at least one capability');
    return { name, parent, caps };
  },
};

export const vhbaCodec: Codec<VhbaRequest> = {
  encode(w, v) {
    for (const s of [v.parent, v.parentWwnn, v.parentWwpn, v.parentFabricWwn]) optStr(w, s, HostLimits.NAME_MAX);
    w.string(v.wwnn, 18).string(v.wwpn, 18);
  },
  decode(r) {
    const v: VhbaRequest = {
      parent: readOpt(r, HostLimits.NAME_MAX, 'parent', checkHostName),
      parentWwnn: readOpt(r, HostLimits.NAME_MAX, 'parentWwnn', wwn),
      parentWwpn: readOpt(r, HostLimits.NAME_MAX, 'parentWwpn', wwn),
      parentFabricWwn: readOpt(r, HostLimits.NAME_MAX, 'parentFabricWwn', wwn),
      wwnn: wwn(r.string(18, 'wwnn'), 'wwnn'),
      wwpn: wwn(r.string(18, 'wwpn'), 'wwpn'),
    };
    if ((v.parentWwnn === null) !== (v.parentWwpn === null)) throw VG_ERR_IPC_VALIDATION('parentWwnn', 'parent wwnn and wwpn come together');
    return v;
  },
};

export const NODEDEV_READ = actionGroup('NODEDEV_READ', false, {
  list: action(0, nothing, {
    encode: (w, v: { devices: NodeDevDef[] }) => void w.array(v.devices, HostLimits.DEVICES_MAX, nodeDevDefCodec.encode),
    decode: (r) => ({ devices: r.array(HostLimits.DEVICES_MAX, nodeDevDefCodec.decode, 'devices') }),
  }),
  get: action(1, nameReq, nodeDevDefCodec),
});

export const NODEDEV_WRITE = actionGroup('NODEDEV_WRITE', true, {
  create: action(0, vhbaCodec, nameReq),
  destroy: action(1, nameReq, nothing),
});

// ---------- host facts beyond NODE_FACTS ----------

// <sysinfo type='smbios'>: sections (bios, system, ...) of named entries, formatted by the front end.
export interface Sysinfo {
  type: 'smbios';
  sections: { name: string; entries: { name: string; value: string }[] }[];
}

const sysinfoCodec: Codec<{ sysinfo: Sysinfo }> = {
  encode(w, { sysinfo }) {
    w.string(sysinfo.type, 16);
    w.array(sysinfo.sections, 16, (w2, s) => {
      w2.string(s.name, 32);
      w2.array(s.entries, HostLimits.SYSINFO_ENTRIES_MAX, (w3, e) => void w3.string(e.name, 64).string(e.value, HostLimits.TEXT_MAX));
    });
  },
  decode(r) {
    const type = enumOf(['smbios'] as const, r.string(16, 'sysinfo.type'), 'sysinfo.type');
    const sections = r.array(
      16,
      (r2) => ({
        name: enumOf(['bios', 'system', 'baseBoard', 'chassis', 'processor', 'memory_device', 'oemStrings'] as const, r2.string(32, 'section'), 'section'),
        entries: r2.array(
          HostLimits.SYSINFO_ENTRIES_MAX,
          (r3) => {
            const name = r3.string(64, 'entry.name');
            check(/^[a-z_]{1,32}$/.test(name), name, 'entry.name', 'a lower-case word');
            return { name, value: text(r3.string(HostLimits.TEXT_MAX, 'entry.value'), 'entry.value') };
          },
          'entries',
        ),
      }),
      'sections',
    );
    return { sysinfo: { type, sections } };
  },
};

export interface CpuStat {
  field: string;
  value: bigint;
}
const CPU_STAT_FIELDS = ['kernel', 'user', 'idle', 'iowait', 'intr', 'utilization'] as const; // VIR_NODE_CPU_STATS_*

// virConnectGetDomainCapabilities' optional arguments: the helper shows them back in messages only. An emulator path of
// at most 4096 bytes, the others at most 64; printable ASCII without markup or quote characters.
export interface DomainCapsQuery {
  emulatorbin: string | null;
  arch: string | null;
  machine: string | null;
  virttype: string | null;
}
const DOMCAPS_FIELDS = [
  ['emulatorbin', 4096],
  ['arch', 64],
  ['machine', 64],
  ['virttype', 64],
] as const;
const DOMCAPS_TEXT_RE = /^[\x20-\x7e]*$/;
// The first field that breaks the rule, or null.
export function badDomainCapsField(q: DomainCapsQuery): string | null {
  for (const [f, max] of DOMCAPS_FIELDS) {
    const v = q[f];
    if (v !== null && (v.length === 0 || v.length > max || !DOMCAPS_TEXT_RE.test(v) || /[<>&'"]/.test(v))) return f;
  }
  return null;
}
const domainCapsQueryCodec: Codec<DomainCapsQuery> = {
  encode(w, q) {
    for (const [f, max] of DOMCAPS_FIELDS) w.optional(q[f], (w2, v) => void w2.string(v, max));
  },
  decode(r) {
    const q: DomainCapsQuery = { emulatorbin: null, arch: null, machine: null, virttype: null };
    for (const [f, max] of DOMCAPS_FIELDS) q[f] = r.optional((r2) => r2.string(max, f), f);
    const bad = badDomainCapsField(q);
    if (bad !== null) throw VG_ERR_IPC_VALIDATION(bad, 'printable ASCII without <>&\'", 1-4096 bytes (emulatorbin) or 1-64');
    return q;
  },
};

export const HOST_READ = actionGroup('HOST_READ', false, {
  sysinfo: action(0, nothing, sysinfoCodec),
  cpuStats: action(
    1,
    { encode: (w, v: { cpuNum: number }) => void w.i32(v.cpuNum), decode: (r) => ({ cpuNum: checkRange(r.i32('cpuNum'), -1, 0xffff, 'cpuNum') }) },
    {
      encode: (w, v: { stats: CpuStat[] }) => void w.array(v.stats, HostLimits.CPU_STATS_MAX, (w2, s) => void w2.string(s.field, 16).u64(s.value)),
      decode: (r) => ({
        stats: r.array(
          HostLimits.CPU_STATS_MAX,
          (r2) => ({ field: enumOf(CPU_STAT_FIELDS, r2.string(16, 'field'), 'field'), value: r2.u64('value') }),
          'stats',
        ),
      }),
    },
  ),
  cpuMap: action(2, nothing, {
    encode: (w, v: { cpus: number; online: number; map: Buffer }) => void w.u32(v.cpus).u32(v.online).opaque(v.map, HostLimits.CPUMAP_MAX),
    decode: (r) => {
      const cpus = checkRange(r.u32('cpus'), 0, HostLimits.CPUMAP_MAX * 8, 'cpus');
      const online = checkRange(r.u32('online'), 0, cpus, 'online');
      const map = Buffer.from(r.opaque(HostLimits.CPUMAP_MAX, 'map'));
      if (map.length !== Math.ceil(cpus / 8)) throw VG_ERR_IPC_VALIDATION('map', 'one bit per CPU');
      return { cpus, online, map };
    },
  }),
  cpuModels: action(
    3,
    {
      encode: (w, v: { arch: string }) => void w.string(v.arch, 32),
      decode: (r) => {
        const arch = r.string(32, 'arch');
        return { arch: check(/^[a-z0-9_]{1,32}$/.test(arch), arch, 'arch', 'an architecture name') };
      },
    },
    {
      encode: (w, v: { models: string[] }) => void w.array(v.models, HostLimits.CPU_MODELS_MAX, (w2, m) => void w2.string(m, 64)),
      decode: (r) => ({
        models: r.array(
          HostLimits.CPU_MODELS_MAX,
          (r2) => {
            const m = r2.string(64, 'model');
            return check(/^[A-Za-z0-9_.+-]{1,64}$/.test(m), m, 'model', 'a CPU model name');
          },
          'models',
        ),
      }),
    },
  ),
  freePages: action(
    4,
    {
      encode: (w, v: { pages: number[]; startCell: number; cellCount: number }) =>
        void w
          .array(v.pages, HostLimits.CELLS_MAX, (w2, p) => void w2.u32(p))
          .i32(v.startCell)
          .u32(v.cellCount),
      decode: (r) => {
        const pages = r.array(HostLimits.CELLS_MAX, (r2) => r2.u32('page'), 'pages');
        const startCell = checkRange(r.i32('startCell'), -1, HostLimits.CELLS_MAX, 'startCell');
        const cellCount = checkRange(r.u32('cellCount'), 0, HostLimits.CELLS_MAX, 'cellCount');
        if (pages.length * cellCount > HostLimits.CELLS_MAX) throw VG_ERR_IPC_VALIDATION('cellCount', 'pages x cells exceeds the list bound');
        return { pages, startCell, cellCount };
      },
    },
    {
      encode: (w, v: { counts: bigint[] }) => void w.array(v.counts, HostLimits.CELLS_MAX, (w2, c) => void w2.u64(c)),
      decode: (r) => ({ counts: r.array(HostLimits.CELLS_MAX, (r2) => r2.u64('count'), 'counts') }),
    },
  ),
  // virConnectGetDomainCapabilities: the XML as the driver formats it (absent driver member: not supported).
  domainCapabilities: action(5, domainCapsQueryCodec, {
    encode: (w, v: { xml: string }) => void w.string(v.xml, HostLimits.DOMCAPS_XML_MAX),
    decode: (r) => ({ xml: r.string(HostLimits.DOMCAPS_XML_MAX, 'xml') }),
  }),
});
