// SPDX-License-Identifier: Apache-2.0
// virtgate-launcher's command line (launcher boundary).
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { versionLine } from '../common/version';

export interface LauncherOptions {
  socket: string;
  allowUids: number[];
  cgroupRoot: string;
  cgroupMount: string;
  uidBase: number;
  logDir: string;
  sandbox: boolean;
}

export const USAGE = `usage: virtgate-launcher --socket PATH [OPTIONS]
  --socket PATH          the SOCK_SEQPACKET socket the helper connects to (required; made root 0600)
  --allow-uid N          a uid allowed to connect (SO_PEERCRED); repeat for several (default 0: the helper runs as root)
  --cgroup-root NAME     the launcher's cgroup subtree: <ctrl>/NAME/<tenant|_host>/vm-<uuid> (default virtgate)
  --uid-base N           QEMU of slot S runs as uid and gid N+S (default 200000; slots 1-9999)
  --log-dir DIR          QEMU's stdout/stderr, DIR/<uuid>.log, root 0600 (default: SOCKET's directory/launcher-logs)
  --no-sandbox           keep every capability and load no seccomp filter (debugging only)
  -h, --help             this text
  -V, --version          print the version
exit status: 0 stopped by SIGTERM/SIGINT (running VMs keep running), 1 failed, 2 usage`;

const OPTIONS = {
  socket: { type: 'string' },
  'allow-uid': { type: 'string', multiple: true },
  'cgroup-root': { type: 'string' },
  'cgroup-mount': { type: 'string' },
  'uid-base': { type: 'string' },
  'log-dir': { type: 'string' },
  'no-sandbox': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
} as const;

export class UsageError extends Error {}

export function launcherInfo(argv: string[]): string | null {
  try {
    const { values } = parseArgs({ args: argv, strict: true, allowPositionals: false, options: OPTIONS });
    return values.help ? `${USAGE}\n` : values.version ? versionLine('virtgate-launcher') : null;
  } catch {
    return null;
  }
}

function uint(text: string, what: string, max = 0xffffffff): number {
  if (!/^[0-9]{1,10}$/.test(text) || Number(text) > max) throw new UsageError(`${what}: not a valid number: ${text}`);
  return Number(text);
}

export function parseLauncherArgs(argv: string[]): LauncherOptions {
  const { values } = parseArgs({ args: argv, strict: true, allowPositionals: false, options: OPTIONS });
  if (!values.socket) throw new UsageError('--socket is required');
  const socket = path.resolve(values.socket);
  const cgroupRoot = values['cgroup-root'] ?? 'virtgate';
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/.test(cgroupRoot)) throw new UsageError(`--cgroup-root: not a plain directory name: ${cgroupRoot}`);
  const uidBase = values['uid-base'] !== undefined ? uint(values['uid-base'], '--uid-base') : 200000;
  // The range must stay clear of system and login users, and of the overflow id 65534.
  if (uidBase < 100000 || uidBase + 9999 > 0x7fffffff) throw new UsageError(`--uid-base: ${uidBase} must be in [100000, ${0x7fffffff - 9999}]`);
  return {
    socket,
    allowUids: values['allow-uid']?.map((u) => uint(u, '--allow-uid')) ?? [0],
    cgroupRoot,
    cgroupMount: path.resolve(values['cgroup-mount'] ?? '/sys/fs/cgroup'),
    uidBase,
    logDir: path.resolve(values['log-dir'] ?? path.join(path.dirname(socket), 'launcher-logs')),
    sandbox: !values['no-sandbox'],
  };
}
