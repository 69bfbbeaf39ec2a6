// SPDX-License-Identifier: Apache-2.0
// TestNetworks: libvirt test_driver.c's network state machine over typed configs, its records, events and tenant rule.
import { DriverError } from '../../../src/privileged/drivers/driver';
import type { ObjectEvent } from '../../../src/ipc/program';
import type { ObjectDriverContext } from '../../../src/privileged/drivers/object-context';
import { DEFAULT_NETWORK, TestNetworks } from '../../../src/privileged/drivers/test-networks';
import { type NetworkConfig, UpdateCommand, UpdateSection } from '../../../src/ipc/objects/network';
import { formatNetworkXml, parseNetworkXml } from '../../../src/unprivileged/xml/network';

class Records {
  readonly maps = new Map<string, Map<string, string>>();
  failNext = false;
  load(type: string): Map<string, string> {
    return new Map(this.maps.get(type) ?? []);
  }
  put(type: string, key: string, json: string | null): void {
    if (this.failNext) throw new Error('ENOSPC');
    const m = this.maps.get(type) ?? new Map<string, string>();
    if (json === null) m.delete(key);
    else m.set(key, json);
    this.maps.set(type, m);
  }
}

function driver(records = new Records(), firstStart = true) {
  const events: ObjectEvent[] = [];
  const ctx: ObjectDriverContext = { records, emit: (e) => events.push(e), firstStart, warn: () => undefined };
  return { nets: new TestNetworks(ctx), records, events };
}

const HOST = { tenant: '' };
const ACME = { tenant: 'acme' };
const GLOBEX = { tenant: 'globex' };
const cfg = (name: string, extra = ''): NetworkConfig =>
  parseNetworkXml(
    `<network><name>${name}</name><ip address='10.7.0.1' prefix='24'><dhcp><range start='10.7.0.2' end='10.7.0.9'/></dhcp></ip>${extra}</network>`,
  );

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DriverError);
    return `${(e as DriverError).code}: ${(e as DriverError).detail}`;
  }
  throw new Error('expected a DriverError');
}

test('first start seeds the shared, active, persistent `default` network (as net-list --all shows it), once', () => {
  const { nets, records } = driver();
  expect(nets.list()).toEqual([{ name: 'default', uuid: DEFAULT_NETWORK.uuid, tenant: '', active: true, persistent: true, autostart: false }]);
  expect([...records.maps.keys()].map((t) => [t, records.maps.get(t)!.size])).toEqual([
    ['network', 1],
    ['netseeded', 1],
  ]);
  // Once seeded, an undefined default stays undefined across restarts.
  nets.destroy(DEFAULT_NETWORK.uuid, HOST);
  nets.undefine(DEFAULT_NETWORK.uuid, HOST);
  expect(driver(records, false).nets.list()).toEqual([]);
});

test('a seed that cannot be saved is served from memory, refuses writes until saved, and is seeded again at the next start', () => {
  const records = new Records();
  records.failNext = true;
  const { nets } = driver(records);
  expect(nets.list().map((n) => n.name)).toEqual(['default']);
  expect(code(() => nets.destroy(DEFAULT_NETWORK.uuid, HOST))).toMatch(/^VG_ERR_STORAGE: the default network is not saved yet: ENOSPC/);
  expect(records.maps.size).toBe(0);
  // A restart before the disk frees: seeded again, nothing lost.
  expect(
    driver(records, false)
      .nets.list()
      .map((n) => n.name),
  ).toEqual(['default']);
  // The disk frees: the next write saves the seed first, then itself.
  records.failNext = false;
  nets.destroy(DEFAULT_NETWORK.uuid, HOST);
  expect(driver(records, false).nets.list()).toEqual([expect.objectContaining({ name: 'default', active: false })]);
});

