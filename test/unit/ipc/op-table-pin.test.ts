// SPDX-License-Identifier: Apache-2.0
// The helper IPC's op table is the root helper's attack surface: its ops, numbers, pairings and write flags are pinned
// here as a literal listing, so growing it (or turning a read into an unjournaled write) is a reviewed change to this file.
import { VgError } from '../../../src/common/errors';
import {
  DOMAIN_READ,
  DOMAIN_WRITE,
  OPS,
  Op,
  REQUEST_OPS,
  answerCodecs,
  answerOpOf,
  isRequestOp,
  isWriteOp,
  opName,
  requestCodecs,
} from '../../../src/ipc/program';
import type { ActionAnswerOf, DomainSummary, RequestOp } from '../../../src/ipc/program';
import { POOL_READ, POOL_WRITE, VOLUME_READ, VOLUME_WRITE } from '../../../src/ipc/objects/storage';
import { HOST_READ, IFACE_READ, IFACE_WRITE, NODEDEV_READ, NODEDEV_WRITE } from '../../../src/ipc/objects/host-objects';
import { NETWORK_READ, NETWORK_WRITE } from '../../../src/ipc/objects/network';
import { SNAPSHOT_READ, SNAPSHOT_WRITE } from '../../../src/ipc/objects/snapshot';
import { OP_TABLE, OpFlag } from '../../../src/privileged/op-table';
import type { HelperClient } from '../../../src/unprivileged/helper-client';

// name, request op, answer op, write (journaled by the helper)
const PINNED: [string, number, number, boolean][] = [
  ['HELLO', 0, 1, false],
  ['NODE_FACTS', 2, 3, false],
  ['DOMAIN_READ', 4, 5, false],
  ['DOMAIN_WRITE', 6, 7, true],
  ['EVENTS_SUBSCRIBE', 8, 9, false],
  ['NETWORK_READ', 10, 11, false],
  ['NETWORK_WRITE', 12, 13, true],
  ['POOL_READ', 14, 15, false],
  ['POOL_WRITE', 16, 17, true],
  ['VOLUME_READ', 18, 19, false],
  ['VOLUME_WRITE', 20, 21, true],
  ['IFACE_READ', 22, 23, false],
  ['IFACE_WRITE', 24, 25, true],
  ['NODEDEV_READ', 26, 27, false],
  ['NODEDEV_WRITE', 28, 29, true],
  ['HOST_READ', 30, 31, false],
  ['SNAPSHOT_READ', 32, 33, false],
  ['SNAPSHOT_WRITE', 34, 35, true],
];

// Grouped ops: every action's name and wire code. A new action is a reviewed change here too.
const PINNED_ACTIONS: Record<string, [string, number][]> = {
  DOMAIN_READ: [
    ['list', 0],
    ['lookup', 1],
    ['info', 2],
    ['xml', 3],
    ['screenshot', 4],
    // src/ipc/objects/domain-extra.ts
    ['vcpus', 32],
    ['vcpuPinInfo', 33],
    ['emulatorPinInfo', 34],
    ['blockStats', 35],
    ['interfaceStats', 36],
    ['memoryStats', 37],
    ['blockInfo', 38],
    ['diskErrors', 39],
    ['fsInfo', 40],
    ['interfaceAddresses', 41],
    ['metadata', 43],
    ['tuning', 42],
    ['time', 64],
    ['iothreadInfo', 65],
    ['perfEvents', 66],
    ['interfaceParams', 67],
    ['active', 68],
    ['iothreadStats', 70],
    ['blockIoTune', 69],
  ],
  DOMAIN_WRITE: [
    ['define', 0],
    ['createXml', 1],
    ['undefine', 2],
    ['control', 3],
    ['setMemory', 4],
    ['setVcpus', 5],
    ['setTenant', 6],
    // src/ipc/objects/domain-extra.ts
    ['setTuning', 32],
    ['pinVcpu', 33],
    ['setMetadata', 35],
    ['setAutostart', 36],
    ['reset', 37],
    ['managedSave', 38],
    ['managedSaveRemove', 39],
    ['rename', 40],
    ['pinEmulator', 34],
    ['setLifecycleAction', 64],
    ['setMemoryStatsPeriod', 65],
    ['setTime', 66],
    ['addIothread', 67],
    ['delIothread', 68],
    ['pinIothread', 69],
    ['setIothreadParams', 70],
    ['setPerfEvents', 71],
    ['setInterfaceParams', 72],
    ['fsFreeze', 73],
    ['fsTrim', 74],
    ['injectNmi', 75],
    ['sendProcessSignal', 76],
    ['setUserPassword', 77],
    ['sendKey', 78],
    ['setBlockIoTune', 79],
    // src/ipc/objects/save-image.ts (save and restore to a file: 160..191)
    ['saveTo', 160],
    ['restoreFrom', 161],
    ['saveImageRead', 162],
    ['saveImageDefine', 163],
    ['coreDump', 164],
    // issue 14: a VM's console as a descriptor (128..135)
    ['openConsole', 128],
    ['closeConsole', 129],
    // issue 14: a VM's VNC display as a descriptor (136..143)
    ['openGraphics', 136],
  ],
  POOL_READ: [
    ['list', 0],
    ['byName', 1],
    ['byUuid', 2],
    ['defaultFor', 3], // issue 14: a tenant's `default` pool, provisioned on first need
  ],
  POOL_WRITE: [
    ['define', 0],
    ['create', 1],
    ['build', 2],
    ['start', 3],
    ['destroy', 4],
    ['delete', 5],
    ['undefine', 6],
    ['refresh', 7],
    ['setAutostart', 8],
    ['findSources', 9],
  ],
  VOLUME_READ: [
    ['list', 0],
    ['byName', 1],
    ['byKey', 2],
    ['byPath', 3],
    ['read', 4],
  ],
  VOLUME_WRITE: [
    ['create', 0],
    ['createFrom', 1],
    ['delete', 2],
    ['resize', 3],
    ['wipe', 4],
    ['upload', 5],
    ['uploadChunk', 6],
    ['uploadEnd', 7],
  ],
  IFACE_READ: [
    ['list', 0],
    ['get', 1],
  ],
  IFACE_WRITE: [
    ['define', 0],
    ['undefine', 1],
    ['start', 2],
    ['stop', 3],
    ['begin', 4],
    ['commit', 5],
    ['rollback', 6],
  ],
  NODEDEV_READ: [
    ['list', 0],
    ['get', 1],
  ],
  NODEDEV_WRITE: [
    ['create', 0],
    ['destroy', 1],
  ],
  HOST_READ: [
    ['sysinfo', 0],
    ['cpuStats', 1],
    ['cpuMap', 2],
    ['cpuModels', 3],
    ['freePages', 4],
    ['domainCapabilities', 5],
  ],
  NETWORK_READ: [
    ['list', 0],
    ['lookup', 1],
    ['get', 2],
  ],
  NETWORK_WRITE: [
    ['define', 0],
    ['create', 1],
    ['undefine', 2],
    ['start', 3],
    ['destroy', 4],
    ['setAutostart', 5],
    ['update', 6],
  ],
  SNAPSHOT_READ: [
    ['list', 0],
    ['get', 1],
    ['current', 2],
  ],
  SNAPSHOT_WRITE: [
    ['create', 0],
    ['delete', 1],
    ['revert', 2],
  ],
};

