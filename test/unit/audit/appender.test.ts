// SPDX-License-Identifier: Apache-2.0
// Durability: group commit, acks only after fdatasync, torn-line recovery, fail-closed and self-clearing, log deleted.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AuditAppender } from '../../../src/audit/appender';
import { loadVerifyKey } from '../../../src/audit/keys';
import { verifyFiles } from '../../../src/audit/verify';
import { countingFs, lines, quiet, tempDir, write } from './helpers';
import { describeIf } from '../../helpers/skip';
import { tmpfs } from '../../helpers/tmpfs';

let dir: string;
let file: string;
let keyFile: string;
let verifyKeyFile: string;
const verify = () => verifyFiles([file], { keys: loadVerifyKey(verifyKeyFile), anchor: `${keyFile}.anchor` });

beforeEach(() => {
  dir = tempDir();
  file = path.join(dir, 'log', 'audit.log');
  keyFile = path.join(dir, 'keys', 'audit.key');
  verifyKeyFile = path.join(dir, 'lib', 'audit-verify.key');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test('group commit: 200 concurrent appends share few fdatasyncs; each resolves only after its sync returned', async () => {
  const cfs = countingFs();
  const a = await AuditAppender.open({ file, keyFile, fs: cfs, log: quiet() });
  let release!: () => void;
  let gate = new Promise<void>((r) => (release = r));
  cfs.onSync = () => gate; // hold the first sync until we say so
  const resolvedAt: number[] = [];
  const ps = Array.from({ length: 200 }, (_, i) => a.append(write(i)).then((d) => ((resolvedAt[i] = cfs.durableSyncs), d)));
  await new Promise((r) => setTimeout(r, 20));
  expect(resolvedAt.filter((x) => x !== undefined)).toHaveLength(0); // nothing acknowledged before the sync returns
  expect(cfs.syncs).toBe(1);
  cfs.onSync = undefined;
  release();
  gate = Promise.resolve();
  const ds = await Promise.all(ps);
  expect(ds.map((d) => d.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i)); // seqs in call order
  expect(resolvedAt.every((n) => n >= 1)).toBe(true);
  expect(cfs.syncs).toBeLessThanOrEqual(3); // the first record alone, then the rest in one or two batches
  expect(a.stats()).toMatchObject({ records: 200, batches: cfs.syncs, available: true });
  await a.close();
  expect(verify()).toMatchObject({ ok: true, records: 200 });
});

test('16 concurrent writers, intent then outcome each: throughput printed, all durable and verified', async () => {
  const a = await AuditAppender.open({ file, keyFile, log: quiet() });
  const perWriter = 250;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: 16 }, async (_, w) => {
      for (let i = 0; i < perWriter; i++) {
        await a.append(write(w * perWriter + i));
        await a.append({ ...write(w * perWriter + i), kind: 'outcome', decision: undefined, outcome: { result: 'success' } });
      }
    }),
  );
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const st = a.stats();
  await a.close();
  const n = 16 * perWriter;
  process.stdout.write(
    `audit: 16 writers: ${n} audited writes (${2 * n} records) in ${s.toFixed(2)} s = ${Math.round(n / s)} writes/s, ${Math.round((2 * n) / s)} records/s, ${st.batches} fdatasyncs (${((2 * n) / st.batches).toFixed(1)} records/sync)\n`,
  );
  expect(verify()).toMatchObject({ ok: true, records: 2 * n });
});

test('torn last line after a crash: truncated at open, recovery recorded, chain continues', async () => {
  const a = await AuditAppender.open({ file, keyFile, log: quiet() });
  for (let i = 0; i < 5; i++) await a.append(write(i));
  await a.close();
  const whole = fs.statSync(file).size;
  const torn = '{"v":1,"seq":5,"ts":"2026-';
  fs.appendFileSync(file, torn); // kill -9 in the middle of a write
  const b = await AuditAppender.open({ file, keyFile, log: quiet() });
  await b.append(write(6));
  await b.close();
  const recs = lines(file).map((l) => JSON.parse(l));
  expect(recs[5]).toMatchObject({ seq: 5, kind: 'event', event: { name: 'recovered-torn-line', detail: { bytesDropped: torn.length, offset: whole } } });
  expect(recs[6]).toMatchObject({ seq: 6, requestId: 'r-6' });
  expect(verify()).toMatchObject({ ok: true, records: 7 });
});

