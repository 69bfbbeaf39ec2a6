// SPDX-License-Identifier: Apache-2.0
// `virtgate` entry point: global options, command dispatch and exit codes; talks to the daemon only through client/.
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { DEFAULT_URI, type ConnectOptions, VG_ERR_USAGE, VirtgateClient } from '../client';
import { COMMANDS, CommandError, type CommandContext, type CommandSpec, type Parsed, findCommand, readFileUtf8 } from './commands';
import { isAdminCommand, runAdmin } from './admin';
import { versionLine } from '../common/version';
import { main as daemonMain } from './start';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
// The reader of stdout went away (`virtgate ... | head`): ended quietly with coreutils' status for it, 128 + SIGPIPE, so
// that `set -o pipefail` scripts still see the output was cut short.
export const EXIT_PIPE = 141;

// Subcommands owned by other modules; `start` is shared with the domain command (see parseCommandLine).
// `virtgate serve` runs the daemon; `virtgate start` without a single domain argument is the same, for npm users.
const DAEMON_COMMANDS = new Set(['serve', 'start']);

export type Invocation =
  | { kind: 'help'; command?: string }
  | { kind: 'version' }
  | { kind: 'daemon'; args: string[] }
  | { kind: 'admin'; name: string; args: string[] }
  | { kind: 'run'; uri: string; readonly: boolean; spec: CommandSpec; parsed: Parsed };

