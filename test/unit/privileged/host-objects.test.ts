// SPDX-License-Identifier: Apache-2.0
// The test driver's host objects: seeded as test:///default on a first start, the state machines libvirt 9.0's
// test_driver.c runs (interfaces, their change transaction, vHBA create/destroy), durable records restored on a
// restart, and the tenant rule (host objects change only for an actor without a tenant).
import fs from 'node:fs';
import path from 'node:path';
import { nodeDevEventUuid } from '../../../src/ipc/objects/host-objects';
import { DriverError } from '../../../src/privileged/drivers/driver';
import type { ObjectEvent } from '../../../src/ipc/program';
import type { HostObjectsContext } from '../../../src/privileged/drivers/host-objects-driver';
import { TEST_IFACES, TEST_NODE_DEVICES, TestHostFacts, TestInterfaces, TestNodeDevices } from '../../../src/privileged/drivers/test-host-objects';
import { parseInterfaceXml } from '../../../src/unprivileged/xml/interface';

class MemoryContext implements HostObjectsContext {
  readonly store = new Map<string, Map<string, string>>();
  readonly events: ObjectEvent[] = [];
  firstStart = true;
  full = false; // a full disk: put throws before anything changes
  readonly records = {
    load: (type: string) => new Map(this.store.get(type) ?? []),
    put: (type: string, key: string, json: string | null) => {
      if (this.full) throw new Error('ENOSPC');
      const m = this.store.get(type) ?? new Map<string, string>();
      if (json === null) m.delete(key);
      else m.set(key, json);
      this.store.set(type, m);
    },
  };
  warn(m: string) {
    this.warnings.push(m);
  }
  readonly warnings: string[] = [];
  emit(ev: ObjectEvent) {
    this.events.push(ev);
  }
  restart(): MemoryContext {
    const c = new MemoryContext();
    for (const [t, m] of this.store) c.store.set(t, new Map(m));
    c.firstStart = false;
    return c;
  }
}

const code = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    if (e instanceof DriverError) return `${e.code}: ${e.detail}`;
    throw e;
  }
  return 'ok';
};

const BR0 = parseInterfaceXml(`<interface type='bridge' name='br0'><start mode='onboot'/><bridge stp='off'>
  <interface type='ethernet' name='eth0'><mac address='ab:bb:cc:dd:ee:ff'/></interface></bridge></interface>`);

