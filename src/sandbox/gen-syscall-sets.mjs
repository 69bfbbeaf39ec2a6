#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// Regenerates src/sandbox/syscall-sets.ts from this machine's systemd (sandbox boundary data): `node src/sandbox/gen-syscall-sets.mjs [--stdout]`.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

// stderr is dropped: without /sys/kernel/tracing systemd-analyze only adds "couldn't retrieve kernel system call list".
const analyze = (...args) => execFileSync('systemd-analyze', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });

// `systemd-analyze syscall-filter` prints every group: "@name", a "# comment", then indented members (syscalls or @groups).
const groups = new Map();
let cur = null;
for (const line of analyze('syscall-filter', '--no-pager').split('\n')) {
  if (/^@[\w-]+$/.test(line)) groups.set((cur = line), []);
  else if (cur && /^\s+[@\w]/.test(line) && !line.trim().startsWith('#')) groups.get(cur).push(line.trim());
  else if (line.trim() === '') cur = null;
}
const expand = (g, seen = new Set()) => {
  if (!groups.has(g)) throw new Error(`unknown group ${g}`);
  const out = new Set();
  for (const m of groups.get(g)) {
    if (m.startsWith('@')) {
      if (!seen.has(m)) for (const s of expand(m, new Set([...seen, m]))) out.add(s);
    } else out.add(m);
  }
  return out;
};
const minus = (a, ...bs) => [...a].filter((s) => !bs.some((b) => b.has(s))).sort();

const service = expand('@system-service');
const front = minus(service, expand('@privileged'), expand('@resources'));
// The helper also forgoes the groups its unit removes (security-notes §3.3; most are outside @system-service already)
// and kernel keyrings and memory locking, which a Node process that only talks over one unix socket never uses.
const helperDeny = ['@privileged', '@resources', '@mount', '@module', '@raw-io', '@reboot', '@swap', '@debug', '@cpu-emulation', '@obsolete', '@clock', '@keyring', '@memlock'];
// Named syscalls the helper never makes: it spawns nothing (the front end's audit sink does run `logger`), and it has
// no business reading or comparing another process's memory.
const helperDenyNames = ['execve', 'execveat', 'fork', 'vfork', 'process_vm_readv', 'process_vm_writev', 'kcmp', 'userfaultfd'];
const helper = minus(service, ...helperDeny.map((g) => expand(g)), new Set(helperDenyNames));
// The launcher spawns: its filter is inherited by sh, bwrap, setpriv and every QEMU, so it allows what they need
// (namespaces, mounts, pivot_root, chroot, set*id, capset; QEMU's scheduling and memory-policy calls) and nothing that
// loads code into the kernel, reboots, swaps, touches raw I/O or the clock, or reads another process's memory.
const launcherAdd = ['@privileged', '@mount', '@resources'];
const launcherDeny = ['@module', '@raw-io', '@reboot', '@swap', '@debug', '@cpu-emulation', '@obsolete', '@clock', '@keyring', '@memlock'];
const launcherDenyNames = ['process_vm_readv', 'process_vm_writev', 'kcmp', 'userfaultfd', 'bpf', 'acct', 'quotactl', 'quotactl_fd', 'nfsservctl', 'open_by_handle_at', 'fanotify_init', 'fanotify_mark', 'vhangup', '_sysctl', 'setdomainname', 'sethostname'];
// seccomp(2) is in no group but @known: QEMU calls it to probe for, then install, its own -sandbox filter.
const launcherAddNames = ['seccomp'];
const launcherAll = new Set([...service, ...launcherAdd.flatMap((g) => [...expand(g)]), ...launcherAddNames]);
const launcher = minus(launcherAll, ...launcherDeny.map((g) => expand(g)), new Set(launcherDenyNames));
const version = analyze('--version').split('\n')[0];

const list = (name, why, xs) => `// ${why} (${xs.length} names)\nexport const ${name}: readonly string[] = [\n${xs.map((s) => `  '${s}',`).join('\n')}\n];\n`;
const out = `// SPDX-License-Identifier: Apache-2.0
// Syscall allowlists as data, expanded from systemd's groups (sandbox boundary).
// Do not edit; regenerate with \`node src/sandbox/gen-syscall-sets.mjs\` (source: ${version}).

${list('SYSTEM_SERVICE', "systemd's @system-service", [...service].sort())}
${list('FRONT_SYSCALLS', 'front end: @system-service minus @privileged @resources', front)}
${list('HELPER_SYSCALLS', `helper: @system-service minus ${helperDeny.join(' ')} ${helperDenyNames.join(' ')}`, helper)}
${list('LAUNCHER_SYSCALLS', `launcher (inherited by the jail and QEMU): @system-service ${launcherAdd.join(' ')} ${launcherAddNames.join(' ')} minus ${launcherDeny.join(' ')} ${launcherDenyNames.join(' ')}`, launcher)}`;
// --stdout: print instead of writing (the freshness test compares the two).
if (process.argv.includes('--stdout')) {
  process.stdout.write(out);
  process.exit(0);
}
const dest = path.join(path.dirname(fileURLToPath(import.meta.url)), 'syscall-sets.ts');
writeFileSync(dest, out);
process.stdout.write(`${dest}: @system-service ${service.size}, front ${front.length}, helper ${helper.length}, launcher ${launcher.length}\n`);
