// SPDX-License-Identifier: Apache-2.0
// qcow2 headers: the parser against images qemu-img wrote and against hostile bytes (it throws Qcow2FormatError and
// nothing else, quickly); createQcow2 checked by qemu-img itself (check, info) and by writing through qemu-io.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EXT, INCOMPAT, QCOW2_MAX_SIZE, QCOW2_PREALLOC_MAX_SIZE, Qcow2FormatError, createQcow2, parseQcow2Header } from '../../../src/privileged/qemu/qcow2';
import { describeIf, tool } from '../../helpers/skip';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-qcow2-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const head = (file: string, n = 65536): Buffer => {
  const fd = fs.openSync(file, 'r');
  const b = Buffer.alloc(n);
  const got = fs.readSync(fd, b, 0, n, 0);
  fs.closeSync(fd);
  return b.subarray(0, got);
};

function create(name: string, size: number | bigint, opts?: Parameters<typeof createQcow2>[2]): string {
  const p = path.join(dir, name);
  const fd = fs.openSync(p, 'wx', 0o600);
  try {
    createQcow2(fd, size, opts);
  } finally {
    fs.closeSync(fd);
  }
  return p;
}

const qemuImg = (...args: string[]): string => execFileSync('qemu-img', args, { encoding: 'utf8' });

describeIf(tool('qemu-img', 'qemu-utils'), 'against qemu-img', () => {
  test.each([
    ['512 B', 512n],
    ['1 MiB', 1n << 20n],
    ['odd sectors', 512n * 12345n],
    ['1 GiB', 1n << 30n],
    ['513 MiB (two L1 entries)', 513n << 20n],
    ['64 TiB (the cap: a 16-cluster L1)', QCOW2_MAX_SIZE],
  ])('createQcow2 %s: qemu-img check is clean and info agrees', (label, size) => {
    const p = create(`c-${label.replace(/\W+/g, '_')}.qcow2`, size);
    qemuImg('check', '-f', 'qcow2', p); // throws on any error or leak
    const info = JSON.parse(qemuImg('info', '--output=json', '-f', 'qcow2', p)) as Record<string, unknown> & {
      'format-specific': { data: Record<string, unknown> };
    };
    expect(info).toMatchObject({ format: 'qcow2', 'virtual-size': Number(size), 'cluster-size': 65536, 'dirty-flag': false });
    expect(info['format-specific'].data).toMatchObject({ compat: '1.1', 'refcount-bits': 16, corrupt: false, 'lazy-refcounts': false });
    expect(info['backing-filename']).toBeUndefined();
    const h = parseQcow2Header(head(p));
    expect(h).toMatchObject({ version: 3, clusterBits: 16, size, backingFile: null, externalDataFile: null, incompatible: 0n });
  });

  test.each([
    ['512 B', 512n],
    ['1 GiB (virt-install --disk size=1)', 1n << 30n],
    ['3 GiB (two refcount blocks)', 3n << 30n],
    ['5 GiB + 512 B', (5n << 30n) + 512n],
  ])('createQcow2 %s with metadata preallocation: check is clean, every cluster mapped, data reads as zeros', (label, size) => {
    const p = create(`pre-${label.replace(/\W+/g, '_')}.qcow2`, size, { preallocMetadata: true });
    qemuImg('check', '-f', 'qcow2', p);
    // One extent covering the whole disk, allocated in this file (as `qemu-img create -o preallocation=metadata`).
    const map = JSON.parse(qemuImg('map', '--output=json', '-f', 'qcow2', p)) as { start: number; length: number; data: boolean; zero: boolean }[];
    expect(map.every((e) => e.data)).toBe(true);
    expect(map.reduce((n, e) => n + e.length, 0)).toBe(Number(size));
    const n = size < 4096n ? '512' : '4k';
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'read -P 0 0 512', '-c', `write -P 0x44 0 ${n}`, p]);
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', `read -P 0x44 0 ${n}`, p]);
    qemuImg('check', '-f', 'qcow2', p);
    expect(fs.statSync(p).blocks * 512).toBeLessThan(16 << 20); // the data clusters stay holes
  });

  test('metadata preallocation is capped (one create writes at most 32 MiB of tables)', () => {
    expect(() => create('pre-huge.qcow2', QCOW2_PREALLOC_MAX_SIZE + 512n, { preallocMetadata: true })).toThrow(/limited/);
  });

  test('createQcow2 with a backing file: qemu-img sees the name and format; QEMU writes to it and check stays clean', () => {
    const base = path.join(dir, 'wbase.raw');
    fs.writeFileSync(base, Buffer.alloc(1 << 20, 0x5a), { mode: 0o600 });
    const p = create('wtop.qcow2', 1 << 20, { backingFile: 'wbase.raw', backingFormat: 'raw' });
    const info = JSON.parse(qemuImg('info', '--output=json', p)) as Record<string, unknown>;
    expect(info).toMatchObject({ 'backing-filename': 'wbase.raw', 'backing-filename-format': 'raw' });
    // Reads come from the base, writes land in the overlay.
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'read -P 0x5a 0 64k', '-c', 'write -P 0x33 4096 8k', p]);
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'read -P 0x33 4096 8k', '-c', 'read -P 0x5a 65536 64k', p]);
    qemuImg('check', p);
    expect(fs.readFileSync(base).every((b) => b === 0x5a)).toBe(true);
    expect(parseQcow2Header(head(p))).toMatchObject({ backingFile: 'wbase.raw', backingFormat: 'raw', extensions: [EXT.BACKING_FORMAT] });
  });

  test('the parser reads what qemu-img writes: v2 and v3, backing file and format, external data file', () => {
    const v2 = path.join(dir, 'v2.qcow2');
    const v3 = path.join(dir, 'v3.qcow2');
    const df = path.join(dir, 'df.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', '-b', 'wbase.raw', '-F', 'raw', v2);
    qemuImg('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=2M', '-b', 'wbase.raw', '-F', 'raw', v3);
    qemuImg('create', '-q', '-f', 'qcow2', '-o', `data_file=${path.join(dir, 'df.raw')}`, df, '1M');
    expect(parseQcow2Header(head(v2))).toMatchObject({ version: 2, clusterBits: 16, size: 1n << 20n, backingFile: 'wbase.raw', backingFormat: 'raw' });
    expect(parseQcow2Header(head(v3, 2 << 20))).toMatchObject({ version: 3, clusterBits: 21, backingFile: 'wbase.raw', backingFormat: 'raw' });
    expect(parseQcow2Header(head(v3, 2 << 20)).featureNames).toEqual(
      expect.arrayContaining([
        { type: 'incompatible', bit: 0, name: 'dirty bit' },
        { type: 'incompatible', bit: 2, name: 'external data file' },
        { type: 'compatible', bit: 0, name: 'lazy refcounts' },
      ]),
    );
    const h = parseQcow2Header(head(df));
    expect(h.externalDataFile).toBe(path.join(dir, 'df.raw'));
    expect(h.incompatible & INCOMPAT.EXTERNAL_DATA_FILE).toBe(INCOMPAT.EXTERNAL_DATA_FILE);
  });
});

