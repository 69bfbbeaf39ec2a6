// SPDX-License-Identifier: Apache-2.0
// The VMs' cgroups: made, limited, joined, listed and removed by the launcher only (launcher boundary). The tree is
// also the launcher's memory: after a restart it finds its VMs there.
import * as fs from 'node:fs';
import { isTenantName } from '../common/names';
import { CGROUP_V1_CONTROLLERS, type CgroupDirs, HOST_TENANT_DIR, type MemoryPidsLimits, cgroupDirs, isVmUuid } from '../ipc/launcher';

export type CgroupLayout = 'v1' | 'v2';

export class CgroupError extends Error {
  constructor(
    readonly busy: boolean,
    message: string,
  ) {
    super(message);
    this.name = 'CgroupError';
  }
}

export function detectLayout(mount: string): CgroupLayout {
  return fs.existsSync(`${mount}/cgroup.controllers`) ? 'v2' : 'v1';
}

const write = (file: string, text: string): void => {
  try {
    fs.writeFileSync(file, text);
  } catch (e) {
    throw new CgroupError((e as NodeJS.ErrnoException).code === 'EBUSY', `write ${text.trim()} to ${file}: ${(e as Error).message}`);
  }
};

export class Cgroups {
  readonly layout: CgroupLayout;
  constructor(
    readonly root: string, // the launcher's subtree name (e.g. virtgate)
    readonly mount = '/sys/fs/cgroup',
  ) {
    this.layout = detectLayout(mount);
  }

  // The launcher's own subtree, made while it still has CAP_DAC_OVERRIDE (cgroupfs roots are mode 0555); everything
  // below is then made in directories it owns.
  prepare(): void {
    const tops = this.layout === 'v2' ? [`${this.mount}/${this.root}`] : CGROUP_V1_CONTROLLERS.map((c) => `${this.mount}/${c}/${this.root}`);
    for (const dir of tops) {
      fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
      fs.chmodSync(dir, 0o755);
    }
    if (this.layout === 'v2') {
      for (const dir of [this.mount, `${this.mount}/${this.root}`]) write(`${dir}/cgroup.subtree_control`, '+memory +pids +cpu');
    }
  }

  dirs(tenant: string, vm: string): CgroupDirs {
    return cgroupDirs(this.root, tenant, vm, this.mount);
  }

  #vmDirs(d: CgroupDirs): string[] {
    return this.layout === 'v2' ? [d.v2] : CGROUP_V1_CONTROLLERS.map((c) => d.v1[c]);
  }

  // Makes root/tenant/vm-uuid for every controller (v2: with memory, pids and cpu delegated down the path).
  create(tenant: string, vm: string, limits: MemoryPidsLimits): CgroupDirs {
    const d = this.dirs(tenant, vm);
    if (this.layout === 'v2') {
      fs.mkdirSync(d.tenant.v2, { recursive: true, mode: 0o755 });
      write(`${d.tenant.v2}/cgroup.subtree_control`, '+memory +pids +cpu');
    }
    for (const dir of this.#vmDirs(d)) fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    this.setLimits(d, limits);
    return d;
  }

  setLimits(d: CgroupDirs, l: MemoryPidsLimits): void {
    if (this.layout === 'v2') {
      write(`${d.v2}/memory.max`, `${l.memoryBytes}\n`);
      write(`${d.v2}/memory.swap.max`, '0\n');
      write(`${d.v2}/pids.max`, `${l.pids}\n`);
    } else {
      write(`${d.v1.memory}/memory.limit_in_bytes`, `${l.memoryBytes}\n`);
      write(`${d.v1.pids}/pids.max`, `${l.pids}\n`);
    }
  }

  join(d: CgroupDirs, pid: number): void {
    for (const dir of this.#vmDirs(d)) write(`${dir}/cgroup.procs`, `${pid}\n`);
  }

  exists(d: CgroupDirs): boolean {
    return this.#vmDirs(d).some((dir) => fs.existsSync(dir));
  }

  // Every process in the VM's cgroup (pids controller on v1): QEMU and the jail processes above it.
  procs(d: CgroupDirs): number[] {
    const dir = this.layout === 'v2' ? d.v2 : d.v1.pids;
    let text: string;
    try {
      text = fs.readFileSync(`${dir}/cgroup.procs`, 'utf8');
    } catch {
      return [];
    }
    return text
      .split('\n')
      .filter((l) => /^[0-9]+$/.test(l))
      .map(Number);
  }

  // rmdir of every (empty) VM directory; a live process makes it EBUSY, reported as busy.
  remove(d: CgroupDirs): void {
    for (const dir of this.#vmDirs(d)) {
      try {
        fs.rmdirSync(dir);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') continue;
        throw new CgroupError(code === 'EBUSY', `rmdir ${dir}: ${(e as Error).message}`);
      }
    }
  }

  // The VMs whose cgroups exist: [tenant, uuid], found from the tree (pids controller on v1).
  scan(): { tenant: string; vm: string }[] {
    const base = this.layout === 'v2' ? `${this.mount}/${this.root}` : `${this.mount}/pids/${this.root}`;
    const out: { tenant: string; vm: string }[] = [];
    let tenants: fs.Dirent[];
    try {
      tenants = fs.readdirSync(base, { withFileTypes: true });
    } catch {
      return out;
    }
    for (const t of tenants) {
      if (!t.isDirectory() || (t.name !== HOST_TENANT_DIR && !isTenantName(t.name))) continue;
      let vms: string[];
      try {
        vms = fs.readdirSync(`${base}/${t.name}`);
      } catch {
        continue;
      }
      for (const v of vms) {
        const id = v.startsWith('vm-') ? v.slice(3) : '';
        if (isVmUuid(id)) out.push({ tenant: t.name === HOST_TENANT_DIR ? '' : t.name, vm: id });
      }
    }
    return out;
  }
}
