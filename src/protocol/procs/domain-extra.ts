// SPDX-License-Identifier: Apache-2.0
// REMOTE procedures of domain stats, tuning, and the rest of the virHypervisorDriver table beyond lifecycle, as data (libvirt 9.0 remote_protocol.x), pure.
import { Limits } from '../constants';
import { ParamLimits, type TypedParam, typedParams } from '../typed-params';
import { type Codec, type RemoteDomain, XdrVoid, domainCodec, hyper, int, nonnullString, optString, struct, uhyper, uint } from '../types';
import { AFFECT_CONFIG, AFFECT_LIVE, acl, array, defineProc, dom, domFlags, retInt } from './table';

const str = nonnullString();
const opaque = (max: number): Codec<Buffer> => ({ encode: (w, v) => void w.opaque(v, max), decode: (r) => Buffer.from(r.opaque(max)) });

export const INTERFACE_ADDRESSES_SRC_AGENT = 1; // VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT (LEASE 0, AGENT 1, ARP 2)

export const DomainExtraLimits = {
  CPUMAP_MAX: 2048, // REMOTE_CPUMAP_MAX
  VCPUINFO_MAX: 16384, // REMOTE_VCPUINFO_MAX
  CPUMAPS_MAX: 8388608, // REMOTE_CPUMAPS_MAX
  MEMORY_STATS_MAX: 1024, // REMOTE_DOMAIN_MEMORY_STATS_MAX
  DISK_ERRORS_MAX: 256, // REMOTE_DOMAIN_DISK_ERRORS_MAX
  FSINFO_MAX: 256, // REMOTE_DOMAIN_FSINFO_MAX
  FSINFO_DISKS_MAX: 256, // REMOTE_DOMAIN_FSINFO_DISKS_MAX
  INTERFACE_MAX: 2048, // REMOTE_DOMAIN_INTERFACE_MAX
  IP_ADDR_MAX: 2048, // REMOTE_DOMAIN_IP_ADDR_MAX
  IOTHREAD_INFO_MAX: 16384, // REMOTE_IOTHREAD_INFO_MAX
  IOTHREAD_PARAMS_MAX: 64, // REMOTE_DOMAIN_IOTHREAD_PARAMS_MAX
  PERF_EVENTS_MAX: 64, // REMOTE_DOMAIN_PERF_EVENTS_MAX
  INTERFACE_PARAMETERS_MAX: 16, // REMOTE_DOMAIN_INTERFACE_PARAMETERS_MAX
  FSFREEZE_MOUNTPOINTS_MAX: 256, // REMOTE_DOMAIN_FSFREEZE_MOUNTPOINTS_MAX
  GET_CPU_STATS_MAX: 2048, // REMOTE_DOMAIN_GET_CPU_STATS_MAX
  MEMORY_PEEK_BUFFER_MAX: 4194304, // REMOTE_DOMAIN_MEMORY_PEEK_BUFFER_MAX
  SEND_KEY_MAX: 16, // REMOTE_DOMAIN_SEND_KEY_MAX
  LAUNCH_SECURITY_INFO_PARAMS_MAX: 64, // REMOTE_DOMAIN_LAUNCH_SECURITY_INFO_PARAMS_MAX
  BLOCK_IO_TUNE_PARAMETERS_MAX: 32, // REMOTE_DOMAIN_BLOCK_IO_TUNE_PARAMETERS_MAX
} as const;
const X = DomainExtraLimits;

// @acl: domain:write and domain:save, the latter for config changes (flags CONFIG, or neither LIVE nor CONFIG).
const tuneAcl = () => acl('domain:write', { perm: 'domain:save', unlessFlags: AFFECT_CONFIG | AFFECT_LIVE }, { perm: 'domain:save', whenFlags: AFFECT_CONFIG });

