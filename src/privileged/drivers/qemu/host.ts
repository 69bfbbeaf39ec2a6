// SPDX-License-Identifier: Apache-2.0
// What the QEMU driver needs from outside itself (launcher, descriptors, disks, cgroups), as interfaces the helper wires (helper side).
import * as fs from 'node:fs';
import { cgroupDirs } from '../../../ipc/launcher';
import { parseCgroupCpuNs } from '../../../ipc/shared';

// The launcher's operations as the driver uses them (src/privileged/launcher-client.ts implements them).
export interface SpawnRequest {
  vm: string; // uuid
  slot: number; // uid = uidBase + slot
  tenant: string; // '' = host admin's VM (cgroup "_host")
  argv: string[]; // after the emulator path
  limits: { memoryBytes: bigint; pids: number };
  kvm: boolean;
}
export interface LaunchedVm {
  vm: string;
  pid: number;
  slot: number;
  tenant: string;
}
export interface Launcher {
  spawn(req: SpawnRequest, fds: number[]): Promise<{ pid: number }>;
  signal(vm: string, sig: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  list(): Promise<LaunchedVm[]>;
  cleanup(vm: string): Promise<void>;
  tap(bridge: string): Promise<{ ifname: string; fd: number }>; // a tap on the bridge; its descriptor is the caller's
}

export interface DiskLayer {
  fd: number;
  format: 'raw' | 'qcow2';
  readOnly: boolean;
  name: string;
}

export interface QemuHost {
  launcher(): Launcher | null; // null while the launcher is away (the helper reconnects)
  bindListener(socketPath: string): number; // a listening unix socket (root, in a 0700 directory)
  closeFd(fd: number): void;
  kernelMemfd(file: string, what: 'kernel' | 'initrd'): number; // sealed copy
  openDisk(o: { poolDir: string; name: string; format: 'raw' | 'qcow2'; readOnly: boolean; basePools: string[] }): DiskLayer[];
  // A tenant's volume as a pool directory and a plain name (null: not a volume that tenant may use).
  resolveVolume?(pool: string, volume: string, tenant: string): { poolDir: string; name: string; basePools: string[] } | null;
}

const CLK_TCK = 100n; // USER_HZ on Linux x86_64

// The host's cgroup layout does not change while the helper runs: asked once, not on every GetInfo.
let v2Layout: boolean | undefined;
const cgroupV2 = (): boolean => (v2Layout ??= fs.existsSync('/sys/fs/cgroup/cgroup.controllers'));

// The accounting file vmCpuNs reads first, when it is there: the front end's mirror reads it itself (one hop less).
export function vmCpuFile(cgroupRoot: string, tenant: string, uuid: string): string | null {
  try {
    const dirs = cgroupDirs(cgroupRoot, tenant, uuid);
    const f = cgroupV2() ? dirs.cpuStatV2 : dirs.cpuUsageV1;
    return fs.existsSync(f) ? f : null;
  } catch {
    return null;
  }
}

// CPU time of a VM in ns: its cgroup's accounting; the QEMU process's own times when the cgroup is not there.
export function vmCpuNs(cgroupRoot: string, tenant: string, uuid: string, pid: number | null): bigint | null {
  const v2 = cgroupV2();
  try {
    // cgroupDirs checks the names it joins (it throws rather than build a path from a bad one): then /proc below.
    const dirs = cgroupDirs(cgroupRoot, tenant, uuid);
    const file = v2 ? dirs.cpuStatV2 : dirs.cpuUsageV1;
    return parseCgroupCpuNs(file, fs.readFileSync(file, 'utf8'));
  } catch {
    // fall through to /proc
  }
  if (pid === null) return null;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields 14 and 15 (utime, stime) are at 11 and 12 after the comm
    return ((BigInt(f[11]) + BigInt(f[12])) * 1_000_000_000n) / CLK_TCK;
  } catch {
    return null;
  }
}
