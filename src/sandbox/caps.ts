// SPDX-License-Identifier: Apache-2.0
// Capabilities of a root process that must stay root (the launcher): keep a named few, drop the rest from the
// effective, permitted, inheritable, ambient and bounding sets, then read back what the kernel says (sandbox boundary).
import * as fs from 'node:fs';
import { VG_ERR_SANDBOX_PRIVDROP } from '../common/errors';
import { PR, errno, koffi, prctl } from './libc';

// linux/capability.h
export const CAP = {
  CHOWN: 0,
  DAC_OVERRIDE: 1,
  DAC_READ_SEARCH: 2,
  FOWNER: 3,
  FSETID: 4,
  KILL: 5,
  SETGID: 6,
  SETUID: 7,
  SETPCAP: 8,
  NET_ADMIN: 12,
  SYS_CHROOT: 18,
  SYS_PTRACE: 19,
  SYS_ADMIN: 21,
  SYS_RESOURCE: 24,
  MKNOD: 27,
} as const;
export type CapName = keyof typeof CAP;

const LINUX_CAPABILITY_VERSION_3 = 0x20080522;

export interface CapsReport {
  kept: CapName[];
  capEff: string;
  capPrm: string;
  capBnd: string;
  capInh: string;
  capAmb: string;
  // Threads (libuv pool, V8 platform) started before this call keep their own sets: capset and the bounding set are per
  // thread. Start the process with a bounding set (systemd CapabilityBoundingSet=, setpriv --bounding-set) to cover them.
  threadsWithMore: number | null;
}

let capsetFn: ((hdr: Buffer, data: Buffer) => number) | null = null;
let fsuidFn: ((id: number) => number) | null = null;
let fsgidFn: ((id: number) => number) | null = null;

export function maskOf(names: readonly CapName[]): bigint {
  return names.reduce((m, n) => m | (1n << BigInt(CAP[n])), 0n);
}

function status(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^(Cap\w+):\s+([0-9a-f]+)$/.exec(line);
    if (m) out[m[1]] = m[2];
  }
  return out;
}

// Keeps exactly `keep` (effective = permitted = keep; inheritable, ambient empty; bounding = keep) on this thread.
export function keepOnlyCaps(keep: readonly CapName[]): CapsReport {
  const want = maskOf(keep);
  const last = Number(fs.readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8'));
  // Bounding set first: dropping from it needs CAP_SETPCAP, which capset below may remove.
  for (let c = 0; c <= last; c++) {
    if ((want >> BigInt(c)) & 1n) continue;
    if (prctl(PR.CAPBSET_DROP, c) !== 0) throw VG_ERR_SANDBOX_PRIVDROP(`PR_CAPBSET_DROP ${c} failed (errno ${errno()})`);
  }
  if (prctl(PR.CAP_AMBIENT, PR.CAP_AMBIENT_CLEAR_ALL) !== 0) throw VG_ERR_SANDBOX_PRIVDROP('PR_CAP_AMBIENT_CLEAR_ALL failed');
  capsetFn ??= koffi().load('libc.so.6').func('int capset(void *hdr, void *data)') as (hdr: Buffer, data: Buffer) => number;
  const hdr = Buffer.alloc(8);
  hdr.writeUInt32LE(LINUX_CAPABILITY_VERSION_3, 0);
  // Two struct __user_cap_data_struct { u32 effective, permitted, inheritable }: low and high 32 bits.
  const data = Buffer.alloc(24);
  const lo = Number(want & 0xffffffffn);
  const hi = Number(want >> 32n);
  data.writeUInt32LE(lo, 0);
  data.writeUInt32LE(lo, 4);
  data.writeUInt32LE(hi, 12);
  data.writeUInt32LE(hi, 16);
  if (capsetFn(hdr, data) !== 0) throw VG_ERR_SANDBOX_PRIVDROP(`capset failed (errno ${errno()})`);
  const s = status('/proc/thread-self/status');
  for (const k of ['CapEff', 'CapPrm', 'CapBnd'] as const) {
    if (BigInt(`0x${s[k]}`) !== want) throw VG_ERR_SANDBOX_PRIVDROP(`${k} is ${s[k]} after the drop, wanted ${want.toString(16)}`);
  }
  if (BigInt(`0x${s.CapInh}`) !== 0n || BigInt(`0x${s.CapAmb}`) !== 0n) throw VG_ERR_SANDBOX_PRIVDROP('inheritable or ambient capabilities left');
  let threadsWithMore: number | null = 0;
  try {
    for (const t of fs.readdirSync('/proc/self/task')) {
      const ts = status(`/proc/self/task/${t}/status`);
      if ((BigInt(`0x${ts.CapEff}`) & ~want) !== 0n || (BigInt(`0x${ts.CapBnd}`) & ~want) !== 0n) threadsWithMore++;
    }
  } catch {
    threadsWithMore = null;
  }
  return { kept: [...keep], capEff: s.CapEff, capPrm: s.CapPrm, capBnd: s.CapBnd, capInh: s.CapInh, capAmb: s.CapAmb, threadsWithMore };
}

// Runs fn with this thread's file-system ids set to uid/gid (setfsuid/setfsgid), then back to root. The kernel's
// ptrace-read check on /proc/PID/exe compares these ids: root can then read the exe link of a process of that uid
// without CAP_SYS_PTRACE. Synchronous only: the ids are per thread and fn runs on this one.
export function withFsIds<T>(uid: number, gid: number, fn: () => T): T {
  const c = koffi().load('libc.so.6');
  fsuidFn ??= c.func('int setfsuid(uint32_t id)') as (id: number) => number;
  fsgidFn ??= c.func('int setfsgid(uint32_t id)') as (id: number) => number;
  fsgidFn(gid);
  fsuidFn(uid);
  try {
    return fn();
  } finally {
    fsuidFn(0);
    fsgidFn(0);
  }
}
