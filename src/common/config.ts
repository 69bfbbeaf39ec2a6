// SPDX-License-Identifier: Apache-2.0
// Front-end configuration: one DEFAULTS object, a closed schema, validate then deep-freeze [pg defaults, fastify].
import path from 'node:path';
import { VG_ERR_CONFIG_INVALID } from './errors';
import { parseFilters, parseOutputs } from './log';
import { IDENTITY_SOURCES, NAME_RULE, parseQualified } from './names';

export const DEFAULTS = {
  home: '.virtgate', // state root: run/ sockets, lib/ domain state, etc/ config and PKI, log/
  unixSocket: '', // read-write socket; '' = HOME/run/virtgate-sock
  unixSocketRo: '', // read-only socket; '' = HOME/run/virtgate-sock-ro
  unixSocketMode: 0o660, // group-restricted, like a libvirt socket without polkit
  unixSocketRoMode: 0o666, // read-only socket is world-connectable, as libvirtd's
  helperSocket: '', // '' = HOME/run/helper-sock
  tcp: '', // 'host:port' for plain TCP (development only); '' = off
  tcpAllowNonLoopback: false, // plain TCP outside loopback leaks everything: refuse unless forced
  maxClients: 5000, // connections across all listeners, TLS handshakes included (libvirtd max_clients)
  maxClientsPerUid: 1024, // connections per local uid across the unix sockets
  maxClientsPerSource: 256, // connections per source address across TCP and TLS
  maxAnonymousClients: 20, // connections not yet authenticated (libvirtd max_anonymous_clients)
  maxAnonymousClientsPerSource: 10, // of those, per source address or local uid (root excepted): one source cannot take them all
  openTimeout: 30, // seconds a connection may stay without a successful CONNECT_OPEN before it is dropped
  maxClientRequests: 32, // calls in flight per connection before we stop reading it
  maxMessageBytes: 32 * 1024 * 1024, // VIR_NET_MESSAGE_MAX: opened, authenticated read-write connections
  maxPreOpenMessageBytes: 64 * 1024, // until a connection is authenticated and opened (libvirt sends no large message before)
  maxReadOnlyMessageBytes: 1024 * 1024, // read-only connections (the 0666 socket, or opened with VIR_CONNECT_RO)
  maxOutputBytes: 8 * 1024 * 1024, // queued replies/events per client (real bytes) before it is dropped as not reading
  maxTotalOutputBytes: 256 * 1024 * 1024, // queued output across all clients; past it the client with the most queued is dropped
  maxEventRegistrations: 256, // event callbacks per connection
  keepaliveInterval: 5, // seconds of silence before we ping (libvirtd default)
  keepaliveCount: 5, // unanswered pings before we close (libvirtd default)
  frameTimeout: 30, // seconds a client may take to finish one message before it is dropped
  streamStallTimeout: 30, // seconds an upload stream may send nothing before it fails (its volume untouched)
  helperMaxInFlight: 4096, // helper calls queued across all clients
  tls: '', // 'host:port' for mutual-TLS clients (libvirt's port is 16514); '' = off
  tlsPortFallback: false, // development (npm start): if the tls port is taken, listen on a free port instead of failing
  tlsCaFile: '', // CA bundle that signs client certificates; '' = HOME/pki/ca/cacert.pem
  tlsCertFile: '', // '' = HOME/pki/server/servercert.pem
  tlsKeyFile: '', // '' = HOME/pki/server/private/serverkey.pem
  tlsCrlFile: '', // '' = HOME/pki/ca/cacrl.pem when that file exists; revocation is checked only with a CRL
  tlsAllowedDnList: ['*'], // client DN globs, e.g. ["O=acme,CN=*"] (libvirt tls_allowed_dn_list); ["*"] = any certificate from the CA, [] = no one
  tlsMinVersion: 'TLSv1.2', // TLSv1.2 or TLSv1.3
  tlsMaxVersion: 'TLSv1.3', // TLSv1.2 avoids the TLS 1.3 session-ticket race with libvirt's confirmation read (libvirt-wire.md §8.4)
  tlsCiphers: '', // OpenSSL cipher list for TLS 1.2; '' = Node's default
  tlsUserField: 'CN', // the client certificate's subject attribute that names the user (CN, UID, emailAddress, ...)
  tlsHandshakeTimeout: 10, // seconds a client may take to finish the TLS handshake before it is dropped
  vncListen: '', // address of the per-VM VNC listeners for remote users (VeNCrypt X509, the TLS listener's CA and rules; docs/remote-display.md); '' = off
  vncPortMin: 5900, // the per-VM VNC listeners take the first free port of vncPortMin..vncPortMax
  vncPortMax: 5999,
  vncMaxClients: 64, // VNC connections at once across all VMs, handshakes included
  vncMaxClientsPerVm: 4, // of those, per VM
  vncHandshakeTimeout: 10, // seconds from a VNC connection's first byte to its display: RFB, TLS, policy and the VM's VNC
  authUnixRw: 'none', // 'none': the peer's uid (SO_PEERCRED) is the identity; 'sasl': a password login on top
  authUnixRo: 'none', // as authUnixRw, for the read-only socket
  authTcp: 'none', // plain TCP is loopback-only development; SASL there would send secrets without an SSF layer
  authTls: 'none', // 'none': the client certificate is the identity; 'sasl': certificate plus password login (user from SASL)
  usersFile: '', // SASL users (virtgate user add); '' = HOME/etc/users.json
  authTimeout: 30, // seconds a connection may stay unauthenticated before it is dropped
  authDelayBaseMs: 250, // SASL: after a failure the next attempt for that user, or from that source, waits this long, doubling per failure
  authDelayMaxMs: 8000, // ... up to this; attempts for one user run one at a time, on any number of connections
  authLockoutFailures: 10, // failed logins of an existing user within authLockoutWindow that lock it; 0 = never lock
  authLockoutWindow: 900, // seconds
  authLockoutDuration: 900, // seconds a locked user stays locked (HOME/etc/lockouts.json); 0 = until `virtgate user unlock`
  policyFile: '', // Casbin policy CSV (reloaded on SIGHUP and on change); '' = HOME/etc/policy.csv, built-in default while absent
  hostAdmin: '', // one more built-in host admin (unix:NAME or x509:NAME), like unix:root; `virtgate start` run by a non-root user sets its user; '' = none
  policyModel: '', // Casbin model file; '' = the built-in model (src/policy/model.ts)
  audit: true, // durable audit trail of every write, denial and login; false only for measurements (writes then go unrecorded)
  auditLog: '', // the audit log (rotated files sit next to it); '' = HOME/log/audit.log
  auditKey: '', // the front end's forward-secure sealing state, apart from the log (mode 0600; anchor at KEY.anchor); '' = HOME/keys/audit.key
  auditVerifyKey: '', // the verification key (seeds), out of the front end's reach when set up as root; '' = HOME/lib/audit-verify.key
  auditEpochRecords: 1000, // the sealing key evolves (and the old one is erased) after this many records...
  auditEpochSeconds: 900, // ...or after this many seconds of an epoch that sealed a record, whichever first
  auditMaxBytes: 64 * 1024 * 1024, // rotate the audit log at this size (rotated files are FILE.<first seq>)
  auditKeepFiles: 10, // rotated audit files kept; older ones are pruned after a log-pruned record; 0 = keep all
  auditCopy: '', // also copy each record to 'console' (stderr, journald under systemd), 'syslog' (logger(1)) or 'console,syslog'; '' = none
  // issue 15 M: Prometheus metrics (docs/metrics.md)
  metrics: true, // serve /metrics on the metrics listener(s); false = no registry, no listener, no instrumentation
  metricsSocket: '', // unix socket for scrapes (owned by the front end's user); '' = HOME/run/metrics-sock
  metricsSocketMode: 0o600, // only the front end's user (and root) may scrape; 0660 lets its group in
  metricsListen: '', // also HOST:PORT on TCP for a Prometheus server (plain HTTP, no auth: loopback only); '' = off
  metricsAllowNonLoopback: false, // metrics outside loopback show who-does-what volumes to the network: refuse unless forced
  metricsMaxScrapes: 4, // scrapes answered at once; more get 503 (a scrape renders every series)
  // issue 15 P: policy (and later SASL users) in PostgreSQL, shared by a fleet (docs/fleet-policy.md)
  policyStore: 'file', // 'file' (policyFile) or 'postgresql' (policyDatabase, LISTEN/NOTIFY; the cache when it is down)
  policyDatabase: '', // libpq-style URL or key=value string (host, port, dbname, user, sslmode); never a password
  policyDatabasePasswordFile: '', // the database password (one line; mode 0600); '' = PGPASSFILE / ~/.pgpass, or none
  policyCache: '', // last good policy read from the database (written after each load, 0600); '' = HOME/cache/policy.csv (HOME/lib is the helper's)
  usersStore: 'file', // SASL users: 'file' (usersFile) or 'postgresql' (the policyDatabase; cached in HOME/cache/users.json)
  // issue 15 L: logs (docs/logging.md) and virt-admin (docs/virt-admin.md)
  logFilters: '', // per-component levels, libvirt syntax: "3:rpc 1:policy" or "warning:rpc debug:policy"; unmatched components log at info
  logOutputs: '', // "LEVEL:journald", "LEVEL:stderr", "LEVEL:file:/PATH", space-separated; '' = 2:journald when journalSocket exists, else 2:stderr
  logRateLimit: 50, // lines per component per second before suppression (then one "N lines suppressed" line); 0 = unlimited
  journalSocket: '/run/systemd/journal/socket', // journald's native socket (a test points it at its own listener)
  adminSocket: '', // virt-admin's socket (root and host admins only); '' = HOME/run/virtgate-admin-sock
  adminSocketMode: 0o600, // only the front end's user (and root) may connect; the peer's uid is checked as well
  // issue 15 F: audit forwarding to a central syslog collector (RFC 5424 over TLS, RFC 5425; docs/audit-forwarding.md)
  auditForward: '', // collector HOST:PORT (rsyslog imtcp with TLS, usually port 6514); '' = off
  auditForwardCa: '', // CA that signs the collector's certificate; '' = HOME/pki/ca/cacert.pem
  auditForwardCert: '', // this host's client certificate; '' = HOME/pki/forward/clientcert.pem (virtgate pki client --dir HOME/pki/forward)
  auditForwardKey: '', // its key; '' = HOME/pki/forward/private/clientkey.pem
  auditForwardName: '', // the name the collector's certificate must carry; '' = the host of auditForward
  auditForwardCursor: '', // what the collector has (persisted, atomic); '' = AUDITLOG.forward-cursor
  auditHost: '', // the host name sealed into every record (central verify groups by it); '' = os.hostname()
} as const;