test('define, start, destroy, undefine: states, events and records as the test driver has them', () => {
  const { nets, events, records } = driver();
  const c = cfg('lab');
  const s = nets.define(c, ACME);
  expect(s).toMatchObject({ name: 'lab', tenant: 'acme', active: false, persistent: true, autostart: false });
  expect(nets.start(c.uuid, ACME)).toMatchObject({ active: true });
  expect(code(() => nets.start(c.uuid, ACME))).toBe("VG_ERR_DOMAIN_STATE: Network 'lab' is already running");
  expect(code(() => nets.undefine(c.uuid, ACME))).toBe("VG_ERR_DOMAIN_STATE: Network 'lab' is still running");
  expect(nets.setAutostart(c.uuid, true, ACME)).toMatchObject({ autostart: true });
  expect(nets.destroy(c.uuid, ACME)).toMatchObject({ active: false, persistent: true });
  nets.undefine(c.uuid, ACME);
  expect(nets.list().map((n) => n.name)).toEqual(['default']);
  expect(events.map((e) => [e.name, e.event, e.detail, e.tenant])).toEqual([
    ['lab', 0, 0, 'acme'],
    ['lab', 2, 0, 'acme'],
    ['lab', 3, 0, 'acme'],
    ['lab', 1, 0, 'acme'],
  ]);
  expect([...records.maps.get('network')!.keys()]).toEqual(['dd8fe884-6c02-601e-7551-cca97df1c5df']);
});

test('create makes a transient active network that destroy removes', () => {
  const { nets, events } = driver();
  const c = cfg('tmp');
  expect(nets.create(c, HOST)).toMatchObject({ active: true, persistent: false, tenant: '' });
  expect(code(() => nets.create(c, HOST))).toBe("VG_ERR_DOMAIN_STATE: network is already active as 'tmp'");
  nets.destroy(c.uuid, HOST);
  expect(code(() => nets.lookup({ name: 'tmp' }))).toBe("VG_ERR_NO_NETWORK: : no network with matching name 'tmp'");
  expect(events.map((e) => e.event)).toEqual([2, 3]);
});

test('redefining an active network changes its config only after destroy; define makes a transient one persistent', () => {
  const { nets } = driver();
  const c = cfg('t2');
  nets.create(c, HOST);
  const changed = { ...cfg('t2', "<mtu size='1400'/>"), uuid: c.uuid };
  expect(nets.define(changed, HOST)).toMatchObject({ active: true, persistent: true });
  expect(nets.get(c.uuid, false).config.mtu).toBe(0);
  expect(nets.get(c.uuid, true).config.mtu).toBe(1400);
  nets.destroy(c.uuid, HOST);
  expect(nets.get(c.uuid, false).config.mtu).toBe(1400);
  expect(nets.lookup({ uuid: c.uuid })).toMatchObject({ active: false, persistent: true });
});

test('name and uuid clashes answer as virNetworkObjAssignDef does', () => {
  const { nets } = driver();
  expect(code(() => nets.define({ ...cfg('default'), uuid: Buffer.alloc(16, 1) }, HOST))).toBe(
    "VG_ERR_NETWORK_EXISTS: network 'default' already exists with uuid dd8fe884-6c02-601e-7551-cca97df1c5df",
  );
  expect(code(() => nets.define({ ...cfg('other'), uuid: DEFAULT_NETWORK.uuid }, HOST))).toBe(
    "VG_ERR_NETWORK_EXISTS: network 'default' is already defined with uuid dd8fe884-6c02-601e-7551-cca97df1c5df",
  );
});

test("a tenant never changes, undefines or learns the uuid of another tenant's (or the shared) network", () => {
  const { nets } = driver();
  const a = cfg('a-net');
  nets.define(a, ACME);
  for (const op of [
    () => nets.start(a.uuid, GLOBEX),
    () => nets.destroy(a.uuid, GLOBEX),
    () => nets.undefine(a.uuid, GLOBEX),
    () => nets.setAutostart(a.uuid, true, GLOBEX),
    () => nets.destroy(DEFAULT_NETWORK.uuid, ACME),
  ])
    expect(code(op)).toMatch(/^VG_ERR_NO_NETWORK: : no network with matching uuid/);
  expect(code(() => nets.define({ ...cfg('a-net'), uuid: Buffer.alloc(16, 2) }, GLOBEX))).toBe('VG_ERR_NETWORK_EXISTS: name or uuid is not available');
  expect(code(() => nets.define({ ...cfg('x'), uuid: a.uuid }, GLOBEX))).toBe('VG_ERR_NETWORK_EXISTS: name or uuid is not available');
  expect(code(() => nets.define(cfg('default'), ACME))).toBe('VG_ERR_NETWORK_EXISTS: name or uuid is not available');
  // The host (no tenant) may act on every network; the network keeps its tenant.
  expect(nets.start(a.uuid, HOST)).toMatchObject({ tenant: 'acme', active: true });
});

