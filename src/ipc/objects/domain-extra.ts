// SPDX-License-Identifier: Apache-2.0
// Domain stats, pinning and tuning actions of the DOMAIN_READ / DOMAIN_WRITE groups (codes >= 32), pure.
// Every decoder checks every field; the front end's figures are checked again here, before the driver sees them.
import { VG_ERR_IPC_VALIDATION } from '../../common/errors';
import type { XdrReader, XdrWriter } from '../../common/xdr';
import { action } from '../actions';
import { type Codec, IpcLimits, checkDomainName, checkRange, rec, uuidCodec } from '../shared';
import { type XmlEl, xmlElField } from './domain-def';

export const DomainExtraIpcLimits = {
  VCPUS_MAX: 16384, // REMOTE_VCPUINFO_MAX
  HOST_CPUS_MAX: 16384, // a CPU map's width in bits (REMOTE_CPUMAP_MAX bytes is 16384 bits)
  DISKS_MAX: 256, // REMOTE_DOMAIN_DISK_ERRORS_MAX
  MEMORY_STATS_MAX: 1024, // REMOTE_DOMAIN_MEMORY_STATS_MAX
  FSINFO_MAX: 256, // REMOTE_DOMAIN_FSINFO_MAX
  IFACES_MAX: 2048, // REMOTE_DOMAIN_INTERFACE_MAX
  PATH_MAX: 4096, // a disk path or target name
  TEXT_MAX: 1024, // names, addresses, fs types
  TUNE_PARAMS_MAX: 16, // REMOTE_DOMAIN_*_PARAMETERS_MAX
  TUNE_STRING_MAX: 4096, // a blkiotune device list or numa nodeset
  METADATA_MAX: 256 * 1024, // a description, title or metadata element: at most a whole domain XML (XML_MAX)
  IOTHREADS_MAX: 16384, // REMOTE_IOTHREAD_INFO_MAX
  MOUNTPOINTS_MAX: 256, // REMOTE_DOMAIN_FSFREEZE_MOUNTPOINTS_MAX
  SEND_KEY_MAX: 16, // REMOTE_DOMAIN_SEND_KEY_MAX
  IOTUNE_PARAMS_MAX: 32, // REMOTE_DOMAIN_BLOCK_IO_TUNE_PARAMETERS_MAX
} as const;

const L = DomainExtraIpcLimits;
const FIELD_RE = /^[a-z_][a-z0-9_.]{0,78}$/; // typed-parameter names as libvirt spells them

// ---------- small field codecs ----------

const text = (max: number, field: string) => ({
  encode: (w: XdrWriter, v: string) => void w.string(v, max),
  decode: (r: XdrReader) => {
    const s = r.string(max, field);
    if (s.includes('\0')) throw VG_ERR_IPC_VALIDATION(field, 'contains NUL');
    return s;
  },
});

// An optional element tree (metadata): bounded as a definition's trees are.
const optEl = (field: string) => {
  const el = xmlElField(field);
  return {
    encode: (w: XdrWriter, v: XmlEl | null) => void w.optional(v, el.encode),
    decode: (r: XdrReader): XmlEl | null => r.optional(el.decode),
  };
};

const cpuList = (field: string): Codec<number[]> => ({
  encode: (w, v) => void w.array(v, L.HOST_CPUS_MAX, (w2, c) => void w2.u32(c)),
  decode: (r) => {
    const out = r.array(L.HOST_CPUS_MAX, (r2) => checkRange(r2.u32(field), 0, L.HOST_CPUS_MAX - 1, field), field);
    for (let i = 1; i < out.length; i++) if (out[i] <= out[i - 1]) throw VG_ERR_IPC_VALIDATION(field, 'CPU numbers must be sorted and distinct');
    return out;
  },
});

