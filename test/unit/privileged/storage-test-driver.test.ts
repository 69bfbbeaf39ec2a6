// SPDX-License-Identifier: Apache-2.0
// The test driver's storage: libvirt test_driver.c's pool/volume state machine and bookkeeping, tenancy, confined
// target paths, durable records (a restart from the records gives the same state) and lifecycle events.
import { uuidFromString } from '../../../src/common/uuid';
import { NO_PERMS, type PoolConfig, type VolumeConfig } from '../../../src/ipc/objects/storage';
import { DriverError } from '../../../src/privileged/drivers/driver';
import { PoolEvent } from '../../../src/privileged/drivers/storage-driver';
import { POOL_CAPACITY, type StorageContext, TestStorage, diskSourceAllowedIn } from '../../../src/privileged/drivers/test-storage';

type Ev = Parameters<StorageContext['emit']>[0];

class MemoryCtx implements StorageContext {
  readonly store = new Map<string, Map<string, string>>();
  readonly events: Ev[] = [];
  readonly warnings: string[] = [];
  warn = (msg: string) => void this.warnings.push(msg);
  failPuts = false;
  constructor(public firstStart: boolean) {}
  records = {
    load: (type: string) => new Map(this.store.get(type) ?? []),
    put: (type: string, key: string, json: string | null) => {
      if (this.failPuts) throw new Error('ENOSPC');
      if (!/^[a-z]{1,16}$/.test(type) || !/^[0-9a-f-]{1,64}$/.test(key)) throw new Error(`bad record key ${type}/${key}`);
      const m = this.store.get(type) ?? new Map<string, string>();
      if (json === null) m.delete(key);
      else m.set(key, json);
      this.store.set(type, m);
    },
  };
  emit = (ev: Ev) => void this.events.push(ev);
}

const U = (n: number): Buffer => uuidFromString(`00000000-0000-4000-8000-${String(n).padStart(12, '0')}`)!;
const DEFAULT_UUID = uuidFromString('dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566')!;
const dirPool = (name: string, n: number, path = `/var/lib/libvirt/${name}`): PoolConfig => ({
  type: 'dir',
  name,
  uuid: U(n),
  source: { hosts: [], devices: [], dir: '', format: '', protocolVer: '', vendor: '', product: '' },
  targetPath: path,
  perms: NO_PERMS,
  cow: '',
});
const vol = (name: string, capacity: bigint, allocation = capacity): VolumeConfig => ({
  name,
  type: 'file',
  capacity,
  allocation,
  format: 'raw',
  perms: NO_PERMS,
  backing: null,
  compat: '',
  nocow: false,
  features: null,
});
function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof DriverError) return `${e.code}: ${e.detail}`;
    throw e;
  }
  return 'ok';
}

describe('seeded as test:///default', () => {
  test('first start: default-pool, shared, running, 100 GiB, empty; later starts load the records', () => {
    const ctx = new MemoryCtx(true);
    const s = new TestStorage(ctx);
    const [p] = s.listPools();
    expect(p).toMatchObject({
      tenant: '',
      active: true,
      persistent: true,
      autostart: false,
      capacity: 107374182400n,
      allocation: 0n,
      available: 107374182400n,
    });
    expect(p.config.name).toBe('default-pool');
    expect(p.config.uuid).toEqual(DEFAULT_UUID);
    expect(s.listVolumes(DEFAULT_UUID)).toEqual([]);
    ctx.firstStart = false;
    expect(new TestStorage(ctx).listPools()).toEqual(s.listPools());
  });

  test('a restart without records (not first start) has no pools: seeding happens once', () => {
    expect(new TestStorage(new MemoryCtx(false)).listPools()).toEqual([]);
  });
});

