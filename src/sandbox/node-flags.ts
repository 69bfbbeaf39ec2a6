// SPDX-License-Identifier: Apache-2.0
// Node 20 permission-model flags per process, as a pure function of paths (sandbox boundary; defence in depth only).
import * as path from 'node:path';
import { VG_ERR_SANDBOX_CONFIG } from '../common/errors';

// What Node 20's model does NOT cover (security-notes §7.1), so nothing here may be relied on alone:
// - symlinks inside an allowed directory are followed to anywhere;
// - listen/connect on a unix socket path outside --allow-fs-write is allowed (it still creates a file);
// - there is no network permission at all; --allow-addons lets native code (koffi) do anything;
// - flags are not inherited by child processes (we allow none) and `--env-file`/`--openssl-config` are read first.
// Node 20 does not split `--allow-fs-read=/a,/b` (20.20.2 treats it as one path): one flag per path.

export interface PermissionPaths {
  read: readonly string[]; // code, config, PKI: absolute paths; a directory covers everything below it
  write: readonly string[]; // state, runtime and log directories (also made readable)
  addons: boolean; // koffi: SO_PEERCRED and the seccomp loader need it
  childProcess?: boolean; // Node 20's --allow-child-process; only for the front end's syslog copy (audit sink spawns `logger`)
}

function check(p: string, what: string): string {
  if (typeof p !== 'string' || !path.isAbsolute(p)) throw VG_ERR_SANDBOX_CONFIG(what, `not an absolute path: ${String(p)}`);
  const n = path.normalize(p);
  // '/' would switch the layer off without saying so; a comma is not split by Node 20 and would silently allow nothing.
  if (n === '/') throw VG_ERR_SANDBOX_CONFIG(what, "'/' allows everything");
  if (n.includes(',')) throw VG_ERR_SANDBOX_CONFIG(what, `comma in path (not split by Node 20): ${p}`);
  if (n.includes('*')) throw VG_ERR_SANDBOX_CONFIG(what, `wildcards are not accepted: ${p}`);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

// The argv to put before the script. No --allow-worker ever; --allow-child-process only on request.
export function permissionFlags(p: PermissionPaths): string[] {
  const write = [...new Set(p.write.map((x) => check(x, 'write')))].sort();
  const read = [...new Set([...p.read.map((x) => check(x, 'read')), ...write])].sort();
  return [
    '--experimental-permission',
    ...read.map((x) => `--allow-fs-read=${x}`),
    ...write.map((x) => `--allow-fs-write=${x}`),
    ...(p.addons ? ['--allow-addons'] : []),
    ...(p.childProcess ? ['--allow-child-process'] : []),
  ];
}

// The package root holds build/ and node_modules/ (koffi): the only code either process may load.
export interface FrontLayout {
  codeRoot: string;
  home: string; // HOME: etc/ (config, policy, users), pki/, run/ (client sockets), log/ (audit), lib/
  configFile?: string; // when --config points outside HOME
  extraRead?: readonly string[]; // TLS files or a policy outside HOME
  extraWrite?: readonly string[]; // an audit log outside HOME
  addons?: boolean; // default true: SO_PEERCRED for unix clients and the seccomp loader
  dropFromRoot?: boolean; // started as root with a user to drop to: the name lookup and capability count must be readable
  syslogCopy?: boolean; // audit copy through `logger` (src/audit/sink.ts spawns it): needs --allow-child-process
}

export function frontPermissionPaths(l: FrontLayout): PermissionPaths {
  const h = check(l.home, 'home');
  return {
    read: [
      check(l.codeRoot, 'codeRoot'),
      h,
      ...(l.configFile ? [l.configFile] : []),
      ...(l.extraRead ?? []),
      '/proc/self',
      ...(l.dropFromRoot ? ['/etc/passwd', '/etc/group', '/proc/sys/kernel/cap_last_cap'] : []),
    ],
    // Not all of HOME: etc/ and pki/ (keys, policy) stay read-only to the network-facing process.
    // cache/: the policy database's last good rows. A database over TCP needs no flag (Node 20 has no network
    // permission) and neither does its unix socket (connect is not checked); a password file outside HOME is extraRead.
    write: [path.join(h, 'run'), path.join(h, 'log'), path.join(h, 'lib'), path.join(h, 'cache'), ...(l.extraWrite ?? [])],
    addons: l.addons ?? true,
    childProcess: l.syslogCopy ?? false,
  };
}

export interface HelperLayout {
  codeRoot: string;
  socket: string;
  stateDir: string;
  runtimeDir: string;
  addons?: boolean; // default true: SO_PEERCRED on every connection
  // --driver qemu: pools it creates volumes in (write), where VM CPU time and QEMU's exit are read (cgroups, /proc), the
  // emulator it checks, and the directories kernels and initrds are copied from (read).
  qemu?: { poolRoots: readonly string[]; bootDirs?: readonly string[] };
}

export function helperPermissionPaths(l: HelperLayout): PermissionPaths {
  const q = l.qemu;
  return {
    // /proc/self: the sandbox's own per-thread checks; /etc/passwd and /etc/group are not needed (the helper keeps root).
    read: [
      check(l.codeRoot, 'codeRoot'),
      '/proc/self',
      ...(q ? ['/sys/fs/cgroup', '/proc', '/usr/bin/qemu-system-x86_64', ...(q.bootDirs ?? []).map((d) => check(d, 'bootDirs'))] : []),
    ],
    write: [
      check(l.stateDir, 'stateDir'),
      check(l.runtimeDir, 'runtimeDir'),
      path.dirname(check(l.socket, 'socket')),
      ...(q ? q.poolRoots.map((r) => check(r, 'poolRoots')) : []),
    ],
    addons: l.addons ?? true,
  };
}
