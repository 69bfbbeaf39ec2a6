// SPDX-License-Identifier: Apache-2.0
// Handlers for the procedures of ../../protocol/procs/domain-extra.ts: domain stats, CPU pinning, tuning.
// Facts the mirror holds (state, memory, name) are answered here; the rest are one DOMAIN_READ action each.
import {
  VG_ERR_ARG_INVALID,
  VG_ERR_ARG_UNSUPPORTED,
  VG_ERR_DOMAIN_ARG,
  VG_ERR_DOMAIN_STATE,
  VG_ERR_INTERNAL,
  VG_ERR_NO_DOMAIN,
  VG_ERR_XML_INVALID,
} from '../../common/errors';
import { ControlAction, type DomainInfo, type DomainSummary, IpcLimits, Op, checkDomainName, uuidToString } from '../../ipc/program';
import { DomainExtraIpcLimits, PERF_EVENTS, type TuneParam } from '../../ipc/objects/domain-extra';
import { AffectFlags } from '../../protocol/constants';
import { DomainExtraLimits, PD, type StatsRecord } from '../../protocol/procs/domain-extra';
import { ParamLimits, type TypedParam } from '../../protocol/typed-params';
import type { RemoteDomain } from '../../protocol/types';
import { type Entry, type HandlerContext, checkFlags, entry, toRemote } from './common';
import { matchesListFlags } from './domain-read';
import { metadataElementXml, parseDomainXml } from '../xml/domain';

const AFFECT = AffectFlags.LIVE | AffectFlags.CONFIG;
const TYPED_PARAM_STRING_OKAY = 4; // VIR_TYPED_PARAM_STRING_OKAY: the client can take string parameters

async function info(ctx: HandlerContext, dom: RemoteDomain): Promise<DomainInfo> {
  const d = ctx.mirror.info(dom.uuid);
  if (d === null) throw VG_ERR_NO_DOMAIN(`: no domain with matching uuid '${uuidToString(dom.uuid)}'`);
  return d ?? ctx.helper.act(Op.DOMAIN_READ_REQ, 'info', { uuid: dom.uuid });
}

const active = (d: DomainSummary): boolean => d.id !== -1;

async function running(ctx: HandlerContext, dom: RemoteDomain): Promise<DomainInfo> {
  const d = await info(ctx, dom);
  if (!active(d)) throw VG_ERR_DOMAIN_STATE('domain is not running');
  return d;
}

const affect = (flags: number) => ({ live: (flags & AffectFlags.LIVE) !== 0, config: (flags & AffectFlags.CONFIG) !== 0 });

// virBitmapToDataBuf: bit N of the map is bit N%8 of byte N/8, cut to `maplen` bytes.
export function cpumapBytes(cpus: readonly number[], maplen: number, out = Buffer.alloc(maplen), at = 0): Buffer {
  for (const c of cpus) if (c < maplen * 8) out[at + (c >> 3)] |= 1 << (c & 7);
  return out;
}

function mapsBuffer(maps: readonly number[][], rows: number, maplen: number): Buffer {
  const out = Buffer.alloc(rows * maplen);
  maps.forEach((m, i) => cpumapBytes(m, maplen, out, i * maplen));
  return out;
}

// virCheckPositiveArg / libvirt's remote dispatcher bounds, in libvirt's words.
function positive(v: number, name: string, fn: string): void {
  if (v <= 0) throw VG_ERR_ARG_INVALID(`${name} in ${fn} must be greater than zero`);
}
function cpumapsBound(rows: number, maplen: number, what: string): void {
  if (rows * maplen > DomainExtraLimits.CPUMAPS_MAX) throw VG_ERR_INTERNAL(`${what} * maplen > REMOTE_CPUMAPS_MAX`);
}

const toTyped = (p: TuneParam): TypedParam => p as TypedParam; // the same union, minus the double the helper never sends

// GET_*_PARAMETERS: nparams 0 asks how many there are; strings only to clients that said they take them.
function paramsReply(params: TuneParam[], nparams: number, flags: number, max: number): { params: TypedParam[]; nparams: number } {
  if (nparams < 0 || nparams > max) throw VG_ERR_INTERNAL('nparams too large');
  if (nparams === 0) return { params: [], nparams: params.length };
  const out = params.slice(0, nparams);
  return { params: out.filter((p) => p.type !== 7 || (flags & TYPED_PARAM_STRING_OKAY) !== 0).map(toTyped), nparams: out.length };
}

