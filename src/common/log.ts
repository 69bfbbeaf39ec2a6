// SPDX-License-Identifier: Apache-2.0
// The daemon's logger core, pure: levels, libvirt-style per-component filters, outputs as injected sinks, rate limit.

// libvirt's numbering (virLogPriority): 1 debug, 2 info, 3 warning, 4 error.
export const Level = { DEBUG: 1, INFO: 2, WARNING: 3, ERROR: 4 } as const;
export type LevelValue = (typeof Level)[keyof typeof Level];
const NAMES: Record<string, LevelValue> = { debug: 1, info: 2, warning: 3, warn: 3, error: 4 };
export const LEVEL_NAME: Record<LevelValue, string> = { 1: 'debug', 2: 'info', 3: 'warning', 4: 'error' };

export type LogFields = Record<string, string | number | boolean | undefined>;

export interface LogRecord {
  time: Date;
  level: LevelValue;
  component: string;
  message: string;
  fields: LogFields; // structured extras: user, proc, source... (journald: VIRTGATE_<UPPER>)
  code?: { file: string; line: number; func: string };
}

export interface LogSink {
  write(rec: LogRecord): void;
  close?(): void;
  dropped?(): number; // entries the output refused (journald gone or its queue full): never waited for
}

export interface FilterSpec {
  level: LevelValue;
  match: string; // a component name or a glob with '*'; a plain name matches as a substring, as libvirt's
}

export interface OutputSpec {
  level: LevelValue;
  kind: 'stderr' | 'journald' | 'file';
  path?: string;
}

export class LogSyntaxError extends Error {}

function level(s: string, what: string): LevelValue {
  const n = /^[1-4]$/.test(s) ? (Number(s) as LevelValue) : NAMES[s.toLowerCase()];
  if (!n) throw new LogSyntaxError(`${what}: unknown level '${s}' (1-4 or debug, info, warning, error)`);
  return n;
}

const MAX_SPECS = 64; // filters or outputs in one setting
const COMPONENT = /^[A-Za-z0-9_.*-]{1,64}$/;

// "3:rpc 1:policy 4:*" or "warning:rpc debug:policy"; libvirt's '+' (stack traces) is accepted and ignored.
export function parseFilters(text: string): FilterSpec[] {
  const out: FilterSpec[] = [];
  for (const tok of text.trim().split(/\s+/).filter(Boolean)) {
    const m = /^([^:]+):\+?(.+)$/.exec(tok);
    if (!m) throw new LogSyntaxError(`filter '${tok}': expected LEVEL:COMPONENT`);
    if (!COMPONENT.test(m[2])) throw new LogSyntaxError(`filter '${tok}': bad component name`);
    out.push({ level: level(m[1], `filter '${tok}'`), match: m[2] });
  }
  if (out.length > MAX_SPECS) throw new LogSyntaxError(`at most ${MAX_SPECS} filters`);
  return out;
}

// "1:journald 3:stderr 2:file:/var/log/virtgate.log"
export function parseOutputs(text: string): OutputSpec[] {
  const out: OutputSpec[] = [];
  for (const tok of text.trim().split(/\s+/).filter(Boolean)) {
    const m = /^([^:]+):(stderr|journald|file)(?::(.*))?$/.exec(tok);
    if (!m) throw new LogSyntaxError(`output '${tok}': expected LEVEL:stderr, LEVEL:journald or LEVEL:file:/ABSOLUTE/PATH`);
    const spec: OutputSpec = { level: level(m[1], `output '${tok}'`), kind: m[2] as OutputSpec['kind'] };
    if (spec.kind === 'file') {
      if (!m[3] || !m[3].startsWith('/') || m[3].includes('\0')) throw new LogSyntaxError(`output '${tok}': file needs an absolute path`);
      spec.path = m[3];
    } else if (m[3] !== undefined) throw new LogSyntaxError(`output '${tok}': ${spec.kind} takes no argument`);
    out.push(spec);
  }
  if (out.length > MAX_SPECS) throw new LogSyntaxError(`at most ${MAX_SPECS} outputs`);
  return out;
}

export const formatFilters = (f: readonly FilterSpec[]): string => f.map((x) => `${x.level}:${x.match}`).join(' ');
export const formatOutputs = (o: readonly OutputSpec[]): string => o.map((x) => `${x.level}:${x.kind}${x.path !== undefined ? `:${x.path}` : ''}`).join(' ');

function matches(f: FilterSpec, component: string): boolean {
  if (!f.match.includes('*')) return component.includes(f.match);
  const re = new RegExp(`^${f.match.replace(/[.+?^${}()|[\]\\-]/g, '\\$&').replace(/\*/g, '.*')}$`);
  return re.test(component);
}

