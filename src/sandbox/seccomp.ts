// SPDX-License-Identifier: Apache-2.0
// seccomp allowlist through libseccomp via koffi: no-new-privs, native arch only, every thread (TSYNC) (sandbox boundary).
import * as fs from 'node:fs';
import { VG_ERR_SANDBOX_CONFIG, VG_ERR_SANDBOX_SECCOMP } from '../common/errors';
import { PR, koffi as loadKoffi, prctl } from './libc';

// libseccomp 2.5 seccomp.h values.
export const SCMP_ACT = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
  errno: (e: number): number => (0x00050000 | (e & 0xffff)) >>> 0,
} as const;
const ATTR = { ACT_DEFAULT: 1, ACT_BADARCH: 2, CTL_NNP: 3, CTL_TSYNC: 4 } as const;
const CMP_EQ = 4;
const CMP_NE = 1;
export const ERRNO = { EPERM: 1, EAFNOSUPPORT: 97 } as const;
const AF_UNIX = 1;

export type DefaultAction = 'errno' | 'kill';

// Argument rules: one per syscall; the syscall is allowed when every comparison holds, otherwise it gets `otherwise`.
export interface ArgRule {
  syscall: string;
  arg: number; // argument index, 0-5
  equals: number;
  otherwise: 'errno-eafnosupport' | 'errno-eperm';
}

export interface SeccompOptions {
  allow: readonly string[]; // syscall names; names unknown on this arch are skipped and counted
  defaultAction: DefaultAction; // errno = EPERM (the process survives and sees a failure), kill = SIGSYS for the whole process
  argRules?: readonly ArgRule[];
  tsync?: boolean; // default true; false exists only so a test can show the gap it closes
}

export interface SeccompReport {
  defaultAction: string;
  badArchAction: 'kill-process';
  nativeArch: number;
  allowed: number; // syscall numbers with an allow rule on this arch
  unknownHere: number; // names in the list that do not exist on this arch
  argRules: number;
  noNewPrivs: boolean; // set, and read back, before the load
  tsync: boolean;
  threads: { total: number; filtered: number } | null; // from /proc/self/task/*/status; null when unreadable
  loadMs: number; // build + load of the filter
}

// The FFI surface, bound once. Prototypes use koffi's C-like syntax.
interface Lib {
  init: (def: number) => unknown;
  attrSet: (ctx: unknown, attr: number, v: number) => number;
  resolve: (name: string) => number;
  archNative: () => number;
  archExist: (ctx: unknown, arch: number) => number;
  ruleAdd: (ctx: unknown, action: number, nr: number, n: number, cmps: unknown) => number;
  load: (ctx: unknown) => number;
  release: (ctx: unknown) => void;
  cmpType: unknown;
}
let lib: Lib | null = null;

function bind(): Lib {
  if (lib) return lib;
  let koffi: typeof import('koffi');
  try {
    koffi = loadKoffi();
  } catch (e) {
    throw VG_ERR_SANDBOX_SECCOMP(`koffi unavailable: ${(e as Error).message}`);
  }
  let sc: ReturnType<typeof koffi.load>;
  try {
    sc = koffi.load('libseccomp.so.2');
  } catch (e) {
    throw VG_ERR_SANDBOX_SECCOMP(`libseccomp.so.2 not loadable (apt-get install libseccomp2): ${(e as Error).message}`);
  }
  // Anonymous struct: a named one would clash when jest loads this module twice.
  const cmpType = koffi.struct({ arg: 'uint32', op: 'int', datum_a: 'uint64', datum_b: 'uint64' });
  lib = {
    init: sc.func('void *seccomp_init(uint32_t def_action)') as Lib['init'],
    attrSet: sc.func('int seccomp_attr_set(void *ctx, int attr, uint32_t value)') as Lib['attrSet'],
    resolve: sc.func('int seccomp_syscall_resolve_name(const char *name)') as Lib['resolve'],
    archNative: sc.func('uint32_t seccomp_arch_native()') as Lib['archNative'],
    archExist: sc.func('int seccomp_arch_exist(void *ctx, uint32_t arch)') as Lib['archExist'],
    ruleAdd: sc.func('seccomp_rule_add_array', 'int', ['void *', 'uint32_t', 'int', 'uint', koffi.pointer(cmpType)]) as Lib['ruleAdd'],
    load: sc.func('int seccomp_load(void *ctx)') as Lib['load'],
    release: sc.func('void seccomp_release(void *ctx)') as Lib['release'],
    cmpType,
  };
  return lib;
}

// PR_SET_NO_NEW_PRIVS first and read it back: the kernel refuses an unprivileged filter without it, and it must hold
// whatever libseccomp does (OpenSSH fails fatally here too).
export function setNoNewPrivs(): void {
  if (prctl(PR.SET_NO_NEW_PRIVS, 1) !== 0) throw VG_ERR_SANDBOX_SECCOMP('prctl(PR_SET_NO_NEW_PRIVS) failed');
  if (prctl(PR.GET_NO_NEW_PRIVS) !== 1) throw VG_ERR_SANDBOX_SECCOMP('no_new_privs did not stick');
}

// Mode of the calling thread: 0 none, 1 strict, 2 filter.
export function seccompMode(): number {
  return prctl(PR.GET_SECCOMP);
}

