// SPDX-License-Identifier: Apache-2.0
// virtgated's network edge: listeners, per-connection sessions, keepalive, limits; everything else goes through the Dispatcher.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type tls from 'node:tls';
import { type Config, parseHostPort } from '../common/config';
import type { InheritedFds } from '../common/systemd';
import { VG_ERR_AUDIT_START, VG_ERR_AUDIT_UNAVAILABLE, VG_ERR_CONFIG_INVALID, VG_ERR_LISTEN } from '../common/errors';
import { createAuditCopy, type CopyTarget } from '../audit/sink';
import { type AuditTrail, type DurableRef, type EventRecord, FileAuditTrail, type IntentRecord, type OutcomeRecord } from '../audit/trail';
import { AuditHook } from './audit-hook';
import { createAuditForwarder } from './audit-forwarder';
import type { AuditForwarder, ForwarderStatus } from '../audit/forward';
import { type LifecycleEvent, LookupKind, Op } from '../ipc/program';
import { AuthType, KeepaliveProc } from '../protocol/constants';
import { encodeKeepalive } from '../protocol/messages';
import type { Authorizer } from '../policy/authorizer';
import { PolicyRuntime, policyRuntimeFor } from './policy-runtime';
import type { PolicyStoreStatus } from './policy-store';
import { peerCred } from '../sandbox/peercred';
import { type AuthEvent, AuthService } from './auth';
import { Dispatcher } from './dispatcher';
import { EventHub } from './event-hub';
import { HelperClient } from './helper-client';
import { FdChannelClient } from './fd-channel';
import { FdKind } from '../ipc/fd-channel';
import { closeFd } from '../sandbox/fdpass';
import { closeFds, sendReplyFds } from './reply-fds';
import { MemoryReclaimer } from './memory';
import { InputTurns } from './input-turns';
import { OutputBudget, OutputQueue } from './output-queue';
import { STREAM_HIGH_WATER } from './streams';
import { type Identity, Session } from './session';
import { createTlsServer, currentServerOptions } from './tls';
import { type UpstreamRequest, VncProxy, hasVncGraphics } from './vnc-proxy';
import { userNameForUid } from './users';
import { type ListenerName, Metrics } from './metrics';
import { MetricsServer } from './metrics-server';
import { removeStaleSocket } from './unix-listen';
import { UserSync, usersCacheFile } from './user-store';
import { lockoutsFileFor } from '../accounts/lockouts';
import { type ComponentLog, type Logger } from '../common/log';
import { createLogger } from '../sandbox/log-outputs';
import { AdminServer } from './admin/server';

export interface ListenerSpec {
  kind: 'unix' | 'tcp' | 'tls';
  readOnly: boolean;
  path?: string;
  host?: string;
  port?: number;
  mode?: number;
  fd?: number; // a listening socket inherited from systemd (socket activation): used as is, never bound, chmod'ed or unlinked
}

export interface DaemonStats {
  clients: number;
  sessions: number;
  outputBytes: number;
}

const REFUSAL_LOG_MS = 5000; // at most one refusal line per reason this often; the rest are counted
const RECLAIM_BYTES = 1024 * 1024; // a connection that held this much (input or output) returns it to the system at close

export class Daemon {
  readonly config: Readonly<Config>;
  readonly helper: HelperClient;
  readonly fdChannel: FdChannelClient; // consoles' and displays' descriptors from the helper (paired by our pid)
  readonly dispatcher: Dispatcher;
  readonly sessions = new Set<Session>();
  readonly auth: AuthService | null;
  readonly audit: AuditHook | null; // null only with `audit = false`
  auditForwarder: AuditForwarder | null = null; // issue 15 F: status() for metrics
  readonly authorizer: Authorizer;
  readonly vnc: VncProxy | null; // remote displays (vncListen); null when off
  readonly metrics: Metrics | null; // null with `metrics = false`: no registry, no listener, no instrumentation
  #metricsServer: MetricsServer | null = null;
  #stopping: Promise<void> | null = null;
  readonly #trail: LateTrail | null;
  readonly #userSync: UserSync | null;
  #tlsHandshaking = 0; // TLS connections not yet through the handshake: unauthenticated too
  readonly #handshakingBy = new Map<string, number>(); // the same, per source address
  #open = 0; // connections admitted and not yet closed, on every listener (TLS handshakes included): maxClients
  readonly #openBy = new Map<string, number>(); // per local uid ('uid N') or source address: maxClientsPerUid/Source
  readonly #refusals = new Map<string, { last: number; suppressed: number; source: string }>();
  readonly #output: OutputBudget;
  readonly #reclaimer = new MemoryReclaimer();
  readonly #turns = new InputTurns();
  readonly #handshakeDone = new Map<string, () => void>(); // TLS peer 'address:port' -> ends its unauthenticated count
  readonly #keyOf = new WeakMap<Session, string>(); // the source a session counts against
  readonly #servers: net.Server[] = [];
  readonly #hub: EventHub;
  readonly #log: (msg: string) => void;
  readonly logger: Logger; // structured, filtered, rate-limited (docs/logging.md); live-changed by virt-admin
  readonly #logOf: (component: string) => ComponentLog;
  readonly #inherited: InheritedFds;
  #nextSessionId = 1;
  #keepaliveTimer: NodeJS.Timeout | null = null;
  addresses: { kind: string; readOnly: boolean; address: string }[] = [];
  readonly limits: { maxClients: number; maxAnonymousClients: number }; // the config's, changed live by virt-admin
  admin: AdminServer | null = null;