describe('test interfaces', () => {
  test('first start: eth1, active, as iface-list --all shows it', () => {
    const ifs = new TestInterfaces(new MemoryContext());
    expect(ifs.list()).toEqual([{ name: 'eth1', mac: 'aa:bb:cc:dd:ee:ff', active: true }]);
    expect(ifs.get('eth1')).toEqual({ def: TEST_IFACES[0], active: true });
    expect(code(() => ifs.get('lo'))).toBe("VG_ERR_NO_INTERFACE: : no interface with matching name 'lo'");
  });

  test('define / start / destroy / undefine, with libvirt wrong-state answers', () => {
    const ifs = new TestInterfaces(new MemoryContext());
    expect(ifs.define(BR0, '')).toEqual({ name: 'br0', mac: '', active: false });
    expect(code(() => ifs.stop('br0', ''))).toBe('VG_ERR_IFACE_STATE: ');
    ifs.start('br0', '');
    expect(code(() => ifs.start('br0', ''))).toBe('VG_ERR_IFACE_STATE: ');
    // redefining keeps the state (virInterfaceObjListAssignDef)
    expect(ifs.define({ ...BR0, mtu: 1400 }, '').active).toBe(true);
    ifs.stop('eth1', '');
    expect(ifs.list()).toEqual([
      { name: 'eth1', mac: 'aa:bb:cc:dd:ee:ff', active: false },
      { name: 'br0', mac: '', active: true },
    ]);
    ifs.undefine('br0', '');
    expect(code(() => ifs.undefine('br0', ''))).toBe("VG_ERR_NO_INTERFACE: : no interface with matching name 'br0'");
  });

  test('change transaction: begin twice, commit/rollback without one, rollback restores all inactive', () => {
    const ifs = new TestInterfaces(new MemoryContext());
    expect(code(() => ifs.commit(''))).toBe('VG_ERR_IFACE_STATE: : no transaction running, nothing to be committed.');
    expect(code(() => ifs.rollback(''))).toBe('VG_ERR_IFACE_STATE: : no transaction running, nothing to rollback.');
    ifs.begin('');
    expect(code(() => ifs.begin(''))).toBe('VG_ERR_IFACE_STATE: : there is another transaction running.');
    ifs.define(BR0, '');
    ifs.undefine('eth1', '');
    ifs.rollback('');
    expect(ifs.list()).toEqual([{ name: 'eth1', mac: 'aa:bb:cc:dd:ee:ff', active: false }]);
    ifs.begin('');
    ifs.define(BR0, '');
    ifs.commit('');
    expect(ifs.list().map((i) => i.name)).toEqual(['eth1', 'br0']);
  });

  test('a tenant changes nothing: not found for named objects, denied for new ones and transactions', () => {
    const ctx = new MemoryContext();
    const ifs = new TestInterfaces(ctx);
    expect(code(() => ifs.stop('eth1', 'acme'))).toBe("VG_ERR_NO_INTERFACE: : no interface with matching name 'eth1'");
    expect(code(() => ifs.undefine('eth1', 'acme'))).toBe("VG_ERR_NO_INTERFACE: : no interface with matching name 'eth1'");
    expect(code(() => ifs.define(BR0, 'acme'))).toMatch(/^VG_ERR_ACCESS_DENIED/);
    expect(code(() => ifs.begin('acme'))).toMatch(/^VG_ERR_ACCESS_DENIED/);
    expect(ifs.list()).toEqual([{ name: 'eth1', mac: 'aa:bb:cc:dd:ee:ff', active: true }]);
  });

  test('records: a restart restores definitions, states and order; a full disk changes nothing', () => {
    const ctx = new MemoryContext();
    const ifs = new TestInterfaces(ctx);
    ifs.define(BR0, '');
    ifs.stop('eth1', '');
    const again = new TestInterfaces(ctx.restart());
    expect(again.list()).toEqual(ifs.list());
    expect(again.get('br0').def).toEqual(BR0);
    ctx.full = true;
    expect(() => ifs.start('eth1', '')).toThrow('ENOSPC');
    expect(ifs.get('eth1').active).toBe(false);
  });

  test('a damaged record is skipped with a warning, never trusted', () => {
    const ctx = new MemoryContext();
    new TestInterfaces(ctx);
    const [key] = [...ctx.store.get('iface')!.keys()];
    ctx.store.get('iface')!.set(key, JSON.stringify({ def: { ...TEST_IFACES[0], name: 'eth1/../x' }, active: true, seq: 0 }));
    const c2 = ctx.restart();
    expect(new TestInterfaces(c2).list()).toEqual([]);
    expect(c2.warnings[0]).toMatch(/ignoring interface record/);
  });
});

