// SPDX-License-Identifier: Apache-2.0
// The seam the front end calls: intent before a write reaches the helper, outcome before the reply, events; each resolves when durable.
import { type AppenderOptions, AuditAppender } from './appender';
import type { AuditCopy } from './sink';
import type { AuditInput, DecisionField, EventField, OutcomeField, What, Who } from './schema';

export interface IntentRecord {
  requestId: string;
  who: Who;
  source: string;
  what: What;
  decision: DecisionField; // deny: recorded as a denial; nothing is forwarded
}

export interface OutcomeRecord {
  requestId: string;
  who: Who;
  source: string;
  what: What;
  outcome: OutcomeField;
}

export interface EventRecord {
  kind?: 'event' | 'auth'; // auth: authentication success or failure
  name: string;
  detail?: EventField['detail'];
  who?: Who;
  source?: string;
  outcome?: OutcomeField;
}

// Where a record landed in the chain, once durable (a trail that keeps no chain may resolve nothing).
export interface DurableRef {
  seq: number;
  hash: string;
}

export interface AuditTrail {
  intent(rec: IntentRecord): Promise<DurableRef | void>; // rejects with VG_ERR_AUDIT_UNAVAILABLE: refuse the write
  outcome(rec: OutcomeRecord): Promise<void>;
  event(rec: EventRecord): Promise<void>;
  readonly available: boolean;
}

export function intentInput(r: IntentRecord): AuditInput {
  return { kind: r.decision.result === 'deny' ? 'denial' : 'intent', requestId: r.requestId, who: r.who, source: r.source, what: r.what, decision: r.decision };
}

export function outcomeInput(r: OutcomeRecord): AuditInput {
  return { kind: 'outcome', requestId: r.requestId, who: r.who, source: r.source, what: r.what, outcome: r.outcome };
}

export function eventInput(r: EventRecord): AuditInput {
  return { kind: r.kind ?? 'event', who: r.who, source: r.source, event: { name: r.name, detail: r.detail }, outcome: r.outcome };
}

// The durable trail: an appender, plus an optional copy to syslog/journald.
export class FileAuditTrail implements AuditTrail {
  readonly appender: AuditAppender;
  readonly #copy: AuditCopy | null;

  private constructor(appender: AuditAppender, copy: AuditCopy | null) {
    this.appender = appender;
    this.#copy = copy;
  }

  static async open(o: AppenderOptions & { copy?: AuditCopy }): Promise<FileAuditTrail> {
    const { copy, ...rest } = o;
    const log = rest.log ?? ((m: string) => process.stderr.write(`virtgated: ${m}\n`));
    const appender = await AuditAppender.open({
      ...rest,
      log: (m) => {
        log(m);
        copy?.alert(m);
      },
      onDurable:
        copy || rest.onDurable
          ? (line, rec) => {
              rest.onDurable?.(line, rec);
              copy?.record(line, rec);
            }
          : undefined, // parsing each record back is only paid for when something wants it
    });
    return new FileAuditTrail(appender, copy ?? null);
  }

  get available(): boolean {
    return this.appender.available;
  }

  async intent(r: IntentRecord): Promise<DurableRef> {
    return this.appender.append(intentInput(r));
  }

  async outcome(r: OutcomeRecord): Promise<void> {
    await this.appender.append(outcomeInput(r));
  }

  async event(r: EventRecord): Promise<void> {
    await this.appender.append(eventInput(r));
  }

  async close(): Promise<void> {
    await this.appender.close();
    await this.#copy?.close();
  }
}
