// SPDX-License-Identifier: Apache-2.0
// The qemu driver's directory pools over real directories: tenants confined to their own root, volumes made without
// exec (ftruncate, createQcow2) and checked by qemu-img, planted files never written through or listed.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { QemuPools } from '../../../src/privileged/drivers/qemu-pools';
import type { StorageContext } from '../../../src/privileged/drivers/test-storage';
import { openPoolDisk } from '../../../src/privileged/qemu/disk';
import { NO_PERMS, type PoolConfig, type VolumeConfig } from '../../../src/ipc/objects/storage';
import { describeIf, root, tool } from '../../helpers/skip';

function fakeCtx(
  records = new Map<string, Map<string, string>>(),
): StorageContext & { events: { name: string; event: number }[]; warnings: string[]; records: StorageContext['records'] } {
  const events: { name: string; event: number }[] = [];
  const warnings: string[] = [];
  return {
    events,
    warnings,
    firstStart: records.size === 0,
    records: {
      load: (type) => new Map(records.get(type) ?? []),
      put(type, key, json) {
        const m = records.get(type) ?? new Map<string, string>();
        if (json === null) m.delete(key);
        else m.set(key, json);
        records.set(type, m);
      },
    },
    warn: (m) => void warnings.push(m),
    emit: (e) => void events.push({ name: e.name, event: e.event }),
  };
}

const poolCfg = (name: string, targetPath: string): PoolConfig => ({
  type: 'dir',
  name,
  uuid: randomBytes(16),
  source: { hosts: [], devices: [], dir: '', format: '', protocolVer: '', vendor: '', product: '' },
  targetPath,
  perms: NO_PERMS,
  cow: '',
});

const volCfg = (name: string, format: 'raw' | 'qcow2', capacity: bigint, backing: VolumeConfig['backing'] = null): VolumeConfig => ({
  name,
  type: 'file',
  capacity,
  allocation: 0n,
  format,
  perms: NO_PERMS,
  backing,
  compat: '',
  nocow: false,
  features: null,
});

