// SPDX-License-Identifier: Apache-2.0
// `virtgate audit verify|query|rotate-key` over real files: exit codes, named records, cross-check, formats.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { HelperJournal, type JournalBegin } from '../../../src/audit/journal';
import { Op, requestDigest } from '../../../src/ipc/program';
import { FileAuditTrail } from '../../../src/audit/trail';
import { auditMain, auditPaths } from '../../../src/cli/audit';
import { main } from '../../../src/cli/main';
import { AuditHook, type AuditedSession } from '../../../src/unprivileged/audit-hook';

// What the helper does for each write: a begin line before it runs, an end line with its result after.
const run = (j: HelperJournal, b: JournalBegin, result = 'ok'): void => j.end(j.begin(b), b.op, b.requestId, { result });
let home: string;
let p: ReturnType<typeof auditPaths>;

function io() {
  let out = '';
  let err = '';
  return {
    io: { stdout: (s: string) => void (out += s), stderr: (s: string) => void (err += s), env: { VIRTGATE_HOME: home } },
    out: () => out,
    err: () => err,
  };
}

const alice: AuditedSession = { id: 1, tenant: 'tA', identity: { user: 'alice', method: 'x509', source: '192.0.2.1:1234' } };
const uuid = Buffer.from('6695eb01f6a4871850ddf6b7a1e1b0a3', 'hex');

beforeEach(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-audit-cli-'));
  p = auditPaths(home);
  const trail = await FileAuditTrail.open({ file: p.log, keyFile: p.keyFile, log: () => undefined });
  const hook = new AuditHook(trail, { bootId: 'b' });
  await hook.event('daemon-start');
  const j = new HelperJournal((fs.mkdirSync(path.dirname(p.journal), { recursive: true }), p.journal), { sync: 'always' });
  for (let i = 0; i < 5; i++) {
    await hook.write(
      alice,
      { procedure: 'domainSetMemory', permission: 'domain:write', args: { dom: { name: `vm${i}`, uuid, id: 1 }, memory: 1024 * i } },
      'r',
      async (gate) => {
        const body = {
          action: 'setMemory' as const,
          actor: { user: 'alice', tenant: 'tA', requestId: gate.requestId },
          uuid,
          memoryKiB: BigInt(1024 * i),
          live: true,
          config: false,
          max: false,
        };
        const auditHead = await gate.before(Op.DOMAIN_WRITE_REQ, body);
        run(j, {
          op: 'DOMAIN_WRITE_REQ.setMemory',
          uuid: uuid.toString('hex'),
          user: 'alice',
          tenant: 'tA',
          requestId: gate.requestId,
          digest: requestDigest(Op.DOMAIN_WRITE_REQ, body),
          auditHead,
        });
      },
    );
  }
  await hook.denied(
    { ...alice, identity: { ...alice.identity!, user: 'bob' } },
    { procedure: 'domainDestroy', args: { dom: { name: 'vm1', uuid, id: 1 } } },
    'no rule',
  );
  j.close();
  await trail.close();
});
afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

test('verify: ok, then a one-byte edit fails with exit 1 naming the record', async () => {
  const t = io();
  expect(await auditMain(['verify'], t.io)).toBe(0);
  expect(t.out()).toMatch(/^ok: 12 records, seq 0\.\.11, 1 file\(s\), chain and MACs verified in \d+ ms\n$/);
  fs.writeFileSync(p.log, fs.readFileSync(p.log, 'utf8').replace('"memory":3072', '"memory":3073'));
  const t2 = io();
  expect(await auditMain(['verify', p.log], t2.io)).toBe(1);
  expect(t2.out()).toMatch(/FAILED \(edited\): .*audit\.log:8: record seq 7 was edited or forged \(MAC mismatch\)/);
});

test('verify --cross-check: clean, then a write that reached the helper directly is reported', async () => {
  const t = io();
  expect(await auditMain(['verify', '--cross-check', p.journal], t.io)).toBe(0);
  expect(t.out()).toMatch(/ok: cross-check: all 5 writes in the helper journal have front-end audit records/);
  const j = new HelperJournal(p.journal, { sync: 'always' });
  run(j, { op: 'DOMAIN_WRITE_REQ.undefine', uuid: uuid.toString('hex'), user: 'alice', tenant: 'tA', requestId: 'direct-1' });
  j.close();
  const t2 = io();
  expect(await auditMain(['verify', '--cross-check', p.journal], t2.io)).toBe(1);
  expect(t2.out()).toMatch(
    /FAILED \(cross-check\): helper journal seq 10: DOMAIN_WRITE_REQ\.undefine on 6695eb01f6a4871850ddf6b7a1e1b0a3 .*request direct-1, result ok: no front-end audit record/,
  );
});

