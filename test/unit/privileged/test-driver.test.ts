// SPDX-License-Identifier: Apache-2.0
// Test driver: the seeded test:///default state, the lifecycle state machine, libvirt's error texts, events, persistence.
import fs from 'node:fs'; // the module object itself, so jest.spyOn reaches the store's calls
import * as os from 'node:os';
import * as path from 'node:path';
import { ControlAction, LookupKind, uuidFromString } from '../../../src/ipc/program';
import type { LifecycleEvent } from '../../../src/ipc/program';
import { DriverError } from '../../../src/privileged/drivers/driver';
import { TestDriver } from '../../../src/privileged/drivers/test-driver';
import { TEST_DOMAIN_XML } from '../../helpers/test-domain';
import { dx, xmlOf } from '../../helpers/domain-def';
import { domainDefFromJson } from '../../../src/ipc/objects/domain-def';

const TEST_UUID = uuidFromString('6695eb01-f6a4-8304-79aa-97f2502e193f')!;
const FOO_UUID = uuidFromString('0d46d412-f292-416c-8b9a-ea26480a531f')!;
const FOO = `<domain type='test'><name>foo</name><uuid>0d46d412-f292-416c-8b9a-ea26480a531f</uuid><memory unit='MiB'>512</memory><vcpu>2</vcpu><os><type>hvm</type></os></domain>`;
const TR = `<domain type='test'><name>tr</name><memory>1024</memory><os><type>hvm</type></os></domain>`;

let dir: string;
let clock: number;
const open = () => new TestDriver({ stateDir: path.join(dir, 'state'), runtimeDir: path.join(dir, 'run'), now: () => clock, warn: () => {} });