describeIf([root('root-owned pool directories'), tool('qemu-img', 'qemu-utils')], 'QemuPools', () => {
  let top: string;
  let tenantRoot: string;
  let adminRoot: string;
  let records: Map<string, Map<string, string>>;
  let ctx: ReturnType<typeof fakeCtx>;
  let pools: QemuPools;

  beforeAll(() => {
    top = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-pools-'));
    tenantRoot = path.join(top, 'tenants');
    adminRoot = path.join(top, 'admin');
    records = new Map();
    ctx = fakeCtx(records);
    pools = new QemuPools(ctx, { tenantRoot, adminRoots: [adminRoot] });
  });
  afterAll(() => fs.rmSync(top, { recursive: true, force: true }));

  const up = (cfg: PoolConfig, tenant: string): Buffer => {
    pools.definePool(cfg, tenant);
    pools.buildPool(cfg.uuid, tenant);
    pools.startPool(cfg.uuid, tenant);
    return cfg.uuid;
  };

  let acme: Buffer;
  let acmeDir: string;
  let shared: Buffer;
  let sharedDir: string;

  test('a tenant pool is built as root 0700 directories under the tenant root, and starts', () => {
    acmeDir = path.join(tenantRoot, 'acme', 'vms');
    acme = up(poolCfg('acme-vms', acmeDir), 'acme');
    for (const d of [path.join(tenantRoot, 'acme'), acmeDir]) {
      const st = fs.lstatSync(d);
      expect([st.isDirectory(), st.uid, st.mode & 0o777]).toEqual([true, 0, 0o700]);
    }
    expect(pools.poolByUuid(acme)).toMatchObject({ active: true, tenant: 'acme' });
    expect(pools.poolByUuid(acme).capacity).toBeGreaterThan(0n);
    expect(ctx.events.filter((e) => e.name === 'acme-vms').map((e) => e.event)).toEqual([0, 4, 2]); // defined, created, started
  });

  test('pool targets: a tenant only below its own root; a host admin only in the admin roots, never in the tenants root', () => {
    const cases: [string, string, RegExp][] = [
      ['/etc', 'acme', /must lie below/],
      [path.join(tenantRoot, 'other', 'x'), 'acme', /must lie below/],
      [path.join(tenantRoot, 'acme'), 'acme', /must lie below/],
      [path.join(tenantRoot, 'acme', 'vms', 'nested'), 'acme', /conflict/],
      ['/var/lib/x', '', /outside the allowed roots/],
      [path.join(tenantRoot, 'acme', 'x'), '', /outside the allowed roots|tenants' root/],
    ];
    for (const [target, tenant, why] of cases) expect(() => pools.definePool(poolCfg(`p${randomBytes(3).toString('hex')}`, target), tenant)).toThrow(why);
    expect(() => pools.definePool({ ...poolCfg('lvm', path.join(tenantRoot, 'acme', 'l')), type: 'fs' }, 'acme')).toThrow(/only dir/);
  });

  test('raw and qcow2 volumes: made without exec, qemu-img agrees, listed, found by path, deleted', () => {
    const raw = pools.createVolume(acme, volCfg('disk.raw', 'raw', 10n << 20n), 'acme');
    expect(raw).toMatchObject({ path: path.join(acmeDir, 'disk.raw'), tenant: 'acme', config: { format: 'raw', capacity: 10n << 20n } });
    const st = fs.statSync(raw.path);
    expect([st.size, st.uid, st.mode & 0o777]).toEqual([10 << 20, 0, 0o600]);
    const q = pools.createVolume(acme, volCfg('disk.qcow2', 'qcow2', 1n << 30n), 'acme');
    expect(q.config).toMatchObject({ format: 'qcow2', capacity: 1n << 30n, compat: '1.1', backing: null });
    execFileSync('qemu-img', ['check', '-q', '-f', 'qcow2', q.path]);
    expect(JSON.parse(execFileSync('qemu-img', ['info', '--output=json', q.path], { encoding: 'utf8' }))).toMatchObject({
      format: 'qcow2',
      'virtual-size': 1 << 30,
    });
    expect(pools.listVolumes(acme).map((v) => v.config.name)).toEqual(['disk.qcow2', 'disk.raw']);
    expect(pools.volumeByPath(q.path).config.name).toBe('disk.qcow2');
    expect(pools.volumeByKey(raw.key).config.name).toBe('disk.raw');
    expect(() => pools.createVolume(acme, volCfg('disk.raw', 'raw', 1n << 20n), 'acme')).toThrow(/already exists/);
    pools.deleteVolume(acme, 'disk.raw', 'acme');
    expect(fs.existsSync(raw.path)).toBe(false);
    expect(() => pools.volumeByName(acme, 'disk.raw')).toThrow(expect.objectContaining({ code: 'VG_ERR_NO_STORAGE_VOL' }));
  });

  test('a planted symlink or hard link is never written through, listed or deleted', () => {
    const victim = path.join(top, 'victim');
    fs.writeFileSync(victim, 'precious', { mode: 0o600 });
    fs.symlinkSync(victim, path.join(acmeDir, 'planted.raw'));
    expect(() => pools.createVolume(acme, volCfg('planted.raw', 'raw', 1n << 20n), 'acme')).toThrow(/already exists|symbolic/);
    fs.linkSync(victim, path.join(acmeDir, 'hard.raw'));
    execFileSync('mkfifo', [path.join(acmeDir, 'fifo.raw')]);
    const names = pools.listVolumes(acme).map((v) => v.config.name);
    expect(names).not.toContain('planted.raw');
    expect(names).not.toContain('hard.raw');
    expect(names).not.toContain('fifo.raw');
    expect(() => pools.deleteVolume(acme, 'hard.raw', 'acme')).toThrow(/one link/);
    expect(() => pools.wipeVolume(acme, 'planted.raw', 'acme')).toThrow(/no symlinks/);
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious');
    for (const n of ['planted.raw', 'hard.raw', 'fifo.raw']) fs.rmSync(path.join(acmeDir, n));
  });

  test('qcow2 overlays: on a volume of the same pool or of a shared pool; never elsewhere', () => {
    sharedDir = path.join(adminRoot, 'base');
    shared = up(poolCfg('base', sharedDir), '');
    const os1 = pools.createVolume(shared, volCfg('os.raw', 'raw', 1n << 20n), '');
    const same = pools.createVolume(acme, volCfg('same.qcow2', 'qcow2', 1n << 20n, { path: path.join(acmeDir, 'disk.qcow2'), format: 'qcow2' }), 'acme');
    expect(same.config.backing).toEqual({ path: path.join(acmeDir, 'disk.qcow2'), format: 'qcow2' });
    const over = pools.createVolume(acme, volCfg('over.qcow2', 'qcow2', 1n << 20n, { path: os1.path, format: 'raw' }), 'acme');
    expect(over.config.backing).toEqual({ path: os1.path, format: 'raw' });
    const layers = openPoolDisk({ poolDir: acmeDir, name: 'over.qcow2', format: 'qcow2', readOnly: false, basePools: pools.basePoolDirs() });
    expect(layers.map((l) => [l.name, l.readOnly])).toEqual([
      [over.path, false],
      [os1.path, true],
    ]);
    layers.forEach((l) => fs.closeSync(l.fd));
    const beta = up(poolCfg('beta-vms', path.join(tenantRoot, 'beta', 'vms')), 'beta');
    const betaVol = pools.createVolume(beta, volCfg('b.raw', 'raw', 1n << 20n), 'beta');
    for (const b of ['/etc/passwd', betaVol.path])
      expect(() => pools.createVolume(acme, volCfg('bad.qcow2', 'qcow2', 1n << 20n, { path: b, format: 'raw' }), 'acme')).toThrow(/neither in pool/);
    expect(() => pools.createVolume(acme, volCfg('gone.qcow2', 'qcow2', 1n << 20n, { path: path.join(acmeDir, 'absent.raw'), format: 'raw' }), 'acme')).toThrow(
      /No such file/,
    );
    expect(fs.existsSync(path.join(acmeDir, 'gone.qcow2'))).toBe(false); // a volume that fails the rules is removed again
  });

  test("tenancy: another tenant's pool is absent; a shared pool is read-only to tenants", () => {
    expect(() => pools.createVolume(acme, volCfg('x.raw', 'raw', 1n), 'beta')).toThrow(expect.objectContaining({ code: 'VG_ERR_NO_STORAGE_POOL' }));
    expect(() => pools.destroyPool(acme, 'beta')).toThrow(expect.objectContaining({ code: 'VG_ERR_NO_STORAGE_POOL' }));
    expect(() => pools.createVolume(shared, volCfg('x.raw', 'raw', 1n), 'acme')).toThrow(expect.objectContaining({ code: 'VG_ERR_ACCESS_DENIED' }));
    expect(pools.diskSourceAllowed(path.join(acmeDir, 'disk.qcow2'), 'acme')).toBe(true);
    expect(pools.diskSourceAllowed(path.join(sharedDir, 'os.raw'), 'acme')).toBe(true);
    expect(pools.diskSourceAllowed(path.join(acmeDir, 'disk.qcow2'), 'beta')).toBe(false);
    expect(pools.diskSourceAllowed('/etc/shadow', 'acme')).toBe(false);
    expect(pools.diskSourceAllowed(`${acmeDir}/../x`, 'acme')).toBe(false);
  });

  test('resize and wipe of a raw volume; a qcow2 wipe keeps its size and backing', () => {
    const v = pools.createVolume(acme, volCfg('r.raw', 'raw', 1n << 20n), 'acme');
    fs.writeFileSync(v.path, Buffer.alloc(1 << 20, 7));
    expect(() => pools.resizeVolume(acme, 'r.raw', 4096n, 0, 'acme')).toThrow(/shrink/);
    expect(pools.resizeVolume(acme, 'r.raw', 1n << 20n, 2, 'acme').config.capacity).toBe(2n << 20n);
    pools.wipeVolume(acme, 'r.raw', 'acme');
    const bytes = fs.readFileSync(v.path);
    expect([bytes.length, bytes.every((b) => b === 0)]).toEqual([2 << 20, true]);
    const w = pools.wipeVolume(acme, 'over.qcow2', 'acme');
    expect(w.config).toMatchObject({ capacity: 1n << 20n, backing: { path: path.join(sharedDir, 'os.raw'), format: 'raw' } });
    execFileSync('qemu-img', ['check', '-q', w.path]);
    expect(() => pools.resizeVolume(acme, 'over.qcow2', 1n << 30n, 0, 'acme')).toThrow(expect.objectContaining({ code: 'VG_ERR_NOT_SUPPORTED' }));
  });

  test('a restart loads the pools from their records; a pool whose directory went bad loads inactive', () => {
    pools.setPoolAutostart(acme, true, 'acme');
    fs.chmodSync(path.join(tenantRoot, 'beta', 'vms'), 0o777);
    const again = new QemuPools(fakeCtx(records), { tenantRoot, adminRoots: [adminRoot] });
    expect(again.poolByUuid(acme)).toMatchObject({ active: true, autostart: true });
    expect(again.listVolumes(acme).map((v) => v.config.name)).toContain('disk.qcow2');
    expect(again.poolByName('beta-vms', 'beta').active).toBe(false);
  });

  test('destroy, delete (the directory goes when empty) and undefine', () => {
    const cfg = poolCfg('tmp', path.join(tenantRoot, 'acme', 'tmp'));
    const u = up(cfg, 'acme');
    pools.createVolume(u, volCfg('t.raw', 'raw', 512n), 'acme');
    pools.destroyPool(u, 'acme');
    expect(() => pools.deletePool(u, 'acme')).toThrow(/ENOTEMPTY/);
    fs.rmSync(path.join(cfg.targetPath, 't.raw'));
    pools.deletePool(u, 'acme');
    expect(fs.existsSync(cfg.targetPath)).toBe(false);
    pools.undefinePool(u, 'acme');
    expect(() => pools.poolByUuid(u)).toThrow(expect.objectContaining({ code: 'VG_ERR_NO_STORAGE_POOL' }));
  });

  test("per-tenant `default` pools: the host's made at start, a tenant's on demand, once; names are per tenant", () => {
    const host = pools.poolByName('default');
    expect(host).toMatchObject({ tenant: '', active: true, persistent: true, autostart: true });
    expect(host.config.targetPath).toBe(path.join(adminRoot, 'default'));
    const journal: { tenant: string; path: string }[] = [];
    const p2 = new QemuPools(fakeCtx(records), { tenantRoot, adminRoots: [adminRoot], journal: (r) => void journal.push(r) });
    expect(journal).toEqual([]); // the host's exists already: nothing made again
    const a = p2.defaultPool('acme');
    const again = p2.defaultPool('acme');
    const b = p2.defaultPool('beta');
    expect(again.config.uuid).toEqual(a.config.uuid);
    expect(new Set([host, a, b].map((p) => p.config.uuid.toString('hex'))).size).toBe(3);
    expect(journal.map((r) => r.tenant)).toEqual(['acme', 'beta']);
    const st = fs.statSync(path.join(tenantRoot, 'acme', 'default'));
    expect([st.uid, st.mode & 0o777]).toEqual([0, 0o700]);
    // By name: the tenant's own, then the host's; the host admin's lookup finds the host's.
    expect(p2.poolByName('default', 'acme').config.uuid).toEqual(a.config.uuid);
    expect(p2.poolByName('default', 'gamma').config.uuid).toEqual(host.config.uuid);
    expect(p2.poolByName('default').config.uuid).toEqual(host.config.uuid);
    // A second pool of that name in the same tenant is refused; in another tenant, each has its own.
    expect(() => p2.definePool(poolCfg('default', path.join(tenantRoot, 'acme', 'other')), 'acme')).toThrow(/pool 'default' already exists/);
    expect(() => p2.defaultPool('../x')).toThrow();
  });
});
