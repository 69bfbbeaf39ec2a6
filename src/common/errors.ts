// SPDX-License-Identifier: Apache-2.0
// The one error catalogue: stable VG_ERR_* codes, each mapped once to libvirt's {code, domain} for the wire.
import { format } from 'node:util';

// virErrorNumber values we emit (libvirt 9.0 virterror.h).
export const VirErr = {
  OK: 0,
  INTERNAL_ERROR: 1,
  NO_SUPPORT: 3,
  INVALID_ARG: 8,
  OPERATION_FAILED: 9,
  XML_ERROR: 27,
  DOM_EXIST: 28,
  OPERATION_DENIED: 29,
  XML_DETAIL: 35,
  SYSTEM_ERROR: 38,
  RPC: 39,
  NO_DOMAIN: 42,
  NO_NETWORK: 43,
  NO_STORAGE_POOL: 49,
  NO_STORAGE_VOL: 50,
  NO_NODE_DEVICE: 53,
  NO_INTERFACE: 57,
  AUTH_FAILED: 45,
  OPERATION_INVALID: 55,
  MULTIPLE_INTERFACES: 59,
  CONFIG_UNSUPPORTED: 67,
  ARGUMENT_UNSUPPORTED: 74,
  NO_DOMAIN_METADATA: 80,
  NO_DOMAIN_SNAPSHOT: 72,
  SNAPSHOT_REVERT_RISKY: 77,
  NO_DOMAIN_CHECKPOINT: 103,
  OPERATION_UNSUPPORTED: 84,
  ACCESS_DENIED: 88,
  AUTH_UNAVAILABLE: 94,
  AUTH_CANCELLED: 95,
} as const;

// virErrorDomain values we emit.
export const VirFrom = {
  NONE: 0,
  QEMU: 10,
  RPC: 7,
  TEST: 12,
  NETWORK: 19,
  REMOTE: 13,
  DOMAIN: 20,
  AUTH: 46,
  ACCESS: 55,
  STREAMS: 38,
} as const;

export interface ErrorSpec {
  code: string;
  format: string;
  virCode: number;
  virDomain: number;
}

export class VgError extends Error {
  readonly code: string;
  readonly virCode: number;
  readonly virDomain: number;

  constructor(code: string, message: string, virCode?: number, virDomain?: number) {
    super(message);
    const spec = catalogue.get(code);
    this.code = code;
    this.name = 'VgError';
    this.virCode = virCode ?? spec?.virCode ?? VirErr.INTERNAL_ERROR;
    this.virDomain = virDomain ?? spec?.virDomain ?? VirFrom.REMOTE;
  }
}

const catalogue = new Map<string, ErrorSpec>();

export type ErrorFactory = ((...args: unknown[]) => VgError) & { readonly spec: ErrorSpec };

// fastify-style: defineError('VG_ERR_X', 'text %s', {virCode, virDomain}) returns a factory.
export function defineError(code: string, fmt: string, opts: { virCode: number; virDomain: number }): ErrorFactory {
  if (!/^VG_ERR_[A-Z0-9_]+$/.test(code)) throw new Error(`bad error code name ${code}`);
  if (catalogue.has(code)) throw new Error(`duplicate error code ${code}`);
  const spec: ErrorSpec = { code, format: fmt, ...opts };
  catalogue.set(code, spec);
  const make = (...args: unknown[]): VgError => new VgError(code, format(fmt, ...args), spec.virCode, spec.virDomain);
  return Object.assign(make, { spec });
}

export function errorCatalogue(): ReadonlyMap<string, ErrorSpec> {
  return catalogue;
}

export function isVgError(e: unknown): e is VgError {
  return e instanceof Error && typeof (e as { code?: unknown }).code === 'string' && (e as VgError).code.startsWith('VG_ERR_');
}

const D = VirFrom;
const E = VirErr;

// Wire and framing (the connection is closed for these).
export const VG_ERR_FRAME_LENGTH = defineError('VG_ERR_FRAME_LENGTH', 'frame length %d outside [%d, %d]', { virCode: E.RPC, virDomain: D.RPC });
export const VG_ERR_XDR_DECODE = defineError('VG_ERR_XDR_DECODE', 'cannot decode %s: %s', { virCode: E.RPC, virDomain: D.RPC });
export const VG_ERR_XDR_ENCODE = defineError('VG_ERR_XDR_ENCODE', 'cannot encode %s: %s', { virCode: E.INTERNAL_ERROR, virDomain: D.RPC });
export const VG_ERR_HEADER = defineError('VG_ERR_HEADER', 'invalid message header: %s', { virCode: E.RPC, virDomain: D.RPC });

