// SPDX-License-Identifier: Apache-2.0
// `virtgate start --driver qemu` (what `npm start -- --driver qemu` runs): three supervised processes (launcher,
// helper, front end), and the URIs libvirt clients use for a QEMU host: qemu+unix:///system?socket=… and
// qemu+tls://host/system with the development PKI. A guest defined and started over TLS boots to its marker.
import fs from 'node:fs';
import path from 'node:path';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { testGuest } from '../helpers/guest';
import { launcherRequirements } from '../helpers/launcher';
import { describeIf, virshTool } from '../helpers/skip';
import { type Result, exec } from '../helpers/users';

const guestReq = testGuest();
const guest = guestReq.guest;

describeIf([virshTool(), ...launcherRequirements(), guestReq], 'virtgate start --driver qemu', () => {
  let vg: RunningDaemon;
  let tlsUri = '';
  let unixUri = '';
  const v = (uri: string, ...a: string[]): Promise<Result> => exec(['virsh', '-c', uri, ...a]);

  beforeAll(async () => {
    vg = await startDaemon({ extraArgs: ['--driver', 'qemu', '--tls', '127.0.0.1:0'] });
    tlsUri = /virsh -c '(qemu\+tls:\/\/localhost:\d+\/system\?pkipath=[^']+)'/.exec(vg.output())![1];
    unixUri = `qemu+unix:///system?socket=${vg.sock}`;
  });
  afterAll(async () => {
    if (vg) await v(unixUri, 'destroy', 'st1'); // VMs outlive the daemon by design: this test's must not
    await vg?.stop();
  });

  test('three processes: the launcher is root and says so; the front end is not root', () => {
    const out = vg.output();
    expect(out).toMatch(/virtgate is running \(qemu driver\)/);
    expect(out).toMatch(/launcher {3}pid \d+, uid 0 \(root\): starts each QEMU jailed/);
    expect(out).toMatch(/front end {2}pid \d+, uid [1-9]\d*/);
    expect(out).toMatch(/virtgate-helper: listening on .* \(driver qemu\)/);
  });

  test('qemu+unix and qemu+tls: the QEMU host answers; a guest defined and started over TLS boots', async () => {
    for (const uri of [unixUri, tlsUri]) {
      const r = await v(uri, 'version');
      expect({ uri, rc: r.rc, err: r.err }).toEqual({ uri, rc: 0, err: '' });
      expect(r.out).toMatch(/Running hypervisor: QEMU 7\.2\.\d+/);
      expect((await v(uri, 'uri')).out.trim()).toBe(uri);
    }
    const xml = path.join(vg.home, 'st1.xml');
    fs.writeFileSync(
      xml,
      `<domain type='qemu'><name>st1</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type><kernel>${guest!.kernel}</kernel><initrd>${guest!.initrd}</initrd>
  <cmdline>console=ttyS0</cmdline></os><features><acpi/></features><devices><serial type='pty'/></devices></domain>\n`,
    );
    expect((await v(tlsUri, 'define', xml)).rc).toBe(0);
    const t0 = Date.now();
    const started = await v(tlsUri, 'start', 'st1');
    expect({ rc: started.rc, err: started.err }).toEqual({ rc: 0, err: '' });
    const uuid = (await v(tlsUri, 'domuuid', 'st1')).out.trim();
    const log = path.join(vg.home, 'lib', 'qemu', 'logs', `${uuid}.serial.log`);
    for (;;) {
      if (fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes(guest!.marker)) break;
      if (Date.now() - t0 > 55000) throw new Error(`no marker: ${fs.existsSync(log) ? fs.readFileSync(log, 'utf8').slice(-500) : 'no log'}`);
      await new Promise((res) => setTimeout(res, 200));
    }
    console.log(`over TLS: start -> marker ${Date.now() - t0} ms`);
    expect((await v(tlsUri, 'domstate', 'st1')).out.trim()).toBe('running');
    expect((await v(tlsUri, 'destroy', 'st1')).rc).toBe(0);
  });
});
