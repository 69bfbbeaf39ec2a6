// SPDX-License-Identifier: Apache-2.0
// The front end's read mirror of networks, pools, volumes, interfaces and node devices, over a real helper (in this
// process, on its unix socket) and the real dispatcher: lists, lookups, info and is-active/is-persistent cost no helper
// round trip (counted at the helper client); XML dumps still do; tenancy filtering and hidden-lookup denial records
// are as before; a write's change is visible to another connection the moment the write is answered; after a helper
// restart the mirror holds the new helper's state (changed behind the front end's back), not the old one.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DurableRef, EventRecord, IntentRecord, OutcomeRecord } from '../../src/audit/trail';
import type { VgError } from '../../src/common/errors';
import { XdrReader, XdrWriter } from '../../src/common/xdr';
import { parseNetworkXml } from '../../src/unprivileged/xml/network';
import { type RequestOp, requestName } from '../../src/ipc/program';
import { CasbinAuthorizer, PolicySet } from '../../src/policy/engine';
import { MODEL_TEXT, composePolicy } from '../../src/policy/model';
import { runHelper } from '../../src/privileged/helper';
import { TestDriver } from '../../src/privileged/drivers/test-driver';
import { PH } from '../../src/protocol/procs/host-objects';
import { PN } from '../../src/protocol/procs/network';
import type { ProcDef } from '../../src/protocol/procs/remote';
import { PS } from '../../src/protocol/procs/storage';
import { AuditHook } from '../../src/unprivileged/audit-hook';
import { Dispatcher } from '../../src/unprivileged/dispatcher';
import { HelperClient } from '../../src/unprivileged/helper-client';
import { type Identity, Session } from '../../src/unprivileged/session';

const POLICY = `g, x509:admin, host-admin, *
g, x509:alice, owner, acme
g, x509:bob, owner, globex
`;

class MemoryTrail {
  readonly intents: IntentRecord[] = [];
  readonly available = true;
  async intent(rec: IntentRecord): Promise<DurableRef> {
    this.intents.push(rec);
    return { seq: this.intents.length, hash: '0'.repeat(64) };
  }
  async outcome(_rec: OutcomeRecord): Promise<void> {}
  async event(_rec: EventRecord): Promise<void> {}
  denials(): IntentRecord[] {
    return this.intents.filter((r) => r.decision.result === 'deny');
  }
}

const APOOL = "<pool type='dir'><name>apool</name><target><path>/var/lib/libvirt/apool</path></target></pool>";
const AVOL = '<volume><name>a.img</name><capacity>1048576</capacity></volume>';
const netXml = (name: string): string => `<network><name>${name}</name><bridge name='vb${name.slice(-8)}'/></network>`;

