// SPDX-License-Identifier: Apache-2.0
// libvirt connection URIs -> where to connect and the name sent in CONNECT_OPEN, pure (remote_driver.c rules).
import { VG_ERR_USAGE } from '../common/errors';

export const DEFAULT_SOCKET = '/run/virtgate/virtgate-sock';
export const DEFAULT_SOCKET_RO = '/run/virtgate/virtgate-sock-ro';
export const DEFAULT_URI = `test+unix:///default?socket=${DEFAULT_SOCKET}`;
export const DEFAULT_TCP_PORT = 16509; // LIBVIRTD_TCP_PORT
export const DEFAULT_TLS_PORT = 16514; // LIBVIRTD_TLS_PORT

export type Transport = 'unix' | 'tcp' | 'tls';

export interface ConnectTarget {
  uri: string;
  driver: string; // scheme without "+transport"
  transport: Transport;
  host: string | null; // brackets removed from IPv6 literals
  port: number | null; // tcp/tls only, defaults applied
  socketPath: string | null; // unix only
  pkiPath: string | null; // tls: ?pkipath=DIR
  noVerify: boolean; // tls: ?no_verify=1 (libvirt then only warns about a bad server certificate)
  openName: string; // CONNECT_OPEN's name argument
}

// Query parameters the remote driver consumes itself and never forwards (remote_driver.c:797-816).
const CLIENT_ONLY = new Set([
  'name',
  'command',
  'socket',
  'auth',
  'sshauth',
  'netcat',
  'keyfile',
  'pkipath',
  'known_hosts',
  'known_hosts_verify',
  'tls_priority',
  'mode',
  'proxy',
  'no_sanity',
  'no_verify',
  'no_tty',
  'authfile',
]);

const UNSUPPORTED_TRANSPORTS = new Set(['ssh', 'libssh', 'libssh2', 'ext']);

// scheme ":" [ "//" authority ] path [ "?" query ] [ "#" fragment ]  (RFC 3986 appendix B, scheme required)
const URI_RE = /^([A-Za-z][A-Za-z0-9+.-]*):(?:\/\/([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$/;

function unescape(s: string, uri: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw VG_ERR_USAGE(`invalid escape in URI '${uri}'`);
  }
}

function splitAuthority(auth: string, uri: string): { host: string | null; port: number | null } {
  const hostport = auth.slice(auth.lastIndexOf('@') + 1); // user info is not used by any transport we speak
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(hostport);
  if (!m) throw VG_ERR_USAGE(`invalid host in URI '${uri}'`);
  const host = m[1].startsWith('[') ? m[1].slice(1, -1) : m[1];
  let port: number | null = null;
  if (m[2]) {
    port = Number(m[2]);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw VG_ERR_USAGE(`invalid port in URI '${uri}'`);
  }
  return { host: host === '' ? null : host, port };
}

export function parseUri(uri: string, opts: { readonly?: boolean } = {}): ConnectTarget {
  const m = URI_RE.exec(uri);
  if (!m) throw VG_ERR_USAGE(`invalid URI '${uri}': expected driver[+transport]://[host[:port]]/path`);
  const [, scheme, authority, path, query, fragment] = m;
  const plus = scheme.indexOf('+');
  const driver = plus < 0 ? scheme : scheme.slice(0, plus);
  const explicit = plus < 0 ? null : scheme.slice(plus + 1).toLowerCase();
  const { host, port } = authority === undefined ? { host: null, port: null } : splitAuthority(authority, uri);

  let transport: Transport;
  if (explicit === null)
    transport = host ? 'tls' : 'unix'; // remote_sockets.c: no transport + a host means TLS
  else if (explicit === 'unix' || explicit === 'tcp' || explicit === 'tls') transport = explicit;
  else if (UNSUPPORTED_TRANSPORTS.has(explicit)) throw VG_ERR_USAGE(`transport '${explicit}' is not supported by virtgate (use unix, tcp or tls)`);
  else throw VG_ERR_USAGE(`unknown transport '${explicit}' in URI '${uri}'`);
  if (transport !== 'unix' && !host) throw VG_ERR_USAGE(`transport '${transport}' needs a host in URI '${uri}'`);

  // libvirt matches parameter names case-insensitively and forwards the others with their original escaping.
  const params = new Map<string, string>();
  const forwarded: string[] = [];
  for (const part of (query ?? '').split(/[&;]/)) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = unescape(eq < 0 ? part : part.slice(0, eq), uri).toLowerCase();
    const value = eq < 0 ? '' : unescape(part.slice(eq + 1).replace(/\+/g, ' '), uri);
    if (CLIENT_ONLY.has(key)) params.set(key, value);
    else forwarded.push(part);
  }

  let openName: string;
  if (params.has('name')) openName = params.get('name')!;
  else if (driver.toLowerCase() === 'remote')
    openName = ''; // "let the server probe": present but empty
  else {
    openName = `${driver}://${path}`;
    if (forwarded.length > 0) openName += `?${forwarded.join('&')}`;
    if (fragment !== undefined && fragment !== '') openName += `#${fragment}`;
  }

  const defaultPort = transport === 'tls' ? DEFAULT_TLS_PORT : DEFAULT_TCP_PORT;
  return {
    uri,
    driver,
    transport,
    host: transport === 'unix' ? null : host,
    port: transport === 'unix' ? null : (port ?? defaultPort),
    socketPath: transport === 'unix' ? params.get('socket') || (opts.readonly ? DEFAULT_SOCKET_RO : DEFAULT_SOCKET) : null,
    pkiPath: transport === 'tls' ? params.get('pkipath') || null : null,
    noVerify: params.get('no_verify') === '1',
    openName,
  };
}