function fails(fn: () => unknown): { code: string; detail: string } {
  try {
    fn();
  } catch (e) {
    if (e instanceof DriverError) return { code: e.code, detail: e.detail };
    throw e;
  }
  throw new Error('expected a DriverError');
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-driver-'));
  clock = 1_700_000_000_000;
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('seeded state mirrors test:///default', () => {
  test('one running persistent domain `test`, id 1, reason unknown', () => {
    const d = open();
    expect(d.list()).toEqual([{ name: 'test', uuid: TEST_UUID, id: 1, state: 1, reason: 0, persistent: true }]);
  });

  test('info', () => {
    const d = open();
    clock += 1500;
    expect(d.info(TEST_UUID)).toMatchObject({
      maxMemKiB: 8388608n,
      memoryKiB: 2097152n,
      nrVirtCpu: 2,
      maxVcpus: 2,
      cpuTimeNs: 1_500_000_000n,
      autostart: false,
      osType: 'linux',
      hasManagedSave: false,
      securityLabel: 'libvirt-test',
      securityEnforcing: true,
    });
  });

  test('dumpxml matches the real driver', () => {
    const d = open();
    expect(xmlOf(d.xml(TEST_UUID, false))).toBe(TEST_DOMAIN_XML.replace("<domain type='test'>", "<domain type='test' id='1'>"));
    expect(xmlOf(d.xml(TEST_UUID, true))).toBe(TEST_DOMAIN_XML);
  });

  test('node facts', () => {
    const f = open().nodeFacts();
    expect(f).toMatchObject({
      driver: 'test',
      uri: 'test:///default',
      hvType: 'TEST',
      hvVersion: 2n,
      hostname: os.hostname(),
      model: 'i686',
      memoryKiB: 3145728n,
    });
    expect([f.cpus, f.mhz, f.nodes, f.sockets, f.cores, f.threads]).toEqual([16, 1400, 2, 2, 2, 2]);
    expect(f.capabilitiesXml).toMatch(/^<capabilities>\n[\s\S]*<model>testSecurity<\/model>[\s\S]*<\/capabilities>\n$/);
    expect([f.securityModel, f.securityDoi]).toEqual(['testSecurity', '']);
  });

  test('lookups by name, uuid, id; misses say "Domain not found"', () => {
    const d = open();
    expect(d.lookup({ kind: LookupKind.NAME, name: 'test' }).id).toBe(1);
    expect(d.lookup({ kind: LookupKind.UUID, uuid: TEST_UUID }).name).toBe('test');
    expect(d.lookup({ kind: LookupKind.ID, id: 1 }).name).toBe('test');
    for (const key of [{ kind: 0, name: 'nope' } as const, { kind: 1, uuid: FOO_UUID } as const, { kind: 2, id: 7 } as const]) {
      expect(fails(() => d.lookup(key))).toEqual({ code: 'VG_ERR_NO_DOMAIN', detail: '' });
    }
  });

  test('operations on an unknown uuid', () => {
    expect(fails(() => open().info(FOO_UUID))).toEqual({
      code: 'VG_ERR_NO_DOMAIN',
      detail: ": no domain with matching uuid '0d46d412-f292-416c-8b9a-ea26480a531f'",
    });
  });
});

describe('lifecycle state machine', () => {
  test('suspend, resume, shutdown, start, destroy with states, reasons, ids and events', () => {
    const d = open();
    const events: LifecycleEvent[] = [];
    d.onLifecycle((e) => events.push(e));
    const c = (a: (typeof ControlAction)[keyof typeof ControlAction]) => d.control(TEST_UUID, a);
    expect(c(ControlAction.SUSPEND)).toMatchObject({ state: 3, reason: 1, id: 1 });
    expect(c(ControlAction.RESUME)).toMatchObject({ state: 1, reason: 5, id: 1 });
    expect(c(ControlAction.SHUTDOWN)).toMatchObject({ state: 5, reason: 1, id: -1 });
    expect(c(ControlAction.START)).toMatchObject({ state: 1, reason: 1, id: 2 });
    expect(c(ControlAction.DESTROY)).toMatchObject({ state: 5, reason: 2, id: -1 });
    expect(c(ControlAction.START)).toMatchObject({ id: 3 });
    expect(events.map((e) => [e.event, e.detail, e.domain.id])).toEqual([
      [3, 0, 1],
      [4, 0, 1],
      [5, 0, -1],
      [2, 0, 2],
      [5, 1, -1],
      [2, 0, 3],
    ]);
  });

  test('reboot keeps the id, sets running/booted and emits no lifecycle event', () => {
    const d = open();
    const events: LifecycleEvent[] = [];
    d.onLifecycle((e) => events.push(e));
    d.control(TEST_UUID, ControlAction.SUSPEND);
    events.length = 0;
    expect(d.control(TEST_UUID, ControlAction.REBOOT)).toMatchObject({ state: 1, reason: 1, id: 1 });
    expect(events).toEqual([]);
  });

  test('wrong-state errors use the real test driver texts', () => {
    const d = open();
    expect(fails(() => d.control(TEST_UUID, ControlAction.START))).toEqual({ code: 'VG_ERR_DOMAIN_INTERNAL', detail: "Domain 'test' is already running" });
    expect(fails(() => d.control(TEST_UUID, ControlAction.RESUME))).toEqual({ code: 'VG_ERR_DOMAIN_INTERNAL', detail: "domain 'test' not paused" });
    d.control(TEST_UUID, ControlAction.SUSPEND);
    expect(fails(() => d.control(TEST_UUID, ControlAction.SUSPEND))).toEqual({ code: 'VG_ERR_DOMAIN_INTERNAL', detail: "domain 'test' not running" });
    expect(fails(() => d.control(TEST_UUID, ControlAction.START))).toEqual({ code: 'VG_ERR_DOMAIN_INTERNAL', detail: "Domain 'test' is already running" });
    d.control(TEST_UUID, ControlAction.SHUTDOWN); // allowed from paused, as in the real driver
    expect(fails(() => d.control(TEST_UUID, ControlAction.SHUTDOWN))).toEqual({ code: 'VG_ERR_DOMAIN_INTERNAL', detail: "domain 'test' not running" });
    expect(fails(() => d.control(TEST_UUID, ControlAction.DESTROY))).toEqual({ code: 'VG_ERR_DOMAIN_STATE', detail: 'domain is not running' });
    expect(fails(() => d.control(TEST_UUID, ControlAction.REBOOT))).toEqual({ code: 'VG_ERR_DOMAIN_STATE', detail: 'domain is not running' });
    expect(fails(() => d.control(TEST_UUID, ControlAction.SUSPEND))).toEqual({ code: 'VG_ERR_DOMAIN_INTERNAL', detail: "domain 'test' not running" });
  });

  test('cpu time advances only while running', () => {
    const d = open();
    clock += 1000;
    d.control(TEST_UUID, ControlAction.SUSPEND);
    clock += 5000;
    expect(d.info(TEST_UUID).cpuTimeNs).toBe(1_000_000_000n);
    d.control(TEST_UUID, ControlAction.RESUME);
    clock += 500;
    expect(d.info(TEST_UUID).cpuTimeNs).toBe(1_500_000_000n);
  });

  test('an inactive domain has no security label', () => {
    const d = open();
    d.control(TEST_UUID, ControlAction.DESTROY);
    expect(d.info(TEST_UUID)).toMatchObject({ securityLabel: '', securityEnforcing: false, id: -1 });
  });
});

describe('define, create, undefine', () => {
  test('define a new domain: shut off, id -1, DEFINED/ADDED; redefine: DEFINED/UPDATED', () => {
    const d = open();
    const events: LifecycleEvent[] = [];
    d.onLifecycle((e) => events.push(e));
    expect(d.define(dx(FOO))).toEqual({ name: 'foo', uuid: FOO_UUID, id: -1, state: 5, reason: 0, persistent: true });
    expect(d.info(FOO_UUID)).toMatchObject({ maxMemKiB: 524288n, memoryKiB: 524288n, nrVirtCpu: 2 });
    d.define(dx(FOO.replace('512', '256')));
    expect(d.info(FOO_UUID).maxMemKiB).toBe(262144n);
    expect(events.map((e) => [e.event, e.detail, e.domain.id])).toEqual([
      [0, 0, -1],
      [0, 1, -1],
    ]);
  });

  test('name and uuid clashes answer like libvirt', () => {
    const d = open();
    d.define(dx(FOO));
    const noUuid = FOO.replace(/<uuid>.*<\/uuid>/, '');
    expect(fails(() => d.define(dx(noUuid)))).toEqual({
      code: 'VG_ERR_DOMAIN_EXISTS',
      detail: "domain 'foo' already exists with uuid 0d46d412-f292-416c-8b9a-ea26480a531f",
    });
    expect(fails(() => d.define(dx(FOO.replace('<name>foo', '<name>bar'))))).toEqual({
      code: 'VG_ERR_DOMAIN_EXISTS',
      detail: "domain 'foo' is already defined with uuid 0d46d412-f292-416c-8b9a-ea26480a531f",
    });
    expect(fails(() => d.createXml(dx(noUuid)))).toMatchObject({ code: 'VG_ERR_DOMAIN_EXISTS' });
  });

  test("a clash with another tenant's VM answers the same, naming nothing, by name, by uuid and by both", () => {
    const d = open();
    d.define(dx(FOO), 'acme');
    const byName = FOO.replace(/<uuid>.*<\/uuid>/, '');
    const byUuid = FOO.replace('<name>foo', '<name>other');
    const answers = [byName, byUuid, FOO].flatMap((x) => [fails(() => d.define(dx(x), 'globex')), fails(() => d.createXml(dx(x), 'globex'))]);
    for (const a of answers) expect(a).toEqual({ code: 'VG_ERR_DOMAIN_EXISTS', detail: 'name or uuid is not available' });
    // The owner's own tenant still gets libvirt's answers, and a redefinition still works.
    expect(fails(() => d.define(dx(byName), 'acme')).detail).toMatch(/already exists/);
    expect(d.define(dx(FOO), 'acme')).toMatchObject({ name: 'foo', tenant: 'acme' });
  });

  test('the tenant to record is checked by the helper itself: 65 characters are refused and nothing changes', () => {
    const d = open();
    const before = d.list().length;
    expect(fails(() => d.define(dx(FOO), 'a'.repeat(65)))).toMatchObject({ code: 'VG_ERR_DOMAIN_ARG' });
    expect(fails(() => d.createXml(dx(FOO), 'a'.repeat(65)))).toMatchObject({ code: 'VG_ERR_DOMAIN_ARG' });
    expect(d.list().length).toBe(before);
    expect(d.define(dx(FOO), 'a'.repeat(64))).toMatchObject({ tenant: 'a'.repeat(64) });
    expect(fails(() => d.setTenant(FOO_UUID, '-bad'))).toMatchObject({ code: 'VG_ERR_DOMAIN_ARG' });
  });

  test('a stored VM whose tenant name is malformed is kept (no tenant, with a warning), never dropped', () => {
    let d = open();
    d.define(dx(FOO), 'acme');
    d.close();
    const file = path.join(dir, 'state', 'domains', '0d46d412-f292-416c-8b9a-ea26480a531f.json');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('"tenant":"acme"', `"tenant":"${'x'.repeat(90)}"`));
    const warnings: string[] = [];
    d = new TestDriver({ stateDir: path.join(dir, 'state'), runtimeDir: path.join(dir, 'run'), now: () => clock, warn: (m) => warnings.push(m) });
    const foo = d.list().find((x) => x.name === 'foo');
    expect(foo).toBeDefined();
    expect(foo!.tenant).toBeUndefined();
    expect(warnings.join('\n')).toMatch(/tenant name of domain 'foo' is malformed/);
  });

  test('redefining a running domain changes only its next-boot config', () => {
    const d = open();
    const xml = TEST_DOMAIN_XML.replace('8388608', '4194304').replace('2097152', '1048576');
    expect(d.define(dx(xml))).toMatchObject({ id: 1, state: 1 });
    expect(d.info(TEST_UUID).maxMemKiB).toBe(8388608n);
    expect(xmlOf(d.xml(TEST_UUID, true))).toContain("<memory unit='KiB'>4194304</memory>");
    d.control(TEST_UUID, ControlAction.DESTROY);
    expect(d.info(TEST_UUID).maxMemKiB).toBe(4194304n);
  });

  test('createXML: transient, running at once with the next id, gone when stopped', () => {
    const d = open();
    const events: LifecycleEvent[] = [];
    d.onLifecycle((e) => events.push(e));
    const s = d.createXml(dx(TR));
    expect(s).toMatchObject({ name: 'tr', id: 2, state: 1, reason: 1, persistent: false });
    expect(fails(() => d.createXml(dx(TR.replace('<name>', `<uuid>${s.uuid.toString('hex')}</uuid><name>`))))).toEqual({
      code: 'VG_ERR_DOMAIN_STATE',
      detail: "domain 'tr' is already active",
    });
    expect(fails(() => d.undefine(s.uuid))).toEqual({ code: 'VG_ERR_DOMAIN_STATE', detail: 'cannot undefine transient domain' });
    d.control(s.uuid, ControlAction.SHUTDOWN);
    expect(fails(() => d.lookup({ kind: 0, name: 'tr' })).code).toBe('VG_ERR_NO_DOMAIN');
    expect(events.map((e) => [e.event, e.detail, e.domain.id])).toEqual([
      [2, 0, 2],
      [5, 0, -1],
    ]);
  });

  test('createXML over an inactive persistent domain boots that XML and keeps the config', () => {
    const d = open();
    d.define(dx(FOO));
    const s = d.createXml(dx(FOO.replace('512', '256')));
    expect(s).toMatchObject({ persistent: true, state: 1, id: 2 });
    expect(d.info(FOO_UUID).maxMemKiB).toBe(262144n);
    expect(xmlOf(d.xml(FOO_UUID, true))).toContain("<memory unit='KiB'>524288</memory>");
  });

  test('undefine: inactive is removed; running becomes transient and vanishes when stopped', () => {
    const d = open();
    const events: LifecycleEvent[] = [];
    d.onLifecycle((e) => events.push(e));
    d.define(dx(FOO));
    d.undefine(FOO_UUID);
    expect(d.list().map((x) => x.name)).toEqual(['test']);
    d.undefine(TEST_UUID);
    expect(d.lookup({ kind: 0, name: 'test' })).toMatchObject({ persistent: false, id: 1 });
    d.control(TEST_UUID, ControlAction.DESTROY);
    expect(d.list()).toEqual([]);
    expect(events.map((e) => [e.event, e.detail])).toEqual([
      [0, 0],
      [1, 0],
      [1, 0],
      [5, 1],
    ]);
  });

  test('defining a running transient domain makes it persistent (DEFINED/ADDED)', () => {
    const d = open();
    const s = d.createXml(dx(TR));
    const events: LifecycleEvent[] = [];
    d.onLifecycle((e) => events.push(e));
    d.define(dx(TR.replace('<name>', `<uuid>${s.uuid.toString('hex')}</uuid><name>`)));
    expect(d.lookup({ kind: 0, name: 'tr' })).toMatchObject({ persistent: true, state: 1 });
    expect(events.map((e) => [e.event, e.detail])).toEqual([[0, 0]]);
  });

  test('unsubscribing stops events', () => {
    const d = open();
    const events: LifecycleEvent[] = [];
    const off = d.onLifecycle((e) => events.push(e));
    off();
    d.define(dx(FOO));
    expect(events).toEqual([]);
  });
});

