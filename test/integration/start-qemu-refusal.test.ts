// SPDX-License-Identifier: Apache-2.0
// `virtgate start --driver qemu` run by a non-root user (as a new user would try it): refused at once, in one line,
// with nothing started and nothing written under the home it was given.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { START, requireBuild } from '../helpers/daemon';
import { describeIf } from '../helpers/skip';
import { asUser, exec, localUsers } from '../helpers/users';

describeIf(localUsers(['alice'], 'start --driver qemu as a non-root user'), 'virtgate start --driver qemu as a non-root user', () => {
  test('refused: the launcher needs root; exit 1, nothing written', async () => {
    requireBuild();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-qemu-nonroot-'));
    try {
      fs.chmodSync(dir, 0o777);
      const home = path.join(dir, 'home');
      const r = await exec([...asUser('alice'), process.execPath, START, '--home', home, '--driver', 'qemu'], 20000);
      expect(r.rc).toBe(1);
      expect(r.err).toMatch(/--driver qemu: run as root \(the launcher creates cgroups and runs each QEMU under its own uid\)/);
      expect(fs.existsSync(home)).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