describe('object mirror: reads stay in the front end', () => {
  let dir: string;
  let stopHelper: () => Promise<void>;
  let client: HelperClient;
  let dispatcher: Dispatcher;
  let trail: MemoryTrail;
  let authorizer: CasbinAuthorizer;
  const sent: string[] = []; // every helper request, by name (`NETWORK_READ_REQ.list`)
  let n = 0;

  const helperOpts = () => ({
    socket: path.join(dir, 'run', 'helper-sock'),
    stateDir: path.join(dir, 'lib'),
    runtimeDir: path.join(dir, 'run', 'helper'),
    allowUids: [process.getuid?.() ?? 0],
    socketMode: 0o600,
    socketGroup: null,
    driver: 'test' as const,
    sandbox: false,
    journalMaxBytes: 0,
    journal: path.join(dir, 'lib', 'helper-journal.log'),
  });

  const session = (user: string, tenant: string): Session => {
    const identity: Identity = { user, method: 'x509', source: '127.0.0.1:5000', dn: `CN=${user}`, fingerprint: 'AA' };
    const s = new Session({
      id: ++n,
      transport: 'tls',
      readOnly: false,
      secure: true,
      identity,
      evidence: identity,
      maxMessageBytes: 1 << 22,
      maxClientRequests: 8,
      onWrite: () => undefined,
      onClose: () => undefined,
      onBusy: () => undefined,
      dispatch: dispatcher.dispatch,
    });
    s.loginRecordSeen = true;
    s.opened = true;
    s.tenant = tenant;
    return s;
  };

  // One call through the dispatcher; its decoded result (the reply's body follows the 4-byte length and 24-byte header).
  async function call<A, R>(s: Session, def: ProcDef<A, R>, args: A): Promise<R> {
    const w = new XdrWriter(256);
    def.args.encode(w, args);
    const reply = await dispatcher.dispatch(s, {
      def: def as ProcDef,
      header: { prog: 0x20008086, vers: 1, proc: def.proc, type: 0, serial: 1, status: 0 },
      body: new XdrReader(w.finish()),
    });
    return def.ret.decode(new XdrReader(reply, 28));
  }
  const fails = async (p: Promise<unknown>): Promise<string> => {
    try {
      await p;
    } catch (e) {
      return (e as VgError).code;
    }
    throw new Error('expected a failure');
  };
  const waitFor = (event: string): Promise<void> => new Promise((resolve) => client.once(event, () => resolve()));

  let alice: Session;
  let alice2: Session; // alice's second connection
  let bob: Session;
  let admin: Session;

  beforeAll(async () => {
    authorizer = new CasbinAuthorizer(await PolicySet.build(MODEL_TEXT, composePolicy(POLICY).text));
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-object-mirror-'));
    fs.mkdirSync(path.join(dir, 'run'));
    stopHelper = await runHelper(helperOpts());
    client = new HelperClient({ socketPath: path.join(dir, 'run', 'helper-sock'), reconnectMinMs: 20, reconnectMaxMs: 100 });
    const real = client.call.bind(client);
    client.call = ((op: RequestOp, body: never) => (sent.push(requestName(op, body)), real(op, body))) as HelperClient['call'];
    trail = new MemoryTrail();
    dispatcher = new Dispatcher({ helper: client, authorizer, audit: new AuditHook(trail), log: () => undefined });
    client.start();
    await client.waitReady();
    [alice, alice2, bob, admin] = [session('alice', 'acme'), session('alice', 'acme'), session('bob', 'globex'), session('admin', '')];
    await call(alice, PN.NETWORK_DEFINE_XML, { xml: netXml('anet') });
    const { pool } = await call(alice, PS.STORAGE_POOL_DEFINE_XML, { xml: APOOL, flags: 0 });
    await call(alice, PS.STORAGE_POOL_CREATE, { pool, flags: 0 });
    await call(alice, PS.STORAGE_VOL_CREATE_XML, { pool, xml: AVOL, flags: 0 });
  });
  afterAll(async () => {
    client?.close();
    await stopHelper?.().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => (sent.length = 0));

  test('lists, lookups, info and state of every object type: no helper round trip; XML dumps: one', async () => {
    const nets = await call(alice, PN.CONNECT_LIST_ALL_NETWORKS, { needResults: 1, flags: 0 });
    expect(nets.nets.map((x) => x.name).sort()).toEqual(['anet', 'default']);
    const { net } = await call(alice, PN.NETWORK_LOOKUP_BY_NAME, { name: 'anet' });
    expect((await call(alice, PN.NETWORK_LOOKUP_BY_UUID, { uuid: net.uuid })).net.name).toBe('anet');
    expect(await call(alice, PN.NETWORK_IS_ACTIVE, { net })).toEqual({ active: 0 });
    expect(await call(alice, PN.NETWORK_IS_PERSISTENT, { net })).toEqual({ persistent: 1 });
    expect(await call(alice, PN.NETWORK_GET_AUTOSTART, { net })).toEqual({ autostart: 0 });
    expect((await call(alice, PN.CONNECT_NUM_OF_DEFINED_NETWORKS, undefined)).num).toBe(1);

    const pools = await call(alice, PS.CONNECT_LIST_ALL_STORAGE_POOLS, { needResults: 1, flags: 0 });
    expect(pools.pools.map((p) => p.name).sort()).toEqual(['apool', 'default-pool']);
    const { pool } = await call(alice, PS.STORAGE_POOL_LOOKUP_BY_NAME, { name: 'apool' });
    expect((await call(alice, PS.STORAGE_POOL_LOOKUP_BY_UUID, { uuid: pool.uuid })).pool.name).toBe('apool');
    expect(await call(alice, PS.STORAGE_POOL_GET_INFO, { pool })).toMatchObject({ state: 2, allocation: 1048576n });
    expect(await call(alice, PS.STORAGE_POOL_IS_ACTIVE, { pool })).toEqual({ active: 1 });
    expect(await call(alice, PS.STORAGE_POOL_IS_PERSISTENT, { pool })).toEqual({ persistent: 1 });
    const vols = await call(alice, PS.STORAGE_POOL_LIST_ALL_VOLUMES, { pool, needResults: 1, flags: 0 });
    expect(vols.vols.map((v) => v.name)).toEqual(['a.img']);
    const { vol } = await call(alice, PS.STORAGE_VOL_LOOKUP_BY_NAME, { pool, name: 'a.img' });
    expect((await call(alice, PS.STORAGE_VOL_LOOKUP_BY_KEY, { key: vol.key })).vol.name).toBe('a.img');
    expect((await call(alice, PS.STORAGE_VOL_LOOKUP_BY_PATH, { path: vol.key })).vol.name).toBe('a.img');
    expect(await call(alice, PS.STORAGE_VOL_GET_INFO, { vol })).toEqual({ type: 0, capacity: 1048576n, allocation: 1048576n });
    expect(await call(alice, PS.STORAGE_VOL_GET_PATH, { vol })).toEqual({ name: '/var/lib/libvirt/apool/a.img' });

    const ifaces = await call(admin, PH.CONNECT_LIST_ALL_INTERFACES, { needResults: 1, flags: 0 });
    expect(ifaces.ret).toBeGreaterThan(0);
    const iface = ifaces.ifaces[0];
    expect((await call(admin, PH.INTERFACE_LOOKUP_BY_NAME, { name: iface.name })).iface).toEqual(iface);
    expect((await call(admin, PH.INTERFACE_IS_ACTIVE, { iface })).active).toBe(1);
    const devs = await call(admin, PH.CONNECT_LIST_ALL_NODE_DEVICES, { needResults: 1, flags: 0 });
    expect(devs.ret).toBeGreaterThan(0);
    const dev = devs.devices[0].name;
    expect((await call(admin, PH.NODE_DEVICE_LOOKUP_BY_NAME, { name: dev })).dev.name).toBe(dev);
    expect((await call(admin, PH.NODE_DEVICE_NUM_OF_CAPS, { name: dev })).num).toBeGreaterThan(0);
    expect(sent).toEqual([]);

    // Control: a network's XML (its config is not mirrored) and an interface's are helper reads, one each.
    await call(alice, PN.NETWORK_GET_XML_DESC, { net, flags: 0 });
    await call(admin, PH.INTERFACE_GET_XML_DESC, { iface, flags: 0 });
    expect(sent).toEqual(['NETWORK_READ_REQ.get', 'IFACE_READ_REQ.get']);
  });

  test("tenancy: another tenant's objects are filtered from lists, and a lookup of one is 'not found' and a recorded denial", async () => {
    const nets = await call(bob, PN.CONNECT_LIST_ALL_NETWORKS, { needResults: 1, flags: 0 });
    expect(nets.nets.map((x) => x.name)).toEqual(['default']);
    const pools = await call(bob, PS.CONNECT_LIST_ALL_STORAGE_POOLS, { needResults: 1, flags: 0 });
    expect(pools.pools.map((p) => p.name)).toEqual(['default-pool']);
    const before = trail.denials().length;
    expect(await fails(call(bob, PN.NETWORK_LOOKUP_BY_NAME, { name: 'anet' }))).toBe('VG_ERR_NO_NETWORK');
    expect(await fails(call(bob, PS.STORAGE_POOL_LOOKUP_BY_NAME, { name: 'apool' }))).toBe('VG_ERR_NO_STORAGE_POOL');
    expect(await fails(call(bob, PS.STORAGE_VOL_LOOKUP_BY_PATH, { path: '/var/lib/libvirt/apool/a.img' }))).toBe('VG_ERR_NO_STORAGE_VOL');
    const added = trail.denials().slice(before);
    expect(added.map((r) => [r.what.procedure, r.what.object?.name])).toEqual([
      ['networkLookupByName', 'anet'],
      ['storagePoolLookupByName', 'apool'],
      ['storageVolLookupByPath', 'apool/a.img'],
    ]);
    // Absent objects answer as before, and an interface is not a tenant's.
    expect(await fails(call(alice, PN.NETWORK_LOOKUP_BY_NAME, { name: 'nonesuch' }))).toBe('VG_ERR_NO_NETWORK');
    expect(await fails(call(alice, PH.CONNECT_LIST_ALL_INTERFACES, { needResults: 1, flags: 0 }))).toBe('VG_ERR_ACCESS_DENIED');
    expect(sent).toEqual([]);
  });

  test('read-your-writes: a change is seen by another connection as soon as the write is answered', async () => {
    for (let i = 0; i < 20; i++) {
      const name = `rw${i}`;
      await call(alice, PN.NETWORK_DEFINE_XML, { xml: netXml(name) });
      const { net } = await call(alice2, PN.NETWORK_LOOKUP_BY_NAME, { name });
      await call(alice, PN.NETWORK_CREATE, { net });
      expect(await call(alice2, PN.NETWORK_IS_ACTIVE, { net })).toEqual({ active: 1 });
      await call(alice, PN.NETWORK_DESTROY, { net });
      await call(alice, PN.NETWORK_UNDEFINE, { net });
      expect(await fails(call(alice2, PN.NETWORK_LOOKUP_BY_UUID, { uuid: net.uuid }))).toBe('VG_ERR_NO_NETWORK');
    }
    // Volumes follow their pool: a new volume moves the pool's figures, a stopped pool's volumes are out of reach.
    const { pool } = await call(alice2, PS.STORAGE_POOL_LOOKUP_BY_NAME, { name: 'apool' });
    await call(alice, PS.STORAGE_VOL_CREATE_XML, { pool, xml: AVOL.replace('a.img', 'b.img'), flags: 0 });
    expect((await call(alice2, PS.STORAGE_POOL_GET_INFO, { pool })).allocation).toBe(2n * 1048576n);
    expect((await call(alice2, PS.STORAGE_VOL_LOOKUP_BY_NAME, { pool, name: 'b.img' })).vol.name).toBe('b.img');
    await call(alice, PS.STORAGE_POOL_DESTROY, { pool });
    expect(await fails(call(alice2, PS.STORAGE_VOL_LOOKUP_BY_NAME, { pool, name: 'b.img' }))).toBe('VG_ERR_DOMAIN_STATE');
    expect(await fails(call(alice2, PS.STORAGE_VOL_LOOKUP_BY_PATH, { path: '/var/lib/libvirt/apool/b.img' }))).toBe('VG_ERR_NO_STORAGE_VOL');
    await call(alice, PS.STORAGE_POOL_CREATE, { pool, flags: 0 });
    expect((await call(alice2, PS.STORAGE_POOL_LIST_ALL_VOLUMES, { pool, needResults: 1, flags: 0 })).ret).toBe(2);
    // Only the writes went to the helper.
    expect(sent.filter((x) => !x.includes('_WRITE_REQ.'))).toEqual([]);
  });

  test("an object event is heard after the object's new state is in the mirror", async () => {
    const seen: string[] = [];
    const listen = (ev: { type: string; name: string; uuid: Buffer; event: number }): void => {
      const o = dispatcher.mirror.objects;
      const state =
        ev.type === 'network'
          ? o.network({ uuid: ev.uuid })
          : ev.type === 'pool'
            ? o.poolByUuid(ev.uuid)
            : ev.type === 'nodedev'
              ? o.device(ev.name)
              : undefined;
      seen.push(
        `${ev.type} ${ev.name} event ${ev.event}: ${state === null ? 'absent' : state && 'active' in state ? (state.active ? 'active' : 'inactive') : 'present'}`,
      );
    };
    client.on('objectEvent', listen);
    try {
      await call(alice, PN.NETWORK_DEFINE_XML, { xml: netXml('evnet') });
      const { net } = await call(alice, PN.NETWORK_LOOKUP_BY_NAME, { name: 'evnet' });
      await call(alice, PN.NETWORK_CREATE, { net });
      await call(alice, PN.NETWORK_DESTROY, { net });
      await call(alice, PN.NETWORK_UNDEFINE, { net });
      const { pool } = await call(alice, PS.STORAGE_POOL_LOOKUP_BY_NAME, { name: 'apool' });
      await call(alice, PS.STORAGE_POOL_DESTROY, { pool });
      await call(alice, PS.STORAGE_POOL_CREATE, { pool, flags: 0 });
    } finally {
      client.off('objectEvent', listen);
    }
    // libvirt's network and pool lifecycle numbers: DEFINED 0, UNDEFINED 1, STARTED 2, STOPPED 3.
    expect(seen).toEqual([
      'network evnet event 0: inactive',
      'network evnet event 2: active',
      'network evnet event 3: inactive',
      'network evnet event 1: absent',
      'pool apool event 3: inactive',
      'pool apool event 2: active',
    ]);
  });

  test('helper restart: the mirror is dropped while it is away and rebuilt from the new helper', async () => {
    const down = waitFor('down');
    await stopHelper();
    await down;
    expect(dispatcher.mirror.objects.synced).toBe(false);
    expect(await fails(call(alice, PN.CONNECT_LIST_ALL_NETWORKS, { needResults: 1, flags: 0 }))).toBe('VG_ERR_HELPER_UNAVAILABLE');
    // Behind the front end's back: anet goes, znet comes (the state the next helper starts from).
    const driver = new TestDriver({ stateDir: helperOpts().stateDir, runtimeDir: path.join(dir, 'run', 'offline'), warn: () => undefined });
    const anet = driver.networks.lookup({ name: 'anet' });
    driver.networks.undefine(anet.uuid, { tenant: '' });
    driver.networks.define(parseNetworkXml(netXml('znet')), { tenant: 'acme' });
    driver.close();
    const up = waitFor('up');
    stopHelper = await runHelper(helperOpts());
    await up;
    sent.length = 0;
    const nets = await call(alice, PN.CONNECT_LIST_ALL_NETWORKS, { needResults: 1, flags: 0 });
    expect(nets.nets.map((x) => x.name).sort()).toEqual(['default', 'znet']);
    expect(await fails(call(alice, PN.NETWORK_LOOKUP_BY_NAME, { name: 'anet' }))).toBe('VG_ERR_NO_NETWORK');
    expect(
      (
        await call(alice, PS.STORAGE_POOL_LIST_ALL_VOLUMES, {
          pool: (await call(alice, PS.STORAGE_POOL_LOOKUP_BY_NAME, { name: 'apool' })).pool,
          needResults: 1,
          flags: 0,
        })
      ).ret,
    ).toBe(2);
    expect(sent).toEqual([]);
  });
});