const statsHandlers: Entry[] = [
  entry(PD.DOMAIN_GET_MAX_MEMORY, async (ctx, { dom }) => ({ memory: (await info(ctx, dom)).maxMemKiB })),
  entry(PD.DOMAIN_IS_UPDATED, async (ctx, { dom }) => {
    await info(ctx, dom);
    return { updated: 0 }; // the test driver never has a pending config change to report
  }),
  entry(PD.DOMAIN_GET_HOSTNAME, async (ctx, { dom, flags }) => {
    checkFlags(flags, 0, 'testDomainGetHostname');
    const d = await running(ctx, dom);
    return { hostname: `${d.name}host` };
  }),
  entry(PD.DOMAIN_GET_CONTROL_INFO, async (ctx, { dom, flags }) => {
    checkFlags(flags, 0, 'testDomainGetControlInfo');
    await running(ctx, dom);
    return { state: 0, details: 0, stateTime: 0n }; // VIR_DOMAIN_CONTROL_OK: no job is ever pending
  }),
  entry(PD.DOMAIN_GET_VCPUS, async (ctx, { dom, maxinfo, maplen }) => {
    if (maxinfo > DomainExtraLimits.VCPUINFO_MAX) throw VG_ERR_INTERNAL('maxinfo > REMOTE_VCPUINFO_MAX');
    positive(maxinfo, 'maxinfo', 'virDomainGetVcpus');
    if (maplen < 0) throw VG_ERR_ARG_INVALID('maplen in virDomainGetVcpus must be zero or greater');
    cpumapsBound(maxinfo, maplen, 'maxinfo');
    const a = await ctx.helper.act(Op.DOMAIN_READ_REQ, 'vcpus', { uuid: dom.uuid, maxinfo });
    return { info: a.info.map((v) => ({ number: v.number, state: v.state, cpuTime: v.cpuTimeNs, cpu: v.cpu })), cpumaps: mapsBuffer(a.maps, maxinfo, maplen) };
  }),
  entry(PD.DOMAIN_GET_VCPU_PIN_INFO, async (ctx, { dom, ncpumaps, maplen, flags }) => {
    if (ncpumaps > DomainExtraLimits.VCPUINFO_MAX) throw VG_ERR_INTERNAL('ncpumaps > REMOTE_VCPUINFO_MAX');
    positive(ncpumaps, 'ncpumaps', 'virDomainGetVcpuPinInfo');
    positive(maplen, 'maplen', 'virDomainGetVcpuPinInfo');
    cpumapsBound(ncpumaps, maplen, 'maxinfo');
    checkFlags(flags, AFFECT, 'virDomainGetVcpuPinInfo');
    const a = await ctx.helper.act(Op.DOMAIN_READ_REQ, 'vcpuPinInfo', { uuid: dom.uuid, ncpumaps, ...affect(flags) });
    return { cpumaps: mapsBuffer(a.maps, ncpumaps, maplen), num: a.maps.length };
  }),
  entry(PD.DOMAIN_GET_EMULATOR_PIN_INFO, async (ctx, { dom, maplen, flags }) => {
    positive(maplen, 'maplen', 'virDomainGetEmulatorPinInfo');
    cpumapsBound(1, maplen, 'maxinfo');
    checkFlags(flags, AFFECT, 'testDomainGetEmulatorPinInfo');
    const a = await ctx.helper.act(Op.DOMAIN_READ_REQ, 'emulatorPinInfo', { uuid: dom.uuid, ...affect(flags) });
    return { cpumaps: cpumapBytes(a.map, maplen), ret: 1 };
  }),
  entry(PD.DOMAIN_BLOCK_STATS, async (ctx, { dom, path }) => {
    const a = await ctx.helper.act(Op.DOMAIN_READ_REQ, 'blockStats', { uuid: dom.uuid, path: bounded(path, 'path') });
    return { rdReq: a.rdReq, rdBytes: a.rdBytes, wrReq: a.wrReq, wrBytes: a.wrBytes, errs: a.errs };
  }),
  entry(PD.DOMAIN_INTERFACE_STATS, async (ctx, { dom, device }) => {
    const a = await ctx.helper.act(Op.DOMAIN_READ_REQ, 'interfaceStats', { uuid: dom.uuid, device: bounded(device, 'device') });
    const { action: _, ...stats } = a;
    return stats;
  }),
  entry(PD.DOMAIN_MEMORY_STATS, async (ctx, { dom, maxStats, flags }) => {
    if (maxStats > DomainExtraLimits.MEMORY_STATS_MAX) throw VG_ERR_INTERNAL('maxStats > REMOTE_DOMAIN_MEMORY_STATS_MAX');
    checkFlags(flags, 0, 'testDomainMemoryStats');
    if (maxStats === 0) {
      await info(ctx, dom);
      return { stats: [] };
    }
    return { stats: (await ctx.helper.act(Op.DOMAIN_READ_REQ, 'memoryStats', { uuid: dom.uuid, maxStats })).stats };
  }),
  entry(PD.DOMAIN_GET_BLOCK_INFO, async (ctx, { dom, path, flags }) => {
    checkFlags(flags, 0, 'testDomainGetBlockInfo');
    const a = await ctx.helper.act(Op.DOMAIN_READ_REQ, 'blockInfo', { uuid: dom.uuid, path: bounded(path, 'path') });
    return { allocation: a.allocation, capacity: a.capacity, physical: a.physical };
  }),
  entry(PD.DOMAIN_GET_DISK_ERRORS, async (ctx, { dom, maxerrors, flags }) => {
    if (maxerrors > DomainExtraLimits.DISK_ERRORS_MAX) throw VG_ERR_INTERNAL('maxerrors too large');
    checkFlags(flags, 0, 'testDomainGetDiskErrors');
    const a = await ctx.helper.act(Op.DOMAIN_READ_REQ, 'diskErrors', { uuid: dom.uuid, maxerrors });
    return { errors: a.errors, nerrors: a.nerrors };
  }),
  entry(PD.DOMAIN_GET_FSINFO, async (ctx, { dom, flags }) => {
    checkFlags(flags, 0, 'testDomainGetFSInfo');
    const a = await ctx.helper.act(Op.DOMAIN_READ_REQ, 'fsInfo', { uuid: dom.uuid });
    return { info: a.info, ret: a.info.length };
  }),
  entry(PD.DOMAIN_INTERFACE_ADDRESSES, async (ctx, { dom, source, flags }) => {
    checkFlags(flags, 0, 'testDomainInterfaceAddresses');
    if (source > 2) throw VG_ERR_ARG_UNSUPPORTED(`Unknown IP address data source ${source}`);
    // The guest agent source also needed domain:write (the table's argument rule), decided before this runs.
    return { ifaces: (await ctx.helper.act(Op.DOMAIN_READ_REQ, 'interfaceAddresses', { uuid: dom.uuid, source })).ifaces };
  }),
  entry(PD.CONNECT_GET_ALL_DOMAIN_STATS, async (ctx, { doms, stats, flags }) => {
    const F = { FILTERS: 0xff, NOWAIT: 1 << 29, BACKING: 1 << 30, ENFORCE: 0x80000000 };
    checkFlags(flags, F.FILTERS | F.NOWAIT | F.BACKING | F.ENFORCE, 'testConnectGetAllDomainStats');
    const SUPPORTED = 1 | 128; // VIR_DOMAIN_STATS_STATE | VIR_DOMAIN_STATS_IOTHREAD (the test driver's)
    if (stats !== 0 && (flags & F.ENFORCE) !== 0 && (stats & ~SUPPORTED) !== 0)
      throw VG_ERR_ARG_UNSUPPORTED(`Stats types bits 0x${((stats & ~SUPPORTED) >>> 0).toString(16)} are not supported by this daemon`);
    const want = stats === 0 ? SUPPORTED : stats;
    const all = ctx.mirror.list() ?? (await ctx.helper.act(Op.DOMAIN_READ_REQ, 'list', {})).domains;
    let chosen: DomainSummary[];
    if (doms.length > 0) {
      // virDomainListGetStats: the named domains, in the caller's order; unknown ones are skipped.
      const byUuid = new Map(all.map((d) => [uuidToString(d.uuid), d]));
      chosen = doms.map((d) => byUuid.get(uuidToString(d.uuid))).filter((d): d is DomainSummary => d !== undefined);
    } else chosen = all;
    const shown = chosen.filter(
      (d) =>
        matchesListFlags(d, flags & F.FILTERS) &&
        // @aclfilter domain:read (a VM the caller may only getattr is left out, as libvirt's filter does)
        ctx.canSee({ kind: 'domain', name: d.name, uuid: uuidToString(d.uuid), tenant: d.tenant ?? '' }, 'domain:read'),
    );
    // testDomainGetStatsIOThread: a running domain's iothreads and their polling settings, for all of them in one call
    const polled =
      (want & 128) !== 0 && shown.some(active)
        ? new Map(
            (await ctx.helper.act(Op.DOMAIN_READ_REQ, 'iothreadStats', { uuids: shown.filter(active).map((d) => d.uuid) })).domains.map((x) => [
              uuidToString(x.uuid),
              x.threads,
            ]),
          )
        : null;
    const records: StatsRecord[] = [];
    for (const d of shown) {
      const params: TypedParam[] = [];
      if ((want & 1) !== 0) params.push({ field: 'state.state', type: 1, value: d.state }, { field: 'state.reason', type: 1, value: d.reason });
      const threads = polled?.get(uuidToString(d.uuid));
      if (threads) {
        if (threads.length > 0) params.push({ field: 'iothread.count', type: 2, value: threads.length });
        for (const t of threads)
          params.push(
            { field: `iothread.${t.id}.poll-max-ns`, type: 4, value: t.maxNs },
            { field: `iothread.${t.id}.poll-grow`, type: 2, value: t.grow },
            { field: `iothread.${t.id}.poll-shrink`, type: 2, value: t.shrink },
          );
      }
      records.push({ dom: toRemote(d), params });
    }
    return { retStats: records };
  }),
];

