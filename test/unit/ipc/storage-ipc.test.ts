// SPDX-License-Identifier: Apache-2.0
// The storage groups' codecs, as the helper decodes what a (possibly taken-over) front end sends: every field is
// checked; a confined path is absolute and normalized; unknown actions and enums are refused.
import { XdrReader, XdrWriter } from '../../../src/common/xdr';
import { uuidFromString } from '../../../src/common/uuid';
import {
  NO_PERMS,
  POOL_READ,
  POOL_WRITE,
  type PoolConfig,
  VOLUME_READ,
  VOLUME_WRITE,
  type VolumeConfig,
  pathProblem,
  pathWithin,
} from '../../../src/ipc/objects/storage';

const actor = { user: 'x509:admin', tenant: 'acme', requestId: 'r1', auditHead: '' };
const POOL: PoolConfig = {
  type: 'netfs',
  name: 'p1',
  uuid: uuidFromString('dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566')!,
  source: { hosts: [{ name: 'nfs.example', port: 2049 }], devices: [], dir: '/export', format: 'nfs', protocolVer: '4', vendor: '', product: '' },
  targetPath: '/var/lib/libvirt/p1',
  perms: { mode: 0o755, owner: 107, group: -1, label: 'virt_image_t' },
  cow: '',
};
const VOL: VolumeConfig = {
  name: 'disk.qcow2',
  type: 'file',
  capacity: 1n << 30n,
  allocation: 0n,
  format: 'qcow2',
  perms: NO_PERMS,
  backing: { path: '/var/lib/libvirt/p1/base', format: 'raw' },
  compat: '1.1',
  nocow: true,
  features: ['lazy_refcounts'],
};

function bytes<T>(codec: { encode(w: XdrWriter, v: T): void }, v: T): Buffer {
  const w = new XdrWriter();
  codec.encode(w, v);
  return w.finish();
}
function decode<T>(codec: { decode(r: XdrReader): T }, b: Buffer): T {
  const r = new XdrReader(b);
  const v = codec.decode(r);
  r.ensureConsumed();
  return v;
}
const roundTrip = <T>(codec: { encode(w: XdrWriter, v: T): void; decode(r: XdrReader): T }, v: T): T => decode(codec, bytes(codec, v));

describe('round trips', () => {
  test('pool writes carry the actor and the typed config', () => {
    expect(roundTrip(POOL_WRITE.request, { action: 'define', actor, config: POOL })).toEqual({ action: 'define', actor, config: POOL });
    expect(roundTrip(POOL_WRITE.request, { action: 'setAutostart', actor, uuid: POOL.uuid, autostart: true })).toMatchObject({ autostart: true });
  });
  test('volume writes and reads', () => {
    expect(roundTrip(VOLUME_WRITE.request, { action: 'create', actor, pool: POOL.uuid, config: VOL, prealloc: true })).toEqual({
      action: 'create',
      actor,
      pool: POOL.uuid,
      config: VOL,
      prealloc: true,
    });
    expect(roundTrip(VOLUME_READ.request, { action: 'byPath', path: '/etc/shadow' })).toEqual({ action: 'byPath', path: '/etc/shadow' });
    expect(roundTrip(POOL_READ.request, { action: 'byName', name: 'default-pool' })).toEqual({ action: 'byName', name: 'default-pool' });
  });
});

describe('the helper refuses what the front end must never send', () => {
  const poolWith = (patch: Partial<PoolConfig>): Buffer => bytes(POOL_WRITE.request, { action: 'define', actor, config: { ...POOL, ...patch } });
  test.each([
    ['relative target', { targetPath: 'var/lib/x' }, /must be absolute/],
    ['.. in the target', { targetPath: '/var/lib/libvirt/../../etc' }, /normalized/],
    ['. in the target', { targetPath: '/var/lib/./libvirt' }, /normalized/],
    ['trailing slash', { targetPath: '/var/lib/libvirt/' }, /normalized/],
    ['double slash', { targetPath: '/var//lib' }, /normalized/],
    ['root itself', { targetPath: '/' }, /must not be \//],
    ['a quote in the target', { targetPath: "/var/lib/it's" }, /printable ASCII/],
    ['a newline in the target', { targetPath: '/var/lib/a\nb' }, /printable ASCII/],
    ['a name with /', { name: 'a/b' }, /characters of/],
    ['a name starting with .', { name: '.hidden' }, /characters of/],
    ['a name too long', { name: 'n'.repeat(129) }, /characters of|too long|exceeds/],
    ['a format of another type', { source: { ...POOL.source, format: 'ext4' } }, /must be one of/],
    ['a netfs pool without host', { source: { ...POOL.source, hosts: [] } }, /needs a host/],
    ['a bad host name', { source: { ...POOL.source, hosts: [{ name: 'a b', port: 0 }] } }, /host name/],
    ['a mode beyond 0777', { perms: { ...NO_PERMS, mode: 0o1777 } }, /perms.mode/],
  ])('%s', (_what, patch, want) => {
    expect(() => decode(POOL_WRITE.request, poolWith(patch as Partial<PoolConfig>))).toThrow(want);
  });

  const volWith = (patch: Partial<VolumeConfig>): Buffer =>
    bytes(VOLUME_WRITE.request, { action: 'create', actor, pool: POOL.uuid, config: { ...VOL, ...patch }, prealloc: false });
  test.each([
    ['capacity beyond 2^63-1', { capacity: 1n << 63n }, /vol.capacity/],
    ['format none', { format: 'none' }, /must be one of/],
    ['a relative backing store', { backing: { path: 'base', format: 'raw' } }, /must be absolute/],
    ['an unknown feature', { features: ['zork'] }, /must be one of/],
    ['a bad compat', { compat: '1.x' }, /N.M/],
    ['a volume name with ..', { name: '..' }, /characters of/],
  ])('%s', (_what, patch, want) => {
    expect(() => decode(VOLUME_WRITE.request, volWith(patch as Partial<VolumeConfig>))).toThrow(want);
  });

  test('an unknown action code, or a tenant name that is not one', () => {
    const b = bytes(POOL_READ.request, { action: 'list' });
    b.writeUInt32BE(99, 0);
    expect(() => decode(POOL_READ.request, b)).toThrow(/unknown POOL_READ action 99/);
    expect(() => bytes(POOL_WRITE.request, { action: 'drop' as 'build', actor, uuid: POOL.uuid })).toThrow(/unknown POOL_WRITE action/);
    const bad = bytes(POOL_WRITE.request, { action: 'build', actor: { ...actor, tenant: '-x' }, uuid: POOL.uuid });
    expect(() => decode(POOL_WRITE.request, bad)).toThrow(/tenant/);
  });

  test('truncated bodies never decode', () => {
    const b = bytes(VOLUME_WRITE.request, { action: 'create', actor, pool: POOL.uuid, config: VOL, prealloc: false });
    for (let n = 0; n < b.length; n += 4) expect(() => decode(VOLUME_WRITE.request, b.subarray(0, n))).toThrow();
  });
});

test('paths: confinement helpers', () => {
  expect(pathProblem('/var/lib/libvirt/images')).toBeNull();
  expect(pathWithin('/var/lib/libvirt/images', '/var/lib/libvirt')).toBe(true);
  expect(pathWithin('/var/lib/libvirt', '/var/lib/libvirt')).toBe(true);
  expect(pathWithin('/var/lib/libvirtx', '/var/lib/libvirt')).toBe(false);
  expect(pathWithin('/var/lib', '/var/lib/libvirt')).toBe(false);
});
