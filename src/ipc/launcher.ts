// SPDX-License-Identifier: Apache-2.0
// The launcher's wire, pure: one SOCK_SEQPACKET message = one request or answer, length-checked JSON with an exact
// schema per op (helper <-> launcher boundary). Descriptors travel beside the bytes (SCM_RIGHTS), never in them.
import { isTenantName } from '../common/names';

export const LauncherLimits = {
  MESSAGE_MAX: 64 * 1024, // bytes of one request or answer; a longer one is refused whole
  FDS_MAX: 64, // descriptors with one spawn: disks with their backing chains, sockets, kernel, initrd
  ARGV_MAX: 512, // QEMU arguments in one spawn
  ARG_MAX: 8192, // bytes of one argument (a -blockdev JSON, a kernel command line)
  SLOT_MIN: 1,
  SLOT_MAX: 9999, // uid = uidBase + slot
  MEMORY_MIN: 16n * 1024n * 1024n, // a cgroup limit below this cannot hold QEMU itself
  MEMORY_MAX: 1n << 42n, // 4 TiB
  PIDS_MIN: 8, // QEMU's main, RCU, vCPU and worker threads
  PIDS_MAX: 65536,
  ID_MAX: 0xffffffff,
  LIST_MAX: 10000, // VMs in one list answer (slots bound it anyway)
} as const;

export const LAUNCHER_SIGNALS = ['SIGTERM', 'SIGKILL'] as const;
export type LauncherSignal = (typeof LAUNCHER_SIGNALS)[number];

// Stable error codes of a refused request (answer {error: {code, message}}).
export const LauncherErrorCode = {
  PEER_REFUSED: 'peer-refused', // the connecting uid is not on the allow-list (or too many connections); then closed
  MALFORMED: 'malformed', // not a message of this protocol; the launcher closes the connection after answering
  ARGV_REFUSED: 'argv-refused', // the argv policy refused an argument; the message names it
  FD_REFUSED: 'fd-refused', // a descriptor number out of range, reused, or of the wrong kind
  SLOT_IN_USE: 'slot-in-use', // a live VM of this launcher already runs under that uid
  VM_EXISTS: 'vm-exists', // a VM with this uuid is running (or its cgroup is not cleaned up)
  NO_SUCH_VM: 'no-such-vm',
  VM_RUNNING: 'vm-running', // cleanup of a VM whose processes are still alive
  SPAWN_FAILED: 'spawn-failed', // the jail or QEMU exited before QEMU ran; the message carries its last output
  CGROUP_FAILED: 'cgroup-failed',
  SIGNAL_FAILED: 'signal-failed',
  UNSUPPORTED: 'unsupported', // an op this launcher does not offer
  TAP_FAILED: 'tap-failed', // no such bridge, or the tap could not be made or attached
  INTERNAL: 'internal',
} as const;
export type LauncherErrorCodeValue = (typeof LauncherErrorCode)[keyof typeof LauncherErrorCode];

export interface MemoryPidsLimits {
  memoryBytes: bigint;
  pids: number;
}

export interface SpawnRequest {
  vm: string; // lower-case canonical UUID
  slot: number;
  tenant: string; // '' = host level
  argv: string[]; // QEMU's arguments after the emulator path, which the launcher fixes
  limits: MemoryPidsLimits;
  kvm: boolean; // bind /dev/kvm into the jail
}

export type LauncherRequest =
  | ({ id: number; op: 'spawn' } & SpawnRequest)
  | { id: number; op: 'signal'; vm: string; signal: LauncherSignal }
  | { id: number; op: 'list' }
  | ({ id: number; op: 'limits'; vm: string } & MemoryPidsLimits)
  | { id: number; op: 'cleanup'; vm: string }
  | { id: number; op: 'tap'; bridge: string }; // a new tap device enslaved to this bridge; its descriptor comes back
export type LauncherOp = LauncherRequest['op'];
export const LAUNCHER_OPS: readonly LauncherOp[] = ['spawn', 'signal', 'list', 'limits', 'cleanup', 'tap'];

export interface LaunchedVm {
  vm: string;
  pid: number; // QEMU's pid as the host sees it
  slot: number;
  tenant: string;
}