const metadataRead: Entry[] = [
  entry(PD.DOMAIN_GET_METADATA, async (ctx, { dom, type, uri, flags }) => {
    // virDomainGetMetadata's checks, then the driver's
    if ((flags & AffectFlags.LIVE) !== 0 && (flags & AffectFlags.CONFIG) !== 0)
      throw VG_ERR_ARG_INVALID("Flags 'VIR_DOMAIN_AFFECT_LIVE' and 'VIR_DOMAIN_AFFECT_CONFIG' are mutually exclusive");
    if ((type === 0 || type === 1) && uri !== null) throw VG_ERR_ARG_INVALID('uri in virDomainGetMetadata must be NULL');
    if (type === 2 && uri === null) throw VG_ERR_ARG_INVALID('uri in virDomainGetMetadata must not be NULL');
    checkFlags(flags, AFFECT, 'virDomainObjGetMetadata');
    if (type < 0 || type > 2) throw VG_ERR_ARG_INVALID(`unknown metadata type '${type}'`);
    if (uri !== null && (Buffer.byteLength(uri) > DomainExtraIpcLimits.TEXT_MAX || uri.includes('\0'))) throw VG_ERR_ARG_INVALID('uri is too long');
    const a = await ctx.helper.act(Op.DOMAIN_READ_REQ, 'metadata', { uuid: dom.uuid, type, uri, ...affect(flags) });
    return { metadata: a.element === null ? a.value : metadataElementXml(a.element) };
  }),
];

