// SPDX-License-Identifier: Apache-2.0
// Domain stats, CPU pinning and tuning reads of the test driver, as libvirt 9.0's test driver computes them (helper side).
// The figures are libvirt's: counters derived from the wall clock in microseconds, fixed block sizes, fake file systems.
import {
  VG_ERR_CONFIG_UNSUPPORTED,
  VG_ERR_DOMAIN_ARG,
  VG_ERR_DOMAIN_STATE,
  VG_ERR_DOMAIN_INTERNAL,
  VG_ERR_ARG_UNSUPPORTED,
  VG_ERR_OP_UNSUPPORTED,
  VG_ERR_NO_METADATA,
} from '../../common/errors';
import type { DomainTuneKind, TuneParam } from '../../ipc/objects/domain-extra';
import {
  type BlkioDevice,
  type DiskDef,
  type DomainDef,
  NUMA_MODES,
  type XmlEl,
  formatBitmap,
  metadataIn,
  parseBitmap,
  withMetadata,
} from '../../ipc/objects/domain-def';
import { driverError } from './driver';
import type { Affect, BlockStats, DomainExtraDriver, FsInfoRow, IfaceAddrs, InterfaceStats, VcpuInfoRow } from './domain-extra-driver';

// What the extras need of one domain: its definitions and state, as the driver holds them.
export interface DomainView {
  def: DomainDef; // the live definition while active, else the config
  config: DomainDef | null; // the persistent config (null for a transient domain)
  active: boolean;
  persistent: boolean;
  id: number;
}

export interface DomainAccess {
  get(uuid: Buffer): DomainView; // throws the driver's "no domain" error
  nowMs(): number;
  // Commits new live and/or persistent definitions (null leaves that one as it is); throws if the disk refuses.
  commit(uuid: Buffer, live: DomainDef | null, config: DomainDef | null): void;
  // Changes of the domain object itself, made by the driver that owns it.
  lifecycle: Pick<DomainExtraDriver, 'setAutostart' | 'managedSave' | 'managedSaveRemove' | 'rename'>;
  // IPv4 address and prefix that interface addresses of a network start from (its first DHCP range, else its address).
  networkIpv4(name: string): { start: string; prefix: number } | null;
}

export const TEST_HOST_CPUS = 16; // VIR_NODEINFO_MAXCPUS of the test node: 2 nodes x 2 sockets x 2 cores x 2 threads
const VCPU_RUNNING = 1; // virVcpuState
// VIR_DOMAIN_MEMORY_STAT_* tags, in the order the test driver fills them.
const MemStat = {
  SWAP_IN: 0,
  SWAP_OUT: 1,
  MAJOR_FAULT: 2,
  MINOR_FAULT: 3,
  UNUSED: 4,
  AVAILABLE: 5,
  ACTUAL_BALLOON: 6,
  RSS: 7,
  USABLE: 8,
  LAST_UPDATE: 9,
  DISK_CACHES: 10,
  HUGETLB_PGALLOC: 11,
  HUGETLB_PGFAIL: 12,
} as const;
export const MEMORY_PARAM_UNLIMITED = 9007199254740991n; // VIR_DOMAIN_MEMORY_PARAM_UNLIMITED
const NUMATUNE_STRICT = 0;

const notRunning = () => driverError(VG_ERR_DOMAIN_STATE, 'domain is not running');
const allHostCpus = (): number[] => Array.from({ length: TEST_HOST_CPUS }, (_, i) => i);

// virDomainDiskIndexByName: a target name, or (with a leading '/') an unambiguous source path.
export function findDisk(def: DomainDef, name: string): DiskDef | undefined {
  let candidate: DiskDef | undefined;
  for (const d of def.disks) {
    if (!name.startsWith('/')) {
      if (d.target === name) return d;
    } else if (d.source === name && d.type !== 'volume') {
      if (candidate) return undefined;
      candidate = d;
    }
  }
  return candidate;
}

export class TestDomainExtra implements DomainExtraDriver {
  readonly #access: DomainAccess;

  constructor(access: DomainAccess) {
    this.#access = access;
  }

  hostCpus(): number {
    return TEST_HOST_CPUS;
  }

