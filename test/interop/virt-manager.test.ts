// SPDX-License-Identifier: Apache-2.0
// virt-manager (Debian `virt-manager`) under Xvfb against virtgate: the connection's Virtual Networks and Storage tabs
// work (event registrations for networks, pools and node devices succeed; the `default` network and `default-pool`
// are listed; the `default` pool virt-manager builds at /var/lib/libvirt/images, as it does against libvirt's test
// driver, is defined, built and started without error) and its debug log has no errors. The screenshots land in the
// test's directory (copied to VG_KEEP_GUI_SHOTS when that names a directory).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { describeIf, tool } from '../helpers/skip';

const SCRIPT = path.join(__dirname, 'gui', 'virt-manager.sh');

describeIf([tool('virt-manager', 'virt-manager'), tool('xvfb-run', 'xvfb'), tool('xdotool', 'xdotool')], 'virt-manager under Xvfb', () => {
  let vg: RunningDaemon;
  beforeAll(async () => {
    vg = await startDaemon({});
  });
  afterAll(async () => vg?.stop());

  test('the Networks and Storage tabs show the default network and pool; no errors in the debug log', async () => {
    const out = path.join(vg.home, 'gui');
    await new Promise<void>((resolve, reject) =>
      execFile('bash', [SCRIPT, vg.uri, out], { timeout: 90_000 }, (err, _so, se) => (err ? reject(new Error(`${err.message}\n${se}`)) : resolve())),
    );
    const log = fs.readFileSync(path.join(out, 'virt-manager-debug.log'), 'utf8');
    const keep = process.env.VG_KEEP_GUI_SHOTS;
    if (keep) for (const f of ['networks.png', 'storage.png', 'virt-manager-debug.log']) fs.copyFileSync(path.join(out, f), path.join(keep, f));
    expect(log).not.toMatch(/Error registering (network|storage pool|node device) events/);
    expect(log).not.toMatch(/does not support (virtual network|storage) management/);
    expect(log).not.toMatch(/Error building default pool|Traceback/);
    expect(log).toMatch(/conn=test\+unix.* changed to state=Active/);
    for (const f of ['networks.png', 'storage.png']) expect(fs.statSync(path.join(out, f)).size).toBeGreaterThan(10_000);
  }, 120_000);
});
