// SPDX-License-Identifier: Apache-2.0
// A real TCG guest's display (issue 14): virDomainOpenGraphicsFD (343) over the unix socket hands python3-libvirt a
// socket that speaks RFB (the helper gave QEMU one end of a socketpair: getfd + add_client); virDomainOpenGraphics
// (249, CALL_WITH_FDS) is refused and the connection keeps working (its descriptor bytes were consumed); over TCP
// the front end refuses to pass descriptors; domdisplay/vncdisplay; audit and journal; tenancy and permissions.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { type RunningQemuDaemon, startQemuDaemon } from '../helpers/daemon';
import { testGuest } from '../helpers/guest';
import { launcherRequirements } from '../helpers/launcher';
import { describeIf, pyLibvirt, virshTool } from '../helpers/skip';
import { type Result, exec } from '../helpers/users';
import { VirtgateClient } from '../../src/client/client';
import { GRAPHICS_PROCS } from '../../src/protocol/procs/graphics';

jest.setTimeout(90000);
const guestReq = testGuest();
const guest = guestReq.guest;
const POLICY = 'g, unix:root, host-admin, *\ng, tcp:anonymous, host-admin, *\n';

function py(script: string, ...args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    const p: ChildProcess = spawn('/usr/bin/python3', ['-c', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    p.on('exit', (code) => resolve({ rc: code ?? -1, out, err }));
  });
}

// openGraphicsFD, then read the RFB greeting from the descriptor; then the connection still answers.
const OPEN_FD = `
import libvirt, socket, sys
c = libvirt.open(sys.argv[1])
d = c.lookupByName(sys.argv[2])
fd = d.openGraphicsFD(0, 0)
s = socket.socket(fileno=fd)
s.settimeout(10)
greet = s.recv(12)
print(greet.decode())
s.sendall(b'RFB 003.008\\n')
n = s.recv(1)[0]
print('security-types', n, list(s.recv(n)))
s.close()
print('state', d.state()[0])
`;

// virDomainOpenGraphics with a socket of ours (CALL_WITH_FDS): refused; the same connection keeps answering.
const OPEN_249 = `
import libvirt, socket, sys
c = libvirt.open(sys.argv[1])
d = c.lookupByName(sys.argv[2])
a, b = socket.socketpair()
try:
    d.openGraphics(0, a.fileno(), 0)
    print('opened?!')
except libvirt.libvirtError as e:
    print('error', e.get_error_code(), e.get_error_message())
for i in range(3):
    print('state', d.state()[0], d.name())
`;

describeIf([guestReq, virshTool(), pyLibvirt(), ...launcherRequirements()], 'graphics of a real guest (TCG)', () => {
  let vg: RunningQemuDaemon;
  const v = (...a: string[]): Promise<Result> => exec(['virsh', '-c', vg.uri, ...a]);
  const ok = async (...a: string[]): Promise<string> => {
    const r = await v(...a);
    if (r.rc !== 0) throw new Error(`virsh ${a.join(' ')}: rc ${r.rc}: ${r.err}`);
    return r.out;
  };
  const audit = () => fs.readFileSync(path.join(vg.home, 'log', 'audit.log'), 'utf8');

  beforeAll(async () => {
    vg = await startQemuDaemon({ policy: POLICY, tcp: true });
    fs.writeFileSync(
      path.join(vg.home, 'g1.xml'),
      `<domain type='qemu'><name>g1</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type><kernel>${guest!.kernel}</kernel><initrd>${guest!.initrd}</initrd>
  <cmdline>console=ttyS0 panic=-1</cmdline></os><features><acpi/></features><on_poweroff>destroy</on_poweroff>
  <devices><serial type='pty'/><console type='pty'/><graphics type='vnc'/><video><model type='vga'/></video><memballoon model='none'/></devices></domain>\n`,
    );
    await ok('define', path.join(vg.home, 'g1.xml'));
    await ok('start', 'g1');
  });
  afterAll(async () => {
    await vg?.stop();
  });

  test('openGraphicsFD over the unix socket: RFB 003.008 from QEMU, no auth asked; audited and journaled', async () => {
    const t0 = Date.now();
    const r = await py(OPEN_FD, vg.uri, 'g1');
    console.log(`openGraphicsFD + RFB greeting in ${Date.now() - t0} ms (python start included)`);
    expect(r.err).toBe('');
    expect(r.out).toMatch(/^RFB 003\.008/);
    expect(r.out).toMatch(/security-types 1 \[1\]/); // None: the front end authorised the caller
    expect(r.out).toMatch(/state 1/);
    expect(vg.journal()).toMatch(/"op":"DOMAIN_WRITE_REQ.openGraphics"[^}]*"result":"ok"/);
    expect(audit()).toMatch(/domainOpenGraphicsFd/);
  });

  test('virDomainOpenGraphics (249) is not supported; the connection keeps working', async () => {
    const r = await py(OPEN_249, vg.uri, 'g1');
    expect(r.out).toMatch(/error 3 .*not supported/);
    expect(r.out.match(/state 1 g1/g)).toHaveLength(3);
  });

  test('over TCP: libvirt refuses on its own (feature FD_PASSING is 0); our server refuses a raw call too', async () => {
    const port = Number(/listening on tcp [^:]+:(\d+)/.exec(vg.output())![1]);
    const tcpUri = `qemu+tcp://127.0.0.1:${port}/system`;
    const r = await py(OPEN_FD, tcpUri, 'g1');
    expect(r.rc).not.toBe(0);
    expect(r.err).toMatch(/fd passing is not supported by this connection/);
    const journal0 = (vg.journal().match(/openGraphics/g) ?? []).length;
    const c = await VirtgateClient.connect(tcpUri);
    try {
      const dom = await c.lookupByName('g1');
      await expect(c.call(GRAPHICS_PROCS.DOMAIN_OPEN_GRAPHICS_FD, { dom, idx: 0, flags: 0 })).rejects.toThrow(
        /descriptors can be passed only over a local unix socket/,
      );
      expect((await c.lookupByName('g1')).name).toBe('g1'); // the connection still answers
    } finally {
      await c.close();
    }
    expect((vg.journal().match(/openGraphics/g) ?? []).length).toBe(journal0); // nothing was opened
  });
});