// remote_vcpu_info { unsigned int number; int state; unsigned hyper cpu_time; int cpu }
export interface VcpuInfo {
  number: number;
  state: number;
  cpuTime: bigint;
  cpu: number;
}
const vcpuInfo = struct<VcpuInfo>(['number', uint], ['state', int], ['cpuTime', uhyper], ['cpu', int]);
const memoryStat = struct<{ tag: number; val: bigint }>(['tag', int], ['val', uhyper]);
const diskError = struct<{ disk: string; error: number }>(['disk', str], ['error', int]);
export interface FsInfo {
  mountpoint: string;
  name: string;
  fstype: string;
  devAliases: string[];
}
const fsInfo = struct<FsInfo>(['mountpoint', str], ['name', str], ['fstype', str], ['devAliases', array(DomainExtraLimits.FSINFO_DISKS_MAX, str)]);
export interface IpAddr {
  type: number;
  addr: string;
  prefix: number;
}
export interface DomainIface {
  name: string;
  hwaddr: string | null;
  addrs: IpAddr[];
}
const ipAddr = struct<IpAddr>(['type', int], ['addr', str], ['prefix', uint]);
const iface = struct<DomainIface>(['name', str], ['hwaddr', optString('hwaddr')], ['addrs', array(DomainExtraLimits.IP_ADDR_MAX, ipAddr)]);
export interface StatsRecord {
  dom: RemoteDomain;
  params: TypedParam[];
}
const statsRecord = struct<StatsRecord>(['dom', domainCodec], ['params', typedParams(ParamLimits.DOMAIN_STATS)]);
const uintArray = (max: number): Codec<number[]> => array(max, uint);
const getParams = struct<{ dom: RemoteDomain; nparams: number; flags: number }>(['dom', domainCodec], ['nparams', int], ['flags', uint]);
const setParams = (max: number) =>
  struct<{ dom: RemoteDomain; params: TypedParam[]; flags: number }>(['dom', domainCodec], ['params', typedParams(max)], ['flags', uint]);
const paramsRet = (max: number) => struct<{ params: TypedParam[]; nparams: number }>(['params', typedParams(max)], ['nparams', int]);