const i64 = (field: string) => ({ encode: (w: XdrWriter, v: bigint) => void w.i64(v), decode: (r: XdrReader) => r.i64(field) });
const u32 = (field: string) => ({ encode: (w: XdrWriter, v: number) => void w.u32(v), decode: (r: XdrReader) => r.u32(field) });
const u64 = (field: string) => ({ encode: (w: XdrWriter, v: bigint) => void w.u64(v), decode: (r: XdrReader) => r.u64(field) });

const list = <T>(max: number, c: Codec<T>, field: string): Codec<T[]> => ({
  encode: (w, v) => void w.array(v, max, c.encode),
  decode: (r) => r.array(max, c.decode, field),
});

const uuidF = { encode: uuidCodec.encode, decode: uuidCodec.decode };
const int = (min: number, max: number, field: string) => ({
  encode: (w: XdrWriter, v: number) => void w.i32(v),
  decode: (r: XdrReader) => checkRange(r.i32(field), min, max, field),
});
const bool = (field: string) => ({ encode: (w: XdrWriter, v: boolean) => void w.bool(v), decode: (r: XdrReader) => r.bool(field) });

// ---------- tuning parameters (libvirt typed parameters, as the helper keeps them) ----------

export const TUNE_KINDS = ['memory', 'blkio', 'numa', 'scheduler'] as const;
export type DomainTuneKind = (typeof TUNE_KINDS)[number];

export type TuneParam =
  | { field: string; type: 1 | 2; value: number }
  | { field: string; type: 3 | 4; value: bigint }
  | { field: string; type: 6; value: boolean }
  | { field: string; type: 7; value: string };

export const tuneParamCodec: Codec<TuneParam> = {
  encode(w, p) {
    w.string(p.field, 80).u32(p.type);
    switch (p.type) {
      case 1:
        return void w.i32(p.value);
      case 2:
        return void w.u32(p.value);
      case 3:
        return void w.i64(p.value);
      case 4:
        return void w.u64(p.value);
      case 6:
        return void w.bool(p.value);
      case 7:
        return void w.string(p.value, L.TUNE_STRING_MAX);
    }
  },
  decode(r) {
    const field = r.string(80, 'param.field');
    if (!FIELD_RE.test(field)) throw VG_ERR_IPC_VALIDATION('param.field', 'not a parameter name');
    const type = r.u32('param.type');
    if (type === 1) return { field, type, value: r.i32(field) };
    if (type === 2) return { field, type, value: r.u32(field) };
    if (type === 3) return { field, type, value: r.i64(field) };
    if (type === 4) return { field, type, value: r.u64(field) };
    if (type === 6) return { field, type, value: r.bool(field) };
    if (type === 7) return { field, type, value: text(L.TUNE_STRING_MAX, field).decode(r) };
    throw VG_ERR_IPC_VALIDATION('param.type', `unknown type ${type}`);
  },
};

const tuneKind = {
  encode: (w: XdrWriter, v: DomainTuneKind) => void w.u32(TUNE_KINDS.indexOf(v)),
  decode: (r: XdrReader): DomainTuneKind => TUNE_KINDS[checkRange(r.u32('kind'), 0, TUNE_KINDS.length - 1, 'kind')],
};

// ---------- answers ----------

const vcpuRow = rec({
  number: int(0, L.VCPUS_MAX - 1, 'vcpu.number'),
  state: int(-1, 2, 'vcpu.state'),
  cpuTimeNs: u64('vcpu.cpuTime'),
  cpu: int(-1, L.HOST_CPUS_MAX - 1, 'vcpu.cpu'),
});
const fsRow = rec({
  mountpoint: text(L.PATH_MAX, 'fs.mountpoint'),
  name: text(L.TEXT_MAX, 'fs.name'),
  fstype: text(L.TEXT_MAX, 'fs.type'),
  devAliases: list(L.DISKS_MAX, text(L.TEXT_MAX, 'fs.dev'), 'fs.devs'),
});
const optText = (max: number, field: string) => ({
  encode: (w: XdrWriter, v: string | null) => void w.optional(v, (w2, s) => w2.string(s, max)),
  decode: (r: XdrReader) => r.optional((r2) => text(max, field).decode(r2), field),
});
const ifaceRow = rec({
  name: text(L.TEXT_MAX, 'iface.name'),
  hwaddr: optText(L.TEXT_MAX, 'iface.hwaddr'),
  addrs: list(L.IFACES_MAX, rec({ type: int(0, 1, 'addr.type'), addr: text(L.TEXT_MAX, 'addr.addr'), prefix: int(0, 128, 'addr.prefix') }), 'iface.addrs'),
});