type Value<V> = V extends boolean ? boolean : V extends number ? number : V extends readonly string[] ? string[] : string;
export type Config = { -readonly [K in keyof typeof DEFAULTS]: Value<(typeof DEFAULTS)[K]> };

const INT_RANGES: Partial<Record<keyof Config, [number, number]>> = {
  unixSocketMode: [0, 0o777],
  unixSocketRoMode: [0, 0o777],
  maxClients: [1, 100000],
  maxClientsPerUid: [1, 100000],
  maxClientsPerSource: [1, 100000],
  maxAnonymousClients: [1, 100000],
  maxAnonymousClientsPerSource: [1, 100000],
  openTimeout: [1, 3600],
  maxClientRequests: [1, 1024],
  maxMessageBytes: [28, 32 * 1024 * 1024],
  maxPreOpenMessageBytes: [4096, 32 * 1024 * 1024],
  maxReadOnlyMessageBytes: [4096, 32 * 1024 * 1024],
  maxOutputBytes: [64 * 1024, 1024 * 1024 * 1024],
  maxTotalOutputBytes: [1024 * 1024, 64 * 1024 * 1024 * 1024],
  maxEventRegistrations: [1, 100000],
  keepaliveInterval: [0, 3600],
  keepaliveCount: [0, 100],
  frameTimeout: [1, 3600],
  streamStallTimeout: [1, 3600],
  helperMaxInFlight: [1, 1000000],
  tlsHandshakeTimeout: [1, 600],
  vncPortMin: [1, 65535],
  vncPortMax: [1, 65535],
  vncMaxClients: [1, 100000],
  vncMaxClientsPerVm: [1, 1000],
  vncHandshakeTimeout: [1, 600],
  authTimeout: [1, 3600],
  authDelayBaseMs: [0, 60_000],
  authDelayMaxMs: [0, 600_000],
  authLockoutFailures: [0, 1000],
  authLockoutWindow: [1, 30 * 86400],
  authLockoutDuration: [0, 366 * 86400],
  auditEpochRecords: [1, 1_000_000_000],
  auditEpochSeconds: [1, 7 * 24 * 3600],
  auditMaxBytes: [64 * 1024, 1024 * 1024 * 1024 * 1024],
  auditKeepFiles: [0, 1_000_000],
  metricsSocketMode: [0, 0o777],
  metricsMaxScrapes: [1, 64],
  logRateLimit: [0, 1_000_000],
  adminSocketMode: [0, 0o777],
};