test('a second appender on the same log is refused while the first holds it', async () => {
  const a = await AuditAppender.open({ file, keyFile, log: quiet() });
  await expect(AuditAppender.open({ file, keyFile, log: quiet() })).rejects.toMatchObject({ code: expect.stringMatching(/VG_ERR_AUDIT_LOCKED/) });
  await a.close();
  const b = await AuditAppender.open({ file, keyFile, log: quiet() });
  await b.close();
});

test('a lock left by a dead process is taken over', async () => {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(`${file}.lock`, '999999999\n');
  const a = await AuditAppender.open({ file, keyFile, log: quiet() });
  await a.close();
  expect(fs.existsSync(`${file}.lock`)).toBe(false);
});

test('a last record that is not a sealed record refuses to open (fail closed at start-up)', async () => {
  const a = await AuditAppender.open({ file, keyFile, log: quiet() });
  await a.append(write(0));
  await a.close();
  const good = fs.readFileSync(file, 'utf8');
  fs.writeFileSync(file, good.replace(/,"mac":"[0-9a-f]{64}"\}\n$/, '}\n'));
  await expect(AuditAppender.open({ file, keyFile, log: quiet() })).rejects.toMatchObject({ code: 'VG_ERR_AUDIT_CORRUPT' });
  // A re-sealed-looking edit cannot be checked at open after a clean stop (that epoch's key is gone by design): the
  // chain continues and verify, with the verification key, names the record.
  fs.writeFileSync(file, good.replace('alice', 'mallory').replace('bob', 'mallory'));
  const b = await AuditAppender.open({ file, keyFile, log: quiet() });
  await b.close();
  const v = verifyFiles([file], { keys: loadVerifyKey(path.join(path.dirname(path.dirname(keyFile)), 'lib', 'audit-verify.key')), anchor: null });
  expect(v.problem).toMatchObject({ seq: expect.any(Number) });
  expect(v.problem?.message).toMatch(/edited|forged/);
});

test.each(['ENOSPC', 'EIO'])('write fails with %s: append rejects with VG_ERR_AUDIT_UNAVAILABLE, nothing is acknowledged, it clears itself', async (code) => {
  const cfs = countingFs();
  const msgs: string[] = [];
  const a = await AuditAppender.open({ file, keyFile, fs: cfs, log: (m) => msgs.push(m) });
  await a.append(write(0));
  cfs.fail.write = code;
  const rs = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => a.append(write(i + 1))));
  expect(rs.every((r) => r.status === 'rejected')).toBe(true);
  expect((rs[0] as PromiseRejectedResult).reason).toMatchObject({
    code: 'VG_ERR_AUDIT_UNAVAILABLE',
    message: `operation failed: audit log unavailable (${code}); write refused`,
  });
  expect(a.available).toBe(false);
  expect(msgs.some((m) => m.startsWith(`AUDIT LOG UNAVAILABLE (${code}`))).toBe(true);
  expect(lines(file)).toHaveLength(1); // the partial write was cut off
  cfs.fail.write = undefined;
  const d = await a.append(write(9));
  expect(a.available).toBe(true);
  expect(msgs.some((m) => /writable again/.test(m))).toBe(true);
  await a.close();
  const recs = lines(file).map((l) => JSON.parse(l));
  expect(recs.map((r) => r.requestId ?? r.event?.name)).toEqual(['r-0', 'r-9', 'audit-restored']);
  expect(d.seq).toBe(1);
  expect(recs[2].event.detail).toMatchObject({ reason: code, refused: 5 });
  expect(verify()).toMatchObject({ ok: true });
});

test('fdatasync fails (EIO): rejected, bytes cut off, later appends fine', async () => {
  const cfs = countingFs();
  const a = await AuditAppender.open({ file, keyFile, fs: cfs, log: quiet() });
  cfs.fail.fdatasync = 'EIO';
  await expect(a.append(write(0))).rejects.toMatchObject({ code: 'VG_ERR_AUDIT_UNAVAILABLE' });
  expect(fs.statSync(file).size).toBe(0);
  cfs.fail.fdatasync = undefined;
  await a.append(write(1));
  await a.close();
  expect(verify()).toMatchObject({ ok: true, records: 2 });
});

