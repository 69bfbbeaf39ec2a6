// SPDX-License-Identifier: Apache-2.0
// The front end's Prometheus metrics: one private prom-client registry and every series it serves (docs/metrics.md).
// Labels come from closed sets only (the procedure table, the IPC op table, fixed reasons, the mirror's tenants), never
// from what a client sends or who it is: an attacker cannot grow the series count.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { DomainState } from '../common/domain-state';
import type { DomainSummary } from '../ipc/program';

export type CallOutcome = 'ok' | 'error' | 'denied';
// Why a call was denied; the policy rule text stays in the audit record (it is no label).
export type DenialReason = 'policy' | 'read_only' | 'tenant' | 'not_visible';
export type ListenerName = 'unix' | 'unix_ro' | 'tcp' | 'tls';

export const UNKNOWN_PROCEDURE = 'unknown';
export const PREFIX = 'virtgate_';
const MAX_SERIES_PER_GAUGE = 1000; // an addGauge collector returning more is cut here (a bug elsewhere must not flood scrapes)

// Front-end call latency: reads from the mirror take tens of microseconds, writes wait for an fdatasync and the helper.
const CALL_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const HELPER_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120];
const FSYNC_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

const STATE_NAMES = new Map<number, string>(Object.entries(DomainState).map(([k, v]) => [v, k.toLowerCase()]));

export interface GaugeSample {
  labels: Record<string, string>;
  value: number;
}

// What the daemon hands over at construction: live figures read at scrape time.
export interface MetricsSources {
  outputQueuedBytes: () => number;
  domains: () => DomainSummary[] | undefined; // the front end's domain mirror; undefined while not synced
  helperUp: () => boolean;
}

// Per procedure, plain numbers: the call path pays a map lookup and a bucket search, not prom-client's label
// validation and hashing (measured ~2-3 µs per call through Counter + Histogram children); the series are built at
// scrape time by the two registry entries below.
interface ProcStats {
  ok: number;
  error: number;
  denied: number;
  buckets: Float64Array; // per bucket (not cumulative); the last is +Inf
  sum: number;
  count: number;
}

type MetricValue = { value: number; labels: Record<string, string>; metricName?: string };
type RegistryEntry = Parameters<Registry['registerMetric']>[0];

// A registry entry prom-client renders like its own (get() -> name, help, type, values).
function customMetric(name: string, help: string, type: 'counter' | 'histogram', values: () => MetricValue[]): RegistryEntry {
  const get = async () => ({ name, help, type, values: values(), aggregator: 'sum' as const });
  return { name, help, type, get, reset: () => undefined } as unknown as RegistryEntry;
}