const TLS_VERSIONS = ['TLSv1.2', 'TLSv1.3'];

// libvirtd.conf keys whose virtgate option is not just the camelCase spelling (libvirtd.conf(5) names).
const LIBVIRTD_KEYS: Record<string, keyof Config> = {
  listen_tls: 'tls',
  listen_tcp: 'tcp',
  tls_port: 'tls',
  tcp_port: 'tcp',
  listen_addr: 'tls',
  unix_sock_rw_perms: 'unixSocketMode',
  unix_sock_ro_perms: 'unixSocketRoMode',
  unix_sock_dir: 'unixSocket',
  key_file: 'tlsKeyFile',
  cert_file: 'tlsCertFile',
  ca_file: 'tlsCaFile',
  crl_file: 'tlsCrlFile',
  tls_priority: 'tlsCiphers',
  auth_unix_rw: 'authUnixRw',
  auth_unix_ro: 'authUnixRo',
  auth_tcp: 'authTcp',
  auth_tls: 'authTls',
};

// Optimal string alignment distance (a swap of neighbours counts once): typos such as maxClinets.
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

// The option an unknown key most likely meant: libvirtd's snake_case spelling, a known libvirtd key, or a near typo.
export function suggestOption(key: string): string | undefined {
  const camel = key.toLowerCase().replace(/_+([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  const known = Object.keys(DEFAULTS);
  const exact = known.find((k) => k.toLowerCase() === camel.toLowerCase());
  if (exact) return exact;
  if (Object.hasOwn(LIBVIRTD_KEYS, key.toLowerCase())) return LIBVIRTD_KEYS[key.toLowerCase()];
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const dist = editDistance(camel.toLowerCase(), k.toLowerCase());
    if (dist < bestD) [best, bestD] = [k, dist];
  }
  return bestD <= (camel.length > 12 ? 3 : 2) ? best : undefined;
}

interface Problem {
  where: string;
  what: string;
}

// All problems at once, so a file is fixed in one pass; `problems` keeps them one per entry for callers that list them.
function configError(problems: Problem[]): Error {
  const lineOf = (p: Problem): number => Number(/:(\d+)(:|$)/.exec(p.where)?.[1] ?? Infinity);
  const list = [...problems].sort((a, b) => lineOf(a) - lineOf(b)); // in file order; flag problems last
  const lines = list.map((p) => `${p.where}: ${p.what}`);
  const e = list.length === 1 ? VG_ERR_CONFIG_INVALID(list[0].where, list[0].what) : VG_ERR_CONFIG_INVALID(`${list.length} problems`, lines.join('; '));
  return Object.assign(e, { problems: lines });
}

export function resolveConfig(input: Partial<Record<string, unknown>>): Readonly<Config> {
  return resolveInto(input, [], new Map());
}

// `at` names where each key came from (FILE:LINE), for the messages.
function resolveInto(input: Partial<Record<string, unknown>>, problems: Problem[], at: Map<string, string>): Readonly<Config> {
  const out: Record<string, unknown> = { ...DEFAULTS };
  const bad = (k: string, what: string): void => void problems.push({ where: at.has(k) ? `${at.get(k)}: ${k}` : k, what });
  for (const [k, v] of Object.entries(input)) {
    if (v === undefined) continue;
    if (!(k in DEFAULTS)) {
      const hint = suggestOption(k);
      bad(k, `unknown option${hint ? `; did you mean ${hint}?` : ''}`);
      continue;
    }
    const want = typeof DEFAULTS[k as keyof Config];
    if (Array.isArray(DEFAULTS[k as keyof Config])) {
      if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) bad(k, `expected a list of strings, got ${JSON.stringify(v)}`);
      else out[k] = v;
      continue;
    }
    if (typeof v !== want) {
      bad(k, `expected a ${want}, got ${JSON.stringify(v)}`);
      continue;
    }
    const range = INT_RANGES[k as keyof Config];
    if (range && (!Number.isInteger(v) || (v as number) < range[0] || (v as number) > range[1])) {
      bad(k, `must be an integer in [${range[0]}, ${range[1]}]`);
      continue;
    }
    out[k] = v;
  }
  const home = path.resolve(out.home as string);
  out.home = home;
  out.unixSocket ||= path.join(home, 'run', 'virtgate-sock');
  out.unixSocketRo ||= path.join(home, 'run', 'virtgate-sock-ro');
  out.helperSocket ||= path.join(home, 'run', 'helper-sock');
  out.policyFile ||= path.join(home, 'etc', 'policy.csv');
  for (const k of ['tcp', 'tls'] as const) {
    if (out[k] && !hostPort(out[k] as string)) bad(k, `expected HOST:PORT, got '${out[k] as string}'`);
  }
  if (out.vncListen !== '' && !/^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]*:[0-9a-fA-F:.]*)$/.test(out.vncListen as string))
    bad('vncListen', `expected an IPv4 or IPv6 address (e.g. 0.0.0.0, 127.0.0.1, ::), got '${out.vncListen as string}'`);
  if ((out.vncPortMax as number) < (out.vncPortMin as number)) bad('vncPortMax', 'must not be below vncPortMin');
  if (!/^[A-Za-z][A-Za-z0-9.]{0,63}$/.test(out.tlsUserField as string)) bad('tlsUserField', 'expected a subject attribute name such as CN or UID');
  for (const k of ['authUnixRw', 'authUnixRo', 'authTcp', 'authTls'] as const) {
    if (out[k] !== 'none' && out[k] !== 'sasl') bad(k, "expected 'none' or 'sasl'");
  }
  if (out.authTcp === 'sasl') bad('authTcp', 'SASL over plain TCP would need a SASL security layer; use TLS (authTls = "sasl")');
  out.usersFile ||= path.join(home, 'etc', 'users.json');
  const admin = out.hostAdmin as string;
  if (admin !== '' && !parseQualified(admin)) bad('hostAdmin', `expected SOURCE:NAME (${IDENTITY_SOURCES.join(', ')}; NAME ${NAME_RULE}), got '${admin}'`);
  if ((out.maxTotalOutputBytes as number) < (out.maxOutputBytes as number)) bad('maxTotalOutputBytes', 'must not be below maxOutputBytes');
  if ((out.authDelayMaxMs as number) < (out.authDelayBaseMs as number)) bad('authDelayMaxMs', 'must not be below authDelayBaseMs');
  out.auditLog ||= path.join(home, 'log', 'audit.log');
  out.auditKey ||= path.join(home, 'keys', 'audit.key');
  out.auditVerifyKey ||= path.join(home, 'lib', 'audit-verify.key');
  if ((out.auditCopy as string).split(',').some((t) => t !== '' && t !== 'console' && t !== 'syslog'))
    bad('auditCopy', `expected '', 'console', 'syslog' or 'console,syslog', got '${out.auditCopy as string}'`);
  out.metricsSocket ||= path.join(home, 'run', 'metrics-sock');
  if (out.metricsListen) {
    const hp = hostPort(out.metricsListen as string);
    if (!hp) bad('metricsListen', `expected HOST:PORT, got '${out.metricsListen as string}'`);
    else if (!out.metricsAllowNonLoopback && !isLoopbackHost(hp.host))
      bad('metricsListen', `'${hp.host}' is not a loopback address; metrics are plain HTTP without authentication (metricsAllowNonLoopback = true to force)`);
  }
  for (const k of ['tlsMinVersion', 'tlsMaxVersion'] as const) {
    if (!TLS_VERSIONS.includes(out[k] as string)) bad(k, `expected one of ${TLS_VERSIONS.join(', ')}`);
  }
  if (out.policyStore !== 'file' && out.policyStore !== 'postgresql') bad('policyStore', "expected 'file' or 'postgresql'");
  if (out.policyStore === 'postgresql' && out.policyDatabase === '') bad('policyDatabase', "policyStore = 'postgresql' needs policyDatabase");
  if (passwordIn(out.policyDatabase as string))
    bad('policyDatabase', 'holds a password: put it in policyDatabasePasswordFile (or PGPASSFILE), never in the config');
  if (out.usersStore !== 'file' && out.usersStore !== 'postgresql') bad('usersStore', "expected 'file' or 'postgresql'");
  if (out.usersStore === 'postgresql' && out.policyDatabase === '') bad('policyDatabase', "usersStore = 'postgresql' needs policyDatabase");
  out.policyCache ||= path.join(home, 'cache', 'policy.csv');
  for (const [k, parse] of [
    ['logFilters', parseFilters],
    ['logOutputs', parseOutputs],
  ] as const) {
    try {
      parse(out[k] as string);
    } catch (e) {
      bad(k, (e as Error).message);
    }
  }
  if (!(out.journalSocket as string).startsWith('/')) bad('journalSocket', 'expected an absolute path');
  out.adminSocket ||= path.join(home, 'run', 'virtgate-admin-sock');
  if (out.auditForward && !hostPort(out.auditForward as string)) bad('auditForward', `expected HOST:PORT, got '${out.auditForward as string}'`);
  out.auditForwardCa ||= path.join(home, 'pki', 'ca', 'cacert.pem');
  out.auditForwardCert ||= path.join(home, 'pki', 'forward', 'clientcert.pem');
  out.auditForwardKey ||= path.join(home, 'pki', 'forward', 'private', 'clientkey.pem');
  out.auditForwardCursor ||= `${out.auditLog as string}.forward-cursor`;
  if (problems.length) throw configError(problems);
  out.tlsCaFile ||= path.join(home, 'pki', 'ca', 'cacert.pem');
  out.tlsCertFile ||= path.join(home, 'pki', 'server', 'servercert.pem');
  out.tlsKeyFile ||= path.join(home, 'pki', 'server', 'private', 'serverkey.pem');
  out.tlsAllowedDnList = Object.freeze([...(out.tlsAllowedDnList as string[])]);
  return Object.freeze(out as Config);
}

