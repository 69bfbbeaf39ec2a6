// SPDX-License-Identifier: Apache-2.0
// The test guest itself, booted by a plain QEMU (no daemon, no jail): it reaches its marker on the serial console,
// answers on the console shell, brings a hot-plugged vCPU online, and powers off on the ACPI power button.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { QEMU, describeWithKvm, qemuTool, testGuest } from '../helpers/guest';
import { describeIf } from '../helpers/skip';

const guestReq = testGuest();

// A minimal QMP client: one JSON object per line; events collected, replies in order.
class Qmp {
  private buf = '';
  private waiting: ((v: Record<string, unknown>) => void)[] = [];
  readonly events: Record<string, unknown>[] = [];
  private eventWaiters: { name: string; resolve: (e: Record<string, unknown>) => void }[] = [];
  constructor(private readonly sock: net.Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      let i;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(this.buf.slice(0, i)) as Record<string, unknown>;
        this.buf = this.buf.slice(i + 1);
        if ('event' in msg) {
          this.events.push(msg);
          this.eventWaiters = this.eventWaiters.filter((w) => (w.name === msg.event ? (w.resolve(msg), false) : true));
        } else if ('QMP' in msg) continue;
        else this.waiting.shift()?.(msg);
      }
    });
  }
  static async connect(p: string): Promise<Qmp> {
    for (let i = 0; ; i++) {
      try {
        const s = await new Promise<net.Socket>((ok, ko) => {
          const c = net.createConnection(p, () => ok(c));
          c.once('error', ko);
        });
        const q = new Qmp(s);
        await q.exec('qmp_capabilities');
        return q;
      } catch (e) {
        if (i > 100) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }
  exec(cmd: string, args?: object): Promise<Record<string, unknown>> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.sock.write(JSON.stringify({ execute: cmd, ...(args ? { arguments: args } : {}) }) + '\n');
    });
  }
  event(name: string): Promise<Record<string, unknown>> {
    const seen = this.events.find((e) => e.event === name);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.eventWaiters.push({ name, resolve }));
  }
  close(): void {
    this.sock.destroy();
  }
}

const bootTests = (accel: 'tcg' | 'kvm') => () => {
  let dir: string;
  let qemu: ChildProcess | undefined;
  let qmp: Qmp | undefined;
  let serial = '';
  const exited = (): Promise<number | null> => new Promise((r) => (qemu!.exitCode !== null ? r(qemu!.exitCode) : qemu!.once('exit', (c) => r(c))));

  const waitSerial = async (re: RegExp, from: number, ms: number): Promise<string> => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const m = re.exec(serial.slice(from));
      if (m) return m[0];
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`serial: no ${re} within ${ms} ms; last output: ${JSON.stringify(serial.slice(-400))}`);
  };
  // Runs a command on the console shell; answers the first match of `re` printed after it.
  const consoleRun = async (cmd: string, re: RegExp, ms = 10_000): Promise<string> => {
    const from = serial.length;
    qemu!.stdin!.write(`${cmd}\n`);
    return waitSerial(re, from, ms);
  };

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-guest-boot-'));
  });
  afterAll(async () => {
    qmp?.close();
    if (qemu && qemu.exitCode === null && qemu.signalCode === null) {
      qemu.kill('SIGKILL');
      await exited();
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('marker, console shell, vCPU hotplug, ACPI power-off', async () => {
    const g = guestReq.guest!;
    const t0 = Date.now();
    // -smp 1,maxcpus=2: one vCPU can be hot-plugged (setvcpus --live).
    qemu = spawn(
      QEMU,
      [
        ...(accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg']),
        ...['-machine', 'q35', '-m', '256', '-smp', '1,maxcpus=2', '-nodefaults', '-display', 'none'],
        ...['-kernel', g.kernel, '-initrd', g.initrd, '-append', 'console=ttyS0'],
        ...['-chardev', 'stdio,id=s0,signal=off', '-serial', 'chardev:s0'],
        ...['-qmp', `unix:${path.join(dir, 'qmp.sock')},server=on,wait=off`],
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    qemu.stdout!.setEncoding('utf8').on('data', (d: string) => (serial += d));
    qemu.stderr!.setEncoding('utf8').on('data', (d: string) => (serial += d));

    await waitSerial(new RegExp(`^${g.marker}\\r?$`, 'm'), 0, 55_000);
    const bootMs = Date.now() - t0;
    process.stdout.write(`test guest: spawn -> marker ${(bootMs / 1000).toFixed(2)} s (${accel}, q35, 256 MiB, 1 vCPU)\n`);

    expect(await consoleRun('echo $((6*7))-virtgate', /42-virtgate/)).toBe('42-virtgate');

    qmp = await Qmp.connect(path.join(dir, 'qmp.sock'));
    const hot = (await qmp.exec('query-hotpluggable-cpus')).return as { type: string; props: object; 'qom-path'?: string }[];
    const free = hot.find((c) => !c['qom-path']);
    expect(free).toBeDefined();
    const plugged = Date.now();
    expect(await qmp.exec('device_add', { id: 'vcpu1', driver: free!.type, ...free!.props })).toEqual({ return: {} });
    // The guest's /init onlines hot-plugged vCPUs itself (no udev): /sys/.../online becomes 0-1.
    let online = '';
    for (let i = 0; i < 20 && online !== '0-1'; i++) {
      online = (await consoleRun('echo cpus=$(cat /sys/devices/system/cpu/online)', /cpus=([0-9][-0-9,]*)/)).slice(5);
      if (online !== '0-1') await new Promise((r) => setTimeout(r, 500));
    }
    expect(online).toBe('0-1');
    process.stdout.write(`test guest: hot-plugged vCPU online after ${((Date.now() - plugged) / 1000).toFixed(2)} s\n`);

    const down = Date.now();
    expect(await qmp.exec('system_powerdown')).toEqual({ return: {} });
    const shutdown = await qmp.event('SHUTDOWN');
    expect(shutdown.data).toEqual({ guest: true, reason: 'guest-shutdown' });
    expect(await exited()).toBe(0);
    process.stdout.write(`test guest: system_powerdown -> QEMU exited ${Date.now() - down} ms\n`);
  }, 60_000);
};

describeIf([qemuTool(), guestReq], 'test guest boots under TCG', bootTests('tcg'));
describeWithKvm('test guest boots under KVM', () => describeIf([qemuTool(), guestReq], 'with QEMU and the guest', bootTests('kvm')));