export class Metrics {
  readonly registry = new Registry();
  readonly #helperDuration: Histogram<'op'>;
  readonly #denials: Counter<'reason'>;
  readonly #logins: Counter<'method' | 'result'>;
  readonly #connectionsTotal: Counter<'listener'>;
  readonly #connections: Gauge<'listener'>;
  readonly #refused: Counter<'reason'>;
  readonly #auditBatch: Histogram;
  readonly #auditFsync: Histogram;
  readonly #helperRestarts: Counter;
  readonly #byProc = new Map<string, ProcStats>();
  readonly #byOp = new Map<string, ReturnType<Histogram<'op'>['labels']>>();

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.registry.registerMetric(
      customMetric(`${PREFIX}calls_total`, 'Calls answered, by procedure and outcome (ok, error, denied)', 'counter', () => {
        const out: MetricValue[] = [];
        for (const [procedure, st] of this.#byProc)
          for (const outcome of ['ok', 'error', 'denied'] as const) out.push({ value: st[outcome], labels: { procedure, outcome } });
        return out;
      }),
    );
    this.registry.registerMetric(
      customMetric(`${PREFIX}call_duration_seconds`, 'Front-end time from a decoded call to its encoded reply, by procedure', 'histogram', () => {
        const out: MetricValue[] = [];
        const name = `${PREFIX}call_duration_seconds`;
        for (const [procedure, st] of this.#byProc) {
          if (st.count === 0) continue;
          let acc = 0;
          for (let i = 0; i <= CALL_BUCKETS.length; i++) {
            acc += st.buckets[i];
            const le = i < CALL_BUCKETS.length ? String(CALL_BUCKETS[i]) : '+Inf';
            out.push({ value: acc, labels: { procedure, le }, metricName: `${name}_bucket` });
          }
          out.push({ value: st.sum, labels: { procedure }, metricName: `${name}_sum` });
          out.push({ value: st.count, labels: { procedure }, metricName: `${name}_count` });
        }
        return out;
      }),
    );
    this.#helperDuration = new Histogram({
      name: `${PREFIX}helper_call_duration_seconds`,
      help: 'Helper IPC round trip, request written to answer read, by op (and action)',
      labelNames: ['op'],
      buckets: HELPER_BUCKETS,
      registers,
    });
    this.#denials = new Counter({
      name: `${PREFIX}denials_total`,
      help: 'Calls denied, by reason (policy, read_only, tenant, not_visible)',
      labelNames: ['reason'],
      registers,
    });
    this.#logins = new Counter({
      name: `${PREFIX}logins_total`,
      help: 'Logins by method and result (success, failure)',
      labelNames: ['method', 'result'],
      registers,
    });
    this.#connectionsTotal = new Counter({
      name: `${PREFIX}connections_total`,
      help: 'Client connections accepted, by listener',
      labelNames: ['listener'],
      registers,
    });
    this.#connections = new Gauge({ name: `${PREFIX}connections`, help: 'Client connections open now, by listener', labelNames: ['listener'], registers });
    this.#refused = new Counter({
      name: `${PREFIX}connections_refused_total`,
      help: 'Client connections refused by a limit, by limit',
      labelNames: ['reason'],
      registers,
    });
    new Gauge({
      name: `${PREFIX}output_queued_bytes`,
      help: 'Reply and event bytes queued for clients that have not read them yet',
      registers,
      collect() {
        this.set(sources.outputQueuedBytes());
      },
    });
    this.#auditBatch = new Histogram({
      name: `${PREFIX}audit_group_commit_records`,
      help: 'Audit records per group commit (one write + fdatasync)',
      buckets: BATCH_BUCKETS,
      registers,
    });
    this.#auditFsync = new Histogram({
      name: `${PREFIX}audit_fdatasync_seconds`,
      help: 'fdatasync of the audit log per group commit',
      buckets: FSYNC_BUCKETS,
      registers,
    });
    this.#helperRestarts = new Counter({ name: `${PREFIX}helper_restarts_total`, help: 'Helper connection lost and established again', registers });
    new Gauge({
      name: `${PREFIX}helper_up`,
      help: '1 while the helper connection is up and synced',
      registers,
      collect() {
        this.set(sources.helperUp() ? 1 : 0);
      },
    });
    new Gauge({
      name: `${PREFIX}vms`,
      help: 'Domains known to the front end, by state and tenant ("" = none)',
      labelNames: ['state', 'tenant'],
      registers,
      collect() {
        this.reset();
        const list = sources.domains();
        if (!list) return;
        const counts = new Map<string, { state: string; tenant: string; n: number }>();
        for (const d of list) {
          const state = STATE_NAMES.get(d.state) ?? 'nostate';
          const tenant = d.tenant ?? '';
          const key = `${state}\0${tenant}`;
          const c = counts.get(key);
          if (c) c.n++;
          else counts.set(key, { state, tenant, n: 1 });
        }
        for (const c of counts.values()) this.set({ state: c.state, tenant: c.tenant }, c.n);
      },
    });
    // Zero series for the closed sets, so rate() and absent() work before the first event.
    this.#stats(UNKNOWN_PROCEDURE);
    for (const r of ['policy', 'read_only', 'tenant', 'not_visible'] as const) this.#denials.labels(r).inc(0);
    this.#helperRestarts.inc(0);
  }

  // `procedure`: a name from the protocol table, or UNKNOWN_PROCEDURE (callers never pass a client's number).
  call(procedure: string, outcome: CallOutcome, seconds: number): void {
    const s = this.#byProc.get(procedure) ?? this.#stats(procedure);
    s[outcome]++;
    if (seconds < 0) return;
    let i = 0;
    while (i < CALL_BUCKETS.length && seconds > CALL_BUCKETS[i]) i++;
    s.buckets[i]++;
    s.sum += seconds;
    s.count++;
  }

  #stats(procedure: string): ProcStats {
    const s: ProcStats = { ok: 0, error: 0, denied: 0, buckets: new Float64Array(CALL_BUCKETS.length + 1), sum: 0, count: 0 };
    this.#byProc.set(procedure, s);
    return s;
  }

  unknownProcedure(): void {
    this.call(UNKNOWN_PROCEDURE, 'error', -1);
  }

  denial(reason: DenialReason): void {
    this.#denials.labels(reason).inc();
  }

  login(method: string, success: boolean): void {
    this.#logins.labels(method, success ? 'success' : 'failure').inc();
  }

  connectionOpened(listener: ListenerName): void {
    this.#connectionsTotal.labels(listener).inc();
    this.#connections.labels(listener).inc();
  }

  connectionClosed(listener: ListenerName): void {
    this.#connections.labels(listener).dec();
  }

  // `reason`: the limit's config key (maxClients, maxClientsPerUid, ...).
  connectionRefused(reason: string): void {
    this.#refused.labels(reason).inc();
  }

  // `op`: the IPC request name (`DOMAIN_READ_REQ.info`), from the op table after the request encoded.
  helperCall(op: string, seconds: number): void {
    let h = this.#byOp.get(op);
    if (!h) this.#byOp.set(op, (h = this.#helperDuration.labels(op)));
    h.observe(seconds);
  }

  helperRestarted(): void {
    this.#helperRestarts.inc();
  }

  auditCommit(records: number, fdatasyncSeconds: number): void {
    this.#auditBatch.observe(records);
    this.#auditFsync.observe(fdatasyncSeconds);
  }

  // Another component's status as a gauge, read at each scrape: `collect` returns the series (bounded label values:
  // never user names or uuids). The name gets the virtgate_ prefix when it lacks it.
  addGauge(name: string, help: string, labelNames: readonly string[], collect: () => GaugeSample[]): void {
    const full = name.startsWith(PREFIX) ? name : `${PREFIX}${name}`;
    new Gauge({
      name: full,
      help,
      labelNames: [...labelNames],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const s of collect().slice(0, MAX_SERIES_PER_GAUGE)) {
          if (labelNames.length) this.set(s.labels, s.value);
          else this.set(s.value);
        }
      },
    });
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

export function secondsSince(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e9;
}
