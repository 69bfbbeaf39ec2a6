// SPDX-License-Identifier: Apache-2.0
// The helper's journal on a disk that refuses writes (ENOSPC, short writes), its group commit, a failed fdatasync, and
// rotation with the request-id index (replays still refused across files and restarts, in bounded memory).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { crossCheckStreams } from '../../../src/audit/cross-check';
import {
  FingerprintSet,
  HelperJournal,
  type JournalBegin,
  type JournalFs,
  type JournalReadState,
  type JournalRecord,
  journalFiles,
  readJournal,
  streamJournal,
} from '../../../src/audit/journal';
import type { AuditRecord } from '../../../src/audit/schema';
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
  op: 'DOMAIN_WRITE_REQ.setMemory',
  uuid: '6695eb01f6a4871850ddf6b7a1e1b0a3',
  user: 'alice',
  tenant: 'acme',
  requestId,
  digest: 'd'.repeat(64),
});
const run = (j: HelperJournal, id: string, result = 'ok'): void => j.end(j.begin(w(id)), 'DOMAIN_WRITE_REQ.setMemory', id, { result });
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
    j.end(b, 'DOMAIN_WRITE_REQ.setMemory', 'r-1', { result: 'ok' }); // never throws
    expect(j.stats.pendingEnds).toBe(1);
    expect(warnings.join('\n')).toMatch(/JOURNAL RESULT NOT WRITTEN YET for DOMAIN_WRITE_REQ\.setMemory request r-1 \(ENOSPC\)/);
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
      j.end(b, 'DOMAIN_WRITE_REQ.setMemory', 'r-1', { result: 'VG_ERR_STORAGE' });
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
    // Wait for the failure itself, not a fixed time: a loaded machine may take longer than any fixed sleep.
    for (let i = 0; i < 500 && fatal.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(fatal.map((e) => e.message)).toEqual(['fdatasync of the helper journal failed: EIO: i/o error, fdatasync']);
    expect(released).toBe(false);
    expect(() => j.begin(w('r-2'))).toThrow(/fdatasync of the helper journal failed/);
  });
});

