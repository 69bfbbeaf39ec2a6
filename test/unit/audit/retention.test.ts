// SPDX-License-Identifier: Apache-2.0
// Rotation with retention: the oldest rotated files are pruned only after a durable log-pruned record names them, so
// verify of what is left passes without --allow-partial, while a deletion no record accounts for is still reported.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AuditAppender } from '../../../src/audit/appender';
import { type AuditFs, logFiles, nodeFs } from '../../../src/audit/fs-layer';
import { loadVerifyKey } from '../../../src/audit/keys';
import { type AuditRecord, lineHash } from '../../../src/audit/schema';
import { verifyFiles } from '../../../src/audit/verify';
import { DEFAULTS, resolveConfig } from '../../../src/common/config';
import { lines, quiet, tempDir, write } from './helpers';

let dir: string;
let file: string;
let keyFile: string;
let verifyKeyFile: string;

beforeEach(() => {
  dir = tempDir('vg-retention-');
  file = path.join(dir, 'log', 'audit.log');
  keyFile = path.join(dir, 'keys', 'audit.key');
  verifyKeyFile = path.join(dir, 'lib', 'audit-verify.key');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const verify = (files = logFiles(file), allowPartial = false) =>
  verifyFiles(files, { keys: loadVerifyKey(verifyKeyFile), anchor: `${keyFile}.anchor`, allowPartial });
const recsOf = (files: string[]): AuditRecord[] => files.flatMap((f) => lines(f).map((l) => JSON.parse(l) as AuditRecord));
const firstSeqOf = (f: string): number => (JSON.parse(lines(f)[0]) as AuditRecord).seq;

async function makeLog(n: number, keepFiles: number, f: AuditFs = nodeFs): Promise<void> {
  const a = await AuditAppender.open({ file, keyFile, log: quiet(), maxBytes: 4096, keepFiles, epochRecords: 10, fs: f });
  for (let i = 0; i < n; i++) await a.append(write(i));
  await a.close();
}

test('the chain keeps across files and across prunes; what is left verifies without --allow-partial', async () => {
  await makeLog(80, 2);
  const files = logFiles(file);
  expect(files).toHaveLength(3); // two rotated files kept, and the active one
  const start = firstSeqOf(files[0]);
  expect(start).toBeGreaterThan(0);
  expect(path.basename(files[0])).toBe(`audit.log.${String(start).padStart(12, '0')}`);
  const recs = recsOf(files);
  const pruned = recs.filter((r) => r.event?.name === 'log-pruned');
  expect(pruned.length).toBeGreaterThan(0);
  const lastPrune = pruned[pruned.length - 1];
  expect(lastPrune.event!.detail).toMatchObject({ throughSeq: start - 1, throughHash: recs[0].prev });
  // Each file opens with its log-rotated record, chained to the last line of the file before it.
  for (let i = 1; i < files.length; i++) {
    expect(JSON.parse(lines(files[i])[0])).toMatchObject({ event: { name: 'log-rotated' } });
    expect(JSON.parse(lines(files[i])[0]).prev).toBe(lineHash(lines(files[i - 1]).pop()!));
  }
  const r = verify();
  expect(r).toMatchObject({ ok: true, firstSeq: start, prunedThrough: { seq: start - 1, recordSeq: lastPrune.seq } });
  expect(r.lastSeq).toBe(recs[recs.length - 1].seq);
});

test('the log-pruned record is durable before the files it names are deleted', async () => {
  const seen: Array<{ files: string[]; existed: boolean[] }> = [];
  const f: AuditFs = {
    ...nodeFs,
    async write(fd, buf, pos) {
      const m = /"name":"log-pruned","detail":\{"files":"([^"]+)"/.exec(buf.toString());
      if (m) {
        const names = m[1].split(',');
        seen.push({ files: names, existed: names.map((n) => fs.existsSync(path.join(dir, 'log', n))) });
      }
      return nodeFs.write(fd, buf, pos);
    },
  };
  await makeLog(60, 1, f);
  expect(seen.length).toBeGreaterThan(0);
  for (const s of seen) {
    expect(s.existed.every(Boolean)).toBe(true); // still there when the record naming them was written
    for (const n of s.files) expect(fs.existsSync(path.join(dir, 'log', n))).toBe(false); // gone afterwards
  }
  expect(verify()).toMatchObject({ ok: true });
});

test('a retained file deleted by hand (no record accounts for it) is reported', async () => {
  await makeLog(80, 2);
  const files = logFiles(file);
  const gone = firstSeqOf(files[0]);
  const next = firstSeqOf(files[1]);
  fs.rmSync(files[0]);
  const r = verify();
  expect(r.problem).toMatchObject({ kind: 'deleted', seq: 0 });
  expect(r.problem!.message).toMatch(
    new RegExp(`seqs 0\\.\\.${next - 1} are missing before seq ${next} \\(deleted; no log-pruned record accounts for them\\)`),
  );
  expect(gone).toBeLessThan(next);
  // --allow-partial (archived copies) still takes it.
  expect(verify(logFiles(file), true)).toMatchObject({ ok: true });
});

test('without retention (keepFiles 0) nothing is pruned; deleting the oldest file is reported', async () => {
  await makeLog(60, 0);
  const files = logFiles(file);
  expect(files.length).toBeGreaterThan(4);
  expect(recsOf(files).some((r) => r.event?.name === 'log-pruned')).toBe(false);
  expect(verify()).toMatchObject({ ok: true, firstSeq: 0, prunedThrough: null });
  fs.rmSync(files[0]);
  expect(verify().problem).toMatchObject({ kind: 'deleted', seq: 0 });
});

test('a log-pruned record whose claim does not match what is left does not excuse the gap', async () => {
  await makeLog(80, 2);
  const files = logFiles(file);
  // Delete one more file than retention did: the kept log-pruned records account for less than is missing.
  fs.rmSync(files[0]);
  fs.rmSync(files[1]);
  expect(verify().problem).toMatchObject({ kind: 'deleted' });
});

test('a forged log-pruned record (edited to cover more) fails its MAC', async () => {
  await makeLog(80, 2);
  const files = logFiles(file);
  const start1 = firstSeqOf(files[1]);
  const hash1 = (JSON.parse(lines(files[1])[0]) as AuditRecord).prev;
  fs.rmSync(files[0]);
  const active = lines(file);
  const i = active.findIndex((l) => l.includes('"log-pruned"'));
  const edited = active[i].replace(/"throughSeq":\d+,"throughHash":"[0-9a-f]+"/, `"throughSeq":${start1 - 1},"throughHash":"${hash1}"`);
  expect(edited).not.toBe(active[i]);
  active[i] = edited;
  fs.writeFileSync(file, active.map((l) => l + '\n').join(''));
  const r = verify();
  expect(r.ok).toBe(false);
  expect(r.problem!.kind).toMatch(/edited|inserted/);
});

test('config: auditMaxBytes, auditKeepFiles, auditEpoch*, auditVerifyKey defaults and ranges', () => {
  expect(DEFAULTS).toMatchObject({ auditMaxBytes: 64 * 1024 * 1024, auditKeepFiles: 10, auditEpochRecords: 1000, auditEpochSeconds: 900 });
  const c = resolveConfig({ home: '/srv/vg' });
  expect(c).toMatchObject({ auditVerifyKey: '/srv/vg/lib/audit-verify.key', auditKey: '/srv/vg/keys/audit.key' });
  expect(resolveConfig({ auditMaxBytes: 65536, auditKeepFiles: 0 })).toMatchObject({ auditMaxBytes: 65536, auditKeepFiles: 0 });
  for (const [k, v] of [
    ['auditMaxBytes', 65535],
    ['auditMaxBytes', 1.5e6 + 0.5],
    ['auditKeepFiles', -1],
    ['auditEpochRecords', 0],
    ['auditEpochSeconds', 0],
    ['auditKeepFiles', '3'],
  ] as const) {
    expect(() => resolveConfig({ [k]: v })).toThrow(expect.objectContaining({ code: 'VG_ERR_CONFIG_INVALID', message: expect.stringContaining(k) }));
  }
});