export const PD = {
  DOMAIN_GET_MAX_MEMORY: defineProc({
    proc: 17,
    name: 'domainGetMaxMemory',
    cls: 'read',
    acl: acl('domain:read'),
    args: dom,
    ret: struct<{ memory: bigint }>(['memory', uhyper]),
  }),
  DOMAIN_GET_VCPUS: defineProc({
    proc: 20,
    name: 'domainGetVcpus',
    cls: 'read',
    acl: acl('domain:read'),
    args: struct<{ dom: RemoteDomain; maxinfo: number; maplen: number }>(['dom', domainCodec], ['maxinfo', int], ['maplen', int]),
    ret: struct<{ info: VcpuInfo[]; cpumaps: Buffer }>(
      ['info', array(DomainExtraLimits.VCPUINFO_MAX, vcpuInfo)],
      ['cpumaps', opaque(DomainExtraLimits.CPUMAPS_MAX)],
    ),
  }),
  DOMAIN_PIN_VCPU: defineProc({
    proc: 26,
    name: 'domainPinVcpu',
    cls: 'write',
    acl: acl('domain:write'),
    args: struct<{ dom: RemoteDomain; vcpu: number; cpumap: Buffer }>(['dom', domainCodec], ['vcpu', uint], ['cpumap', opaque(DomainExtraLimits.CPUMAP_MAX)]),
    ret: XdrVoid,
  }),
  DOMAIN_SET_AUTOSTART: defineProc({
    proc: 29,
    name: 'domainSetAutostart',
    cls: 'write',
    acl: acl('domain:write'),
    args: struct<{ dom: RemoteDomain; autostart: number }>(['dom', domainCodec], ['autostart', int]),
    ret: XdrVoid,
  }),
  DOMAIN_MANAGED_SAVE: defineProc({ proc: 182, name: 'domainManagedSave', cls: 'write', acl: acl('domain:hibernate'), args: domFlags, ret: XdrVoid }),
  DOMAIN_MANAGED_SAVE_REMOVE: defineProc({
    proc: 184,
    name: 'domainManagedSaveRemove',
    cls: 'write',
    acl: acl('domain:hibernate'),
    args: domFlags,
    ret: XdrVoid,
  }),
  DOMAIN_RESET: defineProc({ proc: 245, name: 'domainReset', cls: 'write', acl: acl('domain:reset'), args: domFlags, ret: XdrVoid }),
  // Save and restore to a client-named file (remote_domain_save*_args, remote_domain_restore*_args, save_image_*).
  DOMAIN_RESTORE: defineProc({
    proc: 54,
    name: 'domainRestore',
    cls: 'write',
    acl: acl('domain:start', 'domain:write'),
    args: struct<{ from: string }>(['from', str]),
    ret: XdrVoid,
  }),
  DOMAIN_SAVE: defineProc({
    proc: 55,
    name: 'domainSave',
    cls: 'write',
    acl: acl('domain:hibernate'),
    args: struct<{ dom: RemoteDomain; to: string }>(['dom', domainCodec], ['to', str]),
    ret: XdrVoid,
  }),
  DOMAIN_SAVE_FLAGS: defineProc({
    proc: 232,
    name: 'domainSaveFlags',
    cls: 'write',
    acl: acl('domain:hibernate'),
    args: struct<{ dom: RemoteDomain; to: string; dxml: string | null; flags: number }>(
      ['dom', domainCodec],
      ['to', str],
      ['dxml', optString('dxml')],
      ['flags', uint],
    ),
    ret: XdrVoid,
  }),
  DOMAIN_RESTORE_FLAGS: defineProc({
    proc: 233,
    name: 'domainRestoreFlags',
    cls: 'write',
    acl: acl('domain:start', 'domain:write'),
    args: struct<{ from: string; dxml: string | null; flags: number }>(['from', str], ['dxml', optString('dxml')], ['flags', uint]),
    ret: XdrVoid,
  }),
  // A core dump to a client-named file (remote_domain_core_dump*_args).
  DOMAIN_CORE_DUMP: defineProc({
    proc: 53,
    name: 'domainCoreDump',
    cls: 'write',
    acl: acl('domain:core_dump'),
    args: struct<{ dom: RemoteDomain; to: string; flags: number }>(['dom', domainCodec], ['to', str], ['flags', uint]),
    ret: XdrVoid,
  }),
  DOMAIN_CORE_DUMP_WITH_FORMAT: defineProc({
    proc: 334,
    name: 'domainCoreDumpWithFormat',
    cls: 'write',
    acl: acl('domain:core_dump'),
    args: struct<{ dom: RemoteDomain; to: string; dumpformat: number; flags: number }>(
      ['dom', domainCodec],
      ['to', str],
      ['dumpformat', uint],
      ['flags', uint],
    ),
    ret: XdrVoid,
  }),
  // Reading an image is root opening a file the client named: audited and journaled as a write.
  DOMAIN_SAVE_IMAGE_GET_XML_DESC: defineProc({
    proc: 235,
    name: 'domainSaveImageGetXmlDesc',
    cls: 'write',
    acl: acl('domain:write'),
    args: struct<{ file: string; flags: number }>(['file', str], ['flags', uint]),
    ret: struct<{ xml: string }>(['xml', str]),
  }),
  DOMAIN_SAVE_IMAGE_DEFINE_XML: defineProc({
    proc: 236,
    name: 'domainSaveImageDefineXml',
    cls: 'write',
    acl: acl('domain:write', 'domain:hibernate'),
    args: struct<{ file: string; dxml: string; flags: number }>(['file', str], ['dxml', str], ['flags', uint]),
    ret: XdrVoid,
  }),
  DOMAIN_RENAME: defineProc({
    proc: 358,
    name: 'domainRename',
    cls: 'write',
    acl: acl('domain:write', 'domain:save'),
    args: struct<{ dom: RemoteDomain; newName: string | null; flags: number }>(['dom', domainCodec], ['newName', optString('new_name')], ['flags', uint]),
    ret: retInt('retcode'),
  }),
  DOMAIN_GET_SCHEDULER_TYPE: defineProc({
    proc: 56,
    name: 'domainGetSchedulerType',
    cls: 'read',
    acl: acl('domain:read'),
    args: dom,
    ret: struct<{ type: string; nparams: number }>(['type', str], ['nparams', int]),
  }),
  DOMAIN_GET_SCHEDULER_PARAMETERS: defineProc({
    proc: 57,
    name: 'domainGetSchedulerParameters',
    cls: 'read',
    acl: acl('domain:read'),
    args: struct<{ dom: RemoteDomain; nparams: number }>(['dom', domainCodec], ['nparams', int]),
    ret: struct<{ params: TypedParam[] }>(['params', typedParams(ParamLimits.SCHEDULER)]),
  }),
  // remote_protocol.x says domain:read here (an oversight: it is the flag-less SET); we ask what 219 asks.
  DOMAIN_SET_SCHEDULER_PARAMETERS: defineProc({
    proc: 58,
    name: 'domainSetSchedulerParameters',
    cls: 'write',
    acl: acl('domain:write', 'domain:save'),
    args: struct<{ dom: RemoteDomain; params: TypedParam[] }>(['dom', domainCodec], ['params', typedParams(ParamLimits.SCHEDULER)]),
    ret: XdrVoid,
  }),
  DOMAIN_BLOCK_STATS: defineProc({
    proc: 64,
    name: 'domainBlockStats',
    cls: 'read',
    acl: acl('domain:read'),
    args: struct<{ dom: RemoteDomain; path: string }>(['dom', domainCodec], ['path', str]),
    ret: struct<{ rdReq: bigint; rdBytes: bigint; wrReq: bigint; wrBytes: bigint; errs: bigint }>(
      ['rdReq', hyper],
      ['rdBytes', hyper],
      ['wrReq', hyper],
      ['wrBytes', hyper],
      ['errs', hyper],
    ),
  }),
  DOMAIN_INTERFACE_STATS: defineProc({
    proc: 65,
    name: 'domainInterfaceStats',
    cls: 'read',
    acl: acl('domain:read'),
    args: struct<{ dom: RemoteDomain; device: string }>(['dom', domainCodec], ['device', str]),
    ret: struct<{
      rxBytes: bigint;
      rxPackets: bigint;
      rxErrs: bigint;
      rxDrop: bigint;
      txBytes: bigint;
      txPackets: bigint;
      txErrs: bigint;
      txDrop: bigint;
    }>(
      ['rxBytes', hyper],
      ['rxPackets', hyper],
      ['rxErrs', hyper],
      ['rxDrop', hyper],
      ['txBytes', hyper],
      ['txPackets', hyper],
      ['txErrs', hyper],
      ['txDrop', hyper],
    ),
  }),
  DOMAIN_MEMORY_STATS: defineProc({
    proc: 159,
    name: 'domainMemoryStats',
    cls: 'read',
    acl: acl('domain:read'),
    args: struct<{ dom: RemoteDomain; maxStats: number; flags: number }>(['dom', domainCodec], ['maxStats', uint], ['flags', uint]),
    ret: struct<{ stats: { tag: number; val: bigint }[] }>(['stats', array(DomainExtraLimits.MEMORY_STATS_MAX, memoryStat)]),
  }),
  DOMAIN_GET_BLOCK_INFO: defineProc({
    proc: 194,
    name: 'domainGetBlockInfo',
    cls: 'read',
    acl: acl('domain:read'),
    args: struct<{ dom: RemoteDomain; path: string; flags: number }>(['dom', domainCodec], ['path', str], ['flags', uint]),
    ret: struct<{ allocation: bigint; capacity: bigint; physical: bigint }>(['allocation', uhyper], ['capacity', uhyper], ['physical', uhyper]),
  }),
  DOMAIN_SET_MEMORY_PARAMETERS: defineProc({
    proc: 197,
    name: 'domainSetMemoryParameters',
    cls: 'write',
    acl: tuneAcl(),
    args: setParams(ParamLimits.MEMORY),
    ret: XdrVoid,
  }),
  DOMAIN_GET_MEMORY_PARAMETERS: defineProc({
    proc: 198,
    name: 'domainGetMemoryParameters',
    cls: 'read',
    acl: acl('domain:read'),
    args: getParams,
    ret: paramsRet(ParamLimits.MEMORY),
  }),
  DOMAIN_IS_UPDATED: defineProc({ proc: 202, name: 'domainIsUpdated', cls: 'read', acl: acl('domain:read'), args: dom, ret: retInt('updated') }),
  DOMAIN_SET_BLKIO_PARAMETERS: defineProc({
    proc: 205,
    name: 'domainSetBlkioParameters',
    cls: 'write',
    acl: tuneAcl(),
    args: setParams(ParamLimits.BLKIO),
    ret: XdrVoid,
  }),
  DOMAIN_GET_BLKIO_PARAMETERS: defineProc({
    proc: 206,
    name: 'domainGetBlkioParameters',
    cls: 'read',
    acl: acl('domain:read'),
    args: getParams,
    ret: paramsRet(ParamLimits.BLKIO),
  }),
  DOMAIN_SET_SCHEDULER_PARAMETERS_FLAGS: defineProc({
    proc: 219,
    name: 'domainSetSchedulerParametersFlags',
    cls: 'write',
    acl: tuneAcl(),
    args: setParams(ParamLimits.SCHEDULER),
    ret: XdrVoid,
  }),
  DOMAIN_GET_SCHEDULER_PARAMETERS_FLAGS: defineProc({
    proc: 223,
    name: 'domainGetSchedulerParametersFlags',
    cls: 'read',
    acl: acl('domain:read'),
    args: getParams,
    ret: struct<{ params: TypedParam[] }>(['params', typedParams(ParamLimits.SCHEDULER)]),
  }),
  DOMAIN_PIN_VCPU_FLAGS: defineProc({
    proc: 225,
    name: 'domainPinVcpuFlags',
    cls: 'write',
    acl: tuneAcl(),
    args: struct<{ dom: RemoteDomain; vcpu: number; cpumap: Buffer; flags: number }>(
      ['dom', domainCodec],
      ['vcpu', uint],
      ['cpumap', opaque(DomainExtraLimits.CPUMAP_MAX)],
      ['flags', uint],
    ),
    ret: XdrVoid,
  }),
  DOMAIN_GET_CONTROL_INFO: defineProc({
    proc: 229,
    name: 'domainGetControlInfo',
    cls: 'read',
    acl: acl('domain:read'),
    args: domFlags,
    ret: struct<{ state: number; details: number; stateTime: bigint }>(['state', uint], ['details', uint], ['stateTime', uhyper]),
  }),
  DOMAIN_GET_VCPU_PIN_INFO: defineProc({
    proc: 230,
    name: 'domainGetVcpuPinInfo',
    cls: 'read',
    acl: acl('domain:read'),
    args: struct<{ dom: RemoteDomain; ncpumaps: number; maplen: number; flags: number }>(
      ['dom', domainCodec],
      ['ncpumaps', int],
      ['maplen', int],
      ['flags', uint],
    ),
    ret: struct<{ cpumaps: Buffer; num: number }>(['cpumaps', opaque(DomainExtraLimits.CPUMAPS_MAX)], ['num', int]),
  }),
  DOMAIN_SET_NUMA_PARAMETERS: defineProc({
    proc: 254,
    name: 'domainSetNumaParameters',
    cls: 'write',
    acl: tuneAcl(),
    args: setParams(ParamLimits.NUMA),
    ret: XdrVoid,
  }),
  DOMAIN_GET_NUMA_PARAMETERS: defineProc({
    proc: 255,
    name: 'domainGetNumaParameters',
    cls: 'read',
    acl: acl('domain:read'),
    args: getParams,
    ret: paramsRet(ParamLimits.NUMA),
  }),
  DOMAIN_GET_DISK_ERRORS: defineProc({
    proc: 263,
    name: 'domainGetDiskErrors',
    cls: 'read',
    acl: acl('domain:read'),
    args: struct<{ dom: RemoteDomain; maxerrors: number; flags: number }>(['dom', domainCodec], ['maxerrors', uint], ['flags', uint]),
    ret: struct<{ errors: { disk: string; error: number }[]; nerrors: number }>(
      ['errors', array(DomainExtraLimits.DISK_ERRORS_MAX, diskError)],
      ['nerrors', int],
    ),
  }),
  // @acl domain:write: libvirt asks the guest agent for it.
  DOMAIN_GET_METADATA: defineProc({
    proc: 265,
    name: 'domainGetMetadata',
    cls: 'read',
    acl: acl('domain:read'),
    args: struct<{ dom: RemoteDomain; type: number; uri: string | null; flags: number }>(
      ['dom', domainCodec],
      ['type', int],
      ['uri', optString('uri')],
      ['flags', uint],
    ),
    ret: struct<{ metadata: string }>(['metadata', str]),
  }),
  DOMAIN_GET_HOSTNAME: defineProc({
    proc: 277,
    name: 'domainGetHostname',
    cls: 'read',
    refuseReadOnly: true, // virCheckReadOnly in virDomainGetHostname
    acl: acl('domain:write'),
    args: domFlags,
    ret: struct<{ hostname: string }>(['hostname', str]),
  }),
  DOMAIN_PIN_EMULATOR: defineProc({
    proc: 279,
    name: 'domainPinEmulator',
    cls: 'write',
    acl: tuneAcl(),
    args: struct<{ dom: RemoteDomain; cpumap: Buffer; flags: number }>(['dom', domainCodec], ['cpumap', opaque(DomainExtraLimits.CPUMAP_MAX)], ['flags', uint]),
    ret: XdrVoid,
  }),
  DOMAIN_GET_EMULATOR_PIN_INFO: defineProc({
    proc: 280,
    name: 'domainGetEmulatorPinInfo',
    cls: 'read',
    acl: acl('domain:read'),
    args: struct<{ dom: RemoteDomain; maplen: number; flags: number }>(['dom', domainCodec], ['maplen', int], ['flags', uint]),
    ret: struct<{ cpumaps: Buffer; ret: number }>(['cpumaps', opaque(DomainExtraLimits.CPUMAPS_MAX)], ['ret', int]),
  }),
  // 293 NODE_GET_CPU_MAP (which virsh's vcpuinfo/vcpupin/emulatorpin size their maps by) is in ./host-objects.ts.
  CONNECT_GET_ALL_DOMAIN_STATS: defineProc({
    proc: 344,
    name: 'connectGetAllDomainStats',
    cls: 'read',
    acl: acl('connect:search_domains'),
    aclFilter: 'domain:read',
    args: struct<{ doms: RemoteDomain[]; stats: number; flags: number }>(
      ['doms', array(Limits.DOMAIN_LIST_MAX, domainCodec)],
      ['stats', uint],
      ['flags', uint],
    ),
    ret: struct<{ retStats: StatsRecord[] }>(['retStats', array(Limits.DOMAIN_LIST_MAX, statsRecord)]),
  }),
  // @acl domain:fs_freeze (the guest agent): a read-only connection, which holds no such permission, is refused.
  DOMAIN_GET_FSINFO: defineProc({
    proc: 349,
    name: 'domainGetFsinfo',
    cls: 'read',
    refuseReadOnly: true, // virCheckReadOnly in virDomainGetFSInfo
    acl: acl('domain:fs_freeze'),
    args: domFlags,
    ret: struct<{ info: FsInfo[]; ret: number }>(['info', array(DomainExtraLimits.FSINFO_MAX, fsInfo)], ['ret', uint]),
  }),
  // @acl: domain:read, and domain:write::source:VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT (asking the guest agent
  // talks to the guest, which libvirt counts as a write).
  DOMAIN_INTERFACE_ADDRESSES: defineProc({
    proc: 353,
    name: 'domainInterfaceAddresses',
    cls: 'read',
    acl: acl('domain:read', { perm: 'domain:write', whenArgs: { source: INTERFACE_ADDRESSES_SRC_AGENT } }),
    args: struct<{ dom: RemoteDomain; source: number; flags: number }>(['dom', domainCodec], ['source', uint], ['flags', uint]),
    ret: struct<{ ifaces: DomainIface[] }>(['ifaces', array(DomainExtraLimits.INTERFACE_MAX, iface)]),
  }),
  // ---------- part B (issue 12): the rest of the test driver's hypervisor table ----------
  DOMAIN_SET_MAX_MEMORY: defineProc({
    proc: 30,
    name: 'domainSetMaxMemory',
    cls: 'write',
    acl: acl('domain:write'),
    args: struct<{ dom: RemoteDomain; memory: bigint }>(['dom', domainCodec], ['memory', uhyper]),
    ret: XdrVoid,
  }),
  DOMAIN_SET_LIFECYCLE_ACTION: defineProc({
    proc: 390,
    name: 'domainSetLifecycleAction',
    cls: 'write',
    acl: acl('domain:write'),
    args: struct<{ dom: RemoteDomain; type: number; action: number; flags: number }>(['dom', domainCodec], ['type', uint], ['action', uint], ['flags', uint]),
    ret: XdrVoid,
  }),
  DOMAIN_SET_MEMORY_STATS_PERIOD: defineProc({
    proc: 308,
    name: 'domainSetMemoryStatsPeriod',
    cls: 'write',
    acl: tuneAcl(),
    args: struct<{ dom: RemoteDomain; period: number; flags: number }>(['dom', domainCodec], ['period', int], ['flags', uint]),
    ret: XdrVoid,
  }),
  // @acl domain:write: the time comes from the guest agent.
  DOMAIN_GET_TIME: defineProc({
    proc: 337,
    name: 'domainGetTime',
    cls: 'read',
    refuseReadOnly: true, // virCheckReadOnly in virDomainGetTime
    acl: acl('domain:write'),
    args: domFlags,
    ret: struct<{ seconds: bigint; nseconds: number }>(['seconds', hyper], ['nseconds', uint]),
  }),
  DOMAIN_SET_TIME: defineProc({
    proc: 338,
    name: 'domainSetTime',
    cls: 'write',
    acl: acl('domain:set_time'),
    args: struct<{ dom: RemoteDomain; seconds: bigint; nseconds: number; flags: number }>(
      ['dom', domainCodec],
      ['seconds', hyper],
      ['nseconds', uint],
      ['flags', uint],
    ),
    ret: XdrVoid,
  }),
  DOMAIN_GET_IOTHREAD_INFO: defineProc({
    proc: 351,
    name: 'domainGetIothreadInfo',
    cls: 'read',
    acl: acl('domain:read'),
    args: domFlags,
    ret: struct<{ info: { iothreadId: number; cpumap: Buffer }[]; ret: number }>(
      ['info', array(X.IOTHREAD_INFO_MAX, struct<{ iothreadId: number; cpumap: Buffer }>(['iothreadId', uint], ['cpumap', opaque(X.CPUMAP_MAX)]))],
      ['ret', uint],
    ),
  }),
  DOMAIN_PIN_IOTHREAD: defineProc({
    proc: 352,
    name: 'domainPinIothread',
    cls: 'write',
    acl: tuneAcl(),
    args: struct<{ dom: RemoteDomain; iothreadsId: number; cpumap: Buffer; flags: number }>(
      ['dom', domainCodec],
      ['iothreadsId', uint],
      ['cpumap', opaque(X.CPUMAP_MAX)],
      ['flags', uint],
    ),
    ret: XdrVoid,
  }),
  DOMAIN_ADD_IOTHREAD: defineProc({
    proc: 355,
    name: 'domainAddIothread',
    cls: 'write',
    acl: tuneAcl(),
    args: struct<{ dom: RemoteDomain; iothreadId: number; flags: number }>(['dom', domainCodec], ['iothreadId', uint], ['flags', uint]),
    ret: XdrVoid,
  }),
  DOMAIN_DEL_IOTHREAD: defineProc({
    proc: 356,
    name: 'domainDelIothread',
    cls: 'write',
    acl: tuneAcl(),
    args: struct<{ dom: RemoteDomain; iothreadId: number; flags: number }>(['dom', domainCodec], ['iothreadId', uint], ['flags', uint]),
    ret: XdrVoid,
  }),
  DOMAIN_SET_IOTHREAD_PARAMS: defineProc({
    proc: 402,
    name: 'domainSetIothreadParams',
    cls: 'write',
    acl: tuneAcl(),
    args: struct<{ dom: RemoteDomain; iothreadId: number; params: TypedParam[]; flags: number }>(
      ['dom', domainCodec],
      ['iothreadId', uint],
      ['params', typedParams(X.IOTHREAD_PARAMS_MAX)],
      ['flags', uint],
    ),
    ret: XdrVoid,
  }),
  DOMAIN_GET_PERF_EVENTS: defineProc({
    proc: 365,
    name: 'domainGetPerfEvents',
    cls: 'read',
    acl: acl('domain:read'),
    args: domFlags,
    ret: struct<{ params: TypedParam[] }>(['params', typedParams(X.PERF_EVENTS_MAX)]),
  }),
  DOMAIN_SET_PERF_EVENTS: defineProc({
    proc: 366,
    name: 'domainSetPerfEvents',
    cls: 'write',
    acl: acl('domain:write'),
    args: setParams(X.PERF_EVENTS_MAX),
    ret: XdrVoid,
  }),
  DOMAIN_SET_INTERFACE_PARAMETERS: defineProc({
    proc: 256,
    name: 'domainSetInterfaceParameters',
    cls: 'write',
    acl: tuneAcl(),
    args: struct<{ dom: RemoteDomain; device: string; params: TypedParam[]; flags: number }>(
      ['dom', domainCodec],
      ['device', str],
      ['params', typedParams(X.INTERFACE_PARAMETERS_MAX)],
      ['flags', uint],
    ),
    ret: XdrVoid,
  }),
  DOMAIN_GET_INTERFACE_PARAMETERS: defineProc({
    proc: 257,
    name: 'domainGetInterfaceParameters',
    cls: 'read',
    acl: acl('domain:read'),
    args: struct<{ dom: RemoteDomain; device: string; nparams: number; flags: number }>(
      ['dom', domainCodec],
      ['device', str],
      ['nparams', int],
      ['flags', uint],
    ),
    ret: paramsRet(X.INTERFACE_PARAMETERS_MAX),
  }),
  DOMAIN_SET_BLOCK_IO_TUNE: defineProc({
    proc: 252,
    name: 'domainSetBlockIoTune',
    cls: 'write',
    acl: tuneAcl(),
    args: struct<{ dom: RemoteDomain; disk: string; params: TypedParam[]; flags: number }>(
      ['dom', domainCodec],
      ['disk', str],
      ['params', typedParams(X.BLOCK_IO_TUNE_PARAMETERS_MAX)],
      ['flags', uint],
    ),
    ret: XdrVoid,
  }),
  DOMAIN_GET_BLOCK_IO_TUNE: defineProc({
    proc: 253,
    name: 'domainGetBlockIoTune',
    cls: 'read',
    acl: acl('domain:read'),
    args: struct<{ dom: RemoteDomain; disk: string | null; nparams: number; flags: number }>(
      ['dom', domainCodec],
      ['disk', optString('disk')],
      ['nparams', int],
      ['flags', uint],
    ),
    ret: paramsRet(X.BLOCK_IO_TUNE_PARAMETERS_MAX),
  }),
  DOMAIN_FSFREEZE: defineProc({
    proc: 335,
    name: 'domainFsfreeze',
    cls: 'write',
    acl: acl('domain:fs_freeze'),
    args: struct<{ dom: RemoteDomain; mountpoints: string[]; flags: number }>(
      ['dom', domainCodec],
      ['mountpoints', array(X.FSFREEZE_MOUNTPOINTS_MAX, str)],
      ['flags', uint],
    ),
    ret: retInt('filesystems'),
  }),
  DOMAIN_FSTHAW: defineProc({
    proc: 336,
    name: 'domainFsthaw',
    cls: 'write',
    acl: acl('domain:fs_freeze'),
    args: struct<{ dom: RemoteDomain; mountpoints: string[]; flags: number }>(
      ['dom', domainCodec],
      ['mountpoints', array(X.FSFREEZE_MOUNTPOINTS_MAX, str)],
      ['flags', uint],
    ),
    ret: retInt('filesystems'),
  }),
  DOMAIN_FSTRIM: defineProc({
    proc: 294,
    name: 'domainFstrim',
    cls: 'write',
    acl: acl('domain:fs_trim'),
    args: struct<{ dom: RemoteDomain; mountPoint: string | null; minimum: bigint; flags: number }>(
      ['dom', domainCodec],
      ['mountPoint', optString('mountPoint')],
      ['minimum', uhyper],
      ['flags', uint],
    ),
    ret: XdrVoid,
  }),
  DOMAIN_INJECT_NMI: defineProc({ proc: 210, name: 'domainInjectNmi', cls: 'write', acl: acl('domain:inject_nmi'), args: domFlags, ret: XdrVoid }),
  DOMAIN_SEND_PROCESS_SIGNAL: defineProc({
    proc: 295,
    name: 'domainSendProcessSignal',
    cls: 'write',
    acl: acl('domain:send_signal'),
    args: struct<{ dom: RemoteDomain; pidValue: bigint; signum: number; flags: number }>(
      ['dom', domainCodec],
      ['pidValue', hyper],
      ['signum', uint],
      ['flags', uint],
    ),
    ret: XdrVoid,
  }),
  DOMAIN_GET_CPU_STATS: defineProc({
    proc: 262,
    name: 'domainGetCpuStats',
    cls: 'read',
    acl: acl('domain:read'),
    args: struct<{ dom: RemoteDomain; nparams: number; startCpu: number; ncpus: number; flags: number }>(
      ['dom', domainCodec],
      ['nparams', uint],
      ['startCpu', int],
      ['ncpus', uint],
      ['flags', uint],
    ),
    ret: struct<{ params: TypedParam[]; nparams: number }>(['params', typedParams(X.GET_CPU_STATS_MAX)], ['nparams', int]),
  }),
  DOMAIN_MEMORY_PEEK: defineProc({
    proc: 104,
    name: 'domainMemoryPeek',
    cls: 'read',
    refuseReadOnly: true, // virCheckReadOnly in virDomainMemoryPeek
    acl: acl('domain:mem_read'),
    args: struct<{ dom: RemoteDomain; offset: bigint; size: number; flags: number }>(['dom', domainCodec], ['offset', uhyper], ['size', uint], ['flags', uint]),
    ret: struct<{ buffer: Buffer }>(['buffer', opaque(X.MEMORY_PEEK_BUFFER_MAX)]),
  }),
  DOMAIN_SET_USER_PASSWORD: defineProc({
    proc: 357,
    name: 'domainSetUserPassword',
    cls: 'write',
    acl: acl('domain:set_password'),
    args: struct<{ dom: RemoteDomain; user: string | null; password: string | null; flags: number }>(
      ['dom', domainCodec],
      ['user', optString('user')],
      ['password', optString('password')],
      ['flags', uint],
    ),
    ret: XdrVoid,
  }),
  DOMAIN_SEND_KEY: defineProc({
    proc: 226,
    name: 'domainSendKey',
    cls: 'write',
    acl: acl('domain:send_input'),
    args: struct<{ dom: RemoteDomain; codeset: number; holdtime: number; keycodes: number[]; flags: number }>(
      ['dom', domainCodec],
      ['codeset', uint],
      ['holdtime', uint],
      ['keycodes', uintArray(X.SEND_KEY_MAX)],
      ['flags', uint],
    ),
    ret: XdrVoid,
  }),
  DOMAIN_GET_LAUNCH_SECURITY_INFO: defineProc({
    proc: 396,
    name: 'domainGetLaunchSecurityInfo',
    cls: 'read',
    acl: acl('domain:read'),
    args: domFlags,
    ret: struct<{ params: TypedParam[] }>(['params', typedParams(X.LAUNCH_SECURITY_INFO_PARAMS_MAX)]),
  }),
  // Without descriptors these are create/define; a call carrying descriptors is refused by the session (no fd passing).
  DOMAIN_CREATE_XML_WITH_FILES: defineProc({
    proc: 309,
    name: 'domainCreateXmlWithFiles',
    cls: 'write',
    acl: acl('domain:write', 'domain:start'),
    // named `xml` as 10's is: the dispatcher decides define/create on the session tenant's `vm:*` by that name
    args: struct<{ xml: string; flags: number }>(['xml', str], ['flags', uint]),
    ret: struct<{ dom: RemoteDomain }>(['dom', domainCodec]),
  }),
  DOMAIN_CREATE_WITH_FILES: defineProc({
    proc: 310,
    name: 'domainCreateWithFiles',
    cls: 'write',
    acl: acl('domain:start'),
    args: domFlags,
    ret: struct<{ dom: RemoteDomain }>(['dom', domainCodec]),
  }),
  // Old-style lifecycle callbacks (virConnectDomainEventRegister): one per call, events as 107 messages.
  CONNECT_DOMAIN_EVENT_REGISTER: defineProc({
    proc: 105,
    name: 'connectDomainEventRegister',
    cls: 'session',
    acl: acl('connect:search_domains'),
    aclFilter: 'domain:getattr',
    args: XdrVoid,
    ret: retInt('cbRegistered'),
  }),
  CONNECT_DOMAIN_EVENT_DEREGISTER: defineProc({
    proc: 106,
    name: 'connectDomainEventDeregister',
    cls: 'session',
    acl: acl('connect:read'),
    args: XdrVoid,
    ret: retInt('cbRegistered'),
  }),
} as const;