test('query: filters and formats through the CLI; bad options exit 2', async () => {
  const t = io();
  expect(await auditMain(['query', '--user', 'bob', '--format', 'json'], t.io)).toBe(0);
  const recs = JSON.parse(t.out());
  expect(recs).toHaveLength(1);
  expect(recs[0]).toMatchObject({ kind: 'denial', who: { user: 'bob' }, what: { procedure: 'domainDestroy', object: { name: 'vm1' } } });
  const t2 = io();
  expect(await auditMain(['query', '--vm', 'vm3', '--outcome', 'success', '--format', 'csv', '--since', '1h'], t2.io)).toBe(0);
  expect(t2.out().trim().split('\r\n')).toHaveLength(2);
  const t3 = io();
  expect(await auditMain(['query', '--tenant', 'tA'], t3.io)).toBe(0);
  expect(t3.out().trim().split('\n')).toHaveLength(2 + 11);
  const t4 = io();
  expect(await auditMain(['query', '--format', 'xml'], t4.io)).toBe(2);
  expect(t4.err()).toMatch(/--format must be one of table, json, csv/);
  expect(await auditMain(['query', '--since', 'last tuesday'], io().io)).toBe(2);
  const t5 = io();
  expect(await auditMain(['query', '--kind', 'bogus'], t5.io)).toBe(2);
  expect(t5.err()).toMatch(/^error: audit query: --kind must be one of intent, outcome, denial, auth, event\n/);
  const t6 = io();
  expect(await auditMain(['query', '--kind', 'denial', '--format', 'json'], t6.io)).toBe(0);
  expect(JSON.parse(t6.out()).map((r: { kind: string }) => r.kind)).toEqual(['denial']);
  expect(await auditMain(['frob'], io().io)).toBe(2);
  expect(await auditMain([], io().io)).toBe(2);
});

test('a bad query option is refused before any file is read (no log here)', async () => {
  const t = io();
  expect(await auditMain(['query', '--kind', 'bogus', '--home', path.join(home, 'nonexistent')], t.io)).toBe(2);
  expect(t.err()).toMatch(/--kind must be one of/);
  expect(t.err()).not.toMatch(/no such file/);
});

test('intents without an outcome (the front end killed between intent and reply): query shows "outcome unknown", verify --cross-check resolves them from the journal', async () => {
  const trail = await FileAuditTrail.open({ file: p.log, keyFile: p.keyFile, log: () => undefined });
  const hook = new AuditHook(trail, { bootId: 'k' });
  await hook.event('daemon-start'); // a new run starts as the daemon's does (verify accepts its new epoch there)
  const j = new HelperJournal(p.journal, { sync: 'always' });
  const stuck = (i: number, reach: 'run' | 'none'): Promise<void> =>
    new Promise<void>((forwarded) => {
      void hook.write(
        alice,
        { procedure: 'domainSetMemory', permission: 'domain:write', args: { dom: { name: `vm${i}`, uuid, id: 1 } } },
        'r',
        async (gate) => {
          const body = {
            action: 'setMemory' as const,
            actor: { user: 'alice', tenant: 'tA', requestId: gate.requestId },
            uuid,
            memoryKiB: BigInt(2048 + i),
            live: true,
            config: false,
            max: false,
          };
          const auditHead = await gate.before(Op.DOMAIN_WRITE_REQ, body);
          if (reach === 'run')
            run(j, {
              op: 'DOMAIN_WRITE_REQ.setMemory',
              uuid: uuid.toString('hex'),
              user: 'alice',
              tenant: 'tA',
              requestId: gate.requestId,
              digest: requestDigest(Op.DOMAIN_WRITE_REQ, body),
              auditHead,
            });
          forwarded();
          await new Promise(() => undefined); // the front end dies here: no outcome record, no reply
        },
      );
    });
  await stuck(7, 'run'); // request k-1-1: executed by the helper
  await stuck(8, 'none'); // request k-1-2: never forwarded
  j.close();
  await trail.close();

  const t = io();
  expect(await auditMain(['query', '--outcome', 'unknown', '--format', 'json'], t.io)).toBe(0);
  expect(JSON.parse(t.out()).map((r: { requestId: string; outcomeUnknown: boolean }) => [r.requestId, r.outcomeUnknown])).toEqual([
    ['k-1-1', true],
    ['k-1-2', true],
  ]);
  const t2 = io();
  expect(await auditMain(['query', '--kind', 'intent'], t2.io)).toBe(0);
  const rows = t2.out().trim().split('\n').slice(2);
  expect(rows).toHaveLength(7);
  expect(rows.filter((l) => /\bunknown\s+no outcome record \(see audit verify --cross-check\)$/.test(l))).toHaveLength(2);
  const t3 = io();
  expect(await auditMain(['verify', '--cross-check', p.journal], t3.io)).toBe(0);
  expect(t3.out()).toMatch(/ok: cross-check: all 6 writes/);
  expect(t3.out()).toMatch(
    /resolved: audit seq \d+: domainSetMemory on vm7 .* request k-1-1: outcome unknown in the audit log; executed: helper journal seq 10, result ok\n/,
  );
  expect(t3.out()).toMatch(
    /resolved: audit seq \d+: domainSetMemory on vm8 .* request k-1-2: outcome unknown in the audit log; not executed: the helper journal has no record of it\n/,
  );
});

