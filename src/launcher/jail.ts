// SPDX-License-Identifier: Apache-2.0
// The jail chain around each QEMU (launcher boundary): sh (waits until it is in the VM's cgroups) -> bwrap (pid, ipc,
// uts, net, mount namespaces; private /dev; read-only /usr; tmpfs /tmp) -> setpriv (the VM's uid, no capabilities,
// no_new_privs) -> the fixed emulator. Never --die-with-parent, detached (own session): VMs outlive the launcher.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { withFsIds } from '../sandbox/caps';

export const EMULATOR = '/usr/bin/qemu-system-x86_64';
export const BWRAP = '/usr/bin/bwrap';
export const SETPRIV = '/usr/bin/setpriv';
const SH = '/bin/sh';
const KVM = '/dev/kvm';
// The handshake: sh blocks on stdin until the launcher has written its pid into every cgroup, so not one instruction of
// bwrap or QEMU runs outside them.
const HANDSHAKE = 'read go && exec "$@"';

export interface JailSpec {
  uid: number;
  gid: number;
  kvm: boolean;
  qemuArgs: readonly string[];
}

// The full command after sh's handshake: bwrap ... -- setpriv ... -- EMULATOR args.
export function jailCommand(j: JailSpec): string[] {
  return [
    BWRAP,
    ...['--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-net', '--unshare-cgroup-try'],
    ...['--dev', '/dev', ...(j.kvm ? ['--dev-bind', KVM, KVM] : [])],
    ...['--ro-bind', '/usr', '/usr'],
    // Debian's merged /usr: the top-level names are links into it.
    ...['--symlink', 'usr/lib', '/lib', '--symlink', 'usr/lib64', '/lib64', '--symlink', 'usr/bin', '/bin', '--symlink', 'usr/sbin', '/sbin'],
    ...['--proc', '/proc', '--tmpfs', '/tmp', '--chdir', '/'],
    '--',
    SETPRIV,
    ...[`--reuid=${j.uid}`, `--regid=${j.gid}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs'],
    '--',
    EMULATOR,
    ...j.qemuArgs,
  ];
}

export class JailError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JailError';
  }
}

export interface Started {
  chainPid: number; // sh, then bwrap (the launcher's direct child)
  exited: Promise<{ code: number | null; signal: string | null }>;
  go(): void; // releases the handshake
  abort(): void; // kills the chain before it ran anything
}

// Starts the chain, paused in sh's handshake. fds[i] becomes fd 3+i in QEMU; log receives QEMU's stdout and stderr.
export function startChain(j: JailSpec, fds: readonly number[], logFd: number): Started {
  if (j.kvm && !fs.existsSync(KVM)) throw new JailError(`kvm requested but ${KVM} does not exist on this host`);
  const child = spawn(SH, ['-c', HANDSHAKE, 'virtgate-jail', ...jailCommand(j)], {
    stdio: ['pipe', logFd, logFd, ...fds],
    // Own session and process group: a kill of the launcher's group (Ctrl-C, systemd's KillMode=process) misses it.
    detached: true,
    cwd: '/',
    env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' },
  });
  if (child.pid === undefined) throw new JailError(`cannot start ${SH}`);
  child.unref();
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
    child.on('error', () => resolve({ code: null, signal: null }));
  });
  child.stdin!.on('error', () => undefined);
  return {
    chainPid: child.pid,
    exited,
    go: () => child.stdin!.end('go\n'),
    abort: () => {
      child.stdin!.destroy();
      try {
        process.kill(child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    },
  };
}

export interface ProcInfo {
  uid: number;
  gid: number;
  exe: string | null; // null: unreadable (gone, or not dumpable)
}

function statusIds(text: string, key: 'Uid' | 'Gid'): number[] {
  const m = new RegExp(`^${key}:\\s+(.*)$`, 'm').exec(text);
  return m ? m[1].trim().split(/\s+/).map(Number) : [];
}

// A process as the kernel reports it. The exe link is read with the process's own fs ids (withFsIds): root without
// CAP_SYS_PTRACE may not read it otherwise.
export function procInfo(pid: number): ProcInfo | null {
  let st: string;
  try {
    st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const uids = statusIds(st, 'Uid');
  const gids = statusIds(st, 'Gid');
  if (uids.length !== 4 || gids.length !== 4) return null;
  // Not a single id for all four slots: not one of ours, whatever its exe.
  const uid = uids.every((u) => u === uids[0]) ? uids[0] : -1;
  const gid = gids.every((g) => g === gids[0]) ? gids[0] : -1;
  let exe: string | null = null;
  const read = (): string | null => {
    try {
      return fs.readlinkSync(`/proc/${pid}/exe`);
    } catch {
      return null;
    }
  };
  exe = read();
  if (exe === null && uid > 0 && gid > 0) exe = withFsIds(uid, gid, read);
  return { uid, gid, exe };
}

// The QEMU among pids: exe the emulator, every uid and gid the VM's.
export function findQemu(pids: readonly number[], uid: number, gid: number): number | null {
  for (const p of pids) {
    const i = procInfo(p);
    if (i && i.exe === EMULATOR && i.uid === uid && i.gid === gid) return p;
  }
  return null;
}

// Any process on the host running as uid (a slot is free only when nothing runs under its uid).
export function uidInUse(uid: number): number | null {
  for (const d of fs.readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(d)) continue;
    try {
      const ids = statusIds(fs.readFileSync(`/proc/${d}/status`, 'utf8'), 'Uid');
      if (ids.includes(uid)) return Number(d);
    } catch {
      // gone meanwhile
    }
  }
  return null;
}

// The last bytes of a VM's log, for an error message.
export function logTail(file: string, max = 2000): string {
  try {
    const b = fs.readFileSync(file);
    return b
      .subarray(Math.max(0, b.length - max))
      .toString('utf8')
      .trim();
  } catch {
    return '';
  }
}
