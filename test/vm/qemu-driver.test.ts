// SPDX-License-Identifier: Apache-2.0
// The QEMU driver in-process against real QEMU 7.2 (TCG) and the test guest, with a stand-in launcher that spawns QEMU
// directly (no jail): lifecycle, events, CPU time, serial log, helper restart and re-attach. The jailed path through
// the real launcher is covered by test/vm/qemu-virsh.test.ts.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DomainState } from '../../src/common/domain-state';
import { ControlAction, type LifecycleEvent, uuidFromString, uuidToString } from '../../src/ipc/program';
import type { DriverError } from '../../src/privileged/drivers/driver';
import { QemuDriver } from '../../src/privileged/drivers/qemu/driver';
import type { LaunchedVm, Launcher, QemuHost, SpawnRequest } from '../../src/privileged/drivers/qemu/host';
import { QmpClient } from '../../src/privileged/drivers/qemu/qmp';
import { koffi } from '../../src/sandbox/libc';
import { dx } from '../helpers/domain-def';
import { testGuest } from '../helpers/guest';

const EMU = '/usr/bin/qemu-system-x86_64';
// VG_TEST_GUEST_DIR: a guest directory to use instead of the built one (vmlinuz, initrd.img, marker).
const dirGuest = (d: string) => ({
  kernel: path.join(d, 'vmlinuz'),
  initrd: path.join(d, 'initrd.img'),
  marker: fs.readFileSync(path.join(d, 'marker'), 'utf8').trim(),
});
const guestReq = process.env.VG_TEST_GUEST_DIR ? null : testGuest();
const guest = process.env.VG_TEST_GUEST_DIR ? dirGuest(process.env.VG_TEST_GUEST_DIR) : guestReq!.guest;
const run = fs.existsSync(EMU) && guest !== null && process.getuid?.() === 0 ? describe : describe.skip;
if (guest === null) console.log(`SKIP qemu-driver: ${guestReq?.need}`);

// socket(2)/bind(2)/listen(2) through koffi: a listener no Node event loop accepts on (QEMU gets it).
function bindListener(p: string): number {
  const k = koffi();
  const lib = k.load('libc.so.6');
  const socket = lib.func('int socket(int, int, int)') as (a: number, b: number, c: number) => number;
  const bind = lib.func('int bind(int, const void *, uint32_t)') as (fd: number, addr: Buffer, len: number) => number;
  const listen = lib.func('int listen(int, int)') as (fd: number, n: number) => number;
  const fd = socket(1, 1 | 0o2000000, 0);
  const addr = Buffer.alloc(110);
  addr.writeUInt16LE(1, 0);
  addr.write(p, 2);
  if (fd < 0 || bind(fd, addr, 110) !== 0 || listen(fd, 8) !== 0) throw new Error(`bind ${p}: errno ${k.errno()}`);
  return fd;
}

class DirectLauncher implements Launcher {
  readonly vms = new Map<string, LaunchedVm & { child: ChildProcess; argv: string[] }>();
  async spawn(req: SpawnRequest, fds: number[]): Promise<{ pid: number }> {
    const child = spawn(EMU, req.argv, { stdio: ['ignore', 'ignore', 'inherit', ...fds], detached: true });
    child.unref();
    await new Promise((r) => child.once('spawn', r));
    this.vms.set(req.vm, { vm: req.vm, pid: child.pid!, slot: req.slot, tenant: req.tenant, child, argv: req.argv });
    return { pid: child.pid! };
  }
  async signal(vm: string, sig: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    const v = this.vms.get(vm);
    if (v) process.kill(v.pid, sig);
  }
  async list(): Promise<LaunchedVm[]> {
    return [...this.vms.values()]
      .filter((v) => v.child.exitCode === null && v.child.signalCode === null)
      .map(({ vm, pid, slot, tenant }) => ({ vm, pid, slot, tenant }));
  }
  async cleanup(vm: string): Promise<void> {
    this.vms.delete(vm);
  }
  async tap(bridge: string): Promise<{ ifname: string; fd: number }> {
    throw new Error(`no taps without the launcher (bridge ${bridge})`); // bridged VMs: test/vm/qemu-bridge.test.ts
  }
}

