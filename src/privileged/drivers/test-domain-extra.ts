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
import { type DomainTuneKind, PERF_EVENTS, type TuneParam } from '../../ipc/objects/domain-extra';
import {
  type BlkioDevice,
  type DiskDef,
  type DomainDef,
  NUMA_MODES,
  type XmlEl,
  devicesOf,
  formatBitmap,
  metadataIn,
  parseBitmap,
  withMetadata,
} from '../../ipc/objects/domain-def';
import { KEYCODES, KEYCODE_SET_NAMES } from './keycodes';
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

// The test driver's private per-domain state (testDomainObjPrivate): kept in memory only, as libvirt keeps it.
interface PrivateState {
  seconds: bigint;
  nseconds: number;
  frozen: [boolean, boolean]; // '/' and '/boot'
  iothreadPoll: Map<number, { maxNs: bigint; grow: number; shrink: number }>;
}

export class TestDomainExtra implements DomainExtraDriver {
  readonly #access: DomainAccess;
  readonly #priv = new Map<string, PrivateState>();

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

  // ---------- part B (issue 12): the rest of the test driver's hypervisor table ----------

  #private(uuid: Buffer): PrivateState {
    const key = uuid.toString('hex');
    let p = this.#priv.get(key);
    if (!p) {
      p = { seconds: 627319920n, nseconds: 0, frozen: [false, false], iothreadPoll: new Map() };
      // testDomainGenerateIOThreadInfos: the iothreads the definition brings, at their default polling
      for (const t of iothreadsOf(this.#access.get(uuid).def).ids) p.iothreadPoll.set(t.id, { maxNs: 32768n, grow: 0, shrink: 0 });
      this.#priv.set(key, p);
    }
    return p;
  }

  // virDomainObjGetDefs: live and/or config ("current" is whichever the state says).
  #defs(uuid: Buffer, flags: Affect): { v: DomainView; live: boolean; config: boolean } {
    const v = this.#access.get(uuid);
    const live = flags.live || (!flags.config && v.active);
    const config = flags.config || (!flags.live && !v.active);
    if (live && !v.active) throw notRunning();
    if (config && !v.persistent) throw driverError(VG_ERR_DOMAIN_STATE, 'transient domains do not have any persistent config');
    return { v, live, config };
  }

