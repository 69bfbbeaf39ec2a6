// SPDX-License-Identifier: Apache-2.0
// TestNetworks: libvirt test_driver.c's network state machine over typed configs, its records, events and tenant rule.
import { DriverError } from '../../../src/privileged/drivers/driver';
import { DEFAULT_NETWORK, type NetworkDriverContext, type NetworkObjectEvent, TestNetworks } from '../../../src/privileged/drivers/test-networks';
import { type NetworkConfig, UpdateCommand, UpdateSection } from '../../../src/ipc/objects/network';
import { formatNetworkXml, parseNetworkXml } from '../../../src/unprivileged/xml/network';

class Records {
  readonly maps = new Map<string, Map<string, unknown>>();
  failNext = false;
  load(type: string): Map<string, unknown> {
    return new Map(this.maps.get(type) ?? []);
  }
  put(type: string, key: string, json: unknown): void {
    if (this.failNext) throw new Error('ENOSPC');
    const m = this.maps.get(type) ?? new Map<string, unknown>();
    if (json === null) m.delete(key);
    else m.set(key, JSON.parse(JSON.stringify(json)));
    this.maps.set(type, m);
  }
}

function driver(records = new Records(), firstStart = true) {
  const events: NetworkObjectEvent[] = [];
  const ctx: NetworkDriverContext = { records, emit: (e) => events.push(e), firstStart };
  return { nets: new TestNetworks(ctx), records, events };
}

const HOST = { tenant: '' };
const ACME = { tenant: 'acme' };
const GLOBEX = { tenant: 'globex' };
const cfg = (name: string, extra = ''): NetworkConfig =>
  parseNetworkXml(
    `<network><name>${name}</name><ip address='10.7.0.1' prefix='24'><dhcp><range start='10.7.0.2' end='10.7.0.9'/></dhcp></ip>${extra}</network>`,
  );

async function code(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(DriverError);
    return `${(e as DriverError).code}: ${(e as DriverError).detail}`;
  }
  throw new Error('expected a DriverError');
}

test('first start seeds the shared, active, persistent `default` network (as net-list --all shows it); later starts do not', () => {
  const { nets, records } = driver();
  expect(nets.list()).toEqual([{ name: 'default', uuid: DEFAULT_NETWORK.uuid, tenant: '', active: true, persistent: true, autostart: false }]);
  expect(records.maps.get('network')?.size).toBe(1);
  const empty = new Records();
  expect(driver(empty, false).nets.list()).toEqual([]);
});

test('define, start, destroy, undefine: states, events and records as the test driver has them', async () => {
  const { nets, events, records } = driver();
  const c = cfg('lab');
  const s = await nets.define(c, ACME);
  expect(s).toMatchObject({ name: 'lab', tenant: 'acme', active: false, persistent: true, autostart: false });
  expect(await nets.start(c.uuid, ACME)).toMatchObject({ active: true });
  expect(await code(nets.start(c.uuid, ACME))).toBe("VG_ERR_DOMAIN_STATE: Network 'lab' is already running");
  expect(await code(nets.undefine(c.uuid, ACME))).toBe("VG_ERR_DOMAIN_STATE: Network 'lab' is still running");
  expect(await nets.setAutostart(c.uuid, true, ACME)).toMatchObject({ autostart: true });
  expect(await nets.destroy(c.uuid, ACME)).toMatchObject({ active: false, persistent: true });
  await nets.undefine(c.uuid, ACME);
  expect(nets.list().map((n) => n.name)).toEqual(['default']);
  expect(events.map((e) => [e.name, e.event, e.detail, e.tenant])).toEqual([
    ['lab', 0, 0, 'acme'],
    ['lab', 2, 0, 'acme'],
    ['lab', 3, 0, 'acme'],
    ['lab', 1, 0, 'acme'],
  ]);
  expect([...records.maps.get('network')!.keys()]).toEqual(['dd8fe884-6c02-601e-7551-cca97df1c5df']);
});

