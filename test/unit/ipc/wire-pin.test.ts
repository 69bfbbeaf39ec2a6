// SPDX-License-Identifier: Apache-2.0
// The helper IPC's bytes, pinned: one request and one answer frame per op and per action of a grouped op, as SHA-256
// of the whole frame. Any change to a frame's layout must change this file too (a reviewed change).
import { createHash } from 'node:crypto';
import {
  type Actor,
  type Answers,
  type DomainInfo,
  type DomainSummary,
  type Requests,
  DOMAIN_READ,
  DOMAIN_WRITE,
  Op,
  REQUEST_OPS,
  decodeAnswer,
  decodeRequest,
  encodeAnswer,
  encodeRequest,
} from '../../../src/ipc/program';
import { HOST_READ, IFACE_READ, IFACE_WRITE, NODEDEV_READ, NODEDEV_WRITE } from '../../../src/ipc/objects/host-objects';
import { type Moment, SNAPSHOT_READ, SNAPSHOT_WRITE } from '../../../src/ipc/objects/snapshot';
import { TEST_IFACES, TEST_NODE_DEVICES, TestHostFacts } from '../../../src/privileged/drivers/test-host-objects';
import {
  NO_PERMS,
  POOL_READ,
  POOL_WRITE,
  type PoolConfig,
  type PoolRecord,
  VOLUME_READ,
  VOLUME_WRITE,
  type VolumeConfig,
  type VolumeRecord,
} from '../../../src/ipc/objects/storage';
import { NETWORK_READ, NETWORK_WRITE, type NetworkSummary } from '../../../src/ipc/objects/network';
import { DEFAULT_NETWORK } from '../../../src/privileged/drivers/test-networks';
import { TEST_DOMAIN_DEF } from '../../../src/privileged/drivers/test-driver';

const uuid = Buffer.from('0d46d412f292416c8b9aea26480a531f', 'hex');
const actor: Actor = { user: 'alice', tenant: 'acme', requestId: 'req-7', auditHead: `12:${'ab'.repeat(32)}` };
const summary: DomainSummary = { name: 'foo', uuid, id: 3, state: 1, reason: 1, persistent: true, tenant: 'acme' };
const info: DomainInfo = {
  ...summary,
  maxMemKiB: 524288n,
  memoryKiB: 262144n,
  nrVirtCpu: 2,
  maxVcpus: 4,
  cpuTimeNs: 123456789n,
  autostart: false,
  osType: 'hvm',
  hasManagedSave: false,
  securityLabel: 'virtgate_t',
  securityEnforcing: true,
};
// The test driver's seeded network (its config is the typed one the front end parses test:///default's XML into).
const net: NetworkSummary = { name: 'default', uuid, tenant: '', active: true, persistent: true, autostart: false };
// A typed definition (the front end parses client XML into one; the helper never sees the XML).
const def = TEST_DOMAIN_DEF;
const mdEl = { tag: 'x:info', attrs: { 'xmlns:x': 'urn:x', a: '1' }, text: '', kids: [{ tag: 'x:b', attrs: {}, text: 't', kids: [] }] };
// Storage (objects/storage.ts): typed configs, never XML.
const poolConfig: PoolConfig = {
  type: 'netfs',
  name: 'p1',
  uuid,
  source: { hosts: [{ name: 'nfs.example', port: 2049 }], devices: [], dir: '/export', format: 'nfs', protocolVer: '4', vendor: '', product: '' },
  targetPath: '/var/lib/libvirt/p1',
  perms: { mode: 0o755, owner: 107, group: -1, label: '' },
  cow: '',
};
const pool: PoolRecord = {
  config: poolConfig,
  tenant: 'acme',
  active: true,
  persistent: true,
  autostart: false,
  capacity: 100n,
  allocation: 10n,
  available: 90n,
};
const volConfig: VolumeConfig = {
  name: 'v1',
  type: 'file',
  capacity: 1n << 30n,
  allocation: 0n,
  format: 'qcow2',
  perms: NO_PERMS,
  backing: { path: '/var/lib/libvirt/p1/base', format: 'raw' },
  compat: '1.1',
  nocow: false,
  features: ['lazy_refcounts'],
};
const vol: VolumeRecord = {
  config: volConfig,
  pool: 'p1',
  poolUuid: uuid,
  poolType: 'netfs',
  key: '/var/lib/libvirt/p1/v1',
  path: '/var/lib/libvirt/p1/v1',
  tenant: 'acme',
};

// [label, request op, request body, answer body]: every op of the table, and every action of a grouped op (checked below).
// A snapshot with every field set; its <domain> travels as text (part E of issue 12 makes it typed).
const moment: Moment = {
  name: 's1',
  description: 'before <upgrade>',
  parent: 's0',
  creationTime: 1795702949n,
  state: 1,
  memory: 2,
  memoryFile: '',
  disks: [{ name: 'vda', location: 3, sourceType: 'file', source: '/var/lib/x.s1', driver: 'qcow2', bitmap: '' }],
  def,
};