describe('pool state machine (test_driver.c)', () => {
  test('define, build, start, volumes, destroy, undefine; events as libvirt numbers them', () => {
    const ctx = new MemoryCtx(true);
    const s = new TestStorage(ctx);
    const c = dirPool('p1', 1);
    expect(s.definePool(c, '')).toMatchObject({ active: false, persistent: true });
    s.buildPool(c.uuid, '');
    s.startPool(c.uuid, '');
    const v1 = s.createVolume(c.uuid, vol('v1', 10485760n), '');
    expect(v1).toMatchObject({ pool: 'p1', key: '/var/lib/libvirt/p1/v1', path: '/var/lib/libvirt/p1/v1', tenant: '' });
    s.createVolume(c.uuid, vol('v2', 1073741824n, 524288n), '');
    s.createVolume(c.uuid, vol('v3', 1536000n), '');
    // virsh pool-info p1: Allocation 11.96 MiB = 12546048 bytes, as libvirt's test driver counts it.
    expect(s.poolByName('p1')).toMatchObject({ allocation: 12546048n, available: POOL_CAPACITY - 12546048n });
    expect(s.volumeByPath('/var/lib/libvirt/p1/v2').config.allocation).toBe(524288n);
    expect(s.volumeByKey('/var/lib/libvirt/p1/v3').config.name).toBe('v3');
    s.deleteVolume(c.uuid, 'v1', '');
    expect(s.poolByName('p1').allocation).toBe(2060288n);
    expect(code(() => s.undefinePool(c.uuid, ''))).toBe("VG_ERR_DOMAIN_STATE: storage pool 'p1' is active");
    s.destroyPool(c.uuid, '');
    expect(code(() => s.listVolumes(c.uuid))).toBe("VG_ERR_DOMAIN_STATE: storage pool 'p1' is not active");
    expect(code(() => s.volumeByKey('/var/lib/libvirt/p1/v2'))).toBe("VG_ERR_NO_STORAGE_VOL: : no storage vol with matching key '/var/lib/libvirt/p1/v2'");
    s.deletePool(c.uuid, '');
    s.undefinePool(c.uuid, '');
    expect(code(() => s.poolByName('p1'))).toBe("VG_ERR_NO_STORAGE_POOL: : no storage pool with matching name 'p1'");
    expect(ctx.events.map((e) => e.event)).toEqual([
      PoolEvent.DEFINED,
      PoolEvent.CREATED,
      PoolEvent.STARTED,
      PoolEvent.STOPPED,
      PoolEvent.DELETED,
      PoolEvent.UNDEFINED,
    ]);
    // Nothing of p1 is left on disk.
    expect([...(ctx.store.get('pool')?.keys() ?? [])]).toEqual(['dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566']);
    expect(ctx.store.get('volume')?.size ?? 0).toBe(0);
  });

  test('wrong-state calls answer as libvirt', () => {
    const s = new TestStorage(new MemoryCtx(true));
    expect(code(() => s.startPool(DEFAULT_UUID, ''))).toBe("VG_ERR_DOMAIN_STATE: storage pool 'default-pool' is active");
    expect(code(() => s.buildPool(DEFAULT_UUID, ''))).toBe("VG_ERR_DOMAIN_STATE: storage pool 'default-pool' is active");
    expect(code(() => s.deletePool(DEFAULT_UUID, ''))).toBe("VG_ERR_DOMAIN_STATE: storage pool 'default-pool' is active");
    s.destroyPool(DEFAULT_UUID, '');
    expect(code(() => s.destroyPool(DEFAULT_UUID, ''))).toBe("VG_ERR_DOMAIN_STATE: storage pool 'default-pool' is not active");
    expect(code(() => s.refreshPool(DEFAULT_UUID, ''))).toBe("VG_ERR_DOMAIN_STATE: storage pool 'default-pool' is not active");
    expect(code(() => s.createVolume(DEFAULT_UUID, vol('x', 1n), ''))).toBe("VG_ERR_DOMAIN_STATE: storage pool 'default-pool' is not active");
    expect(code(() => s.poolByUuid(U(9)))).toBe("VG_ERR_NO_STORAGE_POOL: : no storage pool with matching uuid '00000000-0000-4000-8000-000000000009'");
  });

  test('duplicates: name, uuid, target path (libvirt words)', () => {
    const s = new TestStorage(new MemoryCtx(true));
    s.definePool(dirPool('a', 1), '');
    expect(code(() => s.definePool(dirPool('a', 2, '/var/lib/libvirt/other'), ''))).toBe(
      "VG_ERR_STORAGE_FAILED: pool 'a' already exists with uuid 00000000-0000-4000-8000-000000000001",
    );
    expect(code(() => s.definePool(dirPool('b', 1, '/var/lib/libvirt/b'), ''))).toBe(
      "VG_ERR_STORAGE_FAILED: pool 'a' is already defined with uuid 00000000-0000-4000-8000-000000000001",
    );
    expect(code(() => s.definePool(dirPool('sp', 3, '/default-pool'), ''))).toBe("VG_ERR_STORAGE_FAILED: Storage source conflict with pool: 'default-pool'");
    expect(code(() => s.definePool(dirPool('nest', 4, '/var/lib/libvirt/a/inner'), ''))).toBe("VG_ERR_STORAGE_FAILED: Storage source conflict with pool: 'a'");
    expect(code(() => s.createPool(dirPool('default-pool', 5, '/var/lib/libvirt/x'), ''))).toMatch(/already exists with uuid dfe224cb/);
    // createXML over an active pool of the same name and uuid.
    expect(code(() => s.createPool({ ...dirPool('default-pool', 0, '/default-pool'), uuid: DEFAULT_UUID }, ''))).toBe(
      "VG_ERR_DOMAIN_STATE: pool is already active as 'default-pool'",
    );
  });

  test('target paths outside the allowed roots are refused', () => {
    const s = new TestStorage(new MemoryCtx(true));
    expect(code(() => s.definePool(dirPool('etc', 1, '/etc'), ''))).toMatch(
      /^VG_ERR_DOMAIN_ARG: storage pool target path '\/etc' is outside the allowed roots/,
    );
    expect(code(() => s.definePool(dirPool('lib', 2, '/var/lib/libvirtx'), ''))).toMatch(/outside the allowed roots/);
  });

  test('redefining an active pool changes its config when it stops; a transient pool vanishes when stopped', () => {
    const ctx = new MemoryCtx(true);
    const s = new TestStorage(ctx);
    s.definePool({ ...dirPool('default-pool', 0, '/default-pool'), uuid: DEFAULT_UUID, perms: { ...NO_PERMS, mode: 0o700 } }, '');
    expect(s.poolByName('default-pool').config.perms.mode).toBe(-1);
    s.destroyPool(DEFAULT_UUID, '');
    expect(s.poolByName('default-pool').config.perms.mode).toBe(0o700);
    const t = dirPool('t', 7);
    expect(s.createPool(t, '')).toMatchObject({ active: true, persistent: false, autostart: false });
    expect(code(() => s.setPoolAutostart(t.uuid, true, ''))).toBe('VG_ERR_DOMAIN_ARG: pool has no config file');
    s.destroyPool(t.uuid, '');
    expect(code(() => s.poolByName('t'))).toMatch(/NO_STORAGE_POOL/);
    expect(ctx.events.slice(-2).map((e) => [e.name, e.event])).toEqual([
      ['t', PoolEvent.STARTED],
      ['t', PoolEvent.STOPPED],
    ]);
    s.setPoolAutostart(DEFAULT_UUID, true, '');
    expect(s.poolByName('default-pool').autostart).toBe(true);
  });

  test('a failed record write changes nothing', () => {
    const ctx = new MemoryCtx(true);
    const s = new TestStorage(ctx);
    ctx.failPuts = true;
    expect(() => s.definePool(dirPool('a', 1), '')).toThrow('ENOSPC');
    expect(() => s.createVolume(DEFAULT_UUID, vol('v', 5n), '')).toThrow('ENOSPC');
    expect(() => s.destroyPool(DEFAULT_UUID, '')).toThrow('ENOSPC');
    expect(s.listPools().map((p) => [p.config.name, p.active, p.allocation])).toEqual([['default-pool', true, 0n]]);
    expect(s.listVolumes(DEFAULT_UUID)).toEqual([]);
    expect(ctx.events).toEqual([]);
  });
});

