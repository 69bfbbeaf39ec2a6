// SPDX-License-Identifier: Apache-2.0
// Argument parsing shared by the administration commands: strict options, usage on error (exit 2), --help (exit 0).
import { type ParseArgsConfig, parseArgs } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;
type Io = { stdout(s: string): void; stderr(s: string): void };

// Returns the parsed arguments, or the exit status when there is nothing more to do.
export function parseAdminArgs<O extends Options>(
  argv: string[],
  options: O,
  usage: string,
  io: Io,
): ReturnType<typeof parseArgs<{ args: string[]; options: O & { help: { type: 'boolean'; short: 'h' } }; allowPositionals: true }>> | number {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { ...options, help: { type: 'boolean', short: 'h' } } as O & { help: { type: 'boolean'; short: 'h' } },
    });
  } catch (e) {
    io.stderr(`error: ${(e as Error).message}\n${usage}\n`);
    return 2;
  }
  if ((parsed.values as { help?: boolean }).help) {
    io.stdout(`${usage}\n`);
    return 0;
  }
  return parsed;
}
