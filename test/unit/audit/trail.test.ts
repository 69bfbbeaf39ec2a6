// SPDX-License-Identifier: Apache-2.0
// The front-end seam (audit hook + trail), the winston copy, query filters and formats, helper journal and cross-check.
import * as fs from 'node:fs';
import * as path from 'node:path';
import Transport from 'winston-transport';
import { crossCheck, crossCheckStreams, readSealedRecords } from '../../../src/audit/cross-check';
import { HelperJournal, type JournalBegin, readJournal } from '../../../src/audit/journal';
import { csvCell, formatRecords, parseTime, query, queryOutcomes } from '../../../src/audit/query';
import { type AuditRecord, lineHash } from '../../../src/audit/schema';
import { Op, requestDigest } from '../../../src/ipc/program';
import { createAuditCopy } from '../../../src/audit/sink';
import { FileAuditTrail } from '../../../src/audit/trail';
import { AuditHook, type AuditedSession, type WriteGate } from '../../../src/unprivileged/audit-hook';
import { countingFs, lines, quiet, tempDir } from './helpers';

// What the helper does for each write: a begin line before it runs, an end line with its result after.
const run = (j: HelperJournal, b: JournalBegin, result = 'ok'): void => j.end(j.begin(b), b.op, b.requestId, { result });
let dir: string;
let file: string;
let keyFile: string;
beforeEach(() => {
  dir = tempDir();
  file = path.join(dir, 'log', 'audit.log');
  keyFile = path.join(dir, 'keys', 'audit.key');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const alice: AuditedSession = {
  id: 3,
  tenant: 'tenantA',
  identity: { user: 'alice', method: 'x509', source: '203.0.113.7:50432', fingerprint: 'AB:CD', dn: 'CN=alice' },
};
const bob: AuditedSession = {
  id: 4,
  tenant: 'tenantB',
  identity: { user: 'bob', method: 'peercred', uid: 1000, gid: 1000, pid: 4242, source: 'unix:uid=1000,pid=4242' },
};
const uuid = Buffer.from('6695eb01f6a4871850ddf6b7a1e1b0a3', 'hex');

class MemoryTransport extends Transport {
  readonly seen: Array<{ level: string; message: string }> = [];
  override log(info: { level: string; message: string }, next: () => void): void {
    this.seen.push({ level: info.level, message: info.message });
    next();
  }
}

test('a write through the hook: durable intent before run, outcome after, all fields; request id reaches run', async () => {
  const mem = new MemoryTransport();
  const trail = await FileAuditTrail.open({ file, keyFile, log: quiet(), copy: createAuditCopy({ transports: [mem] }) });
  const hook = new AuditHook(trail, { bootId: 'b00t' });
  let linesAtRun = -1;
  let rid = '';
  let head = '';
  const setmem = {
    action: 'setMemory' as const,
    actor: { user: 'alice', tenant: 'tenantA', requestId: 'b00t-3-1' },
    uuid,
    memoryKiB: 524288n,
    live: true,
    config: false,
    max: false,
  };
  const ret = await hook.write(
    alice,
    { procedure: 'domainSetMemory', permission: 'domain:write', args: { dom: { name: 'web-1', uuid, id: 1 }, memory: 524288n, flags: 0 } },
    'p, tenantA-admin, domain:write',
    async (gate) => {
      expect(lines(file)).toHaveLength(0); // nothing before the handler reaches its helper request
      head = await gate.before(Op.DOMAIN_WRITE_REQ, setmem);
      linesAtRun = lines(file).length;
      rid = gate.requestId;
      return 'done';
    },
  );
  expect(ret).toBe('done');
  expect(linesAtRun).toBe(1); // the intent was on disk before the request could be forwarded
  expect(rid).toBe('b00t-3-1');
  expect(head).toBe(`0:${lineHash(lines(file)[0])}`); // what the helper journals: the intent's seq and line hash
  await expect(
    hook.write(bob, { procedure: 'domainDestroy', permission: 'domain:stop', args: { dom: { name: 'db', uuid, id: 2 } } }, 'r2', async () => {
      throw Object.assign(new Error('Requested operation is not valid: domain is not running'), { code: 'VG_ERR_DOMAIN_STATE' });
    }),
  ).rejects.toThrow(/not running/);
  await hook.denied(bob, { procedure: 'domainUndefine', permission: 'domain:delete', args: { dom: { name: 'web-1', uuid, id: 1 } } }, 'no matching policy');
  await hook.auth(bob, false, { mechanism: 'SCRAM-SHA-256' }, 'mallory');
  await hook.event('policy-reload', { rules: 12 });
  await trail.close();
  const recs = lines(file).map((l) => JSON.parse(l) as AuditRecord);
  expect(recs[0]).toMatchObject({
    seq: 0,
    kind: 'intent',
    requestId: 'b00t-3-1',
    who: { user: 'alice', tenant: 'tenantA', method: 'x509', fingerprint: 'AB:CD', dn: 'CN=alice' },
    source: '203.0.113.7:50432',
    what: {
      procedure: 'domainSetMemory',
      permission: 'domain:write',
      object: { kind: 'domain', name: 'web-1', uuid: '6695eb01-f6a4-8718-50dd-f6b7a1e1b0a3' },
      args: { memory: '524288', flags: 0 },
      helperOp: 'DOMAIN_WRITE_REQ.setMemory',
      digest: requestDigest(Op.DOMAIN_WRITE_REQ, setmem),
    },
    decision: { result: 'allow', rule: 'p, tenantA-admin, domain:write' },
  });
  expect(recs[0].host).toEqual(expect.any(String));
  expect(recs[0].ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  expect(recs[1]).toMatchObject({ kind: 'outcome', requestId: 'b00t-3-1', outcome: { result: 'success' } });
  expect(recs[3]).toMatchObject({
    kind: 'outcome',
    who: { uid: 1000, pid: 4242 },
    outcome: { result: 'error', code: 'VG_ERR_DOMAIN_STATE', message: 'Requested operation is not valid: domain is not running' },
  });
  expect(recs[4]).toMatchObject({
    kind: 'denial',
    decision: { result: 'deny', rule: 'no matching policy (VG_ERR_ACCESS_DENIED)' },
    what: { object: { name: 'web-1' } },
  });
  expect(recs[5]).toMatchObject({
    kind: 'auth',
    who: { user: 'mallory' },
    event: { name: 'auth-failure', detail: { mechanism: 'SCRAM-SHA-256' } },
    outcome: { result: 'error' },
  });
  expect(recs[6]).toMatchObject({ kind: 'event', event: { name: 'policy-reload', detail: { rules: 12 } } });
  // The winston copy saw every record, denials and failed logins as warnings.
  expect(mem.seen).toHaveLength(7);
  expect(mem.seen.map((s) => s.level)).toEqual(['info', 'info', 'info', 'notice', 'warning', 'warning', 'info']);
  expect(JSON.parse(mem.seen[4].message)).toEqual(recs[4]);
});

test('XML is hashed, never stored; define records the new uuid in its outcome', async () => {
  const trail = await FileAuditTrail.open({ file, keyFile, log: quiet() });
  const hook = new AuditHook(trail);
  const xml = '<domain type="test"><name>n</name><devices><graphics type="vnc" passwd="s3cret"/></devices></domain>';
  await hook.write(alice, { procedure: 'domainDefineXml', permission: 'domain:write,domain:save', args: { xml } }, 'r', async () => ({
    dom: { name: 'n', uuid, id: -1 },
  }));
  await trail.close();
  const text = fs.readFileSync(file, 'utf8');
  expect(text).not.toContain('s3cret');
  const [intent, outcome] = lines(file).map((l) => JSON.parse(l));
  expect(intent.what.args).toEqual({ xmlSha256: expect.stringMatching(/^[0-9a-f]{64}$/), xmlBytes: Buffer.byteLength(xml) });
  expect(outcome.what.object).toEqual({ kind: 'domain', name: 'n', uuid: '6695eb01-f6a4-8718-50dd-f6b7a1e1b0a3' });
});

test('audit unavailable: the write is never run and the error is the stable code; denials still stand', async () => {
  const cfs = countingFs();
  const trail = await FileAuditTrail.open({ file, keyFile, log: quiet(), fs: cfs });
  const hook = new AuditHook(trail);
  cfs.fail.write = 'ENOSPC';
  let ran = false;
  const start = { action: 'control' as const, actor: { user: 'alice', tenant: 'tenantA', requestId: 'x' }, uuid, control: 0 as const };
  const forward = async (gate: WriteGate) => {
    await gate.before(Op.DOMAIN_WRITE_REQ, start);
    ran = true; // the helper request would leave here
  };
  await expect(hook.write(alice, { procedure: 'domainCreate', args: {} }, 'r', forward)).rejects.toMatchObject({
    code: 'VG_ERR_AUDIT_UNAVAILABLE',
    virCode: 9,
  });
  expect(ran).toBe(false);
  await expect(hook.denied(alice, { procedure: 'domainCreate' }, 'r')).resolves.toBeUndefined();
  expect(hook.available).toBe(false);
  cfs.fail.write = undefined;
  await hook.write(alice, { procedure: 'domainCreate', args: {} }, 'r', forward);
  expect(ran).toBe(true);
  await trail.close();
});

test('outcome not durable: the client gets the audit error instead of success', async () => {
  const cfs = countingFs();
  const trail = await FileAuditTrail.open({ file, keyFile, log: quiet(), fs: cfs });
  const hook = new AuditHook(trail);
  await expect(
    hook.write(alice, { procedure: 'domainCreate' }, 'r', async () => {
      cfs.fail.fdatasync = 'EIO';
      return 1;
    }),
  ).rejects.toMatchObject({ code: 'VG_ERR_AUDIT_UNAVAILABLE' });
  cfs.fail.fdatasync = undefined;
  await trail.close();
});

function sample(): AuditRecord[] {
  const base = { v: 1, host: 'h', key: 'k', prev: '0', mac: '0' };
  return [
    { ...base, seq: 0, ts: '2026-01-01T10:00:00.000Z', kind: 'event', event: { name: 'daemon-start' } },
    {
      ...base,
      seq: 1,
      ts: '2026-01-01T10:01:00.000Z',
      kind: 'intent',
      requestId: 'a-1',
      who: { user: 'alice', tenant: 'tA', method: 'x509' },
      source: '1.2.3.4:5',
      what: { procedure: 'domainCreate', object: { name: 'web-1', uuid: '6695eb01-f6a4-8718-50dd-f6b7a1e1b0a3' } },
      decision: { result: 'allow', rule: 'r1' },
    },
    {
      ...base,
      seq: 2,
      ts: '2026-01-01T10:01:01.000Z',
      kind: 'outcome',
      requestId: 'a-1',
      who: { user: 'alice', tenant: 'tA', method: 'x509' },
      what: { procedure: 'domainCreate', object: { name: 'web-1', uuid: '6695eb01-f6a4-8718-50dd-f6b7a1e1b0a3' } },
      outcome: { result: 'success' },
    },
    {
      ...base,
      seq: 3,
      ts: '2026-01-02T09:00:00.000Z',
      kind: 'denial',
      requestId: 'a-2',
      who: { user: 'bob', tenant: 'tB', method: 'sasl' },
      what: { procedure: 'domainDestroy', object: { name: 'db, "main"' } },
      decision: { result: 'deny', rule: 'no rule' },
    },
    {
      ...base,
      seq: 4,
      ts: '2026-01-02T09:05:00.000Z',
      kind: 'outcome',
      requestId: 'a-3',
      who: { user: 'bob', tenant: 'tB', method: 'sasl' },
      what: { procedure: 'domainSetMemory', object: { name: '=cmd|calc' } },
      outcome: { result: 'error', code: 'VG_ERR_DOMAIN_STATE', message: 'not running' },
    },
  ] as AuditRecord[];
}

test('query filters: user, tenant, vm by name or uuid, since/until, outcome', () => {
  const rs = sample();
  const seqs = (f: Parameters<typeof query>[1]) => query(rs, f).map((r) => r.seq);
  expect(seqs({ user: 'alice' })).toEqual([1, 2]);
  expect(seqs({ tenant: 'tB' })).toEqual([3, 4]);
  expect(seqs({ vm: 'web-1' })).toEqual([1, 2]);
  expect(seqs({ vm: '6695EB01F6A4871850DDF6B7A1E1B0A3' })).toEqual([1, 2]);
  expect(seqs({ since: new Date('2026-01-02T00:00:00Z') })).toEqual([3, 4]);
  expect(seqs({ until: new Date('2026-01-01T10:01:00Z') })).toEqual([0, 1]);
  expect(seqs({ outcome: 'success' })).toEqual([2]);
  expect(seqs({ outcome: 'error' })).toEqual([4]);
  expect(seqs({ outcome: 'denied' })).toEqual([3]);
  expect(seqs({ user: 'bob', outcome: 'denied', since: new Date('2026-01-02T08:00:00Z') })).toEqual([3]);
  // An intent no outcome record follows (the front end stopped in between) is "outcome unknown".
  expect(seqs({ outcome: 'unknown' })).toEqual([]);
  const cut = rs.filter((r) => r.seq !== 2);
  expect(query(cut, { outcome: 'unknown' }).map((r) => r.seq)).toEqual([1]);
  const { records, unknown } = queryOutcomes(cut, { user: 'alice' });
  expect(records.map((r) => r.seq)).toEqual([1]);
  expect(formatRecords(records, 'table', unknown).split('\n')[2]).toMatch(/\bunknown\s+no outcome record \(see audit verify --cross-check\)$/);
  expect(JSON.parse(formatRecords(records, 'json', unknown))[0]).toMatchObject({ seq: 1, outcomeUnknown: true });
  expect(formatRecords(records, 'csv', unknown).split('\r\n')[1]).toMatch(/,unknown,no outcome record/);
  expect(parseTime('2h', new Date('2026-01-02T10:00:00Z'))).toEqual(new Date('2026-01-02T08:00:00Z'));
  expect(parseTime('yesterday')).toBeNull();
});

test('formats: table, json, csv (quoted, formula-safe)', () => {
  const rs = sample();
  const table = formatRecords(rs, 'table');
  expect(table.split('\n')[0]).toMatch(/^time\s+seq\s+kind\s+request\s+user\s+tenant\s+source\s+procedure\s+object\s+decision\s+outcome\s+error$/);
  expect(table).toMatch(/2026-01-02T09:05:00.000Z\s+4\s+outcome\s+a-3\s+bob\s+tB\s+domainSetMemory\s+=cmd\|calc\s+error\s+VG_ERR_DOMAIN_STATE: not running/);
  expect(table).toMatch(/daemon-start/);
  expect(JSON.parse(formatRecords(rs, 'json'))).toEqual(rs);
  expect(JSON.parse(formatRecords([], 'json'))).toEqual([]);
  const csv = formatRecords(rs, 'csv').split('\r\n');
  expect(csv[0]).toBe('time,seq,kind,request,user,tenant,auth,source,procedure,permission,object,uuid,args,decision,rule,outcome,error');
  expect(csv[4]).toContain('"db, ""main"""');
  expect(csv[5]).toContain(",'=cmd|calc,");
  expect(csvCell('-1')).toBe("'-1");
});

test('helper journal: seq, chain, torn-line recovery; cross-check flags a write that bypassed the front end', async () => {
  const jf = path.join(dir, 'helper-journal.log');
  const j = new HelperJournal(jf, { sync: 'always' });
  run(j, { op: 'DOMAIN_WRITE_REQ.control', uuid: uuid.toString('hex'), user: 'alice', tenant: 'tenantA', requestId: 'b00t-3-1' });
  j.close();
  fs.appendFileSync(jf, '{"seq":2,"ts":"20'); // crash mid-append
  const j2 = new HelperJournal(jf, { sync: 'batch' });
  run(j2, { op: 'DOMAIN_WRITE_REQ.undefine', uuid: uuid.toString('hex'), user: 'alice', tenant: 'tenantA', requestId: 'forged-1' });
  run(j2, { op: 'DOMAIN_WRITE_REQ.setMemory', uuid: uuid.toString('hex'), user: 'mallory', tenant: 'tenantA', requestId: 'b00t-3-1' });
  j2.close();
  const { records, problem } = readJournal(jf);
  expect(problem).toBeNull();
  expect(records.map((r) => r.seq)).toEqual([0, 1, 2, 3, 4, 5]);
  expect(records.map((r) => r.phase)).toEqual(['begin', 'end', 'begin', 'end', 'begin', 'end']);
  expect(records[3]).toMatchObject({ of: 2, op: 'DOMAIN_WRITE_REQ.undefine', requestId: 'forged-1', result: 'ok' });

  const trail = await FileAuditTrail.open({ file, keyFile, log: quiet() });
  const hook = new AuditHook(trail, { bootId: 'b00t' });
  await hook.write(alice, { procedure: 'domainSuspend' }, 'r', async () => undefined); // request b00t-3-1
  await trail.close();
  const probs = crossCheck(readSealedRecords([file]), records);
  expect(probs.map((p) => p.journalSeq)).toEqual([2, 4, 4]);
  expect(probs[0].message).toMatch(/DOMAIN_WRITE_REQ\.undefine .* request forged-1.*no front-end audit record \(front end bypassed or compromised\)/);
  expect(probs[1].message).toMatch(/request id already executed at journal seq 0 \(replayed\)/);
  expect(probs[2].message).toMatch(/identity mismatch/);

  // Editing the journal breaks its own chain.
  fs.writeFileSync(jf, fs.readFileSync(jf, 'utf8').replace('forged-1', 'b00t-3-1'));
  expect(readJournal(jf).problem).toMatch(/journal seq 3 does not follow/);
});

describe('cross-check binds each executed write to its intent: operation, object, digest, once, and the anchored record', () => {
  const other = Buffer.from('0d46d412f292416c8b9aea26480a531f', 'hex');
  const body = (requestId: string, memoryKiB = 1024n, u = uuid) => ({
    action: 'setMemory' as const,
    actor: { user: 'alice', tenant: 'tenantA', requestId },
    uuid: u,
    memoryKiB,
    live: true,
    config: false,
    max: false,
  });
  let journal: HelperJournal;
  let jf: string;

  // Five allowed setmem intents, each executed once by the "helper" exactly as allowed (or, per `mode`, only begun, or
  // never forwarded).
  async function setup(mode: (i: number) => 'run' | 'begin' | 'none' = () => 'run'): Promise<void> {
    jf = path.join(dir, 'helper-journal.log');
    journal = new HelperJournal(jf, { sync: 'none' });
    const trail = await FileAuditTrail.open({ file, keyFile, log: quiet() });
    const hook = new AuditHook(trail, { bootId: 'b' });
    for (let i = 0; i < 5; i++) {
      await hook.write(
        alice,
        {
          procedure: 'domainSetMemory',
          args: { dom: { name: 'web-1', uuid, id: 1 } },
          object: { name: 'web-1', uuid: '6695eb01-f6a4-8718-50dd-f6b7a1e1b0a3', tenant: 'tenantA' },
        },
        'r',
        async (gate) => {
          const b = body(gate.requestId);
          const auditHead = await gate.before(Op.DOMAIN_WRITE_REQ, b);
          const begin: JournalBegin = {
            op: 'DOMAIN_WRITE_REQ.setMemory',
            uuid: uuid.toString('hex'),
            user: 'alice',
            tenant: 'tenantA',
            requestId: gate.requestId,
            digest: requestDigest(Op.DOMAIN_WRITE_REQ, b),
            auditHead,
          };
          if (mode(i) === 'run') run(journal, begin);
          else if (mode(i) === 'begin') journal.begin(begin);
        },
      );
    }
    await trail.close();
  }
  // The streaming check with its default window and with a window of one record (everything settled by pass 3) must agree.
  const full = (window?: number) =>
    crossCheckStreams(
      () => readSealedRecords([file]),
      () => readJournal(jf).records,
      { window },
    );
  const both = () => {
    const a = full();
    const b = full(1);
    const sorted = (x: { message: string }[]) => x.map((p) => p.message).sort();
    expect(sorted(b.problems)).toEqual(sorted(a.problems));
    expect(sorted(b.resolutions)).toEqual(sorted(a.resolutions));
    expect(a.problems.map((p) => p.message)).toEqual(crossCheck(readSealedRecords([file]), readJournal(jf).records).map((p) => p.message));
    return a;
  };
  const check = () => both().problems.map((p) => p.message);
  const head = (seq: number) => `${seq}:${lineHash(lines(file)[seq])}`;
  const dropOutcomes = (...rids: string[]) =>
    fs.writeFileSync(
      file,
      lines(file)
        .filter((l) => !(JSON.parse(l).kind === 'outcome' && rids.includes(JSON.parse(l).requestId)))
        .map((l) => l + '\n')
        .join(''),
    );

  test('clean', async () => {
    await setup();
    journal.close();
    expect(check()).toEqual([]);
  });

  test('a replayed id, another operation, another VM, other arguments: each reported', async () => {
    await setup();
    const [r0, r1, r2] = ['b-3-1', 'b-3-2', 'b-3-3'];
    run(journal, {
      op: 'DOMAIN_WRITE_REQ.setMemory',
      uuid: uuid.toString('hex'),
      user: 'alice',
      tenant: 'tenantA',
      requestId: r0,
      digest: requestDigest(Op.DOMAIN_WRITE_REQ, body(r0)),
      auditHead: head(0),
    });
    run(journal, {
      op: 'DOMAIN_WRITE_REQ.control',
      uuid: uuid.toString('hex'),
      user: 'alice',
      tenant: 'tenantA',
      requestId: r1,
      digest: 'x',
      auditHead: head(2),
    });
    run(journal, {
      op: 'DOMAIN_WRITE_REQ.setMemory',
      uuid: other.toString('hex'),
      user: 'alice',
      tenant: 'tenantA',
      requestId: r2,
      digest: requestDigest(Op.DOMAIN_WRITE_REQ, body(r2, 1024n, other)),
      auditHead: head(4),
    });
    journal.close();
    const probs = check().join('\n');
    expect(probs).toMatch(/request b-3-1.*already executed at journal seq 0 \(replayed\)/);
    expect(probs).toMatch(/request b-3-2.*allowed DOMAIN_WRITE_REQ\.setMemory, not DOMAIN_WRITE_REQ\.control \(operation mismatch\)/);
    expect(probs).toMatch(/request b-3-3.*argument digest mismatch/);
    expect(probs).toMatch(/request b-3-3.*object mismatch/);
  });

  test('the audit log rewritten, truncated or replaced under the anchors: reported', async () => {
    await setup();
    journal.close();
    const original = fs.readFileSync(file, 'utf8');
    const all = lines(file);
    // Rewritten: the last intent's line changed (the attacker re-seals it; a byte differs all the same).
    fs.writeFileSync(file, original.replace(all[8], all[8].replace('"tenantA"', '"tenantB"')));
    expect(check().join('\n')).toMatch(/seq 8 differs from the one the helper anchored/);
    // Truncated after the third write.
    fs.writeFileSync(file, all.slice(0, 5).join('\n') + '\n');
    expect(check().join('\n')).toMatch(/ends at seq 4 but the helper anchored seq 6 \(audit log truncated or replaced\)/);
    // Replaced by a fresh log.
    fs.rmSync(file);
    const trail = await FileAuditTrail.open({ file, keyFile: path.join(dir, 'k2', 'key'), verifyKeyFile: path.join(dir, 'k2', 'verify'), log: quiet() }); // the attacker's own seed
    await new AuditHook(trail).event('daemon-start');
    await trail.close();
    expect(check().length).toBeGreaterThanOrEqual(5);
  });
  test('intents without an outcome (the front end stopped in between) are resolved from the journal: executed, begun without a result, or not executed', async () => {
    // b-3-2 ran; b-3-4 never reached the helper; b-3-5 was begun, and the helper stopped before its end line.
    await setup((i) => (i === 3 ? 'none' : i === 4 ? 'begin' : 'run'));
    journal.close();
    dropOutcomes('b-3-2', 'b-3-4', 'b-3-5');
    const r = both();
    expect(r.problems).toEqual([]);
    expect(r.resolutions.map((x) => [x.requestId, x.executed])).toEqual([
      ['b-3-2', true],
      ['b-3-4', false],
      ['b-3-5', null],
    ]);
    expect(r.resolutions[0].message).toMatch(
      /^audit seq \d+: domainSetMemory on web-1 .* request b-3-2: outcome unknown in the audit log; executed: helper journal seq 2, result ok$/,
    );
    expect(r.resolutions[1].message).toMatch(/request b-3-4: outcome unknown in the audit log; not executed: the helper journal has no record of it$/);
    expect(r.resolutions[2].message).toMatch(
      /request b-3-5: outcome unknown in the audit log; reached the helper \(journal seq 6\), which recorded no result \(it stopped mid-write\): check the VM$/,
    );
  });

  test('an audited success the helper never journaled is reported (a write that ran without its journal line)', async () => {
    await setup((i) => (i === 2 ? 'none' : 'run'));
    journal.close();
    expect(check()).toEqual([
      expect.stringMatching(
        /^audit seq \d+: domainSetMemory on web-1 .* request b-3-3: the front end recorded DOMAIN_WRITE_REQ\.setMemory as a success, but the helper journal has no record of executing it/,
      ),
    ]);
  });

  test('audited successes older than the first journal record are not looked up in it (a journal started afresh)', async () => {
    await setup((i) => (i < 2 ? 'none' : 'run'));
    journal.close();
    expect(check()).toEqual([]);
    dropOutcomes('b-3-1');
    expect(both().resolutions).toEqual([
      expect.objectContaining({
        requestId: 'b-3-1',
        executed: null,
        message: expect.stringMatching(/outcome unknown in the audit log; cannot be told: it is older than the helper journal$/),
      }),
    ]);
  });

  test('a begin line whose end never came, with an outcome in the audit log, is resolved from that outcome', async () => {
    await setup((i) => (i === 4 ? 'begin' : 'run'));
    journal.close();
    const r = both();
    expect(r.problems).toEqual([]);
    expect(r.resolutions).toEqual([
      expect.objectContaining({
        requestId: 'b-3-5',
        journalSeq: 8,
        executed: true,
        message: expect.stringMatching(
          /helper journal seq 8: DOMAIN_WRITE_REQ\.setMemory .*request b-3-5: begun, no result line \(the helper stopped mid-write\); the front end recorded success$/,
        ),
      }),
    ]);
  });
});