test('create makes a transient active network that destroy removes', async () => {
  const { nets, events } = driver();
  const c = cfg('tmp');
  expect(await nets.create(c, HOST)).toMatchObject({ active: true, persistent: false, tenant: '' });
  expect(await code(nets.create(c, HOST))).toBe("VG_ERR_DOMAIN_STATE: network is already active as 'tmp'");
  await nets.destroy(c.uuid, HOST);
  expect(await code(() => nets.lookup({ name: 'tmp' }))).toBe("VG_ERR_NO_NETWORK: no network with matching name 'tmp'");
  expect(events.map((e) => e.event)).toEqual([2, 3]);
});

test('redefining an active network changes its config only after destroy; define makes a transient one persistent', async () => {
  const { nets } = driver();
  const c = cfg('t2');
  await nets.create(c, HOST);
  const changed = { ...cfg('t2', "<mtu size='1400'/>"), uuid: c.uuid };
  expect(await nets.define(changed, HOST)).toMatchObject({ active: true, persistent: true });
  expect(nets.get(c.uuid, false).config.mtu).toBe(0);
  expect(nets.get(c.uuid, true).config.mtu).toBe(1400);
  await nets.destroy(c.uuid, HOST);
  expect(nets.get(c.uuid, false).config.mtu).toBe(1400);
  expect(nets.lookup({ uuid: c.uuid })).toMatchObject({ active: false, persistent: true });
});

test('name and uuid clashes answer as virNetworkObjAssignDef does', async () => {
  const { nets } = driver();
  expect(await code(nets.define({ ...cfg('default'), uuid: Buffer.alloc(16, 1) }, HOST))).toBe(
    "VG_ERR_NETWORK_EXISTS: network 'default' already exists with uuid dd8fe884-6c02-601e-7551-cca97df1c5df",
  );
  expect(await code(nets.define({ ...cfg('other'), uuid: DEFAULT_NETWORK.uuid }, HOST))).toBe(
    "VG_ERR_NETWORK_EXISTS: network 'default' is already defined with uuid dd8fe884-6c02-601e-7551-cca97df1c5df",
  );
});

test("a tenant never changes, undefines or learns the uuid of another tenant's (or the shared) network", async () => {
  const { nets } = driver();
  const a = cfg('a-net');
  await nets.define(a, ACME);
  for (const op of [
    () => nets.start(a.uuid, GLOBEX),
    () => nets.destroy(a.uuid, GLOBEX),
    () => nets.undefine(a.uuid, GLOBEX),
    () => nets.setAutostart(a.uuid, true, GLOBEX),
    () => nets.destroy(DEFAULT_NETWORK.uuid, ACME),
  ])
    expect(await code(op())).toMatch(/^VG_ERR_NO_NETWORK: no network with matching uuid/);
  expect(await code(nets.define({ ...cfg('a-net'), uuid: Buffer.alloc(16, 2) }, GLOBEX))).toBe('VG_ERR_NETWORK_EXISTS: name or uuid is not available');
  expect(await code(nets.define({ ...cfg('x'), uuid: a.uuid }, GLOBEX))).toBe('VG_ERR_NETWORK_EXISTS: name or uuid is not available');
  expect(await code(nets.define(cfg('default'), ACME))).toBe('VG_ERR_NETWORK_EXISTS: name or uuid is not available');
  // The host (no tenant) may act on every network; the network keeps its tenant.
  expect(await nets.start(a.uuid, HOST)).toMatchObject({ tenant: 'acme', active: true });
});