const launcher = new DirectLauncher();
const host: QemuHost = {
  launcher: () => launcher,
  bindListener,
  closeFd: (fd) => fs.closeSync(fd),
  kernelMemfd: (f) => fs.openSync(f, 'r'),
  openDisk: () => {
    throw new Error('no disks in this test');
  },
};
let dir: string;
let driver: QemuDriver;
const events: LifecycleEvent[] = [];
const open = (): QemuDriver => {
  const d = new QemuDriver({
    stateDir: path.join(dir, 'lib'),
    runtimeDir: path.join(dir, 'run'),
    host,
    cgroupRoot: `vg-test-${process.pid}`,
    warn: () => undefined,
  });
  d.onLifecycle((e) => events.push(e));
  return d;
};
const xml = (name: string) => `<domain type='qemu'><name>${name}</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type><kernel>${guest!.kernel}</kernel><initrd>${guest!.initrd}</initrd>
  <cmdline>console=ttyS0 panic=-1</cmdline></os><features><acpi/></features><on_poweroff>destroy</on_poweroff>
  <devices><serial type='pty'/><memballoon model='virtio'/></devices></domain>`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(what: string, f: () => T | undefined | false, ms = 30000, detail?: () => string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${detail ? `:\n${detail()}` : ''}`);
    await sleep(50);
  }
}
const alive = (pid: number) => {
  try {
    return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
};

run('QEMU driver with a direct launcher (no jail)', () => {
  let uuid: Buffer;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-qemu-drv-'));
    driver = open();
  });
  afterAll(() => {
    driver?.close();
    for (const v of launcher.vms.values()) if (alive(v.pid)) process.kill(v.pid, 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('refuses what is outside the subset, naming the element', () => {
    expect(() => driver.define(dx(xml('bad').replace('<memballoon', "<sound model='ich9'/><memballoon")), '')).toThrow(/<sound> device/);
    expect(() => driver.define(dx(xml('t').replace("type='qemu'", "type='test'")), '')).toThrow(/domain type 'test'/);
  });

  test('define, start: the marker on the serial log; CPU time grows while running, not while paused', async () => {
    const s = driver.define(dx(xml('g1')), '');
    uuid = s.uuid;
    const t0 = Date.now();
    const started = await driver.control(uuid, ControlAction.START);
    console.log(`start -> running: ${Date.now() - t0} ms`);
    expect(started.state).toBe(DomainState.RUNNING);
    const log = driver.serialLogPath(s.uuid.toString('hex').replace(/(.{8})(.{4})(.{4})(.{4})(.{12})/, '$1-$2-$3-$4-$5'));
    await until('marker', () => fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes(guest!.marker), 60000);
    console.log(`start -> marker: ${Date.now() - t0} ms`);
    // No cgroup here (no launcher): /proc's 10 ms ticks, and an idle guest uses 0.02-0.03 s/s.
    const c1 = driver.info(uuid).cpuTimeNs;
    await sleep(2000);
    const c2 = driver.info(uuid).cpuTimeNs;
    expect(c2).toBeGreaterThan(c1);
    await driver.control(uuid, ControlAction.SUSPEND);
    expect(driver.info(uuid).state).toBe(DomainState.PAUSED);
    const p1 = driver.info(uuid).cpuTimeNs;
    await sleep(500);
    expect(driver.info(uuid).cpuTimeNs - p1).toBeLessThan(20_000_000n); // < 20 ms in 0.5 s paused
    await driver.control(uuid, ControlAction.RESUME);
    expect(driver.info(uuid).state).toBe(DomainState.RUNNING);
    expect(events.map((e) => [e.event, e.detail])).toEqual([
      [0, 0],
      [2, 0],
      [3, 0],
      [4, 0],
    ]);
  });

  test('setmem --live through the balloon; setvcpus --live refuses beyond max', async () => {
    await driver.setMemory(uuid, 128n * 1024n, { live: true, config: false, max: false });
    expect(driver.info(uuid).memoryKiB).toBe(128n * 1024n);
    await expect(driver.setVcpus(uuid, 2, { live: true, config: false, max: false })).rejects.toMatchObject({
      detail: expect.stringMatching(/greater than max/),
    });
  });

  test('helper restart: the same QEMU keeps running and is re-attached', async () => {
    const pid = [...launcher.vms.values()][0].pid;
    driver.close();
    driver = open();
    expect(driver.info(uuid).state).toBe(DomainState.RUNNING);
    const t0 = Date.now();
    await driver.reattach(false);
    console.log(`reattach: ${Date.now() - t0} ms`);
    expect(driver.info(uuid).state).toBe(DomainState.RUNNING);
    expect([...launcher.vms.values()][0].pid).toBe(pid);
    await driver.control(uuid, ControlAction.SUSPEND);
    await driver.control(uuid, ControlAction.RESUME);
  });

  test('shutdown: ACPI button -> shut off, reason shutdown, within 10 s; QEMU gone', async () => {
    const pid = [...launcher.vms.values()][0].pid;
    events.length = 0;
    await driver.control(uuid, ControlAction.SHUTDOWN);
    const t0 = Date.now();
    await until('shut off', () => driver.info(uuid).state === DomainState.SHUTOFF, 10000);
    console.log(`shutdown -> shut off: ${Date.now() - t0} ms`);
    expect(driver.info(uuid).reason).toBe(1);
    expect(alive(pid)).toBe(false);
    expect(events.map((e) => [e.event, e.detail])).toEqual([[5, 0]]);
  });

  test('a guest that powers off while the helper is away shows shut off after', async () => {
    await driver.control(uuid, ControlAction.START);
    const log = path.join(dir, 'lib', 'qemu', 'logs', `${[...launcher.vms.keys()][0]}.serial.log`);
    await until('marker', () => fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes(guest!.marker), 40000).catch((e: Error) => {
      const tail = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').slice(-600) : 'no log';
      throw new Error(`${e.message}; vms ${JSON.stringify([...launcher.vms.keys()])}, state ${driver.info(uuid).state}, log tail: ${tail}`);
    });
    const pid = [...launcher.vms.values()][0].pid;
    driver.close();
    const q = await QmpClient.connect(path.join(dir, 'run', 'qemu', [...launcher.vms.keys()][0], 'qmp.sock'));
    let down = false;
    q.on('event', (e: { event: string }) => void (e.event === 'SHUTDOWN' && (down = true)));
    // A press before the guest's acpid listens is lost (as with libvirtd): press again until the guest reacts.
    for (let i = 0; i < 15 && !down; i++) {
      await q.execute('system_powerdown');
      for (let j = 0; j < 20 && !down; j++) await sleep(100);
    }
    expect(down).toBe(true);
    q.close();
    expect(alive(pid)).toBe(true); // -no-shutdown: QEMU waits for the driver's decision
    driver = open();
    await driver.reattach(false);
    expect(driver.info(uuid).state).toBe(DomainState.SHUTOFF);
    expect(driver.info(uuid).reason).toBe(1);
    expect(alive(pid)).toBe(false);
  });

  test('destroy: gone within 1 s', async () => {
    await driver.control(uuid, ControlAction.START);
    const pid = [...launcher.vms.values()][0].pid;
    const t0 = Date.now();
    const s = await driver.control(uuid, ControlAction.DESTROY);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(s.state).toBe(DomainState.SHUTOFF);
    expect(driver.info(uuid).reason).toBe(2);
    expect(alive(pid)).toBe(false);
    await expect(driver.control(uuid, ControlAction.DESTROY)).rejects.toMatchObject({ detail: 'domain is not running' } as Partial<DriverError>);
    expect(uuidFromString('00000000-0000-0000-0000-000000000000')).toBeTruthy();
  });

  test('create (transient): runs at once, gone from the list when destroyed', async () => {
    const s = await driver.createXml(dx(xml('t1')), '');
    expect(s).toMatchObject({ state: DomainState.RUNNING, persistent: false });
    expect(driver.list().map((d) => d.name)).toContain('t1');
    await driver.control(s.uuid, ControlAction.DESTROY);
    expect(driver.list().map((d) => d.name)).not.toContain('t1');
  });

  test('on_poweroff restart: the guest powers off and boots again in the same QEMU', async () => {
    const s = driver.define(dx(xml('r1').replace('<on_poweroff>destroy</on_poweroff>', '<on_poweroff>restart</on_poweroff>')), '');
    await driver.control(s.uuid, ControlAction.START);
    const key = uuidToString(s.uuid); // this test's VM, never a previous test's that may still be running
    const log = path.join(dir, 'lib', 'qemu', 'logs', `${key}.serial.log`);
    const markers = () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split(guest!.marker).length - 1 : 0);
    await until('marker', () => markers() === 1, 40000);
    const pid = launcher.vms.get(key)!.pid;
    await driver.control(s.uuid, ControlAction.SHUTDOWN);
    const serialTail = () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').slice(-2000) : '(no serial log)');
    await until(
      'marker again',
      () => markers() === 2,
      40000,
      () => `state ${driver.info(s.uuid).state}; serial log ends:\n${serialTail()}`,
    );
    expect(driver.info(s.uuid).state).toBe(DomainState.RUNNING);
    expect(alive(pid)).toBe(true);
    await driver.control(s.uuid, ControlAction.DESTROY);
  });

  test("setmem --live lowers the guest's MemTotal, setvcpus --live brings a second CPU online (read on the guest's console)", async () => {
    const s = driver.define(dx(xml('m1').replace('<vcpu>1</vcpu>', "<vcpu current='1'>2</vcpu>")), '');
    await driver.control(s.uuid, ControlAction.START);
    const key = uuidToString(s.uuid); // this test's VM, never a previous test's that may still be running
    const log = path.join(dir, 'lib', 'qemu', 'logs', `${key}.serial.log`);
    await until('marker', () => fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes(guest!.marker), 40000);
    await driver.setMemory(s.uuid, 128n * 1024n, { live: true, config: false, max: false });
    await driver.setVcpus(s.uuid, 2, { live: true, config: false, max: false });
    expect(driver.info(s.uuid).nrVirtCpu).toBe(2);
    // GetInfo's memory is the balloon's actual size (BALLOON_CHANGE events, as libvirt): a late event from the guest's
    // balloon driver may still say 255 MiB right after the call; the target is reached within seconds.
    await until('balloon at 128 MiB', () => driver.info(s.uuid).memoryKiB === 128n * 1024n, 15000);
    await sleep(2000); // the guest's loop onlines the new CPU (1.4 s measured)
    // The console is the helper's while it runs (one client at a time): look while it is away, then re-attach.
    driver.close();
    const net = await import('node:net');
    const c = net.connect(path.join(dir, 'run', 'qemu', key, 'serial.sock'));
    let out = '';
    c.setEncoding('utf8').on('data', (t: string) => (out += t));
    await new Promise((r) => c.once('connect', r));
    c.write('\ngrep MemTotal /proc/meminfo; cat /sys/devices/system/cpu/online\n');
    await until('the answer', () => /MemTotal:\s+\d+ kB[\s\S]*\n0-1\r?\n/.test(out) || /MemTotal:\s+\d+ kB[\s\S]*\n0\r?\n/.test(out), 10000);
    c.destroy();
    const memTotal = Number(/MemTotal:\s+(\d+) kB/.exec(out)![1]);
    console.log(`guest after setmem 128M: MemTotal ${memTotal} kB; CPUs online: ${/\n(0(?:-1)?)\r?\n/.exec(out)![1]}`);
    expect(memTotal).toBeLessThan(140000); // 256 MiB boots with ~210000 kB
    expect(out).toMatch(/\n0-1\r?\n/);
    driver = open();
    await driver.reattach(false);
    await driver.control(s.uuid, ControlAction.DESTROY);
  });

  test('QEMU killed from outside: the monitor closes, the VM is shut off (failed) with its stopped event', async () => {
    const s = driver.define(dx(xml('k1')), '');
    await driver.control(s.uuid, ControlAction.START);
    const vmKey = uuidToString(s.uuid);
    events.length = 0;
    process.kill(launcher.vms.get(vmKey)!.pid, 'SIGKILL');
    await until('shut off', () => driver.info(s.uuid).state === DomainState.SHUTOFF, 5000);
    expect(driver.info(s.uuid).reason).toBe(6); // VIR_DOMAIN_SHUTOFF_FAILED, as libvirtd after a monitor EOF
    expect(events.map((e) => [e.event, e.detail])).toEqual([[5, 5]]); // STOPPED, FAILED
    expect(fs.existsSync(path.join(dir, 'run', 'qemu', vmKey))).toBe(false);
  });
});
