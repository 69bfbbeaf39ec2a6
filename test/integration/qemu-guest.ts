// SPDX-License-Identifier: Apache-2.0
// XXX: stand-in for part G's test/helpers/guest.ts until it is merged: a guest built by tools/build-test-guest.sh.
import fs from 'node:fs';
import path from 'node:path';

export function testGuestFiles(): { kernel: string; initrd: string; marker: string } | null {
  const dir = process.env.VG_TEST_GUEST_DIR ?? '/tmp/q/guest';
  const kernel = path.join(dir, 'vmlinuz');
  if (!fs.existsSync(kernel)) return null;
  return { kernel, initrd: path.join(dir, 'initrd.img'), marker: fs.readFileSync(path.join(dir, 'marker'), 'utf8').trim() };
}