// A libpq connection string that carries a password (URL user:password@, ?password=, or password=...): refused.
export function passwordIn(conn: string): boolean {
  if (/^postgres(ql)?:\/\//.test(conn)) return /^postgres(ql)?:\/\/[^/@?]*:[^/@?]*@/.test(conn) || /[?&]password=/i.test(conn);
  return /(^|\s)password\s*=/i.test(conn);
}

export type AuthLimits = Pick<Config, 'authDelayBaseMs' | 'authDelayMaxMs' | 'authLockoutFailures' | 'authLockoutWindow' | 'authLockoutDuration'>;

function hostPort(s: string): { host: string; port: number } | null {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:]+):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[2]) : NaN;
  return !m || port > 65535 ? null : { host: m[1].replace(/^\[|\]$/g, ''), port };
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export function parseHostPort(s: string, key: string): { host: string; port: number } {
  const hp = hostPort(s);
  if (!hp) throw VG_ERR_CONFIG_INVALID(key, `expected HOST:PORT, got '${s}'`);
  return hp;
}

// libvirtd.conf-style text: `key = value` lines, `#` comments; values are integers (0o/0x allowed), "strings", true/false,
// and one-line lists of strings ["a", "b"]. Every bad line is reported, not only the first.
export function parseConfigText(text: string, source = 'config'): Record<string, unknown> {
  const problems: Problem[] = [];
  const { values } = parseLines(text, source, problems);
  if (problems.length) throw configError(problems);
  return values;
}