// libvirt RPC dispatcher answers (texts as libvirtd words them).
export const VG_ERR_RPC_UNKNOWN_PROC = defineError('VG_ERR_RPC_UNKNOWN_PROC', 'unknown procedure: %d', { virCode: E.RPC, virDomain: D.RPC });
export const VG_ERR_RPC_UNKNOWN_PROGRAM = defineError('VG_ERR_RPC_UNKNOWN_PROGRAM', 'Cannot find program %d version %d', { virCode: E.RPC, virDomain: D.RPC });
export const VG_ERR_RPC_PAYLOAD = defineError('VG_ERR_RPC_PAYLOAD', 'Unable to decode message payload', { virCode: E.RPC, virDomain: D.RPC });
export const VG_ERR_RPC_AUTH_REQUIRED = defineError('VG_ERR_RPC_AUTH_REQUIRED', 'authentication required', { virCode: E.RPC, virDomain: D.RPC });
export const VG_ERR_CONN_NOT_OPEN = defineError('VG_ERR_CONN_NOT_OPEN', 'internal error: hypervisor connection not open', {
  virCode: E.INTERNAL_ERROR,
  virDomain: D.RPC,
});
export const VG_ERR_CONN_ALREADY_OPEN = defineError('VG_ERR_CONN_ALREADY_OPEN', 'internal error: connection already open', {
  virCode: E.INTERNAL_ERROR,
  virDomain: D.RPC,
});
export const VG_ERR_CONN_URI = defineError('VG_ERR_CONN_URI', "unsupported configuration: this daemon serves the %s driver; cannot open URI '%s'", {
  virCode: E.CONFIG_UNSUPPORTED,
  virDomain: D.REMOTE,
});
export const VG_ERR_READ_ONLY = defineError('VG_ERR_READ_ONLY', 'operation forbidden: read only access prevents %s', {
  virCode: E.OPERATION_DENIED,
  virDomain: D.DOMAIN,
});
export const VG_ERR_TENANT_CHOICE = defineError(
  'VG_ERR_TENANT_CHOICE',
  "authentication failed: user '%s' belongs to several tenants (%s): choose one with ?tenant=NAME in the connection URI",
  { virCode: E.AUTH_FAILED, virDomain: D.ACCESS },
);
export const VG_ERR_ACCESS_DENIED = defineError('VG_ERR_ACCESS_DENIED', "access denied: 'virtgate' denied access", {
  virCode: E.ACCESS_DENIED,
  virDomain: D.ACCESS,
});
export const VG_ERR_FLAGS_UNSUPPORTED = defineError('VG_ERR_FLAGS_UNSUPPORTED', 'unsupported flags (0x%s) in function %s', {
  virCode: E.INVALID_ARG,
  virDomain: D.DOMAIN,
});
export const VG_ERR_ARG_INVALID = defineError('VG_ERR_ARG_INVALID', 'invalid argument: %s', { virCode: E.INVALID_ARG, virDomain: D.DOMAIN });

