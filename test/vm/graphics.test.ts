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

// Types text on the guest's VGA console (tty1), one chord per character (linux KEY_* codes, US layout).
const TYPE = `
import libvirt, sys
L = dict(zip('abcdefghijklmnopqrstuvwxyz', [30,48,46,32,18,33,34,35,23,36,37,38,50,49,24,25,16,19,31,20,22,47,17,45,21,44]))
L.update({str((i + 1) % 10): i + 2 for i in range(10)})
L.update({' ': 57, '-': 12, '/': 53, '.': 52, '\\n': 28})
SHIFT = {'>': 52, '$': 5, '(': 10, ')': 11, '*': 9}
c = libvirt.open(sys.argv[1])
d = c.lookupByName(sys.argv[2])
for ch in sys.argv[3]:
    if ch in SHIFT: keys = [42, SHIFT[ch]]
    elif ch.isupper(): keys = [42, L[ch.lower()]]
    else: keys = [L[ch]]
    d.sendKey(libvirt.VIR_KEYCODE_SET_LINUX, 30, keys, len(keys), 0)
print('typed', len(sys.argv[3]))
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
  let uuid = '';
  const serial = () => (fs.existsSync(vg.serialLog(uuid)) ? fs.readFileSync(vg.serialLog(uuid), 'latin1') : '');
  async function until<T>(what: string, f: () => T | undefined | false, ms = 30000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const got = f();
      if (got) return got;
      if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  beforeAll(async () => {
    vg = await startQemuDaemon({ policy: POLICY, tcp: true });
    fs.writeFileSync(
      path.join(vg.home, 'g1.xml'),
      `<domain type='qemu'><name>g1</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type><kernel>${guest!.kernel}</kernel><initrd>${guest!.initrd}</initrd>
  <cmdline>console=ttyS0 panic=-1</cmdline></os><features><acpi/></features><on_poweroff>destroy</on_poweroff>
  <devices><serial type='pty'/><console type='pty'/><graphics type='vnc' port='5900' autoport='no' listen='127.0.0.1'/><video><model type='vga'/></video><memballoon model='none'/></devices></domain>\n`,
    );
    await ok('define', path.join(vg.home, 'g1.xml'));
    await ok('start', 'g1');
    uuid = (await ok('domuuid', 'g1')).trim();
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

  test('virsh send-key types into the shell on tty1: proven by what the guest prints on its serial port', async () => {
    await until('the marker', () => serial().includes(guest!.marker), 60000);
    await new Promise((r) => setTimeout(r, 1500)); // the tty1 shell starts just before the marker
    expect(serial()).not.toContain('typed-42');
    const t0 = Date.now();
    await ok('send-key', 'g1', 'KEY_E', 'KEY_C', 'KEY_H', 'KEY_O'); // one chord, pressed in order: "echo"
    const r = await py(TYPE, vg.uri, 'g1', ' typed-$((6*7)) >/dev/ttyS0\n');
    expect(r.err).toBe('');
    // Only the shell on tty1 can have evaluated $((6*7)) and written the result to the serial port.
    await until('typed-42 on the serial port', () => serial().includes('typed-42'), 30000);
    console.log(`send-key: 28 chords typed and run in ${Date.now() - t0} ms`);
    expect(vg.journal()).toMatch(/"op":"DOMAIN_WRITE_REQ.sendKey"[^}]*"result":"ok"/);
  });

  test('send-key: a codeset or key with no QEMU number is refused by name', async () => {
    const osx = await v('send-key', 'g1', '--codeset', 'os_x', '0x00');
    expect(osx.rc).not.toBe(0);
    expect(osx.err).toMatch(/keycode set 'os_x' is not supported by the qemu driver/);
    const bad = await v('send-key', 'g1', '--codeset', 'linux', '200');
    expect(bad.rc).not.toBe(0);
    expect(bad.err).toMatch(/cannot translate keycode 200 of set 'linux'/);
  });

  test('virsh screenshot writes a PPM of the guest screen (a memfd handed to the front end)', async () => {
    const file = path.join(vg.home, 'shot.ppm');
    const ioBytes = (pid: number): number => {
      const t = fs.readFileSync(`/proc/${pid}/io`, 'utf8');
      return Number(/^rchar: (\d+)/m.exec(t)![1]) + Number(/^wchar: (\d+)/m.exec(t)![1]);
    };
    const h0 = ioBytes(vg.helperPid());
    const t0 = Date.now();
    const out = await ok('screenshot', 'g1', file);
    const took = Date.now() - t0;
    const dh = ioBytes(vg.helperPid()) - h0;
    expect(out).toMatch(/Screenshot saved to .*shot\.ppm, with type of image\/x-portable-pixmap/);
    const img = fs.readFileSync(file);
    const m = /^P6\n(\d+) (\d+)\n255\n/.exec(img.subarray(0, 32).toString('latin1'));
    expect(m).not.toBeNull();
    const [w, h] = [Number(m![1]), Number(m![2])];
    expect(img.length).toBe(m![0].length + w * h * 3);
    // Text mode shows what was typed: the screen is not blank.
    const pixels = img.subarray(m![0].length);
    expect(pixels.some((b) => b !== pixels[0])).toBe(true);
    console.log(`screenshot: ${w}x${h} PPM, ${img.length} bytes in ${took} ms (virsh start included); helper rchar+wchar +${dh} bytes`);
    expect(dh).toBeLessThan(64 * 1024); // QMP, IPC, journal: the image went around the helper (QEMU -> memfd -> front end)
  });

  test('domdisplay / vncdisplay: no listening port (-vnc none), as libvirt says for <listen type=none>', async () => {
    const xml = await ok('dumpxml', 'g1');
    expect(xml).toMatch(/<graphics type='vnc'>\s*<listen type='none'\/>\s*<\/graphics>/);
    const dd = await v('domdisplay', 'g1');
    console.log(`domdisplay: rc ${dd.rc} out ${JSON.stringify(dd.out)} err ${JSON.stringify(dd.err)}`);
    expect(dd.rc).not.toBe(0);
    expect(dd.err).toMatch(/No graphical display found/);
    const vd = await v('vncdisplay', 'g1');
    console.log(`vncdisplay: rc ${vd.rc} out ${JSON.stringify(vd.out)} err ${JSON.stringify(vd.err)}`);
    expect(vd.rc).not.toBe(0);
    expect(vd.out).not.toMatch(/:\d/);
  });
});
