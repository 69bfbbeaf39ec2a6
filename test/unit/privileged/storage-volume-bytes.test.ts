// SPDX-License-Identifier: Apache-2.0
// Volume bytes in the test driver (helper side): staged uploads (whole volume and a range), what an abort, a refused
// chunk or an oversized upload leaves (the volume as it was), chunk order and bounds, tenancy and request binding,
// and downloads with holes (beyond the file's end at once, zero runs by scanning).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { uuidFromString } from '../../../src/common/uuid';
import { NO_PERMS, type PoolConfig, StorageLimits, type VolumeConfig } from '../../../src/ipc/objects/storage';
import { DriverError } from '../../../src/privileged/drivers/driver';
import { DEFAULT_POOL_ROOTS, type StorageContext, TestStorage } from '../../../src/privileged/drivers/test-storage';

const ctx = (): StorageContext => {
  const store = new Map<string, Map<string, string>>();
  return {
    firstStart: true,
    warn: () => undefined,
    emit: () => undefined,
    records: {
      load: (t) => new Map(store.get(t) ?? []),
      put: (t, k, j) => {
        const m = store.get(t) ?? new Map<string, string>();
        if (j === null) m.delete(k);
        else m.set(k, j);
        store.set(t, m);
      },
    },
  };
};
const U = (n: number): Buffer => uuidFromString(`00000000-0000-4000-8000-${String(n).padStart(12, '0')}`)!;
const DEFAULT = uuidFromString('dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566')!;
const pool = (name: string, n: number): PoolConfig => ({
  type: 'dir',
  name,
  uuid: U(n),
  source: { hosts: [], devices: [], dir: '', format: '', protocolVer: '', vendor: '', product: '' },
  targetPath: `/var/lib/libvirt/${name}`,
  perms: NO_PERMS,
  cow: '',
});
const vol = (name: string, capacity: bigint): VolumeConfig => ({
  name,
  type: 'file',
  capacity,
  allocation: 0n,
  format: 'raw',
  perms: NO_PERMS,
  backing: null,
  compat: '',
  nocow: false,
  features: null,
});
const err = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    if (e instanceof DriverError) return `${e.code}: ${e.detail}`;
    throw e;
  }
  return 'no error';
};

const MiB = 1024 * 1024;
let dir: string;
let st: TestStorage;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-volbytes-'));
  st = new TestStorage(ctx(), DEFAULT_POOL_ROOTS, path.join(dir, 'volumes'));
  st.createPool(pool('acme-pool', 1), 'acme');
  st.createVolume(U(1), vol('disk', BigInt(4 * MiB)), 'acme');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

// The whole volume as a download sees it (holes as zeroes), and the holes it was told about.
function download(sparse: boolean, offset = 0n, length = BigInt(4 * MiB)): { bytes: Buffer; holes: bigint[] } {
  const parts: Buffer[] = [];
  const holes: bigint[] = [];
  let at = offset;
  while (at < offset + length) {
    const c = st.readVolume(U(1), 'disk', at, offset + length - at, sparse);
    expect(c.data.length > 0 !== c.hole > 0n).toBe(true);
    expect(c.data.length).toBeLessThanOrEqual(StorageLimits.CHUNK_MAX);
    if (c.hole > 0n) {
      holes.push(c.hole);
      parts.push(Buffer.alloc(Number(c.hole)));
      at += c.hole;
    } else {
      parts.push(c.data);
      at += BigInt(c.data.length);
    }
  }
  return { bytes: Buffer.concat(parts), holes };
}

function upload(offset: bigint, length: bigint, pieces: (Buffer | bigint)[], commit = true, rid = 'r1'): bigint {
  const { handle } = st.openUpload(U(1), 'disk', offset, length, 'acme', rid);
  let at = 0n;
  for (const p of pieces) {
    if (typeof p === 'bigint') st.uploadChunk(handle, at, Buffer.alloc(0), p, 'acme', rid);
    else st.uploadChunk(handle, at, p, 0n, 'acme', rid);
    at += typeof p === 'bigint' ? p : BigInt(p.length);
  }
  return st.endUpload(handle, commit, 'acme', rid);
}

test('a volume never written reads as one hole (sparse) or zeroes; a whole-volume upload with a hole round-trips', () => {
  expect(download(true).holes).toEqual([BigInt(4 * MiB)]);
  expect(download(false).bytes.equals(Buffer.alloc(4 * MiB))).toBe(true);
  const a = Buffer.alloc(200_000, 0xab);
  const b = Buffer.alloc(100_000, 0xcd);
  expect(upload(0n, 0n, [a, BigInt(2 * MiB), b, BigInt(4 * MiB - 2 * MiB - 300_000)])).toBe(BigInt(4 * MiB));
  const want = Buffer.alloc(4 * MiB);
  a.copy(want, 0);
  b.copy(want, 200_000 + 2 * MiB);
  const sparse = download(true);
  expect(sparse.bytes.equals(want)).toBe(true);
  expect(sparse.holes.length).toBeGreaterThan(0);
  expect(download(false).bytes.equals(want)).toBe(true);
  // The backing file is sparse: the 2 MiB hole was never written.
  const img = fs.readdirSync(path.join(dir, 'volumes')).filter((n) => n.endsWith('.img'));
  expect(img).toHaveLength(1);
  expect(fs.statSync(path.join(dir, 'volumes', img[0])).blocks * 512).toBeLessThan(2 * MiB);
});

