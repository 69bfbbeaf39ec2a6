// SPDX-License-Identifier: Apache-2.0
// libvirt's admin program (src/admin/admin_protocol.x, what virt-admin speaks), pure: numbers and codecs.
import { type Codec, XdrReader, XdrWriter } from '../common/xdr';
import { type TypedParam, typedParams } from './typed-params';

export const ADMIN_PROGRAM = 0x06900690;
export const ADMIN_PROTOCOL_VERSION = 1;

export const AdminLimits = {
  STRING_MAX: 4194304, // ADMIN_STRING_MAX
  SERVER_LIST_MAX: 16384,
  THREADPOOL_PARAMETERS_MAX: 32,
  CLIENT_LIST_MAX: 16384,
  CLIENT_INFO_PARAMETERS_MAX: 64,
  CLIENT_LIMITS_MAX: 32,
} as const;

export const AdminProc = {
  CONNECT_OPEN: 1,
  CONNECT_CLOSE: 2,
  CONNECT_GET_LIB_VERSION: 3,
  CONNECT_LIST_SERVERS: 4,
  CONNECT_LOOKUP_SERVER: 5,
  SERVER_GET_THREADPOOL_PARAMETERS: 6,
  SERVER_SET_THREADPOOL_PARAMETERS: 7,
  SERVER_LIST_CLIENTS: 8,
  SERVER_LOOKUP_CLIENT: 9,
  CLIENT_GET_INFO: 10,
  CLIENT_CLOSE: 11,
  SERVER_GET_CLIENT_LIMITS: 12,
  SERVER_SET_CLIENT_LIMITS: 13,
  CONNECT_GET_LOGGING_OUTPUTS: 14,
  CONNECT_GET_LOGGING_FILTERS: 15,
  CONNECT_SET_LOGGING_OUTPUTS: 16,
  CONNECT_SET_LOGGING_FILTERS: 17,
  SERVER_UPDATE_TLS_FILES: 18,
  CONNECT_SET_DAEMON_TIMEOUT: 19,
} as const;

// virClientTransport
export const ClientTransport = { UNIX: 0, TCP: 1, TLS: 2 } as const;

// The typed parameter names libvirt's admin API uses (include/libvirt/libvirt-admin.h).
export const AdminParam = {
  THREADPOOL: ['minWorkers', 'maxWorkers', 'nWorkers', 'freeWorkers', 'prioWorkers', 'jobQueueDepth'],
  CLIENTS_MAX: 'nclients_max',
  CLIENTS_CURRENT: 'nclients',
  CLIENTS_UNAUTH_MAX: 'nclients_unauth_max',
  CLIENTS_UNAUTH_CURRENT: 'nclients_unauth',
} as const;

export interface AdminClient {
  srv: string;
  id: bigint;
  timestamp: bigint; // connection time, seconds since the epoch
  transport: number;
}

const str = AdminLimits.STRING_MAX;
export const adminString = {
  encode: (w: XdrWriter, v: string): void => void w.string(v, str),
  decode: (r: XdrReader, what = 'string'): string => r.string(str, what),
};

// admin_nonnull_client: { admin_nonnull_server srv { name }; unsigned hyper id; hyper timestamp; unsigned int transport }
export const adminClientCodec: Codec<AdminClient> = {
  encode: (w, c) => void w.string(c.srv, str).u64(c.id).i64(c.timestamp).u32(c.transport),
  decode: (r) => ({ srv: r.string(str, 'server name'), id: r.u64('client id'), timestamp: r.i64('timestamp'), transport: r.u32('transport') }),
};

export const paramsOf = (max: number): Codec<TypedParam[]> => typedParams(max);

// Argument shapes, decoded strictly (trailing bytes are the caller's ensureConsumed).
export const AdminArgs = {
  flags: (r: XdrReader) => ({ flags: r.u32('flags') }),
  listServers: (r: XdrReader) => ({ needResults: r.u32('need_results'), flags: r.u32('flags') }),
  lookupServer: (r: XdrReader) => ({ name: r.string(str, 'name'), flags: r.u32('flags') }),
  server: (r: XdrReader) => ({ srv: r.string(str, 'server'), flags: r.u32('flags') }),
  setServerParams: (r: XdrReader, max: number) => ({ srv: r.string(str, 'server'), params: typedParams(max).decode(r), flags: r.u32('flags') }),
  listClients: (r: XdrReader) => ({ srv: r.string(str, 'server'), needResults: r.u32('need_results'), flags: r.u32('flags') }),
  lookupClient: (r: XdrReader) => ({ srv: r.string(str, 'server'), id: r.u64('id'), flags: r.u32('flags') }),
  client: (r: XdrReader) => ({ clnt: adminClientCodec.decode(r), flags: r.u32('flags') }),
  optString: (r: XdrReader) => ({ value: r.optional((x) => x.string(str, 'value')), flags: r.u32('flags') }),
  daemonTimeout: (r: XdrReader) => ({ timeout: r.u32('timeout'), flags: r.u32('flags') }),
};