// A config file's text plus overrides (flags, which win) -> the resolved config; syntax and option problems of the
// whole file are reported together, each with its FILE:LINE.
export function loadConfigText(text: string, source: string, overrides: Partial<Record<string, unknown>> = {}): Readonly<Config> {
  const problems: Problem[] = [];
  const { values, at } = parseLines(text, source, problems);
  for (const k of Object.keys(overrides)) at.delete(k);
  return resolveInto({ ...values, ...overrides }, problems, at);
}

function parseLines(text: string, source: string, problems: Problem[]): { values: Record<string, unknown>; at: Map<string, string> } {
  const values: Record<string, unknown> = {};
  const at = new Map<string, string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/^\s+|\s+$/g, '');
    const where = `${source}:${i + 1}`;
    if (line === '' || line.startsWith('#')) return;
    const m = /^([A-Za-z][A-Za-z0-9_]*)\s*=\s*(.*?)\s*(#.*)?$/.exec(line);
    if (!m) return void problems.push({ where, what: `expected key = value, got '${line}'` });
    const [, key, value] = m;
    if (key in values) return void problems.push({ where, what: `${key} set twice (first at ${at.get(key)})` });
    at.set(key, where);
    if (/^"([^"\\]|\\.)*"$/.test(value)) values[key] = JSON.parse(value);
    else if (/^\[\s*("([^"\\]|\\.)*"\s*(,\s*"([^"\\]|\\.)*"\s*)*)?\]$/.test(value)) values[key] = JSON.parse(value);
    else if (value === 'true' || value === 'false') values[key] = value === 'true';
    else if (/^(0o[0-7]+|0x[0-9a-fA-F]+|-?\d+)$/.test(value)) values[key] = Number(value);
    else {
      at.delete(key);
      problems.push({ where, what: `${key}: cannot parse value '${value}' (quote strings)` });
    }
  });
  return { values, at };
}
