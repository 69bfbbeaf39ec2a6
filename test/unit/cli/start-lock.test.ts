// SPDX-License-Identifier: Apache-2.0
// `virtgate start`'s choices before it writes anything: which user the front end runs as (root: virtgate, else nobody;
// --front-user; not root: yourself only), and the one-supervisor-per-HOME lock (live holder, stale file, reused pid).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StartError, frontUser, lockHolder, takeLock } from '../../../src/cli/start';

const getent = (key: string): string[] | null => {
  const r = spawnSync('getent', ['passwd', key], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split(':') : null;
};

test('as root: the virtgate system user when it exists, else nobody/nogroup; --front-user by name or uid', () => {
  const vg = getent('virtgate');
  const dflt = frontUser(undefined, 0, 0);
  if (vg) expect(dflt).toMatchObject({ uid: Number(vg[2]), gid: Number(vg[3]), name: 'virtgate' });
  else expect(dflt).toMatchObject({ uid: 65534, gid: 65534, name: 'nobody', why: expect.stringMatching(/no 'virtgate' system user/) });
  expect(frontUser('nobody', 0, 0)).toMatchObject({ uid: 65534, gid: 65534, name: 'nobody' });
  expect(frontUser('65534', 0, 0)).toMatchObject({ uid: 65534, name: 'nobody' });
  expect(frontUser('root', 0, 0)).toMatchObject({ uid: 0, gid: 0 }); // allowed when asked (start warns)
  expect(frontUser('4000000', 0, 0)).toMatchObject({ uid: 4000000, gid: 4000000 }); // a bare uid with no entry
  expect(() => frontUser('no-such-user-vg', 0, 0)).toThrow(StartError);
  expect(() => frontUser('no-such-user-vg', 0, 0)).toThrow(/--front-user no-such-user-vg: no such user/);
});

test('not root: the front end runs as you; naming anyone else is refused', () => {
  expect(frontUser(undefined, 65534, 65534)).toMatchObject({ uid: 65534, gid: 65534, why: 'the user who started it' });
  expect(frontUser('nobody', 65534, 65534)).toMatchObject({ uid: 65534 });
  expect(() => frontUser('root', 65534, 65534)).toThrow(/--front-user root: only root can run the front end as another user \(you are uid 65534/);
  expect(() => frontUser('0', 65534, 65534)).toThrow(StartError);
});

describe('HOME/start.pid', () => {
  let home: string;
  beforeEach(() => (home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-lock-'))));
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));
  const file = (): string => path.join(home, 'start.pid');

  test('taken exclusively, held while its process lives, released only by its owner', () => {
    expect(lockHolder(home)).toBeNull();
    const a = takeLock(home);
    if (!('release' in a)) throw new Error('not taken');
    expect(fs.readFileSync(file(), 'utf8')).toMatch(new RegExp(`^${process.pid} \\d+\\n$`));
    expect(lockHolder(home)).toBe(process.pid);
    expect(takeLock(home)).toEqual({ heldBy: process.pid }); // this process is alive: a second taker is refused
    a.release();
    expect(fs.existsSync(file())).toBe(false);
    const b = takeLock(home);
    fs.writeFileSync(file(), 'someone else\n'); // replaced meanwhile: release leaves it alone
    if ('release' in b) b.release();
    expect(fs.readFileSync(file(), 'utf8')).toBe('someone else\n');
  });

  test('stale: a dead pid, or a live pid with another start time (reused), is replaced', () => {
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    for (const text of [`${dead.stdout} 12345\n`, `${process.pid} 1\n`, 'garbage\n']) {
      fs.writeFileSync(file(), text);
      expect(lockHolder(home)).toBeNull();
      const l = takeLock(home);
      expect('release' in l).toBe(true);
      expect(fs.readFileSync(file(), 'utf8').startsWith(`${process.pid} `)).toBe(true);
      if ('release' in l) l.release();
    }
  });
});