  #active(uuid: Buffer): DomainView {
    const v = this.#access.get(uuid);
    if (!v.active) throw notRunning();
    return v;
  }

  #statbase(): bigint {
    return BigInt(Math.floor(this.#access.nowMs())) * 1000n; // g_get_real_time(): microseconds
  }

  // virDomainObjGetOneDef: live and config together are refused; "current" is live when running.
  #oneDef(uuid: Buffer, flags: Affect): { def: DomainDef; live: boolean } {
    const v = this.#access.get(uuid);
    if (flags.live && flags.config)
      throw driverError(VG_ERR_DOMAIN_ARG, "Flags 'VIR_DOMAIN_AFFECT_LIVE' and 'VIR_DOMAIN_AFFECT_CONFIG' are mutually exclusive");
    const live = flags.live || (!flags.config && v.active);
    if (live && !v.active) throw notRunning();
    if (!live && !v.persistent) throw driverError(VG_ERR_DOMAIN_STATE, 'transient domains do not have any persistent config');
    return { def: live ? v.def : (v.config ?? v.def), live };
  }

  vcpus(uuid: Buffer, maxinfo: number): { info: VcpuInfoRow[]; maps: number[][] } {
    const v = this.#access.get(uuid);
    if (!v.active) throw driverError(VG_ERR_DOMAIN_STATE, 'cannot list vcpus for an inactive domain');
    const n = Math.min(maxinfo, v.def.vcpus);
    const cpuTimeNs = this.#statbase() / 10n; // the test driver's "increasing cpu time", as it computes it
    const info: VcpuInfoRow[] = [];
    const maps: number[][] = [];
    for (let i = 0; i < n; i++) {
      const map = v.def.vcpuPins.get(i) ?? v.def.cpumask ?? allHostCpus();
      maps.push([...map]);
      info.push({ number: i, state: VCPU_RUNNING, cpuTimeNs, cpu: map[map.length - 1] ?? -1 });
    }
    return { info, maps };
  }

  // virDomainDefGetVcpuPinInfoHelper: one map per vCPU up to the maximum count.
  vcpuPinInfo(uuid: Buffer, ncpumaps: number, flags: Affect): number[][] {
    const { def } = this.#oneDef(uuid, flags);
    const out: number[][] = [];
    for (let i = 0; i < def.vcpusMax && i < ncpumaps; i++) out.push([...(def.vcpuPins.get(i) ?? def.cpumask ?? allHostCpus())]);
    return out;
  }

  emulatorPinInfo(uuid: Buffer, flags: Affect): number[] {
    const { def } = this.#oneDef(uuid, flags);
    return [...(def.emulatorPin ?? def.cpumask ?? allHostCpus())];
  }

  blockStats(uuid: Buffer, path: string): BlockStats {
    if (path === '') throw driverError(VG_ERR_OP_UNSUPPORTED, 'summary statistics are not supported yet');
    const v = this.#active(uuid);
    if (!findDisk(v.def, path)) throw driverError(VG_ERR_DOMAIN_ARG, `invalid path: ${path}`);
    const s = this.#statbase();
    return { rdReq: s / 10n, rdBytes: s / 20n, wrReq: s / 30n, wrBytes: s / 40n, errs: s / 2_000_000n };
  }

  interfaceStats(uuid: Buffer, device: string): InterfaceStats {
    const v = this.#active(uuid);
    if (!findNet(v.def, device)) throw driverError(VG_ERR_DOMAIN_ARG, `'${device}' is not a known interface`);
    const s = this.#statbase();
    return {
      rxBytes: s / 10n,
      rxPackets: s / 100n,
      rxErrs: s / 1_000_000n,
      rxDrop: s / 2_000_000n,
      txBytes: s / 20n,
      txPackets: s / 110n,
      txErrs: s / 3_000_000n,
      txDrop: s / 4_000_000n,
    };
  }

  memoryStats(uuid: Buffer, maxStats: number): { tag: number; val: bigint }[] {
    const v = this.#active(uuid);
    if (!v.def.memballoon) return [];
    // `int cur_memory` in the test driver: the balloon size truncated to 32 bits, as it reports it.
    const cur = BigInt.asIntN(32, v.def.curMemKiB);
    const all: [number, bigint][] = [
      [MemStat.ACTUAL_BALLOON, cur],
      [MemStat.SWAP_IN, 0n],
      [MemStat.SWAP_OUT, 0n],
      [MemStat.MAJOR_FAULT, 0n],
      [MemStat.MINOR_FAULT, 0n],
      [MemStat.UNUSED, cur / 2n],
      [MemStat.AVAILABLE, cur],
      [MemStat.USABLE, cur / 2n],
      [MemStat.LAST_UPDATE, 627319920n],
      [MemStat.DISK_CACHES, cur / 8n],
      [MemStat.HUGETLB_PGALLOC, 0n],
      [MemStat.HUGETLB_PGFAIL, 0n],
      [MemStat.RSS, cur / 2n],
    ];
    return all.slice(0, maxStats).map(([tag, val]) => ({ tag, val: BigInt.asUintN(64, val) }));
  }

  blockInfo(uuid: Buffer, path: string): { allocation: bigint; capacity: bigint; physical: bigint } {
    const v = this.#access.get(uuid);
    const disk = findDisk(v.def, path);
    if (!disk) throw driverError(VG_ERR_DOMAIN_ARG, `invalid path ${path} not assigned to domain`);
    if (disk.source === null) throw driverError(VG_ERR_DOMAIN_ARG, `disk '${path}' does not currently have a source assigned`);
    return { capacity: 1099506450432n, allocation: 1099511627776n, physical: 1099511627776n };
  }

  // Every disk "has" an error, alternating VIR_DOMAIN_DISK_ERROR_UNSPEC (1) and NO_SPACE (2).
  diskErrors(uuid: Buffer, maxerrors: number): { errors: { disk: string; error: number }[]; nerrors: number } {
    const v = this.#active(uuid);
    if (maxerrors === 0) return { errors: [], nerrors: v.def.disks.length };
    const errors = v.def.disks.slice(0, maxerrors).map((d, i) => ({ disk: d.target, error: (i % 2) + 1 }));
    return { errors, nerrors: errors.length };
  }

  // Two ext4 file systems on the first disk of device 'disk', or none.
  fsInfo(uuid: Buffer): FsInfoRow[] {
    const v = this.#active(uuid);
    const disk = v.def.disks.find((d) => d.device === 'disk');
    if (!disk) return [];
    return [
      { mountpoint: '/', name: `${disk.target}1`, fstype: 'ext4', devAliases: [disk.target] },
      { mountpoint: '/boot', name: `${disk.target}2`, fstype: 'ext4', devAliases: [disk.target] },
    ];
  }

  interfaceAddresses(uuid: Buffer, source: number): IfaceAddrs[] {
    if (source < 0 || source > 2) throw driverError(VG_ERR_ARG_UNSUPPORTED, `Unknown IP address data source ${source}`);
    const v = this.#active(uuid);
    return v.def.nets.map((net, i) => {
      const addrs = [];
      if (net.type === 'network') {
        const ip = net.network === null ? null : this.#access.networkIpv4(net.network);
        // XXX: libvirt answers VIR_ERR_NO_NETWORK here; the catalogue gets that code with the network objects.
        if (!ip) throw driverError(VG_ERR_DOMAIN_INTERNAL, `no network with matching name '${net.network ?? ''}'`);
        // "different addresses per interface and domain": the range start plus 20 x (id - 1) + index + 1
        addrs.push({ type: 0, addr: ipv4Plus(ip.start, 20 * (v.id - 1) + i + 1), prefix: ip.prefix });
      } else addrs.push({ type: 0, addr: `192.168.0.${1 + i}`, prefix: 24 });
      return { name: net.ifname ?? '', hwaddr: net.mac, addrs };
    });
  }

  tuning(uuid: Buffer, kind: DomainTuneKind, flags: Affect): TuneParam[] {
    if (kind === 'scheduler') {
      this.#access.get(uuid);
      return [{ field: 'weight', type: 2, value: 50 }]; // the test driver's constant (its setter keeps nothing)
    }
    const { def } = this.#oneDef(uuid, flags);
    if (kind === 'memory')
      return [
        { field: 'hard_limit', type: 4, value: def.memtune.hardLimit ?? MEMORY_PARAM_UNLIMITED },
        { field: 'soft_limit', type: 4, value: def.memtune.softLimit ?? MEMORY_PARAM_UNLIMITED },
        { field: 'swap_hard_limit', type: 4, value: def.memtune.swapHardLimit ?? MEMORY_PARAM_UNLIMITED },
      ];
    if (kind === 'numa')
      return [
        { field: 'numa_mode', type: 1, value: def.numatune?.mode ?? NUMATUNE_STRICT },
        { field: 'numa_nodeset', type: 7, value: def.numatune?.nodeset ?? '' },
      ];
    const b = def.blkiotune;
    return [
      { field: 'weight', type: 2, value: b.weight },
      {
        field: 'device_weight',
        type: 7,
        value: b.devices
          .map((d) => (d.weight ? `${d.path},${d.weight}` : ''))
          .filter(Boolean)
          .join(','),
      },
      { field: 'device_read_iops_sec', type: 7, value: deviceList(b.devices, 'readIops') },
      { field: 'device_write_iops_sec', type: 7, value: deviceList(b.devices, 'writeIops') },
      { field: 'device_read_bytes_sec', type: 7, value: deviceList(b.devices, 'readBytes') },
      { field: 'device_write_bytes_sec', type: 7, value: deviceList(b.devices, 'writeBytes') },
    ];
  }

  setTuning(uuid: Buffer, kind: DomainTuneKind, params: TuneParam[], flags: Affect): void {
    validate(params, TUNE_FIELDS[kind]);
    if (kind === 'scheduler') {
      this.#access.get(uuid);
      return; // the test driver accepts a weight and keeps nothing
    }
    const v = this.#access.get(uuid);
    const { def, live } = this.#oneDef(uuid, flags);
    let next: DomainDef;
    if (kind === 'memory') {
      const get = (f: string) => params.find((p) => p.field === f)?.value as bigint | undefined;
      const norm = (x: bigint | undefined, old: bigint | null) => (x === undefined ? old : x >= MEMORY_PARAM_UNLIMITED ? null : x);
      const hard = get('hard_limit');
      const swap = get('swap_hard_limit');
      if (hard !== undefined || swap !== undefined) {
        // libvirt compares against the domain's current definition, whichever one is being changed
        const mem = hard ?? v.def.memtune.hardLimit ?? MEMORY_PARAM_UNLIMITED;
        const sw = swap ?? v.def.memtune.swapHardLimit ?? MEMORY_PARAM_UNLIMITED;
        if (mem > sw) throw driverError(VG_ERR_DOMAIN_ARG, 'memory hard_limit tunable value must be lower than or equal to swap_hard_limit');
      }
      const m = def.memtune;
      next = {
        ...def,
        memtune: { ...m, hardLimit: norm(hard, m.hardLimit), softLimit: norm(get('soft_limit'), m.softLimit), swapHardLimit: norm(swap, m.swapHardLimit) },
      };
    } else if (kind === 'blkio') {
      let { weight, devices } = def.blkiotune;
      for (const p of params) {
        if (p.field === 'weight') weight = p.value as number;
        else devices = mergeBlkio(devices, p.field as keyof typeof BLKIO_KEYS, p.value as string);
      }
      next = { ...def, blkiotune: { weight, devices } };
    } else {
      let mode = -1;
      let nodeset: string | null = null;
      for (const p of params) {
        if (p.field === 'numa_mode') {
          mode = p.value as number;
          if (mode < 0 || mode >= NUMA_MODES.length) throw driverError(VG_ERR_DOMAIN_ARG, `unsupported numatune mode: '${mode}'`);
        } else {
          const bits = parseBitmap(p.value as string);
          if (bits === null) throw driverError(VG_ERR_DOMAIN_ARG, `Failed to parse bitmap '${String(p.value)}'`);
          if (bits.length === 0) throw driverError(VG_ERR_DOMAIN_STATE, `Invalid nodeset of 'numatune': ${String(p.value)}`);
          nodeset = formatBitmap(bits);
        }
      }
      const cur = def.numatune;
      if (live && mode !== -1 && cur !== null && cur.mode !== mode) throw driverError(VG_ERR_DOMAIN_STATE, "can't change numatune mode for running domain");
      if (mode === -1 && nodeset === null) return;
      const ns = nodeset ?? cur?.nodeset ?? '';
      // virDomainNumatuneSet with static vCPU placement (the only one we model)
      if (ns === '') throw driverError(VG_ERR_CONFIG_UNSUPPORTED, "nodeset for NUMA memory tuning must be set if 'placement' is 'static'");
      next = { ...def, numatune: { mode: mode === -1 ? (cur?.mode ?? 0) : mode, nodeset: ns } };
    }
    this.#access.commit(uuid, live ? next : null, live ? null : next);
  }

  // A description or title as text; an element as its tree (the front end formats it).
  metadata(uuid: Buffer, type: number, uri: string | null, flags: Affect): { value: string; element: XmlEl | null } {
    const { def } = this.#oneDef(uuid, flags);
    if (type > 2) throw driverError(VG_ERR_DOMAIN_ARG, `unknown metadata type '${type}'`);
    const element = type === 2 && uri !== null ? metadataIn(def, uri) : null;
    const v = type === 0 ? def.description : type === 1 ? def.title : element === null ? null : '';
    if (v === null) throw driverError(VG_ERR_NO_METADATA, 'Requested metadata element is not present');
    return { value: v, element };
  }

  // virDomainObjSetMetadata: the live and/or persistent definition ("current" is one of them).
  // An element comes as the tree the front end built from the client's XML (its namespace checked against `uri`).
  setMetadata(uuid: Buffer, type: number, value: string | null, element: XmlEl | null, uri: string | null, flags: Affect): void {
    if (type > 2) throw driverError(VG_ERR_DOMAIN_ARG, `unknown metadata type '${type}'`);
    const v = this.#access.get(uuid);
    const live = flags.live || (!flags.config && v.active);
    const config = flags.config || (!flags.live && !v.active);
    if (live && !v.active) throw notRunning();
    if (config && !v.persistent) throw driverError(VG_ERR_DOMAIN_STATE, 'transient domains do not have any persistent config');
    const set = (def: DomainDef): DomainDef => {
      if (type === 0) return { ...def, description: value === null || value === '' ? null : value };
      if (type === 1) return { ...def, title: value === null || value === '' ? null : value };
      if (uri === null) throw driverError(VG_ERR_DOMAIN_ARG, 'uri in virDomainSetMetadata must not be NULL');
      try {
        return withMetadata(def, element, uri);
      } catch {
        throw driverError(VG_ERR_DOMAIN_ARG, 'the metadata element is not in the given namespace, or is the tenant namespace');
      }
    };
    this.#access.commit(uuid, live ? set(v.def) : null, config ? set(v.config ?? v.def) : null);
  }

  setAutostart(uuid: Buffer, autostart: boolean): void {
    this.#access.lifecycle.setAutostart(uuid, autostart);
  }

  reset(uuid: Buffer): void {
    this.#active(uuid);
  }

  managedSave(uuid: Buffer): void {
    this.#access.lifecycle.managedSave(uuid);
  }

  managedSaveRemove(uuid: Buffer): void {
    this.#access.lifecycle.managedSaveRemove(uuid);
  }

  rename(uuid: Buffer, newName: string, tenant: string): void {
    this.#access.lifecycle.rename(uuid, newName, tenant);
  }

  // testDomainPinVcpuFlags: the live definition of a running domain only.
  pinVcpu(uuid: Buffer, vcpu: number, cpus: number[]): void {
    const v = this.#access.get(uuid);
    if (!v.active) throw driverError(VG_ERR_DOMAIN_STATE, 'cannot pin vcpus on an inactive domain');
    if (vcpu >= v.def.vcpus) throw driverError(VG_ERR_DOMAIN_ARG, `requested vcpu '${vcpu}' is not present in the domain`);
    // XXX: libvirt keeps an empty pin (then reports CPU -1); we refuse it, as an empty cpuset cannot be stored.
    if (cpus.length === 0) throw driverError(VG_ERR_DOMAIN_ARG, 'Empty cpu list for pinning');
    const pins = new Map(v.def.vcpuPins);
    pins.set(vcpu, [...cpus]);
    this.#access.commit(uuid, { ...v.def, vcpuPins: pins }, null);
  }

  pinEmulator(uuid: Buffer, cpus: number[], flags: Affect): void {
    const { def, live } = this.#oneDef(uuid, flags);
    if (cpus.length === 0) throw driverError(VG_ERR_DOMAIN_ARG, 'Empty cpu list for pinning');
    const next = { ...def, emulatorPin: [...cpus] };
    this.#access.commit(uuid, live ? next : null, live ? null : next);
  }
}

