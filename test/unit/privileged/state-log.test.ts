// SPDX-License-Identifier: Apache-2.0
// The helper's state log: group commit (few fdatasyncs for many writes), answers held until durable, torn records,
// ENOSPC on append, a failed fdatasync, checkpoints by size.
import fs from 'node:fs'; // the module object itself, so jest.spyOn reaches the store's calls
import * as os from 'node:os';
import * as path from 'node:path';
import { Op, uuidFromString } from '../../../src/ipc/program';
import { DriverError } from '../../../src/privileged/drivers/driver';
import { WAL_FILE, type WalFs } from '../../../src/privileged/drivers/store';
import { TestDriver, type TestDriverOptions } from '../../../src/privileged/drivers/test-driver';
import { IpcServer } from '../../../src/privileged/ipc-server';
import { ACTOR, RawClient } from '../../integration/helper/ipc-client';
import { dx, xmlOf } from '../../helpers/domain-def';

const TEST_UUID = uuidFromString('6695eb01-f6a4-8304-79aa-97f2502e193f')!;
const vm = (i: number) => `<domain type='test'><name>vm-${i}</name><memory>1048576</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>`;
const LIVE = { live: true, config: false, max: false };

let dir: string;
let syncs: number;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-wal-'));
  syncs = 0;
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const wal = () => path.join(dir, 'state', WAL_FILE);
const countingFs: Partial<WalFs> = {
  fdatasync: (fd, cb) => {
    syncs++;
    fs.fdatasync(fd, cb);
  },
};
const open = (store: TestDriverOptions['store'] = { fs: countingFs }, warn: (m: string) => void = () => {}) =>
  new TestDriver({ stateDir: path.join(dir, 'state'), runtimeDir: path.join(dir, 'run'), warn, store });
const durable = (d: TestDriver) => new Promise<void>((r) => d.whenDurable(r));

function storageError(fn: () => unknown): { code: string; detail: string } {
  try {
    fn();
  } catch (e) {
    if (e instanceof DriverError) return { code: e.code, detail: e.detail };
    throw e;
  }
  throw new Error('expected a DriverError');
}

