// SPDX-License-Identifier: Apache-2.0
// RBAC end to end without root: the identities are TLS client certificates (x509:NAME), so this runs as any user and
// needs no package (the TypeScript client over a real TLS socket to the real daemon). The same tenant table as
// rbac.test.ts (which runs virsh as local users, root only): lists, lookups, writes and events filtered per tenant,
// the read-only cap, and that a certificate is never the local account of the same name.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AuditRecord } from '../../src/audit/schema';
import { VirtgateClient } from '../../src/client';
import { uuidToString } from '../../src/ipc/program';
import type { RemoteDomain } from '../../src/protocol/types';
import { initCa, issueClient, issueServer } from '../../src/pki/pki';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';

const POLICY = `g, unix:root, host-admin, *
g, x509:admin, host-admin, *
g, x509:alice, owner, acme
g, x509:bob, operator, acme
g, x509:carol, viewer, globex
g, x509:dave, viewer, acme
g, x509:dave, viewer, globex
g, x509:gina, owner, globex
`;
const CERTS = ['admin', 'alice', 'bob', 'carol', 'dave', 'erin', 'gina', 'root'];
const xml = (name: string, uuid?: string): string =>
  `<domain type='test'><name>${name}</name>${uuid ? `<uuid>${uuid}</uuid>` : ''}<memory unit='MiB'>128</memory><os><type>hvm</type></os></domain>`;