  constructor(
    config: Readonly<Config>,
    opts: { authorizer?: Authorizer; log?: (m: string) => void; logger?: Logger; trail?: AuditTrail; inherited?: InheritedFds } = {},
  ) {
    this.config = config;
    this.limits = { maxClients: config.maxClients, maxAnonymousClients: config.maxAnonymousClients };
    this.#inherited = opts.inherited ?? {};
    this.logger = opts.logger ?? createLogger(config);
    // A test's `log` callback gets every component's lines; otherwise each component logs under its own name.
    const given = opts.log;
    this.#logOf = given ? (_c) => asComponent(given) : (c) => this.logger.component(c);
    this.#log = given ?? this.#logOf('daemon');
    // The trail opens in start(); until then writes are refused and events wait (a test may inject its own trail).
    this.#trail = config.audit ? new LateTrail(opts.trail) : null;
    this.audit = this.#trail ? new AuditHook(this.#trail) : null;
    const m = config.metrics
      ? new Metrics({
          outputQueuedBytes: () => this.#output.total,
          domains: () => this.dispatcher.mirror.list(),
          helperUp: () => this.helper.ready,
        })
      : null;
    this.metrics = m;
    this.helper = new HelperClient({
      socketPath: config.helperSocket,
      maxInFlight: config.helperMaxInFlight,
      log: this.#logOf('helper'),
      observe: m ? (op, seconds) => m.helperCall(op, seconds) : undefined,
    });
    if (m) {
      let lost = false;
      this.helper.on('down', () => (lost = true));
      this.helper.on('up', () => {
        if (lost) m.helperRestarted();
        lost = false;
      });
    }
    this.fdChannel = new FdChannelClient({ path: `${config.helperSocket}.fds`, log: this.#log });
    // Every helper (re)connect gets a fresh channel: a restarted helper knows nothing of the old one.
    this.helper.on('up', () => this.fdChannel.connect());
    // A helper restart is worth a warning of its own (journal: VIRTGATE_COMPONENT=helper PRIORITY=4).
    let helperDown = false;
    this.helper.on('down', (reason: string) => {
      helperDown = true;
      this.#logOf('helper').warn(`helper connection lost (${reason}): calls fail until it is back`, { reason });
    });
    this.helper.on('up', () => {
      if (helperDown) this.#logOf('helper').warn('helper connection re-established after a loss', { reason: 'reconnected' });
      helperDown = false;
    });
    // RBAC (issue 5): the Casbin policy under HOME/etc unless a test injects another authorizer.
    const saslAnywhere = [config.authUnixRw, config.authUnixRo, config.authTls].includes('sasl');
    // usersStore = 'postgresql': the users come from the database through a local cache file; lockouts stay per host.
    const pgUsers = saslAnywhere && config.usersStore === 'postgresql';
    const usersFile = pgUsers ? usersCacheFile(config) : config.usersFile;
    this.auth = saslAnywhere ? new AuthService(usersFile, (e) => this.#logAuth(e), { ...config, lockoutFile: lockoutsFileFor(config.usersFile) }) : null;
    this.#userSync = pgUsers ? new UserSync(config, () => this.auth?.reloadUsers(), this.#log) : null;
    this.authorizer =
      opts.authorizer ??
      policyRuntimeFor(config, this.#logOf('policy'), (r) => {
        const detail: Record<string, string | number | boolean> = { why: r.why, ok: r.ok, source: r.source };
        if (r.rules !== undefined) detail.rules = r.rules;
        if (r.error) detail.error = r.error;
        if (!r.ok) this.#logOf('policy').warn(`policy load (${r.why}) failed: ${r.error ?? 'error'}`, { reason: r.why, source: r.source });
        this.audit?.event('policy-reload', detail).catch(() => undefined); // an outage is already logged loudly
      });
    this.dispatcher = new Dispatcher({
      helper: this.helper,
      fdChannel: this.fdChannel,
      remoteDisplay: (uuid) => this.vnc?.portOf(uuid) ?? null, // read per call: the proxy is made below
      authorizer: this.authorizer,
      auth: this.auth,
      log: this.#logOf('rpc'),
      audit: this.audit ?? undefined,
      metrics: m ?? undefined,
    });
    this.#hub = new EventHub((s: Session, ev: LifecycleEvent) => this.dispatcher.canSee(s, ev.domain));
    this.#output = new OutputBudget(config.maxTotalOutputBytes);
    this.helper.on('lifecycle', (ev: LifecycleEvent) => this.#hub.publish(ev));
    this.vnc = config.vncListen ? this.#vncProxy() : null;
    if (m) this.#statusGauges(m);
  }

  // Other components' status, read at each scrape (they do not import metrics).
  #statusGauges(m: Metrics): void {
    const fwd = (): ForwarderStatus | null => this.auditForwarder?.status() ?? null;
    const fwdGauge = (name: string, help: string, value: (s: ForwarderStatus) => number): void =>
      m.addGauge(name, help, [], () => {
        const s = fwd();
        return s ? [{ labels: {}, value: value(s) }] : [];
      });
    fwdGauge('audit_forward_connected', 'Audit forwarding: 1 while the TLS connection to the collector is up', (s) => (s.connected ? 1 : 0));
    fwdGauge('audit_forward_lag_records', 'Audit forwarding: durable local records the collector is not known to have', (s) => s.lagRecords);
    fwdGauge('audit_forward_lag_seconds', 'Audit forwarding: age of the oldest record not yet settled at the collector', (s) => s.lagSeconds);
    fwdGauge('audit_forward_acked_seq', 'Audit forwarding: every seq up to this one is settled (the persisted cursor)', (s) => s.ackedSeq);
    fwdGauge('audit_forward_resent_records', 'Audit forwarding: records sent again, flagged resent="1", since start', (s) => s.resent);
    m.addGauge('log_lines_suppressed', 'Log lines left out by the per-component rate limit since start', ['component'], () =>
      Object.entries(this.logger.stats().suppressed).map(([component, value]) => ({ labels: { component }, value })),
    );
    m.addGauge('log_lines_dropped', 'Log lines an output could not take (journald gone or its queue full) since start', ['output'], () =>
      Object.entries(this.logger.stats().dropped).map(([output, value]) => ({ labels: { output }, value })),
    );
    const policy = (): PolicyStoreStatus | null => this.policyStatus();
    m.addGauge('policy_source', 'The policy source in force: 1 for file, database, cache or none (none denies everything)', ['source'], () => {
      const s = policy();
      return s ? [{ labels: { source: s.source }, value: 1 }] : [];
    });
    m.addGauge('policy_store_connected', 'PostgreSQL policy store: 1 while its LISTEN connection is up (1 for a file store)', [], () => {
      const s = policy();
      return s ? [{ labels: {}, value: s.connected ? 1 : 0 }] : [];
    });
    m.addGauge('policy_rules', 'Rules in the policy in force', [], () => {
      const s = policy();
      return s ? [{ labels: {}, value: s.rules }] : [];
    });
    m.addGauge('policy_last_load_timestamp_seconds', 'When the policy in force was loaded (Unix time)', [], () => {
      const s = policy();
      return s?.lastLoad ? [{ labels: {}, value: s.lastLoad.getTime() / 1000 }] : [];
    });
    m.addGauge('policy_reload_failing', '1 while the last policy load failed (the previous policy stays in force)', [], () => {
      const s = policy();
      return s ? [{ labels: {}, value: s.lastError ? 1 : 0 }] : [];
    });
  }

  // Remote displays (docs/remote-display.md): a listener per running VM with VNC graphics, following the helper's
  // domain stream (after the dispatcher's mirror, which it reads).
  #vncProxy(): VncProxy {
    const mirror = this.dispatcher.mirror;
    const vnc = new VncProxy({
      config: this.config,
      log: this.#log,
      authorizer: this.authorizer,
      audit: this.audit,
      record: (r) => this.#trail?.event(r) ?? Promise.resolve(),
      nextId: () => this.#nextSessionId++,
      domain: (uuid) => {
        const d = mirror.lookup({ kind: LookupKind.UUID, uuid });
        return d ? { name: d.name, tenant: d.tenant ?? '' } : d;
      },
      openUpstream: (req) => this.#openGraphics(req),
    });
    vnc.follow(
      this.helper,
      async (uuid) => hasVncGraphics((await this.helper.act(Op.DOMAIN_READ_REQ, 'xml', { uuid, inactive: false })).def),
      () => mirror.list(),
    );
    return vnc;
  }

  // The VM's own VNC server, as a connected socket: the helper's openGraphics (a journaled write, its intent made
  // durable first, exactly as a handler's) hands its descriptor over the descriptor channel.
  async #openGraphics(req: UpstreamRequest): Promise<net.Socket> {
    const body = { uuid: req.uuid, idx: 0, actor: req.actor };
    const auditHead = await req.before(Op.DOMAIN_WRITE_REQ, { ...body, action: 'openGraphics' });
    const actor = auditHead ? { ...req.actor, auditHead } : req.actor;
    const { token } = await this.helper.act(Op.DOMAIN_WRITE_REQ, 'openGraphics', { ...body, actor });
    const fd = await this.fdChannel.take(token, FdKind.GRAPHICS);
    try {
      return new net.Socket({ fd, readable: true, writable: true });
    } catch (e) {
      closeFd(fd);
      throw e;
    }
  }

