// SPDX-License-Identifier: Apache-2.0
// virtgate-helper's command line and start-up: options, driver, socket (root side); main.ts is the process entry.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { HelperJournal, JOURNAL_KEEP_FILES, JOURNAL_MAX_BYTES } from '../audit/journal';
import { versionLine } from '../common/version';
import { applySandbox, describeSandbox } from '../sandbox';
import { SdNotifier } from '../sandbox/notify';
import type { Driver } from './drivers/driver';
import { TestDriver } from './drivers/test-driver';
import { EMULATOR } from './drivers/qemu/config';
import { openQemuDriver } from './drivers/qemu/wiring';
import { IpcServer } from './ipc-server';
import { FdChannelServer } from './fd-channel';
import { seqpacketListen } from '../sandbox/fdpass';

// The descriptor channel's socket, beside the IPC socket (consoles and displays go to the front end through it).
export const fdChannelPath = (socket: string): string => `${socket}.fds`;

export interface HelperOptions {
  socket: string;
  stateDir: string;
  runtimeDir: string;
  allowUids: number[];
  socketMode: number;
  socketGroup: number | null;
  driver: 'test' | 'qemu';
  launcherSocket?: string; // qemu: the launcher's socket (required with --driver qemu)
  poolRoot?: string; // qemu: tenants' pools live below POOL_ROOT/<tenant>/ (default STATE-DIR/pools)
  adminPoolRoots?: string[]; // qemu: host admins' pools live below these (default STATE-DIR/images)
  cgroupRoot?: string; // qemu: the launcher's --cgroup-root (CPU time is read from the VMs' cgroups); default virtgate
  sandbox: boolean; // seccomp allowlist (kill on anything else) once set-up is done; --no-sandbox for debugging
  journal: string; // the helper's own journal of executed writes (audit cross-check); default STATE/helper-journal.log
  journalMaxBytes: number; // rotate the journal past this size (0: never)
  journalKeepFiles?: number; // rotated journal files kept, older ones pruned (recorded first); 0: all. Default JOURNAL_KEEP_FILES
}

export const USAGE = `usage: virtgate-helper --socket PATH --state-dir DIR [OPTIONS]
  --socket PATH             the unix socket the front end connects to (required)
  --state-dir DIR           persistent domain state (required)
  --runtime-dir DIR         running-domain state (default STATE-DIR/../run/helper)
  --allow-uid N             a uid the helper serves; repeat for several (default: the helper's own uid)
  --socket-mode OCTAL       permission bits of the socket (default 0600)
  --socket-group GID        group owner of the socket (with --socket-mode 0660: the front end's group)
  --driver test|qemu        the hypervisor driver (default test; qemu needs ${EMULATOR} and a launcher)
  --launcher-socket PATH    qemu: the virtgate-launcher socket (required with --driver qemu)
  --pool-root DIR           qemu: tenants' storage pools live below DIR/<tenant>/ (default STATE-DIR/pools)
  --admin-pool-root DIR     qemu: a root host admins' pools may live below; repeat for several (default STATE-DIR/images)
  --cgroup-root NAME        qemu: the launcher's cgroup root, where VM CPU time is read (default virtgate)
  --journal FILE            journal of executed writes, for the audit cross-check (default STATE-DIR/helper-journal.log)
  --journal-max-bytes N     rotate the journal past N bytes, at least 4096 (0: never)
  --journal-keep-files N    rotated journal files kept; older ones are pruned, on record (0: all; default ${JOURNAL_KEEP_FILES})
  --no-sandbox              do not apply the seccomp allowlist (debugging only)
  -h, --help                this text
  -V, --version             print the version
exit status: 0 stopped by SIGTERM/SIGINT, 1 failed, 2 usage`;

const OPTIONS = {
  socket: { type: 'string' },
  'state-dir': { type: 'string' },
  'runtime-dir': { type: 'string' },
  'allow-uid': { type: 'string', multiple: true },
  'socket-mode': { type: 'string' },
  'socket-group': { type: 'string' },
  driver: { type: 'string' },
  'launcher-socket': { type: 'string' },
  'cgroup-root': { type: 'string' },
  'pool-root': { type: 'string' },
  'admin-pool-root': { type: 'string', multiple: true },
  journal: { type: 'string' },
  'journal-max-bytes': { type: 'string' },
  'journal-keep-files': { type: 'string' },
  'no-sandbox': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
} as const;

