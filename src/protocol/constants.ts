// SPDX-License-Identifier: Apache-2.0
// libvirt RPC wire constants (src/rpc/virnetprotocol.x, remote_protocol.x, virkeepaliveprotocol.x), pure data.

export const Program = {
  REMOTE: 0x20008086,
  KEEPALIVE: 0x6b656570, // ASCII "keep"
} as const;

export const PROGRAM_VERSION = { [Program.REMOTE]: 1, [Program.KEEPALIVE]: 1 } as const;

// libvirt's passthrough programs (numbers from libvirt 9.0's qemu_protocol.x, lxc_protocol.x): monitor and agent commands, namespaces. virtgate
// serves none of them, on purpose (a raw QEMU monitor bypasses every per-call permission and audit record), and
// answers as libvirtd does for a driver without them: "not supported", naming the API.
export const PASSTHROUGH_PROGRAMS: ReadonlyMap<number, ReadonlyMap<number, string>> = new Map([
  [
    0x20008087,
    new Map([
      [1, 'virDomainQemuMonitorCommand'],
      [2, 'virDomainQemuAttach'],
      [3, 'virDomainQemuAgentCommand'],
      [4, 'virConnectDomainQemuMonitorEventRegister'],
      [5, 'virConnectDomainQemuMonitorEventDeregister'],
      // 6 is the monitor event message, never a call
      [7, 'virDomainQemuMonitorCommandWithFiles'],
    ]),
  ],
  [0x00068000, new Map([[1, 'virDomainLxcOpenNamespace']])],
]);

export const MessageType = {
  CALL: 0,
  REPLY: 1,
  MESSAGE: 2,
  STREAM: 3,
  CALL_WITH_FDS: 4,
  REPLY_WITH_FDS: 5,
  STREAM_HOLE: 6,
} as const;

export const MessageStatus = { OK: 0, ERROR: 1, CONTINUE: 2 } as const;

export const Limits = {
  HEADER_BYTES: 24, // prog, vers, proc, type, serial, status
  FRAME_MIN: 28, // length word + header
  MESSAGE_MAX: 32 * 1024 * 1024, // VIR_NET_MESSAGE_MAX
  STREAM_PAYLOAD_MAX: 262120, // VIR_NET_MESSAGE_LEGACY_PAYLOAD_MAX: raw bytes in one stream packet, both ways
  STRING_MAX: 4 * 1024 * 1024, // REMOTE_STRING_MAX
  NODE_MAX_CELLS: 1024, // REMOTE_NODE_MAX_CELLS
  DOMAIN_LIST_MAX: 16384, // REMOTE_DOMAIN_LIST_MAX
  AUTH_TYPE_LIST_MAX: 20, // REMOTE_AUTH_TYPE_LIST_MAX
  SECURITY_MODEL_MAX: 257, // VIR_SECURITY_MODEL_BUFLEN
  SECURITY_DOI_MAX: 257, // VIR_SECURITY_DOI_BUFLEN
  SECURITY_LABEL_MAX: 4097, // VIR_SECURITY_LABEL_BUFLEN
  DOMAIN_MESSAGES_MAX: 2048, // REMOTE_DOMAIN_MESSAGES_MAX
  NODE_MODEL_LEN: 32, // char model[32]
  SASL_DATA_MAX: 65536, // REMOTE_AUTH_SASL_DATA_MAX
  MECHLIST_MAX: 1024,
} as const;

export const KeepaliveProc = { PING: 1, PONG: 2 } as const;

export const AuthType = { NONE: 0, SASL: 1, POLKIT: 2 } as const;

// VIR_DRV_FEATURE_* numbers asked through CONNECT_SUPPORTS_FEATURE (src/libvirt_internal.h).
export const Feature = {
  REMOTE: 2,
  FD_PASSING: 8,
  TYPED_PARAM_STRING: 9,
  PROGRAM_KEEPALIVE: 10,
  REMOTE_EVENT_CALLBACK: 14,
  REMOTE_CLOSE_CALLBACK: 15,
} as const;

export { DomainState } from '../common/domain-state'; // shared with the helper, which may not import protocol/

export const DomainEventId = { LIFECYCLE: 0, LAST: 27 } as const; // event --all registers ids 0..26

export const ListAllFlags = {
  ACTIVE: 1,
  INACTIVE: 2,
  PERSISTENT: 4,
  TRANSIENT: 8,
  RUNNING: 16,
  PAUSED: 32,
  SHUTOFF: 64,
  OTHER: 128,
  MANAGEDSAVE: 256,
  NO_MANAGEDSAVE: 512,
  AUTOSTART: 1024,
  NO_AUTOSTART: 2048,
  HAS_SNAPSHOT: 4096,
  NO_SNAPSHOT: 8192,
  HAS_CHECKPOINT: 16384,
  NO_CHECKPOINT: 32768,
} as const;

export const AffectFlags = { CURRENT: 0, LIVE: 1, CONFIG: 2 } as const;
export const MemoryFlags = { MAXIMUM: 4 } as const;
export const VcpuFlags = { MAXIMUM: 4, GUEST: 8, HOTPLUGGABLE: 16 } as const;
export const XmlFlags = { SECURE: 1, INACTIVE: 2, UPDATE_CPU: 4, MIGRATABLE: 8 } as const;
export const ConnectFlags = { RO: 1, NO_ALIASES: 2 } as const;

// virDomainMetadataType, and virtgate's one metadata element: the VM's tenant (namespace URI and the prefix it is
// written with). The helper keeps it as a typed field; dumpxml shows it under this namespace (ipc/objects/domain-def.ts, VG_TENANT_NS).
export const DomainMetadataType = { DESCRIPTION: 0, TITLE: 1, ELEMENT: 2 } as const;
export const TenantMetadata = { URI: 'https://virtgate.dev/xmlns/tenant/1', KEY: 'virtgate' } as const;
