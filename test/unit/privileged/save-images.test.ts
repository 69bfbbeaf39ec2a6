// SPDX-License-Identifier: Apache-2.0
// Save images (helper side): which paths pass the IPC check, where a tenant may point the helper, that writes never
// replace a file and leave nothing behind on a full disk, and that a read takes only a whole, valid image.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SAVE_ACTIONS, savePathProblem } from '../../../src/ipc/objects/save-image';
import { XdrReader, XdrWriter } from '../../../src/common/xdr';
import { SAVE_MAGIC, SaveImages, parseImage } from '../../../src/privileged/drivers/save-images';
import { TEST_DOMAIN_DEF } from '../../../src/privileged/drivers/test-driver';
import { DriverError } from '../../../src/privileged/drivers/driver';
import { describeIf } from '../../helpers/skip';
import { fillDisk, mountTmpfs, tmpfs, unmountTmpfs } from '../../helpers/tmpfs';

const detail = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    return e instanceof DriverError ? `${e.code}: ${e.detail}` : (e as Error).message;
  }
  return 'no error';
};

test('paths: absolute, normalised, bounded, no NUL', () => {
  expect(savePathProblem('/var/tmp/a.img')).toBeNull();
  expect(savePathProblem('a.img')).toBe('is not absolute');
  expect(savePathProblem('')).toBe('is empty');
  expect(savePathProblem('/')).toBe('names no file');
  for (const p of ['/a/../etc/shadow', '/a/./b', '/a//b', '/a/b/', '/..', '/a/..']) expect(savePathProblem(p)).toMatch(/not normalised/);
  expect(savePathProblem('/a\0b')).toBe('contains NUL');
  expect(savePathProblem(`/${'x'.repeat(4096)}`)).toMatch(/longer than 4096/);
  expect(savePathProblem('/a/..b/c...')).toBeNull(); // dots inside names are names
});

// A front end taken over still cannot send one: the helper's decoder refuses it (and drops that connection).
test('the IPC decoder refuses what the front end would have refused', () => {
  const decode = (p: string) => () => SAVE_ACTIONS.restoreFrom.request.decode(new XdrReader(new XdrWriter().string(p, 8192).finish()));
  expect(decode('/var/tmp/a.img')()).toEqual({ path: '/var/tmp/a.img' });
  for (const p of ['a.img', '/a/../etc/shadow', '/a\0b', '', '/a//b']) expect(decode(p)).toThrow(/path/);
  expect(decode(`/${'x'.repeat(4100)}`)).toThrow();
});

