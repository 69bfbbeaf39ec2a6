// SPDX-License-Identifier: Apache-2.0
// Tamper evidence: each kind of damage to the log is detected by verify, naming the record.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AuditAppender } from '../../../src/audit/appender';
import { initAuditKeys, loadSealState, loadVerifyKey } from '../../../src/audit/keys';
import { type AuditInput, type AuditRecord, hmacHex, lineHash, sealRecord } from '../../../src/audit/schema';
import { verifyFiles } from '../../../src/audit/verify';
import { lines, quiet, tempDir, write } from './helpers';

let dir: string;
let file: string;
let keyFile: string;
let verifyKeyFile: string;

async function makeLog(n: number, opts: { maxBytes?: number; keepFiles?: number } = {}): Promise<void> {
  const a = await AuditAppender.open({ file, keyFile, log: quiet(), ...opts });
  for (let i = 0; i < n; i++) await a.append(write(i));
  await a.close();
}

const verify = (files = [file], anchor: string | null = `${keyFile}.anchor`) => verifyFiles(files, { keys: loadVerifyKey(verifyKeyFile), anchor });
const rewrite = (ls: string[]) => fs.writeFileSync(file, ls.map((l) => l + '\n').join(''));

beforeEach(async () => {
  dir = tempDir();
  file = path.join(dir, 'log', 'audit.log');
  keyFile = path.join(dir, 'keys', 'audit.key');
  verifyKeyFile = path.join(dir, 'lib', 'audit-verify.key');
  await makeLog(20);
});

afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test('an untouched log verifies; key and log are 0600', () => {
  const r = verify();
  expect(r).toMatchObject({ ok: true, records: 20, firstSeq: 0, lastSeq: 19, macChecked: true, problem: null });
  expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
  expect(fs.statSync(file).mode & 0o777).toBe(0o600);
});

test('editing one byte names the record', () => {
  const ls = lines(file);
  ls[7] = ls[7].replace('"memory":8192', '"memory":9192');
  rewrite(ls);
  const r = verify();
  expect(r.problem).toMatchObject({ kind: 'edited', seq: 7, line: 8 });
  expect(r.problem!.message).toMatch(/record seq 7 was edited/);
});

test('editing one byte that breaks the JSON names the position', () => {
  const ls = lines(file);
  ls[3] = ls[3].replace('{"v":1', '{"v":1,');
  rewrite(ls);
  expect(verify().problem).toMatchObject({ kind: 'edited', seq: 3, line: 4 });
});

test('deleting a record names the missing seq', () => {
  const ls = lines(file);
  ls.splice(5, 1);
  rewrite(ls);
  const r = verify();
  expect(r.problem).toMatchObject({ kind: 'deleted', seq: 5 });
  expect(r.problem!.message).toMatch(/seq 5 is missing before seq 6/);
});

test('swapping two records is reported as a reorder', () => {
  const ls = lines(file);
  [ls[10], ls[11]] = [ls[11], ls[10]];
  rewrite(ls);
  const r = verify();
  expect(r.problem).toMatchObject({ kind: 'reordered', seq: 11, line: 11 });
  expect(r.problem!.message).toMatch(/seq 10 comes later/);
});

test('inserting a forged record (no key) is named', () => {
  const ls = lines(file);
  const forged = sealRecord(write(99), {
    seq: 12,
    ts: new Date().toISOString(),
    host: 'h',
    keyId: JSON.parse(ls[0]).key,
    key: Buffer.alloc(32, 7),
    prev: lineHash(ls[11]),
  });
  ls.splice(12, 0, forged);
  rewrite(ls);
  const r = verify();
  expect(r.problem).toMatchObject({ kind: 'inserted', seq: 12, line: 13 });
});

test('inserting a copy of a genuine record is named', () => {
  const ls = lines(file);
  ls.splice(15, 0, ls[4]);
  rewrite(ls);
  expect(verify().problem).toMatchObject({ kind: 'inserted', seq: 4, line: 16 });
});

test('cutting the file mid-record is reported as truncated', () => {
  const text = fs.readFileSync(file, 'utf8');
  fs.writeFileSync(file, text.slice(0, text.length - 40));
  const r = verify();
  expect(r.problem).toMatchObject({ kind: 'truncated', line: 20 });
  expect(r.problem!.message).toMatch(/after seq 18 is cut short/);
});

test('cutting whole records off the end is caught by the anchor', () => {
  rewrite(lines(file).slice(0, 17));
  const r = verify();
  expect(r.problem).toMatchObject({ kind: 'truncated', seq: 17 });
  expect(r.problem!.message).toMatch(/seqs 17\.\.19 are cut off/);
  // Without the anchor, a clean cut at a record boundary cannot be seen by a chain alone.
  expect(verify([file], null).ok).toBe(true);
});