describe('volumes', () => {
  test('space bookkeeping, duplicate names, clone, resize, wipe, restart', () => {
    const ctx = new MemoryCtx(true);
    const s = new TestStorage(ctx);
    s.createVolume(DEFAULT_UUID, vol('big', POOL_CAPACITY - 10n), '');
    expect(code(() => s.createVolume(DEFAULT_UUID, vol('more', 11n), ''))).toBe("VG_ERR_DOMAIN_INTERNAL: Not enough free space in pool for volume 'more'");
    expect(code(() => s.createVolume(DEFAULT_UUID, vol('big', 1n), ''))).toBe('VG_ERR_STORAGE_FAILED: storage vol already exists');
    s.deleteVolume(DEFAULT_UUID, 'big', '');
    s.createVolume(DEFAULT_UUID, vol('base', 1000n), '');
    const clone = s.cloneVolume(DEFAULT_UUID, vol('copy', 2000n, 100n), DEFAULT_UUID, 'base', '');
    expect(clone).toMatchObject({ path: '/default-pool/copy' });
    expect(code(() => s.cloneVolume(DEFAULT_UUID, vol('c2', 1n), DEFAULT_UUID, 'nope', ''))).toBe(
      "VG_ERR_NO_STORAGE_VOL: : no storage vol with matching name 'nope'",
    );
    expect(s.poolByName('default-pool').allocation).toBe(1100n);

    expect(code(() => s.resizeVolume(DEFAULT_UUID, 'copy', 10n, 0, ''))).toMatch(/Can't shrink capacity below current capacity/);
    expect(code(() => s.resizeVolume(DEFAULT_UUID, 'copy', 10n, 4, ''))).toMatch(/Can't shrink capacity below current allocation/);
    expect(s.resizeVolume(DEFAULT_UUID, 'copy', 1000n, 2, '').config).toMatchObject({ capacity: 3000n, allocation: 100n });
    expect(s.resizeVolume(DEFAULT_UUID, 'copy', 4000n, 1, '').config).toMatchObject({ capacity: 4000n, allocation: 4000n });
    expect(s.poolByName('default-pool').allocation).toBe(5000n);
    expect(code(() => s.resizeVolume(DEFAULT_UUID, 'copy', POOL_CAPACITY, 1, ''))).toBe('VG_ERR_STORAGE_FAILED: Not enough space left in storage pool');
    expect(s.wipeVolume(DEFAULT_UUID, 'copy', '').config.capacity).toBe(4000n);

    ctx.firstStart = false;
    const again = new TestStorage(ctx);
    expect(again.listPools()).toEqual(s.listPools());
    expect(again.listVolumes(DEFAULT_UUID)).toEqual(s.listVolumes(DEFAULT_UUID));
    expect(ctx.warnings).toEqual([]);
  });

  test('records that fail the IPC checks are skipped with a warning, never served', () => {
    const ctx = new MemoryCtx(true);
    const s = new TestStorage(ctx);
    s.createVolume(DEFAULT_UUID, vol('ok', 1n), '');
    const vols = ctx.store.get('volume')!;
    const [key, json] = [...vols][0];
    vols.set(
      key.replace(/.$/, (c) => (c === '0' ? '1' : '0')),
      json.replace('"ok"', '"../../etc/shadow"'),
    );
    const pools = ctx.store.get('pool')!;
    pools.set('00000000-0000-4000-8000-000000000099', pools.get('dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566')!.replace('/default-pool', 'relative'));
    ctx.firstStart = false;
    const again = new TestStorage(ctx);
    expect(again.listVolumes(DEFAULT_UUID).map((v) => v.config.name)).toEqual(['ok']);
    expect(again.listPools()).toHaveLength(1);
    expect(ctx.warnings).toHaveLength(2);
  });
});

describe('tenancy', () => {
  function world() {
    const s = new TestStorage(new MemoryCtx(true));
    const a = dirPool('apool', 1);
    const b = dirPool('bpool', 2);
    s.definePool(a, 'acme');
    s.startPool(a.uuid, 'acme');
    s.definePool(b, 'globex');
    s.startPool(b.uuid, 'globex');
    s.createVolume(a.uuid, vol('disk', 100n), 'acme');
    s.createVolume(DEFAULT_UUID, vol('shared-iso', 100n), '');
    return { s, a, b };
  }

  test('pools take the definer tenant; volumes inherit it', () => {
    const { s, a } = world();
    expect(s.poolByUuid(a.uuid).tenant).toBe('acme');
    expect(s.volumeByName(a.uuid, 'disk').tenant).toBe('acme');
    expect(s.volumeByName(DEFAULT_UUID, 'shared-iso').tenant).toBe('');
  });

  test("another tenant's pool is absent to every write; a shared pool is read-only to tenants", () => {
    const { s, a } = world();
    const absent = "VG_ERR_NO_STORAGE_POOL: : no storage pool with matching uuid '00000000-0000-4000-8000-000000000001'";
    for (const f of [
      () => s.destroyPool(a.uuid, 'globex'),
      () => s.buildPool(a.uuid, 'globex'),
      () => s.refreshPool(a.uuid, 'globex'),
      () => s.setPoolAutostart(a.uuid, true, 'globex'),
      () => s.createVolume(a.uuid, vol('x', 1n), 'globex'),
      () => s.deleteVolume(a.uuid, 'disk', 'globex'),
      () => s.resizeVolume(a.uuid, 'disk', 1000n, 0, 'globex'),
      () => s.wipeVolume(a.uuid, 'disk', 'globex'),
      () => s.cloneVolume(a.uuid, vol('y', 1n), a.uuid, 'disk', 'globex'),
    ])
      expect(code(f)).toBe(absent);
    // Cloning another tenant's volume into one's own pool: the source pool is absent too.
    expect(code(() => s.cloneVolume(U(2), vol('stolen', 1n), a.uuid, 'disk', 'globex'))).toBe(absent);
    expect(code(() => s.createVolume(DEFAULT_UUID, vol('x', 1n), 'acme'))).toMatch(/^VG_ERR_ACCESS_DENIED/);
    expect(code(() => s.destroyPool(DEFAULT_UUID, 'acme'))).toMatch(/^VG_ERR_ACCESS_DENIED/);
    // A shared volume may be cloned into one's own pool; the host admin may do anything.
    expect(s.cloneVolume(a.uuid, vol('mine', 1n), DEFAULT_UUID, 'shared-iso', 'acme').tenant).toBe('acme');
    s.deleteVolume(a.uuid, 'disk', '');
  });

  test("another tenant's name, uuid or path is not available, and not named", () => {
    const { s } = world();
    expect(code(() => s.definePool(dirPool('apool', 9, '/var/lib/libvirt/z'), 'globex'))).toBe(
      'VG_ERR_STORAGE_FAILED: name, uuid or target path is not available',
    );
    expect(code(() => s.definePool(dirPool('zz', 1, '/var/lib/libvirt/z'), 'globex'))).toBe(
      'VG_ERR_STORAGE_FAILED: name, uuid or target path is not available',
    );
    expect(code(() => s.definePool(dirPool('zz', 9, '/var/lib/libvirt/apool/sub'), 'globex'))).toBe(
      'VG_ERR_STORAGE_FAILED: name, uuid or target path is not available',
    );
    expect(code(() => s.definePool(dirPool('zz', 9, '/var/lib/libvirt'), 'globex'))).toBe('VG_ERR_STORAGE_FAILED: name, uuid or target path is not available');
    // A tenant's pool keeps its tenant when the host admin redefines it.
    expect(s.definePool(dirPool('apool', 1), '').tenant).toBe('acme');
  });

  test('diskSourceAllowed: own volumes and shared ones, nothing else', () => {
    const { s } = world();
    expect(s.diskSourceAllowed('/var/lib/libvirt/apool/disk', 'acme')).toBe(true);
    expect(s.diskSourceAllowed('/default-pool/shared-iso', 'acme')).toBe(true);
    expect(s.diskSourceAllowed('/var/lib/libvirt/apool/disk', 'globex')).toBe(false);
    expect(s.diskSourceAllowed('/etc/shadow', 'acme')).toBe(false);
    expect(s.diskSourceAllowed('/var/lib/libvirt/apool', 'acme')).toBe(false);
    expect(s.diskSourceAllowed('/var/lib/libvirt/apool/disk', '')).toBe(false);
    expect(s.diskSourceAllowed('/default-pool/shared-iso', '')).toBe(true);
    expect(diskSourceAllowedIn([], '/x', '')).toBe(false);
  });
});
