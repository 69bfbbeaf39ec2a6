// SPDX-License-Identifier: Apache-2.0
// The driver contract for domain stats, CPU pinning and tuning (helper side); results are IPC value shapes.
import type { XmlEl } from '../../ipc/objects/domain-def';
import type { DomainTuneKind, TuneParam } from '../../ipc/objects/domain-extra';

export interface VcpuInfoRow {
  number: number;
  state: number; // virVcpuState: RUNNING 1
  cpuTimeNs: bigint;
  cpu: number; // host CPU it runs on, -1 when unknown
}

export interface BlockStats {
  rdReq: bigint;
  rdBytes: bigint;
  wrReq: bigint;
  wrBytes: bigint;
  errs: bigint;
}

export interface InterfaceStats {
  rxBytes: bigint;
  rxPackets: bigint;
  rxErrs: bigint;
  rxDrop: bigint;
  txBytes: bigint;
  txPackets: bigint;
  txErrs: bigint;
  txDrop: bigint;
}

export interface FsInfoRow {
  mountpoint: string;
  name: string;
  fstype: string;
  devAliases: string[];
}

export interface IfaceAddrs {
  name: string;
  hwaddr: string | null;
  addrs: { type: number; addr: string; prefix: number }[];
}

export interface Affect {
  live: boolean;
  config: boolean;
}

// Every method throws DriverError (catalogue code + libvirt's wording) for a missing domain or a wrong state.
export interface DomainExtraDriver {
  hostCpus(): number; // VIR_NODEINFO_MAXCPUS: the width of every CPU map
  vcpus(uuid: Buffer, maxinfo: number): { info: VcpuInfoRow[]; maps: number[][] };
  vcpuPinInfo(uuid: Buffer, ncpumaps: number, flags: Affect): number[][];
  emulatorPinInfo(uuid: Buffer, flags: Affect): number[];
  blockStats(uuid: Buffer, path: string): BlockStats;
  interfaceStats(uuid: Buffer, device: string): InterfaceStats;
  memoryStats(uuid: Buffer, maxStats: number): { tag: number; val: bigint }[];
  blockInfo(uuid: Buffer, path: string): { allocation: bigint; capacity: bigint; physical: bigint };
  diskErrors(uuid: Buffer, maxerrors: number): { errors: { disk: string; error: number }[]; nerrors: number };
  fsInfo(uuid: Buffer): FsInfoRow[];
  interfaceAddresses(uuid: Buffer, source: number): IfaceAddrs[];
  tuning(uuid: Buffer, kind: DomainTuneKind, flags: Affect): TuneParam[];
  // Writes: each validated as libvirt validates, then committed (durable before the answer) or refused whole.
  setTuning(uuid: Buffer, kind: DomainTuneKind, params: TuneParam[], flags: Affect): void;
  pinVcpu(uuid: Buffer, vcpu: number, cpus: number[]): void;
  pinEmulator(uuid: Buffer, cpus: number[], flags: Affect): void;
  // type: virDomainMetadataType (0 description, 1 title, 2 element of namespace `uri`)
  metadata(uuid: Buffer, type: number, uri: string | null, flags: Affect): { value: string; element: XmlEl | null };
  setMetadata(uuid: Buffer, type: number, value: string | null, element: XmlEl | null, uri: string | null, flags: Affect): void;
  setAutostart(uuid: Buffer, autostart: boolean): void;
  reset(uuid: Buffer): void; // the test driver checks the domain runs, and does nothing else
  managedSave(uuid: Buffer): void;
  managedSaveRemove(uuid: Buffer): void;
  rename(uuid: Buffer, newName: string, tenant: string): void; // tenant: the session's, for the clash rule
  // ---- part B (issue 12) ----
  checkActive(uuid: Buffer): void; // virDomainObjCheckActive: throws unless the domain runs
  time(uuid: Buffer): { seconds: bigint; nseconds: number };
  setTime(uuid: Buffer, seconds: bigint, nseconds: number): void;
  setLifecycleAction(uuid: Buffer, type: number, action: number, flags: Affect): void;
  setMemoryStatsPeriod(uuid: Buffer, period: number, flags: Affect): void;
  iothreadInfo(uuid: Buffer, flags: Affect): { id: number; cpus: number[] }[];
  addIothread(uuid: Buffer, id: number, flags: Affect): void;
  delIothread(uuid: Buffer, id: number, flags: Affect): void;
  pinIothread(uuid: Buffer, id: number, cpus: number[], flags: Affect): void;
  iothreadStats(uuid: Buffer): { id: number; maxNs: bigint; grow: number; shrink: number }[]; // [] unless running
  setIothreadParams(uuid: Buffer, id: number, params: TuneParam[], live: boolean): void;
  perfEvents(uuid: Buffer, flags: Affect): boolean[]; // by virPerfEventType index
  setPerfEvents(uuid: Buffer, events: { event: number; enabled: boolean }[], flags: Affect): void;
  interfaceParams(uuid: Buffer, device: string, flags: Affect): TuneParam[];
  setInterfaceParams(uuid: Buffer, device: string, params: TuneParam[], flags: Affect): void;
  fsFreeze(uuid: Buffer, mountpoints: string[], thaw: boolean): number; // how many changed state
  fsTrim(uuid: Buffer, mountpoint: string | null): void;
  injectNmi(uuid: Buffer): void;
  sendProcessSignal(uuid: Buffer, signum: number): void;
  setUserPassword(uuid: Buffer, user: string): void;
  sendKey(uuid: Buffer, codeset: number, keycodes: number[]): void;
  blockIoTune(uuid: Buffer, disk: string, flags: Affect): TuneParam[];
  setBlockIoTune(uuid: Buffer, disk: string, params: TuneParam[], flags: Affect): void;
}