test('rotate-key through the CLI: recorded, old and new records verify', async () => {
  const t = io();
  expect(await auditMain(['rotate-key'], t.io)).toBe(0);
  expect(t.out()).toMatch(/^audit key rotated: seed [0-9a-f]{16} -> [0-9a-f]{16} \(recorded as seq 12\); .*audit-verify\.key keeps both for verify/);
  const t2 = io();
  expect(await auditMain(['verify'], t2.io)).toBe(0);
  expect(t2.out()).toMatch(/ok: 13 records/);
});

test('verify fails (exit 1) without the verification key, without the anchor, and without the log', async () => {
  const t = io();
  fs.renameSync(p.verifyKey, `${p.verifyKey}.away`);
  expect(await auditMain(['verify'], t.io)).toBe(1);
  expect(t.out()).toMatch(/^FAILED \(verification key\): audit key .*audit-verify\.key: ENOENT: cannot check the MACs/);
  fs.renameSync(`${p.verifyKey}.away`, p.verifyKey);
  const t1 = io();
  expect(await auditMain(['verify', '--verify-key', path.join(home, 'nowhere')], t1.io)).toBe(1);
  fs.rmSync(`${p.keyFile}.anchor`);
  const t2 = io();
  expect(await auditMain(['verify'], t2.io)).toBe(1);
  expect(t2.out()).toMatch(/^FAILED \(unanchored\): .*audit\.key\.anchor: anchor missing: records cut off the end of the log could not be detected/);
  const t3 = io();
  expect(await auditMain(['verify', '--no-anchor'], t3.io)).toBe(0);
  expect(t3.out()).toMatch(/^ok: 12 records.*\n  anchor not checked \(--no-anchor\)/);
  fs.rmSync(p.log);
  const t4 = io();
  expect(await auditMain(['verify'], t4.io)).toBe(1);
  expect(t4.err()).toMatch(/audit\.log: no such file/);
});

test('init: creates both keys, refuses to overwrite them, --force adds a seed', async () => {
  const h2 = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-audit-init-'));
  try {
    const t = io();
    expect(await auditMain(['init', '--home', h2], t.io)).toBe(0);
    expect(t.out()).toMatch(/^audit keys: seed [0-9a-f]{16}\n  verification key: .*lib\/audit-verify\.key/);
    expect(fs.statSync(path.join(h2, 'lib', 'audit-verify.key')).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(h2, 'keys', 'audit.key')).mode & 0o777).toBe(0o600);
    const t2 = io();
    expect(await auditMain(['init', '--home', h2], t2.io)).toBe(1);
    expect(t2.err()).toMatch(/exists \(a chain was set up already\)/);
    const t3 = io();
    expect(await auditMain(['init', '--home', h2, '--force'], t3.io)).toBe(0);
    expect(t3.out()).toMatch(/added after 1 older seed/);
    expect(
      fs
        .readFileSync(path.join(h2, 'lib', 'audit-verify.key'), 'utf8')
        .trim()
        .split('\n'),
    ).toHaveLength(2);
    expect(await auditMain(['init', '--home', h2, '--owner', 'nobody'], io().io)).toBe(2);
  } finally {
    fs.rmSync(h2, { recursive: true, force: true });
  }
});

test('verify of a log pruned by retention: ok, and says what was pruned', async () => {
  const h2 = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-audit-prune-'));
  try {
    const q = auditPaths(h2);
    const trail = await FileAuditTrail.open({ file: q.log, keyFile: q.keyFile, maxBytes: 4096, keepFiles: 1, log: () => undefined });
    const hook = new AuditHook(trail, { bootId: 'b' });
    for (let i = 0; i < 40; i++) await hook.event('policy-reload', { rules: i });
    await trail.close();
    const t = io();
    expect(await auditMain(['verify', '--home', h2], t.io)).toBe(0);
    expect(t.out()).toMatch(
      /^ok: \d+ records, seq [1-9]\d*\.\.\d+, 2 file\(s\), chain and MACs verified in \d+ ms\n  seqs 0\.\.\d+ were pruned by retention \(log-pruned record seq \d+\)\n$/,
    );
  } finally {
    fs.rmSync(h2, { recursive: true, force: true });
  }
});

test('virtgate audit is wired into the main command', async () => {
  const t = io();
  const cli = {
    ...t.io,
    connect: async () => {
      throw new Error('no daemon needed');
    },
    readFile: () => '',
    interrupted: () => new Promise<void>(() => undefined),
  };
  expect(await main(['audit', 'verify', '--home', home], cli as never)).toBe(0);
  expect(t.out()).toMatch(/^ok: 12 records/);
});
