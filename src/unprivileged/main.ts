// SPDX-License-Identifier: Apache-2.0
// virtgated entry point: parse flags, resolve config, start the daemon, stop cleanly on SIGINT/SIGTERM.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfigText } from '../common/config';
import { EXIT_CONFIG } from '../common/exit-codes';
import { LISTEN_ENV, parseListenFds } from '../common/systemd';
import { versionLine } from '../common/version';
import { applySandbox, describeSandbox } from '../sandbox';
import { SdNotifier } from '../sandbox/notify';
import { Daemon } from './daemon';
import { Level } from '../common/log';

export { EXIT_CONFIG };

export const USAGE = `usage: virtgated [OPTIONS]
  --config FILE             configuration file (default HOME/etc/virtgate.conf, skipped when absent); flags win over it
  --home DIR                state root: sockets, policy, audit log, PKI (default ./.virtgate)
  --socket PATH             read-write unix socket (default HOME/run/virtgate-sock)
  --socket-ro PATH          read-only unix socket (default HOME/run/virtgate-sock-ro)
  --helper-socket PATH      the root helper's socket (default HOME/run/helper-sock)
  --tcp HOST:PORT           also listen on plain TCP (loopback only unless tcpAllowNonLoopback; development)
  --tls HOST:PORT           listen for mutual-TLS clients (libvirt's port is 16514)
  --tls-port-fallback       if the --tls port is taken, listen on a free port instead of failing (development)
  --host-admin SOURCE:NAME  one more host admin beside the built-in ones (npm start passes the user who ran it)
  --max-client-requests N   calls in flight per connection
  --keepalive-interval S    seconds of client silence before a keepalive ping (0: never)
  --keepalive-count N       unanswered pings before the connection is closed
  --no-sandbox              do not apply the seccomp allowlist (debugging only)
  -h, --help                this text
  -V, --version             print the version
exit status: 0 stopped by SIGINT/SIGTERM, 1 failed, 2 usage, ${EXIT_CONFIG} configuration problem or a listener's address
  taken (a restart cannot fix either: a supervisor should not retry)`;

// A start-up failure that restarting will not fix; main() reports it and exits EXIT_CONFIG.
function isConfigFailure(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  return code === 'VG_ERR_CONFIG_INVALID' || code === 'VG_ERR_LISTEN';
}

// A SIGHUP (reload) before the policy and TLS reloaders have installed their handlers must not terminate the front end,
// Node's default for an unhandled SIGHUP. Installed before anything else runs (bin/virtgated.js does the same even
// earlier) and kept: with it, a SIGHUP is at worst ignored, never fatal.
export function ignoreEarlyHup(): void {
  if (!process.listeners('SIGHUP').length) process.on('SIGHUP', () => undefined);
}

export async function main(argv = process.argv.slice(2)): Promise<void> {
  ignoreEarlyHup();
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string' },
        home: { type: 'string' },
        socket: { type: 'string' },
        'socket-ro': { type: 'string' },
        'helper-socket': { type: 'string' },
        tcp: { type: 'string' },
        tls: { type: 'string' },
        'tls-port-fallback': { type: 'boolean' },
        'host-admin': { type: 'string' },
        'max-client-requests': { type: 'string' },
        'keepalive-interval': { type: 'string' },
        'keepalive-count': { type: 'string' },
        'no-sandbox': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'V' },
      },
    }));
  } catch (e) {
    process.stderr.write(`virtgated: ${(e as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (values.version) {
    process.stdout.write(versionLine('virtgated'));
    return;
  }
  const num = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));
  // Flags override the file; the file is HOME/etc/virtgate.conf unless --config names another.
  const home = values.home ?? '.virtgate';
  const file = values.config ?? path.join(home, 'etc', 'virtgate.conf');
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // The default file is optional; a file the user named must exist.
    if (code !== 'ENOENT' || values.config !== undefined) configFailure(code === 'ENOENT' ? [`no such file: ${file}`] : [`cannot read ${file}: ${code}`]);
  }
  const flags: Record<string, unknown> = {
    home: values.home,
    unixSocket: values.socket,
    unixSocketRo: values['socket-ro'],
    helperSocket: values['helper-socket'],
    tcp: values.tcp,
    tls: values.tls,
    tlsPortFallback: values['tls-port-fallback'],
    hostAdmin: values['host-admin'],
    maxClientRequests: num(values['max-client-requests']),
    keepaliveInterval: num(values['keepalive-interval']),
    keepaliveCount: num(values['keepalive-count']),
  };
  // A flag that was not given must not hide the file's value.
  let config;
  try {
    config = loadConfigText(text, file, Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)));
  } catch (e) {
    const problems = (e as { problems?: string[] }).problems ?? [];
    configFailure(problems.length > 1 ? problems : [(e as Error).message]);
  }
  // Socket activation and readiness (systemd): read once, then out of the environment so no child inherits them.
  let inherited;
  try {
    inherited = parseListenFds(process.env, process.pid);
  } catch (e) {
    configFailure([(e as Error).message]);
  }
  for (const k of LISTEN_ENV) delete process.env[k];
  const sd = SdNotifier.fromEnv();
  const daemon = new Daemon(config, { inherited });
  const stop = (signal: NodeJS.Signals): void => {
    sd.notify('STOPPING=1', 'STATUS=stopping');
    daemon.stop().then(() => {
      daemon.logger.log('daemon', Level.INFO, `${signal}: stopped`);
      process.exit(0);
    });
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // The front end holds no privilege to drop (systemd's User= or the supervisor's uid does that); the syscall
  // allowlist goes on before the first listener exists, so no network byte is ever read unconfined.
  if (!values['no-sandbox']) daemon.logger.log('sandbox', Level.INFO, describeSandbox(applySandbox('front')));
  try {
    await daemon.start();
  } catch (e) {
    if (!isConfigFailure(e)) throw e;
    process.stderr.write(`virtgated: ${(e as Error).message}\n`); // first: what follows is only the shutdown's log
    await daemon.stop().catch(() => undefined); // the listeners already open, the helper connection, the audit trail
    process.exit(EXIT_CONFIG);
  }
  daemon.logger.log('daemon', Level.INFO, `effective config ${JSON.stringify(config)}`);
  for (const a of daemon.addresses) process.stdout.write(`virtgated: listening on ${a.kind} ${a.address}${a.readOnly ? ' (read-only)' : ''}\n`);
  // Only now, with every listener up: `systemctl start` returns and dependants start.
  sd.notify('READY=1', `STATUS=serving on ${daemon.addresses.map((a) => `${a.kind}${a.readOnly ? '-ro' : ''}`).join(', ')}`);
}

// Each problem on its own line, then exit EXIT_CONFIG.
function configFailure(problems: string[]): never {
  if (problems.length > 1) process.stderr.write(`virtgated: invalid configuration, ${problems.length} problems:\n`);
  for (const p of problems) process.stderr.write(problems.length > 1 ? `  ${p}\n` : `virtgated: ${p}\n`);
  process.exit(EXIT_CONFIG);
}

if (require.main === module) {
  ignoreEarlyHup();
  main().catch((e: Error & { code?: string }) => {
    process.stderr.write(`virtgated: ${e.code ? `${e.code}: ` : ''}${e.message}\n`);
    process.exit(1);
  });
}