describe('rotation', () => {
  test('past maxBytes the journal continues in a new file chained to the last; every request id is still refused, across restarts, from the index', async () => {
    const j = new HelperJournal(jf, { maxBytes: 4096, keepFiles: 0 });
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

  test("an index chunk that could not be written is made up at the next start, though later files' chunks were written", () => {
    let refuse = 1; // the first rotated file's chunk
    const j = new HelperJournal(jf, {
      maxBytes: 4096,
      keepFiles: 0,
      sync: 'none',
      warn: () => {},
      fs: {
        writeSync: (fd, buf) => {
          if (buf.readUInt32BE(0) === 0x56474a31 && refuse-- > 0) throw enospc();
          return fs.writeSync(fd, buf);
        },
      },
    });
    for (let i = 0; i < 60; i++) run(j, `r-${i}`);
    j.close();
    expect(journalFiles(jf).length).toBeGreaterThan(3);
    // The next start reads the first rotated file (its chunk is missing) and writes its chunk: after that the rotated
    // files may be archived away and every id is still known from the index alone.
    new HelperJournal(jf, { maxBytes: 4096, keepFiles: 0 }).close();
    const files = journalFiles(jf).slice(0, -1);
    for (const f of files) fs.renameSync(f, `${f}.archived`);
    const j2 = new HelperJournal(jf, { maxBytes: 4096, keepFiles: 0 });
    for (let i = 0; i < 60; i++) expect(j2.seen(`r-${i}`)).toBe(true);
    j2.close();
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

describe('retention', () => {
  const firstOf = (f: string): JournalRecord => JSON.parse(fs.readFileSync(f, 'utf8').split('\n')[0]) as JournalRecord;
  const state = (): JournalReadState => ({ problem: null, records: 0, files: journalFiles(jf) });
  const read = (): { records: JournalRecord[]; st: JournalReadState } => {
    const st = state();
    return { records: [...streamJournal(st.files, st)], st };
  };

  test('beyond keepFiles the oldest rotated files go, after a durable pruned record naming them; what is left verifies', () => {
    // The files a pruned record names must still exist when it is written (it is made durable before they are deleted).
    const named: boolean[] = [];
    const j = new HelperJournal(jf, {
      maxBytes: 4096,
      keepFiles: 2,
      sync: 'none',
      fs: {
        writeSync: (fd, buf) => {
          const m = /"files":"([^"]+)"/.exec(buf.toString());
          if (m) named.push(...m[1].split(',').map((n) => fs.existsSync(path.join(dir, n))));
          return fs.writeSync(fd, buf);
        },
      },
    });
    for (let i = 0; i < 150; i++) run(j, `r-${i}`);
    j.close();
    const files = journalFiles(jf);
    expect(files).toHaveLength(3); // two rotated files and the active one
    expect(named.length).toBeGreaterThan(3);
    expect(named.every(Boolean)).toBe(true);
    const start = firstOf(files[0]);
    expect(start.seq).toBeGreaterThan(0);
    const { records, st } = read();
    expect(st.problem).toBeNull();
    expect(st.prunedThrough).toBe(start.seq - 1);
    const pruned = records.filter((r) => r.phase === 'pruned');
    expect(pruned[pruned.length - 1]).toMatchObject({ op: 'journal-pruned', throughSeq: start.seq - 1, throughHash: start.prev });
    expect(pruned[pruned.length - 1].files).toMatch(/^helper-journal\.log\.\d{12}$/);
    // Consecutive seqs from the first kept record on.
    expect(records.map((r) => r.seq)).toEqual([...Array(records.length).keys()].map((k) => k + start.seq));
    // Pruned request ids are still refused after a restart: the index kept them.
    const j2 = new HelperJournal(jf, { maxBytes: 4096, keepFiles: 2 });
    for (let i = 0; i < 150; i++) expect(j2.seen(`r-${i}`)).toBe(true);
    j2.close();
  });

  test('a break before the pruned record is reported; a start no pruned record accounts for is reported before any later break', () => {
    const j = new HelperJournal(jf, { maxBytes: 4096, keepFiles: 2, sync: 'none' });
    for (let i = 0; i < 150; i++) run(j, `r-${i}`);
    j.close();
    const files = journalFiles(jf);
    const accounts = (f: string): boolean => fs.readFileSync(f, 'utf8').includes(`"throughSeq":${firstOf(f).seq - 1},`);
    expect(accounts(files[0])).toBe(false); // the record accounting for its start comes later
    expect(files.slice(1).some((f) => fs.readFileSync(f, 'utf8').includes(`"throughSeq":${firstOf(files[0]).seq - 1},`))).toBe(true);
    // A break before that record is reported once the record has accounted for the start.
    const ls = fs.readFileSync(files[0], 'utf8').split('\n');
    ls[2] = ls[2].replace(/"requestId":"r-(\d+)"/, '"requestId":"x-$1"');
    fs.writeFileSync(files[0], ls.join('\n'));
    expect(read().st.problem).toMatch(new RegExp(`${files[0]}:4: journal seq \\d+ does not follow the record before it`));
    // Deleted by hand beyond what retention recorded: the first kept file's start is not the one a record names, and it
    // is what is reported, though the break in files[1]'s successor chain comes later in the stream.
    fs.rmSync(files[0]);
    const l1 = fs.readFileSync(files[1], 'utf8').split('\n');
    l1[2] = l1[2].replace(/"requestId":"r-(\d+)"/, '"requestId":"x-$1"');
    fs.writeFileSync(files[1], l1.join('\n'));
    expect(read().st.problem).toMatch(/the journal starts at seq \d+, chained to a record that is not there \(earlier journal files missing\)/);
  });

  test('an edited pruned record breaks the chain', () => {
    const j = new HelperJournal(jf, { maxBytes: 4096, keepFiles: 2, sync: 'none' });
    for (let i = 0; i < 150; i++) run(j, `r-${i}`);
    j.close();
    const files = journalFiles(jf);
    const f = files.find((x) => fs.readFileSync(x, 'utf8').includes('"phase":"pruned"'))!;
    fs.writeFileSync(
      f,
      fs.readFileSync(f, 'utf8').replace(/"throughSeq":(\d+)/, (_m, n: string) => `"throughSeq":${Number(n) + 1}`),
    );
    expect(read().st.problem).toMatch(/journal seq \d+ does not follow the record before it/);
  });

  test('a journal without retention (keepFiles 0) keeps every file', () => {
    const j = new HelperJournal(jf, { maxBytes: 4096, keepFiles: 0, sync: 'none' });
    for (let i = 0; i < 150; i++) run(j, `r-${i}`);
    j.close();
    expect(journalFiles(jf).length).toBeGreaterThan(10);
    expect(read().records.some((r) => r.phase === 'pruned')).toBe(false);
  });

  test('cross-check over a pruned journal: writes older than its first kept record are not checkable, not failures', () => {
    let t = Date.parse('2026-01-01T00:00:00Z');
    const tick = (): Date => new Date((t += 1000));
    const j = new HelperJournal(jf, { maxBytes: 4096, keepFiles: 2, sync: 'none', now: tick });
    const audit: AuditRecord[] = [];
    let seq = 0;
    const intent = (rid: string): AuditRecord =>
      ({
        v: 1,
        seq: seq++,
        ts: tick().toISOString(),
        kind: 'intent',
        requestId: rid,
        who: { user: 'alice', tenant: 'acme' },
        what: { procedure: 'domainSetMemory', helperOp: 'DOMAIN_WRITE_REQ.setMemory', digest: 'd'.repeat(64) },
        decision: { result: 'allow' },
      }) as unknown as AuditRecord;
    const success = (rid: string): AuditRecord =>
      ({ v: 1, seq: seq++, ts: tick().toISOString(), kind: 'outcome', requestId: rid, outcome: { result: 'success' } }) as unknown as AuditRecord;
    for (let i = 0; i < 150; i++) {
      const rid = `r-${i}`;
      const rec = intent(rid);
      audit.push(rec);
      run(j, rid);
      audit.push(success(rid));
    }
    j.close();
    const start = firstOf(journalFiles(jf)[0]);
    const check = () => {
      const st = state();
      const r = crossCheckStreams(
        () => audit,
        () => streamJournal(st.files, st),
      );
      return { r, st };
    };
    const { r, st } = check();
    expect(st.problem).toBeNull();
    expect(r.problems).toEqual([]);
    // Every write whose begin was pruned (its intent older than the journal's first kept record) is counted, not failed.
    const older = audit.filter((a) => a.kind === 'intent' && a.ts <= start.ts).length;
    expect(older).toBeGreaterThan(10);
    expect(r.uncheckable).toBe(older);
    // A recent audited success the journal lacks is still a failure; an old one is not checkable.
    audit.push(intent('r-new'), success('r-new'));
    const late = check().r;
    expect(late.problems.map((p) => p.message)).toEqual([
      expect.stringMatching(/request r-new: the front end recorded DOMAIN_WRITE_REQ\.setMemory as a success, but the helper journal has no record/),
    ]);
    expect(late.uncheckable).toBe(older);
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
