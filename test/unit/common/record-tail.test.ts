// SPDX-License-Identifier: Apache-2.0
// The all-or-nothing append shared by the helper journal and the state log, over a file that refuses or shortens writes.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type AppendFs, RecordTail } from '../../../src/common/record-tail';

let dir: string;
let fd: number;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-tail-'));
  fd = fs.openSync(path.join(dir, 'log'), fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_APPEND, 0o600);
});
afterEach(() => {
  fs.closeSync(fd);
  fs.rmSync(dir, { recursive: true, force: true });
});

const text = (): string => fs.readFileSync(path.join(dir, 'log'), 'utf8');
const enospc = (): Error => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' });

// A disk that writes a prefix of each buffer (`short` bytes, then refuses), and may refuse to truncate.
function disk(): { afs: AppendFs; mode: { short: number | null; noTruncate: boolean } } {
  const mode = { short: null as number | null, noTruncate: false };
  return {
    mode,
    afs: {
      writeSync: (f, buf) => {
        if (mode.short === null) return fs.writeSync(f, buf);
        const n = fs.writeSync(f, buf.subarray(0, mode.short));
        if (mode.short === 0) throw enospc();
        return n;
      },
      ftruncateSync: (f, len) => {
        if (mode.noTruncate) throw Object.assign(new Error('EIO: i/o error, ftruncate'), { code: 'EIO' });
        fs.ftruncateSync(f, len);
      },
    },
  };
}

test('a short write is cut back and refused as ENOSPC; a refused write too; the size counts whole records only', () => {
  const d = disk();
  const t = new RecordTail(d.afs, 'the test log');
  t.append(fd, Buffer.from('one\n'));
  d.mode.short = 2;
  expect(() => t.append(fd, Buffer.from('two\n'))).toThrow('ENOSPC: short write to the test log (2 of 4 bytes)');
  expect(text()).toBe('one\n');
  d.mode.short = 0;
  expect(() => t.append(fd, Buffer.from('two\n'))).toThrow(/^ENOSPC: no space left/);
  expect(text()).toBe('one\n');
  d.mode.short = null;
  t.append(fd, Buffer.from('two\n'));
  expect(text()).toBe('one\ntwo\n');
  expect(t.size).toBe(8);
});

test('when even the cut fails, the next append cuts first, and refuses while it cannot', () => {
  const d = disk();
  const t = new RecordTail(d.afs, 'the test log');
  t.append(fd, Buffer.from('one\n'));
  d.mode.short = 3;
  d.mode.noTruncate = true;
  expect(() => t.append(fd, Buffer.from('two\n'))).toThrow(/short write/);
  expect(text()).toBe('one\ntwo'); // torn: the cut failed
  d.mode.short = null;
  expect(() => t.append(fd, Buffer.from('three\n'))).toThrow(/EIO/); // cannot cut: nothing appended after the torn bytes
  expect(text()).toBe('one\ntwo');
  d.mode.noTruncate = false;
  t.append(fd, Buffer.from('three\n'));
  expect(text()).toBe('one\nthree\n');
  t.reset(0);
  fs.ftruncateSync(fd, 0);
  t.append(fd, Buffer.from('four\n'));
  expect([text(), t.size]).toEqual(['four\n', 5]);
});