const ULLONG = 4;
const TUNE_FIELDS = {
  memory: { hard_limit: ULLONG, soft_limit: ULLONG, swap_hard_limit: ULLONG },
  blkio: { weight: 2, device_weight: 7, device_read_iops_sec: 7, device_write_iops_sec: 7, device_read_bytes_sec: 7, device_write_bytes_sec: 7 },
  numa: { numa_mode: 1, numa_nodeset: 7 },
  scheduler: { weight: 2 },
} as const;

// virTypedParamsValidate: known fields, each of its one type, each at most once; libvirt's first complaint in sorted order.
function validate(params: TuneParam[], allowed: Record<string, number>): void {
  const sorted = [...params].sort((a, b) => (a.field < b.field ? -1 : a.field > b.field ? 1 : 0));
  const names = ['', 'int', 'uint', 'llong', 'ullong', 'double', 'boolean', 'string'];
  sorted.forEach((p, i) => {
    const want = Object.prototype.hasOwnProperty.call(allowed, p.field) ? allowed[p.field] : undefined;
    if (want === undefined) throw driverError(VG_ERR_ARG_UNSUPPORTED, `parameter '${p.field}' not supported`);
    if (i > 0 && sorted[i - 1].field === p.field) throw driverError(VG_ERR_DOMAIN_ARG, `parameter '${p.field}' occurs multiple times`);
    if (p.type !== want) throw driverError(VG_ERR_DOMAIN_ARG, `invalid type '${names[p.type]}' for parameter '${p.field}', expected '${names[want]}'`);
  });
}

