// SPDX-License-Identifier: Apache-2.0
// Copies of durable audit records to syslog/journald/console through winston (the only winston import); the file stays the truth.
import { spawn } from 'node:child_process';
import winston from 'winston';
import type Transport from 'winston-transport';
import type { AuditRecord } from './schema';

export type CopyTarget = 'console' | 'syslog';

export interface AuditCopyOptions {
  targets?: readonly CopyTarget[]; // console: stderr, which systemd puts in the journal; syslog: through logger(1)
  transports?: Transport[]; // extra transports (tests use a mock)
  tag?: string;
}

export interface AuditCopy {
  record(line: string, rec: AuditRecord): void; // after the record is durable
  alert(message: string): void; // fail-closed transitions, at syslog level crit
  close(): Promise<void>;
}

// Syslog severities: denials and failed writes are warnings, the rest is info.
function levelOf(rec: AuditRecord): string {
  if (rec.kind === 'denial' || (rec.kind === 'auth' && rec.outcome?.result === 'error')) return 'warning';
  if (rec.outcome?.result === 'error') return 'notice';
  return 'info';
}

export function createAuditCopy(o: AuditCopyOptions): AuditCopy {
  const tag = o.tag ?? 'virtgate-audit';
  const transports: Transport[] = [...(o.transports ?? [])];
  const children: ReturnType<typeof spawn>[] = [];
  for (const t of o.targets ?? []) {
    if (t === 'console') {
      transports.push(
        new winston.transports.Console({
          stderrLevels: Object.keys(winston.config.syslog.levels),
          format: winston.format.printf((i) => `${tag}: ${String(i.message)}`),
        }),
      );
    } else if (t === 'syslog') {
      const child = spawn('logger', ['-t', tag, '-p', 'authpriv.info'], { stdio: ['pipe', 'ignore', 'ignore'] });
      child.on('error', () => undefined); // no logger(1): the copy is best effort, the file is the record
      child.stdin!.on('error', () => undefined);
      children.push(child);
      transports.push(new winston.transports.Stream({ stream: child.stdin!, format: winston.format.printf((i) => String(i.message)) }));
    }
  }
  const logger = winston.createLogger({ levels: winston.config.syslog.levels, level: 'debug', transports, exitOnError: false });
  logger.on('error', () => undefined);
  return {
    record(line, rec) {
      logger.log(levelOf(rec), line, { audit: rec });
    },
    alert(message) {
      logger.log('crit', message);
    },
    async close() {
      await new Promise<void>((resolve) => {
        logger.on('finish', () => resolve());
        logger.end();
        setTimeout(resolve, 500).unref();
      });
      for (const c of children) c.stdin?.end();
    },
  };
}
