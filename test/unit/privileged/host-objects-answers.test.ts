// SPDX-License-Identifier: Apache-2.0
// Helper answers of the host-object groups: each action reaches its driver method through the group codecs (what the
// IPC carries), a driver without the sub-driver answers "not supported", and tenant actors change nothing.
import { XdrReader, XdrWriter } from '../../../src/common/xdr';
import type { ActionGroup, Actions } from '../../../src/ipc/actions';
import { HOST_READ, IFACE_READ, IFACE_WRITE, NODEDEV_READ, NODEDEV_WRITE } from '../../../src/ipc/objects/host-objects';
import { answerHostRead, answerIfaceRead, answerIfaceWrite, answerNodeDevRead, answerNodeDevWrite } from '../../../src/privileged/answers/host-objects';
import { DriverError } from '../../../src/privileged/drivers/driver';
import { TestHostFacts, TestInterfaces, TestNodeDevices } from '../../../src/privileged/drivers/test-host-objects';

const ctxOf = () => {
  const store = new Map<string, Map<string, string>>();
  const hctx = {
    firstStart: true,
    warn: () => undefined,
    emit: () => undefined,
    records: { load: (t: string) => store.get(t) ?? new Map(), put: () => undefined },
  };
  return { driver: { interfaces: new TestInterfaces(hctx), nodeDevices: new TestNodeDevices(hctx), host: new TestHostFacts() } };
};

// Encode and decode both ways, as the two processes would.
function wire<T extends Actions, W extends boolean>(g: ActionGroup<T, W>, req: unknown, answer: (body: never) => unknown): unknown {
  const w = new XdrWriter();
  g.request.encode(w, req as never);
  const r = new XdrReader(w.finish());
  const body = g.request.decode(r);
  r.ensureConsumed('request');
  const a = new XdrWriter();
  g.answer.encode(a, answer(body as never) as never);
  const ar = new XdrReader(a.finish());
  const out = g.answer.decode(ar);
  ar.ensureConsumed('answer');
  return out;
}

const admin = { user: 'unix:root', tenant: '', requestId: 'r1', auditHead: '' };
const tenant = { ...admin, tenant: 'acme' };

test('every action over the wire', () => {
  const ctx = ctxOf();
  expect(wire(IFACE_READ, { action: 'list' }, (b) => answerIfaceRead(ctx, b))).toEqual({
    action: 'list',
    ifaces: [{ name: 'eth1', mac: 'aa:bb:cc:dd:ee:ff', active: true }],
  });
  expect(wire(IFACE_READ, { action: 'get', name: 'eth1' }, (b) => answerIfaceRead(ctx, b))).toMatchObject({ action: 'get', active: true, def: { mtu: 1492 } });
  expect(wire(IFACE_WRITE, { action: 'stop', actor: admin, name: 'eth1' }, (b) => answerIfaceWrite(ctx, b))).toEqual({ action: 'stop' });
  expect(wire(IFACE_WRITE, { action: 'begin', actor: admin }, (b) => answerIfaceWrite(ctx, b))).toEqual({ action: 'begin' });
  expect(wire(IFACE_WRITE, { action: 'rollback', actor: admin }, (b) => answerIfaceWrite(ctx, b))).toEqual({ action: 'rollback' });
  expect(wire(NODEDEV_READ, { action: 'get', name: 'computer' }, (b) => answerNodeDevRead(ctx, b))).toMatchObject({
    action: 'get',
    name: 'computer',
    parent: null,
  });
  const vhba = {
    action: 'create',
    actor: admin,
    parent: 'scsi_host1',
    parentWwnn: null,
    parentWwpn: null,
    parentFabricWwn: null,
    wwnn: '2001001b32a9da4e',
    wwpn: '2101001b32a9da4e',
  };
  expect(wire(NODEDEV_WRITE, vhba, (b) => answerNodeDevWrite(ctx, b))).toEqual({ action: 'create', name: 'scsi_host12' });
  expect(wire(NODEDEV_WRITE, { action: 'destroy', actor: admin, name: 'scsi_host12' }, (b) => answerNodeDevWrite(ctx, b))).toEqual({ action: 'destroy' });
  expect(wire(NODEDEV_READ, { action: 'list' }, (b) => answerNodeDevRead(ctx, b))).toMatchObject({ action: 'list', devices: { length: 4 } });
  expect(wire(HOST_READ, { action: 'sysinfo' }, (b) => answerHostRead(ctx, b))).toMatchObject({ action: 'sysinfo', sysinfo: { type: 'smbios' } });
  expect(wire(HOST_READ, { action: 'cpuStats', cpuNum: -1 }, (b) => answerHostRead(ctx, b))).toMatchObject({ action: 'cpuStats', stats: { length: 4 } });
  expect(wire(HOST_READ, { action: 'cpuMap' }, (b) => answerHostRead(ctx, b))).toEqual({ action: 'cpuMap', cpus: 8, online: 3, map: Buffer.from([0x15]) });
  expect(wire(HOST_READ, { action: 'cpuModels', arch: 'ppc64' }, (b) => answerHostRead(ctx, b))).toMatchObject({ action: 'cpuModels', models: { length: 7 } });
  expect(wire(HOST_READ, { action: 'freePages', pages: [4, 2048], startCell: 0, cellCount: 2 }, (b) => answerHostRead(ctx, b))).toEqual({
    action: 'freePages',
    counts: [19n, 45n, 97n, 201n],
  });
});

