// SPDX-License-Identifier: Apache-2.0
// Save and restore to a file, attacked by local users through virsh: alice (owner, acme) and bob (owner, globex) may
// only use files directly in STATE/saves/TENANT/; root (a host admin) any absolute path. The root helper must never
// write a host file for a tenant, read one back, follow a planted link, restore another tenant's VM or a forged
// definition, or take a corrupt image; every attempt leaves the VM as it was, and every write is audited and
// journaled with its path.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { describeIf, virshTool } from '../helpers/skip';
import { type Result, asUser, exec, ids, localUsers } from '../helpers/users';

const USERS = ['alice', 'bob'];
const POLICY = 'g, alice, owner, acme\ng, bob, owner, globex\n';
const NEEDS = [...localUsers(USERS, 'save/restore tenancy as other local users'), virshTool()];
const vmXml = (name: string) => `<domain type='test'><name>${name}</name><memory>1024</memory><os><type>hvm</type></os></domain>\n`;

describeIf(NEEDS, 'save and restore to a file per tenant, through virsh', () => {
  let vg: RunningDaemon;
  let home: string;
  let saves: string; // STATE/saves
  const tenantOf: Record<string, string | undefined> = { alice: 'acme', bob: 'globex', root: undefined };
  const uri = (user: string): string => `test+unix:///default?socket=${vg.sock}${tenantOf[user] ? `&tenant=${tenantOf[user]}` : ''}`;
  const virsh = (user: string, ...args: string[]): Promise<Result> => exec([...asUser(user, home), 'virsh', '-c', uri(user), ...args]);
  const ok = async (user: string, ...args: string[]): Promise<string> => {
    const r = await virsh(user, ...args);
    expect({ args, err: r.err, rc: r.rc }).toEqual({ args, err: '', rc: 0 });
    return r.out;
  };
  const fails = async (user: string, args: string[], err: string | RegExp): Promise<void> => {
    const r = await virsh(user, ...args);
    expect({ args, rc: r.rc }).toEqual({ args, rc: 1 });
    if (typeof err === 'string') expect(r.err).toContain(err);
    else expect(r.err).toMatch(err);
  };
  const state = async (user: string, vm: string): Promise<string> => (await ok(user, 'domstate', vm, '--reason')).trim();
  const file = (name: string, text: string): string => {
    const p = path.join(home, 'u', 'shared', name);
    fs.writeFileSync(p, text, { mode: 0o644 });
    return p;
  };
  const acme = (name: string) => path.join(saves, 'acme', name);
  const globex = (name: string) => path.join(saves, 'globex', name);

  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-save-rbac-'));
    fs.chmodSync(home, 0o755);
    fs.mkdirSync(path.join(home, 'etc'), { recursive: true });
    fs.mkdirSync(path.join(home, 'u', 'shared'), { recursive: true, mode: 0o755 });
    fs.writeFileSync(path.join(home, 'etc', 'virtgate.conf'), 'unixSocketMode = 0o666\n');
    for (const u of USERS) {
      fs.mkdirSync(path.join(home, 'u', u), { recursive: true });
      const { uid, gid } = ids(u);
      fs.chownSync(path.join(home, 'u', u), uid, gid);
    }
    saves = path.join(home, 'lib', 'saves');
    vg = await startDaemon({ home, policy: POLICY });
    await ok('alice', 'define', file('avm.xml', vmXml('avm')));
    await ok('alice', 'start', 'avm');
    await ok('bob', 'define', file('bvm.xml', vmXml('bvm')));
    await ok('bob', 'start', 'bvm');
  }, 120000);
  afterAll(async () => vg?.stop());

  test('a tenant saves to and restores from its own directory, created 0700 on first use', async () => {
    expect(await ok('alice', 'save', 'avm', acme('a1.img'))).toContain(`Domain 'avm' saved to ${acme('a1.img')}`);
    expect(await state('alice', 'avm')).toBe('shut off (saved)');
    const st = fs.statSync(path.join(saves, 'acme'));
    expect([st.mode & 0o777, st.uid]).toEqual([0o700, process.getuid!()]);
    expect(fs.statSync(acme('a1.img')).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(acme('a1.img'), 'utf8').startsWith('virtgate-save-image 1\n{')).toBe(true); // ours, no XML
    expect(await ok('alice', 'save-image-dumpxml', acme('a1.img'))).toContain('<name>avm</name>');
    expect(await ok('alice', 'restore', acme('a1.img'))).toContain('Domain restored from');
    expect(await state('alice', 'avm')).toBe('running (restored)');
  });

  test('a tenant names no host file: /etc/cron.d, /etc/shadow, relative and .. paths', async () => {
    const only = `tenant 'acme' may save to and restore from files directly in ${path.join(saves, 'acme')}/ only`;
    await fails('alice', ['save', 'avm', '/etc/cron.d/x'], `error: operation forbidden: ${only}, not '/etc/cron.d/x'`);
    expect(fs.existsSync('/etc/cron.d/x')).toBe(false);
    await fails('alice', ['dump', 'avm', '/etc/cron.d/y'], `error: operation forbidden: ${only}, not '/etc/cron.d/y'`);
    expect(fs.existsSync('/etc/cron.d/y')).toBe(false);
    await fails('alice', ['dump', 'bvm', acme('b.core')], "error: failed to get domain 'bvm'"); // another tenant's VM
    await fails('alice', ['restore', '/etc/shadow'], `error: operation forbidden: ${only}, not '/etc/shadow'`);
    await fails('alice', ['save-image-dumpxml', '/etc/shadow'], 'error: operation forbidden');
    await fails('alice', ['save-image-define', '/etc/shadow', file('x.xml', vmXml('avm'))], 'error: operation forbidden');
    // virsh makes paths absolute and canonical before sending (libvirt's client library does), so `..` and relative
    // paths arrive resolved and meet the directory rule; raw ones are refused before the helper (unit tests).
    await fails('alice', ['save', 'avm', `${path.join(saves, 'acme')}/../globex/x.img`], `not '${globex('x.img')}'`);
    await fails('alice', ['save', 'avm', `${path.join(saves, 'acme')}/sub/x.img`], 'error: operation forbidden');
    await fails('alice', ['save', 'avm', 'rel.img'], 'error: operation forbidden');
    expect(await state('alice', 'avm')).toBe('running (restored)');
    expect(fs.existsSync(globex('x.img'))).toBe(false);
  });

  test('a link planted in the tenant directory is neither written through nor read through', async () => {
    const passwd = fs.readFileSync('/etc/passwd');
    fs.symlinkSync('/etc/passwd', acme('link.img'));
    await fails('alice', ['save', 'avm', acme('link.img')], `saving domain 'avm' to '${acme('link.img')}': open failed: File exists`);
    await fails('alice', ['restore', acme('link.img')], `cannot read domain image '${acme('link.img')}': Too many levels of symbolic links`);
    await fails('alice', ['save-image-define', acme('link.img'), file('l.xml', vmXml('avm'))], 'Too many levels of symbolic links');
    // A hard link (same inode) where the file systems allow one: refused as an existing file, read as a non-image.
    let linked = true;
    try {
      fs.linkSync('/etc/passwd', acme('hard.img'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
      linked = false;
    }
    if (linked) {
      await fails('alice', ['save', 'avm', acme('hard.img')], 'open failed: File exists');
      await fails('alice', ['restore', acme('hard.img')], 'internal error: mismatched header magic');
      fs.unlinkSync(acme('hard.img'));
    }
    expect(fs.readFileSync('/etc/passwd')).toEqual(passwd);
    expect(fs.lstatSync(acme('link.img')).isSymbolicLink()).toBe(true);
    expect(await state('alice', 'avm')).toBe('running (restored)');
  });

  test("another tenant's image is refused, in its directory or copied into one's own", async () => {
    await ok('bob', 'save', 'bvm', globex('b1.img'));
    await fails('alice', ['restore', globex('b1.img')], 'error: operation forbidden');
    await fails('alice', ['save-image-dumpxml', globex('b1.img')], 'error: operation forbidden');
    fs.copyFileSync(globex('b1.img'), acme('stolen.img'));
    await fails('alice', ['restore', acme('stolen.img')], `save image '${acme('stolen.img')}' holds a domain of another tenant`);
    await fails('alice', ['save-image-dumpxml', acme('stolen.img')], 'holds a domain of another tenant');
    await fails('alice', ['save-image-define', acme('stolen.img'), file('s.xml', vmXml('bvm'))], 'holds a domain of another tenant');
    // A forged image that claims to be acme's but names bob's VM (its uuid, or its name): refused, naming nothing.
    const bvmUuid = (await ok('bob', 'domuuid', 'bvm')).trim();
    const mine = JSON.parse(fs.readFileSync(acme('a1.img'), 'utf8').split('\n')[1]) as { def: { name: string; uuid: string } };
    for (const [name, uuid] of [
      ['avm-copy', bvmUuid],
      ['bvm', '3f0e4a2c-7d1b-4c55-9a8e-2b6d1c0f9e11'],
    ]) {
      fs.writeFileSync(acme(`claim-${name}.img`), `virtgate-save-image 1\n${JSON.stringify({ ...mine, def: { ...mine.def, name, uuid } })}\n`);
      await fails('alice', ['restore', acme(`claim-${name}.img`)], 'error: operation failed: name or uuid is not available');
    }
    expect(await state('bob', 'bvm')).toBe('shut off (saved)');
    await ok('bob', 'restore', globex('b1.img'));
    expect(await state('bob', 'bvm')).toBe('running (restored)');
  });

  test('an image forged with a host disk is refused at define and at restore', async () => {
    await ok('alice', 'save', 'avm', acme('a2.img'));
    const uuid = (await ok('alice', 'domuuid', 'avm')).trim();
    const hostDisk =
      `<domain type='test'><name>avm</name><uuid>${uuid}</uuid><memory>1024</memory><os><type>hvm</type></os>` +
      `<devices><disk type='file' device='disk'><source file='/etc/shadow'/><target dev='vda'/></disk></devices></domain>\n`;
    await fails('alice', ['save-image-define', acme('a2.img'), file('h.xml', hostDisk)], /disk 'vda' \(file '\/etc\/shadow'\) is not a volume the VM may use/);
    // A host admin may put one in (it is the host's own business), but the tenant cannot restore it.
    await ok('root', 'save-image-define', acme('a2.img'), file('h.xml', hostDisk));
    expect(await ok('root', 'save-image-dumpxml', acme('a2.img'))).toContain("<source file='/etc/shadow'/>");
    await fails('alice', ['restore', acme('a2.img')], /disk 'vda' \(file '\/etc\/shadow'\) is not a volume the VM may use/);
    // So is a forged file with the tenant's name in it, written straight into the directory.
    const forged = JSON.parse(fs.readFileSync(acme('a1.img'), 'utf8').split('\n')[1]) as { def: { devices: unknown[] } };
    forged.def.devices = [
      {
        tag: 'disk',
        attrs: { type: 'block', device: 'disk' },
        text: '',
        kids: [
          { tag: 'source', attrs: { dev: '/dev/sda' }, text: '', kids: [] },
          { tag: 'target', attrs: { dev: 'vdb' }, text: '', kids: [] },
        ],
      },
    ];
    fs.writeFileSync(acme('forged.img'), `virtgate-save-image 1\n${JSON.stringify(forged)}\n`);
    await fails('alice', ['restore', acme('forged.img')], /disk 'vdb' \(block '\/dev\/sda'\) is not a volume the VM may use/);
    expect(await state('alice', 'avm')).toBe('shut off (saved)');
    await ok('root', 'restore', acme('a2.img')); // the host admin restores it, as libvirtd's root could
    expect(await state('alice', 'avm')).toBe('running (restored)');
    await ok('root', 'destroy', 'avm'); // back to its own config, without the host's disk
    await ok('alice', 'start', 'avm');
  });

  test('a corrupt or truncated image changes nothing', async () => {
    await ok('alice', 'save', 'avm', acme('a3.img'));
    const good = fs.readFileSync(acme('a3.img'));
    fs.writeFileSync(acme('trunc.img'), good.subarray(0, good.length - 40));
    await fails('alice', ['restore', acme('trunc.img')], `incomplete metadata in '${acme('trunc.img')}'`);
    fs.writeFileSync(acme('short.img'), good.subarray(0, 5));
    await fails('alice', ['restore', acme('short.img')], 'incomplete save header');
    fs.writeFileSync(acme('bad.img'), good.toString('utf8').replace('"maxMemKiB":"1024"', '"maxMemKiB":"x"'));
    await fails('alice', ['restore', acme('bad.img')], `save image '${acme('bad.img')}' is corrupt`);
    fs.writeFileSync(acme('huge.img'), Buffer.alloc(5 * 1024 * 1024));
    await fails('alice', ['restore', acme('huge.img')], 'File too large');
    fs.mkdirSync(acme('dir.img'));
    await fails('alice', ['restore', acme('dir.img')], 'Is a directory');
    expect(await state('alice', 'avm')).toBe('shut off (saved)');
    await ok('alice', 'restore', acme('a3.img'));
    expect(await state('alice', 'avm')).toBe('running (restored)');
  });

  test('every save and restore is audited and journaled with its path', async () => {
    type Rec = {
      kind: string;
      who?: { user: string; tenant: string };
      decision?: { result: string };
      what: { procedure: string; object?: { name: string; tenant: string }; args?: Record<string, unknown> };
    };
    const recs = fs
      .readFileSync(path.join(home, 'log', 'audit.log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Rec)
      .filter((r) => r.kind === 'intent');
    const save = recs.find((r) => r.what.procedure === 'domainSave' && r.what.args?.to === acme('a1.img'));
    expect(save?.what.object).toMatchObject({ name: 'avm', tenant: 'acme' });
    // alice's refused attempt on the same path is recorded too (the helper refused it, past the policy)
    const restores = recs.filter((r) => r.what.procedure === 'domainRestore' && r.what.args?.from === globex('b1.img'));
    expect(restores.map((r) => r.who?.user).sort()).toEqual(['alice', 'bob']);
    expect(restores.find((r) => r.who?.user === 'bob')).toMatchObject({
      who: { user: 'bob', tenant: 'globex' },
      what: { helperOp: 'DOMAIN_WRITE_REQ.restoreFrom' },
    });
    const journal = fs
      .readFileSync(path.join(home, 'lib', 'helper-journal.log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { phase?: string; path?: string; tenant?: string; uuid?: string });
    expect(journal.find((j) => j.phase === 'begin' && j.path === acme('a1.img'))).toMatchObject({ tenant: 'acme' });
    expect(journal.find((j) => j.phase === 'begin' && j.path === acme('a2.img') && j.tenant === '')).toBeDefined(); // root's define
  });
});
