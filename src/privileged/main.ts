// SPDX-License-Identifier: Apache-2.0
// virtgate-helper process entry (loaded by bin/virtgate-helper.js): start, then stop cleanly on SIGTERM/SIGINT (root side).
import { type HelperOptions, USAGE, helperInfo, parseHelperArgs, runHelper } from './helper';

const info = helperInfo(process.argv.slice(2));
if (info !== null) {
  process.stdout.write(info);
  process.exit(0);
}
let opts: HelperOptions;
try {
  opts = parseHelperArgs(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`virtgate-helper: ${(e as Error).message}\n${USAGE}\n`);
  process.exit(2);
}
// A closed stdout/stderr (the supervisor died) must not turn every log line into another uncaught error: that loop
// spun at 100% CPU. Lost log lines are the lesser harm; the helper keeps serving its socket.
process.stdout.on('error', () => undefined);
process.stderr.on('error', () => undefined);
process.on('uncaughtException', (e) => {
  if ((e as NodeJS.ErrnoException).code === 'EPIPE') return;
  process.stderr.write(`virtgate-helper: uncaught: ${e.stack ?? String(e)}\n`);
});

// Handlers go in before start-up so a signal racing the ready line still gets a clean stop.
const started = runHelper(opts);
let stopping = false;
const onSignal = (sig: string): void => {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`virtgate-helper: ${sig}: shutting down\n`);
  started
    .then((stop) => stop())
    .then(
      () => process.exit(0),
      (e: Error) => {
        process.stderr.write(`virtgate-helper: shutdown failed: ${e.message}\n`);
        process.exit(1);
      },
    );
};
process.on('SIGTERM', () => onSignal('SIGTERM'));
process.on('SIGINT', () => onSignal('SIGINT'));
started.catch((e: Error) => {
  process.stderr.write(`virtgate-helper: cannot start: ${e.message}\n`);
  process.exit(1);
});