export interface LauncherResults {
  spawn: { pid: number };
  signal: Record<string, never>;
  list: { vms: LaunchedVm[] };
  limits: Record<string, never>;
  cleanup: Record<string, never>;
  tap: { ifname: string; fd: number }; // ifname in the message, the descriptor beside it (SCM_RIGHTS)
}

export type LauncherAnswer = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: { code: LauncherErrorCodeValue; message: string } };

export class LauncherCodecError extends Error {
  readonly code = LauncherErrorCode.MALFORMED;
  constructor(message: string) {
    super(message);
    this.name = 'LauncherCodecError';
  }
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const IFNAME_RE = /^[A-Za-z0-9_.-]{1,15}$/; // IFNAMSIZ - 1, no '/' (a path under /sys/class/net)
export const HOST_TENANT_DIR = '_host'; // cgroup parent of host-level VMs; refused as a tenant name

type Obj = Record<string, unknown>;
const bad = (what: string): never => {
  throw new LauncherCodecError(what);
};

function object(v: unknown, what: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(`${what}: not an object`);
  return v as Obj;
}

// Exactly these keys: an extra or a missing one is a malformed message, not something to ignore.
function keys(o: Obj, want: readonly string[], what: string): void {
  const have = Object.keys(o);
  for (const k of have) if (!want.includes(k)) bad(`${what}: unknown field '${k}'`);
  for (const k of want) if (!Object.prototype.hasOwnProperty.call(o, k)) bad(`${what}: missing field '${k}'`);
}

function int(v: unknown, min: number, max: number, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) bad(`${what}: not an integer in [${min}, ${max}]`);
  return v as number;
}

export function isVmUuid(s: unknown): s is string {
  return typeof s === 'string' && UUID_RE.test(s);
}

function uuid(v: unknown, what: string): string {
  if (!isVmUuid(v)) bad(`${what}: not a lower-case canonical UUID`);
  return v as string;
}

function tenant(v: unknown): string {
  if (typeof v !== 'string' || !isTenantName(v)) bad("tenant: not a tenant name ('' for host level)");
  if (v === HOST_TENANT_DIR) bad(`tenant: '${HOST_TENANT_DIR}' is reserved for host-level VMs`);
  return v as string;
}

// Decimal string on the wire (JSON numbers lose bigint precision).
function memory(v: unknown): bigint {
  if (typeof v !== 'string' || !/^[1-9][0-9]{0,15}$/.test(v)) bad('memoryBytes: not a decimal byte count');
  const b = BigInt(v as string);
  if (b < LauncherLimits.MEMORY_MIN || b > LauncherLimits.MEMORY_MAX) bad(`memoryBytes: outside [${LauncherLimits.MEMORY_MIN}, ${LauncherLimits.MEMORY_MAX}]`);
  return b;
}

function limits(o: Obj, what: string): MemoryPidsLimits {
  return { memoryBytes: memory(o.memoryBytes), pids: int(o.pids, LauncherLimits.PIDS_MIN, LauncherLimits.PIDS_MAX, `${what}.pids`) };
}

function argv(v: unknown): string[] {
  if (!Array.isArray(v)) bad('argv: not an array');
  const a = v as unknown[];
  if (a.length === 0 || a.length > LauncherLimits.ARGV_MAX) bad(`argv: 1-${LauncherLimits.ARGV_MAX} arguments`);
  return a.map((s, i) => {
    if (typeof s !== 'string') bad(`argv[${i}]: not a string`);
    const t = s as string;
    if (t.includes('\0')) bad(`argv[${i}]: contains NUL`);
    if (Buffer.byteLength(t) > LauncherLimits.ARG_MAX) bad(`argv[${i}]: over ${LauncherLimits.ARG_MAX} bytes`);
    return t;
  });
}

function parse(buf: Buffer): Obj {
  if (buf.length === 0 || buf.length > LauncherLimits.MESSAGE_MAX) bad(`message of ${buf.length} bytes (1-${LauncherLimits.MESSAGE_MAX})`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    return bad('not UTF-8');
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return bad(`not JSON: ${(e as Error).message}`);
  }
  return object(v, 'message');
}