describe('group commit', () => {
  test('the writes of one event-loop turn share one fdatasync; durability is reported after it', async () => {
    const d = open();
    const done: number[] = [];
    for (let i = 0; i < 100; i++) {
      d.setMemory(TEST_UUID, BigInt(1024 + i), LIVE);
      d.whenDurable(() => done.push(i));
    }
    expect(done).toEqual([]); // nothing is durable yet: the batch's sync runs after this turn
    await durable(d);
    expect(done).toHaveLength(100);
    expect(syncs).toBe(1);
    // Nothing new: reported at once, no sync.
    let now = false;
    d.whenDurable(() => (now = true));
    expect(now).toBe(true);
    expect(syncs).toBe(1);
    d.close();
  });

  test('16 concurrent IPC writers (200 writes each) share few fsyncs; every acknowledged write is on disk', async () => {
    const d = open();
    const socket = path.join(dir, 's.sock');
    const server = new IpcServer({ driver: d, allowUids: [process.getuid!()], log: () => {}, maxConnections: 32 });
    await server.listen(socket);
    const uuids: Buffer[] = [];
    const PER = 200;
    try {
      const clients = await Promise.all(Array.from({ length: 16 }, () => RawClient.connect(socket)));
      await Promise.all(clients.map((c) => c.hello()));
      for (const [i, c] of clients.entries()) {
        const a = await c.call(Op.DOMAIN_WRITE_REQ, { action: 'define', actor: ACTOR, def: dx(vm(i)) });
        uuids.push((a as { body: { uuid: Buffer } }).body.uuid);
      }
      syncs = 0;
      await Promise.all(
        clients.map(async (c, i) => {
          for (let k = 0; k < PER; k++) {
            const a = await c.call(Op.DOMAIN_WRITE_REQ, {
              action: 'setMemory',
              actor: ACTOR,
              uuid: uuids[i],
              memoryKiB: BigInt(1024 + k),
              live: false,
              config: true,
              max: false,
            });
            expect(a.ok).toBe(true);
          }
        }),
      );
      const writes = 16 * PER;
      expect(syncs).toBeLessThan(writes / 4); // in practice ~1 sync per 16 writes
      clients.forEach((c) => c.end());
    } finally {
      await server.close();
    }
    // Every acknowledged write is in the state a new driver loads from the files and the log (no close: kill -9).
    const b = open();
    for (const u of uuids) expect(xmlOf(b.xml(u, true))).toContain(`<currentMemory unit='KiB'>${1024 + PER - 1}</currentMemory>`);
    b.close();
    d.close();
  }, 30000);

  test('a write answer is held back until the sync completes; reads are not', async () => {
    const held: ((e: NodeJS.ErrnoException | null) => void)[] = [];
    const d = open({ fs: { fdatasync: (_fd, cb) => held.push(cb) } });
    const socket = path.join(dir, 's.sock');
    const server = new IpcServer({ driver: d, allowUids: [process.getuid!()], log: () => {} });
    await server.listen(socket);
    const c = await RawClient.connect(socket);
    await c.hello();
    c.request(Op.DOMAIN_WRITE_REQ, { action: 'control', actor: ACTOR, uuid: TEST_UUID, control: 3 /* SUSPEND */ } as never);
    c.request(Op.DOMAIN_READ_REQ, { action: 'info', uuid: TEST_UUID });
    const first = await c.answer(1);
    expect(first.op).toBe(Op.DOMAIN_READ_ANS); // the read overtakes the held write answer
    await new Promise((r) => setTimeout(r, 50));
    expect(c.answers).toHaveLength(2);
    expect(held).toHaveLength(1);
    held[0](null);
    expect((await c.answer(2)).op).toBe(Op.DOMAIN_WRITE_ANS);
    c.end();
    await server.close();
    d.close();
  });

  test('a failed fdatasync is fatal: the held answers never go out and the store refuses further writes', async () => {
    let cb: ((e: NodeJS.ErrnoException | null) => void) | null = null;
    const fatal: Error[] = [];
    const d = open({ fs: { fdatasync: (_fd, c) => (cb = c) }, onFatal: (e) => fatal.push(e) });
    let answered = false;
    d.setMemory(TEST_UUID, 1024n, LIVE);
    d.whenDurable(() => (answered = true));
    await new Promise((r) => setImmediate(r));
    expect(cb).not.toBeNull();
    cb!(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO', syscall: 'fdatasync' }));
    expect(fatal.map((e) => e.message)).toEqual(['state log sync failed: EIO: i/o error, fdatasync']);
    expect(answered).toBe(false);
    expect(storageError(() => d.setMemory(TEST_UUID, 2048n, LIVE))).toEqual({ code: 'VG_ERR_STORAGE', detail: 'fdatasync: EIO' });
  });
});

describe('recovery', () => {
  test('changes live in the log until a checkpoint; a restart (no close, as after kill -9) replays them', async () => {
    const a = open();
    a.define(dx(vm(1)));
    a.setMemory(TEST_UUID, 4096n, LIVE);
    await durable(a);
    expect(fs.statSync(wal()).size).toBeGreaterThan(0);
    expect(fs.readdirSync(path.join(dir, 'state', 'domains'))).toHaveLength(1); // only the seed's file
    const warnings: string[] = [];
    const b = open(undefined, (m) => warnings.push(m));
    expect(
      b
        .list()
        .map((x) => x.name)
        .sort(),
    ).toEqual(['test', 'vm-1']);
    expect(b.info(TEST_UUID).memoryKiB).toBe(4096n);
    expect(warnings).toEqual([expect.stringMatching(/replayed 2 record\(s\)/)]);
    // The start-up checkpoint filed them and emptied the log.
    expect(fs.statSync(wal()).size).toBe(0);
    expect(fs.readdirSync(path.join(dir, 'state', 'domains'))).toHaveLength(2);
    b.close();
  });

  test('a torn last record is ignored and cut off; the records before it count', () => {
    const a = open();
    a.setMemory(TEST_UUID, 4096n, LIVE);
    a.setMemory(TEST_UUID, 8192n, LIVE);
    const size = fs.statSync(wal()).size;
    const text = fs.readFileSync(wal(), 'utf8');
    const second = text.indexOf('\n') + 1;
    fs.truncateSync(wal(), second + Math.floor((size - second) / 2)); // the crash tore the second record
    const warnings: string[] = [];
    const b = open(undefined, (m) => warnings.push(m));
    expect(b.info(TEST_UUID).memoryKiB).toBe(4096n);
    expect(warnings[0]).toMatch(/torn last record .* ignored/);
    b.setMemory(TEST_UUID, 2048n, LIVE); // appends after the cut, readable again
    expect(open().info(TEST_UUID).memoryKiB).toBe(2048n);
  });

  test('a record whose checksum does not match ends the replay', () => {
    const a = open();
    a.setMemory(TEST_UUID, 4096n, LIVE);
    a.setMemory(TEST_UUID, 8192n, LIVE);
    const text = fs.readFileSync(wal(), 'utf8');
    fs.writeFileSync(wal(), text.replace(/8192/g, '8193'));
    const warnings: string[] = [];
    expect(open(undefined, (m) => warnings.push(m)).info(TEST_UUID).memoryKiB).toBe(4096n);
    expect(warnings[0]).toMatch(/corrupt record at byte \d+/);
  });

  test('a start whose checkpoint the disk refuses keeps the log and serves from it; no temporary is left; the next start checkpoints', () => {
    const d = open();
    d.setMemory(TEST_UUID, 4096n, LIVE);
    d.define(dx(vm(1))); // in the log only: no close, as after kill -9
    const walSize = fs.statSync(wal()).size;
    expect(walSize).toBeGreaterThan(0);
    const real = fs.openSync;
    let temps = 0;
    const spy = jest.spyOn(fs, 'openSync').mockImplementation(((p: fs.PathLike, flags?: fs.OpenMode, mode?: fs.Mode) => {
      if (String(p).includes('.tmp-') && ++temps >= 2)
        throw Object.assign(new Error('ENOSPC: no space left on device, open'), { code: 'ENOSPC', syscall: 'open' });
      return real(p, flags as fs.OpenMode, mode);
    }) as typeof fs.openSync);
    const warnings: string[] = [];
    let d2: TestDriver;
    try {
      d2 = open(undefined, (m) => warnings.push(m));
    } finally {
      spy.mockRestore();
    }
    expect(warnings.join('\n')).toMatch(/start-up checkpoint failed, serving with the state log kept \(\d+ bytes; replayed at the next start\): ENOSPC/);
    expect(d2.info(TEST_UUID).memoryKiB).toBe(4096n);
    expect(
      d2
        .list()
        .map((x) => x.name)
        .sort(),
    ).toEqual(['test', 'vm-1']);
    expect(fs.statSync(wal()).size).toBe(walSize);
    const leftovers = [path.join(dir, 'state', 'domains'), path.join(dir, 'run', 'domains'), path.join(dir, 'run')]
      .flatMap((x) => fs.readdirSync(x))
      .filter((f) => f.includes('.tmp-'));
    expect(leftovers).toEqual([]);
    const d3 = open();
    expect(d3.info(TEST_UUID).memoryKiB).toBe(4096n);
    expect(
      d3
        .list()
        .map((x) => x.name)
        .sort(),
    ).toEqual(['test', 'vm-1']);
    expect(fs.statSync(wal()).size).toBe(0);
  });

  test('the log is checkpointed when it grows past its size limit', async () => {
    const d = open({ fs: countingFs, walMaxBytes: 16 * 1024 });
    for (let i = 0; i < 40; i++) {
      d.setMemory(TEST_UUID, BigInt(1024 + i), { live: false, config: true, max: false });
      await durable(d);
    }
    expect(fs.statSync(wal()).size).toBeLessThan(16 * 1024 + 4096);
    expect(fs.readFileSync(path.join(dir, 'state', 'domains', '6695eb01-f6a4-8304-79aa-97f2502e193f.json'), 'utf8')).not.toContain('"curMemKiB":"2097152"');
    expect(syncs).toBeLessThan(40); // checkpoints replaced some syncs
    expect(xmlOf(open().xml(TEST_UUID, true))).toContain("<currentMemory unit='KiB'>1063</currentMemory>");
  });
});

describe('a write the disk refuses', () => {
  test('ENOSPC on append answers VG_ERR_STORAGE and changes nothing, in memory or on disk', async () => {
    let full = false;
    const d = open({
      fs: {
        writeSync: (fd, buf) => {
          if (full) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' });
          return fs.writeSync(fd, buf);
        },
      },
    });
    const changes: unknown[] = [];
    d.onChange((c) => changes.push(c));
    d.onLifecycle((e) => changes.push(e));
    d.setMemory(TEST_UUID, 4096n, LIVE);
    await durable(d);
    const size = fs.statSync(wal()).size;
    changes.length = 0;
    full = true;
    expect(storageError(() => d.define(dx(vm(1))))).toEqual({ code: 'VG_ERR_STORAGE', detail: 'write: ENOSPC' });
    expect(storageError(() => d.setMemory(TEST_UUID, 1024n, LIVE))).toEqual({ code: 'VG_ERR_STORAGE', detail: 'write: ENOSPC' });
    expect(d.list().map((x) => x.name)).toEqual(['test']);
    expect(d.info(TEST_UUID).memoryKiB).toBe(4096n);
    expect(changes).toEqual([]);
    expect(fs.statSync(wal()).size).toBe(size);
    full = false;
    d.setMemory(TEST_UUID, 2048n, LIVE); // space again: writes go through
    expect(open().info(TEST_UUID).memoryKiB).toBe(2048n);
  });

  test('a short write (disk filled mid-record) is cut back; nothing torn stays in the log', () => {
    let short = false;
    const d = open({ fs: { writeSync: (fd, buf) => fs.writeSync(fd, short ? buf.subarray(0, 10) : buf) } });
    d.setMemory(TEST_UUID, 4096n, LIVE);
    const size = fs.statSync(wal()).size;
    short = true;
    expect(storageError(() => d.setMemory(TEST_UUID, 1024n, LIVE)).code).toBe('VG_ERR_STORAGE');
    expect(fs.statSync(wal()).size).toBe(size);
    short = false;
    d.setMemory(TEST_UUID, 2048n, LIVE);
    const warnings: string[] = [];
    expect(open(undefined, (m) => warnings.push(m)).info(TEST_UUID).memoryKiB).toBe(2048n);
    expect(warnings).toEqual([expect.stringMatching(/replayed 2 record/)]);
  });
});