test('each grouped op has exactly the pinned actions, with their codes', () => {
  const groups = {
    DOMAIN_READ,
    DOMAIN_WRITE,
    POOL_READ,
    POOL_WRITE,
    VOLUME_READ,
    VOLUME_WRITE,
    IFACE_READ,
    IFACE_WRITE,
    NODEDEV_READ,
    NODEDEV_WRITE,
    HOST_READ,
    NETWORK_READ,
    NETWORK_WRITE,
    SNAPSHOT_READ,
    SNAPSHOT_WRITE,
  } as Record<string, { actions: Record<string, { code: number }> }>;
  expect(Object.keys(groups)).toEqual(Object.keys(PINNED_ACTIONS));
  for (const [name, g] of Object.entries(groups)) expect(Object.entries(g.actions).map(([a, sp]) => [a, sp.code])).toEqual(PINNED_ACTIONS[name]);
});

test('the descriptor table is exactly the pinned listing', () => {
  expect(Object.entries(OPS).map(([name, s]) => [name, s.req, s.ans, s.write])).toEqual(PINNED);
});

test('the op enum is derived from the table: NAME_REQ and NAME_ANS for each row, nothing else', () => {
  expect(Object.entries(Op)).toEqual(
    PINNED.flatMap(([name, req, ans]) => [
      [`${name}_REQ`, req],
      [`${name}_ANS`, ans],
    ]),
  );
  for (const [name, req, ans] of PINNED) {
    expect(opName(req)).toBe(`${name}_REQ`);
    expect(opName(ans)).toBe(`${name}_ANS`);
  }
  expect(opName(98)).toBe('op-98');
});

test('the pairing both ends use answers each request with its own answer op, and knows no other', () => {
  for (const [, req, ans] of PINNED) expect(answerOpOf(req as RequestOp)).toBe(ans);
  expect(REQUEST_OPS).toEqual(PINNED.map(([, req]) => req));
  for (const op of [1, 9, 97, 98, 0xffffffff]) {
    expect(isRequestOp(op)).toBe(false);
    expect(() => answerOpOf(op as RequestOp)).toThrow(VgError);
  }
});

test('codecs exist for exactly the table ops, in both directions', () => {
  expect(Object.keys(requestCodecs).map(Number)).toEqual(PINNED.map(([, req]) => req));
  expect(Object.keys(answerCodecs).map(Number)).toEqual(PINNED.map(([, , ans]) => ans));
});

test("the helper's WRITE flag (journal, replay check) is the table's write flag", () => {
  for (const [, req, , write] of PINNED) {
    expect(isWriteOp(req)).toBe(write);
    const entry = OP_TABLE.find((e) => e.req === req)!;
    expect(Boolean(entry.flags & OpFlag.WRITE)).toBe(write);
  }
});

// Checked by `tsc --noEmit` (jest does not type-check): HelperClient.call's answer type comes from the table. Before
// the table, the client's own pairing lacked DOMAIN_SET_TENANT and typed its answer `never`, which this refuses.
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const _setTenant = (c: HelperClient) =>
  c.act(Op.DOMAIN_WRITE_REQ, 'setTenant', { actor: { user: 'u', tenant: '', requestId: 'r' }, uuid: Buffer.alloc(16), tenant: 't' });
const setTenantAnswerIsASummary: Equal<Awaited<ReturnType<typeof _setTenant>>, { action: 'setTenant' } & DomainSummary> = true;
const controlAnswerIsASummary: Equal<ActionAnswerOf<typeof Op.DOMAIN_WRITE_REQ, 'control'>, { action: 'control' } & DomainSummary> = true;
const undefineAnswerIsEmpty: Equal<ActionAnswerOf<typeof Op.DOMAIN_WRITE_REQ, 'undefine'>, { action: 'undefine' } & {}> = true;

test('type-level pairings compile (see tsc)', () => {
  expect([setTenantAnswerIsASummary, controlAnswerIsASummary, undefineAnswerIsEmpty]).toEqual([true, true, true]);
});