describe('setMemory and setVcpus', () => {
  const F = (live: boolean, config: boolean, max = false) => ({ live, config, max });

  test('memory: current affects live on a running domain, config separately', () => {
    const d = open();
    d.setMemory(TEST_UUID, 1048576n, F(false, false));
    expect(d.info(TEST_UUID).memoryKiB).toBe(1048576n);
    d.setMemory(TEST_UUID, 4194304n, F(false, true));
    expect(d.info(TEST_UUID).memoryKiB).toBe(1048576n);
    expect(xmlOf(d.xml(TEST_UUID, true))).toContain("<currentMemory unit='KiB'>4194304</currentMemory>");
  });

  test('memory errors', () => {
    const d = open();
    expect(fails(() => d.setMemory(TEST_UUID, 9000000n, F(false, false)))).toEqual({
      code: 'VG_ERR_DOMAIN_ARG',
      detail: 'cannot set memory higher than max memory',
    });
    expect(fails(() => d.setMemory(TEST_UUID, 1024n, F(true, true)))).toEqual({
      code: 'VG_ERR_DOMAIN_ARG',
      detail: "Flags 'VIR_DOMAIN_AFFECT_LIVE' and 'VIR_DOMAIN_AFFECT_CONFIG' are mutually exclusive",
    });
    expect(fails(() => d.setMemory(TEST_UUID, 1024n, F(false, false, true)))).toEqual({
      code: 'VG_ERR_DOMAIN_STATE',
      detail: 'cannot resize the maximum memory on an active domain',
    });
    const tr = d.createXml(dx(TR));
    expect(fails(() => d.setMemory(tr.uuid, 512n, F(false, true)))).toEqual({
      code: 'VG_ERR_DOMAIN_STATE',
      detail: 'transient domains do not have any persistent config',
    });
    d.control(TEST_UUID, ControlAction.DESTROY);
    expect(fails(() => d.setMemory(TEST_UUID, 1024n, F(true, false)))).toEqual({ code: 'VG_ERR_DOMAIN_STATE', detail: 'domain is not running' });
  });

  test('max memory on the config lowers current with it', () => {
    const d = open();
    d.setMemory(TEST_UUID, 1024n, F(false, true, true));
    expect(xmlOf(d.xml(TEST_UUID, true))).toMatch(/<memory unit='KiB'>1024<\/memory>\n  <currentMemory unit='KiB'>1024</);
    expect(d.info(TEST_UUID).maxMemKiB).toBe(8388608n); // live unchanged
  });

  test('vcpus: live, config, maximum', () => {
    const d = open();
    d.setVcpus(TEST_UUID, 1, F(false, false));
    expect(d.info(TEST_UUID).nrVirtCpu).toBe(1);
    d.setVcpus(TEST_UUID, 4, F(false, true, true));
    d.setVcpus(TEST_UUID, 3, F(false, true));
    expect(xmlOf(d.xml(TEST_UUID, true))).toContain("<vcpu placement='static' current='3'>4</vcpu>");
    d.setVcpus(TEST_UUID, 2, F(false, true, true));
    expect(xmlOf(d.xml(TEST_UUID, true))).toContain("<vcpu placement='static'>2</vcpu>");
    d.setVcpus(TEST_UUID, 2, F(true, true));
    expect(d.info(TEST_UUID).nrVirtCpu).toBe(2);
  });

  test('vcpu errors', () => {
    const d = open();
    expect(fails(() => d.setVcpus(TEST_UUID, 3, F(false, false)))).toEqual({
      code: 'VG_ERR_DOMAIN_ARG',
      detail: 'requested cpu amount exceeds maximum (3 > 2)',
    });
    expect(fails(() => d.setVcpus(TEST_UUID, 40, F(false, false)))).toEqual({
      code: 'VG_ERR_DOMAIN_ARG',
      detail: 'requested cpu amount exceeds maximum supported amount (40 > 32)',
    });
    expect(fails(() => d.setVcpus(TEST_UUID, 3, F(true, false, true)))).toEqual({
      code: 'VG_ERR_DOMAIN_ARG',
      detail: "Flag 'VIR_DOMAIN_AFFECT_CONFIG' is required by flag 'VIR_DOMAIN_VCPU_MAXIMUM'",
    });
    d.control(TEST_UUID, ControlAction.DESTROY);
    expect(fails(() => d.setVcpus(TEST_UUID, 1, F(true, false)))).toEqual({ code: 'VG_ERR_DOMAIN_STATE', detail: 'domain is not running' });
  });
});