const tuneHandlers: Entry[] = [
  entry(PD.DOMAIN_GET_SCHEDULER_TYPE, async (ctx, { dom }) => {
    await info(ctx, dom);
    return { type: 'fair', nparams: 1 };
  }),
  entry(PD.DOMAIN_GET_SCHEDULER_PARAMETERS, async (ctx, { dom, nparams }) => {
    const a = await ctx.helper.act(Op.DOMAIN_READ_REQ, 'tuning', { uuid: dom.uuid, kind: 'scheduler', live: false, config: false });
    return { params: paramsReply(a.params, Math.max(nparams, 1), 0, ParamLimits.SCHEDULER).params };
  }),
  entry(PD.DOMAIN_GET_SCHEDULER_PARAMETERS_FLAGS, async (ctx, { dom, nparams, flags }) => {
    if (nparams > ParamLimits.SCHEDULER) throw VG_ERR_INTERNAL('nparams too large');
    checkFlags(flags, 0, 'testDomainGetSchedulerParametersFlags');
    const a = await ctx.helper.act(Op.DOMAIN_READ_REQ, 'tuning', { uuid: dom.uuid, kind: 'scheduler', live: false, config: false });
    return { params: paramsReply(a.params, Math.max(nparams, 1), flags, ParamLimits.SCHEDULER).params };
  }),
  ...(
    [
      [PD.DOMAIN_GET_MEMORY_PARAMETERS, 'memory', ParamLimits.MEMORY, 'testDomainGetMemoryParameters'],
      [PD.DOMAIN_GET_BLKIO_PARAMETERS, 'blkio', ParamLimits.BLKIO, 'testDomainGetBlkioParameters'],
      [PD.DOMAIN_GET_NUMA_PARAMETERS, 'numa', ParamLimits.NUMA, 'testDomainGetNumaParameters'],
    ] as const
  ).map(([def, kind, max, fn]) =>
    entry(def, async (ctx, { dom, nparams, flags }) => {
      if (nparams < 0 || nparams > max) throw VG_ERR_INTERNAL('nparams too large');
      checkFlags(flags, AFFECT | TYPED_PARAM_STRING_OKAY, fn);
      const a = await ctx.helper.act(Op.DOMAIN_READ_REQ, 'tuning', { uuid: dom.uuid, kind, ...affect(flags) });
      return paramsReply(a.params, nparams, flags, max);
    }),
  ),
];

// A vCPU number beyond any domain's (the IPC bound) is simply not present, in the driver's words.
function vcpuIndex(vcpu: number): number {
  if (vcpu >= DomainExtraIpcLimits.VCPUS_MAX) throw VG_ERR_DOMAIN_ARG(`requested vcpu '${vcpu}' is not present in the domain`);
  return vcpu;
}

// The CPUs a cpumap names (virBitmapNewData: bit N%8 of byte N/8).
export function cpusOf(map: Buffer): number[] {
  const out: number[] = [];
  for (let i = 0; i < map.length * 8; i++) if (map[i >> 3] & (1 << (i & 7))) out.push(i);
  return out;
}

// Typed parameters cross to the helper only as the kinds it keeps (no doubles: no tunable here takes one).
function tuneParams(params: TypedParam[]): TuneParam[] {
  return params.map((p) => {
    if (p.type === 5) throw VG_ERR_ARG_INVALID(`invalid type 'double' for parameter '${p.field}'`);
    if (!/^[a-z_][a-z0-9_.]{0,78}$/.test(p.field)) throw VG_ERR_ARG_UNSUPPORTED(`parameter '${p.field}' not supported`);
    if (p.type === 7 && Buffer.byteLength(p.value) > 4096) throw VG_ERR_ARG_INVALID(`parameter '${p.field}' is too long`);
    return p as TuneParam;
  });
}

const writeHandlers: Entry[] = [
  entry(PD.DOMAIN_PIN_VCPU, async (ctx, { dom, vcpu, cpumap }) => {
    positive(cpumap.length, 'maplen', 'virDomainPinVcpu');
    await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'pinVcpu', { actor: ctx.actor(), uuid: dom.uuid, vcpu: vcpuIndex(vcpu), cpus: cpusOf(cpumap) });
  }),
  entry(PD.DOMAIN_PIN_VCPU_FLAGS, async (ctx, { dom, vcpu, cpumap, flags }) => {
    positive(cpumap.length, 'maplen', 'virDomainPinVcpuFlags');
    checkFlags(flags, 0, 'testDomainPinVcpuFlags');
    await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'pinVcpu', { actor: ctx.actor(), uuid: dom.uuid, vcpu: vcpuIndex(vcpu), cpus: cpusOf(cpumap) });
  }),
  entry(PD.DOMAIN_PIN_EMULATOR, async (ctx, { dom, cpumap, flags }) => {
    positive(cpumap.length, 'maplen', 'virDomainPinEmulator');
    checkFlags(flags, AFFECT, 'testDomainPinEmulator');
    await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'pinEmulator', { actor: ctx.actor(), uuid: dom.uuid, cpus: cpusOf(cpumap), ...affect(flags) });
  }),
  entry(PD.DOMAIN_SET_SCHEDULER_PARAMETERS, async (ctx, { dom, params }) => {
    await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'setTuning', {
      actor: ctx.actor(),
      uuid: dom.uuid,
      kind: 'scheduler',
      params: tuneParams(params),
      live: false,
      config: false,
    });
  }),
  ...(
    [
      [PD.DOMAIN_SET_SCHEDULER_PARAMETERS_FLAGS, 'scheduler', 0, 'testDomainSetSchedulerParametersFlags'],
      [PD.DOMAIN_SET_MEMORY_PARAMETERS, 'memory', AFFECT, 'testDomainSetMemoryParameters'],
      [PD.DOMAIN_SET_BLKIO_PARAMETERS, 'blkio', AFFECT, 'testDomainSetBlkioParameters'],
      [PD.DOMAIN_SET_NUMA_PARAMETERS, 'numa', AFFECT, 'testDomainSetNumaParameters'],
    ] as const
  ).map(([def, kind, allowed, fn]) =>
    entry(def, async (ctx, { dom, params, flags }) => {
      checkFlags(flags, allowed, fn);
      await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'setTuning', { actor: ctx.actor(), uuid: dom.uuid, kind, params: tuneParams(params), ...affect(flags) });
    }),
  ),
];

const SAVE_FLAGS = 1 | 2 | 4; // VIR_DOMAIN_SAVE_BYPASS_CACHE | RUNNING | PAUSED: the test driver takes and ignores them