// ---------- the actions ----------

const none: Codec<object> = { encode() {}, decode: () => ({}) };

// virPerfEventType order: a perf event crosses as its index.
export const PERF_EVENTS = [
  'cmt',
  'mbmt',
  'mbml',
  'cpu_cycles',
  'instructions',
  'cache_references',
  'cache_misses',
  'branch_instructions',
  'branch_misses',
  'bus_cycles',
  'stalled_cycles_frontend',
  'stalled_cycles_backend',
  'ref_cpu_cycles',
  'cpu_clock',
  'task_clock',
  'page_faults',
  'context_switches',
  'cpu_migrations',
  'page_faults_min',
  'page_faults_maj',
  'alignment_faults',
  'emulation_faults',
] as const;
const perfSetting = rec({ event: int(0, PERF_EVENTS.length - 1, 'perf.event'), enabled: bool('perf.enabled') });
const mountpoint = text(L.PATH_MAX, 'mountpoint');

const affect = { live: bool('live'), config: bool('config') };

export const DOMAIN_READ_EXTRA = {
  vcpus: action(
    32,
    rec({ uuid: uuidF, maxinfo: int(0, L.VCPUS_MAX, 'maxinfo') }),
    rec({ info: list(L.VCPUS_MAX, vcpuRow, 'info'), maps: list(L.VCPUS_MAX, cpuList('map'), 'maps') }),
  ),
  vcpuPinInfo: action(33, rec({ uuid: uuidF, ncpumaps: int(0, L.VCPUS_MAX, 'ncpumaps'), ...affect }), rec({ maps: list(L.VCPUS_MAX, cpuList('map'), 'maps') })),
  emulatorPinInfo: action(34, rec({ uuid: uuidF, ...affect }), rec({ map: cpuList('map') })),
  blockStats: action(
    35,
    rec({ uuid: uuidF, path: text(L.PATH_MAX, 'path') }),
    rec({ rdReq: i64('rdReq'), rdBytes: i64('rdBytes'), wrReq: i64('wrReq'), wrBytes: i64('wrBytes'), errs: i64('errs') }),
  ),
  interfaceStats: action(
    36,
    rec({ uuid: uuidF, device: text(L.PATH_MAX, 'device') }),
    rec({
      rxBytes: i64('rxBytes'),
      rxPackets: i64('rxPackets'),
      rxErrs: i64('rxErrs'),
      rxDrop: i64('rxDrop'),
      txBytes: i64('txBytes'),
      txPackets: i64('txPackets'),
      txErrs: i64('txErrs'),
      txDrop: i64('txDrop'),
    }),
  ),
  memoryStats: action(
    37,
    rec({ uuid: uuidF, maxStats: int(0, L.MEMORY_STATS_MAX, 'maxStats') }),
    rec({ stats: list(L.MEMORY_STATS_MAX, rec({ tag: int(0, 64, 'stat.tag'), val: u64('stat.val') }), 'stats') }),
  ),
  blockInfo: action(
    38,
    rec({ uuid: uuidF, path: text(L.PATH_MAX, 'path') }),
    rec({ allocation: u64('allocation'), capacity: u64('capacity'), physical: u64('physical') }),
  ),
  diskErrors: action(
    39,
    rec({ uuid: uuidF, maxerrors: int(0, L.DISKS_MAX, 'maxerrors') }),
    rec({ errors: list(L.DISKS_MAX, rec({ disk: text(L.TEXT_MAX, 'disk'), error: int(0, 2, 'error') }), 'errors'), nerrors: int(0, 1 << 20, 'nerrors') }),
  ),
  fsInfo: action(40, rec({ uuid: uuidF }), rec({ info: list(L.FSINFO_MAX, fsRow, 'info') })),
  interfaceAddresses: action(41, rec({ uuid: uuidF, source: int(0, 2, 'source') }), rec({ ifaces: list(L.IFACES_MAX, ifaceRow, 'ifaces') })),
  metadata: action(
    43,
    rec({ uuid: uuidF, type: int(0, 2, 'type'), uri: optText(L.TEXT_MAX, 'uri'), ...affect }),
    // value: a description or title ('' for an element); element: the metadata element's tree (the front end formats it)
    rec({ value: text(L.METADATA_MAX, 'value'), element: optEl('element') }),
  ),
  tuning: action(42, rec({ uuid: uuidF, kind: tuneKind, ...affect }), rec({ params: list(L.TUNE_PARAMS_MAX, tuneParamCodec, 'params') })),
  // ---- part B (issue 12): codes 64..127 ----
  time: action(64, rec({ uuid: uuidF }), rec({ seconds: i64('seconds'), nseconds: int(0, 999999999, 'nseconds') })),
  iothreadInfo: action(
    65,
    rec({ uuid: uuidF, ...affect }),
    rec({ threads: list(L.IOTHREADS_MAX, rec({ id: int(1, 0x7fffffff, 'iothread.id'), cpus: cpuList('iothread.cpus') }), 'threads') }),
  ),
  perfEvents: action(66, rec({ uuid: uuidF, ...affect }), rec({ enabled: list(PERF_EVENTS.length, bool('enabled'), 'enabled') })),
  interfaceParams: action(
    67,
    rec({ uuid: uuidF, device: text(L.PATH_MAX, 'device'), ...affect }),
    rec({ params: list(L.TUNE_PARAMS_MAX, tuneParamCodec, 'params') }),
  ),
  active: action(68, rec({ uuid: uuidF }), none),
  // Batched: domstats over many domains is one round trip, not one per domain. A domain gone meanwhile answers no threads.
  iothreadStats: action(
    70,
    rec({ uuids: list(IpcLimits.DOMAINS_MAX, uuidF, 'uuids') }),
    rec({
      domains: list(
        IpcLimits.DOMAINS_MAX,
        rec({
          uuid: uuidF,
          threads: list(
            L.IOTHREADS_MAX,
            rec({ id: int(1, 0x7fffffff, 'iothread.id'), maxNs: u64('iothread.maxNs'), grow: u32('iothread.grow'), shrink: u32('iothread.shrink') }),
            'threads',
          ),
        }),
        'domains',
      ),
    }),
  ),
  blockIoTune: action(
    69,
    rec({ uuid: uuidF, disk: text(L.PATH_MAX, 'disk'), ...affect }),
    rec({ params: list(L.IOTUNE_PARAMS_MAX, tuneParamCodec, 'params') }),
  ),
};