  // Which policy source is in force (file, database, cache, none), for metrics; null with an injected authorizer.
  policyStatus(): PolicyStoreStatus | null {
    return this.authorizer instanceof PolicyRuntime ? this.authorizer.status() : null;
  }

  listenerSpecs(): ListenerSpec[] {
    const c = this.config;
    const fds = this.#inherited;
    const specs: ListenerSpec[] = [
      { kind: 'unix', readOnly: false, path: c.unixSocket, mode: c.unixSocketMode, fd: fds.rw },
      { kind: 'unix', readOnly: true, path: c.unixSocketRo, mode: c.unixSocketRoMode, fd: fds.ro },
    ];
    if (c.tcp) {
      const { host, port } = parseHostPort(c.tcp, 'tcp');
      if (!c.tcpAllowNonLoopback && !isLoopback(host)) {
        throw VG_ERR_CONFIG_INVALID('tcp', `plain TCP is for development and only binds loopback; '${host}' is not (use TLS)`);
      }
      specs.push({ kind: 'tcp', readOnly: false, host, port });
    }
    // An inherited TLS socket is served even when `tls` is unset: the .socket unit is then the configuration.
    if (fds.tls !== undefined) specs.push({ kind: 'tls', readOnly: false, fd: fds.tls });
    else if (c.tls) specs.push({ kind: 'tls', readOnly: false, ...parseHostPort(c.tls, 'tls') });
    return specs;
  }