const SAMPLES: [string, keyof Requests, unknown, unknown][] = [
  ['HELLO', Op.HELLO_REQ, { version: 2 }, { version: 2, driver: 'test' }],
  [
    'NODE_FACTS',
    Op.NODE_FACTS_REQ,
    {},
    {
      driver: 'test',
      uri: 'test:///default',
      hvType: 'Test',
      hvVersion: 2n,
      hostname: 'h1',
      model: 'i686',
      memoryKiB: 3145728n,
      cpus: 16,
      mhz: 1400,
      nodes: 2,
      sockets: 2,
      cores: 2,
      threads: 2,
      capabilitiesXml: '<capabilities/>',
      securityModel: 'selinux',
      securityDoi: '0',
      maxVcpus: 32,
      cellsFreeBytes: [2097152n, 4194304n],
      freeMemoryBytes: 3145728n,
    },
  ],
  [
    'DOMAIN_READ.list',
    Op.DOMAIN_READ_REQ,
    { action: 'list' },
    { action: 'list', domains: [summary, { ...summary, name: 'bar', id: -1, state: 5, reason: 0, tenant: undefined }] },
  ],
  ['DOMAIN_READ.lookup', Op.DOMAIN_READ_REQ, { action: 'lookup', key: { kind: 0, name: 'foo' } }, { action: 'lookup', ...summary }],
  ['DOMAIN_READ.info', Op.DOMAIN_READ_REQ, { action: 'info', uuid }, { action: 'info', ...info }],
  ['DOMAIN_READ.xml', Op.DOMAIN_READ_REQ, { action: 'xml', uuid, inactive: true }, { action: 'xml', def, id: 3 }],
  [
    'DOMAIN_READ.screenshot',
    Op.DOMAIN_READ_REQ,
    { action: 'screenshot', uuid, screen: 0 },
    { action: 'screenshot', mime: 'image/png', data: Buffer.from('\x89PNG') },
  ],
  ['DOMAIN_WRITE.define', Op.DOMAIN_WRITE_REQ, { action: 'define', actor, def }, { action: 'define', ...summary }],
  ['DOMAIN_WRITE.createXml', Op.DOMAIN_WRITE_REQ, { action: 'createXml', actor, def }, { action: 'createXml', ...summary }],
  ['DOMAIN_WRITE.undefine', Op.DOMAIN_WRITE_REQ, { action: 'undefine', actor, uuid, removeManagedSave: true, removeSnapshots: true }, { action: 'undefine' }],
  ['DOMAIN_WRITE.control', Op.DOMAIN_WRITE_REQ, { action: 'control', actor, uuid, control: 3 }, { action: 'control', ...summary }],
  [
    'DOMAIN_WRITE.setMemory',
    Op.DOMAIN_WRITE_REQ,
    { action: 'setMemory', actor, uuid, memoryKiB: 131072n, live: true, config: false, max: true },
    { action: 'setMemory' },
  ],
  ['DOMAIN_WRITE.setVcpus', Op.DOMAIN_WRITE_REQ, { action: 'setVcpus', actor, uuid, nvcpus: 2, live: false, config: true, max: false }, { action: 'setVcpus' }],
  [
    'DOMAIN_WRITE.setTenant',
    Op.DOMAIN_WRITE_REQ,
    { action: 'setTenant', actor, uuid, tenant: 'globex' },
    { action: 'setTenant', ...summary, tenant: 'globex' },
  ],
  // Domain extras (src/ipc/objects/domain-extra.ts): stats, pinning, tuning, metadata, lifecycle extras.
  [
    'DOMAIN_READ.vcpus',
    Op.DOMAIN_READ_REQ,
    { action: 'vcpus', uuid, maxinfo: 2 },
    { action: 'vcpus', info: [{ number: 0, state: 1, cpuTimeNs: 7n, cpu: 15 }], maps: [[0, 3, 15]] },
  ],
  [
    'DOMAIN_READ.vcpuPinInfo',
    Op.DOMAIN_READ_REQ,
    { action: 'vcpuPinInfo', uuid, ncpumaps: 2, live: false, config: true },
    { action: 'vcpuPinInfo', maps: [[1], [2, 3]] },
  ],
  [
    'DOMAIN_READ.emulatorPinInfo',
    Op.DOMAIN_READ_REQ,
    { action: 'emulatorPinInfo', uuid, live: true, config: false },
    { action: 'emulatorPinInfo', map: [0, 1] },
  ],
  [
    'DOMAIN_READ.blockStats',
    Op.DOMAIN_READ_REQ,
    { action: 'blockStats', uuid, path: 'vda' },
    { action: 'blockStats', rdReq: 1n, rdBytes: 2n, wrReq: 3n, wrBytes: 4n, errs: 5n },
  ],
  [
    'DOMAIN_READ.interfaceStats',
    Op.DOMAIN_READ_REQ,
    { action: 'interfaceStats', uuid, device: 'testnet0' },
    { action: 'interfaceStats', rxBytes: 1n, rxPackets: 2n, rxErrs: 3n, rxDrop: 4n, txBytes: 5n, txPackets: 6n, txErrs: 7n, txDrop: 8n },
  ],
  ['DOMAIN_READ.memoryStats', Op.DOMAIN_READ_REQ, { action: 'memoryStats', uuid, maxStats: 13 }, { action: 'memoryStats', stats: [{ tag: 6, val: 2097152n }] }],
  [
    'DOMAIN_READ.blockInfo',
    Op.DOMAIN_READ_REQ,
    { action: 'blockInfo', uuid, path: '/guest/diskimage1' },
    { action: 'blockInfo', allocation: 1n, capacity: 2n, physical: 3n },
  ],
  [
    'DOMAIN_READ.diskErrors',
    Op.DOMAIN_READ_REQ,
    { action: 'diskErrors', uuid, maxerrors: 4 },
    { action: 'diskErrors', errors: [{ disk: 'vda', error: 1 }], nerrors: 1 },
  ],
  [
    'DOMAIN_READ.fsInfo',
    Op.DOMAIN_READ_REQ,
    { action: 'fsInfo', uuid },
    { action: 'fsInfo', info: [{ mountpoint: '/', name: 'vda1', fstype: 'ext4', devAliases: ['vda'] }] },
  ],
  [
    'DOMAIN_READ.interfaceAddresses',
    Op.DOMAIN_READ_REQ,
    { action: 'interfaceAddresses', uuid, source: 0 },
    { action: 'interfaceAddresses', ifaces: [{ name: 'testnet0', hwaddr: 'aa:bb:cc:dd:ee:ff', addrs: [{ type: 0, addr: '192.168.122.3', prefix: 24 }] }] },
  ],
  [
    'DOMAIN_READ.tuning',
    Op.DOMAIN_READ_REQ,
    { action: 'tuning', uuid, kind: 'blkio', live: false, config: false },
    {
      action: 'tuning',
      params: [
        { field: 'weight', type: 2, value: 500 },
        { field: 'device_weight', type: 7, value: '/dev/sda,300' },
      ],
    },
  ],
  [
    'DOMAIN_READ.metadata',
    Op.DOMAIN_READ_REQ,
    { action: 'metadata', uuid, type: 2, uri: 'urn:x', live: false, config: false },
    { action: 'metadata', value: '', element: mdEl },
  ],
  [
    'DOMAIN_WRITE.setTuning',
    Op.DOMAIN_WRITE_REQ,
    { action: 'setTuning', actor, uuid, kind: 'memory', params: [{ field: 'hard_limit', type: 4, value: 400000n }], live: false, config: true },
    { action: 'setTuning' },
  ],
  ['DOMAIN_WRITE.pinVcpu', Op.DOMAIN_WRITE_REQ, { action: 'pinVcpu', actor, uuid, vcpu: 1, cpus: [2, 3] }, { action: 'pinVcpu' }],
  ['DOMAIN_WRITE.pinEmulator', Op.DOMAIN_WRITE_REQ, { action: 'pinEmulator', actor, uuid, cpus: [1], live: false, config: true }, { action: 'pinEmulator' }],
  [
    'DOMAIN_WRITE.setMetadata',
    Op.DOMAIN_WRITE_REQ,
    { action: 'setMetadata', actor, uuid, type: 2, value: null, element: mdEl, uri: 'urn:x', live: false, config: false },
    { action: 'setMetadata' },
  ],
  ['DOMAIN_WRITE.setAutostart', Op.DOMAIN_WRITE_REQ, { action: 'setAutostart', actor, uuid, autostart: true }, { action: 'setAutostart' }],
  ['DOMAIN_WRITE.reset', Op.DOMAIN_WRITE_REQ, { action: 'reset', actor, uuid }, { action: 'reset' }],
  ['DOMAIN_WRITE.managedSave', Op.DOMAIN_WRITE_REQ, { action: 'managedSave', actor, uuid }, { action: 'managedSave' }],
  ['DOMAIN_WRITE.managedSaveRemove', Op.DOMAIN_WRITE_REQ, { action: 'managedSaveRemove', actor, uuid }, { action: 'managedSaveRemove' }],
  ['DOMAIN_WRITE.rename', Op.DOMAIN_WRITE_REQ, { action: 'rename', actor, uuid, name: 'bar' }, { action: 'rename' }],
  // Save and restore to a file (codes 160..191).
  ['DOMAIN_WRITE.saveTo', Op.DOMAIN_WRITE_REQ, { action: 'saveTo', actor, uuid, path: '/var/tmp/foo.save' }, { action: 'saveTo' }],
  ['DOMAIN_WRITE.restoreFrom', Op.DOMAIN_WRITE_REQ, { action: 'restoreFrom', actor, path: '/var/tmp/foo.save' }, { action: 'restoreFrom', ...summary }],
  ['DOMAIN_WRITE.saveImageRead', Op.DOMAIN_WRITE_REQ, { action: 'saveImageRead', actor, path: '/var/tmp/foo.save' }, { action: 'saveImageRead', def }],
  ['DOMAIN_WRITE.saveImageDefine', Op.DOMAIN_WRITE_REQ, { action: 'saveImageDefine', actor, path: '/var/tmp/foo.save', def }, { action: 'saveImageDefine' }],
  ['DOMAIN_WRITE.coreDump', Op.DOMAIN_WRITE_REQ, { action: 'coreDump', actor, uuid, path: '/var/tmp/foo.core', crash: true }, { action: 'coreDump' }],
  // Issue 14: a VM's console, handed over as a descriptor (codes 128..135); the answer carries only the token.
  [
    'DOMAIN_WRITE.openConsole',
    Op.DOMAIN_WRITE_REQ,
    { action: 'openConsole', actor, uuid, devName: 'serial0', force: true },
    { action: 'openConsole', token: Buffer.alloc(16, 0xab) },
  ],
  ['DOMAIN_WRITE.closeConsole', Op.DOMAIN_WRITE_REQ, { action: 'closeConsole', actor, uuid }, { action: 'closeConsole' }],
  // Issue 14: a VM's VNC display, handed over as a descriptor (codes 136..143).
  [
    'DOMAIN_WRITE.openGraphics',
    Op.DOMAIN_WRITE_REQ,
    { action: 'openGraphics', actor, uuid, idx: 0 },
    { action: 'openGraphics', token: Buffer.alloc(16, 0xcd) },
  ],
  // Part B (issue 12): the rest of the test driver's hypervisor table (action codes 64..127).
  ['DOMAIN_READ.time', Op.DOMAIN_READ_REQ, { action: 'time', uuid }, { action: 'time', seconds: 627319920n, nseconds: 5 }],
  [
    'DOMAIN_READ.iothreadInfo',
    Op.DOMAIN_READ_REQ,
    { action: 'iothreadInfo', uuid, live: false, config: true },
    { action: 'iothreadInfo', threads: [{ id: 1, cpus: [0, 1] }] },
  ],
  ['DOMAIN_READ.perfEvents', Op.DOMAIN_READ_REQ, { action: 'perfEvents', uuid, live: true, config: false }, { action: 'perfEvents', enabled: [true, false] }],
  [
    'DOMAIN_READ.interfaceParams',
    Op.DOMAIN_READ_REQ,
    { action: 'interfaceParams', uuid, device: 'vnet0', live: false, config: false },
    { action: 'interfaceParams', params: [{ field: 'inbound.average', type: 2, value: 100 }] },
  ],
  ['DOMAIN_READ.active', Op.DOMAIN_READ_REQ, { action: 'active', uuid }, { action: 'active' }],
  [
    'DOMAIN_READ.iothreadStats',
    Op.DOMAIN_READ_REQ,
    { action: 'iothreadStats', uuids: [uuid] },
    { action: 'iothreadStats', domains: [{ uuid, threads: [{ id: 2, maxNs: 32768n, grow: 0, shrink: 4294967295 }] }] },
  ],
  [
    'DOMAIN_READ.blockIoTune',
    Op.DOMAIN_READ_REQ,
    { action: 'blockIoTune', uuid, disk: 'vda', live: false, config: false },
    { action: 'blockIoTune', params: [{ field: 'group_name', type: 7, value: 'g1' }] },
  ],
  [
    'DOMAIN_WRITE.setLifecycleAction',
    Op.DOMAIN_WRITE_REQ,
    { action: 'setLifecycleAction', actor, uuid, type: 2, lifecycleAction: 4, live: false, config: true },
    { action: 'setLifecycleAction' },
  ],
  [
    'DOMAIN_WRITE.setMemoryStatsPeriod',
    Op.DOMAIN_WRITE_REQ,
    { action: 'setMemoryStatsPeriod', actor, uuid, period: 10, live: true, config: false },
    { action: 'setMemoryStatsPeriod' },
  ],
  ['DOMAIN_WRITE.setTime', Op.DOMAIN_WRITE_REQ, { action: 'setTime', actor, uuid, seconds: -5n, nseconds: 7 }, { action: 'setTime' }],
  ['DOMAIN_WRITE.addIothread', Op.DOMAIN_WRITE_REQ, { action: 'addIothread', actor, uuid, id: 3, live: false, config: false }, { action: 'addIothread' }],
  ['DOMAIN_WRITE.delIothread', Op.DOMAIN_WRITE_REQ, { action: 'delIothread', actor, uuid, id: 3, live: false, config: true }, { action: 'delIothread' }],
  [
    'DOMAIN_WRITE.pinIothread',
    Op.DOMAIN_WRITE_REQ,
    { action: 'pinIothread', actor, uuid, id: 1, cpus: [0, 2], live: true, config: false },
    { action: 'pinIothread' },
  ],
  [
    'DOMAIN_WRITE.setIothreadParams',
    Op.DOMAIN_WRITE_REQ,
    { action: 'setIothreadParams', actor, uuid, id: 1, params: [{ field: 'poll_max_ns', type: 4, value: 100n }], live: true },
    { action: 'setIothreadParams' },
  ],
  [
    'DOMAIN_WRITE.setPerfEvents',
    Op.DOMAIN_WRITE_REQ,
    { action: 'setPerfEvents', actor, uuid, events: [{ event: 3, enabled: true }], live: false, config: false },
    { action: 'setPerfEvents' },
  ],
  [
    'DOMAIN_WRITE.setInterfaceParams',
    Op.DOMAIN_WRITE_REQ,
    { action: 'setInterfaceParams', actor, uuid, device: 'vnet0', params: [{ field: 'outbound.peak', type: 2, value: 9 }], live: false, config: true },
    { action: 'setInterfaceParams' },
  ],
  ['DOMAIN_WRITE.fsFreeze', Op.DOMAIN_WRITE_REQ, { action: 'fsFreeze', actor, uuid, mountpoints: ['/boot'], thaw: false }, { action: 'fsFreeze', count: 1 }],
  ['DOMAIN_WRITE.fsTrim', Op.DOMAIN_WRITE_REQ, { action: 'fsTrim', actor, uuid, mountpoint: null }, { action: 'fsTrim' }],
  ['DOMAIN_WRITE.injectNmi', Op.DOMAIN_WRITE_REQ, { action: 'injectNmi', actor, uuid }, { action: 'injectNmi' }],
  ['DOMAIN_WRITE.sendProcessSignal', Op.DOMAIN_WRITE_REQ, { action: 'sendProcessSignal', actor, uuid, signum: 9 }, { action: 'sendProcessSignal' }],
  ['DOMAIN_WRITE.setUserPassword', Op.DOMAIN_WRITE_REQ, { action: 'setUserPassword', actor, uuid, user: 'root' }, { action: 'setUserPassword' }],
  [
    'DOMAIN_WRITE.setBlockIoTune',
    Op.DOMAIN_WRITE_REQ,
    { action: 'setBlockIoTune', actor, uuid, disk: 'vda', params: [{ field: 'total_bytes_sec', type: 4, value: 1000n }], live: true, config: false },
    { action: 'setBlockIoTune' },
  ],
  ['DOMAIN_WRITE.sendKey', Op.DOMAIN_WRITE_REQ, { action: 'sendKey', actor, uuid, codeset: 0, keycodes: [29, 56, 111] }, { action: 'sendKey' }],
  [
    'EVENTS_SUBSCRIBE',
    Op.EVENTS_SUBSCRIBE_REQ,
    {},
    {
      event: { domain: summary, event: 2, detail: 1 },
      snapshot: { info, cpuBaseNs: 5n, cpuSinceMs: 1700000000000, cpuClock: true },
      removed: uuid,
      synced: true,
      objectEvent: { type: 'network', name: 'default', uuid, tenant: '', event: 2, detail: 0 },
    },
  ],
  [
    'EVENTS_SUBSCRIBE objectState set',
    Op.EVENTS_SUBSCRIBE_REQ,
    {},
    {
      event: null,
      synced: false,
      objectState: { set: { type: 'network', network: { name: 'default', uuid, tenant: 'acme', active: true, persistent: true, autostart: false } } },
    },
  ],
  [
    'EVENTS_SUBSCRIBE objectState removed',
    Op.EVENTS_SUBSCRIBE_REQ,
    {},
    { event: null, synced: false, objectState: { removed: { type: 'volume', key: 'ab/disk.img' } } },
  ],
  // Host objects (interfaces, node devices, host facts)
  ['IFACE_READ.list', Op.IFACE_READ_REQ, { action: 'list' }, { action: 'list', ifaces: [{ name: 'eth1', mac: 'aa:bb:cc:dd:ee:ff', active: true }] }],
  ['IFACE_READ.get', Op.IFACE_READ_REQ, { action: 'get', name: 'eth1' }, { action: 'get', def: TEST_IFACES[0], active: true }],
  [
    'IFACE_WRITE.define',
    Op.IFACE_WRITE_REQ,
    { action: 'define', actor, def: TEST_IFACES[0] },
    { action: 'define', name: 'eth1', mac: 'aa:bb:cc:dd:ee:ff', active: false },
  ],
  ['IFACE_WRITE.undefine', Op.IFACE_WRITE_REQ, { action: 'undefine', actor, name: 'eth1' }, { action: 'undefine' }],
  ['IFACE_WRITE.start', Op.IFACE_WRITE_REQ, { action: 'start', actor, name: 'eth1' }, { action: 'start' }],
  ['IFACE_WRITE.stop', Op.IFACE_WRITE_REQ, { action: 'stop', actor, name: 'eth1' }, { action: 'stop' }],
  ['IFACE_WRITE.begin', Op.IFACE_WRITE_REQ, { action: 'begin', actor }, { action: 'begin' }],
  ['IFACE_WRITE.commit', Op.IFACE_WRITE_REQ, { action: 'commit', actor }, { action: 'commit' }],
  ['IFACE_WRITE.rollback', Op.IFACE_WRITE_REQ, { action: 'rollback', actor }, { action: 'rollback' }],
  ['NODEDEV_READ.list', Op.NODEDEV_READ_REQ, { action: 'list' }, { action: 'list', devices: [...TEST_NODE_DEVICES] }],
  ['NODEDEV_READ.get', Op.NODEDEV_READ_REQ, { action: 'get', name: 'computer' }, { action: 'get', ...TEST_NODE_DEVICES[1] }],
  [
    'NODEDEV_WRITE.create',
    Op.NODEDEV_WRITE_REQ,
    {
      action: 'create',
      actor,
      parent: 'scsi_host1',
      parentWwnn: null,
      parentWwpn: null,
      parentFabricWwn: null,
      wwnn: '2001001b32a9da4e',
      wwpn: '2101001b32a9da4e',
    },
    { action: 'create', name: 'scsi_host12' },
  ],
  ['NODEDEV_WRITE.destroy', Op.NODEDEV_WRITE_REQ, { action: 'destroy', actor, name: 'scsi_host12' }, { action: 'destroy' }],
  ['HOST_READ.sysinfo', Op.HOST_READ_REQ, { action: 'sysinfo' }, { action: 'sysinfo', sysinfo: new TestHostFacts().sysinfo() }],
  ['HOST_READ.cpuStats', Op.HOST_READ_REQ, { action: 'cpuStats', cpuNum: -1 }, { action: 'cpuStats', stats: new TestHostFacts().cpuStats() }],
  ['HOST_READ.cpuMap', Op.HOST_READ_REQ, { action: 'cpuMap' }, { action: 'cpuMap', cpus: 8, online: 3, map: Buffer.from([0x15]) }],
  ['HOST_READ.cpuModels', Op.HOST_READ_REQ, { action: 'cpuModels', arch: 'ppc64' }, { action: 'cpuModels', models: new TestHostFacts().cpuModels('ppc64') }],
  [
    'HOST_READ.freePages',
    Op.HOST_READ_REQ,
    { action: 'freePages', pages: [4, 2048], startCell: 0, cellCount: 2 },
    { action: 'freePages', counts: [19n, 45n, 97n, 201n] },
  ],
  [
    'HOST_READ.domainCapabilities',
    Op.HOST_READ_REQ,
    { action: 'domainCapabilities', emulatorbin: '/usr/bin/qemu-system-x86_64', arch: null, machine: 'q35', virttype: null },
    { action: 'domainCapabilities', xml: '<domainCapabilities>\n  <machine>pc-q35-7.2</machine>\n</domainCapabilities>\n' },
  ],
  ['POOL_READ.list', Op.POOL_READ_REQ, { action: 'list' }, { action: 'list', pools: [pool] }],
  ['POOL_READ.byName', Op.POOL_READ_REQ, { action: 'byName', name: 'p1' }, { action: 'byName', pool }],
  ['POOL_READ.byUuid', Op.POOL_READ_REQ, { action: 'byUuid', uuid }, { action: 'byUuid', pool }],
  ['POOL_READ.defaultFor', Op.POOL_READ_REQ, { action: 'defaultFor', tenant: 'acme' }, { action: 'defaultFor', pool }],
  ['POOL_WRITE.define', Op.POOL_WRITE_REQ, { action: 'define', actor, config: poolConfig }, { action: 'define', pool }],
  ['POOL_WRITE.create', Op.POOL_WRITE_REQ, { action: 'create', actor, config: poolConfig }, { action: 'create', pool }],
  ['POOL_WRITE.build', Op.POOL_WRITE_REQ, { action: 'build', actor, uuid }, { action: 'build', pool }],
  ['POOL_WRITE.start', Op.POOL_WRITE_REQ, { action: 'start', actor, uuid }, { action: 'start', pool }],
  ['POOL_WRITE.destroy', Op.POOL_WRITE_REQ, { action: 'destroy', actor, uuid }, { action: 'destroy', pool }],
  ['POOL_WRITE.delete', Op.POOL_WRITE_REQ, { action: 'delete', actor, uuid }, { action: 'delete', pool }],
  ['POOL_WRITE.undefine', Op.POOL_WRITE_REQ, { action: 'undefine', actor, uuid }, { action: 'undefine' }],
  ['POOL_WRITE.refresh', Op.POOL_WRITE_REQ, { action: 'refresh', actor, uuid }, { action: 'refresh', pool }],
  ['POOL_WRITE.setAutostart', Op.POOL_WRITE_REQ, { action: 'setAutostart', actor, uuid, autostart: true }, { action: 'setAutostart', pool }],
  [
    'POOL_WRITE.findSources',
    Op.POOL_WRITE_REQ,
    { action: 'findSources', actor, type: 'netfs', host: 'nfs.example' },
    { action: 'findSources', xml: '<sources/>' },
  ],
  ['VOLUME_READ.list', Op.VOLUME_READ_REQ, { action: 'list', uuid }, { action: 'list', vols: [vol] }],
  ['VOLUME_READ.byName', Op.VOLUME_READ_REQ, { action: 'byName', pool: uuid, name: 'v1' }, { action: 'byName', vol }],
  ['VOLUME_READ.byKey', Op.VOLUME_READ_REQ, { action: 'byKey', key: vol.key }, { action: 'byKey', vol }],
  ['VOLUME_READ.byPath', Op.VOLUME_READ_REQ, { action: 'byPath', path: vol.path }, { action: 'byPath', vol }],
  [
    'VOLUME_READ.read',
    Op.VOLUME_READ_REQ,
    { action: 'read', pool: uuid, name: 'v1', offset: 4096n, length: 1n << 20n, sparse: true },
    { action: 'read', data: Buffer.from('volume bytes'), hole: 0n },
  ],
  ['VOLUME_WRITE.create', Op.VOLUME_WRITE_REQ, { action: 'create', actor, pool: uuid, config: volConfig, prealloc: false }, { action: 'create', vol }],
  [
    'VOLUME_WRITE.createFrom',
    Op.VOLUME_WRITE_REQ,
    { action: 'createFrom', actor, pool: uuid, config: volConfig, fromPool: uuid, from: 'base' },
    { action: 'createFrom', vol },
  ],
  ['VOLUME_WRITE.delete', Op.VOLUME_WRITE_REQ, { action: 'delete', actor, pool: uuid, name: 'v1' }, { action: 'delete' }],
  ['VOLUME_WRITE.resize', Op.VOLUME_WRITE_REQ, { action: 'resize', actor, pool: uuid, name: 'v1', capacity: 1n << 31n, flags: 2 }, { action: 'resize', vol }],
  ['VOLUME_WRITE.wipe', Op.VOLUME_WRITE_REQ, { action: 'wipe', actor, pool: uuid, name: 'v1' }, { action: 'wipe', vol }],
  [
    'VOLUME_WRITE.upload',
    Op.VOLUME_WRITE_REQ,
    { action: 'upload', actor, pool: uuid, name: 'v1', offset: 0n, length: 0n },
    { action: 'upload', handle: 7, length: 1n << 24n, vol },
  ],
  [
    'VOLUME_WRITE.uploadChunk',
    Op.VOLUME_WRITE_REQ,
    { action: 'uploadChunk', actor, handle: 7, at: 65536n, data: Buffer.alloc(0), hole: 1n << 20n },
    { action: 'uploadChunk' },
  ],
  ['VOLUME_WRITE.uploadEnd', Op.VOLUME_WRITE_REQ, { action: 'uploadEnd', actor, handle: 7, commit: true }, { action: 'uploadEnd', bytes: 1n << 24n }],
  ['NETWORK_READ.list', Op.NETWORK_READ_REQ, { action: 'list' }, { action: 'list', networks: [net, { ...net, name: 'lab', tenant: 'acme', active: false }] }],
  ['NETWORK_READ.lookup', Op.NETWORK_READ_REQ, { action: 'lookup', key: { name: 'default' } }, { action: 'lookup', network: net }],
  ['NETWORK_READ.get', Op.NETWORK_READ_REQ, { action: 'get', uuid, inactive: true }, { action: 'get', network: net, config: DEFAULT_NETWORK }],
  ['NETWORK_WRITE.define', Op.NETWORK_WRITE_REQ, { action: 'define', actor, config: DEFAULT_NETWORK }, { action: 'define', network: net }],
  ['NETWORK_WRITE.create', Op.NETWORK_WRITE_REQ, { action: 'create', actor, config: DEFAULT_NETWORK }, { action: 'create', network: net }],
  ['NETWORK_WRITE.undefine', Op.NETWORK_WRITE_REQ, { action: 'undefine', actor, uuid }, { action: 'undefine', network: net }],
  ['NETWORK_WRITE.start', Op.NETWORK_WRITE_REQ, { action: 'start', actor, uuid }, { action: 'start', network: net }],
  ['NETWORK_WRITE.destroy', Op.NETWORK_WRITE_REQ, { action: 'destroy', actor, uuid }, { action: 'destroy', network: net }],
  ['NETWORK_WRITE.setAutostart', Op.NETWORK_WRITE_REQ, { action: 'setAutostart', actor, uuid, autostart: true }, { action: 'setAutostart', network: net }],
  [
    'NETWORK_WRITE.update',
    Op.NETWORK_WRITE_REQ,
    {
      action: 'update',
      actor,
      uuid,
      command: 3,
      parentIndex: -1,
      live: true,
      config: false,
      item: { section: 4, host: { mac: '52:54:00:00:00:01', id: '', name: 'vm1', ip: '192.168.122.50' } },
    },
    { action: 'update', network: net },
  ],
  ['SNAPSHOT_READ.list', Op.SNAPSHOT_READ_REQ, { action: 'list', uuid, kind: 0, from: '', flags: 1 }, { action: 'list', names: ['s1', 's2'] }],
  ['SNAPSHOT_READ.get', Op.SNAPSHOT_READ_REQ, { action: 'get', uuid, kind: 1, name: 'c1' }, { action: 'get', moment, current: true }],
  ['SNAPSHOT_READ.current', Op.SNAPSHOT_READ_REQ, { action: 'current', uuid, kind: 0 }, { action: 'current', name: '' }],
  ['SNAPSHOT_WRITE.create', Op.SNAPSHOT_WRITE_REQ, { action: 'create', actor, uuid, kind: 0, moment, flags: 3 }, { action: 'create', name: 's1' }],
  ['SNAPSHOT_WRITE.delete', Op.SNAPSHOT_WRITE_REQ, { action: 'delete', actor, uuid, kind: 0, name: 's1', flags: 4 }, { action: 'delete' }],
  ['SNAPSHOT_WRITE.revert', Op.SNAPSHOT_WRITE_REQ, { action: 'revert', actor, uuid, name: 's1', flags: 2 }, { action: 'revert' }],
];

