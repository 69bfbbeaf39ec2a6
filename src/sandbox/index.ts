// SPDX-License-Identifier: Apache-2.0
// applySandbox(role): privilege drop (front end, from root) then seccomp, once, with a report to log (sandbox boundary).
import { VG_ERR_SANDBOX_CONFIG } from '../common/errors';
import { type CapName, type CapsReport, keepOnlyCaps } from './caps';
import { type PrivDropReport, dropPrivileges } from './privdrop';
import { type DefaultAction, type SeccompReport, UNIX_SOCKETS_ONLY, applySeccomp } from './seccomp';
import { FRONT_SYSCALLS, HELPER_SYSCALLS, LAUNCHER_SYSCALLS } from './syscall-sets';

export { permissionFlags, frontPermissionPaths, helperPermissionPaths } from './node-flags';
export type { PermissionPaths } from './node-flags';

export type Role = 'front' | 'helper' | 'launcher';

// The launcher's capabilities: set*id and setpcap for setpriv, sys_admin and sys_chroot for bwrap's namespaces, mounts
// and pivot_root/chroot, net_admin for tap devices, kill to signal QEMUs of other uids. Everything else is dropped.
export const LAUNCHER_CAPS: readonly CapName[] = ['SETUID', 'SETGID', 'SETPCAP', 'SYS_ADMIN', 'SYS_CHROOT', 'NET_ADMIN', 'KILL'];

export interface SandboxOptions {
  user?: string | number; // front end only: drop to this user when started as root
  group?: string | number;
  groups?: ReadonlyArray<string | number>;
  seccomp?: boolean; // default true
  defaultAction?: DefaultAction; // default: errno for the front end, kill for the helper
}

export interface SandboxReport {
  role: Role;
  privdrop: PrivDropReport | { skipped: string };
  caps?: CapsReport; // the launcher: what it kept
  seccomp: SeccompReport | { skipped: string };
  permissionModel: boolean; // started with --experimental-permission
  totalMs: number;
}

let applied: SandboxReport | null = null;

// Call once, after every socket is bound and every privileged set-up step (chown, chmod) is done, and before the
// first untrusted byte is read. Privilege drop comes first: the filter removes setuid/setgroups (@privileged).
export function applySandbox(role: Role, o: SandboxOptions = {}): SandboxReport {
  if (role !== 'front' && role !== 'helper' && role !== 'launcher') throw VG_ERR_SANDBOX_CONFIG('role', `'front', 'helper' or 'launcher', not ${String(role)}`);
  if (applied) throw VG_ERR_SANDBOX_CONFIG('role', `sandbox already applied (${applied.role})`);
  if (role !== 'front' && o.user !== undefined) throw VG_ERR_SANDBOX_CONFIG('user', `the ${role} keeps root; set User= on the front end instead`);
  const t0 = process.hrtime.bigint();
  let privdrop: SandboxReport['privdrop'];
  // Say what is true: a process started as another user has nothing to drop; only root keeping root is a choice.
  const euid = process.geteuid?.() ?? 0;
  if (euid !== 0) privdrop = { skipped: `not root: runs as uid ${euid}, nothing to drop` };
  else if (o.user === undefined) privdrop = { skipped: role !== 'front' ? `${role} stays root` : 'runs as root: no user configured' };
  else privdrop = dropPrivileges({ user: o.user, group: o.group, groups: o.groups });

  // The launcher stays root with a few capabilities; capset is in its list, but the drop goes first anyway.
  const caps = role === 'launcher' && euid === 0 ? keepOnlyCaps(LAUNCHER_CAPS) : undefined;
  let seccomp: SandboxReport['seccomp'];
  if (o.seccomp === false) seccomp = { skipped: 'disabled by configuration' };
  else
    seccomp = applySeccomp(
      role === 'front'
        ? { allow: FRONT_SYSCALLS, defaultAction: o.defaultAction ?? 'errno' }
        : role === 'launcher'
          ? // EPERM, not a kill: the filter is inherited by every QEMU, where a refused call must fail, not kill a guest.
            // No address-family rule: QEMU's user networking opens inet sockets (inside its own empty network namespace).
            { allow: LAUNCHER_SYSCALLS, defaultAction: o.defaultAction ?? 'errno' }
          : { allow: HELPER_SYSCALLS, defaultAction: o.defaultAction ?? 'kill', argRules: UNIX_SOCKETS_ONLY },
    );
  applied = {
    role,
    privdrop,
    ...(caps ? { caps } : {}),
    seccomp,
    permissionModel: (process as { permission?: unknown }).permission !== undefined,
    totalMs: Math.round((Number(process.hrtime.bigint() - t0) / 1e6) * 100) / 100,
  };
  return applied;
}

// One log line: what the process runs under, for the start-up log.
export function describeSandbox(r: SandboxReport): string {
  const p =
    'skipped' in r.privdrop
      ? `privdrop skipped (${r.privdrop.skipped})`
      : `uid ${r.privdrop.uid} gid ${r.privdrop.gid} groups [${r.privdrop.groups.join(',')}]${r.privdrop.boundingSetCleared ? ', bounding set empty' : ''}`;
  const s =
    'skipped' in r.seccomp
      ? `seccomp skipped (${r.seccomp.skipped})`
      : `seccomp ${r.seccomp.allowed} syscalls allowed, default ${r.seccomp.defaultAction}, no-new-privs, tsync ${r.seccomp.threads ? `${r.seccomp.threads.filtered}/${r.seccomp.threads.total} threads` : 'on'}, ${r.seccomp.loadMs} ms`;
  const c = r.caps
    ? `; capabilities kept ${r.caps.kept.join(' ')} (CapEff ${r.caps.capEff}, CapBnd ${r.caps.capBnd}${r.caps.threadsWithMore ? `; ${r.caps.threadsWithMore} threads started earlier keep more: start under a bounding set` : ''})`
    : '';
  return `sandbox (${r.role}): ${p}${c}; ${s}; node permission model ${r.permissionModel ? 'on' : 'off'}`;
}