  async start(): Promise<void> {
    if (this.#trail && !this.#trail.inner) {
      const c = this.config;
      const targets = c.auditCopy.split(',').filter(Boolean) as CopyTarget[];
      let trail: FileAuditTrail;
      try {
        trail = await FileAuditTrail.open({
          file: c.auditLog,
          keyFile: c.auditKey,
          verifyKeyFile: c.auditVerifyKey,
          epochRecords: c.auditEpochRecords,
          epochSeconds: c.auditEpochSeconds,
          maxBytes: c.auditMaxBytes,
          keepFiles: c.auditKeepFiles,
          ...(c.auditHost ? { host: c.auditHost } : {}), // an explicit undefined would hide the appender's default
          log: this.#log,
          copy: targets.length ? createAuditCopy({ targets }) : undefined,
          onCommit: this.metrics ? (records, seconds) => this.metrics!.auditCommit(records, seconds) : undefined,
        });
      } catch (e) {
        throw VG_ERR_AUDIT_START(c.auditLog, (e as Error).message);
      }
      this.#trail.open(trail);
      this.#log(`audit log ${c.auditLog} (key ${c.auditKey})`);
      const fwd = createAuditForwarder(c, () => trail.appender.stats().seq, this.#log);
      if (fwd) {
        this.auditForwarder = fwd.forwarder;
        this.#log(`audit forward: to ${fwd.target}, cursor ${c.auditForwardCursor}`);
      }
    } else if (!this.#trail) this.#log('AUDIT DISABLED (audit = false): writes, denials and logins are not recorded');
    // No listener opens before the start record is durable; if it cannot be, the daemon does not start (fail closed).
    try {
      await this.audit?.event('daemon-start', { pid: process.pid });
    } catch (e) {
      throw VG_ERR_AUDIT_START(this.config.auditLog, `daemon-start not recorded: ${(e as Error).message}`);
    }
    this.#trail?.flushEarly();
    this.auditForwarder?.start();
    if (this.vnc) {
      currentServerOptions(this.config); // fail closed at start: remote displays need the TLS credentials
      this.#log(`vnc: remote displays on ${this.config.vncListen} ports ${this.config.vncPortMin}..${this.config.vncPortMax} (VeNCrypt x509)`);
    }
    this.helper.start();
    await this.helper.waitReady(15000);
    // A client let in before the first policy (or users) load would be refused for no reason of its own (a slow database).
    await Promise.all([this.authorizer.ready, this.#userSync?.ready]);
    for (const spec of this.listenerSpecs()) await this.#listen(spec);
    if (this.metrics) {
      this.#metricsServer = new MetricsServer({ config: this.config, metrics: this.metrics, log: this.#log });
      await this.#metricsServer.start();
      for (const a of this.#metricsServer.addresses) this.#log(`metrics on ${a.startsWith('/') ? 'unix' : 'tcp'} ${a} (GET /metrics)`);
    }
    this.admin = new AdminServer(this, this.#logOf('admin'));
    await this.admin.listen(this.config.adminSocket, this.config.adminSocketMode);
    this.#logOf('admin')(`virt-admin socket ${this.config.adminSocket}`);
    this.#keepaliveTimer = setInterval(() => this.#keepaliveTick(), 1000).unref();
  }

  // Once: a second SIGTERM (or a failed start's cleanup racing a signal) waits for the first stop, records nothing twice.
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    if (this.#keepaliveTimer) clearInterval(this.#keepaliveTimer);
    await this.admin?.close();
    for (const s of this.sessions) s.close('daemon stopping');
    this.vnc?.close();
    await Promise.all(this.#servers.map((srv) => new Promise<void>((resolve) => srv.close(() => resolve()))));
    await this.#metricsServer?.stop();
    this.helper.close();
    this.fdChannel.close();
    (this.authorizer as { close?: () => void }).close?.(); // the policy database connection, watchers
    await this.#userSync?.close();
    this.audit?.flushLogins(true);
    await this.audit?.event('daemon-stop', { pid: process.pid }).catch(() => undefined);
    await this.#trail?.close();
    const f = this.auditForwarder;
    if (f) {
      // A moment to send the last records (daemon-stop); what is not settled goes again, flagged, at the next start.
      for (let i = 0; i < 20 && f.status().connected && f.status().sentSeq < f.status().localSeq; i++) await new Promise((r) => setTimeout(r, 100));
      await f.stop();
    }
  }

  async #listen(spec: ListenerSpec): Promise<void> {
    const server: net.Server =
      spec.kind === 'tls'
        ? createTlsServer({ config: this.config, log: this.#logOf('tls'), onClient: (sock, identity) => this.#accept(sock, spec, identity) })
        : net.createServer({ noDelay: true }, (sock) => {
            if (this.#admit(sock, spec)) this.#accept(sock, spec);
          });
    if (spec.kind === 'tls') {
      // Before the handshake a TLS client is anonymous: it counts against maxAnonymousClients from its first byte.
      server.on('connection', (raw: net.Socket) => {
        if (!this.#admit(raw, spec)) return;
        const key = sourceKey(raw, spec);
        if (!this.#anonymousSlot(raw, key)) return;
        this.#tlsHandshaking++;
        bump(this.#handshakingBy, key, 1);
        let counted = true;
        const done = (): void => {
          if (counted) {
            this.#tlsHandshaking--;
            bump(this.#handshakingBy, key, -1);
          }
          counted = false;
        };
        // #accept gets the TLS socket, not this raw one: the peer's address and port (no two live connections share
        // them) lead back to this count when the handshake succeeds.
        const peer = `${raw.remoteAddress}:${raw.remotePort}`;
        this.#handshakeDone.set(peer, done);
        raw.once('close', () => {
          done();
          if (this.#handshakeDone.get(peer) === done) this.#handshakeDone.delete(peer);
        });
      });
    }
    if (spec.fd !== undefined) {
      // systemd owns the socket (path, mode, group): take it as it is; stop() closes only our copy of the fd.
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ fd: spec.fd }, () => resolve());
      });
      const a = server.address();
      const address = a && typeof a !== 'string' ? `${a.address}:${a.port}` : a || unixPathOfFd(spec.fd);
      if (spec.kind === 'unix' && address !== spec.path) this.#log(`inherited socket ${address} is not the configured ${spec.path}; serving it anyway`);
      this.addresses.push({ kind: spec.kind, readOnly: spec.readOnly, address: `${address} (fd ${spec.fd} from systemd)` });
    } else if (spec.kind === 'unix') {
      const p = spec.path!;
      fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o755 });
      await removeStaleSocket(p);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(p, () => resolve());
      }).catch((e) => Promise.reject(listenError(spec, p, e)));
      fs.chmodSync(p, spec.mode!);
      this.addresses.push({ kind: 'unix', readOnly: spec.readOnly, address: p });
    } else {
      const listen = (port: number): Promise<void> =>
        new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(port, spec.host, () => resolve());
        });
      const where = `${spec.host!.includes(':') ? `[${spec.host}]` : spec.host}:${spec.port}`;
      try {
        await listen(spec.port!);
      } catch (e) {
        if (spec.kind !== 'tls' || !this.config.tlsPortFallback || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw listenError(spec, where, e);
        this.#log(`tls port ${spec.port} is in use; listening on a free port instead (tlsPortFallback)`);
        await listen(0).catch((e2) => Promise.reject(listenError(spec, where.replace(/:\d+$/, ':0'), e2)));
      }
      const a = server.address() as net.AddressInfo;
      this.addresses.push({ kind: spec.kind, readOnly: spec.readOnly, address: `${a.address}:${a.port}` });
    }
    server.on('error', (e) => this.#log(`listener error: ${e.message}`));
    this.#servers.push(server);
  }

  // Every connection, on every listener, before anything else: one overall limit (libvirtd's max_clients), one per
  // local uid on the unix sockets and one per source address on TCP and TLS, so no one user or address can take the
  // connections everyone else needs. A refusal is logged, at most once per reason every 5 s with a count of the rest.
  #admit(raw: net.Socket, spec: ListenerSpec): boolean {
    const c = this.config;
    let key: string;
    try {
      key = sourceKey(raw, spec);
    } catch (e) {
      return this.#refuse(raw, 'unix socket', 'peer credentials', `no peer credentials: ${(e as Error).message}`);
    }
    const per = spec.kind === 'unix' ? c.maxClientsPerUid : c.maxClientsPerSource;
    const perName = spec.kind === 'unix' ? 'maxClientsPerUid' : 'maxClientsPerSource';
    if ((this.#openBy.get(key) ?? 0) >= per) return this.#refuse(raw, key, perName, `${key} has ${per} connections already`);
    const max = this.limits.maxClients; // live: virt-admin srv-clients-set
    if (this.#open >= max) return this.#refuse(raw, key, 'maxClients', `${max} connections already`);
    this.#open++;
    bump(this.#openBy, key, 1);
    raw.once('close', () => {
      this.#open--;
      bump(this.#openBy, key, -1);
    });
    return true;
  }

  // An unauthenticated connection (TLS handshake, SASL login to come) needs one of maxAnonymousClients, and one source
  // holds at most maxAnonymousClientsPerSource of them: idle connections from one address cannot lock out the rest.
  // Root (uid 0) on a unix socket is not held to the share: it is no user without rights, and owns the host anyway.
  #anonymousSlot(raw: net.Socket, key: string): boolean {
    const c = this.config;
    if (key !== 'uid 0' && this.anonymousFrom(key) >= c.maxAnonymousClientsPerSource) {
      return this.#refuse(raw, key, 'maxAnonymousClientsPerSource', `${key} has ${c.maxAnonymousClientsPerSource} unauthenticated connections already`);
    }
    const maxAnon = this.limits.maxAnonymousClients;
    if (this.anonymousCount() >= maxAnon) return this.#refuse(raw, key, 'maxAnonymousClients', `${maxAnon} unauthenticated connections already`);
    return true;
  }

  #refuse(raw: net.Socket, key: string, reason: string, detail: string): false {
    this.metrics?.connectionRefused(reason);
    const source = raw.remoteAddress ? `${raw.remoteAddress}:${raw.remotePort}` : `unix ${key}`;
    raw.destroy();
    const now = Date.now();
    const r = this.#refusals.get(reason);
    if (r && now - r.last < REFUSAL_LOG_MS) {
      r.suppressed++;
      r.source = source;
      return false;
    }
    const more = r?.suppressed ? ` (${r.suppressed} more refused for ${reason} since the last such line)` : '';
    this.#logOf('net').warn(`refusing connection from ${source}: ${detail} (${reason})${more}`, { source, reason });
    this.#refusals.set(reason, { last: now, suppressed: 0, source });
    return false;
  }

  // Counts of refusals still unreported once their interval is over (the attack may have stopped).
  #flushRefusals(now: number): void {
    for (const [reason, r] of this.#refusals) {
      if (now - r.last < REFUSAL_LOG_MS) continue;
      if (r.suppressed)
        this.#logOf('net').warn(
          `refused ${r.suppressed} more connection(s) for ${reason} in the last ${Math.round((now - r.last) / 1000)} s (last from ${r.source})`,
          {
            reason,
          },
        );
      this.#refusals.delete(reason);
    }
  }

  // A TLS socket arrives verified, its 0x01 confirmation written, with the identity its certificate proved.
  #accept(sock: net.Socket | tls.TLSSocket, spec: ListenerSpec, x509?: Identity): void {
    if (x509) {
      // Authenticated: no longer one of this source's unauthenticated connections.
      const peer = `${sock.remoteAddress}:${sock.remotePort}`;
      this.#handshakeDone.get(peer)?.();
      this.#handshakeDone.delete(peer);
    }
    let evidence: Identity;
    try {
      evidence =
        x509 ?? (spec.kind === 'unix' ? unixIdentity(sock) : { user: 'anonymous', method: 'none', source: `${sock.remoteAddress}:${sock.remotePort}` });
    } catch (e) {
      this.#logOf('net').warn(`refusing connection: ${(e as Error).message}`);
      sock.destroy();
      return;
    }
    // What the transport proved is the identity, unless this listener also wants a SASL login.
    const sasl = this.#authFor(spec) === 'sasl';
    const key = spec.kind === 'unix' ? `uid ${evidence.uid}` : (sock.remoteAddress ?? '?');
    if (sasl && !this.#anonymousSlot(sock, key)) return;
    const identity = sasl ? null : evidence;
    const login =
      !sasl && evidence.method !== 'none'
        ? this.#logAuth({ outcome: 'success', method: evidence.method, user: evidence.user, source: evidence.source, evidence })
        : null;
    let paused = false;
    let busy = false;
    let yielding = false; // took its share of this loop turn's large-message input (InputTurns)
    const reading = (): void => {
      const stop = paused || busy || yielding;
      if (stop) sock.pause();
      else sock.resume();
      session.setReadPaused(stop);
    };
    const out = new OutputQueue({
      sock,
      max: this.config.maxOutputBytes,
      budget: this.#output,
      drop: (reason) => session.close(reason),
      pressure: (backedUp) => {
        paused = backedUp;
        reading();
        if (!backedUp) session.outputRelieved(); // streams paced by this connection's output go on
      },
    });
    // REPLY_WITH_FDS: the reply, then (once it is in the kernel) each fd with a 1-byte sendmsg on the raw socket; later
    // writes wait in fdGate so no byte of theirs comes between a reply and its descriptors.
    let fdGate: { buf: Buffer; fds?: number[] }[] | null = null;
    let fdsInFlight: number[] = []; // written reply, descriptors not yet handed to sendReplyFds
    const writeFds = (buf: Buffer, fds: number[]): void => {
      if (fdGate) return void fdGate.push({ buf, fds });
      out.write(buf);
      fdGate = [];
      fdsInFlight = fds;
      out.whenEmpty(() => {
        fdsInFlight = []; // sendReplyFds owns them now (it closes each, sent or not)
        sendReplyFds(sock, fds, (err) => {
          if (err) session.close(`passing a descriptor: ${err.message}`);
          const waiting = fdGate ?? [];
          fdGate = null;
          for (let i = 0; i < waiting.length; i++) {
            const w = waiting[i];
            if (w.fds) {
              writeFds(w.buf, w.fds);
              fdGate!.push(...waiting.slice(i + 1));
              return;
            }
            session.send(w.buf);
          }
        });
      });
    };
    let held = 0; // the most this connection held at once, input or output: worth returning to the system at close
    const listener: ListenerName = spec.kind === 'unix' ? (spec.readOnly ? 'unix_ro' : 'unix') : spec.kind;
    this.metrics?.connectionOpened(listener);
    const session: Session = new Session({
      id: this.#nextSessionId++,
      readOnly: spec.readOnly,
      secure: spec.kind !== 'tcp',
      transport: spec.kind,
      authTypes: [sasl ? AuthType.SASL : AuthType.NONE],
      evidence,
      identity,
      maxMessageBytes: this.config.maxMessageBytes,
      maxPreOpenMessageBytes: this.config.maxPreOpenMessageBytes,
      maxReadOnlyMessageBytes: this.config.maxReadOnlyMessageBytes,
      maxEventRegistrations: this.config.maxEventRegistrations,
      maxClientRequests: this.config.maxClientRequests,
      onWrite: (buf) => {
        if (fdGate) return void fdGate.push({ buf });
        out.write(buf);
        if (out.queued > held) held = out.queued;
      },
      ...(spec.kind === 'unix' ? { onWriteFds: (buf: Buffer, fds: number[]) => writeFds(buf, fds), closeFd: (fd: number) => closeFds([fd]) } : {}),
      queuedOut: () => out.queued,
      streamHighWater: Math.min(STREAM_HIGH_WATER, Math.floor(this.config.maxOutputBytes / 2)),
      streamStallMs: this.config.streamStallTimeout * 1000,
      onBusy: (b) => {
        busy = b;
        reading();
      },
      onLargeFrame: () => this.#reclaimer.request(),
      onClose: (reason) => {
        this.metrics?.connectionClosed(listener);
        held = Math.max(held, session.buffered);
        this.sessions.delete(session);
        this.dispatcher.flushSuppressedDenials(session);
        if (!/^(eof|daemon stopping)/.test(reason)) this.#log(`connection ${session.id} (${evidence.source}) closed: ${reason}`);
        out.dispose();
        closeFds([...fdsInFlight, ...(fdGate ?? []).flatMap((w) => w.fds ?? [])]);
        fdsInFlight = [];
        fdGate = null;
        sock.destroy();
        if (held >= RECLAIM_BYTES) this.#reclaimer.request();
      },
      dispatch: this.dispatcher.dispatch,
      dispatchNow: this.dispatcher.dispatchNow,
      onUnknownProc: (proc, unknownProgram) => {
        this.metrics?.unknownProcedure();
        const what = unknownProgram === undefined ? `unknown procedure ${proc}` : `unknown program ${unknownProgram} (procedure ${proc})`;
        this.#logOf('rpc').warn(`${what} from ${evidence.source}`, { proc, user: session.identity?.user ?? evidence.user, session: session.id });
      },
    });
    // The transport proved who this is: the session may call nothing beyond AUTH_* until that login is on record.
    if (!sasl) session.loginRecordSeen = true;
    if (login) session.loginDurable = login;
    this.sessions.add(session);
    this.#keyOf.set(session, key);
    session.events.watch(session, this.#hub);
    const resume = (): void => {
      yielding = false;
      reading();
    };
    sock.on('data', (chunk: Buffer) => {
      const before = session.largeBytesIn;
      session.push(chunk);
      if (session.buffered > held) held = session.buffered;
      const large = session.largeBytesIn - before;
      if (large > 0 && !yielding && this.#turns.spend(large, resume)) {
        yielding = true;
        reading();
      }
    });
    sock.on('end', () => session.close('eof'));
    sock.on('error', (e) => session.close(`socket error: ${e.message}`));
    sock.on('close', () => session.close('eof'));
  }

  // Partial-frame deadline, and libvirtd's keepalive: ping after `interval` s of silence, drop after `count` unanswered pings.
  #keepaliveTick(): void {
    const { keepaliveInterval: interval, keepaliveCount: count } = this.config;
    const now = Date.now();
    this.#flushRefusals(now);
    const ping = encodeKeepalive(KeepaliveProc.PING);
    for (const s of this.sessions) {
      // The deadline does not run while we are the ones not reading (backpressure): see Session.setReadPaused.
      if (s.partialSince && !s.readPaused && now - s.partialSince > this.config.frameTimeout * 1000) {
        s.close(`incomplete message not finished in time (${s.buffered} of its bytes in ${this.config.frameTimeout} s, frameTimeout)`);
        continue;
      }
      if (!s.identity && now - s.openedAt > this.config.authTimeout * 1000) {
        s.close('not authenticated in time');
        continue;
      }
      if (s.identity && s.notOpenSince && now - s.notOpenSince > this.config.openTimeout * 1000) {
        s.close(`no CONNECT_OPEN within ${this.config.openTimeout} s (openTimeout)`);
        continue;
      }
      const due = s.keepaliveDue(now, interval, count);
      if (due === 'close') s.close('keepalive timeout');
      else if (due === 'ping') s.send(ping);
    }
  }

  // Connections that have not proven who they are: TLS handshakes in progress and sessions awaiting a SASL login.
  anonymousCount(): number {
    let n = this.#tlsHandshaking;
    for (const s of this.sessions) if (!s.identity) n++;
    return n;
  }

  // The same, for one source ('uid N' on unix sockets, the address on TCP and TLS).
  anonymousFrom(key: string): number {
    let n = this.#handshakingBy.get(key) ?? 0;
    for (const s of this.sessions) if (!s.identity && this.#keyOf.get(s) === key) n++;
    return n;
  }

  #authFor(spec: ListenerSpec): 'none' | 'sasl' {
    const c = this.config;
    if (spec.kind === 'tls') return c.authTls as 'none' | 'sasl';
    if (spec.kind === 'tcp') return 'none';
    return (spec.readOnly ? c.authUnixRo : c.authUnixRw) as 'none' | 'sasl';
  }

  // One line per login, with the evidence that proved it; the audit trail records the same. Returns the record's
  // durability, which the session waits for before it may call anything beyond AUTH_*.
  #logAuth(e: AuthEvent): Promise<void> | null {
    this.metrics?.login(e.method, e.outcome === 'success');
    const ev0 = e.evidence;
    const durable = this.audit?.auth({ id: 0, tenant: '', identity: { ...ev0, user: e.user, method: e.method, source: e.source } }, e.outcome === 'success', {
      ...(e.reason ? { reason: e.reason.slice(0, 256) } : {}),
      ...(e.lockout ? { lockout: true } : {}),
      ...(e.claimedUser !== undefined && e.claimedUser !== e.user ? { claimedUser: e.claimedUser.slice(0, 256) } : {}),
    });
    const ev = e.evidence;
    const proof = [
      ev.dn && `dn="${ev.dn}"`,
      ev.fingerprint && `fingerprint=${ev.fingerprint}`,
      ev.uid !== undefined && `uid=${ev.uid}`,
      ev.pid !== undefined && `pid=${ev.pid}`,
    ]
      .filter(Boolean)
      .join(' ');
    const line = `auth ${e.outcome}: method=${e.method} user=${JSON.stringify(e.user)} source=${e.source}${proof ? ' ' + proof : ''}${e.reason ? ` reason=${JSON.stringify(e.reason)}` : ''}`;
    const auth = this.#logOf('auth');
    if (e.outcome === 'success') auth.info(line, { user: e.user, method: e.method });
    else auth.warn(line, { user: e.user, method: e.method });
    return durable ?? null;
  }

  stats(): DaemonStats {
    return { clients: this.#open, sessions: this.sessions.size, outputBytes: this.#output.total };
  }
}

// A plain `(msg) => void` as a component logger: every level goes to it.
function asComponent(f: (m: string) => void): ComponentLog {
  const c = ((m: string) => f(m)) as ComponentLog;
  c.debug = c.info = c.warn = c.error = (m: string) => f(m);
  return c;
}

function unixIdentity(sock: net.Socket): Identity {
  const cred = peerCred(sock);
  return { user: userNameForUid(cred.uid), method: 'peercred', uid: cred.uid, gid: cred.gid, pid: cred.pid, source: `unix:pid=${cred.pid},uid=${cred.uid}` };
}

// Whom a connection is counted against: its local uid on the unix sockets, its address on TCP and TLS.
function sourceKey(raw: net.Socket, spec: ListenerSpec): string {
  return spec.kind === 'unix' ? `uid ${peerCred(raw).uid}` : (raw.remoteAddress ?? '?');
}

function bump(m: Map<string, number>, key: string, d: number): void {
  const n = (m.get(key) ?? 0) + d;
  if (n > 0) m.set(key, n);
  else m.delete(key);
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

// The path a listening unix socket fd is bound to (Node has no getsockname for an fd it opened): the socket's inode in
// /proc/self/net/unix. Only for the log; an unnamed or unlisted socket reads as 'fd N'.
function unixPathOfFd(fd: number): string {
  try {
    const ino = String(fs.fstatSync(fd).ino);
    for (const line of fs.readFileSync('/proc/self/net/unix', 'utf8').split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f[6] === ino && f[7]) return f[7];
    }
  } catch {
    // no /proc: the fd number will do
  }
  return `fd ${fd}`;
}

// Only ever unlink a leftover socket, never a regular file someone pointed us at.
const LISTEN_REASONS: Record<string, string> = { EADDRINUSE: 'address in use', EACCES: 'permission denied', EADDRNOTAVAIL: 'address not available' };

// "cannot listen on tls 127.0.0.1:16514: address in use": which listener, where, and why (errno kept as `errno`).
function listenError(spec: ListenerSpec, where: string, e: unknown): Error {
  const err = e as NodeJS.ErrnoException;
  if ((err as { code?: string }).code === 'VG_ERR_LISTEN') return err;
  return Object.assign(VG_ERR_LISTEN(spec.kind, where, LISTEN_REASONS[err.code ?? ''] ?? err.message), { errno: err.code });
}

// The daemon's view of the trail: refuses writes until the file trail is open (fail closed), holds events until then.
class LateTrail implements AuditTrail {
  inner: FileAuditTrail | AuditTrail | null;
  #early: { rec: EventRecord; done: (e?: unknown) => void }[] = [];

  constructor(inner?: AuditTrail) {
    this.inner = inner ?? null;
  }

  // Events raised before the file was open wait for flushEarly(): a run's first record is its daemon-start (verify
  // accepts an epoch boundary after a crash only at a run's start).
  open(t: FileAuditTrail): void {
    this.inner = t;
  }

  flushEarly(): void {
    const t = this.inner;
    if (!t) return;
    for (const { rec, done } of this.#early.splice(0)) t.event(rec).then(() => done(), done);
  }

  get available(): boolean {
    return this.inner?.available ?? false;
  }

  intent(r: IntentRecord): Promise<DurableRef | void> {
    return this.inner ? this.inner.intent(r) : Promise.reject(VG_ERR_AUDIT_UNAVAILABLE('not open yet'));
  }

  outcome(r: OutcomeRecord): Promise<void> {
    return this.inner ? this.inner.outcome(r) : Promise.reject(VG_ERR_AUDIT_UNAVAILABLE('not open yet'));
  }

  event(r: EventRecord): Promise<void> {
    if (this.inner && (this.#early.length === 0 || r.name === 'daemon-start')) return this.inner.event(r);
    return new Promise((resolve, reject) => this.#early.push({ rec: r, done: (e) => (e === undefined ? resolve() : reject(e)) }));
  }

  async close(): Promise<void> {
    const t = this.inner;
    if (t && 'close' in t && typeof t.close === 'function') await (t as FileAuditTrail).close();
  }
}