describe('RBAC with tenants over TLS client certificates (no root needed)', () => {
  let home: string;
  let vg: RunningDaemon;
  let port: number;
  const open: VirtgateClient[] = [];
  const uri = (who: string, tenant?: string): string =>
    `test+tls://127.0.0.1:${port}/default?pkipath=${path.join(home, 'pki', who)}${tenant ? `&tenant=${tenant}` : ''}`;
  const as = async (who: string, tenant?: string, readonly = false): Promise<VirtgateClient> => {
    const c = await VirtgateClient.connect(uri(who, tenant), { readonly });
    open.push(c);
    return c;
  };
  const names = async (who: string, tenant?: string): Promise<string[]> => (await (await as(who, tenant)).listAllDomains()).map((d) => d.name).sort();
  // The server's answer to a call: 'ok', or its message.
  const answer = (p: Promise<unknown>): Promise<string> =>
    p.then(
      () => 'ok',
      (e: Error) => e.message,
    );

  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-rbac-tls-'));
    const pki = path.join(home, 'pki');
    initCa({ dir: path.join(pki, 'ca'), cn: 'rbac tls test CA' });
    issueServer({ dir: path.join(pki, 'server'), caDir: path.join(pki, 'ca'), hosts: ['localhost'], ips: ['127.0.0.1'] });
    for (const cn of CERTS) issueClient({ dir: path.join(pki, cn), caDir: path.join(pki, 'ca'), cn });
    fs.mkdirSync(path.join(home, 'etc'));
    fs.writeFileSync(
      path.join(home, 'etc', 'virtgate.conf'),
      [
        `tlsCaFile = "${pki}/ca/cacert.pem"`,
        `tlsCertFile = "${pki}/server/servercert.pem"`,
        `tlsKeyFile = "${pki}/server/private/serverkey.pem"`,
        'tlsAllowedDnList = ["CN=*"]',
        '',
      ].join('\n'),
    );
    vg = await startDaemon({ home, policy: POLICY, extraArgs: ['--tls', '127.0.0.1:0'] });
    port = Number(/listening on tls 127\.0\.0\.1:(\d+)/.exec(vg.output())![1]);
    // The host admin seeds each tenant's VMs by choosing the tenant in the URI.
    for (const [tenant, vm] of [
      ['acme', 'acme-web'],
      ['acme', 'acme-db'],
      ['globex', 'globex-app'],
    ]) {
      const c = await as('admin', tenant);
      await c.defineXml(xml(vm));
    }
  });
  afterEach(async () => {
    for (const c of open.splice(0)) await c.close().catch(() => undefined);
  });
  afterAll(async () => {
    await vg?.stop();
    fs.rmSync(home, { recursive: true, force: true });
  });

  test('list: each certificate sees exactly its tenant; the host admin sees everything', async () => {
    expect(await names('alice')).toEqual(['acme-db', 'acme-web']);
    expect(await names('bob')).toEqual(['acme-db', 'acme-web']);
    expect(await names('carol')).toEqual(['globex-app']);
    expect(await names('admin')).toEqual(['acme-db', 'acme-web', 'globex-app', 'test']);
  });

  // (certificate, call, VM, expected: ok | denied | nodomain)
  type Act = (c: VirtgateClient, d: RemoteDomain) => Promise<unknown>;
  const acts: Record<string, Act> = {
    start: (c, d) => c.create(d),
    destroy: (c, d) => c.destroy(d),
    suspend: (c, d) => c.suspend(d),
    resume: (c, d) => c.resume(d),
    undefine: (c, d) => c.undefine(d),
    dominfo: (c, d) => c.getInfo(d),
    'dumpxml --security-info': (c, d) => c.getXmlDesc(d, 1),
    'setmem --config': (c, d) => c.setMemory(d, 65536, 2),
  };
  const rows: [string, string, string, 'ok' | 'denied' | 'nodomain'][] = [
    ['alice', 'define', 'alice-new', 'ok'],
    ['alice', 'start', 'alice-new', 'ok'],
    ['alice', 'destroy', 'alice-new', 'ok'],
    ['bob', 'define', 'bob-new', 'denied'],
    ['bob', 'start', 'acme-web', 'ok'],
    ['bob', 'suspend', 'acme-web', 'ok'],
    ['bob', 'resume', 'acme-web', 'ok'],
    ['bob', 'destroy', 'acme-web', 'ok'],
    ['bob', 'undefine', 'alice-new', 'denied'],
    ['bob', 'dumpxml --security-info', 'acme-web', 'denied'],
    ['bob', 'setmem --config', 'acme-web', 'denied'],
    ['carol', 'dominfo', 'globex-app', 'ok'],
    ['carol', 'start', 'globex-app', 'denied'],
    ['carol', 'dominfo', 'acme-web', 'nodomain'],
    ['carol', 'define', 'carol-new', 'denied'],
    ['alice', 'dominfo', 'globex-app', 'nodomain'],
    ['alice', 'dominfo', 'test', 'nodomain'],
    ['bob', 'dominfo', 'test', 'nodomain'],
    ['alice', 'undefine', 'alice-new', 'ok'],
  ];
  test.each(rows)('x509:%s: %s %s -> %s', async (who, act, vm, want) => {
    const c = await as(who);
    let got: string;
    if (act === 'define') got = await answer(c.defineXml(xml(vm)));
    else {
      // Looked up as the host admin sees it, so a hidden VM is called by its real name and uuid.
      const d = await (await as('admin')).lookupByName(vm);
      got = await answer(acts[act](c, d));
      if (want === 'nodomain') {
        // An invisible VM is indistinguishable from one that does not exist (same answer to its own lookup too).
        const ghost: RemoteDomain = { name: 'no-such-vm', uuid: Buffer.alloc(16, 0x42), id: -1 };
        const none = await answer(acts[act](c, ghost));
        expect(got.replaceAll(vm, 'X').replace(/'[0-9a-f-]{36}'/, 'U')).toBe(none.replaceAll('no-such-vm', 'X').replace(/'[0-9a-f-]{36}'/, 'U'));
        expect(await answer(c.lookupByName(vm))).toBe((await answer(c.lookupByName('no-such-vm'))).replace('no-such-vm', vm));
      }
    }
    if (want === 'ok') expect(got).toBe('ok');
    else if (want === 'denied') expect(got).toBe("access denied: 'virtgate' denied access");
    else expect(got).toMatch(/^Domain not found/);
  });

  test('events: a certificate gets lifecycle events only for VMs of its tenant', async () => {
    const carol = await as('carol');
    const bob = await as('bob');
    await carol.registerLifecycleEvents();
    await bob.registerLifecycleEvents();
    const seen = { carol: [] as string[], bob: [] as string[] };
    carol.on('lifecycle', (e: { dom: RemoteDomain }) => seen.carol.push(e.dom.name));
    bob.on('lifecycle', (e: { dom: RemoteDomain }) => seen.bob.push(e.dom.name));
    const admin = await as('admin');
    for (const vm of ['acme-web', 'globex-app']) {
      const d = await admin.lookupByName(vm);
      await admin.create(d);
      await admin.destroy(d);
    }
    // An event the admin's own registration sees last: by then both others' were sent (one ordered stream per helper event).
    await admin.registerLifecycleEvents();
    const marker = new Promise<void>((resolve) => admin.on('lifecycle', (e: { dom: RemoteDomain }) => e.dom.name === 'test' && resolve()));
    const t = await admin.lookupByName('test');
    await admin.suspend(t);
    await admin.resume(t);
    await marker;
    for (let i = 0; i < 50 && (seen.carol.length < 2 || seen.bob.length < 2); i++) await new Promise((r) => setTimeout(r, 20));
    expect([...new Set(seen.carol)]).toEqual(['globex-app']);
    expect([...new Set(seen.bob)]).toEqual(['acme-web']);
  });

  test('a read-only connection grants at most read permissions, even to an owner', async () => {
    const c = await as('alice', undefined, true);
    const d = await c.lookupByName('acme-web');
    expect(await answer(c.getInfo(d))).toBe('ok');
    expect(await answer(c.create(d))).toMatch(/read only|denied/);
  });

  test("no membership: the certificate cannot open; a tenant outside one's memberships is refused; several tenants must choose", async () => {
    await expect(as('erin')).rejects.toThrow(/access denied/);
    await expect(as('carol', 'acme')).rejects.toThrow(/access denied/);
    await expect(as('dave')).rejects.toThrow(/belongs to several tenants \(acme, globex\): choose one with \?tenant=NAME/);
    expect(await names('dave', 'globex')).toEqual(['globex-app']);
  });

  test('a certificate CN=root is not the local root: it holds nothing (unix:root is host admin in this policy)', async () => {
    await expect(as('root')).rejects.toThrow(/access denied/);
    await vg.waitFor(/authenticated as 'root' \(x509 dn 'CN=root'/, 5000);
  });

  // set-tenant.test.ts's case with certificates: only a host admin reassigns; the owner's held handle stops working at once.
  test('set-tenant: owners and operators cannot reassign a VM; the host admin moves it and the old tenant loses it at once', async () => {
    const alice = await as('alice');
    const held = await alice.lookupByName('acme-db');
    expect(await answer(alice.getInfo(held))).toBe('ok');
    for (const who of ['alice', 'bob']) {
      const c = await as(who);
      expect(await answer(c.setTenant(await c.lookupByName('acme-db'), 'globex'))).toBe("access denied: 'virtgate' denied access");
    }
    expect(await names('carol')).toEqual(['globex-app']);
    const admin = await as('admin');
    await admin.setTenant(await admin.lookupByName('acme-db'), 'globex');
    expect(await answer(alice.getInfo(held))).toMatch(/^Domain not found/);
    expect(await names('alice')).toEqual(['acme-web']);
    expect(await names('carol')).toEqual(['acme-db', 'globex-app']);
    await admin.setTenant(await admin.lookupByName('acme-db'), 'acme');
    expect(await names('alice')).toEqual(['acme-db', 'acme-web']);
  });

  const records = (): AuditRecord[] =>
    fs
      .readFileSync(path.join(home, 'log', 'audit.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as AuditRecord);

  // tenancy-attacks.test.ts's items 2, 3 and 8 (virsh as local users there), with certificates.
  test('a define colliding with another tenant’s VM by name, by uuid or both gets one answer naming nothing', async () => {
    const web = uuidToString((await (await as('admin')).lookupByName('acme-web')).uuid);
    const fresh = '0d46d412-f292-416c-8b9a-ea26480a5310';
    const gina = await as('gina');
    const answers = await Promise.all([
      answer(gina.defineXml(xml('acme-web', fresh))),
      answer(gina.defineXml(xml('gina-other', web))),
      answer(gina.defineXml(xml('acme-web', web))),
      answer(gina.createXml(xml('acme-web', web))),
    ]);
    for (const a of answers) {
      expect(a).toContain('operation failed: name or uuid is not available');
      expect(a).not.toContain(web);
    }
    expect(new Set(answers.slice(0, 3)).size).toBe(1); // identical answers (define)
    expect(await answer((await as('alice')).defineXml(xml('acme-web', fresh)))).toMatch(/already exists/); // the owner's own tenant: libvirt's answer
    expect(await names('gina')).toEqual(['globex-app']);
  });

  test('a refused ?tenant= and lookups of a hidden VM are recorded as denials, at most 20 per connection, the rest counted', async () => {
    await expect(as('alice', 'globex')).rejects.toThrow(/access denied/);
    expect(records().some((r) => r.kind === 'denial' && r.who?.user === 'alice' && r.what?.procedure === 'connectOpen')).toBe(true);
    const before = records().length;
    const c = await as('alice');
    let notFound = 0;
    for (let i = 0; i < 300; i++) if (/^Domain not found/.test(await answer(c.lookupByName('globex-app')))) notFound++;
    expect(notFound).toBe(300);
    await c.close(); // the suppressed count is recorded when the connection closes
    let mine: AuditRecord[] = [];
    for (let i = 0; i < 50 && !mine.some((r) => r.event?.name === 'denials-suppressed'); i++) {
      await new Promise((r) => setTimeout(r, 20));
      mine = records()
        .slice(before)
        .filter((r) => r.who?.user === 'alice');
    }
    const denials = mine.filter((r) => r.kind === 'denial' && r.what?.procedure === 'domainLookupByName');
    expect(denials).toHaveLength(20);
    expect(denials[0]).toMatchObject({
      what: { object: { name: 'globex-app', tenant: 'globex' } },
      decision: { result: 'deny', rule: expect.stringMatching(/VG_ERR_NO_DOMAIN/) },
    });
    expect(mine.find((r) => r.event?.name === 'denials-suppressed')?.event?.detail?.count).toBe(280);
  });

  test('a destroy naming acme-web with the caller’s own VM’s uuid is recorded under the helper’s name, the sent name kept apart', async () => {
    const gina = await as('gina');
    const own = await gina.defineXml(xml('gina-vm'));
    expect(await answer(gina.destroy({ ...own, name: 'acme-web' }))).toMatch(/not running|not valid/); // shut off: refused by the driver, still audited
    const intent = records().find((r) => r.kind === 'intent' && r.what?.procedure === 'domainDestroy' && r.who?.user === 'gina');
    expect(intent?.what?.object).toEqual({ kind: 'domain', name: 'gina-vm', uuid: uuidToString(own.uuid), tenant: 'globex', clientName: 'acme-web' });
    await gina.undefine(own);
  });

  test('every decision is in the audit log under the certificate identity', () => {
    const recs = fs
      .readFileSync(path.join(home, 'log', 'audit.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { kind: string; who?: { user?: string; method?: string }; what?: { procedure?: string }; decision?: { result: string } });
    const denials = recs.filter((r) => r.kind === 'denial' && r.who?.method === 'x509');
    expect(denials.map((r) => `${r.who!.user} ${r.what!.procedure}`)).toEqual(
      expect.arrayContaining(['bob domainDefineXml', 'bob domainUndefineFlags', 'carol domainCreate', 'carol domainDefineXml']),
    );
    const writes = recs.filter((r) => r.kind === 'intent' && r.who?.user === 'alice');
    expect(writes.map((r) => r.what!.procedure)).toEqual(expect.arrayContaining(['domainDefineXml', 'domainCreate', 'domainDestroy', 'domainUndefineFlags']));
  });
});