describe('persistence', () => {
  test('a new driver on the same dirs sees the same domains, states, ids and configs', () => {
    const a = open();
    a.define(dx(FOO));
    a.control(FOO_UUID, ControlAction.START);
    a.control(FOO_UUID, ControlAction.SUSPEND);
    const tr = a.createXml(dx(TR));
    a.control(TEST_UUID, ControlAction.DESTROY);
    a.setMemory(FOO_UUID, 1024n, { live: true, config: false, max: false });
    const before = a.list();
    // No close(): every change must already be on disk (kill -9 semantics).
    const b = open();
    expect(b.list().sort((x, y) => x.name.localeCompare(y.name))).toEqual(before.sort((x, y) => x.name.localeCompare(y.name)));
    expect(b.info(FOO_UUID).memoryKiB).toBe(1024n);
    expect(xmlOf(b.xml(FOO_UUID, true))).toContain("<currentMemory unit='KiB'>524288</currentMemory>");
    expect(b.info(tr.uuid)).toMatchObject({ persistent: false, state: 1, id: 3 });
    expect(b.control(TEST_UUID, ControlAction.START).id).toBe(4);
  });

  test('the seed happens once: an undefined `test` stays gone', () => {
    const a = open();
    a.control(TEST_UUID, ControlAction.DESTROY);
    a.undefine(TEST_UUID);
    expect(open().list()).toEqual([]);
  });

  test('without runtime status (host reboot) every domain is shut off', () => {
    open().define(dx(FOO));
    fs.rmSync(path.join(dir, 'run'), { recursive: true });
    expect(
      open()
        .list()
        .map((x) => [x.name, x.state, x.id]),
    ).toEqual(
      expect.arrayContaining([
        ['test', 5, -1],
        ['foo', 5, -1],
      ]),
    );
  });

  test('cpu time keeps counting across a restart while running', () => {
    open();
    clock += 2000;
    expect(open().info(TEST_UUID).cpuTimeNs).toBe(2_000_000_000n);
  });

  test('config files are typed definitions (JSON) named by uuid; no temp files remain', () => {
    const a = open();
    a.define(dx(FOO));
    a.close(); // checkpoint: the state log's changes go into the per-domain files
    const files = fs.readdirSync(path.join(dir, 'state', 'domains')).sort();
    expect(files).toEqual(['0d46d412-f292-416c-8b9a-ea26480a531f.json', '6695eb01-f6a4-8304-79aa-97f2502e193f.json']);
    expect(domainDefFromJson(fs.readFileSync(path.join(dir, 'state', 'domains', files[0]), 'utf8'))).toEqual(a.xml(FOO_UUID, true).def);
  });

  test('corrupt and foreign files are skipped with a warning, the rest loads', () => {
    const a = open();
    a.define(dx(FOO));
    a.close(); // checkpoint, so the files (not the state log) hold foo
    fs.writeFileSync(path.join(dir, 'state', 'domains', '0d46d412-f292-416c-8b9a-ea26480a531f.json'), '{"name":');
    fs.writeFileSync(path.join(dir, 'state', 'domains', 'junk.txt'), 'x');
    fs.writeFileSync(path.join(dir, 'run', 'domains', '6695eb01-f6a4-8304-79aa-97f2502e193f.json'), '{not json');
    const warnings: string[] = [];
    const b = new TestDriver({ stateDir: path.join(dir, 'state'), runtimeDir: path.join(dir, 'run'), warn: (m) => warnings.push(m) });
    expect(b.list().map((x) => [x.name, x.state])).toEqual([['test', 5]]);
    expect(warnings).toHaveLength(3);
  });

  test('a write the disk refuses answers VG_ERR_STORAGE and changes nothing', () => {
    const d = open();
    const events: LifecycleEvent[] = [];
    d.onLifecycle((e) => events.push(e));
    const spy = jest.spyOn(fs, 'writeSync').mockImplementation(() => {
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' });
    });
    try {
      expect(fails(() => d.define(dx(FOO)))).toEqual({ code: 'VG_ERR_STORAGE', detail: 'write: ENOSPC' });
      expect(fails(() => d.control(TEST_UUID, ControlAction.SUSPEND))).toEqual({ code: 'VG_ERR_STORAGE', detail: 'write: ENOSPC' });
    } finally {
      spy.mockRestore();
    }
    expect(d.list().map((x) => [x.name, x.state])).toEqual([['test', 1]]);
    expect(events).toEqual([]);
    expect(
      open()
        .list()
        .map((x) => [x.name, x.state]),
    ).toEqual([['test', 1]]);
    expect(fs.readdirSync(path.join(dir, 'state', 'domains'))).toEqual(['6695eb01-f6a4-8304-79aa-97f2502e193f.json']);
  });

  test('a first start on a full disk serves the seed from memory, refuses writes, and saves the seed once space returns', () => {
    const full = { on: true };
    const real = fs.writeSync;
    const spy = jest.spyOn(fs, 'writeSync').mockImplementation(((...a: Parameters<typeof fs.writeSync>) => {
      if (full.on) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' });
      return (real as (...x: unknown[]) => number)(...a);
    }) as typeof fs.writeSync);
    const warnings: string[] = [];
    const marker = path.join(dir, 'state', 'initialized');
    try {
      const d = new TestDriver({ stateDir: path.join(dir, 'state'), runtimeDir: path.join(dir, 'run'), now: () => clock, warn: (m) => warnings.push(m) });
      expect(warnings).toContainEqual(expect.stringMatching(/^first start: the seed domain cannot be saved \(write: ENOSPC\): served from memory/));
      expect(d.list()).toEqual([{ name: 'test', uuid: TEST_UUID, id: 1, state: 1, reason: 0, persistent: true }]);
      expect(xmlOf(d.xml(TEST_UUID, false))).toContain('<name>test</name>');
      expect(fails(() => d.define(dx(FOO)))).toEqual({ code: 'VG_ERR_STORAGE', detail: 'write: ENOSPC' });
      expect(fails(() => d.setMemory(TEST_UUID, 1048576n, { live: true, config: false, max: false }))).toEqual({
        code: 'VG_ERR_STORAGE',
        detail: 'write: ENOSPC',
      });
      expect(fs.existsSync(marker)).toBe(false);
      d.close();
      // A restart still on a full disk seeds again, from memory.
      const d2 = new TestDriver({ stateDir: path.join(dir, 'state'), runtimeDir: path.join(dir, 'run'), now: () => clock, warn: () => {} });
      expect(d2.list().map((x) => x.name)).toEqual(['test']);
      // Space back: the next write saves the seed first, then itself.
      full.on = false;
      d2.define(dx(FOO));
      expect(fs.existsSync(marker)).toBe(true);
      d2.close();
    } finally {
      spy.mockRestore();
    }
    expect(
      open()
        .list()
        .map((x) => [x.name, x.state])
        .sort(),
    ).toEqual([
      ['foo', 5],
      ['test', 1],
    ]);
  });

  test('a first start on a full disk saves the seed by itself once space returns, with no write', async () => {
    const spy = jest.spyOn(fs, 'writeSync').mockImplementation(() => {
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' });
    });
    const warnings: string[] = [];
    const d = new TestDriver({ stateDir: path.join(dir, 'state'), runtimeDir: path.join(dir, 'run'), now: () => clock, warn: (m) => warnings.push(m) });
    spy.mockRestore();
    try {
      const until = Date.now() + 5000;
      while (!fs.existsSync(path.join(dir, 'state', 'initialized')) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      expect(warnings).toContain('first start: seed domain saved; writes accepted');
      expect(fs.existsSync(path.join(dir, 'state', 'initialized'))).toBe(true);
    } finally {
      d.close();
    }
    // Saved: a new driver finds it (an undefine now stays, as after any first start).
    const b = open();
    b.undefine(TEST_UUID);
    expect(
      open()
        .list()
        .map((x) => [x.name, x.persistent]),
    ).toEqual([['test', false]]);
  });

  test('a checkpoint the disk refuses keeps the state log: the change survives and is filed later', () => {
    const d = open();
    d.define(dx(TEST_DOMAIN_XML.replace('8388608', '1024')));
    let calls = 0;
    const real = fs.renameSync;
    const spy = jest.spyOn(fs, 'renameSync').mockImplementation((a, b) => {
      if (++calls === 1) throw Object.assign(new Error('EIO'), { code: 'EIO', syscall: 'rename' });
      real(a, b);
    });
    try {
      d.close(); // the checkpoint fails; the log is synced and kept
    } finally {
      spy.mockRestore();
    }
    expect(fs.statSync(path.join(dir, 'state', 'state.wal')).size).toBeGreaterThan(0);
    const b = open(); // replays the log, then checkpoints
    expect(xmlOf(b.xml(TEST_UUID, true))).toContain("<memory unit='KiB'>1024</memory>"); // the next-boot config of the running `test`
    expect(fs.readFileSync(path.join(dir, 'state', 'domains', '6695eb01-f6a4-8304-79aa-97f2502e193f.json'), 'utf8')).toContain('"maxMemKiB":"1024"');
    expect(fs.statSync(path.join(dir, 'state', 'state.wal')).size).toBe(0);
    expect(fs.readdirSync(path.join(dir, 'state', 'domains')).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});