export const DOMAIN_WRITE_EXTRA = {
  setTuning: action(32, rec({ uuid: uuidF, kind: tuneKind, params: list(L.TUNE_PARAMS_MAX, tuneParamCodec, 'params'), ...affect }), none),
  pinVcpu: action(33, rec({ uuid: uuidF, vcpu: int(0, L.VCPUS_MAX - 1, 'vcpu'), cpus: cpuList('cpus') }), none),
  setMetadata: action(
    35,
    rec({
      uuid: uuidF,
      type: int(0, 2, 'type'),
      value: optText(L.METADATA_MAX, 'value'), // description or title
      element: optEl('element'), // type 2: the element as the front end built it from the client's XML (null removes)
      uri: optText(L.TEXT_MAX, 'uri'),
      ...affect,
    }),
    none,
  ),
  setAutostart: action(36, rec({ uuid: uuidF, autostart: bool('autostart') }), none),
  reset: action(37, rec({ uuid: uuidF }), none),
  managedSave: action(38, rec({ uuid: uuidF }), none),
  managedSaveRemove: action(39, rec({ uuid: uuidF }), none),
  rename: action(
    40,
    rec({
      uuid: uuidF,
      name: {
        encode: (w: XdrWriter, v: string) => void w.string(v, IpcLimits.NAME_MAX),
        decode: (r: XdrReader) => checkDomainName(r.string(IpcLimits.NAME_MAX, 'name')),
      },
    }),
    none,
  ),
  pinEmulator: action(34, rec({ uuid: uuidF, cpus: cpuList('cpus'), ...affect }), none),
  // ---- part B (issue 12): codes 64..127 ----
  // type: virDomainLifecycle (poweroff, reboot, crash); action: virDomainLifecycleAction (destroy .. coredump-restart)
  setLifecycleAction: action(64, rec({ uuid: uuidF, type: int(0, 2, 'type'), lifecycleAction: int(0, 5, 'lifecycleAction'), ...affect }), none),
  setMemoryStatsPeriod: action(65, rec({ uuid: uuidF, period: int(0, 0x7fffffff, 'period'), ...affect }), none),
  setTime: action(66, rec({ uuid: uuidF, seconds: i64('seconds'), nseconds: int(0, 999999999, 'nseconds') }), none),
  addIothread: action(67, rec({ uuid: uuidF, id: int(1, 0x7fffffff, 'id'), ...affect }), none),
  delIothread: action(68, rec({ uuid: uuidF, id: int(1, 0x7fffffff, 'id'), ...affect }), none),
  pinIothread: action(69, rec({ uuid: uuidF, id: int(1, 0x7fffffff, 'id'), cpus: cpuList('cpus'), ...affect }), none),
  setIothreadParams: action(
    70,
    rec({ uuid: uuidF, id: int(1, 0x7fffffff, 'id'), params: list(L.TUNE_PARAMS_MAX, tuneParamCodec, 'params'), live: bool('live') }),
    none,
  ),
  setPerfEvents: action(71, rec({ uuid: uuidF, events: list(L.TUNE_PARAMS_MAX * 4, perfSetting, 'events'), ...affect }), none),
  setInterfaceParams: action(
    72,
    rec({ uuid: uuidF, device: text(L.PATH_MAX, 'device'), params: list(L.TUNE_PARAMS_MAX, tuneParamCodec, 'params'), ...affect }),
    none,
  ),
  // all = every file system (libvirt's empty list); thaw = FSThaw
  fsFreeze: action(
    73,
    rec({ uuid: uuidF, mountpoints: list(L.MOUNTPOINTS_MAX, mountpoint, 'mountpoints'), thaw: bool('thaw') }),
    rec({ count: int(0, L.MOUNTPOINTS_MAX, 'count') }),
  ),
  fsTrim: action(74, rec({ uuid: uuidF, mountpoint: optText(L.PATH_MAX, 'mountpoint') }), none),
  // Guest input the test driver checks and drops: NMI, a process signal, a password change (the password itself never
  // crosses to the helper, so it is in no journal), keys.
  injectNmi: action(75, rec({ uuid: uuidF }), none),
  sendProcessSignal: action(76, rec({ uuid: uuidF, signum: int(0, 64, 'signum') }), none),
  setUserPassword: action(77, rec({ uuid: uuidF, user: text(L.TEXT_MAX, 'user') }), none),
  sendKey: action(78, rec({ uuid: uuidF, codeset: int(0, 9, 'codeset'), keycodes: list(L.SEND_KEY_MAX, int(0, 0x7fffffff, 'keycode'), 'keycodes') }), none),
  setBlockIoTune: action(
    79,
    rec({ uuid: uuidF, disk: text(L.PATH_MAX, 'disk'), params: list(L.IOTUNE_PARAMS_MAX, tuneParamCodec, 'params'), ...affect }),
    none,
  ),
};
