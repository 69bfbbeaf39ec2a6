// SPDX-License-Identifier: Apache-2.0
// Disk confinement as an attacker tries it: real files, links, mounts and images in a root-owned pool directory, each
// refusal naming its rule, no descriptor left behind.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MAX_CHAIN, RULE, openPoolDisk, type PoolDiskRequest } from '../../../src/privileged/qemu/disk';
import { EXT, createQcow2 } from '../../../src/privileged/qemu/qcow2';
import { getStatusFlags } from '../../../src/sandbox/files';
import { describeIf, root } from '../../helpers/skip';
import { mountTmpfs, tmpfs, unmountTmpfs } from '../../helpers/tmpfs';

const O_ACCMODE = 3; // Node's fs.constants lacks it
const openFds = (): number => fs.readdirSync('/proc/self/fd').length;

describeIf(root('files owned by root, chown, mknod'), 'openPoolDisk', () => {
  let top: string;
  let pool: string;
  let base: string;
  let outside: string;
  const mounts: string[] = [];

  beforeAll(() => {
    top = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-disk-'));
    pool = path.join(top, 'pool');
    base = path.join(top, 'base');
    outside = path.join(top, 'outside');
    for (const d of [pool, base, outside]) fs.mkdirSync(d, { mode: 0o700 });
  });
  afterAll(() => {
    for (const m of mounts.reverse()) unmountTmpfs(m);
    fs.rmSync(top, { recursive: true, force: true });
  });

  const raw = (dir: string, name: string, bytes: Buffer | number = 1 << 20): string => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, typeof bytes === 'number' ? Buffer.alloc(bytes) : bytes, { mode: 0o600 });
    return p;
  };
  const qcow = (dir: string, name: string, backing?: [string, 'raw' | 'qcow2'], size = 1 << 20): string => {
    const p = path.join(dir, name);
    const fd = fs.openSync(p, 'wx', 0o600);
    try {
      createQcow2(fd, size, backing ? { backingFile: backing[0], backingFormat: backing[1] } : {});
    } finally {
      fs.closeSync(fd);
    }
    return p;
  };
  const req = (name: string, over: Partial<PoolDiskRequest> = {}): PoolDiskRequest => ({
    poolDir: pool,
    name,
    format: 'raw',
    readOnly: false,
    basePools: [],
    ...over,
  });
  const close = (layers: { fd: number }[]): void => layers.forEach((l) => fs.closeSync(l.fd));

  // The refusal, its rule in the message, and no descriptor leaked (every layer opened so far is closed again).
  function refused(r: PoolDiskRequest, rule: string, detail?: RegExp): string {
    const before = openFds();
    let err: { code?: string; message: string } | null = null;
    try {
      close(openPoolDisk(r));
    } catch (e) {
      err = e as { code?: string; message: string };
    }
    expect(err).not.toBeNull();
    expect(err!.code).toBe('VG_ERR_RESOURCE_DENIED');
    expect(err!.message).toContain(`(rule: ${rule})`);
    if (detail) expect(err!.message).toMatch(detail);
    expect(openFds()).toBe(before);
    return err!.message;
  }

  test('a raw volume opens read-write, with O_NONBLOCK cleared; read-only when asked', () => {
    raw(pool, 'ok.raw', Buffer.from('hello'));
    const [l] = openPoolDisk(req('ok.raw'));
    expect(l).toMatchObject({ format: 'raw', readOnly: false, name: path.join(pool, 'ok.raw') });
    const flags = getStatusFlags(l.fd);
    expect(flags & O_ACCMODE).toBe(fs.constants.O_RDWR);
    expect(flags & fs.constants.O_NONBLOCK).toBe(0);
    fs.closeSync(l.fd);
    const [r] = openPoolDisk(req('ok.raw', { readOnly: true }));
    expect(getStatusFlags(r.fd) & O_ACCMODE).toBe(fs.constants.O_RDONLY);
    expect(() => fs.writeSync(r.fd, 'x')).toThrow(/EBADF/);
    fs.closeSync(r.fd);
  });

  test.each([
    ['/etc/shadow', /contains \//],
    ['../outside/x.raw', /contains \//],
    ['..', /not a file name/],
    ['.', /not a file name/],
    ['', /empty/],
    ['a\0b', /NUL/],
    ['x'.repeat(256), /longer than 255/],
    ['sub/x.raw', /contains \//],
    ['tab\there', /control character/],
  ])('name %j is not a plain name', (name, why) => {
    refused(req(name), RULE.NAME, why);
  });

  test('a symlink is refused, even one to a file inside the pool', () => {
    raw(pool, 'target.raw');
    fs.symlinkSync('target.raw', path.join(pool, 'inpool-link'));
    fs.symlinkSync('/etc/shadow', path.join(pool, 'shadow-link'));
    refused(req('inpool-link'), RULE.SYMLINK);
    refused(req('shadow-link'), RULE.SYMLINK);
  });

  test('a hard link (to a file outside the pool or inside) is refused', () => {
    const secret = raw(outside, 'secret.raw', Buffer.from('secret'));
    fs.linkSync(secret, path.join(pool, 'hardlink.raw'));
    refused(req('hardlink.raw'), RULE.LINKS, /2 links/);
  });

  test('a file not owned by root is refused', () => {
    fs.chownSync(raw(pool, 'nobody.raw'), 65534, 65534);
    refused(req('nobody.raw'), RULE.OWNER, /uid 65534/);
  });

  test('a directory, a FIFO and a device node are refused without opening them (a FIFO would block)', () => {
    fs.mkdirSync(path.join(pool, 'dir'));
    execFileSync('mkfifo', [path.join(pool, 'fifo')]);
    execFileSync('mknod', [path.join(pool, 'null'), 'c', '1', '3']);
    refused(req('dir'), RULE.REGULAR, /directory/);
    refused(req('fifo', { readOnly: true }), RULE.REGULAR, /FIFO/);
    refused(req('null'), RULE.REGULAR, /character device/);
  });

  test('the pool directory itself must be root-owned and not group/world writable', () => {
    const loose = path.join(top, 'loose');
    fs.mkdirSync(loose, { mode: 0o700 });
    raw(loose, 'v.raw');
    fs.chmodSync(loose, 0o777);
    refused(req('v.raw', { poolDir: loose }), RULE.POOL);
  });

  test('a missing file is a plain failure, not a refusal', () => {
    expect(() => openPoolDisk(req('absent.raw'))).toThrow(
      expect.objectContaining({ code: 'VG_ERR_STORAGE_FAILED', message: expect.stringMatching(/No such file/) }),
    );
  });

  describeIf(tmpfs(), 'mounts', () => {
    test('a tmpfs mounted in the pool is another filesystem', () => {
      const mnt = path.join(pool, 'mnt');
      mountTmpfs(mnt, '1m');
      mounts.push(mnt);
      refused(req('mnt'), RULE.XDEV);
    });

    test('/etc/shadow bind-mounted onto a pool file name (root-owned, one link, regular) is refused', () => {
      const bound = raw(pool, 'bound.raw');
      execFileSync('mount', ['--bind', '/etc/shadow', bound]);
      mounts.push(bound);
      refused(req('bound.raw', { readOnly: true }), RULE.XDEV);
    });
  });

  test('a raw volume whose first bytes are the qcow2 magic is refused (formats are declared, never probed)', () => {
    qcow(pool, 'fake.raw');
    refused(req('fake.raw'), RULE.FORMAT, /qcow2 magic/);
  });

  test('a raw file declared qcow2 is refused', () => {
    raw(pool, 'plain.img');
    refused(req('plain.img', { format: 'qcow2' }), RULE.HEADER, /no qcow2 magic/);
  });

  test('a qcow2 chain inside the pool opens as one descriptor per layer, backing layers read-only', () => {
    raw(pool, 'chain-base.raw');
    qcow(pool, 'chain-mid.qcow2', ['chain-base.raw', 'raw']);
    qcow(pool, 'chain-top.qcow2', ['chain-mid.qcow2', 'qcow2']);
    const layers = openPoolDisk(req('chain-top.qcow2', { format: 'qcow2' }));
    expect(layers.map((l) => [path.basename(l.name), l.format, l.readOnly])).toEqual([
      ['chain-top.qcow2', 'qcow2', false],
      ['chain-mid.qcow2', 'qcow2', true],
      ['chain-base.raw', 'raw', true],
    ]);
    expect(layers.map((l) => getStatusFlags(l.fd) & O_ACCMODE)).toEqual([fs.constants.O_RDWR, fs.constants.O_RDONLY, fs.constants.O_RDONLY]);
    close(layers);
  });

  test.each([
    ['/etc/passwd', /neither a plain name/],
    [`json:{"driver":"file","filename":"/etc/shadow"}`, /json:/],
    ['nbd://127.0.0.1:10809/x', /protocol/],
    ['file:/etc/shadow', /protocol/],
    ['../outside/secret.raw', /contains \//],
    ['..', /not a file name/],
  ])('a backing file %j is refused', (backing, why) => {
    const name = `bad-${Buffer.from(backing).toString('hex').slice(0, 40)}.qcow2`;
    qcow(pool, name, [backing, 'raw']);
    refused(req(name, { format: 'qcow2' }), RULE.BACKING, why);
  });

  test('a backing file that is a symlink is refused', () => {
    fs.symlinkSync('/etc/shadow', path.join(pool, 'bsym'));
    qcow(pool, 'via-sym.qcow2', ['bsym', 'raw']);
    refused(req('via-sym.qcow2', { format: 'qcow2' }), RULE.SYMLINK);
  });

  test('a backing file without a declared format, or with another format, is refused', () => {
    raw(pool, 'nf-base.raw');
    const p = qcow(pool, 'noformat.qcow2', ['nf-base.raw', 'raw']);
    const fd = fs.openSync(p, 'r+');
    const ext = Buffer.alloc(4);
    fs.readSync(fd, ext, 0, 4, 112);
    expect(ext.readUInt32BE(0)).toBe(EXT.BACKING_FORMAT);
    ext.writeUInt32BE(0x12345678, 0); // an unknown extension QEMU skips: no format left
    fs.writeSync(fd, ext, 0, 4, 112);
    fs.closeSync(fd);
    refused(req('noformat.qcow2', { format: 'qcow2' }), RULE.FORMAT, /no declared format/);
    const v = qcow(pool, 'vmdkfmt.qcow2', ['nf-base.raw', 'raw']);
    const fd2 = fs.openSync(v, 'r+');
    fs.writeSync(fd2, 'vmd', 120); // the format string "raw" -> "vmd"
    fs.closeSync(fd2);
    refused(req('vmdkfmt.qcow2', { format: 'qcow2' }), RULE.FORMAT, /'vmd' is not raw or qcow2/);
  });

  test('a backing file in a base pool opens read-only; without the base pool listed it is refused', () => {
    raw(base, 'os.raw', Buffer.alloc(1 << 20, 0x5a));
    qcow(base, 'os.qcow2', ['os.raw', 'raw']); // a base image names its own backing by plain name
    qcow(pool, 'vm.qcow2', [path.join(base, 'os.qcow2'), 'qcow2']);
    const layers = openPoolDisk(req('vm.qcow2', { format: 'qcow2', basePools: [base] }));
    expect(layers.map((l) => [l.name, l.readOnly])).toEqual([
      [path.join(pool, 'vm.qcow2'), false],
      [path.join(base, 'os.qcow2'), true],
      [path.join(base, 'os.raw'), true],
    ]);
    close(layers);
    refused(req('vm.qcow2', { format: 'qcow2', basePools: [] }), RULE.BACKING, /base pool/);
    qcow(pool, 'vm-dotdot.qcow2', [`${base}/../outside/secret.raw`, 'raw']);
    refused(req('vm-dotdot.qcow2', { format: 'qcow2', basePools: [base] }), RULE.BACKING);
    // The base pool's own images are read-only for everyone.
    refused(req('os.qcow2', { poolDir: base, format: 'qcow2', basePools: [base] }), RULE.BASE);
    close(openPoolDisk(req('os.qcow2', { poolDir: base, format: 'qcow2', readOnly: true, basePools: [base] })));
  });

  test(`a chain of ${MAX_CHAIN} images opens; one more is refused`, () => {
    raw(pool, 'd0.raw');
    qcow(pool, 'd1.qcow2', ['d0.raw', 'raw']);
    for (let i = 2; i <= MAX_CHAIN; i++) qcow(pool, `d${i}.qcow2`, [`d${i - 1}.qcow2`, 'qcow2']);
    const layers = openPoolDisk(req(`d${MAX_CHAIN - 1}.qcow2`, { format: 'qcow2' }));
    expect(layers).toHaveLength(MAX_CHAIN);
    close(layers);
    refused(req(`d${MAX_CHAIN}.qcow2`, { format: 'qcow2' }), RULE.DEPTH);
  });

  test('a backing loop (two images, and an image backed by itself) is refused', () => {
    qcow(pool, 'loop-a.qcow2', ['loop-b.qcow2', 'qcow2']);
    qcow(pool, 'loop-b.qcow2', ['loop-a.qcow2', 'qcow2']);
    qcow(pool, 'self.qcow2', ['self.qcow2', 'qcow2']);
    refused(req('loop-a.qcow2', { format: 'qcow2' }), RULE.LOOP);
    refused(req('self.qcow2', { format: 'qcow2', readOnly: true }), RULE.LOOP);
  });

  test('an external data file (written by qemu-img, and the feature bit alone) is refused', () => {
    const p = path.join(pool, 'ext.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', `data_file=${path.join(outside, 'data.raw')}`, p, '1M']);
    refused(req('ext.qcow2', { format: 'qcow2' }), RULE.DATA_FILE, /data\.raw/);
    const q = qcow(pool, 'extbit.qcow2');
    const fd = fs.openSync(q, 'r+');
    fs.writeSync(fd, Buffer.from([0, 0, 0, 0, 0, 0, 0, 4]), 0, 8, 72);
    fs.closeSync(fd);
    refused(req('extbit.qcow2', { format: 'qcow2' }), RULE.DATA_FILE);
  });

  test('encrypted, corrupt, truncated and hostile headers are refused as header problems', () => {
    const patch = (name: string, at: number, bytes: number[]): void => {
      const fd = fs.openSync(qcow(pool, name), 'r+');
      fs.writeSync(fd, Buffer.from(bytes), 0, bytes.length, at);
      fs.closeSync(fd);
    };
    patch('enc.qcow2', 32, [0, 0, 0, 1]);
    refused(req('enc.qcow2', { format: 'qcow2' }), RULE.ENCRYPTION);
    patch('corrupt.qcow2', 79, [2]);
    refused(req('corrupt.qcow2', { format: 'qcow2' }), RULE.HEADER, /corrupt/);
    patch('huge-backing.qcow2', 8, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    refused(req('huge-backing.qcow2', { format: 'qcow2' }), RULE.HEADER, /backing file name/);
    patch('hdrlen.qcow2', 100, [0x7f, 0xff, 0xff, 0xf8]);
    refused(req('hdrlen.qcow2', { format: 'qcow2' }), RULE.HEADER, /header_length/);
    const full = fs.readFileSync(qcow(pool, 'whole.qcow2'));
    raw(pool, 'trunc.qcow2', full.subarray(0, 50));
    refused(req('trunc.qcow2', { format: 'qcow2' }), RULE.HEADER, /shorter/);
  });

  test('mutated images on disk: openPoolDisk opens them or refuses with a DriverError, and leaks no descriptor', () => {
    raw(pool, 'fz-base.raw');
    const good = fs.readFileSync(qcow(pool, 'fz-good.qcow2', ['fz-base.raw', 'raw']));
    let seed = 0x2468ace1;
    const rnd = (n: number): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const before = openFds();
    const seen = { opened: 0, refused: 0, failed: 0 };
    for (let i = 0; i < 300; i++) {
      const b = Buffer.from(good.subarray(0, 4096));
      for (let j = 0, n = 1 + rnd(4); j < n; j++) b[rnd(200)] = rnd(256);
      const name = `fz-${i}.qcow2`;
      raw(pool, name, b.subarray(0, rnd(8) === 0 ? rnd(b.length) : b.length));
      try {
        close(openPoolDisk(req(name, { format: 'qcow2', readOnly: true })));
        seen.opened++;
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code === 'VG_ERR_RESOURCE_DENIED') seen.refused++;
        else if (code === 'VG_ERR_STORAGE_FAILED')
          seen.failed++; // e.g. a mutated backing name that does not exist
        else throw e;
      }
      fs.rmSync(path.join(pool, name));
    }
    expect(openFds()).toBe(before);
    expect(seen.refused).toBeGreaterThan(50);
    expect(seen.opened).toBeGreaterThan(10);
  });
});