// The id of a message too broken to decode, when it has one: the error answer echoes it (0 otherwise).
export function peekId(buf: Buffer): number {
  try {
    const o = parse(buf);
    return typeof o.id === 'number' && Number.isInteger(o.id) && o.id >= 0 && o.id <= LauncherLimits.ID_MAX ? o.id : 0;
  } catch {
    return 0;
  }
}

export function decodeRequest(buf: Buffer): LauncherRequest {
  const o = parse(buf);
  const id = int(o.id, 1, LauncherLimits.ID_MAX, 'id');
  switch (o.op) {
    case 'spawn': {
      keys(o, ['id', 'op', 'vm', 'slot', 'tenant', 'argv', 'limits', 'kvm'], 'spawn');
      const l = object(o.limits, 'spawn.limits');
      keys(l, ['memoryBytes', 'pids'], 'spawn.limits');
      if (typeof o.kvm !== 'boolean') bad('kvm: not a boolean');
      return {
        id,
        op: 'spawn',
        vm: uuid(o.vm, 'vm'),
        slot: int(o.slot, LauncherLimits.SLOT_MIN, LauncherLimits.SLOT_MAX, 'slot'),
        tenant: tenant(o.tenant),
        argv: argv(o.argv),
        limits: limits(l, 'limits'),
        kvm: o.kvm as boolean,
      };
    }
    case 'signal':
      keys(o, ['id', 'op', 'vm', 'signal'], 'signal');
      if (!(LAUNCHER_SIGNALS as readonly unknown[]).includes(o.signal)) bad(`signal: not one of ${LAUNCHER_SIGNALS.join(', ')}`);
      return { id, op: 'signal', vm: uuid(o.vm, 'vm'), signal: o.signal as LauncherSignal };
    case 'list':
      keys(o, ['id', 'op'], 'list');
      return { id, op: 'list' };
    case 'limits':
      keys(o, ['id', 'op', 'vm', 'memoryBytes', 'pids'], 'limits');
      return { id, op: 'limits', vm: uuid(o.vm, 'vm'), ...limits(o, 'limits') };
    case 'cleanup':
      keys(o, ['id', 'op', 'vm'], 'cleanup');
      return { id, op: 'cleanup', vm: uuid(o.vm, 'vm') };
    case 'tap':
      keys(o, ['id', 'op', 'bridge'], 'tap');
      if (typeof o.bridge !== 'string' || !IFNAME_RE.test(o.bridge)) bad('bridge: not an interface name (1-15 of [A-Za-z0-9_.-])');
      return { id, op: 'tap', bridge: o.bridge as string };
    default:
      return bad(`op: unknown operation ${JSON.stringify(o.op)?.slice(0, 40)}`);
  }
}

export function encodeRequest(r: LauncherRequest): Buffer {
  const wire =
    r.op === 'spawn'
      ? { ...r, limits: { memoryBytes: r.limits.memoryBytes.toString(), pids: r.limits.pids } }
      : r.op === 'limits'
        ? { ...r, memoryBytes: r.memoryBytes.toString() }
        : r;
  const b = Buffer.from(JSON.stringify(wire));
  if (b.length > LauncherLimits.MESSAGE_MAX) throw new LauncherCodecError(`${r.op} request of ${b.length} bytes is over ${LauncherLimits.MESSAGE_MAX}`);
  return b;
}

export function encodeAnswer(a: LauncherAnswer): Buffer {
  const b = Buffer.from(JSON.stringify(a));
  if (b.length <= LauncherLimits.MESSAGE_MAX) return b;
  return Buffer.from(JSON.stringify({ id: a.id, ok: false, error: { code: LauncherErrorCode.INTERNAL, message: 'answer too large' } }));
}

function vmEntry(v: unknown, i: number): LaunchedVm {
  const o = object(v, `vms[${i}]`);
  keys(o, ['vm', 'pid', 'slot', 'tenant'], `vms[${i}]`);
  return {
    vm: uuid(o.vm, `vms[${i}].vm`),
    pid: int(o.pid, 2, 0x3fffffff, `vms[${i}].pid`),
    slot: int(o.slot, LauncherLimits.SLOT_MIN, LauncherLimits.SLOT_MAX, `vms[${i}].slot`),
    tenant: tenant(o.tenant),
  };
}