test('a wrong key is reported, not accepted', () => {
  const other = tempDir();
  try {
    const k2 = path.join(other, 'k');
    fs.writeFileSync(k2, fs.readFileSync(verifyKeyFile, 'utf8').replace(/"seed":"[^"]+"/, `"seed":"${Buffer.alloc(32, 1).toString('base64')}"`), {
      mode: 0o600,
    });
    expect(() => loadVerifyKey(k2)).toThrow(/seed does not match its id/);
    // Another installation's verification key: every record names a seed it does not hold.
    initAuditKeys({ verifyKeyFile: path.join(other, 'v'), sealFile: path.join(other, 's') });
    const r = verifyFiles([file], { keys: loadVerifyKey(path.join(other, 'v')), anchor: null });
    expect(r.problem).toMatchObject({ kind: 'forged', seq: 0 });
    expect(r.problem!.message).toMatch(/is not in the verification key/);
  } finally {
    fs.rmSync(other, { recursive: true });
  }
});

test('key files others can read are refused', async () => {
  fs.chmodSync(verifyKeyFile, 0o644);
  expect(() => loadVerifyKey(verifyKeyFile)).toThrow(
    expect.objectContaining({ code: 'VG_ERR_AUDIT_KEY', message: expect.stringMatching(/mode 644 is too open/) }),
  );
  fs.chmodSync(keyFile, 0o640);
  await expect(AuditAppender.open({ file, keyFile, log: quiet() })).rejects.toMatchObject({
    code: 'VG_ERR_AUDIT_KEY',
    message: expect.stringMatching(/mode 640 is too open/),
  });
});

test('the chain continues across rotated files; deleting a rotated file is detected', async () => {
  fs.rmSync(dir, { recursive: true });
  fs.mkdirSync(dir);
  await makeLog(60, { maxBytes: 4096 });
  const files = fs.readdirSync(path.dirname(file)).filter((n) => /audit\.log(\.\d{12})?$/.test(n));
  expect(files.length).toBeGreaterThan(3);
  const { logFiles } = await import('../../../src/audit/fs-layer');
  const all = logFiles(file);
  const r = verify(all);
  expect(r).toMatchObject({ ok: true, firstSeq: 0 });
  expect(r.lastSeq).toBeGreaterThanOrEqual(60 + files.length - 2); // user records plus one log-rotated event per rotation
  // Each new file opens with a log-rotated event chained to the last record of the one before.
  const second = lines(all[1])[0];
  expect(JSON.parse(second)).toMatchObject({ kind: 'event', event: { name: 'log-rotated' } });
  expect(JSON.parse(second).prev).toBe(lineHash(lines(all[0]).pop()!));
  const gone = all[1];
  const firstOfGone = JSON.parse(lines(gone)[0]).seq;
  fs.rmSync(gone);
  const r2 = verify(logFiles(file));
  expect(r2.problem).toMatchObject({ kind: 'deleted', seq: firstOfGone });
});

test('key rotation (a new seed) is recorded and both seeds verify', async () => {
  const a = await AuditAppender.open({ file, keyFile, log: quiet() });
  const before = loadVerifyKey(verifyKeyFile).seeds[0].id;
  const rot = await a.rotateKey();
  await a.append(write(100));
  await a.close();
  expect(rot.previous).toBe(before);
  expect(rot.current).not.toBe(before);
  const ls = lines(file).map((l) => JSON.parse(l));
  const ev = ls.find((r) => r.event?.name === 'key-rotated');
  // The new seed starts at epoch 0; the rotation names the old seed's epoch it replaced (1: the clean stop ended epoch 0).
  expect(ev).toMatchObject({ seq: 20, key: `${rot.current}.0`, event: { detail: { previous: `${before}.1`, current: rot.current } } });
  expect(ls[5].key).toBe(`${before}.0`);
  expect(ls[21].key).toBe(`${rot.current}.0`);
  expect(verify()).toMatchObject({ ok: true, lastSeq: 21 });
  expect(loadVerifyKey(verifyKeyFile).seeds.map((x) => x.id)).toEqual([before, rot.current]);
  expect(JSON.parse(fs.readFileSync(keyFile, 'utf8'))).toMatchObject({ seedId: rot.current, epoch: 1, previous: [before] });
});