test('a range upload changes only its range; a short whole-volume upload keeps the old bytes after it', () => {
  upload(0n, 0n, [Buffer.alloc(4 * MiB - 0, 1).subarray(0, 256 * 1024), BigInt(4 * MiB - 256 * 1024)]);
  upload(100n, 50n, [Buffer.alloc(50, 9)]);
  const d = download(false).bytes;
  expect(d.subarray(0, 100).every((x) => x === 1)).toBe(true);
  expect(d.subarray(100, 150).every((x) => x === 9)).toBe(true);
  expect(d.subarray(150, 256 * 1024).every((x) => x === 1)).toBe(true);
  // Whole volume (length 0), only 10 bytes sent: the rest stays.
  upload(0n, 0n, [Buffer.alloc(10, 7)]);
  const e = download(false).bytes;
  expect(e.subarray(0, 10).every((x) => x === 7)).toBe(true);
  expect(e.subarray(10, 100).every((x) => x === 1)).toBe(true);
  expect(e.subarray(100, 150).every((x) => x === 9)).toBe(true);
});

test('an aborted upload, a refused chunk or an upload past its length leaves the volume as it was, and no staging file', () => {
  upload(0n, 0n, [Buffer.alloc(1000, 5), BigInt(4 * MiB - 1000)]);
  const before = download(false).bytes;
  upload(0n, 0n, [Buffer.alloc(5000, 6)], false); // aborted
  expect(download(false).bytes.equals(before)).toBe(true);
  const { handle } = st.openUpload(U(1), 'disk', 0n, 100n, 'acme', 'r2');
  st.uploadChunk(handle, 0n, Buffer.alloc(60, 8), 0n, 'acme', 'r2');
  expect(err(() => st.uploadChunk(handle, 60n, Buffer.alloc(41, 8), 0n, 'acme', 'r2'))).toMatch(/Too many bytes to write to stream/);
  expect(err(() => st.uploadChunk(handle, 0n, Buffer.alloc(1), 0n, 'acme', 'r2'))).toBe('VG_ERR_DOMAIN_ARG: chunk at 0, expected 60'); // out of order
  expect(err(() => st.uploadChunk(handle, 60n, Buffer.alloc(0), 1n << 62n, 'acme', 'r2'))).toMatch(/Too many bytes/); // a huge hole
  st.endUpload(handle, false, 'acme', 'r2');
  expect(download(false).bytes.equals(before)).toBe(true);
  expect(fs.readdirSync(path.join(dir, 'volumes')).filter((n) => n.includes('.upload-'))).toEqual([]);
});

test('ranges are checked against the capacity; an upload is bound to its request id and tenant', () => {
  expect(err(() => st.openUpload(U(1), 'disk', BigInt(4 * MiB) + 1n, 0n, 'acme', 'r'))).toMatch(/past the end of volume 'disk'/);
  expect(err(() => st.openUpload(U(1), 'disk', 1n, BigInt(4 * MiB), 'acme', 'r'))).toMatch(/extends past the end of volume 'disk'/);
  expect(err(() => st.readVolume(U(1), 'disk', 1n, BigInt(4 * MiB), false))).toMatch(/outside the volume/);
  // Another tenant's pool is absent; a shared pool is not a tenant's to write.
  expect(err(() => st.openUpload(U(1), 'disk', 0n, 0n, 'other', 'r'))).toMatch(/^VG_ERR_NO_STORAGE_POOL/);
  st.createVolume(DEFAULT, vol('shared', 1024n), '');
  expect(err(() => st.openUpload(DEFAULT, 'shared', 0n, 0n, 'acme', 'r'))).toMatch(/^VG_ERR_ACCESS_DENIED/);
  const { handle } = st.openUpload(U(1), 'disk', 0n, 0n, 'acme', 'mine');
  expect(err(() => st.openUpload(U(1), 'disk', 0n, 0n, 'acme', 'again'))).toMatch(/upload in progress/);
  expect(err(() => st.uploadChunk(handle, 0n, Buffer.alloc(1), 0n, 'acme', 'someone-else'))).toBe('VG_ERR_DOMAIN_STATE: no such upload in progress');
  expect(err(() => st.uploadChunk(handle, 0n, Buffer.alloc(1), 0n, 'other', 'mine'))).toBe('VG_ERR_DOMAIN_STATE: no such upload in progress');
  expect(err(() => st.endUpload(handle, true, 'acme', 'someone-else'))).toBe('VG_ERR_DOMAIN_STATE: no such upload in progress');
  expect(err(() => st.uploadChunk(handle, 0n, Buffer.alloc(1), 5n, 'acme', 'mine'))).toBe('VG_ERR_DOMAIN_ARG: a chunk is data or a hole');
  st.endUpload(handle, false, 'acme', 'mine');
});

test('a hole is told up to the next data; deleting a volume removes its bytes', () => {
  const data = Buffer.alloc(1000, 3);
  upload(BigInt(3 * MiB), 1000n, [data]);
  const first = st.readVolume(U(1), 'disk', 0n, BigInt(4 * MiB), true);
  expect(first).toEqual({ data: Buffer.alloc(0), hole: BigInt(3 * MiB) });
  const next = st.readVolume(U(1), 'disk', BigInt(3 * MiB), BigInt(MiB), true);
  expect(next.data.subarray(0, 1000).equals(data)).toBe(true);
  st.deleteVolume(U(1), 'disk', 'acme');
  expect(fs.readdirSync(path.join(dir, 'volumes')).filter((n) => n.endsWith('.img'))).toEqual([]);
});

test('a driver without a data dir refuses uploads', () => {
  const bare = new TestStorage(ctx(), DEFAULT_POOL_ROOTS, null);
  bare.createVolume(DEFAULT, vol('v', 10n), '');
  expect(err(() => bare.openUpload(DEFAULT, 'v', 0n, 0n, '', 'r'))).toMatch(/^VG_ERR_NOT_SUPPORTED/);
});