test('a tenant actor changes no host object', () => {
  const ctx = ctxOf();
  expect(() => answerIfaceWrite(ctx, { action: 'undefine', actor: tenant, name: 'eth1' })).toThrow(DriverError);
  expect(() => answerNodeDevWrite(ctx, { action: 'destroy', actor: tenant, name: 'scsi_host11' })).toThrow(/VG_ERR_NO_NODE_DEVICE/);
  expect(answerIfaceRead(ctx, { action: 'list' })).toMatchObject({ ifaces: [{ name: 'eth1', active: true }] });
});

test('a driver without host objects answers "not supported"', () => {
  const bare = { driver: {} };
  expect(() => answerIfaceRead(bare, { action: 'list' })).toThrow('VG_ERR_NOT_SUPPORTED: virConnectListAllInterfaces');
  expect(() => answerNodeDevWrite(bare, { action: 'destroy', actor: admin, name: 'x' })).toThrow('VG_ERR_NOT_SUPPORTED');
  expect(() => answerHostRead(bare, { action: 'sysinfo' })).toThrow('VG_ERR_NOT_SUPPORTED: virConnectGetSysinfo');
});

test('the group decoders refuse bad fields (names, WWNs, enums, unknown actions)', () => {
  const enc = (g: { request: { encode(w: XdrWriter, v: never): void; decode(r: XdrReader): unknown } }, v: unknown) => {
    const w = new XdrWriter();
    g.request.encode(w, v as never);
    return () => g.request.decode(new XdrReader(w.finish()));
  };
  expect(enc(IFACE_READ, { action: 'get', name: '../etc' })).toThrow(expect.objectContaining({ code: 'VG_ERR_IPC_VALIDATION' }));
  expect(
    enc(NODEDEV_WRITE, {
      action: 'create',
      actor: admin,
      parent: null,
      parentWwnn: null,
      parentWwpn: null,
      parentFabricWwn: null,
      wwnn: 'zz',
      wwpn: '2101001b32a9da4e',
    }),
  ).toThrow(expect.objectContaining({ code: 'VG_ERR_IPC_VALIDATION' }));
  expect(enc(HOST_READ, { action: 'cpuModels', arch: 'x86 64' })).toThrow(expect.objectContaining({ code: 'VG_ERR_IPC_VALIDATION' }));
  expect(enc(HOST_READ, { action: 'freePages', pages: [4, 8], startCell: 0, cellCount: 1000 })).toThrow(
    expect.objectContaining({ code: 'VG_ERR_IPC_VALIDATION' }),
  );
  const w = new XdrWriter();
  w.u32(99);
  expect(() => IFACE_READ.request.decode(new XdrReader(w.finish()))).toThrow(/unknown IFACE_READ action 99/);
});