test('createQcow2 refuses a non-empty file, a bad size and a backing name without its format', () => {
  const p = path.join(dir, 'nonempty');
  fs.writeFileSync(p, 'x');
  const fd = fs.openSync(p, 'r+');
  expect(() => createQcow2(fd, 1 << 20)).toThrow(/empty regular file/);
  fs.closeSync(fd);
  for (const size of [0, 511, -512, QCOW2_MAX_SIZE + 512n]) {
    const fd2 = fs.openSync(path.join(dir, `size${String(size)}`), 'wx');
    expect(() => createQcow2(fd2, size)).toThrow(RangeError);
    fs.closeSync(fd2);
  }
  const fd3 = fs.openSync(path.join(dir, 'noformat'), 'wx');
  expect(() => createQcow2(fd3, 1 << 20, { backingFile: 'x' })).toThrow(/format/);
  fs.closeSync(fd3);
});

describe('hostile headers', () => {
  // A valid v3 header with a backing format extension, a feature-table-sized unknown extension and a backing name.
  function sample(): Buffer {
    const b = Buffer.alloc(4096);
    b.writeUInt32BE(0x514649fb, 0);
    b.writeUInt32BE(3, 4);
    b.writeUInt32BE(16, 20);
    b.writeBigUInt64BE(1n << 30n, 24);
    b.writeUInt32BE(4, 96);
    b.writeUInt32BE(112, 100);
    let off = 112;
    b.writeUInt32BE(EXT.BACKING_FORMAT, off);
    b.writeUInt32BE(5, off + 4);
    b.write('qcow2', off + 8);
    off += 16;
    b.writeUInt32BE(EXT.FEATURE_TABLE, off);
    b.writeUInt32BE(48, off + 4);
    off += 56;
    off += 8; // END
    b.writeBigUInt64BE(BigInt(off), 8);
    b.writeUInt32BE(8, 16);
    b.write('base.img', off);
    return b;
  }

  // Either a header or a Qcow2FormatError; anything else (RangeError from a Buffer read, a hang) is a parser bug.
  function parseOrRefuse(b: Buffer): 'ok' | 'refused' {
    try {
      parseQcow2Header(b);
      return 'ok';
    } catch (e) {
      if (e instanceof Qcow2FormatError) return 'refused';
      throw e;
    }
  }

  test('the sample parses', () => {
    expect(parseQcow2Header(sample())).toMatchObject({ backingFile: 'base.img', backingFormat: 'qcow2', extensions: [EXT.BACKING_FORMAT, EXT.FEATURE_TABLE] });
  });

  test('truncated at every offset: refused cleanly', () => {
    const s = sample();
    for (let n = 0; n < 200; n++) expect(parseOrRefuse(s.subarray(0, n))).toBe('refused');
  });

  test('random mutations (seeded): only Qcow2FormatError, and fast', () => {
    let seed = 0x13579bdf;
    const rnd = (n: number): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const hot = [4, 8, 12, 16, 19, 20, 23, 32, 72, 79, 100, 103, 112, 116, 120, 128, 132, 184, 188];
    const counts = { ok: 0, refused: 0 };
    const t0 = Date.now();
    for (let i = 0; i < 20000; i++) {
      const b = Buffer.from(sample());
      const edits = 1 + rnd(6);
      for (let j = 0; j < edits; j++) {
        const at = rnd(3) === 0 ? rnd(256) : hot[rnd(hot.length)] + rnd(4);
        b[at] = rnd(4) === 0 ? 0xff : rnd(256);
      }
      const cut = rnd(4) === 0 ? rnd(b.length) : b.length;
      counts[parseOrRefuse(b.subarray(0, cut))]++;
    }
    expect(Date.now() - t0).toBeLessThan(10000);
    expect(counts.ok).toBeGreaterThan(100); // mutations that leave it valid still parse
    expect(counts.refused).toBeGreaterThan(1000);
  });

  test.each<[string, (b: Buffer) => void, RegExp]>([
    ['backing size 2^32-1', (b) => b.writeUInt32BE(0xffffffff, 16), /backing file name of/],
    ['backing offset 2^64-1', (b) => b.writeBigUInt64BE(0xffffffffffffffffn, 8), /not between/],
    ['backing offset inside the header', (b) => b.writeBigUInt64BE(8n, 8), /not between/],
    ['extension length 2^32-1', (b) => b.writeUInt32BE(0xffffffff, 116), /runs past/],
    ['cluster bits 64', (b) => b.writeUInt32BE(64, 20), /cluster_bits/],
    ['header_length 2^32-8', (b) => b.writeUInt32BE(0xfffffff8, 100), /header_length/],
    ['version 4', (b) => b.writeUInt32BE(4, 4), /version 4/],
    ['unknown incompatible bit', (b) => b.writeBigUInt64BE(1n << 40n, 72), /unknown incompatible feature bits 0x10000000000$/],
    [
      'unknown incompatible bit named in the feature table',
      (b) => b.writeBigUInt64BE(1n << 40n, 72) && b.writeUInt8(40, 137) && b.write('evil\x01', 138, 'latin1'),
      /0x10000000000 \('evil\?'\)/,
    ],
    ['invalid UTF-8 backing name', (b) => b.writeUInt8(0xff, 192), /UTF-8/],
    ['no end marker', (b) => b.fill(0x41, 112, 4096) && b.writeBigUInt64BE(0n, 8), /without an end marker|runs past/],
    ['two backing formats', (b) => b.writeUInt32BE(EXT.BACKING_FORMAT, 128) && b.writeUInt32BE(3, 132), /two backing format/],
  ])('%s: refused with its reason', (_label, mutate, why) => {
    const b = sample();
    mutate(b);
    expect(() => parseQcow2Header(b)).toThrow(why);
    expect(() => parseQcow2Header(b)).toThrow(Qcow2FormatError);
  });
});
