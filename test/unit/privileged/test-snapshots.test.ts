// SPDX-License-Identifier: Apache-2.0
// The test driver's snapshots and checkpoints (helper side): trees, list filters, delete and revert semantics, events,
// the tenant rule, and the record that brings them back after a restart.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Moment, MomentKind } from '../../../src/ipc/objects/snapshot';
import { DriverError } from '../../../src/privileged/drivers/driver';
import { TestDriver } from '../../../src/privileged/drivers/test-driver';
import { parseCheckpointXml, parseSnapshotXml } from '../../../src/unprivileged/xml/snapshot';
import { xmlOf } from '../../helpers/domain-def';

const S = MomentKind.SNAPSHOT;
const C = MomentKind.CHECKPOINT;
const TEST_UUID = Buffer.from('6695eb01f6a4830479aa97f2502e193f', 'hex');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-test-snapshots-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

let n = 0;
const open = (home = path.join(dir, String(++n)), now = () => 1_795_702_949_000) =>
  new TestDriver({ stateDir: path.join(home, 'state'), runtimeDir: path.join(home, 'run'), warn: () => undefined, now });
const snap = (name: string): Moment => parseSnapshotXml(`<domainsnapshot><name>${name}</name></domainsnapshot>`, false);
const code = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    if (e instanceof DriverError) return `${e.code}: ${e.detail}`;
    throw e;
  }
  return 'no error';
};

test('create links each new snapshot under the current one and records the domain as it is', () => {
  const d = open();
  const m = d.moments;
  expect(m.create(TEST_UUID, S, snap('a'), 0, '')).toBe('a');
  expect(m.create(TEST_UUID, S, snap('b'), 0, '')).toBe('b');
  const { moment, current } = m.get(TEST_UUID, S, 'b');
  expect({ parent: moment.parent, state: moment.state, memory: moment.memory, current, t: moment.creationTime }).toEqual({
    parent: 'a',
    state: 1,
    memory: 2,
    current: true,
    t: 1795702949n,
  });
  expect(moment.disks).toEqual([{ name: 'vda', location: 2, sourceType: '', source: '', driver: '', bitmap: '' }]);
  expect(moment.def?.name).toBe('test'); // the domain as it was, kept typed
  // A name made from the clock when none is given, as libvirt does.
  expect(m.create(TEST_UUID, S, snap(''), 0, '')).toBe('1795702949');
  expect(code(() => m.create(TEST_UUID, S, snap('a'), 0, ''))).toBe('VG_ERR_SNAPSHOT_EXISTS: domain moment a already exists');
  d.close();
});

test('list filters: roots, descendants, leaves, status and location, as libvirt counts them', () => {
  const d = open();
  const m = d.moments;
  for (const x of ['a', 'b', 'c']) m.create(TEST_UUID, S, snap(x), 0, '');
  const dom = xmlOf(d.xml(TEST_UUID, true));
  const r = `<domainsnapshot><name>r</name><state>shutoff</state><creationTime>5</creationTime>${dom}</domainsnapshot>`;
  // A redefinition needs the domain it describes (libvirt: "missing domain in snapshot").
  expect(code(() => m.create(TEST_UUID, S, parseSnapshotXml(r.replace(dom, ''), true), 1, ''))).toBe('VG_ERR_DOMAIN_INTERNAL: missing domain in snapshot');
  m.create(TEST_UUID, S, parseSnapshotXml(r, true), 1, '');
  expect(m.list(TEST_UUID, S, '', 0)).toEqual(['a', 'b', 'c', 'r']);
  expect(m.list(TEST_UUID, S, '', 1)).toEqual(['a', 'r']); // ROOTS
  expect(m.list(TEST_UUID, S, '', 4)).toEqual(['c', 'r']); // LEAVES
  expect(m.list(TEST_UUID, S, '', 8)).toEqual(['a', 'b']); // NO_LEAVES
  expect(m.list(TEST_UUID, S, 'a', 0)).toEqual(['b']); // children
  expect(m.list(TEST_UUID, S, 'a', 1)).toEqual(['b', 'c']); // DESCENDANTS
  expect(m.list(TEST_UUID, S, '', 32)).toEqual(['r']); // INACTIVE
  expect(m.list(TEST_UUID, S, '', 64)).toEqual(['a', 'b', 'c']); // ACTIVE
  expect(m.list(TEST_UUID, S, '', 16)).toEqual([]); // NO_METADATA
  expect(m.list(TEST_UUID, S, '', 512)).toEqual([]); // EXTERNAL
  expect(m.current(TEST_UUID, S)).toBe('c'); // a redefinition without CURRENT leaves the current one
  d.close();
});