const GLOBAL_OPTIONS = {
  connect: { type: 'string', short: 'c' },
  readonly: { type: 'boolean', short: 'r' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
} as const;

// A usage error that names the command, so only that command's usage is printed.
function usageError(message: string, command?: string): Error {
  return Object.assign(VG_ERR_USAGE(message), { command });
}

type Options = NonNullable<ParseArgsConfig['options']>;

function parseStrict(args: string[], options: Options, where: string): Parsed {
  try {
    // Only what parseArgs knows: a command's options also carry their help text.
    const config = Object.fromEntries(
      Object.entries(options).map(([k, o]) => [k, o.short === undefined ? { type: o.type } : { type: o.type, short: o.short }]),
    );
    const { values, positionals } = parseArgs({ args, options: config as Options, allowPositionals: true, strict: true });
    return { values: values as Parsed['values'], positionals };
  } catch (err) {
    throw usageError(`${where}: ${(err as Error).message}`, findCommand(where)?.name);
  }
}

// Pure: argv (without node and script) -> what to do. Throws VG_ERR_USAGE.
export function parseCommandLine(argv: string[], env: NodeJS.ProcessEnv = {}): Invocation {
  // Global options end at the first positional: that is the command, the rest are its arguments.
  const { tokens } = parseArgs({ args: argv, options: GLOBAL_OPTIONS, allowPositionals: true, strict: false, tokens: true });
  const first = tokens.find((t) => t.kind === 'positional');
  const cmdAt = first ? first.index : argv.length;
  const { values } = parseStrict(argv.slice(0, cmdAt), GLOBAL_OPTIONS, 'virtgate');
  const name = argv[cmdAt];
  const rest = argv.slice(cmdAt + 1);
  if (values.help || (name === undefined && !values.version)) return { kind: 'help' };
  if (values.version) return { kind: 'version' };
  if (name === 'help') {
    if (rest.length > 1) throw VG_ERR_USAGE('help takes at most one command name');
    return { kind: 'help', command: rest[0] };
  }
  if (isAdminCommand(name)) return { kind: 'admin', name, args: rest };
  // `start DOM` (one word, as in virsh) starts a domain; any other `start ...` starts the daemon.
  if (name === 'serve' || (DAEMON_COMMANDS.has(name) && !(rest.length === 1 && !rest[0].startsWith('-')))) return { kind: 'daemon', args: rest };
  const spec = findCommand(name);
  if (!spec) throw VG_ERR_USAGE(`unknown command: '${name}'`);
  if (rest.includes('--help') || rest.includes('-h')) return { kind: 'help', command: name }; // `virtgate list --help`
  const { values: opts, positionals } = parseStrict(rest, spec.options, name);
  if (positionals.length !== spec.args.length) {
    throw usageError(`${name}: expected ${spec.args.length ? spec.args.join(' ') : 'no arguments'}, got ${positionals.length} argument(s)`, name);
  }
  if (opts.all && opts.inactive) throw usageError(`${name}: --all and --inactive are mutually exclusive`, name);
  if (opts.current && (opts.live || opts.config)) throw usageError(`${name}: --current excludes --live and --config`, name);
  return {
    kind: 'run',
    uri: typeof values.connect === 'string' ? values.connect : env.VIRTGATE_URI || DEFAULT_URI,
    readonly: values.readonly === true,
    spec,
    parsed: { positionals, values: opts },
  };
}

const flag = (k: string, o: CommandSpec['options'][string]): string => (o.type === 'string' ? `--${k} ${o.arg ?? k.toUpperCase()}` : `--${k}`);

function synopsis(spec: CommandSpec): string {
  return [spec.name, ...spec.args, ...Object.entries(spec.options).map(([k, o]) => `[${flag(k, o)}]`)].join(' ');
}

const GLOBAL_HELP = [
  '  -c, --connect URI   libvirt URI (default: $VIRTGATE_URI, else ' + DEFAULT_URI + ')',
  '  -r, --readonly      open a read-only connection',
  '  -h, --help          this text',
  '  -V, --version       print the version',
];

export function usage(command?: string): string {
  const spec = command ? findCommand(command) : undefined;
  if (spec) {
    const opts = Object.entries(spec.options).map(([k, o]) => [flag(k, o), o.help]);
    const width = Math.max(0, ...opts.map(([f]) => f.length));
    return [
      `usage: virtgate [-c URI] [-r] ${synopsis(spec)}`,
      `  ${spec.summary}`,
      ...(opts.length ? ['', ...opts.map(([f, h]) => `  ${f.padEnd(width)}  ${h}`)] : []),
      '',
      ...GLOBAL_HELP.slice(0, 2),
      '',
    ].join('\n');
  }
  const width = Math.max(...COMMANDS.map((c) => synopsis(c).length));
  return [
    'usage: virtgate [-c URI] [-r] COMMAND [ARGS]',
    '',
    ...GLOBAL_HELP,
    '',
    'Commands (DOM is a name, an id or a UUID; virtgate help COMMAND explains its options):',
    ...COMMANDS.map((c) => `  ${synopsis(c).padEnd(width)}  ${c.summary}`),
    `  ${'help [COMMAND]'.padEnd(width)}  Show help`,
    '',
    'Administration: virtgate start [OPTIONS] runs the daemon; virtgate pki|user|policy|audit|vm|install --help for the rest.',
    `exit status: ${EXIT_OK} ok, ${EXIT_FAILED} failed, ${EXIT_USAGE} usage, ${EXIT_PIPE} the reader of the output went away (| head)`,
    '',
  ].join('\n');
}

export interface CliIo {
  stdout(s: string): void;
  stderr(s: string): void;
  env: NodeJS.ProcessEnv;
  connect(uri: string, opts: ConnectOptions): Promise<VirtgateClient>;
  readFile(p: string): string;
  interrupted(): Promise<void>;
}

function errorLines(err: unknown): string[] {
  if (err instanceof CommandError) return err.lines;
  return [err instanceof Error ? err.message : String(err)];
}

// Returns the exit status; never throws.
export async function main(argv: string[], io: CliIo): Promise<number> {
  let inv: Invocation;
  try {
    inv = parseCommandLine(argv, io.env);
  } catch (err) {
    io.stderr(`error: ${(err as Error).message}\n${usage((err as { command?: string }).command)}`);
    return EXIT_USAGE;
  }
  if (inv.kind === 'help') {
    if (inv.command && !findCommand(inv.command)) {
      io.stderr(`error: unknown command: '${inv.command}'\n`);
      return EXIT_USAGE;
    }
    io.stdout(usage(inv.command));
    return EXIT_OK;
  }
  if (inv.kind === 'version') {
    io.stdout(versionLine('virtgate'));
    return EXIT_OK;
  }
  if (inv.kind === 'admin') return runAdmin(inv.name, inv.args, io);
  if (inv.kind === 'daemon') return daemonMain(inv.args);

  let client: VirtgateClient;
  try {
    client = await io.connect(inv.uri, { readonly: inv.readonly });
  } catch (err) {
    io.stderr(['failed to connect to the hypervisor', ...errorLines(err)].map((l) => `error: ${l}\n`).join(''));
    return EXIT_FAILED;
  }
  const ctx: CommandContext = { client, out: io.stdout, readFile: io.readFile, interrupted: io.interrupted };
  try {
    await inv.spec.run(ctx, inv.parsed);
    return EXIT_OK;
  } catch (err) {
    if ((err as { code?: string }).code === 'VG_ERR_USAGE') {
      io.stderr(`error: ${(err as Error).message}\n${usage(inv.spec.name)}`);
      return EXIT_USAGE;
    }
    io.stderr(
      errorLines(err)
        .map((l) => `error: ${l}\n`)
        .join(''),
    );
    return EXIT_FAILED;
  } finally {
    await client.close().catch(() => undefined);
  }
}

export function processIo(): CliIo {
  return {
    stdout: (s) => void process.stdout.write(s),
    stderr: (s) => void process.stderr.write(s),
    env: process.env,
    connect: (uri, opts) => VirtgateClient.connect(uri, opts),
    readFile: readFileUtf8,
    // Installed only by commands that wait (event), so Ctrl-C keeps its default meaning elsewhere.
    interrupted: () => new Promise<void>((resolve) => process.once('SIGINT', () => resolve())),
  };
}

// `virtgate ... | head`: the reader closing the pipe ends the command quietly (EXIT_PIPE), not with a stack trace. A lost
// stderr cannot be reported anywhere. The daemon (`virtgate start`) keeps its own handling: its supervisor must not
// exit because a terminal went away.
export function quietOnClosedPipe(): void {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(EXIT_PIPE);
    process.stderr.write(`virtgate: cannot write output: ${e.message}\n`);
    process.exit(EXIT_FAILED);
  });
  process.stderr.on('error', () => undefined);
}

// Called by bin/virtgate.js.
export function run(argv: string[] = process.argv.slice(2)): void {
  let daemon = false;
  try {
    daemon = parseCommandLine(argv, process.env).kind === 'daemon';
  } catch {
    // main() reports it
  }
  if (!daemon) quietOnClosedPipe();
  main(argv, processIo()).then((rc) => {
    process.exitCode = rc;
  });
}
