// SPDX-License-Identifier: Apache-2.0
// Kernel and initrd copies: a sealed memfd with the same bytes that nobody (root included) can change, readable by
// another uid through /proc/self/fd as the jailed QEMU reads it; private, odd and oversized files refused.
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BOOT_SEALS, kernelMemfd, memfdFromFd } from '../../../src/privileged/qemu/kernel';
import { getSeals } from '../../../src/sandbox/files';
import { describeIf, root } from '../../helpers/skip';

describeIf(root('files of other modes and owners, setpriv'), 'kernelMemfd', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-kernel-'));
    fs.chmodSync(dir, 0o755);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const file = (name: string, bytes: Buffer, mode = 0o644): string => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, bytes, { mode });
    fs.chmodSync(p, mode);
    return p;
  };

  test('a copy with the same bytes, sealed against writes, growth and shrinking; another uid reads it', () => {
    const bytes = crypto.randomBytes(3 * 1024 * 1024 + 17); // more than one copy chunk, not a multiple of it
    const fd = kernelMemfd(file('vmlinuz', bytes), 'kernel');
    try {
      expect(getSeals(fd)).toBe(BOOT_SEALS);
      expect(fs.readFileSync(`/proc/self/fd/${fd}`).equals(bytes)).toBe(true);
      expect(() => fs.writeSync(fd, 'x', 0)).toThrow(/EPERM/);
      expect(() => fs.ftruncateSync(fd, 1)).toThrow(/EPERM/);
      expect(() => fs.ftruncateSync(fd, bytes.length + 4096)).toThrow(/EPERM/);
      // Reopened through /proc by an unprivileged uid, as QEMU (uid 200000+) opens -kernel /proc/self/fd/N.
      const out = execFileSync('setpriv', ['--reuid=200001', '--regid=200001', '--clear-groups', 'sha256sum', '/proc/self/fd/3'], {
        stdio: ['ignore', 'pipe', 'pipe', fd],
      });
      expect(out.toString().split(' ')[0]).toBe(crypto.createHash('sha256').update(bytes).digest('hex'));
    } finally {
      fs.closeSync(fd);
    }
  });

  test('memfdFromFd copies an already-confined descriptor and leaves it open', () => {
    const src = fs.openSync(file('initrd.img', Buffer.from('initrd bytes'), 0o600), 'r');
    const fd = memfdFromFd(src, 'initrd', 'initrd.img');
    expect(fs.readFileSync(`/proc/self/fd/${fd}`, 'utf8')).toBe('initrd bytes');
    expect(fs.fstatSync(src).isFile()).toBe(true);
    fs.closeSync(fd);
    fs.closeSync(src);
  });

  test.each([
    ['/etc/shadow', 'initrd', /not readable by every host user/],
    ['relative/vmlinuz', 'kernel', /absolute and normalised/],
    ['/boot/../etc/shadow', 'initrd', /absolute and normalised/],
    ['/proc/self/root/etc/hostname', 'kernel', /magic link/],
    ['/dev/null', 'kernel', /not a regular file/],
    ['/tmp', 'kernel', /not a regular file/],
  ] as const)('%s as %s is refused', (p, what, why) => {
    expect(() => kernelMemfd(p, what)).toThrow(expect.objectContaining({ code: 'VG_ERR_RESOURCE_DENIED', message: expect.stringMatching(why) }));
  });

  test('a private file, an empty one, a FIFO (without blocking) and a missing one', () => {
    expect(() => kernelMemfd(file('private', Buffer.from('k'), 0o600), 'kernel')).toThrow(/not readable by every host user/);
    expect(() => kernelMemfd(file('empty', Buffer.alloc(0)), 'kernel')).toThrow(/empty/);
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', ['-m', '0644', fifo]);
    expect(() => kernelMemfd(fifo, 'initrd')).toThrow(/not a regular file/);
    expect(() => kernelMemfd(path.join(dir, 'absent'), 'kernel')).toThrow(expect.objectContaining({ code: 'VG_ERR_STORAGE_FAILED' }));
  });

  test('more than 256 MiB is refused before copying (a sparse file: no disk used)', () => {
    const big = file('big', Buffer.alloc(0));
    fs.truncateSync(big, 256 * 1024 * 1024 + 1);
    expect(() => kernelMemfd(big, 'kernel')).toThrow(/more than 268435456/);
  });
});
