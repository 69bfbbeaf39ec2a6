// SPDX-License-Identifier: Apache-2.0
// probeQemu against this host's real QEMU (a probe process as the driver runs it: -machine none -S -nodefaults, QMP),
// so the recording the unit tests use (test/fixtures/qemu/probe-7.2-tcg.json) cannot drift from what QEMU says.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { domainCapabilitiesXml, kvmUsable, probeQemu, qemuCapabilitiesXml } from '../../src/privileged/qemu/host-caps';
import { QEMU, qemuTool } from '../helpers/guest';
import { describeIf } from '../helpers/skip';

describeIf(qemuTool(), 'probeQemu over a real QEMU', () => {
  let qemu: ChildProcess | undefined;
  afterAll(async () => {
    if (qemu && qemu.exitCode === null && qemu.signalCode === null) {
      qemu.kill('SIGKILL');
      await new Promise((r) => qemu!.once('exit', r));
    }
  });

  test('answers match the recording; the documents come out of a live probe', async () => {
    qemu = spawn(QEMU, ['-machine', 'none', '-S', '-nodefaults', '-no-user-config', '-display', 'none', '-accel', 'tcg', '-qmp', 'stdio'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let buf = '';
    const waiting: ((m: Record<string, unknown>) => void)[] = [];
    qemu.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const m = JSON.parse(buf.slice(0, i)) as Record<string, unknown>;
        buf = buf.slice(i + 1);
        if (!('event' in m)) waiting.shift()?.(m);
      }
    });
    const raw = (cmd: string): Promise<Record<string, unknown>> =>
      new Promise((resolve) => {
        waiting.push(resolve);
        qemu!.stdin!.write(`${JSON.stringify({ execute: cmd })}\n`);
      });
    await new Promise<Record<string, unknown>>((resolve) => waiting.push(resolve)); // the greeting
    expect(await raw('qmp_capabilities')).toEqual({ return: {} });
    const answers: Record<string, unknown> = {};
    const exec = async (cmd: string): Promise<unknown> => {
      const r = await raw(cmd);
      if (!('return' in r)) throw new Error(`${cmd}: ${JSON.stringify(r)}`);
      answers[cmd] = r.return;
      return r.return;
    };

    const t0 = process.hrtime.bigint();
    const p = await probeQemu(exec, QEMU);
    process.stdout.write(`probeQemu (4 QMP queries): ${Number(process.hrtime.bigint() - t0) / 1e6} ms; QEMU ${p.version}; kvm: ${JSON.stringify(p.kvm)}\n`);
    expect(p.kvm).toEqual(kvmUsable().usable ? { usable: true, reason: expect.any(String) } : kvmUsable());

    const recorded = JSON.parse(fs.readFileSync(path.join(__dirname, '../fixtures/qemu/probe-7.2-tcg.json'), 'utf8')) as Record<string, { return: unknown }>;
    if (p.version.startsWith('7.2.')) {
      // Same QEMU as recorded: the same answers (the recording is what the unit tests believe).
      for (const cmd of ['query-machines', 'query-cpu-definitions']) expect(answers[cmd]).toEqual(recorded[cmd].return);
    } else {
      process.stdout.write(`QEMU ${p.version} differs from the recorded 7.2: re-record test/fixtures/qemu/probe-7.2-tcg.json's successor\n`);
    }
    expect(p.machines.find((m) => m.alias === 'q35')?.name).toMatch(/^pc-q35-\d+\.\d+$/);
    const caps = qemuCapabilitiesXml(p, { uuid: '00000000-0000-4000-8000-000000000001', cpus: 2, memKiB: 1024n, arch: 'x86_64' });
    expect(caps).toContain(`<emulator>${QEMU}</emulator>`);
    expect(domainCapabilitiesXml(p, { emulatorbin: null, arch: null, machine: null, virttype: 'qemu' })).toContain('<domain>qemu</domain>');
    qemu.stdin!.write('{"execute":"quit"}\n');
    await new Promise((r) => qemu!.once('exit', r));
  }, 30_000);
});