// One line of text for stderr and files: "virtgated: warning: MESSAGE [rpc key=value ...]"; info lines: "virtgated: MESSAGE".
export function formatLine(rec: LogRecord, prefix = 'virtgated'): string {
  const extras = Object.entries(rec.fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'string' && /[\s"=\]\x00-\x1f]/.test(v) ? JSON.stringify(v) : String(v)}`)
    .join(' ');
  const head = rec.level === Level.INFO ? '' : `${LEVEL_NAME[rec.level]}: `;
  // Control characters escaped: a client-chosen name cannot forge a second line.
  const msg = rec.message.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  // Info lines keep the plain form operators' scripts and older tests read; journald carries their fields anyway.
  if (rec.level === Level.INFO) return `${prefix}: ${msg}`;
  return `${prefix}: ${head}${msg} [${rec.component}${extras ? ` ${extras}` : ''}]`;
}

export interface LoggerOptions {
  filters?: string;
  outputs: string;
  rateLimit: number; // lines per component per second; 0 = unlimited
  defaultLevel?: LevelValue; // when no filter matches
  open: (spec: OutputSpec) => LogSink; // builds a sink (stderr, journald, file): I/O lives outside common/
  now?: () => number;
}

interface Window {
  start: number;
  count: number;
  suppressed: number;
  timer: ReturnType<typeof setTimeout> | null;
}

const RATE_WINDOW_MS = 1000;

export class Logger {
  #filters: FilterSpec[] = [];
  #outputs: { spec: OutputSpec; sink: LogSink }[] = [];
  readonly #open: (spec: OutputSpec) => LogSink;
  readonly #rate: number;
  readonly #default: LevelValue;
  readonly #now: () => number;
  readonly #windows = new Map<string, Window>();
  readonly #suppressed = new Map<string, number>(); // since start, per component: stats()

  constructor(o: LoggerOptions) {
    this.#open = o.open;
    this.#rate = o.rateLimit;
    this.#default = o.defaultLevel ?? Level.INFO;
    this.#now = o.now ?? Date.now;
    this.setFilters(o.filters ?? '');
    this.setOutputs(o.outputs);
  }

  // Live (virt-admin daemon-log-filters): a bad text throws and leaves the current filters in force.
  setFilters(text: string): void {
    this.#filters = parseFilters(text);
  }

  // Live (virt-admin daemon-log-outputs): every new sink opens before the old ones close; a failure changes nothing.
  setOutputs(text: string): void {
    const specs = parseOutputs(text);
    if (!specs.length) throw new LogSyntaxError('at least one output is needed');
    const opened: { spec: OutputSpec; sink: LogSink }[] = [];
    try {
      for (const spec of specs) opened.push({ spec, sink: this.#open(spec) });
    } catch (e) {
      for (const o of opened) o.sink.close?.();
      throw e;
    }
    const old = this.#outputs;
    this.#outputs = opened;
    for (const o of old) o.sink.close?.();
  }

  get filters(): string {
    return formatFilters(this.#filters);
  }

  get outputs(): string {
    return formatOutputs(this.#outputs.map((o) => o.spec));
  }

  get filterCount(): number {
    return this.#filters.length;
  }

  get outputCount(): number {
    return this.#outputs.length;
  }

  enabled(component: string, lvl: LevelValue): boolean {
    const f = this.#filters.find((x) => matches(x, component));
    return lvl >= (f ? f.level : this.#default);
  }

  log(component: string, lvl: LevelValue, message: string, fields: LogFields = {}, code?: LogRecord['code']): void {
    if (!this.enabled(component, lvl)) return;
    if (!this.#admit(component)) return;
    this.#emit({ time: new Date(this.#now()), level: lvl, component, message, fields, code });
  }

  #emit(rec: LogRecord): void {
    for (const o of this.#outputs) {
      if (rec.level < o.spec.level) continue;
      try {
        o.sink.write(rec);
      } catch {
        // a broken output must never take the daemon down; the other outputs still get the line
      }
    }
  }

  // At most `rate` lines per component per window; the rest are counted and summarised once the window ends.
  #admit(component: string): boolean {
    if (this.#rate <= 0) return true;
    const now = this.#now();
    let w = this.#windows.get(component);
    if (!w || now - w.start >= RATE_WINDOW_MS) {
      if (w) this.#summary(component, w);
      w = { start: now, count: 0, suppressed: 0, timer: null };
      this.#windows.set(component, w);
    }
    if (w.count < this.#rate) {
      w.count++;
      return true;
    }
    w.suppressed++;
    this.#suppressed.set(component, (this.#suppressed.get(component) ?? 0) + 1);
    if (!w.timer) {
      const win = w;
      win.timer = setTimeout(
        () => {
          if (this.#windows.get(component) === win) this.#windows.delete(component);
          this.#summary(component, win);
        },
        RATE_WINDOW_MS - (now - w.start),
      );
      win.timer.unref?.();
    }
    return false;
  }

  #summary(component: string, w: Window): void {
    if (w.timer) clearTimeout(w.timer);
    w.timer = null;
    if (!w.suppressed) return;
    const n = w.suppressed;
    w.suppressed = 0;
    this.#emit({
      time: new Date(this.#now()),
      level: Level.WARNING,
      component,
      message: `${n} lines suppressed (logRateLimit ${this.#rate}/s)`,
      fields: { suppressed: n },
    });
  }

  // suppressed: lines the rate limit dropped, per component; dropped: entries the current outputs refused, per output.
  stats(): { suppressed: Record<string, number>; dropped: Record<string, number> } {
    const dropped: Record<string, number> = {};
    for (const o of this.#outputs) if (o.sink.dropped) dropped[formatOutputs([o.spec])] = o.sink.dropped();
    return { suppressed: Object.fromEntries(this.#suppressed), dropped };
  }

  // A component's view: the adapter the daemon's older `log(msg)` callbacks take.
  component(name: string): ComponentLog {
    const at = (lvl: LevelValue) => (message: string, fields?: LogFields) => this.log(name, lvl, message, fields);
    const fn = ((message: string) => this.log(name, Level.INFO, message)) as ComponentLog;
    fn.debug = at(Level.DEBUG);
    fn.info = at(Level.INFO);
    fn.warn = at(Level.WARNING);
    fn.error = at(Level.ERROR);
    return fn;
  }

  close(): void {
    for (const w of this.#windows.values()) if (w.timer) clearTimeout(w.timer);
    this.#windows.clear();
    for (const o of this.#outputs) o.sink.close?.();
    this.#outputs = [];
  }
}

export interface ComponentLog {
  (message: string): void;
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}
