// SPDX-License-Identifier: Apache-2.0
// Real virsh 9.0 against the qemu driver: define -> start (jailed QEMU through the real launcher) -> the guest's marker
// on the serial log -> dominfo -> suspend/resume -> shutdown -> destroy -> nothing left; kill -9 of the helper.
// VM tests run one after another in this file (TCG; 60 s timeouts); every process is cleaned up in afterAll.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { type RunningQemuDaemon, startQemuDaemon } from '../helpers/daemon';
import { describeWithKvm, testGuest } from '../helpers/guest';
import { launcherRequirements } from '../helpers/launcher';
import { describeIf, pyLibvirt, virshTool } from '../helpers/skip';
import { type Result, exec } from '../helpers/users';

jest.setTimeout(60000);
const guestReq = testGuest();
// VG_TEST_GUEST_DIR: a guest directory to use instead of the built one (vmlinuz, initrd.img, marker).
const override = process.env.VG_TEST_GUEST_DIR;
const guest = override
  ? { kernel: path.join(override, 'vmlinuz'), initrd: path.join(override, 'initrd.img'), marker: fs.readFileSync(path.join(override, 'marker'), 'utf8').trim() }
  : guestReq.guest;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, f: () => T | undefined | false | Promise<T | undefined | false>, ms = 30000, every = 50): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(every);
  }
}
const alive = (pid: number): boolean => {
  try {
    return !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};
const field = (out: string, name: string): string => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(out)?.[1] ?? '';
const cpuSeconds = (out: string): number => Number(/([0-9.]+)s/.exec(field(out, 'CPU time'))?.[1] ?? 'NaN');

// The whole sequence once per accelerator: TCG everywhere, KVM where /dev/kvm runs guests (else skipped, reason printed).
const suite = (virtType: 'qemu' | 'kvm') => (): void => {
  let vg: RunningQemuDaemon;
  let uuid: string;
  const v = (...a: string[]): Promise<Result> => exec(['virsh', '-c', vg.uri, ...a]);
  const ok = async (...a: string[]): Promise<string> => {
    const r = await v(...a);
    if (r.rc !== 0) throw new Error(`virsh ${a.join(' ')}: rc ${r.rc}: ${r.err}`);
    return r.out;
  };
  const qemuPid = async (): Promise<number> => {
    const procs = fs.readFileSync(path.join('/sys/fs/cgroup/pids', vg.launcher.cgroupRoot, '_host', `vm-${uuid}`, 'cgroup.procs'), 'utf8');
    const pids = procs.split('\n').filter(Boolean).map(Number);
    return pids.find((p) => fs.readlinkSync(`/proc/${p}/exe`) === '/usr/bin/qemu-system-x86_64') ?? -1;
  };
  const cpuNs = async (name = 'g1'): Promise<bigint> => {
    const py = 'import libvirt, sys\nc = libvirt.open(sys.argv[1])\nprint(c.lookupByName(sys.argv[2]).info()[4])';
    const r = await exec(['/usr/bin/python3', '-c', py, vg.uri, name]);
    if (r.rc !== 0) throw new Error(`python3-libvirt info(): ${r.err}`);
    return BigInt(r.out.trim());
  };
  const markerSeen = () => fs.existsSync(vg.serialLog(uuid)) && fs.readFileSync(vg.serialLog(uuid), 'utf8').includes(guest!.marker);

  beforeAll(async () => {
    vg = await startQemuDaemon({ policy: 'g, unix:root, host-admin, *\n' });
    fs.writeFileSync(
      path.join(vg.home, 'g1.xml'),
      `<domain type='${virtType}'><name>g1</name><memory unit='MiB'>256</memory><vcpu current='1'>2</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type><kernel>${guest!.kernel}</kernel><initrd>${guest!.initrd}</initrd>
  <cmdline>console=ttyS0 panic=-1</cmdline></os><features><acpi/></features><on_poweroff>destroy</on_poweroff>
  <devices><serial type='pty'/><memballoon model='virtio'/></devices></domain>\n`,
    );
  });
  afterAll(async () => vg?.stop());

  test('type, version and capabilities from the probe of the host QEMU (TCG; kvm only where it runs guests)', async () => {
    await until('the probe', async () => /QEMU 7\.2\.\d+/.test(await ok('version')), 20000, 200);
    const caps = await ok('capabilities');
    expect(caps).toMatch(/<domain type='qemu'\/>/);
    expect(caps).toMatch(/<emulator>\/usr\/bin\/qemu-system-x86_64<\/emulator>/);
    if (fs.existsSync('/sys/module/kvm_pvm')) expect(caps).not.toMatch(/<domain type='kvm'\/>/);
    if (virtType === 'kvm') expect(caps).toMatch(/<domain type='kvm'\/>/);
    const dc = await ok('domcapabilities', '--virttype', 'qemu');
    expect(dc).toMatch(/<domain>qemu<\/domain>/);
    expect(dc).toMatch(/<machine>pc-q35-7\.2<\/machine>/);
  });

  test('define -> start: the jailed QEMU prints the marker; dominfo CPU time grows running, not paused', async () => {
    expect(await ok('define', path.join(vg.home, 'g1.xml'))).toMatch(/Domain 'g1' defined/);
    uuid = (await ok('domuuid', 'g1')).trim();
    const t0 = Date.now();
    expect(await ok('start', 'g1')).toMatch(/Domain 'g1' started/);
    const tStart = Date.now() - t0;
    await until('the marker on the serial log', markerSeen, 60000);
    console.log(`virsh start returned in ${tStart} ms; marker after ${Date.now() - t0} ms`);
    expect((await ok('domstate', 'g1', '--reason')).trim()).toBe('running (booted)');
    // The process the launcher started: uid in the jail range, no capabilities, seccomp on, its own network namespace.
    const pid = await qemuPid();
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    expect(Number(/^Uid:\s+([0-9]+)/m.exec(status)![1])).toBeGreaterThanOrEqual(200000);
    expect(status).toMatch(/^Seccomp:\s+2$/m);
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(status).toMatch(/^CapEff:\s+0+$/m);
    expect(fs.readlinkSync(`/proc/${pid}/ns/net`)).not.toBe(fs.readlinkSync('/proc/self/ns/net'));
    // Its cgroup limits: guest memory plus QEMU's overhead, a pids cap.
    const cg = (ctrl: string, f: string) => fs.readFileSync(path.join('/sys/fs/cgroup', ctrl, vg.launcher.cgroupRoot, '_host', `vm-${uuid}`, f), 'utf8').trim();
    expect(Number(cg('memory', 'memory.limit_in_bytes'))).toBe((256 + 512) * 1024 * 1024);
    expect(cg('pids', 'pids.max')).toBe('256');
    // An idle guest uses 0.02-0.03 s/s under TCG and dominfo shows tenths, which may not move in a few seconds:
    // virDomainGetInfo's nanoseconds (python3-libvirt) grow while it runs; dominfo's figure is the same number.
    const c1 = await cpuNs();
    await sleep(2000);
    const c2 = await cpuNs();
    expect(c2).toBeGreaterThan(c1);
    expect(cpuSeconds(await ok('dominfo', 'g1'))).toBeGreaterThanOrEqual(Math.floor(Number(c2) / 1e8) / 10);
    await ok('suspend', 'g1');
    expect((await ok('domstate', 'g1', '--reason')).trim()).toBe('paused (user)');
    const p1 = await cpuNs();
    await sleep(2000);
    const p2 = await cpuNs();
    expect(p2 - p1).toBeLessThan(10_000_000n); // < 10 ms in 2 s paused (running idle: 40-60 ms)
    await ok('resume', 'g1');
    expect((await ok('domstate', 'g1', '--reason')).trim()).toBe('running (unpaused)');
    // The helper's journal holds the spawn with the argv's sha256.
    const spawn = vg
      .journal()
      .split('\n')
      .find((l) => l.includes('"op":"QEMU_SPAWN"') && l.includes(uuid));
    expect(spawn).toMatch(/"result":"ok pid [0-9]+ slot [0-9]+ tenant '' argv-sha256 [0-9a-f]{64}"/);
  });

  test('kill -9 of the helper: the same QEMU keeps running and is "running" again within 2 s', async () => {
    const pid = await qemuPid();
    await vg.killHelper9();
    expect(alive(pid)).toBe(true);
    const t0 = Date.now();
    await vg.startHelper();
    await until('running again', async () => (await v('domstate', 'g1')).out.trim() === 'running', 5000, 20);
    const took = Date.now() - t0;
    console.log(`helper restart -> running again: ${took} ms`);
    expect(took).toBeLessThan(2000);
    expect(await qemuPid()).toBe(pid);
  });

  test('kill -9 of the launcher: the same QEMU keeps running; the helper reconnects to the restarted launcher', async () => {
    const pid = await qemuPid();
    await vg.launcher.kill9();
    expect(alive(pid)).toBe(true);
    expect((await ok('domstate', 'g1')).trim()).toBe('running');
    await vg.launcher.restart();
    await vg.waitFor(/launcher connection lost/);
    expect(alive(pid)).toBe(true);
    expect(await qemuPid()).toBe(pid);
    // The launcher is needed again by the shutdown and destroy below (they run through it).
  });

  test('kill -9 of the front end: the same QEMU keeps running and is "running" through the restarted front end', async () => {
    const pid = await qemuPid();
    await vg.killFront9();
    expect(alive(pid)).toBe(true);
    const t0 = Date.now();
    await vg.startFront();
    await until('running again', async () => (await v('domstate', 'g1')).out.trim() === 'running', 5000, 20);
    console.log(`front end restart -> running again: ${Date.now() - t0} ms`);
    expect(await qemuPid()).toBe(pid);
  });

  test('setmem --live through the balloon, setvcpus --live by hotplug, reboot: the marker again', async () => {
    await ok('setmem', 'g1', '128M', '--live');
    // The guest gives the memory back over a second or two; QEMU's BALLOON_CHANGE events carry what it has reached.
    await until('the balloon at 128 MiB', async () => field(await ok('dominfo', 'g1'), 'Used memory') === '131072 KiB', 10000, 200);
    await ok('setvcpus', 'g1', '2', '--live');
    expect(field(await ok('dominfo', 'g1'), 'CPU\\(s\\)')).toBe('2');
    expect((await v('setvcpus', 'g1', '3', '--live')).err).toMatch(/greater than max allowable vcpus/);
    const before = fs.readFileSync(vg.serialLog(uuid), 'utf8').split(guest!.marker).length;
    const t0 = Date.now();
    await ok('reboot', 'g1');
    await until('the marker again', () => fs.readFileSync(vg.serialLog(uuid), 'utf8').split(guest!.marker).length > before, 60000);
    console.log(`reboot -> marker again: ${Date.now() - t0} ms`);
    expect((await ok('domstate', 'g1')).trim()).toBe('running');
  });

  test('shutdown after the marker: shut off (reason shutdown) within 10 s; no process or cgroup left', async () => {
    const pid = await qemuPid();
    // Lifecycle events as a client sees them: our suspend/resume, then the guest's own poweroff reported by QMP.
    const ev = spawn('virsh', ['-c', vg.uri, 'event', '--all', '--loop', '--timeout', '20'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let events = '';
    ev.stdout!.setEncoding('utf8').on('data', (t: string) => (events += t));
    await sleep(500); // registered
    await ok('suspend', 'g1');
    await ok('resume', 'g1');
    await ok('shutdown', 'g1');
    const t0 = Date.now();
    await until('shut off', async () => (await v('domstate', 'g1', '--reason')).out.trim() === 'shut off (shutdown)', 10000, 100);
    console.log(`shutdown -> shut off: ${Date.now() - t0} ms`);
    await until('the stopped event', () => events.includes('Stopped Shutdown'), 5000);
    ev.kill();
    expect(events.match(/event 'lifecycle' for domain '?g1'?: \S+ \S+/g)).toEqual([
      "event 'lifecycle' for domain 'g1': Suspended Paused",
      "event 'lifecycle' for domain 'g1': Resumed Unpaused",
      "event 'lifecycle' for domain 'g1': Stopped Shutdown",
    ]);
    expect(alive(pid)).toBe(false);
    expect(fs.existsSync(path.join('/sys/fs/cgroup/pids', vg.launcher.cgroupRoot, '_host', `vm-${uuid}`))).toBe(false);
  });

  test('a guest that powers off while the helper is away shows shut off afterwards', async () => {
    fs.rmSync(vg.serialLog(uuid), { force: true });
    await ok('start', 'g1');
    await until('the marker', markerSeen, 60000);
    const pid = await qemuPid();
    await vg.killHelper9();
    // The guest's power button pressed from inside: its console shell is ours while the helper is away.
    const net = await import('node:net');
    const s = net.connect(path.join(vg.home, 'run', 'helper', 'qemu', uuid, 'serial.sock'));
    await new Promise((r) => s.once('connect', r));
    s.write('\npoweroff -f\n');
    await sleep(3000);
    s.destroy();
    await vg.startHelper();
    await until('shut off', async () => (await v('domstate', 'g1')).out.trim() === 'shut off', 5000, 50);
    expect(alive(pid)).toBe(false);
  });

  test('destroy: gone within 1 s, no process or cgroup left', async () => {
    await ok('start', 'g1');
    const pid = await qemuPid();
    const t0 = Date.now();
    await ok('destroy', 'g1');
    const took = Date.now() - t0;
    console.log(`virsh destroy: ${took} ms`);
    expect(took).toBeLessThan(1000);
    expect(alive(pid)).toBe(false);
    expect((await ok('domstate', 'g1', '--reason')).trim()).toBe('shut off (destroyed)');
    expect(fs.existsSync(path.join('/sys/fs/cgroup/pids', vg.launcher.cgroupRoot, '_host', `vm-${uuid}`))).toBe(false);
  });

  test('autostart: started when the helper starts after a host boot (runtime directory wiped)', async () => {
    await ok('autostart', 'g1');
    expect(field(await ok('dominfo', 'g1'), 'Autostart')).toBe('enable');
    await vg.killHelper9();
    fs.rmSync(path.join(vg.home, 'run', 'helper'), { recursive: true, force: true });
    await vg.startHelper();
    await until('running', async () => (await v('domstate', 'g1')).out.trim() === 'running', 10000, 100);
    await until('the marker', markerSeen, 60000);
    await ok('autostart', 'g1', '--disable');
    await ok('destroy', 'g1');
  });

  test('pool volumes as disks: a qcow2 volume boots with the VM; /etc/shadow, a symlink and a disguised raw file are refused', async () => {
    const target = path.join(vg.home, 'lib', 'images', 'p1');
    fs.writeFileSync(path.join(vg.home, 'p1.xml'), `<pool type='dir'><name>p1</name><target><path>${target}</path></target></pool>\n`);
    await ok('pool-define', path.join(vg.home, 'p1.xml'));
    await ok('pool-build', 'p1');
    await ok('pool-start', 'p1');
    await ok('vol-create-as', 'p1', 'd1.qcow2', '16M', '--format', 'qcow2');
    const base = fs.readFileSync(path.join(vg.home, 'g1.xml'), 'utf8');
    const withDisk = (name: string, disk: string): string => {
      const f = path.join(vg.home, `${name}.xml`);
      fs.writeFileSync(f, base.replace('<name>g1', `<name>${name}`).replace('<devices>', `<devices>${disk}`));
      return f;
    };
    await ok(
      'define',
      withDisk(
        'd1',
        "<disk type='volume' device='disk'><driver name='qemu' type='qcow2'/><source pool='p1' volume='d1.qcow2'/><target dev='vda' bus='virtio'/></disk>",
      ),
    );
    await ok('start', 'd1');
    expect((await ok('domstate', 'd1')).trim()).toBe('running');
    await ok('destroy', 'd1');
    // Outside every pool: refused before anything is opened.
    await ok('define', withDisk('d2', "<disk type='file' device='disk'><source file='/etc/shadow'/><target dev='vda' bus='virtio'/></disk>"));
    const shadow = await v('start', 'd2');
    expect(shadow.rc).toBe(1);
    expect(shadow.err).toMatch(/disk 'vda': file '\/etc\/shadow' is not in a storage pool this VM may use/);
    // Inside the pool but a symlink to a host file, and a raw file that carries the qcow2 magic: refused when opened.
    fs.symlinkSync('/etc/shadow', path.join(target, 'link.raw'));
    await ok('define', withDisk('d3', `<disk type='file' device='disk'><source file='${target}/link.raw'/><target dev='vda' bus='virtio'/></disk>`));
    const link = await v('start', 'd3');
    expect(link.rc).toBe(1);
    expect(link.err).toMatch(/link\.raw/);
    fs.copyFileSync(path.join(target, 'd1.qcow2'), path.join(target, 'fake.raw'));
    await ok(
      'define',
      withDisk(
        'd4',
        `<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${target}/fake.raw'/><target dev='vda' bus='virtio'/></disk>`,
      ),
    );
    const fake = await v('start', 'd4');
    expect(fake.rc).toBe(1);
    expect(fake.err).toMatch(/fake\.raw/);
    console.log(`refusals:\n${shadow.err}${link.err}${fake.err}`);
    for (const d of ['d1', 'd2', 'd3', 'd4']) await ok('undefine', d);
  });

  test('two VMs run under two different uids', async () => {
    const base = fs.readFileSync(path.join(vg.home, 'g1.xml'), 'utf8');
    fs.writeFileSync(path.join(vg.home, 'g2.xml'), base.replace('<name>g1', '<name>g2'));
    await ok('define', path.join(vg.home, 'g2.xml'));
    await ok('start', 'g1');
    await ok('start', 'g2');
    const uidOf = (u: string) => {
      const procs = fs.readFileSync(path.join('/sys/fs/cgroup/pids', vg.launcher.cgroupRoot, '_host', `vm-${u}`, 'cgroup.procs'), 'utf8');
      const pid = procs
        .split('\n')
        .filter(Boolean)
        .map(Number)
        .find((p) => fs.readlinkSync(`/proc/${p}/exe`) === '/usr/bin/qemu-system-x86_64')!;
      return Number(/^Uid:\s+([0-9]+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
    };
    const u1 = uidOf(uuid);
    const u2 = uidOf((await ok('domuuid', 'g2')).trim());
    expect(u1).toBeGreaterThanOrEqual(200001);
    expect(u2).toBeGreaterThanOrEqual(200001);
    expect(u1).not.toBe(u2);
    await ok('destroy', 'g1');
    await ok('destroy', 'g2');
    await ok('undefine', 'g2');
  });

  test('audit verify --cross-check: every spawn is in the journal and none reads as an unaudited write', async () => {
    const v = await exec([
      process.execPath,
      path.resolve(__dirname, '..', '..', 'bin', 'virtgate.js'),
      'audit',
      'verify',
      '--home',
      vg.home,
      '--cross-check',
      path.join(vg.home, 'lib', 'helper-journal.log'),
    ]);
    console.log(`audit verify --cross-check: rc ${v.rc}\n${v.out.slice(0, 1500)}${v.err.slice(0, 500)}`);
    expect(v.out).not.toMatch(/QEMU_SPAWN/);
    expect(v.out).toMatch(/ok: cross-check/);
    expect(
      vg
        .journal()
        .split('\n')
        .filter((l) => l.includes('"op":"QEMU_SPAWN"')).length,
    ).toBeGreaterThanOrEqual(8);
  });

  test('outside the subset: refused naming the element', async () => {
    const bad = path.join(vg.home, 'bad.xml');
    fs.writeFileSync(
      bad,
      fs.readFileSync(path.join(vg.home, 'g1.xml'), 'utf8').replace('<name>g1', '<name>bad').replace('<memballoon', "<sound model='ich9'/><memballoon"),
    );
    const r = await v('define', bad);
    expect(r.rc).toBe(1);
    expect(r.err).toMatch(/unsupported configuration: <sound> device/);
  });

  test('qemu:commandline (raw QEMU arguments) is refused naming the element, and the refusal is in the audit log', async () => {
    const bad = path.join(vg.home, 'cmdline.xml');
    const xml = fs
      .readFileSync(path.join(vg.home, 'g1.xml'), 'utf8')
      .replace('<name>g1', '<name>cmdline')
      .replace(/<domain /, "<domain xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0' ")
      .replace('</domain>', "<qemu:commandline><qemu:arg value='-runas'/><qemu:arg value='nobody'/></qemu:commandline></domain>");
    expect(xml).toContain('<qemu:commandline>');
    fs.writeFileSync(bad, xml);
    const r = await v('define', bad);
    expect(r.rc).toBe(1);
    expect(r.err).toMatch(/unsupported configuration: <qemu:commandline> \(QEMU passthrough is not offered/);
    expect((await v('domstate', 'cmdline')).rc).toBe(1); // nothing was defined
    const q = await exec([
      process.execPath,
      path.resolve(__dirname, '..', '..', 'bin', 'virtgate.js'),
      'audit',
      'query',
      '--format',
      'json',
      path.join(vg.home, 'log', 'audit.log'),
    ]);
    const refused = q.out
      .split('\n')
      .filter((l) => l.includes('qemu:commandline'))
      .join('\n');
    expect(refused).toMatch(/define/i);
  });
};
const NEEDS = [virshTool(), pyLibvirt(), ...launcherRequirements(), guestReq];
describeIf(NEEDS, 'virsh against the qemu driver (real QEMU, jailed, TCG)', suite('qemu'));
describeWithKvm('virsh against the qemu driver (real QEMU, jailed, KVM)', () => describeIf(NEEDS, "type='kvm'", suite('kvm')));