// Hypervisor driver results (carried over the helper IPC by code, formatted here).
export const VG_ERR_NO_DOMAIN = defineError('VG_ERR_NO_DOMAIN', 'Domain not found%s', { virCode: E.NO_DOMAIN, virDomain: D.TEST });
// The other objects' "not found" (also what a caller gets for an object it may not see); %s is ': DETAIL' or ''.
export const VG_ERR_NO_NETWORK = defineError('VG_ERR_NO_NETWORK', 'Network not found%s', { virCode: E.NO_NETWORK, virDomain: D.TEST });
export const VG_ERR_NO_STORAGE_POOL = defineError('VG_ERR_NO_STORAGE_POOL', 'Storage pool not found%s', { virCode: E.NO_STORAGE_POOL, virDomain: D.TEST });
export const VG_ERR_NO_STORAGE_VOL = defineError('VG_ERR_NO_STORAGE_VOL', 'Storage volume not found%s', { virCode: E.NO_STORAGE_VOL, virDomain: D.TEST });
export const VG_ERR_NO_INTERFACE = defineError('VG_ERR_NO_INTERFACE', 'Interface not found%s', { virCode: E.NO_INTERFACE, virDomain: D.TEST });
export const VG_ERR_NO_NODE_DEVICE = defineError('VG_ERR_NO_NODE_DEVICE', 'Node device not found%s', { virCode: E.NO_NODE_DEVICE, virDomain: D.TEST });
export const VG_ERR_DOMAIN_EXISTS = defineError('VG_ERR_DOMAIN_EXISTS', 'operation failed: %s', { virCode: E.DOM_EXIST, virDomain: D.TEST });
export const VG_ERR_DOMAIN_INTERNAL = defineError('VG_ERR_DOMAIN_INTERNAL', 'internal error: %s', { virCode: E.INTERNAL_ERROR, virDomain: D.TEST }); // the test driver's own wording for wrong-state calls
export const VG_ERR_DOMAIN_STATE = defineError('VG_ERR_DOMAIN_STATE', 'Requested operation is not valid: %s', {
  virCode: E.OPERATION_INVALID,
  virDomain: D.TEST,
});
export const VG_ERR_DOMAIN_ARG = defineError('VG_ERR_DOMAIN_ARG', 'invalid argument: %s', { virCode: E.INVALID_ARG, virDomain: D.TEST });
// The test driver's refusals of an argument it does not handle, and of a call it does not implement for this input.
export const VG_ERR_ARG_UNSUPPORTED = defineError('VG_ERR_ARG_UNSUPPORTED', 'argument unsupported: %s', { virCode: E.ARGUMENT_UNSUPPORTED, virDomain: D.TEST });
export const VG_ERR_OP_UNSUPPORTED = defineError('VG_ERR_OP_UNSUPPORTED', 'Operation not supported: %s', {
  virCode: E.OPERATION_UNSUPPORTED,
  virDomain: D.TEST,
});
export const VG_ERR_CONFIG_UNSUPPORTED = defineError('VG_ERR_CONFIG_UNSUPPORTED', 'unsupported configuration: %s', {
  virCode: E.CONFIG_UNSUPPORTED,
  virDomain: D.DOMAIN,
});
export const VG_ERR_NO_METADATA = defineError('VG_ERR_NO_METADATA', 'metadata not found: %s', { virCode: E.NO_DOMAIN_METADATA, virDomain: D.DOMAIN });
// Snapshots and checkpoints (issue 12): the test driver's wording; a name clash comes from virdomainmomentobjlist.c.
export const VG_ERR_NO_SNAPSHOT = defineError('VG_ERR_NO_SNAPSHOT', 'Domain snapshot not found: %s', {
  virCode: E.NO_DOMAIN_SNAPSHOT,
  virDomain: D.TEST,
});
export const VG_ERR_NO_CHECKPOINT = defineError('VG_ERR_NO_CHECKPOINT', 'Domain checkpoint not found: %s', {
  virCode: E.NO_DOMAIN_CHECKPOINT,
  virDomain: D.TEST,
});
export const VG_ERR_SNAPSHOT_RISKY = defineError('VG_ERR_SNAPSHOT_RISKY', 'revert requires force: %s', { virCode: E.SNAPSHOT_REVERT_RISKY, virDomain: D.TEST });
export const VG_ERR_SNAPSHOT_EXISTS = defineError('VG_ERR_SNAPSHOT_EXISTS', 'operation failed: %s', { virCode: E.OPERATION_FAILED, virDomain: D.DOMAIN });
// Another session holds the VM's console (virDomainOpenConsole without VIR_DOMAIN_CONSOLE_FORCE).
export const VG_ERR_CONSOLE_ACTIVE = defineError('VG_ERR_CONSOLE_ACTIVE', 'operation failed: %s', { virCode: E.OPERATION_FAILED, virDomain: D.DOMAIN });
// Networks (issue 12): a name or uuid clash comes from libvirt's network list (virnetworkobj.c), not the test driver.
export const VG_ERR_NETWORK_EXISTS = defineError('VG_ERR_NETWORK_EXISTS', 'operation failed: %s', { virCode: E.OPERATION_FAILED, virDomain: D.NETWORK });
export const VG_ERR_XML_INVALID = defineError('VG_ERR_XML_INVALID', 'XML error: %s', { virCode: E.XML_ERROR, virDomain: D.DOMAIN });
export const VG_ERR_XML_DETAIL = defineError('VG_ERR_XML_DETAIL', '%s', { virCode: E.XML_DETAIL, virDomain: D.DOMAIN });
// Storage pools and volumes: the test driver's 'operation failed' (VIR_FROM_TEST like the rest of its answers).
// A save image the helper could not open, read or write (virReportSystemError's text: what, the path, strerror).
export const VG_ERR_SAVE_IMAGE = defineError('VG_ERR_SAVE_IMAGE', '%s', { virCode: E.SYSTEM_ERROR, virDomain: D.TEST });
export const VG_ERR_STORAGE_FAILED = defineError('VG_ERR_STORAGE_FAILED', 'operation failed: %s', { virCode: E.OPERATION_FAILED, virDomain: D.TEST });
export const VG_ERR_NOT_SUPPORTED = defineError('VG_ERR_NOT_SUPPORTED', 'this function is not supported by the connection driver: %s', {
  virCode: E.NO_SUPPORT,
  virDomain: D.DOMAIN,
});
export const VG_ERR_LIMIT = defineError('VG_ERR_LIMIT', 'operation failed: limit reached: %s', { virCode: E.OPERATION_FAILED, virDomain: D.TEST });
export const VG_ERR_STORAGE = defineError('VG_ERR_STORAGE', 'operation failed: cannot persist domain state: %s', {
  virCode: E.OPERATION_FAILED,
  virDomain: D.TEST,
});