test('log deleted under the appender: the write is refused, then a new file continues the chain, and verify shows the gap', async () => {
  const msgs: string[] = [];
  const a = await AuditAppender.open({ file, keyFile, log: (m) => msgs.push(m) });
  for (let i = 0; i < 3; i++) await a.append(write(i));
  fs.rmSync(file);
  await expect(a.append(write(3))).rejects.toMatchObject({ code: 'VG_ERR_AUDIT_UNAVAILABLE', message: expect.stringContaining('log file missing') });
  expect(msgs[0]).toMatch(/AUDIT LOG UNAVAILABLE \(log file missing/);
  const d = await a.append(write(4));
  await a.close();
  const recs = lines(file).map((l) => JSON.parse(l));
  expect(recs[0]).toMatchObject({ seq: 3, event: { name: 'log-recreated', detail: { continuesAfterSeq: 2 } } });
  expect(d.seq).toBe(4);
  expect(verify().problem).toMatchObject({ kind: 'deleted', seq: 0 });
});

test('log deleted while the daemon was down: the anchor keeps the evidence (log-gap event)', async () => {
  const a = await AuditAppender.open({ file, keyFile, log: quiet() });
  for (let i = 0; i < 4; i++) await a.append(write(i));
  await a.close();
  fs.rmSync(file);
  const b = await AuditAppender.open({ file, keyFile, log: quiet() });
  await b.append(write(9));
  await b.close();
  const recs = lines(file).map((l) => JSON.parse(l));
  expect(recs[0]).toMatchObject({ seq: 4, event: { name: 'log-gap', detail: { missingFrom: 0, missingTo: 3 } } });
});

test('records are handed to onDurable (the winston copy) only after they are durable', async () => {
  const cfs = countingFs();
  const seen: Array<[number, number]> = [];
  const a = await AuditAppender.open({ file, keyFile, fs: cfs, log: quiet(), onDurable: (_l, r) => seen.push([r.seq, cfs.durableSyncs]) });
  await Promise.all([a.append(write(0)), a.append(write(1))]);
  cfs.fail.write = 'ENOSPC';
  await a.append(write(2)).catch(() => undefined);
  await a.close();
  expect(seen.map((s) => s[0])).toEqual([0, 1]);
  expect(seen.every(([, syncs]) => syncs >= 1)).toBe(true);
});

// Fail-closed on a real full filesystem: a 64 KiB tmpfs, filled up, then freed.
describeIf(tmpfs(), 'on a real full tmpfs', () => {
  let mnt = '';
  let mounted = false;
  beforeAll(() => {
    mnt = tempDir('vg-audit-tmpfs-');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt]); // the probe said it works: a failure here is one
    mounted = true;
  });
  afterAll(() => {
    if (mounted) execFileSync('umount', [mnt]);
    fs.rmSync(mnt, { recursive: true, force: true });
  });

  test('disk full: appends reject with the stable code and nothing is acknowledged; freeing space restores them', async () => {
    const logFile = path.join(mnt, 'audit.log');
    const msgs: string[] = [];
    const a = await AuditAppender.open({ file: logFile, keyFile, log: (m) => msgs.push(m) });
    await a.append(write(0));
    // Fill the filesystem to the last byte.
    const filler = path.join(mnt, 'filler');
    const fd = fs.openSync(filler, 'w');
    try {
      for (;;) fs.writeSync(fd, Buffer.alloc(1024));
    } catch (e) {
      expect((e as NodeJS.ErrnoException).code).toBe('ENOSPC');
    }
    try {
      for (;;) fs.writeSync(fd, Buffer.alloc(1));
    } catch {
      // full
    }
    fs.closeSync(fd);
    const acked: number[] = [];
    const rs = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => a.append(write(i + 1)).then((d) => acked.push(d.seq))));
    expect(acked).toEqual([]);
    for (const r of rs)
      expect(r).toMatchObject({
        status: 'rejected',
        reason: { code: 'VG_ERR_AUDIT_UNAVAILABLE', message: 'operation failed: audit log unavailable (ENOSPC); write refused' },
      });
    expect(msgs.filter((m) => m.startsWith('AUDIT LOG UNAVAILABLE (ENOSPC'))).toHaveLength(1);
    expect(lines(logFile)).toHaveLength(1);
    fs.rmSync(filler);
    const d = await a.append(write(20));
    expect(d.seq).toBe(1);
    await a.close();
    const recs = lines(logFile).map((l) => JSON.parse(l));
    expect(recs.map((r) => r.requestId ?? r.event?.name)).toEqual(['r-0', 'r-20', 'audit-restored']);
    expect(verifyFiles([logFile], { keys: loadVerifyKey(verifyKeyFile), anchor: `${keyFile}.anchor` })).toMatchObject({ ok: true, records: 3 });
  });
});
