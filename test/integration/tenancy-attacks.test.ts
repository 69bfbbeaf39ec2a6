// SPDX-License-Identifier: Apache-2.0
// Issue 9, items 1-4, 7 and 8, as the attacker would try them: local users alice (acme), bob (globex) and carol
// (globex viewer) drive the real daemon with virsh and with the TS client run as themselves (peer uid = identity);
// every answer and every audit record is read from outside the processes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AuditRecord } from '../../src/audit/schema';
import { type RunningDaemon, ROOT, startDaemon } from '../helpers/daemon';
import { type Result, asUser, exec, ids, localUsers } from '../helpers/users';
import { describeIf, virshTool } from '../helpers/skip';

const USERS = ['alice', 'bob', 'carol'];
const T64 = 't'.repeat(64);
const POLICY = `g, alice, owner, acme\ng, bob, owner, globex\ng, carol, viewer, globex\ng, alice, owner, ${T64}\n`;
const NEEDS = [...localUsers(USERS, 'attacks as other local users'), virshTool()];

describeIf(NEEDS, 'tenant leaks and forgeries, tried from outside', () => {
  let vg: RunningDaemon;
  let home: string;
  let aliceWebUuid = '';
  let bobWebUuid = '';

  const uri = (tenant?: string, ro = false): string => `test+unix:///default?socket=${ro ? vg.sockRo : vg.sock}${tenant ? `&tenant=${tenant}` : ''}`;
  const virsh = (user: string, tenant: string | undefined, ...args: string[]): Promise<Result> =>
    exec([...asUser(user, home), 'virsh', '-c', uri(tenant), ...args]);
  const xmlFile = (name: string, body: string): string => {
    const f = path.join(home, `${name}.xml`);
    fs.writeFileSync(f, body, { mode: 0o644 });
    return f;
  };
  const domXml = (name: string, uuid?: string): string =>
    `<domain type='test'><name>${name}</name>${uuid ? `<uuid>${uuid}</uuid>` : ''}<memory unit='MiB'>128</memory><os><type>hvm</type></os></domain>\n`;
  const records = (): AuditRecord[] =>
    fs
      .readFileSync(path.join(home, 'log', 'audit.log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as AuditRecord);
  // Runs a script with the TS client as `user`; it prints one JSON line.
  async function asClient(user: string, body: string, ro = false): Promise<unknown> {
    const script = path.join(home, `attack-${Math.random().toString(36).slice(2)}.js`);
    fs.writeFileSync(
      script,
      `const { VirtgateClient } = require(${JSON.stringify(path.join(ROOT, 'build', 'src', 'client', 'client.js'))});
       (async () => { const uri = ${JSON.stringify(uri(undefined, ro))}; ${body} })().then((r) => console.log(JSON.stringify(r ?? null)), (e) => { console.log(JSON.stringify({ error: e.message })); });`,
      { mode: 0o644 },
    );
    const r = await exec([...asUser(user, home), process.execPath, script], 60000);
    expect(r.err).toBe('');
    return JSON.parse(r.out.trim().split('\n').pop()!);
  }

  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-attack-'));
    fs.chmodSync(home, 0o755);
    fs.mkdirSync(path.join(home, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(home, 'etc', 'virtgate.conf'), 'unixSocketMode = 0o666\n');
    for (const u of USERS) {
      fs.mkdirSync(path.join(home, 'u', u), { recursive: true });
      const { uid, gid } = ids(u);
      fs.chownSync(path.join(home, 'u', u), uid, gid);
    }
    vg = await startDaemon({ home, policy: POLICY });
    expect((await virsh('alice', 'acme', 'define', xmlFile('alice-web', domXml('alice-web')))).err).toBe('');
    expect((await virsh('bob', undefined, 'define', xmlFile('bob-web', domXml('bob-web')))).err).toBe('');
    aliceWebUuid = (await virsh('alice', 'acme', 'domuuid', 'alice-web')).out.trim();
    bobWebUuid = (await virsh('bob', undefined, 'domuuid', 'bob-web')).out.trim();
    expect(aliceWebUuid).toMatch(/^[0-9a-f-]{36}$/);
  });
  afterAll(async () => vg?.stop());

  test('item 2: a define colliding with another tenant’s VM by name, by uuid or both gets one answer naming nothing', async () => {
    const fresh = '0d46d412-f292-416c-8b9a-ea26480a5310';
    const answers = await Promise.all([
      virsh('bob', undefined, 'define', xmlFile('c-name', domXml('alice-web', fresh))),
      virsh('bob', undefined, 'define', xmlFile('c-uuid', domXml('bob-other', aliceWebUuid))),
      virsh('bob', undefined, 'define', xmlFile('c-both', domXml('alice-web', aliceWebUuid))),
      virsh('bob', undefined, 'create', xmlFile('c-create', domXml('alice-web', aliceWebUuid))),
    ]);
    const errs = answers.map((a) => a.err.replace(/\/[^ ]*\.xml/, 'FILE'));
    for (const a of answers) expect(a.rc).toBe(1);
    for (const e of errs) {
      expect(e).toContain('operation failed: name or uuid is not available');
      expect(e).not.toContain(aliceWebUuid);
    }
    expect(new Set(errs.slice(0, 3)).size).toBe(1); // byte-identical answers (define)
    // The owner's own tenant still gets libvirt's detailed answer.
    expect((await virsh('alice', 'acme', 'define', xmlFile('a-name', domXml('alice-web', fresh)))).err).toMatch(/already exists/);
  });

  test('item 1: a 64-character tenant works end to end and survives a helper crash; 65 characters never get in', async () => {
    expect((await virsh('alice', T64, 'define', xmlFile('t64-vm', domXml('t64-vm')))).err).toBe('');
    const pid = vg.helperPid();
    process.kill(pid, 'SIGKILL');
    await vg.waitFor(/helper exited/i, 20000).catch(() => undefined);
    let names = '';
    for (let i = 0; i < 100 && !names.includes('t64-vm'); i++) {
      names = (await virsh('alice', T64, 'list', '--all', '--name')).out;
      if (!names.includes('t64-vm')) await new Promise((r) => setTimeout(r, 100));
    }
    expect(names.split('\n').filter(Boolean).sort()).toEqual(['t64-vm']);
    const lint = await exec([
      process.execPath,
      path.join(ROOT, 'bin', 'virtgate.js'),
      'policy',
      'lint',
      '--policy',
      xmlFile('bad-policy', `g, alice, owner, ${'t'.repeat(65)}\n`),
    ]);
    expect(lint.rc).toBe(1);
    expect(lint.out + lint.err).toMatch(/bad tenant/);
    // A ?tenant= over the limit is refused as malformed, before anything reaches the helper.
    const r = await virsh('alice', 't'.repeat(65), 'list');
    expect(r.rc).toBe(1);
    expect(r.err).toMatch(/tenant name .* is malformed/);
  });

  test('item 8: a destroy naming alice-web with bob-web’s uuid is recorded as bob-web (the helper’s record), the sent name kept apart', async () => {
    const res = (await asClient(
      'bob',
      `const c = await VirtgateClient.connect(uri);
       const real = await c.lookupByUuid(${JSON.stringify(bobWebUuid)});
       try { await c.destroy({ ...real, name: 'alice-web' }); } catch (e) { await c.close(); return { destroyError: e.message }; }
       await c.close(); return { ok: true };`,
    )) as { destroyError?: string };
    expect(res.destroyError).toMatch(/not running|not valid/); // bob-web is shut off: refused by the driver, still audited
    const intent = records().find((r) => r.kind === 'intent' && r.what?.procedure === 'domainDestroy' && r.who?.user === 'bob');
    expect(intent?.what?.object).toEqual({ kind: 'domain', name: 'bob-web', uuid: bobWebUuid, tenant: 'globex', clientName: 'alice-web' });
    // audit query --vm alice-web does not claim it.
    const q = await exec([
      process.execPath,
      path.join(ROOT, 'bin', 'virtgate.js'),
      'audit',
      'query',
      '--home',
      home,
      '--vm',
      'alice-web',
      '--user',
      'bob',
      '--format',
      'json',
    ]);
    expect((JSON.parse(q.out) as AuditRecord[]).filter((r) => r.what?.procedure === 'domainDestroy')).toEqual([]);
  });

  test('item 3: a refused ?tenant= and a lookup of a hidden VM are recorded as denials; a lookup loop is bounded', async () => {
    const r = await virsh('alice', 'globex', 'list');
    expect(r.rc).toBe(1);
    expect(
      records().some(
        (x) => x.kind === 'denial' && x.who?.user === 'alice' && x.what?.procedure === 'connectOpen' && /VG_ERR_ACCESS_DENIED/.test(x.decision?.rule ?? ''),
      ),
    ).toBe(true);
    const before = records().length;
    const res = (await asClient(
      'alice',
      `const c = await VirtgateClient.connect(uri + '&tenant=acme');
       let notFound = 0;
       for (let i = 0; i < 300; i++) { try { await c.lookupByName('bob-web'); } catch (e) { if (/Domain not found/.test(e.message)) notFound++; } }
       await c.close(); return { notFound };`,
    )) as { notFound: number };
    expect(res.notFound).toBe(300);
    await new Promise((r) => setTimeout(r, 300)); // the suppressed count is recorded when the connection closes
    const mine = records()
      .slice(before)
      .filter((x) => x.who?.user === 'alice');
    const denials = mine.filter((x) => x.kind === 'denial' && x.what?.procedure === 'domainLookupByName');
    expect(denials.length).toBe(20);
    expect(denials[0]).toMatchObject({
      what: { object: { name: 'bob-web', tenant: 'globex' } },
      decision: { result: 'deny', rule: expect.stringMatching(/VG_ERR_NO_DOMAIN/) },
    });
    const suppressed = mine.find((x) => x.event?.name === 'denials-suppressed');
    expect(suppressed?.event?.detail?.count).toBe(280);
    // From the outside a hidden VM and a missing one answer alike.
    const hidden = await virsh('alice', 'acme', 'dominfo', 'bob-web');
    const none = await virsh('alice', 'acme', 'dominfo', 'no-such-vm');
    expect(hidden.err.replace('bob-web', 'X')).toBe(none.err.replace('no-such-vm', 'X'));
  });

  test('item 4: keepalive is granted to every user before open, and a normal connect leaves no denial', async () => {
    const before = records().length;
    const res = (await asClient(
      'carol',
      `const c = await VirtgateClient.connect(uri); const f = c.features; await c.listAllDomains(); await c.close(); return f;`,
    )) as {
      keepalive: boolean;
    };
    expect(res.keepalive).toBe(true);
    expect((await virsh('carol', undefined, 'list', '--all')).rc).toBe(0);
    expect(
      records()
        .slice(before)
        .filter((x) => x.kind === 'denial'),
    ).toEqual([]);
  });

  test('item 7: 2,000 connect/close loops on the read-only socket cost a bounded number of records', async () => {
    const before = records();
    const size0 = fs.statSync(path.join(home, 'log', 'audit.log')).size;
    const res = (await asClient(
      'carol',
      `const net = require('node:net');
       // Each connection asks AUTH_LIST (as every libvirt client does first) and closes once answered, so the
       // server accepted it: a bare connect can fail client-side on a full backlog and would not count.
       const authList = Buffer.alloc(28); [28, 0x20008086, 1, 66, 0, 0, 0].forEach((v, i) => authList.writeUInt32BE(v, i * 4));
       let done = 0;
       for (let i = 0; i < 2000; i++) await new Promise((resolve) => { const s = net.connect(${JSON.stringify(vg.sockRo)}, () => s.write(authList)); s.once('data', () => { done++; s.destroy(); }); s.on('close', resolve); s.on('error', resolve); });
       return { done };`,
    )) as { done: number };
    expect(res.done).toBe(2000);
    await new Promise((r) => setTimeout(r, 200));
    const added = records().slice(before.length);
    // Carol's earlier connections opened the current interval: these share its record, at most a count per 10 s follows.
    expect(added.filter((x) => x.kind === 'auth' && x.who?.user === 'carol').length).toBeLessThanOrEqual(4);
    expect(fs.statSync(path.join(home, 'log', 'audit.log')).size - size0).toBeLessThan(8 * 1024);
    // Every connection is still accounted for: full records plus the counts (the last interval's at stop).
    await vg.stop();
    const carol = records().filter((x) => x.kind === 'auth' && x.who?.user === 'carol');
    const full = carol.filter((x) => x.event?.name === 'auth-success').length;
    const counted = carol.filter((x) => x.event?.name === 'auth-repeated').reduce((n, x) => n + Number(x.event?.detail?.count ?? 0), 0);
    expect(full + counted).toBeGreaterThanOrEqual(2000);
    expect(full + counted).toBeLessThan(2010); // plus the handful of connections of the earlier tests
  });
});
