// SPDX-License-Identifier: Apache-2.0
// The launcher's operations (launcher boundary): spawn a jailed QEMU, signal it, list and adopt live VMs from the cgroup
// tree, change limits, remove cgroups. State lives in the kernel (cgroups, /proc), never only in this process.
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  type LaunchedVm,
  LauncherErrorCode,
  type LauncherErrorCodeValue,
  type LauncherSignal,
  LauncherLimits,
  type MemoryPidsLimits,
  type SpawnRequest,
} from '../ipc/launcher';
import { socketType } from '../sandbox/fdpass';
import { ArgvRefused, checkArgv, type FdUse } from './argv';
import { CgroupError, type Cgroups } from './cgroups';
import { JailError, findQemu, logTail, startChain, uidInUse } from './jail';

export class LauncherFailure extends Error {
  constructor(
    readonly code: LauncherErrorCodeValue,
    message: string,
  ) {
    super(message);
    this.name = 'LauncherFailure';
  }
}

export interface LauncherCoreOptions {
  cgroups: Cgroups;
  uidBase: number;
  logDir: string; // QEMU's stdout/stderr per VM: LOGDIR/<uuid>.log, root 0600
  log: (line: string) => void;
  spawnTimeoutMs?: number;
}

const SPAWN_TIMEOUT_MS = 10_000; // sh -> bwrap -> setpriv -> exec of QEMU; measured in tens of ms
const POLL_MS = 3;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class LauncherCore {
  readonly #o: Required<LauncherCoreOptions>;

  constructor(o: LauncherCoreOptions) {
    this.#o = { spawnTimeoutMs: SPAWN_TIMEOUT_MS, ...o };
  }

  uidOf(slot: number): number {
    return this.#o.uidBase + slot;
  }

  // A live VM: its cgroup holds a QEMU whose exe is the emulator and whose uid (= gid) is one of our slots.
  #live(tenant: string, vm: string): LaunchedVm | null {
    const cg = this.#o.cgroups;
    const d = cg.dirs(tenant, vm);
    const pids = cg.procs(d);
    for (const p of pids) {
      const uid = uidOfPid(p);
      if (uid === null) continue;
      const slot = uid - this.#o.uidBase;
      if (slot < LauncherLimits.SLOT_MIN || slot > LauncherLimits.SLOT_MAX) continue;
      if (findQemu([p], uid, uid) === p) return { vm, pid: p, slot, tenant };
    }
    return null;
  }

  list(): LaunchedVm[] {
    const out: LaunchedVm[] = [];
    for (const { tenant, vm } of this.#o.cgroups.scan()) {
      const v = this.#live(tenant, vm);
      if (v) out.push(v);
    }
    return out;
  }

  #find(vm: string): { tenant: string; vm: string } {
    const hit = this.#o.cgroups.scan().find((x) => x.vm === vm);
    if (!hit) throw new LauncherFailure(LauncherErrorCode.NO_SUCH_VM, `no VM ${vm} (no cgroup)`);
    return hit;
  }

  // Each passed descriptor is used by the argv exactly once and is the kind of file that use needs.
  #checkFds(uses: Map<number, FdUse>, fds: readonly number[]): void {
    fds.forEach((fd, i) => {
      const n = 3 + i;
      const use = uses.get(n);
      if (!use) throw new LauncherFailure(LauncherErrorCode.FD_REFUSED, `descriptor ${n} was passed but no argument uses it`);
      let st: fs.Stats;
      try {
        st = fs.fstatSync(fd);
      } catch (e) {
        throw new LauncherFailure(LauncherErrorCode.FD_REFUSED, `descriptor ${n}: ${(e as Error).message}`);
      }
      const ok = use === 'chardev-listener' ? st.isSocket() && socketType(fd) === 'stream' : use === 'tap' ? st.isCharacterDevice() : st.isFile(); // disks, kernel and initrd (sealed memfds are regular files too)
      if (!ok) throw new LauncherFailure(LauncherErrorCode.FD_REFUSED, `descriptor ${n} is not what ${use} needs`);
    });
  }

  async spawn(r: SpawnRequest, fds: readonly number[]): Promise<{ pid: number }> {
    let uses: Map<number, FdUse>;
    try {
      uses = checkArgv(r.argv, fds.length).fdUses;
    } catch (e) {
      if (e instanceof ArgvRefused) throw new LauncherFailure(e.kind === 'fd' ? LauncherErrorCode.FD_REFUSED : LauncherErrorCode.ARGV_REFUSED, e.message);
      throw e;
    }
    this.#checkFds(uses, fds);
    const cg = this.#o.cgroups;
    const d = cg.dirs(r.tenant, r.vm);
    for (const x of cg.scan().filter((s) => s.vm === r.vm)) {
      if (cg.procs(cg.dirs(x.tenant, x.vm)).length)
        throw new LauncherFailure(LauncherErrorCode.VM_EXISTS, `VM ${r.vm} is running (its cgroup holds processes)`);
      cg.remove(cg.dirs(x.tenant, x.vm)); // an exited VM nobody cleaned up
    }
    const uid = this.uidOf(r.slot);
    const taken = this.list().find((v) => v.slot === r.slot);
    if (taken) throw new LauncherFailure(LauncherErrorCode.SLOT_IN_USE, `slot ${r.slot} (uid ${uid}) is used by VM ${taken.vm}`);
    const other = uidInUse(uid);
    if (other !== null) throw new LauncherFailure(LauncherErrorCode.SLOT_IN_USE, `slot ${r.slot}: uid ${uid} is in use by pid ${other}`);

    try {
      cg.create(r.tenant, r.vm, r.limits);
    } catch (e) {
      throw new LauncherFailure(LauncherErrorCode.CGROUP_FAILED, (e as Error).message);
    }
    const logFile = path.join(this.#o.logDir, `${r.vm}.log`);
    let logFd: number | null = null;
    let chain: ReturnType<typeof startChain> | null = null;
    try {
      logFd = fs.openSync(logFile, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, 0o600);
      chain = startChain({ uid, gid: uid, kvm: r.kvm, qemuArgs: r.argv }, fds, logFd);
      fs.closeSync(logFd);
      logFd = null;
      cg.join(d, chain.chainPid);
      chain.go();
      const started = Date.now();
      let exit: { code: number | null; signal: string | null } | null = null;
      void chain.exited.then((x) => (exit = x));
      for (;;) {
        const pid = findQemu(cg.procs(d), uid, uid);
        if (pid !== null) {
          this.#o.log(`spawned VM ${r.vm} (tenant '${r.tenant}', slot ${r.slot}, uid ${uid}): QEMU pid ${pid}, ${Date.now() - started} ms`);
          void chain.exited.then((x) => this.#o.log(`VM ${r.vm}: jail exited (${x.signal ?? x.code})`));
          return { pid };
        }
        if (exit !== null) {
          const x = exit as { code: number | null; signal: string | null };
          throw new LauncherFailure(
            LauncherErrorCode.SPAWN_FAILED,
            `QEMU exited at start (${x.signal ?? `status ${x.code}`}): ${logTail(logFile) || 'no output'}`,
          );
        }
        if (Date.now() - started > this.#o.spawnTimeoutMs)
          throw new LauncherFailure(LauncherErrorCode.SPAWN_FAILED, `QEMU did not start within ${this.#o.spawnTimeoutMs} ms`);
        await sleep(POLL_MS);
      }
    } catch (e) {
      if (logFd !== null) fs.closeSync(logFd);
      if (chain) {
        for (const p of cg.procs(d)) killQuiet(p);
        chain.abort();
        await Promise.race([chain.exited, sleep(2000)]);
      }
      await this.#removeWhenEmpty(d, 2000).catch(() => undefined);
      if (e instanceof LauncherFailure) throw e;
      if (e instanceof JailError) throw new LauncherFailure(LauncherErrorCode.SPAWN_FAILED, e.message);
      if (e instanceof CgroupError) throw new LauncherFailure(LauncherErrorCode.CGROUP_FAILED, e.message);
      throw new LauncherFailure(LauncherErrorCode.SPAWN_FAILED, (e as Error).message);
    }
  }

  // SIGTERM goes to QEMU (a clean exit); SIGKILL to every process of the VM's cgroup (QEMU and the jail above it).
  signal(vm: string, sig: LauncherSignal): void {
    const { tenant } = this.#find(vm);
    const live = this.#live(tenant, vm);
    if (!live) throw new LauncherFailure(LauncherErrorCode.NO_SUCH_VM, `VM ${vm} is not running`);
    try {
      if (sig === 'SIGTERM') process.kill(live.pid, 'SIGTERM');
      else for (const p of this.#o.cgroups.procs(this.#o.cgroups.dirs(tenant, vm))) killQuiet(p);
    } catch (e) {
      throw new LauncherFailure(LauncherErrorCode.SIGNAL_FAILED, `${sig} to ${live.pid}: ${(e as Error).message}`);
    }
  }

  limits(vm: string, l: MemoryPidsLimits): void {
    const { tenant } = this.#find(vm);
    try {
      this.#o.cgroups.setLimits(this.#o.cgroups.dirs(tenant, vm), l);
    } catch (e) {
      throw new LauncherFailure(LauncherErrorCode.CGROUP_FAILED, (e as Error).message);
    }
  }

  async cleanup(vm: string): Promise<void> {
    const { tenant } = this.#find(vm);
    const d = this.#o.cgroups.dirs(tenant, vm);
    const procs = this.#o.cgroups.procs(d);
    if (procs.length) throw new LauncherFailure(LauncherErrorCode.VM_RUNNING, `VM ${vm} still has processes ${procs.join(' ')}`);
    await this.#removeWhenEmpty(d, 1000);
  }

  // An exited task can keep a cgroup busy for a moment after it left cgroup.procs.
  async #removeWhenEmpty(d: ReturnType<Cgroups['dirs']>, waitMs: number): Promise<void> {
    const until = Date.now() + waitMs;
    for (;;) {
      try {
        this.#o.cgroups.remove(d);
        return;
      } catch (e) {
        if (!(e instanceof CgroupError) || !e.busy || Date.now() > until)
          throw new LauncherFailure(e instanceof CgroupError && e.busy ? LauncherErrorCode.VM_RUNNING : LauncherErrorCode.CGROUP_FAILED, (e as Error).message);
      }
      await sleep(10);
    }
  }
}

function uidOfPid(pid: number): number | null {
  try {
    const m = /^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function killQuiet(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
