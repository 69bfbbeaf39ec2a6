// SPDX-License-Identifier: Apache-2.0
// The helper's journal on a disk that refuses writes (ENOSPC, short writes), its group commit, a failed fdatasync, and
// rotation with the request-id index (replays still refused across files and restarts, in bounded memory).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FingerprintSet, HelperJournal, type JournalBegin, type JournalFs, journalFiles, readJournal } from '../../../src/audit/journal';
import { tempDir } from './helpers';

let dir: string;
let jf: string;
beforeEach(() => {
  dir = tempDir();
  jf = path.join(dir, 'helper-journal.log');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const enospc = (): Error => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' });
const w = (requestId: string): JournalBegin => ({
  op: 'DOMAIN_SET_MEMORY_REQ',
  uuid: '6695eb01f6a4871850ddf6b7a1e1b0a3',
  user: 'alice',
  tenant: 'acme',
  requestId,
  digest: 'd'.repeat(64),
});
const run = (j: HelperJournal, id: string, result = 'ok'): void => j.end(j.begin(w(id)), 'DOMAIN_SET_MEMORY_REQ', id, { result });
const durable = (j: HelperJournal): Promise<void> => new Promise((r) => j.whenDurable(r));

// A disk that can be told to refuse writes or to take only part of one.
function disk(): { fs: Partial<JournalFs>; mode: { full: boolean; short: boolean } } {
  const mode = { full: false, short: false };
  return {
    mode,
    fs: {
      writeSync: (fd, buf) => {
        if (mode.full) throw enospc();
        return fs.writeSync(fd, mode.short ? buf.subarray(0, 17) : buf);
      },
    },
  };
}

describe('a write the disk refuses', () => {
  test('a short begin line is cut back and refused; sequence, chain and request id stay free; the next write continues the chain', () => {
    const d = disk();
    const j = new HelperJournal(jf, { sync: 'none', fs: d.fs, warn: () => {} });
    run(j, 'r-1');
    const size = fs.statSync(jf).size;
    d.mode.short = true;
    expect(() => j.begin(w('r-2'))).toThrow(/ENOSPC: short write to the helper journal \(17 of \d+ bytes\)/);
    expect(fs.statSync(jf).size).toBe(size); // nothing torn left behind
    expect(j.seen('r-2')).toBe(false); // never begun: the front end may send it again
    d.mode.short = false;
    run(j, 'r-2');
    j.close();
    const { records, problem } = readJournal(jf);
    expect(problem).toBeNull();
    expect(records.map((r) => [r.seq, r.phase, r.requestId])).toEqual([
      [0, 'begin', 'r-1'],
      [1, 'end', 'r-1'],
      [2, 'begin', 'r-2'],
      [3, 'end', 'r-2'],
    ]);
  });

  test('a line left torn because the cut-back also failed is cut before the next append', () => {
    const d = disk();
    let truncFails = false;
    const j = new HelperJournal(jf, {
      sync: 'none',
      warn: () => {},
      fs: {
        ...d.fs,
        ftruncateSync: (fd, len) =>
          truncFails
            ? (() => {
                throw enospc();
              })()
            : fs.ftruncateSync(fd, len),
      },
    });
    run(j, 'r-1');
    const size = fs.statSync(jf).size;
    d.mode.short = true;
    truncFails = true;
    expect(() => j.begin(w('r-2'))).toThrow(/short write/);
    expect(fs.statSync(jf).size).toBe(size + 17); // torn for now
    expect(() => j.begin(w('r-3'))).toThrow(/ENOSPC/); // still cannot cut: refused, nothing appended
    d.mode.short = false;
    truncFails = false;
    run(j, 'r-3');
    j.close();
    expect(readJournal(jf).problem).toBeNull();
    expect(readJournal(jf).records.map((r) => r.seq)).toEqual([0, 1, 2, 3]);
  });

  test('an end line the disk refuses waits in memory; begins are refused until it is written, then it lands first', async () => {
    const d = disk();
    const warnings: string[] = [];
    const j = new HelperJournal(jf, { sync: 'none', fs: d.fs, warn: (m) => warnings.push(m) });
    const b = j.begin(w('r-1'));
    d.mode.full = true;
    j.end(b, 'DOMAIN_SET_MEMORY_REQ', 'r-1', { result: 'ok' }); // never throws
    expect(j.stats.pendingEnds).toBe(1);
    expect(warnings.join('\n')).toMatch(/JOURNAL RESULT NOT WRITTEN YET for DOMAIN_SET_MEMORY_REQ request r-1 \(ENOSPC\)/);
    expect(() => j.begin(w('r-2'))).toThrow(/ENOSPC/);
    d.mode.full = false;
    run(j, 'r-2');
    expect(j.stats.pendingEnds).toBe(0);
    j.close();
    const { records, problem } = readJournal(jf);
    expect(problem).toBeNull();
    expect(records.map((r) => [r.seq, r.phase, r.requestId, r.of])).toEqual([
      [0, 'begin', 'r-1', undefined],
      [1, 'end', 'r-1', 0],
      [2, 'begin', 'r-2', undefined],
      [3, 'end', 'r-2', 2],
    ]);
  });

  test('the retry timer writes a pending end line once the disk takes it, with no further write', async () => {
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick'] });
    try {
      const d = disk();
      const warnings: string[] = [];
      const j = new HelperJournal(jf, { sync: 'none', fs: d.fs, warn: (m) => warnings.push(m) });
      const b = j.begin(w('r-1'));
      d.mode.full = true;
      j.end(b, 'DOMAIN_SET_MEMORY_REQ', 'r-1', { result: 'VG_ERR_STORAGE' });
      jest.advanceTimersByTime(3000);
      expect(j.stats.pendingEnds).toBe(1);
      d.mode.full = false;
      jest.advanceTimersByTime(1000);
      expect(j.stats.pendingEnds).toBe(0);
      expect(warnings).toContain('journal writable again: pending results written');
      j.close();
      expect(readJournal(jf).records[1]).toMatchObject({ phase: 'end', of: 0, result: 'VG_ERR_STORAGE' });
    } finally {
      jest.useRealTimers();
    }
  });
});

describe('group commit', () => {
  test('the lines of one event-loop turn share one fdatasync; whenDurable fires after it, not before', async () => {
    let syncs = 0;
    const j = new HelperJournal(jf, { fs: { fdatasync: (fd, cb) => (syncs++, fs.fdatasync(fd, cb)) } });
    const ran: number[] = [];
    for (let i = 0; i < 50; i++) {
      j.begin(w(`r-${i}`));
      j.whenDurable(() => ran.push(i));
    }
    expect(ran).toEqual([]);
    await durable(j);
    expect(ran).toHaveLength(50);
    expect(syncs).toBe(1);
    j.close();
  });

  test('a failed fdatasync is fatal: nothing waiting is released and the journal refuses further lines', async () => {
    const fatal: Error[] = [];
    const j = new HelperJournal(jf, {
      onFatal: (e) => fatal.push(e),
      fs: { fdatasync: (_fd, cb) => setImmediate(() => cb(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }))) },
    });
    let released = false;
    j.begin(w('r-1'));
    j.whenDurable(() => (released = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(fatal.map((e) => e.message)).toEqual(['fdatasync of the helper journal failed: EIO: i/o error, fdatasync']);
    expect(released).toBe(false);
    expect(() => j.begin(w('r-2'))).toThrow(/fdatasync of the helper journal failed/);
  });
});

describe('rotation', () => {
  test('past maxBytes the journal continues in a new file chained to the last; every request id is still refused, across restarts, from the index', async () => {
    const j = new HelperJournal(jf, { maxBytes: 4096 });
    for (let i = 0; i < 100; i++) {
      run(j, `r-${i}`);
      await durable(j);
    }
    j.close();
    const files = journalFiles(jf);
    expect(files.length).toBeGreaterThan(5);
    expect(files.slice(0, -1).every((f) => /\.\d{12}$/.test(f))).toBe(true);
    for (const f of files.slice(0, -1)) expect(fs.statSync(f).size).toBeLessThan(4096 + 400);
    const { records, problem } = readJournal(jf);
    expect(problem).toBeNull();
    expect(records.map((r) => r.seq)).toEqual([...Array(200).keys()]);
    // Each rotated file is named after its first record.
    for (const f of files.slice(0, -1)) expect(JSON.parse(fs.readFileSync(f, 'utf8').split('\n')[0]).seq).toBe(Number(f.slice(-12)));

    // A restart knows every id: rotated ones from the index alone (the rotated files may be archived away).
    for (const f of files.slice(0, -1)) fs.renameSync(f, `${f}.archived`);
    const j2 = new HelperJournal(jf, { maxBytes: 4096 });
    for (let i = 0; i < 100; i++) expect(j2.seen(`r-${i}`)).toBe(true);
    expect(j2.seen('r-100')).toBe(false);
    j2.close();
    for (const f of files.slice(0, -1)) fs.renameSync(`${f}.archived`, f);

    // Without the index, the rotated files are scanned and the index is written again.
    fs.rmSync(`${jf}.ids`);
    const j3 = new HelperJournal(jf, { maxBytes: 4096 });
    for (let i = 0; i < 100; i++) expect(j3.seen(`r-${i}`)).toBe(true);
    j3.close();
    expect(fs.statSync(`${jf}.ids`).size).toBeGreaterThan(0);

    // A torn last index chunk (crash while appending it) is cut off; the scan covers its file.
    fs.appendFileSync(`${jf}.ids`, Buffer.from([0x56, 0x47, 0x4a, 0x31, 0, 0, 0, 9]));
    const j4 = new HelperJournal(jf, { maxBytes: 4096, warn: () => {} });
    for (let i = 0; i < 100; i++) expect(j4.seen(`r-${i}`)).toBe(true);
    j4.close();
  });

  test('a restart right after a rotation (empty active file) continues the sequence and chain from the rotated file', async () => {
    const j = new HelperJournal(jf, { maxBytes: 4096, sync: 'none' });
    let i = 0;
    while (journalFiles(jf).length < 2 || fs.statSync(jf).size > 0) run(j, `r-${i++}`);
    // rotation happened on the last append: the active file is empty
    expect(fs.statSync(jf).size).toBe(0);
    j.close();
    const j2 = new HelperJournal(jf, { maxBytes: 4096, sync: 'none' });
    run(j2, 'after');
    j2.close();
    const { records, problem } = readJournal(jf);
    expect(problem).toBeNull();
    expect(records[records.length - 1]).toMatchObject({ seq: 2 * i + 1, requestId: 'after' });
  });

  test('a rotated file deleted from the middle is reported', async () => {
    const j = new HelperJournal(jf, { maxBytes: 4096, sync: 'none' });
    for (let i = 0; i < 60; i++) run(j, `r-${i}`);
    j.close();
    const files = journalFiles(jf);
    fs.rmSync(files[1]);
    expect(readJournal(jf).problem).toMatch(/journal seq \d+ does not follow the record before it/);
    fs.rmSync(files[0]);
    expect(readJournal(jf).problem).toMatch(/the journal starts at seq \d+, chained to a record that is not there \(earlier journal files missing\)/);
  });
});

test('request-id fingerprints: exact for what was added, at most 16 bytes per id at a million ids', () => {
  const s = new FingerprintSet();
  for (let i = 0; i < 1_000_000; i++) s.add((i * 2654435761) >>> 0, i + 1);
  expect(s.size).toBe(1_000_000);
  for (let i = 0; i < 1_000_000; i += 997) expect(s.has((i * 2654435761) >>> 0, i + 1)).toBe(true);
  expect(s.has(1, 0)).toBe(false);
  expect(s.bytes / s.size).toBeLessThan(17);
});
