// SPDX-License-Identifier: Apache-2.0
// Descriptors sent with QMP commands (getfd, add-fd) against a real QEMU 7.2: a VNC client socketpair that answers
// RFB, with many plain commands queued around it (nothing interleaves with the descriptor's command); a screendump
// into a sealed memfd; send-key translation errors before anything reaches QEMU.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { openDisplay, screendump } from '../../../src/privileged/drivers/qemu/display';
import { QmpClient } from '../../../src/privileged/drivers/qemu/qmp';
import { KeycodeError } from '../../../src/privileged/qemu/keycodes';
import { sendKeys } from '../../../src/privileged/drivers/qemu/display';
import { SEAL, getSeals } from '../../../src/sandbox/files';

const EMU = '/usr/bin/qemu-system-x86_64';
let dir: string;
let q: ChildProcess | null = null;
let c: QmpClient | null = null;

beforeAll(async () => {
  if (!fs.existsSync(EMU)) return;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-gqmp-'));
  const sock = path.join(dir, 'qmp.sock');
  q = spawn(
    EMU,
    ['-machine', 'pc', '-accel', 'tcg', '-S', '-nodefaults', '-display', 'none', '-vnc', 'none', '-vga', 'std', '-qmp', `unix:${sock},server=on,wait=off`],
    {
      stdio: 'ignore',
    },
  );
  for (let i = 0; i < 100 && !fs.existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
  c = await QmpClient.connect(sock);
});
afterAll(() => {
  c?.close();
  q?.kill('SIGKILL');
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

(fs.existsSync(EMU) ? describe : describe.skip)('QMP with descriptors (QEMU 7.2)', () => {
  test('getfd + add_client with 60 commands queued around it: every answer arrives, the socket speaks RFB', async () => {
    const before = Array.from({ length: 30 }, () => c!.execute('query-status'));
    const fdP = openDisplay(c!);
    const after = Array.from({ length: 30 }, () => c!.execute('query-name'));
    const fd = await fdP;
    await Promise.all([...before, ...after]);
    const s = new net.Socket({ fd, readable: true, writable: true });
    const greet = await new Promise<string>((resolve) => s.once('data', (b: Buffer) => resolve(b.toString('latin1'))));
    s.destroy();
    expect(greet).toBe('RFB 003.008\n');
  });

  test('screendump into a memfd via add-fd: a sealed PPM; the fdset is gone afterwards', async () => {
    await c!.execute('cont');
    await new Promise((r) => setTimeout(r, 300));
    const shot = await screendump(c!);
    try {
      const head = Buffer.alloc(16);
      fs.readSync(shot.fd, head, 0, 16, 0);
      expect(head.toString('latin1')).toMatch(/^P6\n\d+ \d+\n255\n/);
      expect(fs.fstatSync(shot.fd).size).toBe(shot.size);
      expect(getSeals(shot.fd) & (SEAL.WRITE | SEAL.GROW | SEAL.SHRINK | SEAL.SEAL)).toBe(SEAL.WRITE | SEAL.GROW | SEAL.SHRINK | SEAL.SEAL);
      expect(() => fs.writeSync(shot.fd, 'x', 0)).toThrow();
    } finally {
      fs.closeSync(shot.fd);
    }
    const sets = (await c!.execute('query-fdsets')) as unknown[];
    expect(sets).toEqual([]);
  });

  test('send-key: an unmappable key fails before QEMU sees anything', async () => {
    await expect(sendKeys(c!, 5, [0])).rejects.toThrow(KeycodeError);
    await sendKeys(c!, 0, [30]); // KEY_A reaches QEMU
  });
});
