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
  VG_ERR_NOT_SUPPORTED,
  VG_ERR_XML_INVALID,
} from '../../common/errors';
import { type DomainInfo, type DomainSummary, IpcLimits, Op, checkDomainName, uuidToString } from '../../ipc/program';
import { DomainExtraIpcLimits, type TuneParam } from '../../ipc/objects/domain-extra';
import { AffectFlags } from '../../protocol/constants';
import { DomainExtraLimits, PD, type StatsRecord } from '../../protocol/procs/domain-extra';
import { ParamLimits, type TypedParam } from '../../protocol/typed-params';
import type { RemoteDomain } from '../../protocol/types';
import { type Entry, type HandlerContext, checkFlags, entry, toRemote } from './common';
import { matchesListFlags } from './domain-read';
import { metadataElementXml } from '../xml/domain';

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
    // libvirt asks domain:write for the guest agent source; the procedure table decides on flags only, so that
    // source is not served until the dispatcher can check an argument-dependent permission.
    if (source === 1) throw VG_ERR_NOT_SUPPORTED('virDomainInterfaceAddresses with the guest agent source');
    return { ifaces: (await ctx.helper.act(Op.DOMAIN_READ_REQ, 'interfaceAddresses', { uuid: dom.uuid, source })).ifaces };
  }),
  entry(PD.CONNECT_GET_ALL_DOMAIN_STATS, async (ctx, { doms, stats, flags }) => {
    const F = { FILTERS: 0xff, NOWAIT: 1 << 29, BACKING: 1 << 30, ENFORCE: 0x80000000 };
    checkFlags(flags, F.FILTERS | F.NOWAIT | F.BACKING | F.ENFORCE, 'testConnectGetAllDomainStats');
    const SUPPORTED = 1 | 128; // VIR_DOMAIN_STATS_STATE | VIR_DOMAIN_STATS_IOTHREAD (the test driver's; no iothreads here)
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
    const records: StatsRecord[] = chosen
      // @aclfilter domain:read (a VM the caller may only getattr is left out, as libvirt's filter does)
      .filter(
        (d) =>
          matchesListFlags(d, flags & F.FILTERS) &&
          ctx.canSee({ kind: 'domain', name: d.name, uuid: uuidToString(d.uuid), tenant: d.tenant ?? '' }, 'domain:read'),
      )
      .map((d) => ({
        dom: toRemote(d),
        params:
          (want & 1) !== 0
            ? [
                { field: 'state.state', type: 1, value: d.state },
                { field: 'state.reason', type: 1, value: d.reason },
              ]
            : [],
      }));
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

export const domainExtraHandlers: Entry[] = [...statsHandlers, ...metadataRead, ...tuneHandlers, ...writeHandlers, ...lifecycleHandlers];