test('50,000 records verify correctly (time printed, asserted by the bench, not here)', async () => {
  fs.rmSync(dir, { recursive: true });
  fs.mkdirSync(dir);
  const a = await AuditAppender.open({ file, keyFile, log: quiet() });
  const t0 = Date.now();
  const all: Promise<unknown>[] = [];
  for (let i = 0; i < 50_000; i++) all.push(a.append(write(i, i % 2 ? { kind: 'outcome', decision: undefined, outcome: { result: 'success' } } : {})));
  await Promise.all(all);
  const appendMs = Date.now() - t0;
  const st = a.stats();
  await a.close();
  const r = verify();
  expect(r).toMatchObject({ ok: true, records: 50_000, lastSeq: 49_999 });
  const bytes = fs.statSync(file).size;
  process.stdout.write(
    `audit: 50,000 records (${(bytes / 1e6).toFixed(1)} MB) appended in ${appendMs} ms with ${st.batches} fdatasyncs; verify ${r.ms.toFixed(0)} ms\n`,
  );
});

test('an emptied log is caught by the anchor', () => {
  fs.writeFileSync(file, '');
  const r = verify();
  expect(r.problem).toMatchObject({ kind: 'truncated', seq: 0 });
  expect(r.problem!.message).toMatch(/the log is empty but the anchor saw seq 19 durable: seqs 0\.\.19 are cut off/);
  expect(verify([file], null).ok).toBe(true);
});

test('a pruned log with a problem before its log-pruned record: the problem is named, not the pruned start', async () => {
  fs.rmSync(dir, { recursive: true });
  fs.mkdirSync(dir);
  await makeLog(80, { maxBytes: 4096, keepFiles: 2 });
  const { logFiles } = await import('../../../src/audit/fs-layer');
  const files = logFiles(file);
  const start = (JSON.parse(lines(files[0])[0]) as AuditRecord).seq;
  expect(start).toBeGreaterThan(0);
  // The record that accounts for the pruned start comes after the first kept file: the walk meets the edit first.
  const accounts = (l: string): boolean => {
    const r = JSON.parse(l) as AuditRecord;
    return r.event?.name === 'log-pruned' && r.event.detail?.throughSeq === start - 1;
  };
  expect(lines(files[0]).some(accounts)).toBe(false);
  expect(files.slice(1).some((f) => lines(f).some(accounts))).toBe(true);
  const ls = lines(files[0]);
  ls[2] = ls[2].replace(/"memory":(\d+)/, '"memory":1$1');
  fs.writeFileSync(files[0], ls.map((l) => l + '\n').join(''));
  const r = verify(files);
  expect(r.problem).toMatchObject({ kind: 'edited', seq: start + 2, line: 3 });
  expect(r).toMatchObject({ records: 2, firstSeq: start, prunedThrough: { seq: start - 1 } });
  // The same start without any log-pruned record: the missing start is what is reported.
  for (const f of files.slice(1)) {
    const kept = lines(f).filter((l) => !accounts(l));
    fs.writeFileSync(f, kept.map((l) => l + '\n').join(''));
  }
  expect(verify(files).problem).toMatchObject({ kind: 'deleted', seq: 0, line: 1 });
});

test('verify streams: 200,000 records verify in a child whose heap is capped at 64 MiB', async () => {
  // The whole log in memory (what verify did before) takes several times the file's size; 200,000 records are ~100 MB.
  const root = path.resolve(__dirname, '../../..');
  const build = path.join(root, 'build', 'src', 'audit');
  if (!fs.existsSync(path.join(build, 'verify.js'))) throw new Error(`build output missing (${build}): run \`npm run build\` first (npm test does)`);
  fs.rmSync(dir, { recursive: true });
  fs.mkdirSync(dir);
  const a = await AuditAppender.open({ file, keyFile, log: quiet() });
  for (let i = 0; i < 200_000; i += 5000) {
    const batch: Promise<unknown>[] = [];
    for (let j = i; j < i + 5000; j++) batch.push(a.append(write(j)));
    await Promise.all(batch);
  }
  await a.close();
  const { logFiles } = await import('../../../src/audit/fs-layer');
  const files = logFiles(file);
  const bytes = files.reduce((n, f) => n + fs.statSync(f).size, 0);
  expect(bytes).toBeGreaterThan(96 * 1024 * 1024);
  const script = `
    const { verifyFiles } = require(${JSON.stringify(path.join(build, 'verify.js'))});
    const { loadVerifyKey } = require(${JSON.stringify(path.join(build, 'keys.js'))});
    const r = verifyFiles(${JSON.stringify(files)}, { keys: loadVerifyKey(${JSON.stringify(verifyKeyFile)}), anchor: ${JSON.stringify(`${keyFile}.anchor`)} });
    process.stdout.write(JSON.stringify({ ok: r.ok, records: r.records, problem: r.problem, ms: r.ms, maxRssKiB: process.resourceUsage().maxRSS }));
  `;
  const c = spawnSync(process.execPath, ['--max-old-space-size=64', '-e', script], { encoding: 'utf8', timeout: 120_000 });
  expect(c.stderr).toBe('');
  expect(c.status).toBe(0);
  const out = JSON.parse(c.stdout) as { ok: boolean; records: number; ms: number; maxRssKiB: number };
  const records = files.reduce((n, f) => n + lines(f).length, 0); // 200,000 and a log-rotated record per rotation
  expect(out).toMatchObject({ ok: true, records, problem: null });
  // Bounded by the reader's 1 MiB buffer and one record, not the log: the peak RSS stays well under the log's size.
  expect(out.maxRssKiB * 1024).toBeLessThan(bytes);
  process.stdout.write(
    `verify: ${out.records} records (${(bytes / 1e6).toFixed(0)} MB) in ${out.ms.toFixed(0)} ms, heap capped at 64 MiB, peak RSS ${(out.maxRssKiB / 1024).toFixed(0)} MiB\n`,
  );
}, 180_000);

