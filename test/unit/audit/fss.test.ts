// SPDX-License-Identifier: Apache-2.0
// Forward-secure sealing: the key evolves and the old one is gone from the sealing state; someone holding the current
// sealing state (the front end's user) cannot re-seal the past unseen; the daemon never starts a fresh chain silently.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AuditAppender } from '../../../src/audit/appender';
import { nodeFs } from '../../../src/audit/fs-layer';
import { evolveKey, initAuditKeys, keyField, loadSealState, loadVerifyKey } from '../../../src/audit/keys';
import { type AuditRecord, GENESIS, hmacHex, lineHash, sealRecord } from '../../../src/audit/schema';
import { crossCheck, readSealedRecords } from '../../../src/audit/cross-check';
import type { JournalRecord } from '../../../src/audit/journal';
import { verifyFiles } from '../../../src/audit/verify';
import { auditMain } from '../../../src/cli/audit';
import { lines, quiet, tempDir, write } from './helpers';

let dir: string;
let file: string;
let keyFile: string;
let verifyKeyFile: string;
let anchor: string;

beforeEach(() => {
  dir = tempDir('vg-fss-');
  file = path.join(dir, 'log', 'audit.log');
  keyFile = path.join(dir, 'keys', 'audit.key');
  verifyKeyFile = path.join(dir, 'lib', 'audit-verify.key');
  anchor = `${keyFile}.anchor`;
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const verify = (files = [file]) => verifyFiles(files, { keys: loadVerifyKey(verifyKeyFile), anchor });
const recs = (): AuditRecord[] => lines(file).map((l) => JSON.parse(l) as AuditRecord);
const rewrite = (ls: string[]) => fs.writeFileSync(file, ls.map((l) => l + '\n').join(''));

async function makeLog(n: number, epochRecords = 5): Promise<void> {
  const a = await AuditAppender.open({ file, keyFile, log: quiet(), epochRecords });
  for (let i = 0; i < n; i++) await a.append(write(i));
  await a.close();
}

// What the attacker does with a copy of the sealing state: re-seal lines from `from` on, chained to the line before,
// with the key he holds (or one derived forward from it), and re-seal the anchor to match.
function reseal(ls: string[], from: number, key: Buffer, field: string, renumber = false): string[] {
  const out = ls.slice(0, from);
  for (let i = from; i < ls.length; i++) {
    const r = JSON.parse(ls[i]) as AuditRecord;
    const prev = out.length ? lineHash(out[out.length - 1]) : GENESIS;
    out.push(sealRecord(r, { seq: renumber ? out.length : r.seq, ts: r.ts, host: r.host, keyId: field, key, prev }));
  }
  const last = JSON.parse(out[out.length - 1]) as AuditRecord;
  const body = JSON.stringify({ log: 'audit.log', seq: last.seq, hash: lineHash(out[out.length - 1]), key: field });
  fs.writeFileSync(anchor, `${body.slice(0, -1)},"mac":"${hmacHex(key, 'anchor\0' + body)}"}\n`);
  return out;
}

test('the key evolves every epochRecords records; the sealing state then holds neither the seed nor any earlier key', async () => {
  await makeLog(12);
  const seed = loadVerifyKey(verifyKeyFile).seeds[0];
  expect(recs().map((r) => r.key)).toEqual([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2].map((e) => keyField(seed.id, e)));
  const st = loadSealState(keyFile);
  // The clean stop ended epoch 2 as well: the state left on disk can seal none of the records above.
  expect(st).toMatchObject({ seedId: seed.id, epoch: 3, previous: [] });
  const k1 = evolveKey(seed.seed);
  const k2 = evolveKey(k1);
  expect(st.key).toEqual(evolveKey(k2)); // k3 = H(H(H(k0)))
  const text = fs.readFileSync(keyFile, 'utf8');
  for (const old of [seed.seed, k1, k2]) expect(text).not.toContain(old.toString('base64'));
  expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
  expect(fs.statSync(verifyKeyFile).mode & 0o777).toBe(0o600);
  expect(verify()).toMatchObject({ ok: true, records: 12 });
});

test('the evolved state is renamed into place (and its directory synced) before any record is sealed with it', async () => {
  const events: string[] = [];
  const f = {
    ...nodeFs,
    async write(fd: number, buf: Buffer, pos: number) {
      const m = /^\{"v":1,.*"key":"[0-9a-f]{16}\.(\d+)"/.exec(buf.toString()); // records, not the anchor
      if (m) events.push(`log-write epoch ${m[1]}`);
      return nodeFs.write(fd, buf, pos);
    },
    async rename(a: string, b: string) {
      await nodeFs.rename(a, b);
      if (b === keyFile) events.push('state renamed');
    },
    async fsyncDir(d: string) {
      await nodeFs.fsyncDir(d);
      if (d === path.dirname(keyFile)) events.push('state dir synced');
    },
  };
  const a = await AuditAppender.open({ file, keyFile, log: quiet(), epochRecords: 2, fs: f });
  for (let i = 0; i < 3; i++) await a.append(write(i));
  await a.close();
  // ... and the stop ends the last epoch the same way.
  expect(events).toEqual([
    'log-write epoch 0',
    'log-write epoch 0',
    'state renamed',
    'state dir synced',
    'log-write epoch 1',
    'state renamed',
    'state dir synced',
  ]);
});

test('epochSeconds: a time-expired epoch evolves at the next record, and an idle one by the timer', async () => {
  let now = Date.now();
  const a = await AuditAppender.open({ file, keyFile, log: quiet(), epochSeconds: 1, now: () => new Date(now) });
  await a.append(write(0));
  expect(a.epoch()).toMatchObject({ epoch: 0, records: 1 });
  now += 1500;
  await a.append(write(1));
  expect(a.epoch()).toMatchObject({ epoch: 1, records: 1 });
  now += 1500;
  await new Promise((r) => setTimeout(r, 1300)); // the timer ticks every epochSeconds
  expect(a.epoch()).toMatchObject({ epoch: 2, records: 0 });
  expect(loadSealState(keyFile).epoch).toBe(2);
  await new Promise((r) => setTimeout(r, 1300)); // an epoch that sealed nothing is not evolved again
  expect(loadSealState(keyFile).epoch).toBe(2);
  await a.append(write(2));
  await a.close();
  expect(recs().map((r) => r.key.split('.')[1])).toEqual(['0', '1', '2']);
  expect(verify()).toMatchObject({ ok: true, records: 3 });
});

test('append resolves {seq, hash}: the hash is the line hash of that record', async () => {
  const a = await AuditAppender.open({ file, keyFile, log: quiet() });
  const ds = await Promise.all([0, 1, 2].map((i) => a.append(write(i))));
  await a.close();
  const ls = lines(file);
  expect(ds.map((d) => d.seq)).toEqual([0, 1, 2]);
  expect(ds.map((d) => d.hash)).toEqual(ls.map(lineHash));
});

test('a batch that fails after the key evolved: the next records use the new epoch, the chain still verifies, and a restart continues', async () => {
  let full = false;
  const f = {
    ...nodeFs,
    async write(fd: number, buf: Buffer, pos: number) {
      if (full && buf.toString().startsWith('{"v":1,')) throw Object.assign(new Error('injected ENOSPC'), { code: 'ENOSPC' }); // the log's disk only
      return nodeFs.write(fd, buf, pos);
    },
  };
  const a = await AuditAppender.open({ file, keyFile, log: quiet(), epochRecords: 2, fs: f });
  await a.append(write(0));
  await a.append(write(1)); // the epoch is full: the key evolves right after this batch
  full = true;
  await expect(a.append(write(2))).rejects.toMatchObject({ code: 'VG_ERR_AUDIT_UNAVAILABLE' });
  expect(loadSealState(keyFile).epoch).toBe(1); // the log still ends at epoch 0; nothing sealed at 1 is on disk
  await a.close();
  const b = await AuditAppender.open({ file, keyFile, log: quiet(), epochRecords: 2 }); // log at epoch 0, state at 1
  await b.append(write(3));
  await b.close();
  expect(recs().map((r) => r.key.split('.')[1])).toEqual(['0', '0', '1']);
  expect(verify()).toMatchObject({ ok: true, records: 3 });
});

test('the evolved state cannot be written: the batch is refused (fail closed), nothing is sealed with an undurable key, the next batch evolves', async () => {
  let failRename = false;
  const f = {
    ...nodeFs,
    async rename(a: string, b: string) {
      if (failRename && b === keyFile) throw Object.assign(new Error('injected EIO'), { code: 'EIO' });
      return nodeFs.rename(a, b);
    },
  };
  const a = await AuditAppender.open({ file, keyFile, log: quiet(), epochRecords: 2, fs: f });
  await a.append(write(0));
  failRename = true;
  await a.append(write(1)); // fills epoch 0; the evolution right after it fails quietly (no batch waiting)
  await expect(a.append(write(2))).rejects.toMatchObject({ code: 'VG_ERR_AUDIT_UNAVAILABLE', message: expect.stringContaining('EIO') });
  expect(loadSealState(keyFile).epoch).toBe(0);
  expect(fs.readdirSync(path.dirname(keyFile)).filter((n) => n.includes('.tmp-'))).toEqual([]);
  failRename = false;
  await a.append(write(3));
  await a.close();
  expect(recs().map((r) => [r.requestId ?? r.event?.name, r.key.split('.')[1]])).toEqual([
    ['r-0', '0'],
    ['r-1', '0'],
    ['r-3', '1'], // r-2 was refused, never written
    ['audit-restored', '1'],
  ]);
  expect(verify()).toMatchObject({ ok: true, records: 4 });
});

describe('an attacker holding the current sealing state (a copy, as the front end user could take)', () => {
  let stolen: ReturnType<typeof loadSealState>;
  beforeEach(async () => {
    await makeLog(30); // epochs 0..5 of 5 records each; the key evolved to 6 right after the last one
    stolen = loadSealState(keyFile);
    expect(stolen.epoch).toBe(6);
    expect(verify()).toMatchObject({ ok: true, records: 30 });
  });

  test('edits an early record and re-seals the rest of the chain with the current key: forged, named at the edit', () => {
    const ls = lines(file);
    ls[3] = ls[3].replace('"memory":4096', '"memory":1');
    rewrite(reseal(ls, 3, stolen.key, keyField(stolen.seedId, stolen.epoch)));
    const r = verify();
    expect(r.problem).toMatchObject({ kind: 'forged', seq: 3 });
    expect(r.problem!.message).toMatch(/skips from epoch 0 to 6/);
  });

  test('re-seals with a key derived forward from it: forged', () => {
    const ls = lines(file);
    ls[7] = ls[7].replace('alice', 'bob');
    const k6 = evolveKey(stolen.key);
    rewrite(reseal(ls, 7, k6, keyField(stolen.seedId, stolen.epoch + 1)));
    expect(verify().problem).toMatchObject({ kind: 'forged', seq: 7 });
  });

  test('keeps the original key fields but MACs with the key he has: edited (MAC mismatch)', () => {
    const ls = lines(file);
    ls[2] = ls[2].replace('"memory":3072', '"memory":1');
    const r = JSON.parse(ls[2]) as AuditRecord;
    ls[2] = sealRecord(r, { seq: 2, ts: r.ts, host: r.host, keyId: r.key, key: stolen.key, prev: r.prev });
    rewrite(ls);
    expect(verify().problem).toMatchObject({ kind: 'edited', seq: 2 });
  });

  test('deletes a record, renumbers and re-seals the rest: forged', () => {
    const ls = lines(file);
    ls.splice(4, 1);
    rewrite(reseal(ls, 4, stolen.key, keyField(stolen.seedId, stolen.epoch), true));
    expect(verify().problem).toMatchObject({ kind: 'forged', seq: 4 });
  });

  test('cuts records off the end and re-seals the anchor to name the new last record: the anchor is forged', () => {
    const ls = lines(file).slice(0, 18); // the last record kept is epoch 3
    rewrite(ls);
    const last = JSON.parse(ls[17]) as AuditRecord;
    const field = keyField(stolen.seedId, stolen.epoch);
    const body = JSON.stringify({ log: 'audit.log', seq: 17, hash: lineHash(ls[17]), key: field });
    fs.writeFileSync(anchor, `${body.slice(0, -1)},"mac":"${hmacHex(stolen.key, 'anchor\0' + body)}"}\n`);
    const r = verify();
    expect(last.key).toBe(keyField(stolen.seedId, 3));
    expect(r.problem).toMatchObject({ kind: 'forged', seq: 17 });
    expect(r.problem!.message).toMatch(/anchor sealed with key .*\.6, but record seq 17 with .*\.3/);
  });

  test('replaces the whole log with a fresh chain sealed with a seed of his own (he cannot write the verification key): forged', async () => {
    const own = path.join(dir, 'attacker');
    fs.rmSync(file);
    fs.rmSync(keyFile);
    fs.rmSync(anchor);
    const a = await AuditAppender.open({ file, keyFile: path.join(own, 'seal'), verifyKeyFile: path.join(own, 'verify'), anchorFile: anchor, log: quiet() });
    for (let i = 0; i < 5; i++) await a.append(write(i));
    await a.close();
    const r = verify();
    expect(r.problem).toMatchObject({ kind: 'forged', seq: 0 });
    expect(r.problem!.message).toMatch(/is not in the verification key/);
  });

  test('restarts the chain at seq 0 with the stolen (evolved) key after deleting log and anchor: forged, the first record is not epoch 0', () => {
    const ls = lines(file);
    rewrite(reseal(ls.slice(25), 0, stolen.key, keyField(stolen.seedId, stolen.epoch), true));
    const r = verify();
    expect(r.problem).toMatchObject({ kind: 'forged', seq: 0 });
    expect(r.problem!.message).toMatch(/first record is sealed at epoch 6, not 0/);
  });

  test('reorders keys: a record of an earlier epoch after a later one is forged, not merely reordered', () => {
    // Genuine records 10..14 (epoch 2) moved after 15..19 (epoch 3), chain links and seqs re-made with the stolen key
    // only for the moved tail, so that only the key order is wrong.
    const ls = lines(file);
    const moved = [...ls.slice(0, 10), ...ls.slice(15, 20)];
    const out = reseal(moved, 10, stolen.key, keyField(stolen.seedId, stolen.epoch), true);
    rewrite(out);
    expect(verify().problem).toMatchObject({ kind: 'forged', seq: 10 });
  });
});

describe('the appender never starts a fresh chain over evidence of an old one', () => {
  beforeEach(async () => makeLog(12));

  test('log, sealing state and anchor deleted, verification key kept: refuses to start', async () => {
    fs.rmSync(file);
    fs.rmSync(keyFile);
    fs.rmSync(anchor);
    await expect(AuditAppender.open({ file, keyFile, log: quiet() })).rejects.toMatchObject({
      code: 'VG_ERR_AUDIT_SEAL_STATE',
      message: expect.stringMatching(/missing, but the verification key .* exists or cannot be checked: a chain was set up here/),
    });
    expect(fs.existsSync(keyFile)).toBe(false);
  });

  test('the verification key cannot even be looked at (a front end kept out of HOME/lib): refuses too', async () => {
    fs.rmSync(file);
    fs.rmSync(keyFile);
    fs.rmSync(anchor);
    const blocked = path.join(dir, 'not-a-dir');
    fs.writeFileSync(blocked, '');
    await expect(AuditAppender.open({ file, keyFile, verifyKeyFile: path.join(blocked, 'audit-verify.key'), log: quiet() })).rejects.toMatchObject({
      code: 'VG_ERR_AUDIT_SEAL_STATE',
    });
  });

  test('sealing state missing while the log exists: refuses', async () => {
    fs.rmSync(keyFile);
    await expect(AuditAppender.open({ file, keyFile, log: quiet() })).rejects.toMatchObject({
      code: 'VG_ERR_AUDIT_SEAL_STATE',
      message: expect.stringMatching(/missing while the log .* exists/),
    });
  });

  test('log and anchor deleted, evolved sealing state kept: refuses (records were sealed)', async () => {
    fs.rmSync(file);
    fs.rmSync(anchor);
    await expect(AuditAppender.open({ file, keyFile, log: quiet() })).rejects.toMatchObject({
      code: 'VG_ERR_AUDIT_SEAL_STATE',
      message: expect.stringMatching(/is at epoch 3 .* log .* and its anchor are gone/),
    });
  });

  test('a sealing state rolled back behind the log (an older copy restored): refuses', async () => {
    fs.rmSync(path.join(dir, 'log'), { recursive: true });
    fs.rmSync(path.join(dir, 'keys'), { recursive: true });
    fs.rmSync(path.join(dir, 'lib'), { recursive: true });
    await makeLog(3); // epoch 0
    const old = fs.readFileSync(keyFile);
    const a = await AuditAppender.open({ file, keyFile, log: quiet(), epochRecords: 5 });
    for (let i = 0; i < 10; i++) await a.append(write(i));
    await a.close();
    fs.writeFileSync(keyFile, old);
    await expect(AuditAppender.open({ file, keyFile, log: quiet() })).rejects.toMatchObject({
      code: 'VG_ERR_AUDIT_SEAL_STATE',
      message: expect.stringMatching(/is at epoch 1, but the log's last record .* was sealed at epoch [2-9]/),
    });
  });

  test('a sealing state of another seed: refuses', async () => {
    const other = path.join(dir, 'other');
    initAuditKeys({ verifyKeyFile: path.join(other, 'v'), sealFile: path.join(other, 's') });
    fs.copyFileSync(path.join(other, 's'), keyFile);
    await expect(AuditAppender.open({ file, keyFile, log: quiet() })).rejects.toMatchObject({
      code: 'VG_ERR_AUDIT_SEAL_STATE',
      message: expect.stringMatching(/does not know seed/),
    });
  });

  test('init --force after a lost sealing state: a new seed continues the same log, and verify accepts the seed change', async () => {
    fs.rmSync(keyFile);
    expect(() => initAuditKeys({ verifyKeyFile, sealFile: keyFile })).toThrow(expect.objectContaining({ code: 'VG_ERR_AUDIT_KEY' }));
    const r = initAuditKeys({ verifyKeyFile, sealFile: keyFile, force: true });
    expect(r.previous).toHaveLength(1);
    const a = await AuditAppender.open({ file, keyFile, log: quiet() });
    await a.append(write(99));
    await a.close();
    expect(recs()[12].key).toBe(keyField(r.seedId, 0));
    expect(verify()).toMatchObject({ ok: true, records: 13 });
  });
});

test('first start with neither key: both are created; the seal file goes to the given owner', () => {
  const uid = process.getuid!();
  const gid = process.getgid!();
  const r = initAuditKeys({ verifyKeyFile, sealFile: keyFile, owner: { uid, gid }, epochRecords: 7, epochSeconds: 60 });
  expect(loadVerifyKey(verifyKeyFile).seeds).toEqual([expect.objectContaining({ id: r.seedId, epochRecords: 7, epochSeconds: 60 })]);
  expect(loadSealState(keyFile)).toMatchObject({ seedId: r.seedId, epoch: 0, epochRecords: 7 });
  expect(fs.statSync(keyFile)).toMatchObject({ uid, gid });
  expect(fs.statSync(path.dirname(verifyKeyFile)).mode & 0o777).toBe(0o700);
});

describe('epoch boundaries: verify accepts one only where the appender could have evolved', () => {
  // A file layer that can die (every write fails, as after kill -9: close() then leaves the disk as the crash did) or
  // whose log disk fills (the state can still evolve, the records cannot be written).
  function mortalFs() {
    const m = { dead: false, logFull: false };
    const no = (): never => {
      throw Object.assign(new Error('injected EIO (crashed)'), { code: 'EIO' });
    };
    const f = {
      ...nodeFs,
      async open(p: string, flags: number, mode: number) {
        if (m.dead) no();
        return nodeFs.open(p, flags, mode);
      },
      async write(fd: number, buf: Buffer, pos: number) {
        if (m.dead || (m.logFull && buf.toString().startsWith('{"v":1,'))) no();
        return nodeFs.write(fd, buf, pos);
      },
      async rename(a: string, b: string) {
        if (m.dead) no();
        return nodeFs.rename(a, b);
      },
      async fdatasync(fd: number) {
        if (m.dead) no();
        return nodeFs.fdatasync(fd);
      },
      async ftruncate(fd: number, len: number) {
        if (m.dead) no();
        return nodeFs.ftruncate(fd, len);
      },
    };
    return { m, f };
  }

  let now = Date.now();
  const clock = () => new Date(now);
  type End = 'stop' | 'crash' | 'crash-after-evolve';
  // One run of the daemon as it writes: daemon-start, the records, daemon-stop and close (clean stop) or nothing more.
  async function run(n: number, end: End, opts: { gapAfter?: number; gapSeconds?: number } = {}): Promise<void> {
    const { m, f } = mortalFs();
    const a = await AuditAppender.open({ file, keyFile, log: quiet(), epochRecords: 4, epochSeconds: 60, now: clock, fs: f });
    await a.append({ kind: 'event', event: { name: 'daemon-start', detail: { pid: 1 } } });
    for (let i = 0; i < n; i++) {
      if (i === opts.gapAfter) now += (opts.gapSeconds ?? 61) * 1000;
      now += 10;
      await a.append(write(i));
    }
    now += 10;
    if (end === 'stop') await a.append({ kind: 'event', event: { name: 'daemon-stop', detail: { pid: 1 } } });
    if (end === 'crash-after-evolve') {
      while (a.epoch().records < 4) await a.append(write(99));
      m.logFull = true; // the next batch evolves the state, then cannot write its record
      await expect(a.append(write(100))).rejects.toMatchObject({ code: 'VG_ERR_AUDIT_UNAVAILABLE' });
    }
    if (end !== 'stop') m.dead = true;
    await a.close();
  }

  beforeEach(() => {
    now = Date.now();
  });

  test('clean stops, crashes (torn line, state evolved before the crash), count and time evolution, a restart long after a stop, key rotation: ok', async () => {
    await run(5, 'stop'); // 4 records fill epoch 0; the stop ends epoch 1 after 3
    await run(3, 'crash', { gapAfter: 2 }); // 61 s pass before r-2; then kill -9 (the state stays at the log's epoch)
    fs.appendFileSync(file, '{"v":1,"seq":'); // ... tearing a line
    await run(2, 'crash-after-evolve'); // the state evolves, the log disk is full, kill -9
    await run(1, 'stop');
    now += 3600_000;
    await run(2, 'stop'); // an hour after the stop, which began the epoch of this daemon-start
    const t = { stdout: () => undefined, stderr: () => undefined, env: {} };
    expect(await auditMain(['rotate-key', '--home', dir], t)).toBe(0); // opens the appender, writes key-rotated, closes
    await run(5, 'crash');
    await run(1, 'stop');
    const all = recs();
    const name = (r: AuditRecord) => r.event?.name ?? r.requestId;
    const bounds = all
      .slice(1)
      .flatMap((r, i) => (r.key !== all[i].key ? [`${all[i].key.split('.')[1]} ${name(all[i])} | ${r.key.split('.')[1]} ${name(r)}`] : []));
    expect(bounds).toEqual([
      '0 r-2 | 1 r-3', // 4 records
      '1 daemon-stop | 2 daemon-start', // 3 records: the clean stop
      '2 r-1 | 3 r-2', // 3 records, 61 s
      '3 r-2 | 4 recovered-torn-line', // 1 record: a restart after a crash, its recovery event first
      '4 r-1 | 5 daemon-start', // 4 records (evolved before the crash)
      '5 daemon-stop | 6 daemon-start', // 3 records: the clean stop
      '6 daemon-start | 7 r-0', // 1 record, but an hour after the last record of epoch 5
      '7 daemon-stop | 0 key-rotated', // a new seed
      '0 key-rotated | 1 daemon-start', // 1 record: rotate-key's appender stopped cleanly without daemon-stop
      '1 daemon-start | 2 r-0', // 1 record, but the clock ran an hour ahead of the one that began epoch 1
      '2 r-3 | 3 r-4', // 4 records
      '3 r-4 | 4 daemon-start', // 1 record: a restart after a crash
    ]);
    expect(verify()).toMatchObject({ ok: true, records: all.length });
  });
});

describe('the sealing state copied during a run', () => {
  let stolen: ReturnType<typeof loadSealState>;
  beforeEach(async () => {
    const a = await AuditAppender.open({ file, keyFile, log: quiet(), epochRecords: 5 });
    for (let i = 0; i < 12; i++) await a.append(write(i)); // epochs 0 (0..4), 1 (5..9), 2 (10, 11)
    stolen = loadSealState(keyFile); // the current epoch's key, while the daemon runs
    await a.close();
    expect(stolen.epoch).toBe(2);
    expect(verify()).toMatchObject({ ok: true, records: 12 });
  });

  test('re-sealing the previous epoch from any record on with the current key: forged', () => {
    const original = lines(file);
    for (const p of [6, 7, 9]) {
      const ls = original.slice();
      ls[p] = ls[p].replace(/"memory":\d+/, '"memory":1');
      rewrite(reseal(ls, p, stolen.key, keyField(stolen.seedId, 2)));
      const r = verify();
      expect(r.problem).toMatchObject({ kind: 'forged', seq: p });
      expect(r.problem!.message).toMatch(
        new RegExp(`epoch 2 begins at seq ${p} after only ${p - 5} record\\(s\\) and [0-9.]+ s of epoch 1 \\(the key evolves after 5 records`),
      );
    }
  });

  test('what stays open: the records of the epoch whose key he holds (verify alone accepts them; see the cross-check)', () => {
    const ls = lines(file);
    ls[11] = ls[11].replace(/"memory":\d+/, '"memory":1');
    rewrite(reseal(ls, 11, stolen.key, keyField(stolen.seedId, 2)));
    expect(verify()).toMatchObject({ ok: true, records: 12 });
  });
});

test("a fake crash-restart at an arbitrary record: verify alone accepts it (a restart without daemon-stop), the helper journal's anchors do not", async () => {
  const a = await AuditAppender.open({ file, keyFile, log: quiet() });
  await a.append({ kind: 'event', event: { name: 'daemon-start', detail: { pid: 1 } } });
  for (let i = 1; i < 12; i++) await a.append(write(i));
  await a.append({ kind: 'event', event: { name: 'daemon-stop', detail: { pid: 1 } } });
  await a.close();
  // The root helper's journal anchors each write's intent record (SEQ:HASH), out of the front end's reach.
  const ls = lines(file);
  const journal: JournalRecord[] = ls.flatMap((l, i) => {
    const r = JSON.parse(l) as AuditRecord;
    if (r.kind !== 'intent') return [];
    return [
      {
        seq: i,
        ts: r.ts,
        prev: GENESIS,
        op: 'DOMAIN_WRITE_REQ.setMemory',
        user: r.who!.user,
        tenant: r.who!.tenant,
        requestId: r.requestId,
        auditHead: `${r.seq}:${lineHash(l)}`,
        result: 'ok',
      },
    ];
  });
  expect(crossCheck(readSealedRecords([file]), journal)).toEqual([]);
  const stolen = loadSealState(keyFile); // epoch 1: the stop ended epoch 0
  // He inserts a daemon-start sealed with it before record 6 and re-seals everything after, with record 8 edited.
  const edited = ls.map((l) => l.replace(/("requestId":"r-8".*?"memory":)\d+/, '$11'));
  const { ts, host } = JSON.parse(ls[6]) as AuditRecord;
  const forged = [...edited.slice(0, 6), JSON.stringify({ ts, host, kind: 'event', event: { name: 'daemon-start', detail: { pid: 2 } } }), ...edited.slice(6)];
  rewrite(reseal(forged, 6, stolen.key, keyField(stolen.seedId, 1), true));
  expect(verify()).toMatchObject({ ok: true, records: 14 });
  // Every anchored write from the fake restart on is reported: its intent moved to another seq and was re-sealed.
  const probs = crossCheck(readSealedRecords([file]), journal);
  expect(probs.map((p) => p.requestId)).toEqual(['r-6', 'r-7', 'r-8', 'r-9', 'r-10', 'r-11']);
  for (const p of probs) expect(p.message).toMatch(/anchored by the helper|differs from the one the helper anchored/);
});

test('epoch parameters belong to the seed: a configured change waits for the next seed (verify reads the seed), and says so', async () => {
  await makeLog(3, 5);
  const said: string[] = [];
  const a = await AuditAppender.open({ file, keyFile, log: (m) => said.push(m), epochRecords: 2 });
  await a.append({ kind: 'event', event: { name: 'daemon-start' } }); // a new run starts as the daemon's does
  for (let i = 0; i < 5; i++) await a.append(write(i));
  expect(said.join('\n')).toMatch(/audit epochs stay at 5 records .* the configured 2 .* take effect at the next 'virtgate audit rotate-key'/);
  expect(a.epoch().records).toBe(1); // 6 records: 5 in one epoch, 1 in the next (every 5, as the seed says; not every 2)
  await a.rotateKey();
  for (let i = 0; i < 5; i++) await a.append(write(i));
  await a.close();
  expect(loadVerifyKey(verifyKeyFile).seeds.map((s) => s.epochRecords)).toEqual([5, 2]);
  const v = verify();
  expect(v.problem).toBeNull();
});