test('state survives a restart through the records, and a corrupt record is skipped with a warning', () => {
  const { nets, records } = driver();
  const c = cfg('keep', "<bridge name='vbr7'/>");
  nets.define(c, ACME);
  nets.setAutostart(c.uuid, true, ACME);
  records.maps.get('network')!.set('00000000-0000-0000-0000-000000000000', JSON.stringify({ config: { uuid: 'zz' } }));
  const warnings: string[] = [];
  const again = new TestNetworks({ records, emit: () => undefined, firstStart: false, warn: (m) => warnings.push(m) });
  expect(again.lookup({ name: 'keep' })).toMatchObject({ tenant: 'acme', autostart: true, persistent: true, active: false });
  expect(formatNetworkXml(again.get(c.uuid, false).config)).toBe(formatNetworkXml(c));
  expect(warnings).toEqual([expect.stringMatching(/^network record 00000000-0000-0000-0000-000000000000 ignored/)]);
});

test('a failing record write changes nothing and emits nothing', () => {
  const { nets, records, events } = driver();
  records.failNext = true;
  expect(() => nets.define(cfg('nope'), HOST)).toThrow('ENOSPC');
  expect(() => nets.destroy(DEFAULT_NETWORK.uuid, HOST)).toThrow('ENOSPC');
  records.failNext = false;
  expect(nets.list()).toEqual([expect.objectContaining({ name: 'default', active: true })]);
  expect(events).toEqual([]);
});

test('networkUpdate on DHCP hosts and ranges: live vs config, libvirt messages', () => {
  const { nets } = driver();
  const u = DEFAULT_NETWORK.uuid;
  const host = { mac: '52:54:00:00:00:01', id: '', name: 'vm1', ip: '192.168.122.50' };
  const upd = (command: number, item: object, live = false, config = false) =>
    nets.update({ uuid: u, command, parentIndex: -1, live, config, item: item as never }, HOST);
  // default is active: AFFECT_CURRENT = live only.
  upd(UpdateCommand.ADD_LAST, { section: UpdateSection.IP_DHCP_HOST, host });
  expect(nets.get(u, false).config.ips[0].hosts).toEqual([host]);
  expect(nets.get(u, true).config.ips[0].hosts).toEqual([]);
  expect(code(() => upd(UpdateCommand.ADD_FIRST, { section: UpdateSection.IP_DHCP_HOST, host }))).toBe(
    `VG_ERR_DOMAIN_STATE: there is an existing dhcp host entry in network 'default' that matches "<host mac='52:54:00:00:00:01' name='vm1' ip='192.168.122.50'/>"`,
  );
  upd(UpdateCommand.ADD_LAST, { section: UpdateSection.IP_DHCP_HOST, host }, false, true);
  expect(nets.get(u, true).config.ips[0].hosts).toEqual([host]);
  upd(UpdateCommand.DELETE, { section: UpdateSection.IP_DHCP_HOST, host: { mac: '', id: '', name: 'vm1', ip: '' } }, true, true);
  expect(nets.get(u, false).config.ips[0].hosts).toEqual([]);
  expect(nets.get(u, true).config.ips[0].hosts).toEqual([]);
  const range = { start: '192.168.122.2', end: '192.168.122.254' };
  expect(code(() => upd(UpdateCommand.MODIFY, { section: UpdateSection.IP_DHCP_RANGE, range }))).toBe(
    'VG_ERR_NOT_SUPPORTED: dhcp ranges cannot be modified, only added or deleted',
  );
  upd(UpdateCommand.DELETE, { section: UpdateSection.IP_DHCP_RANGE, range });
  expect(nets.get(u, false).config.ips[0].ranges).toEqual([]);
  nets.destroy(u, HOST);
  expect(code(() => upd(UpdateCommand.DELETE, { section: UpdateSection.IP_DHCP_RANGE, range }, true))).toBe('VG_ERR_DOMAIN_STATE: network is not running');
  const t = cfg('tr');
  nets.create(t, HOST);
  expect(
    code(() =>
      nets.update(
        { uuid: t.uuid, command: 3, parentIndex: 0, live: false, config: true, item: { section: 5, range: { start: '10.7.0.20', end: '10.7.0.30' } } },
        HOST,
      ),
    ),
  ).toBe('VG_ERR_DOMAIN_STATE: cannot change persistent config of a transient network');
});