// --help or --version: the text to print before exiting 0, instead of starting; null otherwise (parseHelperArgs then
// reports any bad option).
export function helperInfo(argv: string[]): string | null {
  try {
    const { values } = parseArgs({ args: argv, strict: true, allowPositionals: false, options: OPTIONS });
    return values.help ? `${USAGE}\n` : values.version ? versionLine('virtgate-helper') : null;
  } catch {
    return null;
  }
}

export class UsageError extends Error {}

function uint(text: string, what: string, radix = 10): number {
  const re = radix === 8 ? /^0?[0-7]{1,4}$/ : /^[0-9]{1,10}$/;
  const v = parseInt(text, radix);
  if (!re.test(text) || v > 0xffffffff) throw new UsageError(`${what}: not a valid number: ${text}`);
  return v;
}

export function parseHelperArgs(argv: string[]): HelperOptions {
  const { values } = parseArgs({ args: argv, strict: true, allowPositionals: false, options: OPTIONS });
  if (!values.socket) throw new UsageError('--socket is required');
  if (!values['state-dir']) throw new UsageError('--state-dir is required');
  const driver = values.driver ?? 'test';
  if (driver !== 'test' && driver !== 'qemu') throw new UsageError(`--driver: unsupported driver '${driver}' (available: test, qemu)`);
  if (driver === 'qemu' && !values['launcher-socket']) throw new UsageError('--driver qemu needs --launcher-socket PATH (the virtgate-launcher socket)');
  if (driver !== 'qemu' && (values['launcher-socket'] || values['cgroup-root'] || values['pool-root'] || values['admin-pool-root']))
    throw new UsageError('--launcher-socket, --cgroup-root and the pool roots go with --driver qemu');
  const cgroupRoot = values['cgroup-root'] ?? 'virtgate';
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(cgroupRoot) || cgroupRoot.startsWith('.'))
    throw new UsageError(`--cgroup-root: not a plain directory name: ${cgroupRoot}`);
  const stateDir = path.resolve(values['state-dir']);
  const journalMaxBytes = values['journal-max-bytes'] !== undefined ? uint(values['journal-max-bytes'], '--journal-max-bytes') : JOURNAL_MAX_BYTES;
  if (journalMaxBytes !== 0 && journalMaxBytes < 4096) throw new UsageError(`--journal-max-bytes: ${journalMaxBytes} is below 4096 (0: never rotate)`);
  const socketMode = values['socket-mode'] !== undefined ? uint(values['socket-mode'], '--socket-mode', 8) : 0o600;
  if (socketMode > 0o777) throw new UsageError(`--socket-mode: ${values['socket-mode']} is not a permission mode`);
  return {
    socket: path.resolve(values.socket),
    stateDir,
    runtimeDir: path.resolve(values['runtime-dir'] ?? path.join(stateDir, '..', 'run', 'helper')),
    allowUids: values['allow-uid']?.map((u) => uint(u, '--allow-uid')) ?? [process.getuid?.() ?? 0],
    socketMode,
    socketGroup: values['socket-group'] !== undefined ? uint(values['socket-group'], '--socket-group') : null,
    driver,
    ...(driver === 'qemu'
      ? {
          launcherSocket: path.resolve(values['launcher-socket']!),
          cgroupRoot,
          poolRoot: path.resolve(values['pool-root'] ?? path.join(stateDir, 'pools')),
          adminPoolRoots: (values['admin-pool-root'] ?? [path.join(stateDir, 'images')]).map((r) => path.resolve(r)),
        }
      : {}),
    sandbox: !values['no-sandbox'],
    journal: path.resolve(values.journal ?? path.join(stateDir, 'helper-journal.log')),
    journalMaxBytes,
    journalKeepFiles: values['journal-keep-files'] !== undefined ? uint(values['journal-keep-files'], '--journal-keep-files') : JOURNAL_KEEP_FILES,
  };
}