export function resolveSyscall(name: string): number {
  return bind().resolve(name);
}

// Every thread's Seccomp line: proof that TSYNC reached the libuv pool and V8's platform threads.
export function threadSeccompModes(): number[] | null {
  try {
    return fs.readdirSync('/proc/self/task').map((t) => {
      const m = /^Seccomp:\s+(\d+)/m.exec(fs.readFileSync(`/proc/self/task/${t}/status`, 'utf8'));
      return m ? Number(m[1]) : -1;
    });
  } catch {
    return null; // e.g. the Node permission model without /proc in --allow-fs-read
  }
}

export function applySeccomp(o: SeccompOptions): SeccompReport {
  if (o.defaultAction !== 'errno' && o.defaultAction !== 'kill')
    throw VG_ERR_SANDBOX_CONFIG('defaultAction', `must be 'errno' or 'kill', not ${String(o.defaultAction)}`);
  if (!Array.isArray(o.allow) || o.allow.length === 0) throw VG_ERR_SANDBOX_CONFIG('allow', 'empty syscall list');
  const l = bind();
  const t0 = process.hrtime.bigint();
  setNoNewPrivs();
  const def = o.defaultAction === 'kill' ? SCMP_ACT.KILL_PROCESS : SCMP_ACT.errno(ERRNO.EPERM);
  const ctx = l.init(def);
  if (!ctx) throw VG_ERR_SANDBOX_SECCOMP('seccomp_init failed');
  try {
    const attr = (a: number, v: number, what: string): void => {
      const rc = l.attrSet(ctx, a, v);
      if (rc !== 0) throw VG_ERR_SANDBOX_SECCOMP(`seccomp_attr_set(${what}) = ${rc}`);
    };
    // A syscall made through another ABI (i386 int 0x80, x32) would bypass a name-based list: kill the process.
    attr(ATTR.ACT_BADARCH, SCMP_ACT.KILL_PROCESS, 'ACT_BADARCH');
    attr(ATTR.CTL_NNP, 1, 'CTL_NNP');
    // Node already runs the libuv pool and V8 platform threads: without TSYNC only this thread would be filtered.
    if (o.tsync !== false) attr(ATTR.CTL_TSYNC, 1, 'CTL_TSYNC');
    const native = l.archNative();
    if (l.archExist(ctx, native) !== 0) throw VG_ERR_SANDBOX_SECCOMP('native architecture missing from the filter');

    const argSyscalls = new Set((o.argRules ?? []).map((r) => r.syscall));
    let allowed = 0;
    let unknownHere = 0;
    for (const name of new Set(o.allow)) {
      if (argSyscalls.has(name)) continue;
      const nr = l.resolve(name);
      // Negative numbers: unknown name (-1) or a pseudo-syscall of another arch (socketcall, ...).
      if (nr < 0) {
        unknownHere++;
        continue;
      }
      const rc = l.ruleAdd(ctx, SCMP_ACT.ALLOW, nr, 0, null);
      if (rc !== 0) throw VG_ERR_SANDBOX_SECCOMP(`rule for ${name} (${nr}) = ${rc}`);
      allowed++;
    }
    for (const r of o.argRules ?? []) {
      const nr = l.resolve(r.syscall);
      if (nr < 0) throw VG_ERR_SANDBOX_SECCOMP(`argument rule for unknown syscall ${r.syscall}`);
      const deny = SCMP_ACT.errno(r.otherwise === 'errno-eafnosupport' ? ERRNO.EAFNOSUPPORT : ERRNO.EPERM);
      const eq = [{ arg: r.arg, op: CMP_EQ, datum_a: r.equals, datum_b: 0 }];
      const ne = [{ arg: r.arg, op: CMP_NE, datum_a: r.equals, datum_b: 0 }];
      let rc = l.ruleAdd(ctx, SCMP_ACT.ALLOW, nr, 1, eq);
      if (rc === 0) rc = l.ruleAdd(ctx, deny, nr, 1, ne);
      if (rc !== 0) throw VG_ERR_SANDBOX_SECCOMP(`argument rule for ${r.syscall} = ${rc}`);
      allowed++;
    }
    const rc = l.load(ctx);
    if (rc !== 0) throw VG_ERR_SANDBOX_SECCOMP(`seccomp_load = ${rc}`);
    const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
    if (seccompMode() !== 2) throw VG_ERR_SANDBOX_SECCOMP('filter not active after load');
    const modes = threadSeccompModes();
    return {
      defaultAction: o.defaultAction === 'kill' ? 'kill-process' : 'errno(EPERM)',
      badArchAction: 'kill-process',
      nativeArch: native,
      allowed,
      unknownHere,
      argRules: (o.argRules ?? []).length,
      noNewPrivs: true,
      tsync: o.tsync !== false,
      threads: modes && { total: modes.length, filtered: modes.filter((m) => m === 2).length },
      loadMs: Math.round(loadMs * 100) / 100,
    };
  } finally {
    l.release(ctx);
  }
}

// The helper needs unix sockets only: any other family gets EAFNOSUPPORT, as systemd's RestrictAddressFamilies does.
export const UNIX_SOCKETS_ONLY: readonly ArgRule[] = [{ syscall: 'socket', arg: 0, equals: AF_UNIX, otherwise: 'errno-eafnosupport' }];
