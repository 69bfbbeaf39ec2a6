// SPDX-License-Identifier: Apache-2.0
// libvirt's permission vocabulary (src/access/viraccessperm.h, 9.0: 11 object types, 105 permissions), pure data.

export const PERMISSIONS = {
  connect: [
    'getattr',
    'read',
    'write',
    'search_domains',
    'search_networks',
    'search_storage_pools',
    'search_node_devices',
    'search_interfaces',
    'search_secrets',
    'search_nwfilters',
    'search_nwfilter_bindings',
    'detect_storage_pools',
    'pm_control',
    'interface_transaction',
  ],
  domain: [
    'getattr',
    'read',
    'write',
    'read_secure',
    'start',
    'stop',
    'reset',
    'save',
    'delete',
    'migrate',
    'snapshot',
    'suspend',
    'hibernate',
    'core_dump',
    'pm_control',
    'init_control',
    'inject_nmi',
    'send_input',
    'send_signal',
    'fs_trim',
    'fs_freeze',
    'block_read',
    'block_write',
    'mem_read',
    'open_graphics',
    'open_device',
    'screenshot',
    'open_namespace',
    'set_time',
    'set_password',
    'checkpoint',
  ],
  interface: ['getattr', 'read', 'write', 'save', 'delete', 'start', 'stop'],
  network: ['getattr', 'read', 'write', 'save', 'delete', 'start', 'stop', 'search_ports'],
  network_port: ['getattr', 'read', 'write', 'create', 'delete'],
  node_device: ['getattr', 'read', 'write', 'start', 'stop', 'detach', 'delete'],
  nwfilter: ['getattr', 'read', 'write', 'save', 'delete'],
  nwfilter_binding: ['getattr', 'read', 'create', 'delete'],
  secret: ['getattr', 'read', 'write', 'read_secure', 'save', 'delete'],
  storage_pool: ['getattr', 'read', 'write', 'save', 'delete', 'start', 'stop', 'refresh', 'search_storage_vols', 'format'],
  storage_vol: ['getattr', 'read', 'create', 'delete', 'format', 'resize', 'data_read', 'data_write'],
} as const;

// Every `object:permission` name, e.g. `domain:read_secure`.
export const ALL_PERMISSIONS: readonly string[] = Object.entries(PERMISSIONS).flatMap(([o, ps]) => ps.map((p) => `${o}:${p}`));

const KNOWN = new Set(ALL_PERMISSIONS);
export const isKnownPermission = (p: string): boolean => KNOWN.has(p);

// What a read-only socket may ever be granted, whatever the policy says (libvirt's default-allow set is read-only too).
export function isReadPermission(permission: string): boolean {
  const perm = permission.split(':')[1] ?? '';
  return perm === 'getattr' || perm === 'read' || perm.startsWith('search_');
}