// [request frame digest, answer frame digest] by label, request id 0x01020304. IPC version 2 regrouped the domain ops
// into DOMAIN_READ / DOMAIN_WRITE with typed actions and added object events to the stream: every frame changed then.
const PINNED: Record<string, [string, string]> = {
  HELLO: ['5ad229d21825dc1d75714c9a600d073a72e2488da2373b3dd25224892b2649cf', 'd9eb610d1665b1755a49056509da4a90b3c4bc521165207832799c6161735651'],
  NODE_FACTS: ['89a15e4f4ad5e18d9764a6d18ebb2e40b9ea2086682bf1466cd2dcf86c6c2dc2', 'a14cc148cbf371a8d19367337d96b6c851acdc5d5a6af627370aa6868dc42e34'],
  'DOMAIN_READ.list': ['6921f3b41bb4f11d699c9f06dca47fd2692edc1ab6ce1ee279e9160468c6b979', '8937b32f33abf04affff31149a9fbb1452d5dcf1ce35c1398982605c08a4a0d2'],
  'DOMAIN_READ.lookup': [
    '6bda206e33b2f4c3e4f5afc73768c4c82c0026021b429a6a7f4721ef06ca588e',
    '40d5791f2e61e893a01d08feef0f194182b81cb668450bf6b5a07f7878ac8b3b',
  ],
  'DOMAIN_READ.info': ['f3866ff47035747c9dcef97e71ad788c8f5fabf233f858349cc2e952a3021181', '281b36f47d169c73d65b67a1d957ed82f98ba2f1913aaf8d6cb418b13a7c324a'],
  'DOMAIN_READ.screenshot': [
    '82eb9480c6afd4663948d96733392c0c05889881fd0852f6ee3e2e4e928dc343',
    'b7f629cab4a29d8ffba557a3adffded9ece266080a610fcd22ba483a696c5670', // issue 14: u32 kind (0 bytes, 1 token) after mime
  ],
  'DOMAIN_READ.xml': ['8d0eabde53efcfc18661c363670af647adb39bc692a5c9263f1b37919f73da3e', '152e17645dd8ecbbba2927b5d55288d1038f5ad4bcc216d8a435cf9d078f4d55'],
  'DOMAIN_WRITE.define': [
    '6c1e3f113e9df05adab210d1fefdd073be7252806d4c4c5c9f7a8c0d7dd5713d',
    '0043129708856f548f35aa737947d6b102fc2fa5de900d2b15f3c72438c30005',
  ],
  'DOMAIN_WRITE.createXml': [
    '8efb79f40445e69d943f75f82077db59283452021f73156c795838a910257d59',
    '0d4e3a01d9e6e8b0bb3869923d4f05c96cefdc169286eb715ad9ce169003f7e6',
  ],
  'DOMAIN_WRITE.undefine': [
    '5c6317f1c0db44e67bfe201d57cafda6632136c98da9caed1e2668598a31f1e9',
    'c6b36d3f6a2df2c7c40c366fd6eb134a5f13d54ac4530973be50050031cce78b',
  ],
  'DOMAIN_WRITE.control': [
    '36c17b2f342831e4834adca27535798d3ef0478b64a1950679a768a0fcae5d01',
    '9301cb1621cace07afa2000f37692e50b6f4f903af4979ac938f7519dbe98a32',
  ],
  'DOMAIN_WRITE.setMemory': [
    '84161f4b57d78b735155b0a011bcef7f6ef11a588b72bb10b3aac4bfdf8ca558',
    'fbda6b79933d07ba19238898d8e906b44614b44716567fe11b5baa4bdca3c9b7',
  ],
  'DOMAIN_WRITE.setVcpus': [
    '61afa12a3d479a59fe2c79cc947f1c7567bfac6d8e1fd329d9e9e506d32bbbe9',
    '158a52c48f250d52c9f956bb45da877938df23fc119b6b235cbe712e9687fa57',
  ],
  'DOMAIN_WRITE.setTenant': [
    '6825397978e6c113840bfe7d9757c3fa7c9e7203bb629f46ee4fd5b94102acb8',
    '84b05d5c4acddf312da5e659c5c77e6bc717365a511082d743dc9d667cdcf6ca',
  ],
  'DOMAIN_READ.vcpus': ['d75e9a7174e7c8c871b9c748131f69c98226f3178ae78dd0807d58063d9d0465', '44aca1a4df247918409d5aedccae9995aecad83c6173926904c6e8c2dc9d2b9d'],
  'DOMAIN_READ.vcpuPinInfo': [
    'a7d373f39e3b72eb2dd2adc06010a3902047b9e08978db39c3ec5d2513271f25',
    '1c2636551752770a981526404a86bebbf353f96d2f559ffa49c8c4dc4c78444e',
  ],
  'DOMAIN_READ.emulatorPinInfo': [
    '0985c83301ed89062470436718528f6fe06fff5faf6058f84219b2ba2f8ab4fb',
    '665fc68bbd97afdbd95c8fa1357e5542cad3638243565e7f8e0450ee7f8b6204',
  ],
  'DOMAIN_READ.blockStats': [
    'fcb0456fd4c65b3e9c44692228e85047fb039bc48a5ff11a8e97201b4bf7d292',
    '0eecf6e7d0918cfbb3ae2bc96782884e8d4589d74b1a4390bda5b58845076156',
  ],
  'DOMAIN_READ.interfaceStats': [
    'c774301e02733184dd4014c07a32d7bedf23242ab9cf3dc3287cc03330621a57',
    '6256fea7c72f62ecce3f007e391da1ce20fbbfb210bb5a26495370a5564272e3',
  ],
  'DOMAIN_READ.memoryStats': [
    'bb5bcbe05bec9da11cf181c8d245ba2b871645e2beaf63e96f117f2c23209086',
    '0faad8e4d61cf4c01df754fd55dcc5dbb48d98cf6aea89c35bc00a7b5637c15e',
  ],
  'DOMAIN_READ.blockInfo': [
    'b2d1766ff6418062b02c2f4e930f30b5155c7f9e7f96edd8f7790520f6cc2f4f',
    '296f7c73faf1fc200ca96ad5550ee683261f8d57d0d9d00f3ce91eb0e3fdf3ac',
  ],
  'DOMAIN_READ.diskErrors': [
    '0854f557c94421f5b3114fdb625d98c89c5650d7e08d9502ccb7f9fd8868476c',
    '8d22c1f5488de4cd6dbae2efdb926f44df7337da2f6b2862717c0e87016fa5ae',
  ],
  'DOMAIN_READ.fsInfo': [
    '1b763c1918234ee153c5fe33e00b05538048a8c97fbb6e35b622159b17f30345',
    '7f4381c2f6c5ed1fd56462768495781e68bae93a71b565c3d747c8cbe7a46aa1',
  ],
  'DOMAIN_READ.interfaceAddresses': [
    'a1aacf9ae83f83fd88c1ab779016229b01ac4a62f9da197047792c3438474c91',
    'bd22638f8d1ee47362ff565d5987d74c5cf90aa2852b5fd4e0bf15ca13675eeb',
  ],
  'DOMAIN_READ.tuning': [
    '50ade4d887ee5a5cf94e82656d1659704a8eca395f37f41cd31e285e993b4810',
    'd60159be1323f6860728ff170ffb14451e6bbf2a7e9fe77a9c53f4a57e2ff8c7',
  ],
  'DOMAIN_READ.metadata': [
    '407940236ef5855a757dbc812c9e07c61e62467e4bf4b86e51f132e13c153db0',
    '81473c7885347a491111fd2cc2a8a110f7a52eb8572aaf82bad4cc5c63826f36',
  ],
  'DOMAIN_WRITE.setTuning': [
    '0cd23831405d0810f7dd0d0bf55645925a43198093d74c2fa6e0134192eb538c',
    '35e333dfd34cd77127035f5130ac9f420cde38a18eab6337da77f50ffcb8a836',
  ],
  'DOMAIN_WRITE.pinVcpu': [
    'd6effd5d754c35df630bfd26a842ec66fe79963dcde5709d3354e02482cb523d',
    'ea8d1d9e5d98b16bf834ccdfc017cfa99b7e1352ddaef17d616e8a33652e6bff',
  ],
  'DOMAIN_WRITE.pinEmulator': [
    '04f1ac16200f9d0474d07b29a6ae83359ec21ac2bbb4527539fe5fa65fbba9d2',
    'c8c4202b97d2f31ee8cbae69750527c45170c0ded60d104e11a63d1a62d15095',
  ],
  'DOMAIN_WRITE.setMetadata': [
    '8da5a36124038bffc45fa8025b3ca97009f7d9584f785a79e4d0de86a0744645',
    '1912e103a932d5ce6c474afdbb0c7f17692234e9a99a556d79c6e76add52cb40',
  ],
  'DOMAIN_WRITE.setAutostart': [
    'ab2c7d6fc2127110c69452efdba3a6411658a5a7178cf6460f2a45175f2a5bd0',
    'a02daa0e5771377e75d33776ca5fbe8cdb05079f25cebbb1135fc6d687b37628',
  ],
  'DOMAIN_WRITE.reset': [
    '2bfec14880895aad9097a2d1c472af7aff7955571bbfcb2b4ec180c3c71e5153',
    '7244a0e610b8ae3479ab40c9c9c3886ece236525b5dd4f9859fa0795fb59fa7b',
  ],
  'DOMAIN_WRITE.managedSave': [
    'ddd2d3e4a43cf6f143024c7d5dedef3b4805f4db617a2cc968c5c7d70a4be3da',
    'a34d031a9713b93a618294c1e99283ae0218769be1603f1f2a8261dde61e13fa',
  ],
  'DOMAIN_WRITE.managedSaveRemove': [
    '3b581823cf4d938b3b359cfbb62caada8f4532e51cb946c759261f281613444e',
    'bd6555fee77adccabe5c8b402abf11bb310d4891518ca3c4fe998ceaafe8e79c',
  ],
  'DOMAIN_WRITE.rename': [
    '3a773f9548cf4ba6a471c852d2b197e81ff0923d5caece3777168e7ffd715bc6',
    'bbafb9d59601e8967d389ac53d46e772fd7a3a84b56cd8454f4e239175eca1fd',
  ],
  // Save and restore to a file (codes 160..191): new actions, nothing else changed.
  'DOMAIN_WRITE.saveTo': [
    'ffab28e4f24b57fc2bfab1accca3bef6e63c34a658c78d22d5e9a414eb9caec8',
    'e60fb8111b5554349d44a2ab6c933e733b5e87ee3007d90c486c34b47fc7892a',
  ],
  'DOMAIN_WRITE.restoreFrom': [
    'cf235305c6ce2fed703931ce345a48cad901a8c93a7cac3f383d3824cc687850',
    '5a1e3bd577a83dae6692163984387874e93b6ffed156b4126fec585ed1b31d74',
  ],
  'DOMAIN_WRITE.saveImageRead': [
    '1d65fd70819d404f3bef6d82ede0edcaa9d6c62dec22714d5032b41273a217b3',
    '87b72d3f54507d4b1809292c294f6fa85c354278f2ddc051952b0af1bc9a8974',
  ],
  'DOMAIN_WRITE.saveImageDefine': [
    '3d1c4edad77565a0c0f67690b5f092d159956b9002db920ddc864c2c022a67bf',
    '3ed70c163c1d8474b3da43c9961440093ac3ac2465a64ded2c935837120d31b0',
  ],
  'DOMAIN_WRITE.coreDump': [
    '3b23862d35cc3e6c925285e54fe63abdacbb2466b441f18faa4611f16d3b8087',
    '53a2cd46251b0dc00c450f60da7da474b3e30312338a685ba37c75d76c240898',
  ],
  // Issue 14: the console's open (its answer: the descriptor's token) and close.
  'DOMAIN_WRITE.openConsole': [
    '2e1b477e6c9e327637d3d58b390036ff1ef3ebef27990da65b7b434fcf3d0c25',
    '07a5da8cd74adb50c382766d0bc0b9ca8cab8907af18a3aca572da54ba990021',
  ],
  // Issue 14: a VM's VNC display (its answer: the descriptor's token).
  'DOMAIN_WRITE.openGraphics': [
    '60f63cccb755750025ed56da188b7276f2fce02607bf604f9e9aefca8e8b914f',
    'fd34abbfeedc1051405df8a3b80142c5910110193473e69933be4d11b3671301',
  ],
  'DOMAIN_WRITE.closeConsole': [
    '62654e1498b8eb382933959f667cf89da22414662912c1b31f39d63aef7f515e',
    'ea0be542455cb0764852f3be91c129120c226046f2cf417adfdb5514635e56ef',
  ],
  // objectState (an absent optional, 4 bytes) joined the stream's answer after objectEvent.
  EVENTS_SUBSCRIBE: ['50fed1ae603bdfd21ece728102ded645cd098ba88027ccf25bd7b3b931eba4b2', 'd6362130e8900d246754e4b5c3107845bf041294d889261f08d7e602ed71fc6c'],
  'EVENTS_SUBSCRIBE objectState set': [
    '50fed1ae603bdfd21ece728102ded645cd098ba88027ccf25bd7b3b931eba4b2',
    '5924a991465bd3fcb97ec8968a369a2aa3c5937157227bfe508cae2cfc926f6a',
  ],
  'EVENTS_SUBSCRIBE objectState removed': [
    '50fed1ae603bdfd21ece728102ded645cd098ba88027ccf25bd7b3b931eba4b2',
    'da6d0abd15ee1448843d7ac043657aeb80043893e90961cd2da2f719080340af',
  ],
  'DOMAIN_READ.time': ['35c82e2b7c8081bb0a6b1444d94b42576d9c95d110ada9c58103399c50defe8e', '91524fac33d4ea0a22c33d0f493e220c605c02571bb9cbdf36f3e50444ad16a1'],
  'DOMAIN_READ.iothreadInfo': [
    '65b0f3c576c02834980e9999fc6dedf862add48d211996769958b7d354b5c734',
    'c739d62efb3181777b8178e5b5564a6dd6926a3134927b1caf674c7afe6e4565',
  ],
  'DOMAIN_READ.perfEvents': [
    '7dfe05dda137ca685c40636a9f5625374722f7a7d4326c0e1028c5ce45ea4120',
    '451285d39b08569c829f48aa93315b29e3b66ccebf133d3625c02d4941d2e019',
  ],
  'DOMAIN_READ.interfaceParams': [
    '05b54465e3864cab51481bc5e7d7209ff09f9dfdbf4c78a88dd621a3104cf85a',
    '56f054a8252a0fbdfe5b6020b62337800b303c6a510734b86aa5740dcfa57a7c',
  ],
  'DOMAIN_READ.active': [
    'bf874a811e63e719a87ad5583fe248d895b0ce4d346eab0b2952410ef903f88a',
    'ed7ab3556ae6b9f3191e7ea652fd2e7b56a1237682df70ff99765f82adc36cb2',
  ],
  'DOMAIN_WRITE.setLifecycleAction': [
    '4a9712f3b2b1cd96a2f76c7f9c2bdef3c1a4e729759c4f612a02db95caba17b8',
    '70673bcb40a3ba373e1122740435a3603d308277fdb96d56d2315f878b44b22f',
  ],
  'DOMAIN_WRITE.setMemoryStatsPeriod': [
    'a927be39133e269c5f1b773cd136ed0379f32284ac41cb398ab81d6bfd1bc2f0',
    'c99d4ba7e035cf8ccfc041566ba67db5d775c62c473147aa2e449edc269a9885',
  ],
  'DOMAIN_WRITE.setTime': [
    '52be0de18664119d0258b02d35870720caf48dc5f28a64ad8a07f5581ac8c394',
    'cf2399c3ed181184b101b698b729c052d0934cc7750f78e1470f94c56c16f572',
  ],
  'DOMAIN_WRITE.addIothread': [
    '7cb09d44ada946140d54aa75dad34657077c8df214318796f9e43b13bf3e3b41',
    'af07a160478fc4d6ba9db2fb869687b8222b06661f74c97eb830478701daaa2c',
  ],
  'DOMAIN_WRITE.delIothread': [
    'c3020a9a1b3d719d7d5e83de4fa509897ddf2e679291198567fe27e7a5065c83',
    '43cb9ff9e7f17bd43f5478e9da20f7c64337dacb6a5d9db98df0a18de6d9f0fe',
  ],
  'DOMAIN_WRITE.pinIothread': [
    '1ddc84d82934efc581f46c3e63ad2c813caf1acd85bb435552364fc5931e850a',
    '8989ad5bf58d5a75a04a78f365dbc575458a2a26a089e7e73f79c5fb7a9fb307',
  ],
  'DOMAIN_WRITE.setIothreadParams': [
    'd61ac05395a7591b5b4949ae7df66a5d79032e8648123a3d50987f55437621ca',
    '8e3608398a442ecabefc09c958127a8610783898b3db38694ba430ca5106cfe0',
  ],
  'DOMAIN_WRITE.setPerfEvents': [
    '559f6d03ed45595433066d5acdbc9a25dbd3fe7e39402f09d3c5d2be5b5335bd',
    '3c8f0eef40580d97c5f973173011cc602613e4a406a2f3da88a8a2948eb5a7eb',
  ],
  'DOMAIN_WRITE.setInterfaceParams': [
    '0b1f7941eb004c017c94223e7311c08109bea5c17b098d3746a37d005331bd2a',
    'f40503798c9ae57ad500679f5297ded729a822cf7f0194433cad18d69df9f0a9',
  ],
  'DOMAIN_WRITE.fsFreeze': [
    'cbc5d03a831cbf1c944c5093eaa3db9dd6ce8de3c3d6b7c4ca1b67f475ebd3a4',
    'd5d908f055eeaf3a645edf069a60d176f4e599c4dc0557e716d76e6e2c323b69',
  ],
  'DOMAIN_WRITE.fsTrim': [
    'ae0d47bb1b353a073918544ef434ced5128b24b0184cb7da87413e2e1a38dc9c',
    'bcf36c2349c0115691b6e8101bc353787197ea48ae96a441bb2f244ac2183622',
  ],
  'DOMAIN_WRITE.injectNmi': [
    '5337c2c2fc4f839b82e66033e09e5917547ae4b3501a7b1d30c9d7f589fac29e',
    'e0cf99970837a91b7a95bff3516d1b75f6e4afdb0ec03896029c1b64e1908531',
  ],
  'DOMAIN_WRITE.sendProcessSignal': [
    '99c0123028d3c09d0f6aecff683e5f241957ff15ec937b409a9e670d0546b144',
    '32079a0ccf4305662d1866b9673a5b8a1736d99241008694442be5640820fd8f',
  ],
  'DOMAIN_WRITE.setUserPassword': [
    '59859f2a8953d3d45543aa0cdd16e0aa166138cc41a43eccb8d32810bdb22e2b',
    'f94c94f4022b6bd95a8418dff5abcc922a67a80dcccea6f414396d1407ac134a',
  ],
  'DOMAIN_READ.iothreadStats': [
    '2ef803e1a9ea1da59c29c9c835b0fa70f0d703b52711ebf125e9f0a2a42a316f',
    'd76359828414d22e959e6418220e5806b47c9c4165c7efdabb6e9c6017aae3d3',
  ],
  'DOMAIN_READ.blockIoTune': [
    '83a7c891c12c2c7c850f2562982481a07f7bcf650d0eb8e7702bf0755e83e609',
    '7badc682d6a2772e8f19fa293b06e450a8d2d8597855c3aeff85d909580f82d7',
  ],
  'DOMAIN_WRITE.setBlockIoTune': [
    '81735cb9dea07a10c96eff182f3ca68fbee08cc94a4268ee43c1f7ed02cc74cc',
    '2380a548d6be3ef4597cb301e183cb18b860c69bb2d761cdec976513b3cfea75',
  ],
  'DOMAIN_WRITE.sendKey': [
    'd21d93abc8e9e9a168fb97541af855d3dd6281d541f70f6ef37fd26e2f6f5d5c',
    '07eef623a90e450ce6faeb5af2abee02a9acccc9527ed11f624f107a99849c2f',
  ],
  'IFACE_READ.list': ['925d9456172487c6f1a4a426bcb1b387f133db85be77ee635a2fcf84aabeedcd', 'b2576446d4d5744e6113869cb5e86ffd854174c3a7771222763307d91a37f36d'],
  'IFACE_READ.get': ['2f42c0c855c8202e37f34d57075a1f8cf96a1b6ad827ab73b940f0c71cd919c3', '9a23b3b166c5db8768311557b2c4529c0efecd067b712ea54301c3e8a404df76'],
  'IFACE_WRITE.define': [
    '30689b0c07a1a2774b0401c208669e95311ddbbb2958ca2467a2c7cd7bb9c2ac',
    'f7639c1eaaa6b8d44bc4e3ee9bd31d8439a07aafa940eb0a77cbc0c9257a1a76',
  ],
  'IFACE_WRITE.undefine': [
    'f69badb5ac6e5f719f8aa3afdbac21eb2899c49a4f437d180c54c7e9d63b5fc8',
    '3de335191b09d5aa1e05c8f9f250a92d8afc106ce9e6796bbfd9f8bcc2b70b27',
  ],
  'IFACE_WRITE.start': ['9c136c76101051a765e590ed515a09fcede7dbfd4d4aea5d3ec08157a9f3f792', 'fb5d25343983d4f1ebfb15466a26988d87a1183d347e238e2876d871e26629ce'],
  'IFACE_WRITE.stop': ['b23449bde89b02434135dbac4f691919bc54acb2ba628abe992df600ef9185ac', '5b8a66da3097f02432db33575103d978530b49d5b156b0cd5577967a7e86fe1c'],
  'IFACE_WRITE.begin': ['d4829dd3df1c2077d82a99dea98b13e88b25c37a541f91cf5e8cad491c1647f2', '31f704f7a63bfa7738f4e2c1267916ff6d1fafa05a409e699743f1efceb7415d'],
  'IFACE_WRITE.commit': [
    '7b93a729430e1820273e45ba8c384710600066128bab8a589a49dc3871478a05',
    '0847942f8c7cb41a6a785c0fe11f0d8c3d40aa3530dc39bef1e063d7f17c8867',
  ],
  'IFACE_WRITE.rollback': [
    'f55f9dce58f080e2d2648e760b5e55ec0cd57eacad852595dc2c0521d1249135',
    '56daa97eb68ccedc4952b307e23e089a9107eb20e73f509bd322c94961c96f18',
  ],
  'NODEDEV_READ.list': ['f60c4ba6ec7c08dce0acd0f01749d851098e5ccb0ac806818e476e54c30d3432', 'd8ffec57350bf50220d94caca3df29531dfe1e508fc423ece11d9a18555d8729'],
  'NODEDEV_READ.get': ['02c38f34517b78fcd125a8cfdbb3611ca131d13cae7e80163fa897979a7bd625', '9f53fd9d1055e23ab0b821030ba4d9354eb7bb2def025667c305c8f5bef6e838'],
  'NODEDEV_WRITE.create': [
    'f6a71f218403afbbad93bcd0fe4f9239746ac54084a84721cf5d93b18cc2b105',
    'c79b11517e12069ccc41e74f0d3104d377bb38e6d6d7d2d41dc73073c1a63906',
  ],
  'NODEDEV_WRITE.destroy': [
    '20c3db373734a633ad91fd1399a24ddea4028629e55090de751d910fe4d497d6',
    '875a2d0511deb34217196c65a1dd946b4d4d5f1e400da70a96211bcae2947b18',
  ],
  'HOST_READ.sysinfo': ['f985bfdab21bb6de10021f8f6ed5551a57de4a95836b83d53306e3c1d7c3b12b', 'b05d731ce51f16e10254ac30e17f404afbb6b8ad2383e7666da4bbd2cea30ea5'],
  'HOST_READ.cpuStats': [
    '54d10c54499bb9ba1241668409b1dcfffa366c997da2b75784b6871e647c8e2f',
    'cb82decbc7fea4cfff0a7450a0c04ab243795d4c82d2542f1c4d19fe1c95f683',
  ],
  'HOST_READ.cpuMap': ['e78a97ad90437a35419cd6f22fe61ffd511fe1eee051994e6492c191bbc6c202', 'be8c4899b2c06361b632ae401749f4babf686bda13b679e2a6a8525ae23778c6'],
  'HOST_READ.cpuModels': [
    '86fb6530ec8856aac8a4ac98f88a7491219e089ab9390e19376069f7f9b84d6c',
    '47b505d91e813c11ca0c38cca52bc33c52c2a626b6be504c5f94650a61d70e54',
  ],
  'HOST_READ.freePages': [
    '80da5a88c5b9a9bba9eb3b06f0de6ab42bc3c46211875a0833856ac3236c7135',
    '78099a8a63d647b2f06234bf5478cfefe2787866b32877890fb631a151751a7c',
  ],
  'HOST_READ.domainCapabilities': [
    'bd843e9fd996c213789f223ef3c87ccf67a623d951acf40e5fd89e923f912f9e',
    '40445ee15aa821c8d97abd8a150ed2c0a48442cc52b04681396d25431b8089c7',
  ],
  'POOL_READ.list': ['41e53489dd71a7bb6f64d375d73397e55755ab9ed71b6209979cccfab3fdaf25', '7faabb8fd1b40ff5f6c7b211e8856ff87a9226701565f8362438664b90c1a874'],
  'POOL_READ.byName': ['522f3434179e94f3ded7da52fe98baa7ff60f7ae76492fed2caca9d1b9e82033', '14ee35fb9f53939b07e05695eeb0ae06ee9fc2e4aa3ed28d530b9ed1060cb6b8'],
  'POOL_READ.byUuid': ['55d9d33dae721dc14e89473fcb2f103858cd2bc7d75513c4e372e4c637d22f8f', 'f96464c1160a410029a6cb208b654d88963a59418d336e3512ccc407ebc6c388'],
  'POOL_READ.defaultFor': [
    'f2496823ff968d72cca7e0e25d2cee084db32e044e1c29d72d646559065e54d3',
    '322e4f71dc3294007a325f71343db17e0b060ca4b55188587f684ee080054865',
  ],
  'POOL_WRITE.define': ['0b44d72ab866a0b03165b0946a9ec90ec96c25c51d973b04ae6deae25f7097c7', '7b7d2ba32d12b6025cc1a19770739434ba2d5a30bf92c51e3cb62024ff4dff1d'],
  'POOL_WRITE.create': ['115ced94d50ff6c353c580f0ec6b2589a4254c64b7a7a155b1467640130078e5', '0d36f1aba3f208a998cba02097a7bb1613322cf4d404aa128087fe4232ed90fb'],
  'POOL_WRITE.build': ['3d257ba877331aaa6d084e8596d7af5b6f5a013ff7478bd6b156be2038d16415', 'cd106ee7392dfab63bbb2a9c51573a63b813c1c3f7157c6c15fae87c04ea4a70'],
  'POOL_WRITE.start': ['d67d9253d570687c6df231735c50c0b9e20e218d8c566112ba48b516cbae310d', '15563bd52116584f3028379eafdf07ba916047dec936d9180791d116ea67ce9c'],
  'POOL_WRITE.destroy': [
    '65003fbb7695289375955941e8c6edf68f3b38e274b7ca555b34ad7b545506dd',
    'f42c0f3f19beb22f83535565efacb05bf47fdf424cdbfce236f836a1be811686',
  ],
  'POOL_WRITE.delete': ['df3537748be9594c2a7b198702ea5dc3598f7e0112a8006958c7a6d3b7e95720', 'e6baeda531241cf63bee0b0a949826bb739af02a69c62b887b758818d43bee90'],
  'POOL_WRITE.undefine': [
    '33640f94b4aa83eae606490411f10d2a87e1c91238de1de6480e77fea61006f0',
    '9f46c95694c9a15033dbc59fd4c8a31916777d9bbb9f413e78e37b5f80320bf1',
  ],
  'POOL_WRITE.refresh': [
    '473c0a630307d9b6e452a87f0f32703c19e7f6994a5aefd65b6fbe46130022c2',
    '6142731440893578c21c63c5caef59f49f8b7fc7ff37fe31425f2696d6c357ea',
  ],
  'POOL_WRITE.setAutostart': [
    'f35790cfd2cd907e9b55ce607d123830d9ad34f2965145b10ecc2142bcc06810',
    'c13bf60aaa3dbab3929b31706087522616c3b38cbfc736c2fcde7589da8f2571',
  ],
  'POOL_WRITE.findSources': [
    'dc3aba575c7a7583d84d1360f30e37fe556f202ac70f175d6f649014d5997673',
    'f9c806964360f211db55ea7cce6c4454c133139e723b6e76226e682d22c3ce03',
  ],
  'VOLUME_READ.list': ['ea8d457e40f049b6af9ecb0baa3b3d235e6c245b9626391d392d41568638adc4', '336afd41285468747722a826a10a1a3c0370321fc025f96286b87ee9bab3a62b'],
  'VOLUME_READ.byName': [
    '54ebfba596424e343ec4a3a35c5034b6b26abcb5b73524254ead7efa0b6c488c',
    'b996636d6525662ff889420b53cf99073d540aa463a6bae172ffc4ac69c8fcfd',
  ],
  'VOLUME_READ.byKey': ['c714f0cbd33d56b31b2a1e521d58f143ff155ea9ac090adbc2c8d9df3fc325bc', '44e09d1f4b27514a5e36a46c9ddec65a2a8624083c8c84248784193373f8db64'],
  'VOLUME_READ.byPath': [
    '536af964ae083d18da6d72194294495bf516f4fb1cc8d98df310ece5ad1d93fd',
    '866ec205cd88b8471d824f1df4d3d79f978610add81e3ea5bde16612aa94c049',
  ],
  'VOLUME_WRITE.create': [
    'ba500c055ca777b118f5e3f93fa8cb07682debc65e54d6c5841d18aefe8776cb',
    '65fed7839ea44953ac254c280b4215a29273f1b53fc4fb6f55d0568487a765af',
  ],
  'VOLUME_WRITE.createFrom': [
    '95031b5f2aa324f6a519c8a6947039aa1b33ea30b182ae406afd19660201b451',
    '31bdc9749193346e4803d96bf74a146062cc229e19e956c914001617b62bed2e',
  ],
  'VOLUME_WRITE.delete': [
    '9e8d186d96ac08860272dade55838c6153fb28b36455d65d8bcac3a31e9ff591',
    '93da960612fcd989c502cb139d4fd0128fcfd29c0957d544707c8b49fa9c91bf',
  ],
  'VOLUME_WRITE.resize': [
    'e7b46a90ade4deb4960e781d7aa678edf83cb357634c1d79a18c6a0e096a1f29',
    'a655eb1f0d91ae0cc66d3f6cf13de10281e902480dd9b1a0115e6fc3b6d5762d',
  ],
  'VOLUME_WRITE.wipe': ['240610651a01225ff5bdf53ec490a718df8beeba050d05fac8a55f282d0af4a7', 'e95665812bd8e4177dbf3555eef259857c731c408e1594c3d1e12cdd552423d7'],
  'VOLUME_READ.read': ['41c7b77059bbdd8e860e094923dade10ae9dbb1f1de54f56f5ed30c6d0364797', '0f8032c29ff2a11c93917cb297aadbf4988d6bbdbf4d4e2c8d3185c40222e398'],
  'VOLUME_WRITE.upload': [
    'cd1ff4d3bac4ba9c512aa6358070ceafe1d7da8b274f5bb98f6c0a68f2af5303',
    '321477644884425723fa2613a00191304e252cb4793f4f7c83504e3706a466df',
  ],
  'VOLUME_WRITE.uploadChunk': [
    '417b00bd2914ad70c6e4ef27f63c300401cf6814447708c96a6bcfdbc13aedf1',
    'b97d9eb2b7252972315ef396f0add6dee9777e1ae00f2dcf79ac9ef0ffa27307',
  ],
  'VOLUME_WRITE.uploadEnd': [
    '4629585891c19baf2904d13853a6538a7cfd56389c88a4382780295eec998b0a',
    'aa485a601204b11c9965e9e4123eff6522660d8947d81e6753cbecd720e4c1e6',
  ],
  'NETWORK_READ.list': ['93be576a2af985d942ccb156be0b709f9c10db0ac2d2207f90c45f4c245971e6', 'f5507c06f9343881d571d2358823e21fd97ee088acd836489528d5a23517b738'],
  'NETWORK_READ.lookup': [
    '49e945c575dfc41237be1ad6d5809d9044e179eaa50734154b5c195420390993',
    '130690dc55b9d6aa9cb2bef9971a3fd14dd981edd2930a7a35ac18b13c07db3e',
  ],
  'NETWORK_READ.get': ['aafe3ad77e09fa6d4b66069671d8873c1e32705de6a638a9c286c49db57db489', '265ebbc42dfec70c22a2cc092ac3d30d9c089cff5995361869aabec26a2b29a9'],
  'NETWORK_WRITE.define': [
    '4a14de059ba0f7c839771b218c86cbd0abf9953ec866ff293972ad87e0018a8d',
    'c08c078da51012f30ade06141767af925a1a848a1a3dc9c3f91f5237007dd2f7',
  ],
  'NETWORK_WRITE.create': [
    '8d8593a4fb10d961510121f42941f44777b813f4b26a1c7cf3eace2ed2e2e75a',
    '4784579ac7ea577873731bccd9a0d64c3845aabb422fd21a1b7480c59d18be59',
  ],
  'NETWORK_WRITE.undefine': [
    'e38f84bacae32ddee6623022beac2d00eaca4a737f753113c11c733dd86569f7',
    '8c240e3e994a80c8ceba49c91e6826ed215e83768f17d07df9ee8074cecdc85d',
  ],
  'NETWORK_WRITE.start': [
    '06e28a813a093161f68b8fe6aa3cf3039825231622193c0762dbd9e686630183',
    '14bcf0b27979e52d5979b9e8ec53f5986bd5941396660e89d22d4d6842c63371',
  ],
  'NETWORK_WRITE.destroy': [
    '08ba79be3a1bc7c1cba8f07fc4c0f8af8c3469ac8464f1d5b26dc1fc2394f413',
    'a38b071c8e3727499df3c154c6bf74301586428a60300b8aa1005c17d86d9604',
  ],
  'NETWORK_WRITE.setAutostart': [
    'a2447663eac217bf5a2f8897e48c75308a8a097197da88ef8ec7b4718ee99a30',
    '5044ab0221e90288d0c2d5f014a7b4c7b5af4dd3293452db1e7a4d33bc6d0334',
  ],
  'NETWORK_WRITE.update': [
    '51d581fc7e5c52467676652d14e7d9450969c585aeb9f36966f50f71d966f61c',
    '3f30a3eef98c245795775b0fbc2973ace50ef5eb75dda627e42a589cb24a1ca1',
  ],
  'SNAPSHOT_READ.list': [
    '5ed0642c0725f176603e47ca3e2ac9d4b552e8ef9dd205cef3779b1f755b0a24',
    '7d77466c55dea2663b614787799ea667e6d5f9b5d62a4fabff0619fa2892d975',
  ],
  'SNAPSHOT_READ.get': ['4cf85cd63f26e36c1698af1d4310884beab626403a4e5ab5e12166211426e798', '8a8c902c8916d8147e5defa0cf8e7837671a6f476682c7c69326ead5bcde812f'],
  'SNAPSHOT_READ.current': [
    '4825ae01c699c133e67194ad035b765a343dca754970d1886ffc48ed3e080c35',
    '6b8a9acb1a25aa76b037a39f87242e9aed4869cc018621df52f957bed96597a0',
  ],
  'SNAPSHOT_WRITE.create': [
    '6de9248f33d94771eaab6ecbaedda19580e1c5165b70660cb11b40a5e73d3331',
    '14eaea117fac69e3057e8a7ac2b4771ff1f6a906157830f46b5fbdcc50403742',
  ],
  'SNAPSHOT_WRITE.delete': [
    '9015d8c71848264ff4815e488f73c5a6c183c73b0cf0c661d2545b8cdf958340',
    '6810643ae10df5e8ccc070e9f7dacdec288db4a4d124eebed65a2bbe38da098c',
  ],
  'SNAPSHOT_WRITE.revert': [
    '49d11d2f7ab9617db64bf74362355e5a0ab45a32569223b74048dc4f51ccd8e7',
    '2791db2a497d6b6d12fb9516a66d206fad879b28bcbf329c21559f498d95ca13',
  ],
};

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const ID = 0x01020304;

