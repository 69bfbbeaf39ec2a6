// SPDX-License-Identifier: Apache-2.0
// The qemu driver's own tenant rules (the front end's RBAC decides first; these hold even against a forged request):
// a tenant's VM uses only its tenant's or shared pools, no host path, no bridge, no kernel path; names and uuids of
// another tenant's VMs are not available and reveal nothing; a tenant's session cannot redefine another's VM.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NO_PERMS, type PoolConfig } from '../../src/ipc/objects/storage';
import { QemuDriver } from '../../src/privileged/drivers/qemu/driver';
import type { QemuHost } from '../../src/privileged/drivers/qemu/host';
import { dx } from '../helpers/domain-def';

const host: QemuHost = {
  launcher: () => null,
  bindListener: () => -1,
  closeFd: () => undefined,
  kernelMemfd: () => -1,
  openDisk: () => [],
};
const poolCfg = (name: string, targetPath: string): PoolConfig => ({
  type: 'dir',
  name,
  uuid: randomBytes(16),
  source: { hosts: [], devices: [], dir: '', format: '', protocolVer: '', vendor: '', product: '' },
  targetPath,
  perms: NO_PERMS,
  cow: '',
});
const vm = (name: string, devices: string, os = '') =>
  dx(`<domain type='qemu'><name>${name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type>${os}</os>
  <devices>${devices}</devices></domain>`);
const disk = (src: string) =>
  `<disk type='${src.startsWith('/') ? 'file' : 'volume'}' device='disk'>${
    src.startsWith('/') ? `<source file='${src}'/>` : `<source pool='${src.split('/')[0]}' volume='${src.split('/')[1]}'/>`
  }<target dev='vda' bus='virtio'/></disk>`;
const refusal = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    return `${(e as { code: string }).code}: ${(e as { detail: string }).detail}`;
  }
  return 'accepted';
};

(process.getuid?.() === 0 ? describe : describe.skip)('qemu driver tenancy', () => {
  let dir: string;
  let d: QemuDriver;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-qemu-ten-'));
    d = new QemuDriver({
      stateDir: path.join(dir, 'lib'),
      runtimeDir: path.join(dir, 'run'),
      host,
      cgroupRoot: 'unused',
      pools: { tenantRoot: path.join(dir, 'pools'), adminRoots: [path.join(dir, 'images')] },
      warn: () => undefined,
    });
    for (const [name, tenant, target] of [
      ['acme-p', 'acme', path.join(dir, 'pools', 'acme', 'p')],
      ['globex-p', 'globex', path.join(dir, 'pools', 'globex', 'p')],
      ['shared', '', path.join(dir, 'images', 'shared')],
    ]) {
      const p = d.pools!.definePool(poolCfg(name, target), tenant);
      d.pools!.buildPool(p.config.uuid, tenant);
      d.pools!.startPool(p.config.uuid, tenant);
    }
  });
  afterAll(() => {
    d?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("a tenant's VM: its own or shared pools only; never a host path, another tenant's pool, a kernel path", () => {
    expect(refusal(() => d.define(vm('a1', disk('acme-p/x.qcow2')), 'acme'))).toBe('accepted');
    expect(refusal(() => d.define(vm('a2', disk('shared/base.raw')), 'acme'))).toBe('accepted');
    expect(refusal(() => d.define(vm('a3', disk(path.join(dir, 'pools', 'acme', 'p', 'y.raw'))), 'acme'))).toBe('accepted');
    expect(refusal(() => d.define(vm('a4', disk('globex-p/x.qcow2')), 'acme'))).toMatch(
      /^VG_ERR_RESOURCE_DENIED: disk 'vda' \(globex-p\/x.qcow2\) is not a volume the VM may use; tenant 'acme'/,
    );
    expect(refusal(() => d.define(vm('a5', disk(path.join(dir, 'pools', 'globex', 'p', 'x.raw'))), 'acme'))).toMatch(/^VG_ERR_RESOURCE_DENIED: disk 'vda'/);
    expect(refusal(() => d.define(vm('a6', disk('/etc/shadow')), 'acme'))).toMatch(/^VG_ERR_RESOURCE_DENIED: disk 'vda' \(\/etc\/shadow\)/);
    expect(refusal(() => d.define(vm('a7', disk(`${path.join(dir, 'pools', 'acme', 'p')}/../../globex/p/x.raw`)), 'acme'))).toMatch(/^VG_ERR_RESOURCE_DENIED/);
    expect(refusal(() => d.define(vm('a8', '', '<kernel>/boot/vmlinuz</kernel>'), 'acme'))).toMatch(
      /^VG_ERR_RESOURCE_DENIED: <os><kernel>\/<initrd> name host paths/,
    );
    expect(refusal(() => d.define(vm('a9', "<interface type='bridge'><source bridge='br0'/></interface>"), 'acme'))).toMatch(/host admins only/);
    // A host admin is not confined to tenants' rules but still only to pools: /etc/shadow is not in one (refused at start).
    expect(refusal(() => d.define(vm('h1', "<interface type='bridge'><source bridge='br0'/></interface>"), ''))).toBe('accepted');
  });

  test("another tenant's VM: its name and uuid are not available and reveal nothing; it cannot be redefined", () => {
    const a = d.lookup({ kind: 0, name: 'a1' });
    const clash = refusal(() => d.define(vm('a1', ''), 'globex'));
    expect(clash).toBe('VG_ERR_DOMAIN_EXISTS: name or uuid is not available');
    const byUuid = { ...vm('other', ''), uuid: d.xml(a.uuid, true).def.uuid };
    expect(refusal(() => d.define(byUuid, 'globex'))).toBe('VG_ERR_DOMAIN_EXISTS: name or uuid is not available');
    expect(a.tenant).toBe('acme');
    // The stored tenant is the helper's: a redefinition by a host admin keeps it.
    d.define({ ...vm('a1', disk('acme-p/x.qcow2')), uuid: d.xml(a.uuid, true).def.uuid }, '');
    expect(d.lookup({ kind: 0, name: 'a1' }).tenant).toBe('acme');
  });

  test('setmem and setvcpus --config on a shut-off VM change its next boot; limits as libvirt words them', async () => {
    const a = d.lookup({ kind: 0, name: 'a2' });
    await d.setMemory(a.uuid, 32n * 1024n, { live: false, config: true, max: false });
    expect(d.xml(a.uuid, true).def.curMemKiB).toBe(32n * 1024n);
    await expect(d.setMemory(a.uuid, 1024n * 1024n, { live: false, config: true, max: false })).rejects.toMatchObject({
      detail: 'cannot set memory higher than max memory',
    });
    await d.setVcpus(a.uuid, 4, { live: false, config: true, max: true });
    await d.setVcpus(a.uuid, 3, { live: false, config: true, max: false });
    expect(d.xml(a.uuid, true).def).toMatchObject({ vcpusMax: 4, vcpus: 3 });
    await expect(d.setVcpus(a.uuid, 2, { live: true, config: false, max: false })).rejects.toMatchObject({ detail: 'domain is not running' });
  });
});
