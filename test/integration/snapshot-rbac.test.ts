// SPDX-License-Identifier: Apache-2.0
// Snapshots and checkpoints through real connections: local users alice (owner, acme), bob (owner, globex) and carol
// (viewer, globex) drive the daemon with virsh as themselves. A tenant sees and changes only its own VMs' snapshots
// (another tenant's VM is absent, its lookups leave denial records), a viewer reads but creates nothing, every write
// is audited with the VM's name and tenant and the snapshot's name, bad input answers as libvirt does, and snapshots
// survive kill -9 of the root helper.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { describeIf, virshTool } from '../helpers/skip';
import { type Result, asUser, exec, ids, localUsers } from '../helpers/users';

const USERS = ['alice', 'bob', 'carol'];
const POLICY = 'g, alice, owner, acme\ng, bob, owner, globex\ng, carol, viewer, globex\n';
const NEEDS = [...localUsers(USERS, 'snapshot tenancy as other local users'), virshTool()];
const DENIED = "error: access denied: 'virtgate' denied access";
const vmXml = (name: string) => `<domain type='test'><name>${name}</name><memory>1024</memory><os><type>hvm</type></os></domain>\n`;

describeIf(NEEDS, 'snapshots and checkpoints per tenant, through virsh', () => {
  let vg: RunningDaemon;
  let home: string;
  let avmUuid = '';
  const tenantOf: Record<string, string | undefined> = { alice: 'acme', bob: 'globex', carol: 'globex', root: undefined };
  const uri = (user: string): string => `test+unix:///default?socket=${vg.sock}${tenantOf[user] ? `&tenant=${tenantOf[user]}` : ''}`;
  const virsh = (user: string, ...args: string[]): Promise<Result> => exec([...asUser(user, home), 'virsh', '-c', uri(user), ...args]);
  const ok = async (user: string, ...args: string[]): Promise<string> => {
    const r = await virsh(user, ...args);
    expect({ args, err: r.err, rc: r.rc }).toEqual({ args, err: '', rc: 0 });
    return r.out;
  };
  const fails = async (user: string, args: string[], err: string | RegExp): Promise<void> => {
    const r = await virsh(user, ...args);
    expect(r.rc).toBe(1);
    if (typeof err === 'string') expect(r.err).toContain(err);
    else expect(r.err).toMatch(err);
  };
  const file = (name: string, text: string): string => {
    const p = path.join(home, 'u', 'shared', name);
    fs.writeFileSync(p, text, { mode: 0o644 });
    return p;
  };

  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-snapshot-rbac-'));
    fs.chmodSync(home, 0o755);
    fs.mkdirSync(path.join(home, 'etc'), { recursive: true });
    fs.mkdirSync(path.join(home, 'u', 'shared'), { recursive: true, mode: 0o755 });
    fs.writeFileSync(path.join(home, 'etc', 'virtgate.conf'), 'unixSocketMode = 0o666\n');
    for (const u of USERS) {
      fs.mkdirSync(path.join(home, 'u', u), { recursive: true });
      const { uid, gid } = ids(u);
      fs.chownSync(path.join(home, 'u', u), uid, gid);
    }
    vg = await startDaemon({ home, policy: POLICY });
    await ok('alice', 'define', file('avm.xml', vmXml('avm')));
    await ok('alice', 'start', 'avm');
    await ok('bob', 'define', file('bvm.xml', vmXml('bvm')));
    avmUuid = (await ok('alice', 'domuuid', 'avm')).trim();
    await ok('alice', 'snapshot-create-as', 'avm', 'a1', '--description', 'first');
    await ok('alice', 'snapshot-create-as', 'avm', 'a2');
    await ok('bob', 'snapshot-create-as', 'bvm', 'b1');
  }, 120000);
  afterAll(async () => vg?.stop());

  test('a tenant lists, reads and reverts its own VMs snapshots', async () => {
    expect(await ok('alice', 'snapshot-list', 'avm', '--name')).toBe('a1\na2\n\n');
    expect(await ok('alice', 'snapshot-parent', 'avm', 'a2')).toBe('a1\n');
    expect(await ok('alice', 'snapshot-dumpxml', 'avm', 'a1')).toContain('<description>first</description>');
    expect(await ok('alice', 'snapshot-revert', 'avm', 'a1')).toContain('Domain snapshot a1 reverted');
    expect(await ok('alice', 'snapshot-current', 'avm', '--name')).toBe('a1\n');
    expect(await ok('bob', 'snapshot-list', 'bvm', '--name')).toBe('b1\n\n');
  });

  test("another tenant's VM and its snapshots are absent, by name and by uuid", async () => {
    for (const cmd of [
      ['snapshot-list', 'avm'],
      ['snapshot-list', avmUuid],
      ['snapshot-info', 'avm', 'a1'],
      ['snapshot-dumpxml', 'avm', 'a1'],
      ['snapshot-create-as', 'avm', 'evil'],
      ['snapshot-revert', avmUuid, 'a1'],
      ['snapshot-delete', 'avm', 'a1'],
      ['checkpoint-list', 'avm'],
    ])
      await fails('bob', cmd, "error: failed to get domain '");
    expect(await ok('alice', 'snapshot-list', 'avm', '--name')).toBe('a1\na2\n\n'); // nothing changed
  });

  test('a viewer reads snapshots of its tenant and changes none', async () => {
    expect(await ok('carol', 'snapshot-list', 'bvm', '--name')).toBe('b1\n\n');
    expect(await ok('carol', 'snapshot-info', 'bvm', 'b1')).toMatch(/Name:\s+b1/);
    await fails('carol', ['snapshot-create-as', 'bvm', 'c1'], DENIED);
    await fails('carol', ['snapshot-revert', 'bvm', 'b1'], DENIED);
    await fails('carol', ['snapshot-delete', 'bvm', 'b1'], DENIED);
    expect(await ok('bob', 'snapshot-list', 'bvm', '--name')).toBe('b1\n\n');
  });

  test('bad input answers as libvirt does, and changes nothing', async () => {
    await fails('alice', ['snapshot-create', 'avm', file('broken.xml', '<domainsnapshot><name>x</nam')], /^error: \(domain_snapshot\):1: /);
    await fails('alice', ['snapshot-create', 'avm', file('wrongroot.xml', '<domain><name>x</name></domain>')], "expecting root element of 'domainsnapshot'");
    await fails('alice', ['snapshot-info', 'avm', 'nope'], "error: Domain snapshot not found: no domain snapshot with matching name 'nope'");
    await fails('alice', ['snapshot-create-as', 'nodom', 's'], "error: failed to get domain 'nodom'");
    await fails('alice', ['snapshot-create-as', 'avm', 'x'.repeat(200)], /is not accepted: names are 1-128 characters/);
    await fails('alice', ['snapshot-create-as', 'avm', 'a1'], 'error: operation failed: domain moment a1 already exists');
    await fails('alice', ['snapshot-create-as', 'avm', 's', '--disk-only'], 'error: unsupported flags (0x10) in function testDomainSnapshotCreateXML');
    await fails('alice', ['snapshot-delete', 'avm', 'a2', '--metadata'], 'error: unsupported flags (0x2) in function testDomainSnapshotDelete');
    // A tenant names no host file, even where the test driver would write none.
    await fails('alice', ['snapshot-create-as', 'avm', 'm', '--memspec', 'file=/etc/shadow'], 'error: operation forbidden: tenant');
    // A redefined snapshot's <domain> is confined as a define is: no host disk smuggled in for a later revert.
    const smuggled =
      `<domainsnapshot><name>evil</name><state>shutoff</state><creationTime>5</creationTime><domain type='test'><name>avm</name>` +
      `<uuid>${avmUuid}</uuid><memory>1024</memory><os><type>hvm</type></os><devices><disk type='file' device='disk'>` +
      `<source file='/etc/shadow'/><target dev='vda'/></disk></devices></domain></domainsnapshot>`;
    await fails(
      'alice',
      ['snapshot-create', 'avm', file('evil.xml', smuggled), '--redefine'],
      /disk 'vda' \(file '\/etc\/shadow'\) is not a volume the VM may use/,
    );
    expect(await ok('alice', 'snapshot-list', 'avm', '--name')).not.toContain('evil');
    await ok('alice', 'snapshot-create-as', 'avm', 'gone');
    await ok('alice', 'snapshot-delete', 'avm', 'gone');
    await fails('alice', ['snapshot-revert', 'avm', 'gone'], "error: Domain snapshot not found: no domain snapshot with matching name 'gone'");
    expect(await ok('alice', 'snapshot-list', 'avm', '--name')).toBe('a1\na2\n\n');
  });

  test('snapshots survive kill -9 of the helper; undefine needs --snapshots-metadata and then takes them along', async () => {
    const before = await ok('alice', 'snapshot-list', 'avm', '--tree');
    const xml = await ok('alice', 'snapshot-dumpxml', 'avm', 'a2');
    const mark = vg.output().length;
    process.kill(vg.helperPid(), 'SIGKILL');
    await vg.waitFor(/helper connected/, 15000, mark);
    expect(await ok('alice', 'snapshot-list', 'avm', '--tree')).toBe(before);
    expect(await ok('alice', 'snapshot-dumpxml', 'avm', 'a2')).toBe(xml);
    expect(await ok('alice', 'snapshot-current', 'avm', '--name')).toBe('a1\n');
    await ok('bob', 'snapshot-create-as', 'bvm', 'b2');
    await fails('bob', ['undefine', 'bvm'], 'cannot delete inactive domain with 2 snapshots');
    await ok('bob', 'undefine', 'bvm', '--snapshots-metadata');
    await ok('bob', 'define', file('bvm2.xml', vmXml('bvm')));
    expect(await ok('bob', 'snapshot-list', 'bvm', '--name')).toBe('\n'); // the new VM of that name has none
  });

  test('every snapshot write is audited with the VM (name, tenant) and the snapshot name; hidden lookups are denials', async () => {
    type Rec = {
      kind: string;
      decision?: { result: string };
      what: { procedure: string; object?: { kind: string; name: string; tenant: string }; args?: Record<string, unknown> };
    };
    const recs = fs
      .readFileSync(path.join(home, 'log', 'audit.log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Rec)
      .filter((r) => r.kind === 'intent' || r.kind === 'denial');
    const find = (procedure: string, key: string, name: string, result = 'allow') =>
      recs.find((r) => r.what.procedure === procedure && r.what.args?.[key] === name && r.decision?.result === result);
    expect(find('domainSnapshotCreateXml', 'snapshotName', 'a1')?.what.object).toMatchObject({ kind: 'domain', name: 'avm', tenant: 'acme' });
    expect(find('domainSnapshotCreateXml', 'snapshotName', 'b1')?.what.object).toMatchObject({ kind: 'domain', name: 'bvm', tenant: 'globex' });
    expect(find('domainRevertToSnapshot', 'snapshotName', 'a1')?.what.object).toMatchObject({ kind: 'domain', name: 'avm', tenant: 'acme' });
    expect(find('domainSnapshotDelete', 'snapshotName', 'gone')?.what.object).toMatchObject({ kind: 'domain', name: 'avm', tenant: 'acme' });
    // bob's attempts on avm ended at virsh's lookup of the VM: recorded as denials naming the real VM.
    const hidden = recs.filter((r) => /^domainLookupBy(Name|Uuid)$/.test(r.what.procedure) && r.decision?.result === 'deny' && r.what.object?.name === 'avm');
    expect(hidden.length).toBeGreaterThanOrEqual(2);
    expect(hidden[0].what.object).toMatchObject({ kind: 'domain', name: 'avm', tenant: 'acme' });
    // carol's create reached the decision on bvm and was refused there, with the snapshot's name.
    expect(find('domainSnapshotCreateXml', 'snapshotName', 'c1', 'deny')?.what.object).toMatchObject({ name: 'bvm', tenant: 'globex' });
  });
});
