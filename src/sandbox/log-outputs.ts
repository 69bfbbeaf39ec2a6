// SPDX-License-Identifier: Apache-2.0
// The logger's sinks (stderr, a file, journald's native socket): the I/O half of common/log.ts.
import fs from 'node:fs';
import { type LogRecord, type LogSink, type OutputSpec, Level, Logger, formatLine } from '../common/log';
import { JournalSocket } from './journald';

export const DEFAULT_JOURNAL_SOCKET = '/run/systemd/journal/socket';

// syslog priorities for journald's PRIORITY: err 3, warning 4, info 6, debug 7.
const PRIORITY: Record<number, string> = { [Level.ERROR]: '3', [Level.WARNING]: '4', [Level.INFO]: '6', [Level.DEBUG]: '7' };

export function journalFields(rec: LogRecord, identifier: string): Record<string, string> {
  const f: Record<string, string> = {
    MESSAGE: rec.message,
    PRIORITY: PRIORITY[rec.level],
    SYSLOG_IDENTIFIER: identifier,
    SYSLOG_PID: String(process.pid),
    VIRTGATE_COMPONENT: rec.component,
  };
  if (rec.code) {
    f.CODE_FILE = rec.code.file;
    f.CODE_LINE = String(rec.code.line);
    f.CODE_FUNC = rec.code.func;
  }
  for (const [k, v] of Object.entries(rec.fields)) {
    if (v === undefined) continue;
    const key = `VIRTGATE_${k
      .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
      .replace(/[^A-Za-z0-9]/g, '_')
      .toUpperCase()}`;
    f[key] = String(v);
  }
  return f;
}

export interface SinkOptions {
  journalSocket: string;
  identifier?: string; // SYSLOG_IDENTIFIER and the stderr prefix
}

export function openSink(spec: OutputSpec, o: SinkOptions): LogSink {
  const ident = o.identifier ?? 'virtgated';
  if (spec.kind === 'stderr') return { write: (rec) => void process.stderr.write(`${formatLine(rec, ident)}\n`) };
  if (spec.kind === 'file') {
    // Appends only, created 0600: a log may name users and addresses. Opened now so a bad path fails the setting.
    const fd = fs.openSync(spec.path!, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT, 0o600);
    return {
      write: (rec) => void fs.writeSync(fd, `${rec.time.toISOString()} ${formatLine(rec, `${ident}[${process.pid}]`)}\n`),
      close: () => fs.closeSync(fd),
    };
  }
  const sock = new JournalSocket(o.journalSocket);
  return { write: (rec) => void sock.send(journalFields(rec, ident)), close: () => sock.close(), dropped: () => sock.dropped };
}

// journald when its socket exists (running under systemd), stderr otherwise.
export function defaultOutputs(journalSocket: string): string {
  try {
    if (fs.statSync(journalSocket).isSocket()) return '2:journald';
  } catch {
    // no journal here
  }
  return '2:stderr';
}

// The daemon's logger from its configuration.
export function createLogger(c: { logFilters: string; logOutputs: string; logRateLimit: number; journalSocket: string }): Logger {
  return new Logger({
    filters: c.logFilters,
    outputs: c.logOutputs || defaultOutputs(c.journalSocket),
    rateLimit: c.logRateLimit,
    open: (spec) => openSink(spec, { journalSocket: c.journalSocket }),
  });
}