const lifecycleHandlers: Entry[] = [
  entry(PD.DOMAIN_SET_AUTOSTART, async (ctx, { dom, autostart }) => {
    await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'setAutostart', { actor: ctx.actor(), uuid: dom.uuid, autostart: autostart !== 0 });
  }),
  entry(PD.DOMAIN_RESET, async (ctx, { dom, flags }) => {
    checkFlags(flags, 0, 'testDomainReset');
    await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'reset', { actor: ctx.actor(), uuid: dom.uuid });
  }),
  entry(PD.DOMAIN_MANAGED_SAVE, async (ctx, { dom, flags }) => {
    checkFlags(flags, SAVE_FLAGS, 'testDomainManagedSave');
    if ((flags & 2) !== 0 && (flags & 4) !== 0) throw VG_ERR_ARG_INVALID("Flags 'VIR_DOMAIN_SAVE_RUNNING' and 'VIR_DOMAIN_SAVE_PAUSED' are mutually exclusive");
    await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'managedSave', { actor: ctx.actor(), uuid: dom.uuid });
  }),
  entry(PD.DOMAIN_MANAGED_SAVE_REMOVE, async (ctx, { dom, flags }) => {
    checkFlags(flags, 0, 'testDomainManagedSaveRemove');
    await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'managedSaveRemove', { actor: ctx.actor(), uuid: dom.uuid });
  }),
  entry(PD.DOMAIN_RENAME, async (ctx, { dom, newName, flags }) => {
    if (newName === null) throw VG_ERR_ARG_INVALID('new_name in virDomainRename must not be NULL');
    checkFlags(flags, 0, 'testDomainRename');
    if (newName.includes('/')) throw VG_ERR_XML_INVALID(`name ${newName} cannot contain '/'`);
    try {
      checkDomainName(newName);
    } catch {
      throw VG_ERR_ARG_INVALID(`domain names are 1-${IpcLimits.NAME_MAX} characters of [A-Za-z0-9_.+:@-], not starting with . + : @ or -`);
    }
    await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'rename', { actor: ctx.actor(), uuid: dom.uuid, name: newName });
    return { retcode: 0 };
  }),
];

// Paths and device names bounded before they cross to the helper (its codec refuses longer ones outright).
function bounded(s: string, what: string): string {
  if (Buffer.byteLength(s) > 4096 || s.includes('\0')) throw VG_ERR_ARG_INVALID(`${what} is too long`);
  return s;
}

// ---------- part B (issue 12): the rest of the test driver's hypervisor table ----------

const TEST_TOTAL_CPUTIME = 48772617035n; // the test driver's constant
const TEST_NODE_CORES = 2; // privconn->nodeInfo.cores, which the test driver takes for the host's CPU count here
const NODE_CPU_STATS_MAX = 16; // REMOTE_NODE_CPU_STATS_MAX
const CPU_STATS_NCPUS_MAX = 128; // REMOTE_DOMAIN_GET_CPU_STATS_NCPUS_MAX
const MEMORY_VIRTUAL = 1;
const MEMORY_PHYSICAL = 2;
const PASSWORD_ENCRYPTED = 1;
const TIME_SYNC = 1;
const SIGNAL_LAST = 65; // VIR_DOMAIN_PROCESS_SIGNAL_LAST
const KEYCODE_SET_LAST = 10; // VIR_KEYCODE_SET_LAST

const write = (ctx: HandlerContext) => ({ actor: ctx.actor() });

function iothreadId(id: number, fn: string): number {
  if (id === 0) throw VG_ERR_ARG_INVALID('invalid value of 0 for iothread_id');
  if (id > 0x7fffffff) throw VG_ERR_DOMAIN_ARG(`${fn}: iothread_id ${id} out of range`);
  return id;
}

function mountpoints(list: string[]): string[] {
  return list.map((m) => bounded(m, 'mount point'));
}