describe('test node devices', () => {
  const VHBA = { parent: 'scsi_host1', parentWwnn: null, parentWwpn: null, parentFabricWwn: null, wwnn: '2001001b32a9da4e', wwpn: '2101001b32a9da4e' };

  test('first start: the four devices of test:///default, in its order', () => {
    const devs = new TestNodeDevices(new MemoryContext());
    expect(devs.list()).toEqual(TEST_NODE_DEVICES);
    expect(code(() => devs.get('test-scsi-host-vport'))).toBe("VG_ERR_NO_NODE_DEVICE: : no node device with matching name 'test-scsi-host-vport'");
  });

  test('create: scsi_host11 copied as scsi_host12 with the new WWNs, CREATED event; again replaces it', () => {
    const ctx = new MemoryContext();
    const devs = new TestNodeDevices(ctx);
    expect(devs.create(VHBA, '')).toEqual({ name: 'scsi_host12' });
    expect(devs.get('scsi_host12')).toEqual({
      name: 'scsi_host12',
      parent: 'scsi_host1',
      caps: [{ type: 'scsi_host', host: 11, uniqueId: 10, fc: { wwnn: VHBA.wwnn, wwpn: VHBA.wwpn, fabricWwn: '2000000043214321' }, vports: null }],
    });
    expect(ctx.events).toEqual([{ type: 'nodedev', name: 'scsi_host12', uuid: nodeDevEventUuid('scsi_host12'), tenant: '', event: 0, detail: 0 }]);
    devs.create({ ...VHBA, wwpn: '2101001b32a9da4f' }, '');
    expect(devs.list().length).toBe(5);
  });

  test('create: the parent must exist and do vport operations (by name, WWNs, fabric or any)', () => {
    const devs = new TestNodeDevices(new MemoryContext());
    expect(code(() => devs.create({ ...VHBA, parent: 'nope' }, ''))).toBe("VG_ERR_DOMAIN_INTERNAL: Could not find parent device for 'new device'");
    expect(code(() => devs.create({ ...VHBA, parent: 'scsi_host11' }, ''))).toBe(
      'VG_ERR_DOMAIN_INTERNAL: Parent device scsi_host11 is not capable of vport operations',
    );
    expect(code(() => devs.create({ ...VHBA, parent: null, parentWwnn: '2000000056785678', parentWwpn: '1000000056785678' }, ''))).toBe('ok');
    expect(code(() => devs.create({ ...VHBA, parent: null, parentFabricWwn: '2000000099999999' }, ''))).toBe(
      "VG_ERR_DOMAIN_INTERNAL: Could not find parent device for 'new device'",
    );
    expect(code(() => devs.create({ ...VHBA, parent: null }, ''))).toBe('ok');
  });

  test('destroy: fc_host devices with a parent go (DELETED event); others are refused', () => {
    const ctx = new MemoryContext();
    const devs = new TestNodeDevices(ctx);
    devs.create(VHBA, '');
    devs.destroy('scsi_host12', '');
    expect(ctx.events.map((e) => [e.name, e.event])).toEqual([
      ['scsi_host12', 0],
      ['scsi_host12', 1],
    ]);
    expect(code(() => devs.destroy('scsi_host12', ''))).toBe("VG_ERR_NO_NODE_DEVICE: : no node device with matching name 'scsi_host12'");
    expect(code(() => devs.destroy('computer', ''))).toBe('VG_ERR_DOMAIN_INTERNAL: Device is not a fibre channel HBA');
    devs.destroy('scsi_host11', '');
    expect(code(() => devs.create(VHBA, ''))).toMatch(/^VG_ERR_DOMAIN_INTERNAL: no vHBA template device/);
  });

  test('tenants: destroy finds nothing, create is denied', () => {
    const devs = new TestNodeDevices(new MemoryContext());
    expect(code(() => devs.destroy('scsi_host11', 'acme'))).toMatch(/^VG_ERR_NO_NODE_DEVICE/);
    expect(code(() => devs.create(VHBA, 'acme'))).toMatch(/^VG_ERR_ACCESS_DENIED/);
  });

  test('records survive a restart, system uuid included', () => {
    const ctx = new MemoryContext();
    const devs = new TestNodeDevices(ctx);
    devs.create(VHBA, '');
    devs.destroy('scsi_host2', '');
    expect(new TestNodeDevices(ctx.restart()).list()).toEqual(devs.list());
  });
});

describe('test host facts', () => {
  const f = new TestHostFacts();
  test('values of test_driver.c', () => {
    expect(f.cpuStats().map((s) => [s.field, s.value])).toEqual([
      ['user', 9797400000n],
      ['kernel', 34678723400000n],
      ['idle', 87264900000n],
      ['iowait', 763600000n],
    ]);
    expect(f.cpuMap()).toEqual({ cpus: 8, online: 3, map: Buffer.from([0x15]) });
    expect(f.freePages([4, 8, 2048, 1048576], 0, 1)).toEqual([19n, 45n, 97n, 201n]);
    expect(f.sysinfo().sections[0].entries[1]).toEqual({ name: 'version', value: 'G4ETA1WW (2.61 )' });
  });
  test('free pages: the C int overflow, widened as C does', () => {
    // x_n = 13 * 2^n - 7: positive up to n = 31, then -7 in 32 bits, which C widens to 2^64 - 7
    const counts = f.freePages([4], 0, 40);
    expect(counts[30]).toBe(2147483641n);
    expect(counts[31]).toBe(2n ** 64n - 7n);
  });
  test('CPU models per architecture', () => {
    const virsh = fs.readFileSync(path.join(__dirname, '../../fixtures/host-objects/cpu-models-x86_64.txt'), 'utf8').trim().split('\n');
    expect(f.cpuModels('x86_64')).toEqual(virsh);
    expect(f.cpuModels('i686')).toEqual(virsh);
    expect(f.cpuModels('aarch64')).toEqual([]);
    expect(code(() => f.cpuModels('foo'))).toBe('VG_ERR_DOMAIN_ARG: cannot find architecture foo');
    expect(code(() => f.cpuModels('none'))).toBe('VG_ERR_DOMAIN_ARG: cannot find architecture none');
    expect(code(() => f.cpuModels('alpha'))).toBe("VG_ERR_NOT_SUPPORTED: 'alpha' architecture is not supported by CPU driver");
  });
});
