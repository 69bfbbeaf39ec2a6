// SPDX-License-Identifier: Apache-2.0
// Issue 6 through real clients: every write procedure, allowed and denied, from virsh and python3-libvirt run as local
// users, leaves its audit records with every field; and the audit log on a full filesystem refuses writes (fail closed).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AuditRecord } from '../../src/audit/schema';
import { VirtgateClient } from '../../src/client/client';
import { ROOT, type RunningDaemon, startDaemon } from '../helpers/daemon';
import { type Result, asUser, exec, ids, localUsers } from '../helpers/users';
import { describeIf, pyLibvirt, virshTool } from '../helpers/skip';
import { tmpfs } from '../helpers/tmpfs';

const PY = '/usr/bin/python3'; // Debian's interpreter: python3-libvirt is installed for it, not for a pyenv one
const USERS = ['alice', 'carol', 'erin'];
const POLICY = `g, root, host-admin, *
g, alice, owner, acme
g, carol, viewer, acme
g, erin, viewer, globex
`;

const NEEDS = [...localUsers(USERS, 'runs virsh and python3 as other local users'), virshTool(), pyLibvirt()];

const records = (home: string): AuditRecord[] =>
  fs
    .readFileSync(path.join(home, 'log', 'audit.log'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditRecord);

function verify(home: string, ...extra: string[]): Result {
  try {
    return {
      rc: 0,
      out: execFileSync(process.execPath, [path.join(ROOT, 'bin', 'virtgate.js'), 'audit', 'verify', '--home', home, ...extra]).toString(),
      err: '',
    };
  } catch (e) {
    const x = e as { status: number; stdout: Buffer; stderr: Buffer };
    return { rc: x.status, out: x.stdout.toString(), err: x.stderr.toString() };
  }
}

// What virsh and python3-libvirt send for each step (virsh prefers the *Flags variants).
const PROC: Record<string, RegExp> = {
  define: /^domainDefineXml(Flags)?$/,
  create: /^domainCreateXml$/,
  start: /^domainCreate(WithFlags)?$/,
  shutdown: /^domainShutdown(Flags)?$/,
  reboot: /^domainReboot$/,
  destroy: /^domainDestroy(Flags)?$/,
  suspend: /^domainSuspend$/,
  resume: /^domainResume$/,
  setmem: /^domainSetMemory(Flags)?$/,
  setvcpus: /^domainSetVcpus(Flags)?$/,
  undefine: /^domainUndefine(Flags)?$/,
};

describeIf(NEEDS, 'audit records of every write, allowed and denied (virsh and python3-libvirt as local users)', () => {
  let vg: RunningDaemon;
  let home: string;
  const uri = (): string => `test+unix:///default?socket=${vg.sock}`;
  const virsh = (user: string, ...args: string[]): Promise<Result> => exec([...asUser(user), 'virsh', '-c', uri(), ...args]);
  const xml = (name: string): string => {
    const f = path.join(home, `${name}.xml`);
    fs.writeFileSync(f, `<domain type='test'><name>${name}</name><memory unit='MiB'>128</memory><vcpu>2</vcpu><os><type>hvm</type></os></domain>\n`, {
      mode: 0o644,
    });
    return f;
  };

  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-audit-'));
    fs.chmodSync(home, 0o755);
    fs.mkdirSync(path.join(home, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(home, 'etc', 'virtgate.conf'), 'unixSocketMode = 0o666\n');
    vg = await startDaemon({ home, policy: POLICY });
    expect((await virsh('root', '-c', `${uri()}&tenant=acme`, 'define', xml('victim'))).rc).toBe(0);
  });
  afterAll(async () => vg?.stop());

  // Every allowed write has an intent (before) and an outcome (after) sharing a request id, with who/source/what/decision.
  function expectAllowed(user: string, tenant: string, vm: string, steps: string[]): void {
    const recs = records(home);
    const { uid } = ids(user);
    for (const step of steps) {
      const name = step === 'create' ? `${vm}-t` : vm;
      const outcome = recs.find(
        (r) => r.kind === 'outcome' && r.who?.user === user && PROC[step].test(r.what?.procedure ?? '') && r.what?.object?.name === name,
      );
      expect([step, outcome !== undefined]).toEqual([step, true]);
      const intent = recs.find((r) => r.kind === 'intent' && r.requestId === outcome!.requestId)!;
      expect([step, intent !== undefined && intent.seq < outcome!.seq]).toEqual([step, true]);
      for (const r of [intent, outcome!]) {
        expect(r.ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        expect(r.who).toMatchObject({ user, tenant, method: 'peercred', uid });
        expect(typeof r.who!.pid).toBe('number');
        expect(r.source).toBe(`unix:pid=${r.who!.pid},uid=${uid}`);
        expect(r.what!.permission).toMatch(/^domain:/);
      }
      expect(intent.decision).toEqual({ result: 'allow', rule: expect.stringMatching(/owner|host-admin/) });
      expect(outcome!.outcome).toEqual({ result: 'success' });
      expect(outcome!.what!.object!.uuid).toMatch(/^[0-9a-f-]{36}$/);
      if (!['define', 'create'].includes(step))
        expect(intent.what!.object!.name).toBe(name); // define/create: known once the helper parsed it
      else expect(intent.what!.args).toMatchObject({ xmlSha256: expect.stringMatching(/^[0-9a-f]{64}$/), xmlBytes: expect.any(Number) });
      if (step === 'setmem') expect(intent.what!.args!.memory).toBe('98304');
    }
  }

  function expectDenied(user: string, steps: string[]): void {
    const recs = records(home).filter((r) => r.kind === 'denial' && r.who?.user === user);
    for (const step of steps) {
      const r = recs.find((x) => PROC[step].test(x.what?.procedure ?? ''));
      expect([step, r !== undefined]).toEqual([step, true]);
      expect(r!.requestId).toMatch(/^[0-9a-f]{8}-\d+-\d+$/);
      expect(r!.who).toMatchObject({ user, tenant: 'acme', method: 'peercred', uid: ids(user).uid });
      expect(r!.source).toMatch(/^unix:pid=\d+,uid=\d+$/);
      expect(r!.decision).toEqual({ result: 'deny', rule: expect.stringMatching(/\(VG_ERR_ACCESS_DENIED\)$/) });
      expect(r!.what!.permission).toMatch(/^domain:/);
      if (!['define', 'create'].includes(step)) expect(r!.what!.object!.name).toBe('victim');
    }
  }

  const ALL = ['define', 'start', 'setmem', 'setvcpus', 'suspend', 'resume', 'reboot', 'shutdown', 'destroy', 'undefine', 'create'];

  test('virsh as alice (owner of acme): every write procedure allowed, intent + outcome with all fields', async () => {
    const f = xml('vs-a');
    for (const args of [
      ['define', f],
      ['start', 'vs-a'],
      ['setmem', 'vs-a', '98304'],
      ['setvcpus', 'vs-a', '1', '--config'],
      ['suspend', 'vs-a'],
      ['resume', 'vs-a'],
      ['reboot', 'vs-a'],
      ['shutdown', 'vs-a'],
      ['start', 'vs-a'],
      ['destroy', 'vs-a'],
      ['undefine', 'vs-a'],
      ['create', xml('vs-a-t')],
      ['destroy', 'vs-a-t'],
    ]) {
      const r = await virsh('alice', ...args);
      expect([args.join(' '), r.rc, r.err]).toEqual([args.join(' '), 0, '']);
    }
    expectAllowed('alice', 'acme', 'vs-a', ALL);
  });

  test('python3-libvirt as alice: every write procedure allowed and recorded', async () => {
    const r = await exec([...asUser('alice'), PY, path.join(__dirname, 'py', 'audit_writes.py'), uri(), 'py-a']);
    const steps = JSON.parse(r.out) as Record<string, number>;
    expect(Object.values(steps).every((c) => c === 0)).toBe(true);
    expectAllowed('alice', 'acme', 'py-a', ALL);
  });

  test('virsh as carol (viewer of acme): every write procedure denied, each denial recorded with its rule', async () => {
    for (const args of [
      ['define', xml('c-new')],
      ['start', 'victim'],
      ['setmem', 'victim', '98304'],
      ['setvcpus', 'victim', '1', '--config'],
      ['suspend', 'victim'],
      ['resume', 'victim'],
      ['reboot', 'victim'],
      ['shutdown', 'victim'],
      ['destroy', 'victim'],
      ['undefine', 'victim'],
      ['create', xml('c-new-t')],
    ]) {
      const r = await virsh('carol', ...args);
      expect([args.join(' '), r.rc, r.err]).toEqual([args.join(' '), 1, expect.stringMatching(/access denied/)]);
    }
    expectDenied('carol', ALL);
  });

  test('python3-libvirt as carol: every write procedure denied and recorded; the VM untouched', async () => {
    const before = records(home).filter((r) => r.kind === 'denial' && r.who?.user === 'carol').length;
    const r = await exec([...asUser('carol'), PY, path.join(__dirname, 'py', 'audit_writes.py'), uri(), 'victim']);
    const steps = JSON.parse(r.out) as Record<string, number>;
    for (const s of ALL) expect([s, steps[s]]).toEqual([s, 88]); // VIR_ERR_ACCESS_DENIED
    expect(records(home).filter((x) => x.kind === 'denial' && x.who?.user === 'carol').length - before).toBe(ALL.length + 1); // + start2
    expect((await virsh('root', 'domstate', 'victim')).out.trim()).toBe('shut off');
  });

  test('a write on a VM the caller may not see answers "no domain", and that denial is recorded as such', async () => {
    // virsh cannot name an invisible VM (its lookup is filtered), so erin sends the domain reference itself.
    const uuid = (await virsh('root', 'domuuid', 'victim')).out.trim();
    const script = `const { VirtgateClient } = require(${JSON.stringify(path.join(ROOT, 'build', 'src', 'client'))});
      (async () => { const c = await VirtgateClient.connect(${JSON.stringify(uri())});
        try { await c.create({ name: 'victim', uuid: Buffer.from(${JSON.stringify(uuid.replace(/-/g, ''))}, 'hex'), id: -1 }); console.log('ok'); }
        catch (e) { console.log(e.message); } await c.close(); })();`;
    const r = await exec([...asUser('erin'), process.execPath, '-e', script]);
    expect(r.out).toMatch(/Domain not found/);
    const den = records(home).filter((x) => x.kind === 'denial' && x.who?.user === 'erin' && x.what?.procedure === 'domainCreate');
    expect(den).toHaveLength(1);
    expect(den[0]).toMatchObject({
      who: { tenant: 'globex', method: 'peercred' },
      what: { procedure: 'domainCreate', permission: 'domain:getattr', object: { name: 'victim', uuid } },
      decision: { result: 'deny', rule: expect.stringMatching(/\(VG_ERR_NO_DOMAIN\)$/) },
    });
  });

  test('logins, policy load and daemon start are recorded; verify and cross-check pass', async () => {
    const recs = records(home);
    expect(recs.some((r) => r.kind === 'auth' && r.event?.name === 'auth-success' && r.who?.user === 'carol' && r.who.method === 'peercred')).toBe(true);
    expect(recs.some((r) => r.event?.name === 'daemon-start')).toBe(true);
    expect(recs.some((r) => r.event?.name === 'policy-reload' && r.event.detail?.ok === true)).toBe(true);
    const v = verify(home, '--cross-check', path.join(home, 'lib', 'helper-journal.log'));
    expect(v.out).toMatch(/^ok: \d+ records/);
    expect(v.out).toMatch(/ok: cross-check: all \d+ writes/);
    expect(v.rc).toBe(0);
  });
});

// The audit log on a small tmpfs that the test fills: writes are refused and not executed, reads go on, space restores writes.
const NEEDS_TMPFS = [virshTool(), tmpfs()];

describeIf(NEEDS_TMPFS, 'fail closed: the audit log on a full filesystem', () => {
  let vg: RunningDaemon;
  let home: string;
  let mnt: string;
  const virsh = (...args: string[]): Promise<Result> => exec(['virsh', '-c', `test+unix:///default?socket=${vg.sock}`, ...args]);
  const fill = (): void => {
    const fd = fs.openSync(path.join(mnt, 'filler'), 'w');
    const chunk = Buffer.alloc(4096, 0x78);
    try {
      for (;;) fs.writeSync(fd, chunk);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
    } finally {
      fs.closeSync(fd);
    }
  };

  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-audit-full-'));
    mnt = path.join(home, 'auditfs');
    fs.mkdirSync(mnt);
    // The front end (nobody, named so the test knows it) owns its log's filesystem, as it owns HOME/log.
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700,uid=65534,gid=65534', 'tmpfs', mnt]);
    fs.mkdirSync(path.join(home, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(home, 'etc', 'virtgate.conf'), `auditLog = "${path.join(mnt, 'audit.log')}"\n`);
    vg = await startDaemon({ home, extraArgs: ['--front-user', 'nobody'] });
    fs.writeFileSync(path.join(home, 'full.xml'), "<domain type='test'><name>full</name><memory unit='MiB'>128</memory><os><type>hvm</type></os></domain>\n");
    expect((await virsh('define', path.join(home, 'full.xml'))).rc).toBe(0);
  });
  afterAll(async () => {
    await vg?.stop();
    try {
      execFileSync('umount', [mnt]);
    } catch {
      // already gone
    }
  });

  test('writes refused with a clear error and not executed; reads work on open connections, a new login that cannot be recorded is refused; freeing space restores both; the chain verifies', async () => {
    const open = await VirtgateClient.connect(`test+unix:///default?socket=${vg.sock}`); // logged in before the disk fills
    fill();
    // The log's last page may still hold a few records: spend it with harmless writes until the first refusal.
    const test1 = await open.lookupByName('test');
    let spent = 0;
    while (
      spent < 50 &&
      (await open.setMemory(test1, 98304 + spent).then(
        () => true,
        () => false,
      ))
    )
      spent++;
    expect(spent).toBeLessThan(50);
    const full = await open.lookupByName('full');
    await expect(open.create(full)).rejects.toThrow(/audit log unavailable \(ENOSPC\); write refused/);
    expect((await open.getState(full)).state).toBe(5); // shut off: not executed
    expect((await open.listAllDomains()).map((d) => d.name)).toContain('full'); // reads go on
    await vg.waitFor(/AUDIT LOG UNAVAILABLE \(ENOSPC/);
    // A new connection's login cannot be recorded: it is refused, with the reason, before any call beyond AUTH_* runs.
    const refused = await virsh('start', 'full');
    expect(refused.rc).toBe(1);
    expect(refused.err).toMatch(/audit log unavailable \(ENOSPC\); login refused/);
    expect((await open.getState(full)).state).toBe(5);
    const journal = fs.readFileSync(path.join(home, 'lib', 'helper-journal.log'), 'utf8');
    expect(journal).not.toMatch(/DOMAIN_WRITE_REQ\.control/); // the helper never saw a refused start

    fs.rmSync(path.join(mnt, 'filler'));
    await open.close();
    const ok = await virsh('start', 'full');
    expect([ok.rc, ok.err]).toEqual([0, '']);
    expect((await virsh('domstate', 'full')).out.trim()).toBe('running');
    await vg.waitFor(/audit log writable again/);
    const recs = fs
      .readFileSync(path.join(mnt, 'audit.log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as AuditRecord);
    expect(recs.some((r) => r.event?.name === 'audit-restored' && r.event.detail?.reason === 'ENOSPC')).toBe(true);
    expect(recs.filter((r) => r.what?.procedure?.startsWith('domainCreate')).map((r) => r.kind)).toEqual(['intent', 'outcome']);
    const v = verify(home, path.join(mnt, 'audit.log'));
    expect([v.rc, v.out]).toEqual([0, expect.stringMatching(/^ok: /)]);
  });
});

describeIf(tmpfs(), 'fail closed at start: no listener without a durable start record', () => {
  test('a daemon whose audit log cannot be written refuses to start and says why; no socket is left listening', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-audit-start-'));
    const mnt = path.join(home, 'auditfs');
    fs.mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700,uid=65534,gid=65534', 'tmpfs', mnt]);
    try {
      execFileSync('sh', ['-c', `dd if=/dev/zero of=${mnt}/filler bs=4k 2>/dev/null || true`]);
      fs.mkdirSync(path.join(home, 'etc'), { recursive: true });
      fs.writeFileSync(path.join(home, 'etc', 'virtgate.conf'), `auditLog = "${path.join(mnt, 'audit.log')}"\n`);
      const refused = startDaemon({ home, extraArgs: ['--front-user', 'nobody'] });
      await expect(refused).rejects.toThrow(/VG_ERR_AUDIT_START|unavailable at start.*refusing to start/);
      await expect(refused).rejects.toThrow(/ENOSPC|no space/i); // full, not merely unwritable
      expect(fs.existsSync(path.join(home, 'run', 'virtgate-sock'))).toBe(false);
    } finally {
      execFileSync('umount', [mnt]);
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});