const BLKIO_KEYS = {
  device_weight: 'weight',
  device_read_iops_sec: 'readIops',
  device_write_iops_sec: 'writeIops',
  device_read_bytes_sec: 'readBytes',
  device_write_bytes_sec: 'writeBytes',
} as const;

// virDomainDriverParseBlkioDeviceStr: "path,value,path,value"; merged into the devices by path.
function mergeBlkio(devs: BlkioDevice[], field: keyof typeof BLKIO_KEYS, text: string): BlkioDevice[] {
  if (text === '') return devs;
  const parts = text.split(',');
  if (parts.length % 2 !== 0) throw driverError(VG_ERR_DOMAIN_ARG, `unable to parse blkio device '${field}' '${text}'`);
  const key = BLKIO_KEYS[field];
  const max = key === 'readBytes' || key === 'writeBytes' ? (1n << 64n) - 1n : 0xffffffffn;
  const out = devs.map((d) => ({ ...d }));
  for (let i = 0; i < parts.length; i += 2) {
    const path = parts[i];
    const v = parts[i + 1];
    if (!/^[0-9]{1,20}$/.test(v) || BigInt(v) > max)
      throw driverError(VG_ERR_DOMAIN_ARG, `invalid value '${parts.slice(i + 1).join(',')}' for parameter '${field}' of device '${path}'`);
    const value = BigInt(v);
    let d = out.find((x) => x.path === path);
    if (!d) {
      if (value === 0n) continue;
      d = { path, weight: 0, readIops: 0n, writeIops: 0n, readBytes: 0n, writeBytes: 0n };
      out.push(d);
    }
    if (key === 'weight') d.weight = Number(value);
    else d[key] = value;
  }
  return out;
}

function deviceList(devs: DomainDef['blkiotune']['devices'], key: 'readIops' | 'writeIops' | 'readBytes' | 'writeBytes'): string {
  return devs
    .filter((d) => d[key] !== 0n)
    .map((d) => `${d.path},${d[key]}`)
    .join(',');
}

// virDomainNetFind: by MAC address when the text is one, else by interface name.
export function findNet(def: DomainDef, device: string): DomainDef['nets'][number] | undefined {
  const mac = /^[0-9a-fA-F]{1,2}(:[0-9a-fA-F]{1,2}){5}$/.test(device)
    ? device
        .split(':')
        .map((o) => o.toLowerCase().padStart(2, '0'))
        .join(':')
    : null;
  return mac !== null ? def.nets.find((n) => n.mac === mac) : def.nets.find((n) => n.ifname === device);
}

function ipv4Plus(start: string, offset: number): string {
  const n = start.split('.').reduce((acc, o) => acc * 256 + Number(o), 0) + offset;
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}