describe('epoch boundaries: the holder of the sealing state cannot place one where he likes', () => {
  // The front end's user with the sealing state: re-seals the lines from `from` on, chained to the line before, with
  // the key he holds (the seq of each line is its position), and re-seals the anchor to match.
  function reseal(ls: string[], from: number, state: { seedId: string; epoch: number; key: Buffer }): string[] {
    const field = `${state.seedId}.${state.epoch}`;
    const out = ls.slice(0, from);
    for (let i = from; i < ls.length; i++) {
      const r = JSON.parse(ls[i]) as AuditRecord;
      out.push(sealRecord(r, { seq: i, ts: r.ts, host: r.host, keyId: field, key: state.key, prev: lineHash(out[i - 1]) }));
    }
    const body = JSON.stringify({ log: 'audit.log', seq: out.length - 1, hash: lineHash(out[out.length - 1]), key: field });
    fs.writeFileSync(`${keyFile}.anchor`, `${body.slice(0, -1)},"mac":"${hmacHex(state.key, 'anchor\0' + body)}"}\n`);
    return out;
  }
  const event = (name: string): AuditInput => ({ kind: 'event', event: { name, detail: { pid: 7 } } });

  test('after a clean stop, an edit anywhere in the last epoch re-sealed from there with the state on disk: forged where the new epoch begins', () => {
    const original = lines(file);
    const stolen = loadSealState(keyFile); // 20 records at epoch 0 (1000 per epoch), the stop evolved the state to 1
    expect(stolen.epoch).toBe(1);
    for (const p of [1, 3, 12, 19]) {
      const ls = original.slice();
      ls[p] = ls[p].replace(/"memory":\d+/, '"memory":1');
      rewrite(reseal(ls, p, stolen));
      const r = verify();
      expect(r.problem).toMatchObject({ kind: 'forged', seq: p, line: p + 1 });
      expect(r.problem!.message).toMatch(
        new RegExp(
          `record seq ${p} is forged: epoch 1 begins at seq ${p} after only ${p} record\\(s\\) and \\d+\\.\\d s of epoch 0 \\(the key evolves after 1000 records or 900 s\\), with no restart: records re-sealed with a later key`,
        ),
      );
    }
  });

  test('a restart is a boundary: a daemon-start, or anything after a daemon-stop; a run that starts with neither is not', async () => {
    const run = async (first: AuditInput[], stop: boolean): Promise<void> => {
      const a = await AuditAppender.open({ file, keyFile, log: quiet() });
      for (const x of first) await a.append(x);
      if (stop) await a.append(event('daemon-stop'));
      await a.close(); // a clean stop: the state evolves
    };
    await run([event('daemon-start'), write(21)], true); // epoch 1 begins at daemon-start, after 20 of 1000 records
    await run([write(23)], true); // epoch 2 begins after the daemon-stop
    const name = (r: AuditRecord) => `${r.key.split('.')[1]} ${r.event?.name ?? r.requestId}`;
    expect(
      lines(file)
        .slice(19)
        .map((l) => name(JSON.parse(l) as AuditRecord)),
    ).toEqual(['0 r-19', '1 daemon-start', '1 r-21', '1 daemon-stop', '2 r-23', '2 daemon-stop']);
    expect(verify()).toMatchObject({ ok: true, records: 25 });
    // The daemon always writes daemon-start first; a run that writes neither after a crash nor after a daemon-stop looks
    // like the re-sealed tail it would be if someone else wrote it.
    await run([event('daemon-start'), write(26)], false);
    await run([write(27)], false);
    const r = verify();
    expect(r.problem).toMatchObject({ kind: 'forged', seq: 27 });
    expect(r.problem!.message).toMatch(/epoch 4 begins at seq 27 after only 2 record\(s\) and \d+\.\d s of epoch 3 .* with no restart/);
  });
});