// Host objects (interfaces, node devices): the test driver's own wording.
export const VG_ERR_MULTIPLE_INTERFACES = defineError('VG_ERR_MULTIPLE_INTERFACES', 'multiple matching interfaces found%s', {
  virCode: E.MULTIPLE_INTERFACES,
  virDomain: D.TEST,
});
// virReportError(VIR_ERR_OPERATION_INVALID, NULL) has no detail; the transaction errors have one (': ...').
export const VG_ERR_IFACE_STATE = defineError('VG_ERR_IFACE_STATE', 'Requested operation is not valid%s', { virCode: E.OPERATION_INVALID, virDomain: D.TEST });

// Helper IPC (never shown with internal detail to network clients).
export const VG_ERR_IPC_VALIDATION = defineError('VG_ERR_IPC_VALIDATION', 'helper IPC field %s invalid: %s', {
  virCode: E.INTERNAL_ERROR,
  virDomain: D.REMOTE,
});
export const VG_ERR_IPC_REPLAY = defineError('VG_ERR_IPC_REPLAY', 'operation failed: request %s was already executed; refused as a replay', {
  virCode: E.OPERATION_FAILED,
  virDomain: D.REMOTE,
});
export const VG_ERR_HELPER_UNANSWERED = defineError('VG_ERR_HELPER_UNANSWERED', 'internal error: %s was executed but its answer was lost', {
  virCode: E.INTERNAL_ERROR,
  virDomain: D.REMOTE,
});
export const VG_ERR_HELPER_UNAVAILABLE = defineError('VG_ERR_HELPER_UNAVAILABLE', 'internal error: hypervisor helper unavailable, try again', {
  virCode: E.INTERNAL_ERROR,
  virDomain: D.REMOTE,
});
export const VG_ERR_HELPER_BUSY = defineError('VG_ERR_HELPER_BUSY', 'internal error: hypervisor helper queue full, try again', {
  virCode: E.INTERNAL_ERROR,
  virDomain: D.REMOTE,
});
// The helper did not answer in time; a write's outcome is then unknown (its journal says what ran).
export const VG_ERR_HELPER_TIMEOUT = defineError(
  'VG_ERR_HELPER_TIMEOUT',
  'internal error: hypervisor helper did not answer %s in time; its outcome is unknown',
  {
    virCode: E.INTERNAL_ERROR,
    virDomain: D.REMOTE,
  },
);
// A libvirt stream that cannot go on (a packet it does not take, too many streams, its source failed).
export const VG_ERR_STREAM = defineError('VG_ERR_STREAM', 'stream error: %s', { virCode: E.RPC, virDomain: D.STREAMS });
// A tenant's VM naming what is not its tenant's: a host path, device or bridge, another tenant's volume or network.
export const VG_ERR_RESOURCE_DENIED = defineError('VG_ERR_RESOURCE_DENIED', 'operation forbidden: %s', { virCode: E.OPERATION_DENIED, virDomain: D.DOMAIN });
export const VG_ERR_INTERNAL = defineError('VG_ERR_INTERNAL', 'internal error: %s', { virCode: E.INTERNAL_ERROR, virDomain: D.REMOTE });

