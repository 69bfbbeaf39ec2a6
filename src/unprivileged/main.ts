// SPDX-License-Identifier: Apache-2.0
// virtgated entry point: parse flags, resolve config, start the daemon, stop cleanly on SIGINT/SIGTERM.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseConfigText, resolveConfig } from '../common/config';
import { applySandbox, describeSandbox } from '../sandbox';
import { Daemon } from './daemon';

const USAGE = `usage: virtgated [--config FILE] [--home DIR] [--socket PATH] [--socket-ro PATH] [--helper-socket PATH] [--tcp HOST:PORT]
                 [--tls HOST:PORT] [--tls-port-fallback] [--host-admin SOURCE:NAME]
                 [--max-client-requests N] [--keepalive-interval S] [--keepalive-count N] [--no-sandbox]`;

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
  const num = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));
  // Flags override the file; the file is HOME/etc/virtgate.conf unless --config names another.
  const home = values.home ?? '.virtgate';
  const file = values.config ?? path.join(home, 'etc', 'virtgate.conf');
  const fromFile = fs.existsSync(file) || values.config ? parseConfigText(fs.readFileSync(file, 'utf8'), file) : {};
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
  const config = resolveConfig({ ...fromFile, ...Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)) });
  const daemon = new Daemon(config);
  const stop = (): void => {
    daemon.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // The front end holds no privilege to drop (systemd's User= or the supervisor's uid does that); the syscall
  // allowlist goes on before the first listener exists, so no network byte is ever read unconfined.
  if (!values['no-sandbox']) process.stderr.write(`virtgated: ${describeSandbox(applySandbox('front'))}\n`);
  await daemon.start();
  process.stderr.write(`virtgated: effective config ${JSON.stringify(config)}\n`);
  for (const a of daemon.addresses) process.stdout.write(`virtgated: listening on ${a.kind} ${a.address}${a.readOnly ? ' (read-only)' : ''}\n`);
}

if (require.main === module) {
  ignoreEarlyHup();
  main().catch((e: Error & { code?: string }) => {
    process.stderr.write(`virtgated: ${e.code ? `${e.code}: ` : ''}${e.message}\n`);
    process.exit(1);
  });
}