async function openDriver(o: HelperOptions, journal: HelperJournal): Promise<Driver> {
  if (o.driver === 'test') return new TestDriver({ stateDir: o.stateDir, runtimeDir: o.runtimeDir });
  // Refused clearly where QEMU is not installed (npm start -- --driver qemu on a machine without it).
  if (!fs.existsSync(EMULATOR)) throw new Error(`--driver qemu: ${EMULATOR} is not installed (Debian: apt-get install qemu-system-x86)`);
  return openQemuDriver({
    stateDir: o.stateDir,
    runtimeDir: o.runtimeDir,
    launcherSocket: o.launcherSocket!,
    cgroupRoot: o.cgroupRoot ?? 'virtgate',
    pools: {
      tenantRoot: o.poolRoot ?? path.join(o.stateDir, 'pools'),
      adminRoots: o.adminPoolRoots ?? [path.join(o.stateDir, 'images')],
      // A `default` pool the helper made on its own: a result line (no begin: no front-end request asked for it).
      journal: (r) => journal.end(-1, 'POOL_PROVISION', undefined, { result: `ok tenant '${r.tenant}' path ${r.path}`, uuid: r.uuid, name: r.name }),
    },
    // Every spawn in the helper's own journal, in its hash chain: what exactly ran (the argv's sha256), for which VM.
    // A result line of its own (no begin): a spawn is part of a write already journaled (start, create) or of the
    // helper's own autostart, and `audit verify --cross-check` reads only begin lines as writes needing an intent.
    journalSpawn: (r) => (result) =>
      journal.end(-1, 'QEMU_SPAWN', undefined, { result: `${result} slot ${r.slot} tenant '${r.tenant}' argv-sha256 ${r.digest}`, uuid: r.uuid, name: r.name }),
  });
}

// Only a stale socket may be removed: never a regular file someone pointed --socket at, nor a live helper's socket.
async function removeStaleSocket(p: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!st.isSocket()) throw new Error(`${p} exists and is not a socket; refusing to remove it`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.connect(p, () => (probe.destroy(), resolve(true)));
    probe.on('error', () => resolve(false));
  });
  if (live) throw new Error(`${p} is in use by a running process`);
  fs.unlinkSync(p);
}

// A second helper pointed at a live helper's socket refuses before it opens (replays, checkpoints) that helper's state.
async function refuseIfLive(socket: string): Promise<void> {
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.connect(socket, () => (probe.destroy(), resolve(true)));
    probe.on('error', () => resolve(false));
  });
  if (live) throw new Error(`${socket} is in use by a running process (another helper?); refusing to start (its state was not opened)`);
}

export async function runHelper(o: HelperOptions): Promise<() => Promise<void>> {
  await refuseIfLive(o.socket);
  const sd = SdNotifier.fromEnv();
  // Opened (and its torn tail repaired) before the sandbox: appends then need only write and fdatasync.
  fs.mkdirSync(path.dirname(o.journal), { recursive: true, mode: 0o700 });
  const journal = new HelperJournal(o.journal, { maxBytes: o.journalMaxBytes, keepFiles: o.journalKeepFiles });
  let driver: Driver;
  try {
    driver = await openDriver(o, journal);
  } catch (e) {
    journal.close();
    throw e;
  }
  fs.mkdirSync(path.dirname(o.socket), { recursive: true, mode: 0o755 });
  await removeStaleSocket(o.socket);
  // The IPC socket is not live (checked above), so a .fds socket left beside it is a dead helper's.
  const fdsPath = fdChannelPath(o.socket);
  if (fs.lstatSync(fdsPath, { throwIfNoEntry: false })?.isSocket()) fs.unlinkSync(fdsPath);
  const fdChannel = new FdChannelServer(seqpacketListen(fdsPath, o.socketMode), {
    allowUids: o.allowUids,
    log: (line) => process.stderr.write(`virtgate-helper: ${line}\n`),
  });
  if (o.socketGroup !== null) fs.chownSync(fdsPath, process.getuid?.() ?? 0, o.socketGroup);
  const server = new IpcServer({ driver, allowUids: o.allowUids, journal, fdChannel });
  // Narrow umask while binding so the socket is never briefly wider than --socket-mode.
  const oldMask = process.umask(0o177);
  try {
    await server.listen(o.socket);
  } finally {
    process.umask(oldMask);
  }
  fs.chmodSync(o.socket, o.socketMode);
  if (o.socketGroup !== null) fs.chownSync(o.socket, process.getuid?.() ?? 0, o.socketGroup);
  // Confine before the first request is read: everything privileged (bind, chmod, chown, state load) is done.
  if (o.sandbox) process.stderr.write(`virtgate-helper: ${describeSandbox(applySandbox('helper'))}\n`);
  process.stdout.write(`virtgate-helper: listening on ${o.socket} (driver ${driver.name})\n`);
  // Type=notify (systemd): the front end's unit starts only once this socket accepts; the notifier was bound pre-sandbox.
  sd.notify('READY=1', `STATUS=serving ${o.socket} (driver ${driver.name})`);
  return async () => {
    sd.notify('STOPPING=1', 'STATUS=stopping');
    await server.close();
    fdChannel.close();
    driver.close();
    journal.close();
    fs.rmSync(o.socket, { force: true });
    fs.rmSync(fdsPath, { force: true });
  };
}