// Configuration and start-up.
export const VG_ERR_CONFIG_INVALID = defineError('VG_ERR_CONFIG_INVALID', 'invalid configuration: %s: %s', { virCode: E.INTERNAL_ERROR, virDomain: D.NONE });
export const VG_ERR_USERDB = defineError('VG_ERR_USERDB', 'user database: %s', { virCode: E.INTERNAL_ERROR, virDomain: D.NONE });
export const VG_ERR_AUTH_FAILED = defineError('VG_ERR_AUTH_FAILED', 'authentication failed', { virCode: E.AUTH_FAILED, virDomain: D.RPC });
export const VG_ERR_USAGE = defineError('VG_ERR_USAGE', '%s', { virCode: E.INVALID_ARG, virDomain: D.NONE });
export const VG_ERR_LISTEN = defineError('VG_ERR_LISTEN', 'cannot listen on %s %s: %s', { virCode: E.SYSTEM_ERROR, virDomain: D.NONE });

// Client library.
export const VG_ERR_CLIENT_CLOSED = defineError('VG_ERR_CLIENT_CLOSED', 'connection closed: %s', { virCode: E.RPC, virDomain: D.RPC });
export const VG_ERR_CLIENT_REMOTE = defineError('VG_ERR_CLIENT_REMOTE', '%s', { virCode: E.INTERNAL_ERROR, virDomain: D.REMOTE });
export const VG_ERR_CLIENT_TIMEOUT = defineError('VG_ERR_CLIENT_TIMEOUT', 'call timed out after %d ms', { virCode: E.RPC, virDomain: D.RPC });

// TLS listener and PKI tooling.
export const VG_ERR_TLS_REFUSED = defineError('VG_ERR_TLS_REFUSED', 'TLS client refused: %s', { virCode: E.AUTH_FAILED, virDomain: D.RPC });
export const VG_ERR_PKI_EXISTS = defineError('VG_ERR_PKI_EXISTS', '%s already exists; remove it first to issue a new one', {
  virCode: E.OPERATION_FAILED,
  virDomain: D.NONE,
});
export const VG_ERR_PKI_INVALID = defineError('VG_ERR_PKI_INVALID', '%s', { virCode: E.INVALID_ARG, virDomain: D.NONE });

// Audit log (issue 6). Clients see only the errno-style reason, never a path.
export const VG_ERR_AUDIT_UNAVAILABLE = defineError('VG_ERR_AUDIT_UNAVAILABLE', 'operation failed: audit log unavailable (%s); write refused', {
  virCode: E.OPERATION_FAILED,
  virDomain: D.REMOTE,
});
export const VG_ERR_AUDIT_LOGIN = defineError('VG_ERR_AUDIT_LOGIN', 'operation failed: audit log unavailable (%s); login refused', {
  virCode: E.OPERATION_FAILED,
  virDomain: D.REMOTE,
});
export const VG_ERR_AUDIT_START = defineError('VG_ERR_AUDIT_START', 'audit log %s unavailable at start (%s): refusing to start', {
  virCode: E.INTERNAL_ERROR,
  virDomain: D.NONE,
});
export const VG_ERR_AUDIT_CORRUPT = defineError('VG_ERR_AUDIT_CORRUPT', 'audit log %s: %s', { virCode: E.INTERNAL_ERROR, virDomain: D.NONE });
export const VG_ERR_AUDIT_KEY = defineError('VG_ERR_AUDIT_KEY', 'audit key %s: %s', { virCode: E.INTERNAL_ERROR, virDomain: D.NONE });
export const VG_ERR_AUDIT_LOCKED = defineError('VG_ERR_AUDIT_LOCKED', 'audit log %s is in use by process %d', { virCode: E.INTERNAL_ERROR, virDomain: D.NONE });
export const VG_ERR_AUDIT_SEAL_STATE = defineError('VG_ERR_AUDIT_SEAL_STATE', 'audit sealing state %s: %s', { virCode: E.INTERNAL_ERROR, virDomain: D.NONE });

// Sandbox (start-up only: the daemon refuses to run half-sandboxed; never shown to a client).
export const VG_ERR_SANDBOX_SECCOMP = defineError('VG_ERR_SANDBOX_SECCOMP', 'seccomp: %s', { virCode: E.INTERNAL_ERROR, virDomain: D.NONE });
export const VG_ERR_SANDBOX_PRIVDROP = defineError('VG_ERR_SANDBOX_PRIVDROP', 'privilege drop: %s', { virCode: E.INTERNAL_ERROR, virDomain: D.NONE });
export const VG_ERR_SANDBOX_CONFIG = defineError('VG_ERR_SANDBOX_CONFIG', 'sandbox option %s: %s', { virCode: E.INTERNAL_ERROR, virDomain: D.NONE });