function frames(): Record<string, [string, string]> {
  const out: Record<string, [string, string]> = {};
  for (const [label, op, req, ans] of SAMPLES)
    out[label] = [sha(encodeRequest(op, ID, req as never)), sha(encodeAnswer((op + 1) as keyof Answers, ID, ans as never))];
  return out;
}

test('every request and answer frame is byte-identical to the pinned encoding', () => {
  expect(frames()).toEqual(PINNED);
});

test('the samples cover every op and every action of each grouped op', () => {
  expect([...new Set(SAMPLES.map(([, op]) => op))].sort((x, y) => x - y)).toEqual([...REQUEST_OPS].sort((x, y) => x - y));
  for (const g of [
    DOMAIN_READ,
    DOMAIN_WRITE,
    NETWORK_READ,
    NETWORK_WRITE,
    POOL_READ,
    POOL_WRITE,
    VOLUME_READ,
    VOLUME_WRITE,
    IFACE_READ,
    IFACE_WRITE,
    NODEDEV_READ,
    NODEDEV_WRITE,
    HOST_READ,
    SNAPSHOT_READ,
    SNAPSHOT_WRITE,
  ]) {
    const seen = SAMPLES.filter(([label]) => label.startsWith(`${g.name}.`)).map(([label]) => label.slice(g.name.length + 1));
    expect(seen.sort()).toEqual(Object.keys(g.actions).sort());
  }
});

test('each pinned frame decodes back to its sample', () => {
  for (const [, op, req, ans] of SAMPLES) {
    expect(decodeRequest(encodeRequest(op, ID, req as never))).toEqual({ op, id: ID, body: req });
    const back = decodeAnswer(encodeAnswer((op + 1) as keyof Answers, ID, ans as never));
    expect(back).toMatchObject({ op: op + 1, id: ID, ok: true });
  }
});
