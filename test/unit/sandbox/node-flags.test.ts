// SPDX-License-Identifier: Apache-2.0
// Permission-model flags as a pure function of paths: one flag per path, no child processes, addons only on request.
import { frontPermissionPaths, helperPermissionPaths, permissionFlags } from '../../../src/sandbox/node-flags';

test('one --allow-fs-read per path (Node 20 does not split commas), writes also readable, sorted and deduplicated', () => {
  expect(permissionFlags({ read: ['/opt/vg', '/etc/vg/'], write: ['/var/lib/vg', '/var/lib/vg'], addons: false })).toEqual([
    '--experimental-permission',
    '--allow-fs-read=/etc/vg',
    '--allow-fs-read=/opt/vg',
    '--allow-fs-read=/var/lib/vg',
    '--allow-fs-write=/var/lib/vg',
  ]);
});

test('never grants workers; child processes and addons only when asked', () => {
  const f = permissionFlags({ read: ['/a'], write: [], addons: true });
  expect(f).toContain('--allow-addons');
  expect(f.some((x) => /child-process|worker|wasi/.test(x))).toBe(false);
  expect(permissionFlags({ read: ['/a'], write: [], addons: false, childProcess: true })).toContain('--allow-child-process');
});

test.each([
  [['relative/path'], 'not an absolute path'],
  [['/'], 'allows everything'],
  [['/a,/b'], 'comma'],
  [['/a/*'], 'wildcards'],
])('refuses read path %j (%s)', (read, why) => {
  expect(() => permissionFlags({ read, write: [], addons: false })).toThrow(
    expect.objectContaining({ code: 'VG_ERR_SANDBOX_CONFIG', message: expect.stringContaining(why) }),
  );
});

test('front end: reads code and HOME, writes only run/ log/ lib/ cache/ (etc/ and pki/ stay read-only)', () => {
  const p = frontPermissionPaths({ codeRoot: '/usr/lib/virtgate', home: '/var/lib/virtgate' });
  const f = permissionFlags(p);
  expect(f.filter((x) => x.startsWith('--allow-fs-write='))).toEqual([
    '--allow-fs-write=/var/lib/virtgate/cache',
    '--allow-fs-write=/var/lib/virtgate/lib',
    '--allow-fs-write=/var/lib/virtgate/log',
    '--allow-fs-write=/var/lib/virtgate/run',
  ]);
  expect(f).toContain('--allow-fs-read=/usr/lib/virtgate');
  expect(f).not.toContain('--allow-fs-read=/etc/passwd');
  expect(permissionFlags(frontPermissionPaths({ codeRoot: '/c', home: '/h', dropFromRoot: true }))).toContain('--allow-fs-read=/etc/passwd');
});

test('helper: writes its state, runtime and socket directories only', () => {
  const f = permissionFlags(
    helperPermissionPaths({
      codeRoot: '/usr/lib/virtgate',
      socket: '/run/virtgate/helper-sock',
      stateDir: '/var/lib/virtgate/helper',
      runtimeDir: '/run/virtgate/helper',
    }),
  );
  expect(f.filter((x) => x.startsWith('--allow-fs-write='))).toEqual([
    '--allow-fs-write=/run/virtgate',
    '--allow-fs-write=/run/virtgate/helper',
    '--allow-fs-write=/var/lib/virtgate/helper',
  ]);
  expect(f).toContain('--allow-addons');
});

test('helper with the qemu driver: also its pool roots (write), cgroups, /proc, the emulator and boot file directories (read)', () => {
  const f = permissionFlags(
    helperPermissionPaths({
      codeRoot: '/usr/lib/virtgate',
      socket: '/run/virtgate/helper-sock',
      stateDir: '/var/lib/virtgate/helper',
      runtimeDir: '/run/virtgate/helper',
      qemu: { poolRoots: ['/var/lib/virtgate/pools', '/var/lib/libvirt/images'], bootDirs: ['/var/lib/virtgate/boot'] },
    }),
  );
  expect(f).toEqual(expect.arrayContaining(['--allow-fs-write=/var/lib/virtgate/pools', '--allow-fs-write=/var/lib/libvirt/images']));
  expect(f).toEqual(expect.arrayContaining(['--allow-fs-read=/sys/fs/cgroup', '--allow-fs-read=/proc', '--allow-fs-read=/usr/bin/qemu-system-x86_64']));
  expect(f).toContain('--allow-fs-read=/var/lib/virtgate/boot');
  expect(f).not.toContain('--allow-fs-write=/sys/fs/cgroup');
  expect(() => helperPermissionPaths({ codeRoot: '/c', socket: '/r/s', stateDir: '/s', runtimeDir: '/r', qemu: { poolRoots: ['/'] } })).toThrow(
    /allows everything/,
  );
});