test('delete: children move up, --children takes the subtree, --children-only keeps the root', () => {
  const d = open();
  const m = d.moments;
  for (const x of ['a', 'b', 'c']) m.create(TEST_UUID, S, snap(x), 0, '');
  m.delete(TEST_UUID, S, 'b', 0, '');
  expect(m.get(TEST_UUID, S, 'c').moment.parent).toBe('a');
  m.delete(TEST_UUID, S, 'a', 4, '');
  expect(m.list(TEST_UUID, S, '', 0)).toEqual(['a']);
  expect(m.current(TEST_UUID, S)).toBe('a'); // the current one was in the deleted subtree
  m.delete(TEST_UUID, S, 'a', 1, '');
  expect(m.list(TEST_UUID, S, '', 0)).toEqual([]);
  expect(m.current(TEST_UUID, S)).toBe('');
  expect(code(() => m.delete(TEST_UUID, S, 'a', 0, ''))).toBe("VG_ERR_NO_SNAPSHOT: no domain snapshot with matching name 'a'");
  d.close();
});

test('revert of a running snapshot from a paused VM: stopped, started and suspended events from snapshot', () => {
  const d = open();
  const events: [number, number][] = [];
  d.onLifecycle((e) => events.push([e.event, e.detail]));
  d.moments.create(TEST_UUID, S, snap('a'), 0, '');
  d.control(TEST_UUID, 3); // suspend
  d.moments.create(TEST_UUID, S, snap('p'), 0, '');
  events.length = 0;
  d.moments.revert(TEST_UUID, 'p', 0, '');
  expect(events).toEqual([
    [5, 6],
    [2, 3],
    [3, 5],
  ]);
  expect(d.info(TEST_UUID)).toMatchObject({ state: 3, reason: 7 });
  d.moments.revert(TEST_UUID, 'a', 0, '');
  expect(d.info(TEST_UUID)).toMatchObject({ state: 1, reason: 4 });
  expect(d.moments.current(TEST_UUID, S)).toBe('a');
  d.close();
});

test("the helper's tenant rule: a tenant's session writes only its own VMs' snapshots and names no host file", () => {
  const d = open();
  d.setTenant(TEST_UUID, 'acme');
  expect(code(() => d.moments.create(TEST_UUID, S, snap('x'), 0, 'globex'))).toMatch(/^VG_ERR_NO_DOMAIN: /);
  expect(d.moments.create(TEST_UUID, S, snap('x'), 0, 'acme')).toBe('x');
  expect(code(() => d.moments.revert(TEST_UUID, 'x', 0, 'globex'))).toMatch(/^VG_ERR_NO_DOMAIN: /);
  expect(code(() => d.moments.delete(TEST_UUID, S, 'x', 0, 'globex'))).toMatch(/^VG_ERR_NO_DOMAIN: /);
  const mem = parseSnapshotXml("<domainsnapshot><name>m</name><memory snapshot='external' file='/etc/shadow'/></domainsnapshot>", false);
  expect(code(() => d.moments.create(TEST_UUID, S, mem, 0, 'acme'))).toMatch(/^VG_ERR_RESOURCE_DENIED: /);
  d.close();
});

test('snapshots and checkpoints exclude each other; checkpoints need a running VM', () => {
  const d = open();
  const ck = parseCheckpointXml('<domaincheckpoint><name>k</name></domaincheckpoint>', false);
  expect(d.moments.create(TEST_UUID, C, ck, 0, '')).toBe('k');
  expect(d.moments.get(TEST_UUID, C, 'k').moment.disks).toEqual([{ name: 'vda', location: 2, sourceType: '', source: '', driver: '', bitmap: 'k' }]);
  expect(code(() => d.moments.create(TEST_UUID, S, snap('s'), 0, ''))).toBe('VG_ERR_OP_UNSUPPORTED: cannot create snapshot while checkpoint exists');
  d.moments.delete(TEST_UUID, C, 'k', 0, '');
  d.control(TEST_UUID, 2); // destroy
  expect(code(() => d.moments.create(TEST_UUID, C, ck, 0, ''))).toBe('VG_ERR_OP_UNSUPPORTED: cannot create checkpoint for inactive domain');
  d.close();
});

test('a restart brings the trees back; an undefined VM takes its snapshots along', () => {
  const home = path.join(dir, 'restart');
  let d = open(home);
  for (const x of ['a', 'b']) d.moments.create(TEST_UUID, S, snap(x), 0, '');
  d.moments.revert(TEST_UUID, 'a', 0, '');
  const before = { list: d.moments.list(TEST_UUID, S, '', 0), b: d.moments.get(TEST_UUID, S, 'b') };
  d.close();
  d = open(home);
  expect({ list: d.moments.list(TEST_UUID, S, '', 0), b: d.moments.get(TEST_UUID, S, 'b') }).toEqual(before);
  expect(d.moments.current(TEST_UUID, S)).toBe('a');
  d.control(TEST_UUID, 2);
  expect(code(() => d.undefine(TEST_UUID))).toBe('VG_ERR_DOMAIN_STATE: cannot delete inactive domain with 2 snapshots');
  d.undefine(TEST_UUID, false, true);
  expect(d.moments.count(TEST_UUID, S)).toBe(0);
  d.close();
  d = open(home);
  expect(d.moments.count(TEST_UUID, S)).toBe(0);
  d.close();
});