describe('SaveImages', () => {
  let root: string;
  let images: SaveImages;
  const image = { def: { ...TEST_DOMAIN_DEF, tenant: 'acme' }, state: 'running' as const };
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-saveimg-'));
    images = new SaveImages(path.join(root, 'saves'));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  test('a tenant writes only directly in its own directory, created 0700', () => {
    const dir = images.dirOf('acme');
    images.write(path.join(dir, 'a.img'), 'acme', image);
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.join(dir, 'a.img')).mode & 0o777).toBe(0o600);
    expect(images.read(path.join(dir, 'a.img'), 'acme').def).toEqual(image.def);
    expect(detail(() => images.write(path.join(root, 'x.img'), 'acme', image))).toMatch(/^VG_ERR_RESOURCE_DENIED: tenant 'acme' may save/);
    expect(detail(() => images.read(path.join(images.dirOf('globex'), 'a.img'), 'acme'))).toMatch(/^VG_ERR_RESOURCE_DENIED/);
    expect(detail(() => images.read(`${dir}/../acme/a.img`, 'acme'))).toMatch(/not normalised/);
    // A host admin: any absolute path.
    images.write(path.join(root, 'admin.img'), '', image);
    expect(images.read(path.join(root, 'admin.img'), '').state).toBe('running');
  });

  test('a tenant directory replaced by a link is refused', () => {
    fs.mkdirSync(path.join(root, 'saves'), { mode: 0o700 });
    fs.mkdirSync(path.join(root, 'elsewhere'));
    fs.symlinkSync(path.join(root, 'elsewhere'), images.dirOf('acme'));
    expect(detail(() => images.write(path.join(images.dirOf('acme'), 'a.img'), 'acme', image))).toMatch(/is not the helper's own directory/);
    expect(fs.readdirSync(path.join(root, 'elsewhere'))).toEqual([]);
  });

  test('never replaces a file, never follows a link', () => {
    const p = path.join(root, 'exists');
    fs.writeFileSync(p, 'keep');
    expect(detail(() => images.write(p, '', image))).toBe(`VG_ERR_SAVE_IMAGE: saving domain 'test' to '${p}': open failed: File exists`);
    fs.symlinkSync(path.join(root, 'target'), path.join(root, 'link'));
    expect(detail(() => images.write(path.join(root, 'link'), '', image))).toMatch(/File exists/);
    expect(fs.existsSync(path.join(root, 'target'))).toBe(false);
    expect(detail(() => images.read(path.join(root, 'link'), ''))).toMatch(/Too many levels of symbolic links/);
    expect(fs.readFileSync(p, 'utf8')).toBe('keep');
  });

  test('replace swaps in a new image by rename, and only over an image', () => {
    const p = path.join(root, 'a.img');
    images.write(p, '', image);
    images.replace(p, '', { ...image, def: { ...image.def, title: 'new' } });
    expect(images.read(p, '').def.title).toBe('new');
    expect(fs.readdirSync(root).sort()).toEqual(['a.img']);
    fs.writeFileSync(path.join(root, 'plain'), 'not an image at all, but long enough for a header');
    expect(detail(() => images.replace(path.join(root, 'plain'), '', image))).toMatch(/mismatched header magic/);
    expect(fs.readFileSync(path.join(root, 'plain'), 'utf8')).toBe('not an image at all, but long enough for a header');
  });

  test('reads take a whole, valid image only', () => {
    const p = path.join(root, 'a.img');
    images.write(p, '', image);
    const good = fs.readFileSync(p);
    expect(detail(() => parseImage(good.subarray(0, 4), 'f'))).toBe("VG_ERR_SAVE_IMAGE: incomplete save header in 'f'");
    expect(detail(() => parseImage(good.subarray(0, good.length - 1), 'f'))).toBe("VG_ERR_SAVE_IMAGE: incomplete metadata in 'f'");
    expect(detail(() => parseImage(Buffer.from(`${SAVE_MAGIC}{"state":"running","def":{}}\n`), 'f'))).toMatch(/save image 'f' is corrupt/);
    expect(detail(() => parseImage(Buffer.from(good.toString().replace('"running"', '"flying"')), 'f'))).toMatch(/corrupt: bad state/);
    const forged = good.toString().replace('"name":"test"', '"name":"../x"');
    expect(detail(() => parseImage(Buffer.from(forged), 'f'))).toMatch(/corrupt/);
    expect(detail(() => images.read(root, ''))).toMatch(/Is a directory/);
    expect(detail(() => images.read('/dev/null', ''))).toBe("VG_ERR_SAVE_IMAGE: cannot read domain image '/dev/null': not a regular file");
    fs.writeFileSync(path.join(root, 'big'), Buffer.alloc(4 * 1024 * 1024 + 1));
    expect(detail(() => images.read(path.join(root, 'big'), ''))).toMatch(/File too large/);
  });
});

describeIf(tmpfs(), 'SaveImages on a full disk', () => {
  let root: string;
  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-saveimg-full-'));
    mountTmpfs(root, '256k');
  });
  afterAll(() => {
    unmountTmpfs(root);
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('a refused write leaves no partial file behind', () => {
    const images = new SaveImages(path.join(root, 'saves'));
    const free = fillDisk(root);
    try {
      const p = path.join(root, 'a.img');
      expect(detail(() => images.write(p, '', { def: TEST_DOMAIN_DEF, state: 'running' }))).toBe(
        `VG_ERR_SAVE_IMAGE: saving domain 'test' to '${p}': write failed: No space left on device`,
      );
      expect(fs.existsSync(p)).toBe(false);
    } finally {
      free();
    }
  });
});
