// SPDX-License-Identifier: Apache-2.0
// The stream's object state, helper side and codec: a full sync, then only what changed (removals too), per subscriber;
// refreshes over an asynchronous driver keep their order; every change survives its codec; a bad one is refused.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { XdrReader, XdrWriter } from '../../../src/common/xdr';
import { type ObjectStateChange, objectStateChangeCodec } from '../../../src/ipc/objects/object-state';
import type { NetworkSummary } from '../../../src/ipc/objects/network';
import type { Driver } from '../../../src/privileged/drivers/driver';
import { TestDriver } from '../../../src/privileged/drivers/test-driver';
import { ObjectStateFeed, volumeScopeOfWrite } from '../../../src/privileged/object-state';
import { Op } from '../../../src/ipc/program';
import { parseNetworkXml } from '../../../src/unprivileged/xml/network';
import { parsePoolXml, parseVolumeXml } from '../../../src/unprivileged/xml/storage';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-object-state-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;
const driver = (): TestDriver =>
  new TestDriver({
    stateDir: path.join(dir, String(++n), 'state'),
    runtimeDir: path.join(dir, String(n), 'run'),
    warn: () => undefined,
    store: { fs: { fdatasync: (_fd, cb) => cb(null) } },
  });

const describeChange = (c: ObjectStateChange): string => {
  if (c.removed) return `-${c.removed.type}:${c.removed.key}`;
  const s = c.set;
  const name =
    s.type === 'network'
      ? s.network.name
      : s.type === 'pool'
        ? s.pool.config.name
        : s.type === 'volume'
          ? s.vol.config.name
          : s.type === 'iface'
            ? s.iface.name
            : s.dev.name;
  return `+${s.type}:${name}`;
};

test('a full sync of every type, then only what a write changed', () => {
  const d = driver();
  const got: ObjectStateChange[] = [];
  const feed = new ObjectStateFeed(d, (c) => got.push(c));
  expect(feed.syncAll()).toBeUndefined(); // the test driver answers at once: no promise, nothing waits a turn
  const types = new Set(got.map((c) => c.set!.type));
  expect([...types].sort()).toEqual(['iface', 'network', 'nodedev', 'pool']); // no volumes in the seed
  expect(got.map(describeChange)).toContain('+network:default');

  got.length = 0;
  feed.refresh(['network', 'pool', 'volume', 'iface', 'nodedev']);
  expect(got).toEqual([]); // nothing changed: nothing sent

  const net = d.networks.define(parseNetworkXml("<network><name>n1</name><bridge name='vbn1'/></network>"), { tenant: 'acme' });
  const pool = d.pools.definePool(parsePoolXml("<pool type='dir'><name>p1</name><target><path>/var/lib/libvirt/p1</path></target></pool>"), 'acme');
  d.pools.startPool(pool.config.uuid, 'acme');
  d.pools.createVolume(pool.config.uuid, parseVolumeXml('<volume><name>v1</name><capacity>1024</capacity></volume>', 'dir'), 'acme');
  feed.refresh(['network']);
  expect(got.map(describeChange)).toEqual(['+network:n1']);
  got.length = 0;
  feed.refresh(['pool', 'volume']);
  expect(got.map(describeChange)).toEqual(['+pool:p1', '+volume:v1']);

  // A stopped pool's volumes leave the stream; its record changes; an undefined network is removed by its uuid.
  got.length = 0;
  d.pools.destroyPool(pool.config.uuid, 'acme');
  d.networks.undefine(net.uuid, { tenant: 'acme' });
  feed.refresh(['network', 'pool', 'volume']);
  expect(got.map(describeChange)).toEqual([`-network:${net.uuid.toString('hex')}`, `-volume:${pool.config.uuid.toString('hex')}/v1`, '+pool:p1']);
  expect(got[2].set).toMatchObject({ pool: { active: false } });
  d.close();
});

