// SPDX-License-Identifier: Apache-2.0
// The helper's command line for the qemu driver, and its clear refusal where QEMU is not installed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UsageError, parseHelperArgs, runHelper } from '../../../src/privileged/helper';

const base = ['--socket', '/run/vg/helper.sock', '--state-dir', '/var/lib/vg'];

test('--driver qemu needs --launcher-socket; pool roots and cgroup root default under the state directory', () => {
  expect(() => parseHelperArgs([...base, '--driver', 'qemu'])).toThrow(
    new UsageError('--driver qemu needs --launcher-socket PATH (the virtgate-launcher socket)'),
  );
  expect(parseHelperArgs([...base, '--driver', 'qemu', '--launcher-socket', '/run/vg/launcher-sock'])).toMatchObject({
    driver: 'qemu',
    launcherSocket: '/run/vg/launcher-sock',
    cgroupRoot: 'virtgate',
    poolRoot: '/var/lib/vg/pools',
    adminPoolRoots: ['/var/lib/vg/images'],
  });
  expect(
    parseHelperArgs([...base, '--driver', 'qemu', '--launcher-socket', 'l', '--cgroup-root', 'vg2', '--admin-pool-root', '/a', '--admin-pool-root', '/b']),
  ).toMatchObject({ cgroupRoot: 'vg2', adminPoolRoots: ['/a', '/b'] });
  for (const bad of ['../x', 'a/b', '.hidden', ''])
    expect(() => parseHelperArgs([...base, '--driver', 'qemu', '--launcher-socket', 'l', `--cgroup-root=${bad}`])).toThrow(
      /--cgroup-root: not a plain directory name/,
    );
  expect(() => parseHelperArgs([...base, '--launcher-socket', 'l'])).toThrow(/go with --driver qemu/);
  expect(() => parseHelperArgs([...base, '--driver', 'xen'])).toThrow(/unsupported driver 'xen' \(available: test, qemu\)/);
});

test('--driver qemu where /usr/bin/qemu-system-x86_64 is missing: refused clearly, nothing served', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-noqemu-'));
  const real = fs.existsSync;
  const spy = jest.spyOn(fs, 'existsSync').mockImplementation((p) => (p === '/usr/bin/qemu-system-x86_64' ? false : real(p)));
  try {
    const o = parseHelperArgs([
      '--socket',
      path.join(dir, 'h.sock'),
      '--state-dir',
      path.join(dir, 'lib'),
      '--driver',
      'qemu',
      '--launcher-socket',
      path.join(dir, 'l.sock'),
      '--no-sandbox',
    ]);
    await expect(runHelper(o)).rejects.toThrow('--driver qemu: /usr/bin/qemu-system-x86_64 is not installed (Debian: apt-get install qemu-system-x86)');
    expect(real(path.join(dir, 'h.sock'))).toBe(false);
  } finally {
    spy.mockRestore();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