  #commitOne(uuid: Buffer, live: boolean, next: DomainDef): void {
    this.#access.commit(uuid, live ? next : null, live ? null : next);
  }

  checkActive(uuid: Buffer): void {
    this.#active(uuid);
  }

  time(uuid: Buffer): { seconds: bigint; nseconds: number } {
    const v = this.#access.get(uuid);
    if (!v.active) throw notRunning(); // the test driver asks for RUNNING; a paused domain answers as libvirt's does not
    const p = this.#private(uuid);
    return { seconds: p.seconds, nseconds: p.nseconds };
  }

  setTime(uuid: Buffer, seconds: bigint, nseconds: number): void {
    this.#active(uuid);
    const p = this.#private(uuid);
    p.seconds = seconds;
    p.nseconds = nseconds;
  }

  setLifecycleAction(uuid: Buffer, type: number, action: number, flags: Affect): void {
    // virDomainDefLifecycleActionAllowed: poweroff and reboot take no coredump action
    if (type !== 2 && action >= 4)
      throw driverError(VG_ERR_CONFIG_UNSUPPORTED, `Lifecycle event '${LIFECYCLE_TYPES[type]}' doesn't support '${LIFECYCLE_ACTIONS[action]}' action`);
    const { v, live, config } = this.#defs(uuid, flags);
    const key = (['onPoweroff', 'onReboot', 'onCrash'] as const)[type];
    const set = (d: DomainDef): DomainDef => ({ ...d, [key]: LIFECYCLE_ACTIONS[action] });
    this.#access.commit(uuid, live ? set(v.def) : null, config ? set(v.config ?? v.def) : null);
  }

  setMemoryStatsPeriod(uuid: Buffer, period: number, flags: Affect): void {
    const { def, live } = this.#oneDef(uuid, flags);
    const i = def.devices.findIndex((d) => d.tag === 'memballoon' && d.attrs.model !== 'none');
    if (i === -1) throw driverError(VG_ERR_DOMAIN_INTERNAL, 'No memory balloon device configured, can not set the collection period');
    const node = def.devices[i];
    const rest = node.kids.filter((c) => c.tag !== 'stats');
    const kids = period > 0 ? [el('stats', { period: String(period) }), ...rest] : rest;
    const devices = def.devices.map((d, j) => (j === i ? { ...node, kids } : d));
    this.#commitOne(uuid, live, { ...def, devices });
  }

  iothreadInfo(uuid: Buffer, flags: Affect): { id: number; cpus: number[] }[] {
    const { def } = this.#oneDef(uuid, flags);
    // virDomainDriverGetIOThreadsConfig: the thread's pin, else <vcpu cpuset>, else every bit of a vCPU-count-wide map
    const all = Array.from({ length: def.vcpus }, (_, i) => i);
    return iothreadsOf(def).ids.map((t) => ({ id: t.id, cpus: [...(def.iothreadPins.get(t.id) ?? def.cpumask ?? all)] }));
  }

  addIothread(uuid: Buffer, id: number, flags: Affect): void {
    const { def, live } = this.#oneDef(uuid, flags);
    const t = iothreadsOf(def);
    if (t.ids.some((x) => x.id === id)) throw driverError(VG_ERR_DOMAIN_ARG, `an IOThread is already using iothread_id '${id}'`);
    const poll = this.#private(uuid).iothreadPoll; // seeded from the definition before it changes
    this.#commitOne(uuid, live, withIothreads(def, [...t.ids, { id, attrs: {} }], true));
    poll.set(id, { maxNs: 32768n, grow: 0, shrink: 0 });
  }

  delIothread(uuid: Buffer, id: number, flags: Affect): void {
    const { def, live } = this.#oneDef(uuid, flags);
    const t = iothreadsOf(def);
    if (!t.ids.some((x) => x.id === id)) throw driverError(VG_ERR_DOMAIN_ARG, `cannot find IOThread '${id}' in iothreadids list`);
    const user = (tag: string) => def.devices.find((d) => d.tag === tag && d.kids.some((c) => c.tag === 'driver' && c.attrs.iothread === String(id)));
    const disk = user('disk');
    if (disk) {
      const target = disk.kids.find((c) => c.tag === 'target');
      throw driverError(VG_ERR_DOMAIN_ARG, `cannot remove IOThread ${id} since it is being used by disk '${target ? (target.attrs.dev ?? '') : ''}'`);
    }
    if (user('controller')) throw driverError(VG_ERR_DOMAIN_ARG, `cannot remove IOThread '${id}' since it is being used by controller`);
    const pins = new Map(def.iothreadPins);
    pins.delete(id);
    this.#commitOne(uuid, live, {
      ...withIothreads(
        def,
        t.ids.filter((x) => x.id !== id),
        t.explicit,
      ),
      iothreadPins: pins,
    });
    this.#private(uuid).iothreadPoll.delete(id);
  }

  pinIothread(uuid: Buffer, id: number, cpus: number[], flags: Affect): void {
    const { def, live } = this.#oneDef(uuid, flags);
    if (cpus.length === 0) throw driverError(VG_ERR_DOMAIN_ARG, 'Empty iothread cpumap list for pinning');
    const t = iothreadsOf(def);
    if (!t.ids.some((x) => x.id === id)) throw driverError(VG_ERR_DOMAIN_ARG, `iothreadid ${id} not found`);
    const pins = new Map(def.iothreadPins);
    pins.set(id, [...cpus]);
    this.#commitOne(uuid, live, { ...withIothreads(def, t.ids, true), iothreadPins: pins }); // autofill = false: ids are written
  }

  // testDomainGetStatsIOThread: the polling settings of a running domain's iothreads, in the order they were added.
  iothreadStats(uuid: Buffer): { id: number; maxNs: bigint; grow: number; shrink: number }[] {
    if (!this.#access.get(uuid).active) return [];
    return [...this.#private(uuid).iothreadPoll].map(([id, p]) => ({ id, ...p }));
  }

  setIothreadParams(uuid: Buffer, id: number, params: TuneParam[], live: boolean): void {
    const { def } = this.#oneDef(uuid, { live, config: false });
    if (!iothreadsOf(def).ids.some((x) => x.id === id)) throw driverError(VG_ERR_DOMAIN_ARG, `cannot find IOThread '${id}' in iothreadids`);
    validate(params, { poll_max_ns: ULLONG, poll_grow: 2, poll_shrink: 2 });
    const poll = this.#private(uuid).iothreadPoll;
    const cur = poll.get(id) ?? { maxNs: 32768n, grow: 0, shrink: 0 };
    const get = (f: string) => params.find((p) => p.field === f)?.value;
    poll.set(id, {
      maxNs: (get('poll_max_ns') as bigint | undefined) ?? cur.maxNs,
      grow: (get('poll_grow') as number | undefined) ?? cur.grow,
      shrink: (get('poll_shrink') as number | undefined) ?? cur.shrink,
    });
  }

  perfEvents(uuid: Buffer, flags: Affect): boolean[] {
    const { def } = this.#oneDef(uuid, flags);
    const set = perfOf(def);
    return PERF_EVENTS.map((e) => set.get(e) === true);
  }

  setPerfEvents(uuid: Buffer, events: { event: number; enabled: boolean }[], flags: Affect): void {
    const { def, live } = this.#oneDef(uuid, flags);
    const set = perfOf(def);
    for (const e of events) set.set(PERF_EVENTS[e.event], e.enabled);
    const kids = PERF_EVENTS.filter((e) => set.has(e)).map((e) => el('event', { name: e, enabled: set.get(e) ? 'yes' : 'no' }));
    const top = def.top.filter((n) => n.tag !== 'perf');
    this.#commitOne(uuid, live, { ...def, top: kids.length > 0 ? [...top, el('perf', {}, kids)] : top });
  }

  interfaceParams(uuid: Buffer, device: string, flags: Affect): TuneParam[] {
    const { def } = this.#oneDef(uuid, flags);
    const bw = bandwidthOf(netNode(def, device));
    const r = (dir: 'inbound' | 'outbound', k: string): number => bw[dir]?.[k] ?? 0;
    return [
      { field: 'inbound.average', type: 2, value: r('inbound', 'average') },
      { field: 'inbound.peak', type: 2, value: r('inbound', 'peak') },
      { field: 'inbound.burst', type: 2, value: r('inbound', 'burst') },
      { field: 'inbound.floor', type: 2, value: r('inbound', 'floor') },
      { field: 'outbound.average', type: 2, value: r('outbound', 'average') },
      { field: 'outbound.peak', type: 2, value: r('outbound', 'peak') },
      { field: 'outbound.burst', type: 2, value: r('outbound', 'burst') },
    ];
  }

  setInterfaceParams(uuid: Buffer, device: string, params: TuneParam[], flags: Affect): void {
    validate(params, Object.fromEntries(IFACE_PARAMS.map((f) => [f, 2])));
    const { def, live } = this.#oneDef(uuid, flags);
    const node = netNode(def, device);
    const given: Record<string, Record<string, number>> = { inbound: {}, outbound: {} };
    for (const p of params) {
      const [dir, k] = p.field.split('.');
      given[dir][k] = p.value as number;
    }
    const inSpecified = 'average' in given.inbound || 'floor' in given.inbound;
    const outSpecified = 'average' in given.outbound;
    // average (or floor, inbound) is what makes a rate; peak and burst alone are dropped
    const rate = (g: Record<string, number>, floorOk: boolean) => ((g.average ?? 0) !== 0 || (floorOk && (g.floor ?? 0) !== 0) ? g : null);
    const nin = rate(given.inbound, true);
    const nout = rate(given.outbound, false);
    const old = bandwidthOf(node);
    const had = old.inbound !== undefined || old.outbound !== undefined;
    const next = had
      ? { inbound: nin ?? (inSpecified ? undefined : old.inbound), outbound: nout ?? (outSpecified ? undefined : old.outbound) }
      : { inbound: nin ?? undefined, outbound: nout ?? undefined };
    const devices = def.devices.map((d) => (d === node ? withBandwidth(d, next) : d));
    this.#commitOne(uuid, live, { ...def, devices, ...devicesOf(devices, (m) => driverError(VG_ERR_DOMAIN_ARG, m)) });
  }

  fsFreeze(uuid: Buffer, mountpoints: string[], thaw: boolean): number {
    this.#active(uuid);
    const p = this.#private(uuid);
    const want = !thaw;
    if (mountpoints.length === 0) {
      const n = p.frozen.filter((f) => f !== want).length;
      p.frozen = [want, want];
      return n;
    }
    const next: [boolean, boolean] = [...p.frozen];
    let n = 0;
    for (const m of mountpoints) {
      const i = m === '/' ? 0 : m === '/boot' ? 1 : -1;
      if (i === -1) throw driverError(VG_ERR_DOMAIN_STATE, `mount point not found: ${m}`);
      if (next[i] !== want) {
        next[i] = want;
        n++;
      }
    }
    p.frozen = next;
    return n;
  }

  fsTrim(uuid: Buffer, mountpoint: string | null): void {
    this.#active(uuid);
    if (mountpoint !== null && mountpoint !== '/' && mountpoint !== '/boot') throw driverError(VG_ERR_DOMAIN_STATE, `mount point not found: ${mountpoint}`);
  }

  injectNmi(uuid: Buffer): void {
    this.#active(uuid); // the test driver does nothing else
  }

  sendProcessSignal(uuid: Buffer, signum: number): void {
    if (signum >= 65) throw driverError(VG_ERR_DOMAIN_ARG, `signum value ${signum} is out of range`);
    this.#access.get(uuid); // the test driver does not even ask that it runs
  }

  setUserPassword(uuid: Buffer, _user: string): void {
    this.#active(uuid);
  }

  // virKeycodeValueTranslate(codeset, codeset, key): a code the codeset's table does not hold is refused.
  sendKey(uuid: Buffer, codeset: number, keycodes: number[]): void {
    this.#active(uuid);
    for (const k of keycodes)
      if (!KEYCODES[codeset].includes(k)) throw driverError(VG_ERR_DOMAIN_INTERNAL, `invalid keycode ${k} of ${KEYCODE_SET_NAMES[codeset]} codeset`);
  }

  // testDomainGetBlockIoTune: the 20 throttles of one disk, in libvirt's order (group_name a string).
  blockIoTune(uuid: Buffer, disk: string, flags: Affect): TuneParam[] {
    const { def } = this.#oneDef(uuid, flags);
    const node = diskNode(def, disk);
    if (!node) throw driverError(VG_ERR_DOMAIN_ARG, `disk '${disk}' was not found in the domain config`);
    const t = iotuneOf(node);
    return IOTUNE_FIELDS.map((f): TuneParam =>
      f === 'group_name' ? { field: f, type: 7, value: t.group ?? '' } : { field: f, type: 4, value: t.values.get(f) ?? 0n },
    );
  }

  // testDomainSetBlockIoTune: merged into the disk's throttles, checked as a whole, kept in its <iotune>.
  setBlockIoTune(uuid: Buffer, disk: string, params: TuneParam[], flags: Affect): void {
    validate(params, Object.fromEntries(IOTUNE_FIELDS.map((f) => [f, f === 'group_name' ? 7 : ULLONG])));
    const { def, live } = this.#oneDef(uuid, flags);
    const node = diskNode(def, disk);
    if (!node) throw driverError(VG_ERR_DOMAIN_ARG, `missing persistent configuration for disk '${disk}'`);
    const t = iotuneOf(node);
    for (const p of params) {
      if (p.type === 7) t.group = p.value;
      else {
        if ((p.value as bigint) > IOTUNE_MAX) throw driverError(VG_ERR_ARG_UNSUPPORTED, `block I/O throttle limit value must be no more than ${IOTUNE_MAX}`);
        t.values.set(p.field, p.value as bigint);
      }
    }
    const v = (f: string) => t.values.get(f) ?? 0n;
    for (const kind of ['bytes_sec', 'iops_sec', 'bytes_sec_max', 'iops_sec_max'])
      if (v(`total_${kind}`) !== 0n && (v(`read_${kind}`) !== 0n || v(`write_${kind}`) !== 0n))
        throw driverError(VG_ERR_DOMAIN_ARG, `total and read/write of ${kind} cannot be set at the same time`);
    for (const f of ['total_bytes_sec', 'read_bytes_sec', 'write_bytes_sec', 'total_iops_sec', 'read_iops_sec', 'write_iops_sec'])
      if (v(f) > v(`${f}_max`)) throw driverError(VG_ERR_DOMAIN_ARG, `${f} cannot be set higher than ${f}_max `);
    const devices = def.devices.map((d) => (d === node ? withIotune(d, t) : d));
    this.#commitOne(uuid, live, { ...def, devices, ...devicesOf(devices, (m) => driverError(VG_ERR_DOMAIN_ARG, m)) });
  }
}

const IOTUNE_MAX = 1000000000000000n; // TEST_BLOCK_IOTUNE_MAX
// virDomainBlockIoTuneInfo, in the order the test driver reports and libvirt formats them
const IOTUNE_FIELDS = [
  'total_bytes_sec',
  'read_bytes_sec',
  'write_bytes_sec',
  'total_iops_sec',
  'read_iops_sec',
  'write_iops_sec',
  'total_bytes_sec_max',
  'read_bytes_sec_max',
  'write_bytes_sec_max',
  'total_iops_sec_max',
  'read_iops_sec_max',
  'write_iops_sec_max',
  'size_iops_sec',
  'group_name',
  'total_bytes_sec_max_length',
  'read_bytes_sec_max_length',
  'write_bytes_sec_max_length',
  'total_iops_sec_max_length',
  'read_iops_sec_max_length',
  'write_iops_sec_max_length',
] as const;

function diskNode(def: DomainDef, name: string): XmlEl | undefined {
  const disk = findDisk(def, name);
  const i = disk ? def.disks.indexOf(disk) : -1;
  return def.devices.filter((d) => d.tag === 'disk')[i];
}

function iotuneOf(disk: XmlEl): { values: Map<string, bigint>; group: string | null } {
  const values = new Map<string, bigint>();
  let group: string | null = null;
  const t = disk.kids.find((c) => c.tag === 'iotune');
  for (const c of t ? t.kids : []) {
    const tag = c.tag;
    const text = c.text.trim();
    if (tag === 'group_name') group = text;
    else if ((IOTUNE_FIELDS as readonly string[]).includes(tag) && /^[0-9]{1,20}$/.test(text)) values.set(tag, BigInt(text));
  }
  return { values, group };
}

// virDomainDiskDefFormatIotune, right after <target> (virDomainDiskDefFormat's order); nothing set, no element.
function withIotune(disk: XmlEl, t: { values: Map<string, bigint>; group: string | null }): XmlEl {
  const kids: XmlEl[] = [];
  for (const f of IOTUNE_FIELDS) {
    if (f === 'group_name') {
      if (t.group !== null && t.group !== '') kids.push(el('group_name', {}, [], t.group));
    } else if ((t.values.get(f) ?? 0n) !== 0n) kids.push(el(f, {}, [], String(t.values.get(f))));
  }
  const rest = disk.kids.filter((c) => c.tag !== 'iotune');
  if (kids.length > 0) rest.splice(rest.findIndex((c) => c.tag === 'target') + 1, 0, el('iotune', {}, kids));
  return { ...disk, kids: rest };
}

const LIFECYCLE_TYPES = ['poweroff', 'reboot', 'crash'] as const; // virDomainLifecycle
const LIFECYCLE_ACTIONS = ['destroy', 'restart', 'rename-restart', 'preserve', 'coredump-destroy', 'coredump-restart'] as const;
const IFACE_PARAMS = ['inbound.average', 'inbound.peak', 'inbound.burst', 'inbound.floor', 'outbound.average', 'outbound.peak', 'outbound.burst'];

const el = (tag: string, attrs: Record<string, string>, kids: XmlEl[] = [], text = ''): XmlEl => ({ tag, attrs, text, kids });
const textOfNode = (n: XmlEl | undefined): string => (n === undefined ? '' : n.text.trim());

interface IothreadId {
  id: number;
  attrs: Record<string, string>;
}

// <iothreads> and <iothreadids> (kept as given in def.top), as virDomainDefParseIOThreads reads them: the listed ids,
// then ids from 1 up filled in ("autofill") until the count is reached. explicit: the list is written back.
function iothreadsOf(def: DomainDef): { ids: IothreadId[]; explicit: boolean } {
  const countNode = def.top.find((n) => n.tag === 'iothreads');
  const idsNode = def.top.find((n) => n.tag === 'iothreadids');
  const ids: IothreadId[] = [];
  for (const t of idsNode ? idsNode.kids.filter((c) => c.tag === 'iothread') : []) {
    const { id, ...attrs } = t.attrs;
    if (/^[0-9]{1,9}$/.test(id ?? '') && Number(id) > 0 && !ids.some((x) => x.id === Number(id))) ids.push({ id: Number(id), attrs });
  }
  const count = /^[0-9]{1,5}$/.test(textOfNode(countNode)) ? Number(textOfNode(countNode)) : 0;
  for (let next = 1; ids.length < count; next++) if (!ids.some((x) => x.id === next)) ids.push({ id: next, attrs: {} });
  return { ids, explicit: ids.length > 0 && idsNode !== undefined };
}

// virDomainDefIOThreadsFormat: the count, and the list when any id was set by hand (or pinned).
function withIothreads(def: DomainDef, ids: IothreadId[], explicit: boolean): DomainDef {
  const top = def.top.filter((n) => n.tag !== 'iothreads' && n.tag !== 'iothreadids');
  if (ids.length > 0) top.push(el('iothreads', {}, [], String(ids.length)));
  if (ids.length > 0 && explicit)
    top.push(
      el(
        'iothreadids',
        {},
        ids.map((t) => el('iothread', { id: String(t.id), ...t.attrs })),
      ),
    );
  return { ...def, top };
}

// <perf><event name enabled>: the events the definition sets (true/false), by name.
function perfOf(def: DomainDef): Map<string, boolean> {
  const out = new Map<string, boolean>();
  const perf = def.top.find((n) => n.tag === 'perf');
  for (const e of perf ? perf.kids.filter((c) => c.tag === 'event') : []) {
    const a = e.attrs;
    if ((PERF_EVENTS as readonly string[]).includes(a.name ?? '') && (a.enabled === 'yes' || a.enabled === 'no')) out.set(a.name!, a.enabled === 'yes');
  }
  return out;
}

function netNode(def: DomainDef, device: string): XmlEl {
  const net = findNet(def, device);
  const i = net ? def.nets.indexOf(net) : -1;
  const node = def.devices.filter((d) => d.tag === 'interface')[i];
  if (!node) throw driverError(VG_ERR_DOMAIN_ARG, `'${device}' is not a known interface`);
  return node;
}

type Rates = Record<string, number>;
function bandwidthOf(iface: XmlEl): { inbound?: Rates; outbound?: Rates } {
  const bw = iface.kids.find((c) => c.tag === 'bandwidth');
  const out: { inbound?: Rates; outbound?: Rates } = {};
  for (const dir of ['inbound', 'outbound'] as const) {
    const r = bw && bw.kids.find((c) => c.tag === dir);
    if (r) out[dir] = Object.fromEntries(Object.entries(r.attrs).map(([k, v]) => [k, /^[0-9]{1,10}$/.test(v) ? Number(v) : 0]));
  }
  return out;
}

// virNetDevBandwidthFormat, placed where virDomainNetDefFormat writes it (after source, vlan and virtualport).
function withBandwidth(iface: XmlEl, bw: { inbound?: Rates; outbound?: Rates }): XmlEl {
  const rate = (dir: 'inbound' | 'outbound', r: Rates): XmlEl => {
    const a: Record<string, string> = {};
    for (const k of ['average', 'peak', 'floor', 'burst']) if ((r[k] ?? 0) !== 0) a[k] = String(r[k]);
    return el(dir, a);
  };
  const rates = (['inbound', 'outbound'] as const).filter((d) => bw[d] !== undefined).map((d) => rate(d, bw[d]!));
  const kids = iface.kids.filter((c) => c.tag !== 'bandwidth');
  if (rates.length > 0) {
    let at = 0;
    kids.forEach((c, i) => {
      if (['mac', 'source', 'vlan', 'virtualport'].includes(c.tag)) at = i + 1;
    });
    kids.splice(at, 0, el('bandwidth', {}, rates));
  }
  return { ...iface, kids };
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