const partB: Entry[] = [
  // virDomainSetMaxMemory = SetMemoryFlags(MAXIMUM), "current" (the helper's setMemory, as domain-write.ts uses it)
  entry(PD.DOMAIN_SET_MAX_MEMORY, async (ctx, { dom, memory }) => {
    if (memory === 0n) throw VG_ERR_ARG_INVALID('memory in virDomainSetMaxMemory must not be zero');
    if (memory > IpcLimits.MEMORY_KIB_MAX) throw VG_ERR_ARG_INVALID(`memory ${memory} KiB out of range`);
    await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'setMemory', { ...write(ctx), uuid: dom.uuid, memoryKiB: memory, live: false, config: false, max: true });
  }),
  entry(PD.DOMAIN_SET_LIFECYCLE_ACTION, async (ctx, { dom, type, action, flags }) => {
    checkFlags(flags, AFFECT, 'testDomainSetLifecycleAction');
    // libvirt takes an unknown type or action silently (and then formats nothing sensible); we refuse them
    if (type > 2) throw VG_ERR_ARG_INVALID(`unknown lifecycle type ${type}`);
    if (action > 5) throw VG_ERR_ARG_INVALID(`unknown lifecycle action ${action}`);
    await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'setLifecycleAction', { ...write(ctx), uuid: dom.uuid, type, lifecycleAction: action, ...affect(flags) });
  }),
  entry(PD.DOMAIN_SET_MEMORY_STATS_PERIOD, async (ctx, { dom, period, flags }) => {
    if (period < 0) throw VG_ERR_ARG_INVALID('period in virDomainSetMemoryStatsPeriod must be zero or greater');
    checkFlags(flags, AFFECT, 'testDomainSetMemoryStatsPeriod');
    await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'setMemoryStatsPeriod', { ...write(ctx), uuid: dom.uuid, period, ...affect(flags) });
  }),
  entry(PD.DOMAIN_GET_TIME, async (ctx, { dom, flags }) => {
    checkFlags(flags, 0, 'testDomainGetTime');
    // the test driver asks for RUNNING, so a paused domain has no time either
    if ((await info(ctx, dom)).state !== 1) throw VG_ERR_DOMAIN_STATE('domain is not running');
    const a = await ctx.helper.act(Op.DOMAIN_READ_REQ, 'time', { uuid: dom.uuid });
    return { seconds: a.seconds, nseconds: a.nseconds };
  }),
  entry(PD.DOMAIN_SET_TIME, async (ctx, { dom, seconds, nseconds, flags }) => {
    checkFlags(flags, TIME_SYNC, 'testDomainSetTime');
    if (nseconds > 999999999) throw VG_ERR_ARG_INVALID(`nseconds ${nseconds} out of range`);
    await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'setTime', { ...write(ctx), uuid: dom.uuid, seconds, nseconds });
  }),
  entry(PD.DOMAIN_GET_IOTHREAD_INFO, async (ctx, { dom, flags }) => {
    checkFlags(flags, AFFECT, 'testDomainGetIOThreadInfo');
    const a = await ctx.helper.act(Op.DOMAIN_READ_REQ, 'iothreadInfo', { uuid: dom.uuid, ...affect(flags) });
    // virBitmapToData: as many bytes as the highest set bit needs
    const info = a.threads.map((t) => ({ iothreadId: t.id, cpumap: cpumapBytes(t.cpus, Math.max(1, ((t.cpus[t.cpus.length - 1] ?? 0) >> 3) + 1)) }));
    return { info, ret: info.length };
  }),
  entry(PD.DOMAIN_PIN_IOTHREAD, async (ctx, { dom, iothreadsId, cpumap, flags }) => {
    positive(cpumap.length, 'maplen', 'virDomainPinIOThread');
    checkFlags(flags, AFFECT, 'testDomainPinIOThread');
    if (iothreadsId === 0 || iothreadsId > 0x7fffffff) throw VG_ERR_ARG_INVALID(`iothreadid ${iothreadsId} not found`);
    const cpus = cpusOf(cpumap);
    if (cpus.length === 0) throw VG_ERR_ARG_INVALID('Empty iothread cpumap list for pinning');
    await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'pinIothread', { ...write(ctx), uuid: dom.uuid, id: iothreadsId, cpus, ...affect(flags) });
  }),
  entry(PD.DOMAIN_ADD_IOTHREAD, async (ctx, { dom, iothreadId: id, flags }) => {
    checkFlags(flags, AFFECT, 'testDomainAddIOThread');
    await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'addIothread', { ...write(ctx), uuid: dom.uuid, id: iothreadId(id, 'virDomainAddIOThread'), ...affect(flags) });
  }),
  entry(PD.DOMAIN_DEL_IOTHREAD, async (ctx, { dom, iothreadId: id, flags }) => {
    checkFlags(flags, AFFECT, 'testDomainDelIOThread');
    await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'delIothread', { ...write(ctx), uuid: dom.uuid, id: iothreadId(id, 'virDomainDelIOThread'), ...affect(flags) });
  }),
  entry(PD.DOMAIN_SET_IOTHREAD_PARAMS, async (ctx, { dom, iothreadId: id, params, flags }) => {
    positive(params.length, 'nparams', 'virDomainSetIOThreadParams');
    checkFlags(flags, AffectFlags.LIVE, 'testDomainSetIOThreadParams');
    if (params.length > DomainExtraIpcLimits.TUNE_PARAMS_MAX) throw VG_ERR_ARG_INVALID('too many parameters');
    await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'setIothreadParams', {
      ...write(ctx),
      uuid: dom.uuid,
      id: iothreadId(id, 'virDomainSetIOThreadParams'),
      params: tuneParams(params),
      live: (flags & AffectFlags.LIVE) !== 0,
    });
  }),
  entry(PD.DOMAIN_GET_PERF_EVENTS, async (ctx, { dom, flags }) => {
    checkFlags(flags, AFFECT | TYPED_PARAM_STRING_OKAY, 'testDomainGetPerfEvents');
    const a = await ctx.helper.act(Op.DOMAIN_READ_REQ, 'perfEvents', { uuid: dom.uuid, ...affect(flags) });
    return { params: a.enabled.map((on, i): TypedParam => ({ field: PERF_EVENTS[i], type: 6, value: on })) };
  }),
  entry(PD.DOMAIN_SET_PERF_EVENTS, async (ctx, { dom, params, flags }) => {
    checkFlags(flags, AFFECT, 'testDomainSetPerfEvents');
    // virTypedParamsValidate: every field a perf event, each a boolean, each once
    const seen = new Set<string>();
    const events = params.map((p) => {
      const i = (PERF_EVENTS as readonly string[]).indexOf(p.field);
      if (i === -1) throw VG_ERR_ARG_UNSUPPORTED(`parameter '${p.field}' not supported`);
      if (seen.has(p.field)) throw VG_ERR_ARG_INVALID(`parameter '${p.field}' occurs multiple times`);
      seen.add(p.field);
      if (p.type !== 6) throw VG_ERR_ARG_INVALID(`invalid type '${TYPE_NAMES[p.type] ?? p.type}' for parameter '${p.field}', expected 'boolean'`);
      return { event: i, enabled: p.value };
    });
    await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'setPerfEvents', { ...write(ctx), uuid: dom.uuid, events, ...affect(flags) });
  }),
  entry(PD.DOMAIN_GET_INTERFACE_PARAMETERS, async (ctx, { dom, device, nparams, flags }) => {
    if (nparams < 0) throw VG_ERR_ARG_INVALID('nparams in virDomainGetInterfaceParameters must be zero or greater');
    if (nparams > DomainExtraLimits.INTERFACE_PARAMETERS_MAX) throw VG_ERR_INTERNAL('nparams too large');
    checkFlags(flags, AFFECT | TYPED_PARAM_STRING_OKAY, 'testDomainGetInterfaceParameters');
    if (nparams === 0) {
      await info(ctx, dom);
      return { params: [], nparams: 7 }; // the test driver answers the count before it looks the domain up
    }
    const a = await ctx.helper.act(Op.DOMAIN_READ_REQ, 'interfaceParams', { uuid: dom.uuid, device: bounded(device, 'device'), ...affect(flags) });
    return paramsReply(a.params, nparams, flags, DomainExtraLimits.INTERFACE_PARAMETERS_MAX);
  }),
  entry(PD.DOMAIN_SET_INTERFACE_PARAMETERS, async (ctx, { dom, device, params, flags }) => {
    positive(params.length, 'nparams', 'virDomainSetInterfaceParameters');
    checkFlags(flags, AFFECT, 'testDomainSetInterfaceParameters');
    await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'setInterfaceParams', {
      ...write(ctx),
      uuid: dom.uuid,
      device: bounded(device, 'device'),
      params: tuneParams(params),
      ...affect(flags),
    });
  }),
  entry(PD.DOMAIN_GET_BLOCK_IO_TUNE, async (ctx, { dom, disk, nparams, flags }) => {
    if (nparams > DomainExtraLimits.BLOCK_IO_TUNE_PARAMETERS_MAX) throw VG_ERR_INTERNAL('nparams too large');
    if (nparams < 0) throw VG_ERR_ARG_INVALID('nparams in virDomainGetBlockIoTune must be zero or greater');
    if (nparams !== 0 && disk === null) throw VG_ERR_ARG_INVALID('disk in virDomainGetBlockIoTune must not be NULL');
    checkFlags(flags, AFFECT | TYPED_PARAM_STRING_OKAY, 'testDomainGetBlockIoTune');
    if (nparams === 0) {
      await info(ctx, dom);
      return { params: [], nparams: 20 }; // the test driver answers the count before it looks the domain up
    }
    const a = await ctx.helper.act(Op.DOMAIN_READ_REQ, 'blockIoTune', { uuid: dom.uuid, disk: bounded(disk!, 'disk'), ...affect(flags) });
    return paramsReply(a.params, nparams, flags, DomainExtraLimits.BLOCK_IO_TUNE_PARAMETERS_MAX);
  }),
  entry(PD.DOMAIN_SET_BLOCK_IO_TUNE, async (ctx, { dom, disk, params, flags }) => {
    checkFlags(flags, AFFECT, 'testDomainSetBlockIoTune');
    await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'setBlockIoTune', {
      ...write(ctx),
      uuid: dom.uuid,
      disk: bounded(disk, 'disk'),
      params: tuneParams(params),
      ...affect(flags),
    });
  }),
  ...(
    [
      [PD.DOMAIN_FSFREEZE, false, 'testDomainFSFreeze'],
      [PD.DOMAIN_FSTHAW, true, 'testDomainFSThaw'],
    ] as const
  ).map(([def, thaw, fn]) =>
    entry(def, async (ctx, { dom, mountpoints: list, flags }) => {
      checkFlags(flags, 0, fn);
      const a = await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'fsFreeze', { ...write(ctx), uuid: dom.uuid, mountpoints: mountpoints(list), thaw });
      return { filesystems: a.count };
    }),
  ),
  entry(PD.DOMAIN_FSTRIM, async (ctx, { dom, mountPoint, flags }) => {
    checkFlags(flags, 0, 'testDomainFSTrim');
    await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'fsTrim', {
      ...write(ctx),
      uuid: dom.uuid,
      mountpoint: mountPoint === null ? null : bounded(mountPoint, 'mount point'),
    });
  }),
  entry(PD.DOMAIN_INJECT_NMI, async (ctx, { dom, flags }) => {
    checkFlags(flags, 0, 'testDomainInjectNMI');
    await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'injectNmi', { ...write(ctx), uuid: dom.uuid });
  }),
  entry(PD.DOMAIN_SEND_PROCESS_SIGNAL, async (ctx, { dom, pidValue, signum, flags }) => {
    if (pidValue === 0n) throw VG_ERR_ARG_INVALID('pid_value in virDomainSendProcessSignal must not be zero');
    checkFlags(flags, 0, 'testDomainSendProcessSignal');
    if (pidValue !== 1n) throw VG_ERR_ARG_INVALID('only sending a signal to pid 1 is supported');
    if (signum >= SIGNAL_LAST) throw VG_ERR_ARG_INVALID(`signum value ${signum} is out of range`);
    await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'sendProcessSignal', { ...write(ctx), uuid: dom.uuid, signum });
  }),
  entry(PD.DOMAIN_GET_CPU_STATS, async (ctx, { dom, nparams, startCpu, ncpus, flags }) => {
    if (nparams > NODE_CPU_STATS_MAX) throw VG_ERR_INTERNAL('nparams too large');
    if (ncpus > CPU_STATS_NCPUS_MAX) throw VG_ERR_INTERNAL('ncpus too large');
    // virDomainGetCPUStats's own checks
    if (startCpu === -1) {
      if (ncpus !== 1) throw VG_ERR_ARG_INVALID('ncpus must be 1 when start_cpu is -1');
    } else if (startCpu < 0) throw VG_ERR_ARG_INVALID('start_cpu in virDomainGetCPUStats must be zero or greater');
    checkFlags(flags, TYPED_PARAM_STRING_OKAY, 'testDomainGetCPUStats');
    await ctx.helper.act(Op.DOMAIN_READ_REQ, 'active', { uuid: dom.uuid });
    const ull = (field: string, value: bigint): TypedParam => ({ field, type: 4, value });
    if (startCpu === -1) {
      const all = [ull('cpu_time', TEST_TOTAL_CPUTIME), ull('user_time', 5540000000n), ull('system_time', 6460000000n)];
      return nparams === 0 ? { params: [], nparams: 3 } : { params: all.slice(0, nparams), nparams: Math.min(nparams, 3) };
    }
    if (nparams === 0 && ncpus !== 0) return { params: [], nparams: 2 };
    if (ncpus === 0) return { params: [], nparams: TEST_NODE_CORES };
    if (startCpu >= TEST_NODE_CORES) throw VG_ERR_DOMAIN_ARG(`start_cpu ${startCpu} larger than maximum of ${TEST_NODE_CORES - 1}`);
    const per = TEST_TOTAL_CPUTIME / BigInt(TEST_NODE_CORES);
    const params: TypedParam[] = [];
    for (let i = startCpu; i < Math.min(TEST_NODE_CORES, startCpu + ncpus); i++) {
      params.push(ull('cpu_time', per + BigInt(i)));
      if (nparams > 1) params.push(ull('vcpu_time', BigInt.asUintN(64, per + BigInt(i) - 1234567890n)));
    }
    return { params, nparams: nparams > 1 ? 2 : 1 };
  }),
  entry(PD.DOMAIN_MEMORY_PEEK, async (ctx, { dom, offset, size, flags }) => {
    if (size > DomainExtraLimits.MEMORY_PEEK_BUFFER_MAX) throw VG_ERR_INTERNAL('size > maximum buffer size');
    checkFlags(flags, MEMORY_VIRTUAL | MEMORY_PHYSICAL, 'testDomainMemoryPeek');
    if (flags !== MEMORY_VIRTUAL && flags !== MEMORY_PHYSICAL) throw VG_ERR_DOMAIN_ARG('flags parameter must be VIR_MEMORY_VIRTUAL or VIR_MEMORY_PHYSICAL');
    await ctx.helper.act(Op.DOMAIN_READ_REQ, 'active', { uuid: dom.uuid });
    // the test driver's "memory": byte i is (offset + i) mod 256
    const buffer = Buffer.alloc(size);
    const b = Number(offset & 0xffn);
    for (let i = 0; i < size; i++) buffer[i] = (b + i) & 0xff;
    return { buffer };
  }),
  entry(PD.DOMAIN_SET_USER_PASSWORD, async (ctx, { dom, user, password, flags }) => {
    if (user === null) throw VG_ERR_ARG_INVALID('user in virDomainSetUserPassword must not be NULL');
    if (password === null) throw VG_ERR_ARG_INVALID('password in virDomainSetUserPassword must not be NULL');
    checkFlags(flags, PASSWORD_ENCRYPTED, 'testDomainSetUserPassword');
    if (Buffer.byteLength(user) > DomainExtraIpcLimits.TEXT_MAX || user.includes('\0')) throw VG_ERR_ARG_INVALID('user is too long');
    // The test driver drops the password; it is never sent to the helper (nor journaled, nor audited).
    await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'setUserPassword', { ...write(ctx), uuid: dom.uuid, user });
  }),
  entry(PD.DOMAIN_SEND_KEY, async (ctx, { dom, codeset, keycodes, flags }) => {
    positive(keycodes.length, 'nkeycodes', 'virDomainSendKey');
    if (codeset >= KEYCODE_SET_LAST) throw VG_ERR_ARG_INVALID(`Unsupported codeset '${codeset}'`);
    checkFlags(flags, 0, 'testDomainSendKey');
    if (keycodes.some((k) => k > 0x7fffffff)) throw VG_ERR_INTERNAL(`invalid keycode ${keycodes.find((k) => k > 0x7fffffff)}`);
    await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'sendKey', { ...write(ctx), uuid: dom.uuid, codeset, keycodes });
  }),
  entry(PD.DOMAIN_GET_LAUNCH_SECURITY_INFO, async (ctx, { dom, flags }) => {
    checkFlags(flags, 0, 'testDomainGetLaunchSecurityInfo');
    await info(ctx, dom);
    return { params: [] }; // the test driver has no launch security
  }),
  entry(PD.DOMAIN_CREATE_XML_WITH_FILES, async (ctx, { xml, flags }) => {
    checkFlags(flags, 0, 'virDomainCreateXMLWithFiles');
    if (Buffer.byteLength(xml) > IpcLimits.XML_MAX || xml.includes('\0')) throw VG_ERR_ARG_INVALID(`domain XML larger than ${IpcLimits.XML_MAX} bytes`);
    return {
      dom: toRemote(
        await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'createXml', {
          ...write(ctx),
          def: parseDomainXml(xml, { refuseQemuNamespace: (await ctx.facts()).driver === 'qemu' }),
        }),
      ),
    };
  }),
  entry(PD.DOMAIN_CREATE_WITH_FILES, async (ctx, { dom, flags }) => {
    checkFlags(flags, 0, 'virDomainCreateWithFiles');
    return { dom: toRemote(await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'control', { ...write(ctx), uuid: dom.uuid, control: ControlAction.START })) };
  }),
];

const TYPE_NAMES: Record<number, string> = { 1: 'int', 2: 'uint', 3: 'llong', 4: 'ullong', 5: 'double', 6: 'boolean', 7: 'string' };

export const domainExtraHandlers: Entry[] = [...statsHandlers, ...metadataRead, ...tuneHandlers, ...writeHandlers, ...lifecycleHandlers, ...partB];