test("a pool or volume write refreshes its own pool's volumes only, and leaves the others' alone", () => {
  const d = driver();
  const got: ObjectStateChange[] = [];
  const feed = new ObjectStateFeed(d, (c) => got.push(c));
  const pools = ['q1', 'q2'].map((name) => {
    const p = d.pools.definePool(parsePoolXml(`<pool type='dir'><name>${name}</name><target><path>/var/lib/libvirt/${name}</path></target></pool>`), '');
    d.pools.startPool(p.config.uuid, '');
    d.pools.createVolume(p.config.uuid, parseVolumeXml('<volume><name>v</name><capacity>1024</capacity></volume>', 'dir'), '');
    return p.config.uuid;
  });
  feed.syncAll();
  got.length = 0;
  d.pools.createVolume(pools[1], parseVolumeXml('<volume><name>w</name><capacity>1024</capacity></volume>', 'dir'), '');
  const config = { name: 'w' };
  expect(volumeScopeOfWrite(Op.VOLUME_WRITE_REQ, { action: 'create', pool: pools[1], config })).toEqual({ pool: pools[1], name: 'w' });
  feed.refresh(['pool', 'volume'], volumeScopeOfWrite(Op.VOLUME_WRITE_REQ, { action: 'create', pool: pools[1], config }));
  expect(got.map(describeChange)).toEqual(['+pool:q2', '+volume:w']); // neither v is resent nor removed
  got.length = 0;
  d.pools.deleteVolume(pools[1], 'w', '');
  feed.refresh(['pool', 'volume'], volumeScopeOfWrite(Op.VOLUME_WRITE_REQ, { action: 'delete', pool: pools[1], name: 'w' }));
  expect(got.map(describeChange)).toEqual([`-volume:${pools[1].toString('hex')}/w`, '+pool:q2']);
  got.length = 0;
  d.pools.destroyPool(pools[0], '');
  feed.refresh(['pool', 'volume'], volumeScopeOfWrite(Op.POOL_WRITE_REQ, { action: 'destroy', uuid: pools[0] }));
  expect(got.map(describeChange)).toEqual([`-volume:${pools[0].toString('hex')}/v`, '+pool:q1']); // q2's v stays
  got.length = 0;
  feed.refresh(['pool', 'volume']); // an unscoped refresh finds nothing new either
  expect(got).toEqual([]);
  expect(volumeScopeOfWrite(Op.POOL_WRITE_REQ, { action: 'define', config: { uuid: pools[0], name: 'q1' } })).toEqual({ pool: pools[0], name: null });
  expect(volumeScopeOfWrite(Op.POOL_WRITE_REQ, { action: 'findSources', type: 'netfs', host: '' })).toBeNull();
  d.close();
});

test('each subscriber diffs against what it was sent itself', () => {
  const d = driver();
  const a: ObjectStateChange[] = [];
  const b: ObjectStateChange[] = [];
  const fa = new ObjectStateFeed(d, (c) => a.push(c));
  fa.syncAll();
  d.networks.define(parseNetworkXml("<network><name>n2</name><bridge name='vbn2'/></network>"), { tenant: '' });
  fa.refresh(['network']);
  const fb = new ObjectStateFeed(d, (c) => b.push(c));
  fb.syncAll(); // a late subscriber gets everything, n2 included
  expect(b.map(describeChange)).toContain('+network:n2');
  expect(a.filter((c) => c.set?.type === 'network').map(describeChange)).toEqual(['+network:default', '+network:n2']);
  d.close();
});

test('over an asynchronous driver, refreshes are sent in order and each sees the state after its write', async () => {
  let nets: NetworkSummary[] = [];
  const gates: (() => void)[] = [];
  const slow = {
    networks: {
      list: () => {
        const snapshot = nets.slice();
        return new Promise<NetworkSummary[]>((resolve) => gates.push(() => resolve(snapshot)));
      },
    },
  } as unknown as Driver;
  const got: string[] = [];
  const feed = new ObjectStateFeed(slow, (c) => got.push(describeChange(c)));
  const uuid = (i: number) => Buffer.alloc(16, i);
  const net = (name: string, i: number): NetworkSummary => ({ name, uuid: uuid(i), tenant: '', active: false, persistent: true, autostart: false });
  nets = [net('a', 1)];
  const first = feed.refresh(['network']);
  nets = [net('a', 1), net('b', 2)];
  const second = feed.refresh(['network']); // queued behind the first: its list is taken only when the first is sent
  expect(gates).toHaveLength(1);
  gates.shift()!();
  await first;
  expect(got).toEqual(['+network:a']);
  await new Promise((r) => setImmediate(r));
  gates.shift()!();
  await second;
  expect(got).toEqual(['+network:a', '+network:b']);
});

test('the codec carries every type and refuses unknown tags, types and keys', () => {
  const d = driver();
  const all: ObjectStateChange[] = [];
  const pool = d.pools.definePool(parsePoolXml("<pool type='dir'><name>p3</name><target><path>/var/lib/libvirt/p3</path></target></pool>"), '');
  d.pools.startPool(pool.config.uuid, '');
  d.pools.createVolume(pool.config.uuid, parseVolumeXml('<volume><name>v3</name><capacity>1024</capacity></volume>', 'dir'), '');
  new ObjectStateFeed(d, (c) => all.push(c)).syncAll();
  all.push({ removed: { type: 'volume', key: 'ab/v3' } });
  expect(new Set(all.map((c) => c.set?.type ?? 'removed'))).toEqual(new Set(['network', 'pool', 'volume', 'iface', 'nodedev', 'removed']));
  for (const c of all) {
    const w = new XdrWriter(256);
    objectStateChangeCodec.encode(w, c);
    const r = new XdrReader(w.finish());
    expect(objectStateChangeCodec.decode(r)).toEqual(c);
    r.ensureConsumed('change');
  }
  const bad = (words: number[], tail = ''): (() => void) => {
    const w = new XdrWriter(64);
    for (const x of words) w.u32(x);
    if (tail !== '') w.string(tail, 1024);
    const buf = w.finish();
    return () => objectStateChangeCodec.decode(new XdrReader(buf));
  };
  expect(bad([2])).toThrow(/objectState\.tag/);
  expect(bad([1, 9], 'x')).toThrow(/objectState\.type/);
  expect(bad([1, 2], 'a\nb')).toThrow(/objectState\.key/);
  d.close();
});
