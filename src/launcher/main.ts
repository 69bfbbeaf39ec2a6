// SPDX-License-Identifier: Apache-2.0
// virtgate-launcher process entry (loaded by bin/virtgate-launcher.js): the only virtgate process that may exec. Binds
// its socket, adopts the VMs it finds in its cgroup tree, drops to its few capabilities and its seccomp list, serves.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EXIT_CONFIG } from '../common/exit-codes';
import { applySandbox, describeSandbox } from '../sandbox';
import { closeFd, seqpacketConnect, seqpacketListen } from '../sandbox/fdpass';
import { SdNotifier } from '../sandbox/notify';
import { Cgroups } from './cgroups';
import { BWRAP, EMULATOR, SETPRIV } from './jail';
import { LauncherCore } from './launcher';
import { type LauncherOptions, USAGE, UsageError, launcherInfo, parseLauncherArgs } from './options';
import { LauncherServer } from './server';

const log = (line: string): void => {
  process.stderr.write(`virtgate-launcher: ${line}\n`);
};

// A stale socket file is replaced; a live launcher's is not (two launchers would fight over the same cgroups).
function removeStale(p: string): void {
  const st = fs.lstatSync(p, { throwIfNoEntry: false });
  if (!st) return;
  if (!st.isSocket()) throw new Error(`${p} exists and is not a socket; refusing to remove it`);
  let live = false;
  try {
    closeFd(seqpacketConnect(p));
    live = true;
  } catch {
    // ECONNREFUSED: nobody listens
  }
  if (live) throw new Error(`${p} is in use by a running launcher`);
  fs.unlinkSync(p);
}

function start(o: LauncherOptions): () => Promise<void> {
  if ((process.geteuid?.() ?? -1) !== 0) throw new Error('must run as root (it creates cgroups and starts QEMU under per-VM uids)');
  for (const p of [EMULATOR, BWRAP, SETPRIV]) {
    if (!fs.existsSync(p)) throw new Error(`${p} is missing (apt-get install qemu-system-x86 bubblewrap util-linux)`);
  }
  const sd = SdNotifier.fromEnv();
  fs.mkdirSync(path.dirname(o.socket), { recursive: true, mode: 0o755 });
  fs.mkdirSync(o.logDir, { recursive: true, mode: 0o700 });
  fs.chmodSync(o.logDir, 0o700);
  removeStale(o.socket);
  const listenFd = seqpacketListen(o.socket, 0o600);
  const cgroups = new Cgroups(o.cgroupRoot, o.cgroupMount);
  cgroups.prepare();
  const core = new LauncherCore({ cgroups, uidBase: o.uidBase, logDir: o.logDir, log });
  // Adoption is reading the tree: the VMs a previous launcher started are served like our own.
  const adopted = core.list();
  log(
    `cgroups ${cgroups.layout} under ${o.cgroupMount}/…/${o.cgroupRoot}; ${adopted.length} running VM(s) found${adopted.length ? `: ${adopted.map((v) => `${v.vm} pid ${v.pid}`).join(', ')}` : ''}`,
  );
  const server = new LauncherServer(listenFd, { core, allowUids: o.allowUids, log });
  if (o.sandbox) log(describeSandbox(applySandbox('launcher')));
  process.stdout.write(`virtgate-launcher: listening on ${o.socket}\n`);
  sd.notify('READY=1', `STATUS=serving ${o.socket}`);
  return async () => {
    sd.notify('STOPPING=1');
    await server.close();
    fs.rmSync(o.socket, { force: true });
  };
}

const info = launcherInfo(process.argv.slice(2));
if (info !== null) {
  process.stdout.write(info);
  process.exit(0);
}
let opts: LauncherOptions;
try {
  opts = parseLauncherArgs(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`virtgate-launcher: ${(e as Error).message}\n${USAGE}\n`);
  process.exit(e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') ? 2 : 1);
}
process.stdout.on('error', () => undefined);
process.stderr.on('error', () => undefined);
let stop: () => Promise<void>;
try {
  stop = start(opts);
} catch (e) {
  process.stderr.write(`virtgate-launcher: cannot start: ${(e as Error).message}\n`);
  process.exit((e as { code?: string }).code === 'EADDRINUSE' ? EXIT_CONFIG : 1);
}
let stopping = false;
const onSignal = (sig: string): void => {
  if (stopping) return;
  stopping = true;
  log(`${sig}: stopping (running VMs keep running)`);
  stop().then(
    () => process.exit(0),
    (e: Error) => {
      log(`stop failed: ${e.message}`);
      process.exit(1);
    },
  );
};
process.on('SIGTERM', () => onSignal('SIGTERM'));
process.on('SIGINT', () => onSignal('SIGINT'));