test('state survives a restart through the records, and a corrupt record is skipped with a warning', async () => {
  const { nets, records } = driver();
  const c = cfg('keep', "<bridge name='vbr7'/>");
  await nets.define(c, ACME);
  await nets.setAutostart(c.uuid, true, ACME);
  records.maps.get('network')!.set('00000000-0000-0000-0000-000000000000', { config: { uuid: 'zz' } });
  const warnings: string[] = [];
  const again = new TestNetworks({ records, emit: () => undefined, firstStart: false }, (m) => warnings.push(m));
  expect(again.lookup({ name: 'keep' })).toMatchObject({ tenant: 'acme', autostart: true, persistent: true, active: false });
  expect(formatNetworkXml(again.get(c.uuid, false).config)).toBe(formatNetworkXml(c));
  expect(warnings).toEqual([expect.stringMatching(/^network record 00000000-0000-0000-0000-000000000000 ignored/)]);
});

test('a failing record write changes nothing and emits nothing', async () => {
  const { nets, records, events } = driver();
  records.failNext = true;
  await expect(nets.define(cfg('nope'), HOST)).rejects.toThrow('ENOSPC');
  await expect(nets.destroy(DEFAULT_NETWORK.uuid, HOST)).rejects.toThrow('ENOSPC');
  records.failNext = false;
  expect(nets.list()).toEqual([expect.objectContaining({ name: 'default', active: true })]);
  expect(events).toEqual([]);
});

test('networkUpdate on DHCP hosts and ranges: live vs config, libvirt messages', async () => {
  const { nets } = driver();
  const u = DEFAULT_NETWORK.uuid;
  const host = { mac: '52:54:00:00:00:01', id: '', name: 'vm1', ip: '192.168.122.50' };
  const upd = (command: number, item: object, live = false, config = false) =>
    nets.update({ uuid: u, command, parentIndex: -1, live, config, item: item as never }, HOST);
  // default is active: AFFECT_CURRENT = live only.
  await upd(UpdateCommand.ADD_LAST, { section: UpdateSection.IP_DHCP_HOST, host });
  expect(nets.get(u, false).config.ips[0].hosts).toEqual([host]);
  expect(nets.get(u, true).config.ips[0].hosts).toEqual([]);
  expect(await code(upd(UpdateCommand.ADD_FIRST, { section: UpdateSection.IP_DHCP_HOST, host }))).toBe(
    `VG_ERR_DOMAIN_STATE: there is an existing dhcp host entry in network 'default' that matches "<host mac='52:54:00:00:00:01' name='vm1' ip='192.168.122.50'/>"`,
  );
  await upd(UpdateCommand.ADD_LAST, { section: UpdateSection.IP_DHCP_HOST, host }, false, true);
  expect(nets.get(u, true).config.ips[0].hosts).toEqual([host]);
  await upd(UpdateCommand.DELETE, { section: UpdateSection.IP_DHCP_HOST, host: { mac: '', id: '', name: 'vm1', ip: '' } }, true, true);
  expect(nets.get(u, false).config.ips[0].hosts).toEqual([]);
  expect(nets.get(u, true).config.ips[0].hosts).toEqual([]);
  const range = { start: '192.168.122.2', end: '192.168.122.254' };
  expect(await code(upd(UpdateCommand.MODIFY, { section: UpdateSection.IP_DHCP_RANGE, range }))).toBe(
    'VG_ERR_NOT_SUPPORTED: dhcp ranges cannot be modified, only added or deleted',
  );
  await upd(UpdateCommand.DELETE, { section: UpdateSection.IP_DHCP_RANGE, range });
  expect(nets.get(u, false).config.ips[0].ranges).toEqual([]);
  await nets.destroy(u, HOST);
  expect(await code(upd(UpdateCommand.DELETE, { section: UpdateSection.IP_DHCP_RANGE, range }, true))).toBe('VG_ERR_DOMAIN_STATE: network is not running');
  const t = cfg('tr');
  await nets.create(t, HOST);
  expect(
    await code(
      nets.update(
        { uuid: t.uuid, command: 3, parentIndex: 0, live: false, config: true, item: { section: 5, range: { start: '10.7.0.20', end: '10.7.0.30' } } },
        HOST,
      ),
    ),
  ).toBe('VG_ERR_DOMAIN_STATE: cannot change persistent config of a transient network');
});