// Checks an answer's result against what `op` returns: the helper trusts the launcher, but not blindly.
export function decodeResult<O extends LauncherOp>(op: O, v: unknown): LauncherResults[O] {
  const o = object(v, `${op} result`);
  switch (op) {
    case 'spawn':
      keys(o, ['pid'], 'spawn result');
      return { pid: int(o.pid, 2, 0x3fffffff, 'pid') } as LauncherResults[O];
    case 'list': {
      keys(o, ['vms'], 'list result');
      if (!Array.isArray(o.vms) || o.vms.length > LauncherLimits.LIST_MAX) bad('vms: not an array of VMs');
      return { vms: (o.vms as unknown[]).map(vmEntry) } as LauncherResults[O];
    }
    case 'tap':
      keys(o, ['ifname'], 'tap result');
      if (typeof o.ifname !== 'string' || !IFNAME_RE.test(o.ifname)) bad('ifname: not an interface name');
      return { ifname: o.ifname, fd: -1 } as LauncherResults[O]; // the caller puts the received descriptor in
    default:
      keys(o, [], `${op} result`);
      return {} as LauncherResults[O];
  }
}

export function decodeAnswer(buf: Buffer): LauncherAnswer {
  const o = parse(buf);
  const id = int(o.id, 0, LauncherLimits.ID_MAX, 'id');
  if (o.ok === true) {
    keys(o, ['id', 'ok', 'result'], 'answer');
    return { id, ok: true, result: o.result };
  }
  keys(o, ['id', 'ok', 'error'], 'answer');
  if (o.ok !== false) bad('ok: not a boolean');
  const e = object(o.error, 'error');
  keys(e, ['code', 'message'], 'error');
  if (!(Object.values(LauncherErrorCode) as unknown[]).includes(e.code)) bad('error.code: unknown');
  if (typeof e.message !== 'string' || e.message.length > 8192) bad('error.message: not a string');
  return { id, ok: false, error: { code: e.code as LauncherErrorCodeValue, message: e.message as string } };
}

export type CgroupController = 'cpu' | 'cpuacct' | 'memory' | 'pids';
export const CGROUP_V1_CONTROLLERS: readonly CgroupController[] = ['cpu', 'cpuacct', 'memory', 'pids'];

export interface CgroupDirs {
  tenant: { v1: Record<CgroupController, string>; v2: string }; // the tenant-level parent (quotas)
  v1: Record<CgroupController, string>; // one directory per controller (cgroups v1)
  v2: string; // the unified directory (cgroups v2)
  cpuUsageV1: string; // cpuacct.usage: nanoseconds
  cpuStatV2: string; // cpu.stat: usage_usec
}

// Where a VM's cgroups live: <mount>/<ctrl>/<root>/<tenant or _host>/vm-<uuid> (v1), <mount>/<root>/... (v2). Pure, so
// the launcher (which makes them) and the helper (which reads CPU time) compute the same paths.
export function cgroupDirs(root: string, tenantName: string, vm: string, mount = '/sys/fs/cgroup'): CgroupDirs {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/.test(root)) throw new LauncherCodecError(`cgroup root: not a plain name: ${root}`);
  if (!isTenantName(tenantName) || tenantName === HOST_TENANT_DIR) throw new LauncherCodecError(`tenant: not a tenant name: ${tenantName}`);
  if (!isVmUuid(vm)) throw new LauncherCodecError(`vm: not a canonical UUID: ${vm}`);
  const t = tenantName === '' ? HOST_TENANT_DIR : tenantName;
  const rel = `${root}/${t}`;
  const per = (sub: string): Record<CgroupController, string> =>
    Object.fromEntries(CGROUP_V1_CONTROLLERS.map((c) => [c, `${mount}/${c}/${sub}`])) as Record<CgroupController, string>;
  const v1 = per(`${rel}/vm-${vm}`);
  const v2 = `${mount}/${rel}/vm-${vm}`;
  return { tenant: { v1: per(rel), v2: `${mount}/${rel}` }, v1, v2, cpuUsageV1: `${v1.cpuacct}/cpuacct.usage`, cpuStatV2: `${v2}/cpu.stat` };
}
