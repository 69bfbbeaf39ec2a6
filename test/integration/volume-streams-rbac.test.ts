// SPDX-License-Identifier: Apache-2.0
// Volume upload/download per tenant, through virsh run as local users (peer uid = identity): an owner moves bytes in
// and out of its own volumes (audited with its tenant, the volume and the byte count); another tenant's volume is
// absent; the shared pool's volumes are not a tenant's to write; a viewer may neither upload nor download.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { describeIf, virshTool } from '../helpers/skip';
import { type Result, asUser, exec, ids, localUsers } from '../helpers/users';

const USERS = ['alice', 'bob', 'carol'];
const POLICY = 'g, alice, owner, acme\ng, bob, owner, globex\ng, carol, viewer, globex\n';
const NEEDS = [...localUsers(USERS, 'volume streams as other local users'), virshTool()];
const DENIED = "access denied: 'virtgate' denied access";

describeIf(NEEDS, 'volume upload/download per tenant, through virsh', () => {
  let vg: RunningDaemon;
  let home: string;
  const tenantOf: Record<string, string | undefined> = { alice: 'acme', bob: 'globex', carol: 'globex', root: undefined };
  const uri = (user: string): string => `test+unix:///default?socket=${vg.sock}${tenantOf[user] ? `&tenant=${tenantOf[user]}` : ''}`;
  const virsh = (user: string, ...args: string[]): Promise<Result> => exec([...asUser(user, home), 'virsh', '-c', uri(user), ...args]);
  const ok = async (user: string, ...args: string[]): Promise<string> => {
    const r = await virsh(user, ...args);
    expect({ args, err: r.err, rc: r.rc }).toEqual({ args, err: '', rc: 0 });
    return r.out;
  };
  const file = (user: string, name: string): string => path.join(home, 'u', user, name);

  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-volstream-rbac-'));
    fs.chmodSync(home, 0o755);
    fs.mkdirSync(path.join(home, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(home, 'etc', 'virtgate.conf'), 'unixSocketMode = 0o666\n');
    for (const u of USERS) {
      fs.mkdirSync(path.join(home, 'u', u), { recursive: true });
      const { uid, gid } = ids(u);
      fs.chownSync(path.join(home, 'u', u), uid, gid);
    }
    vg = await startDaemon({ home, policy: POLICY });
    await ok('alice', 'pool-define-as', 'apool', 'dir', '--target', '/var/lib/libvirt/apool');
    await ok('alice', 'pool-start', 'apool');
    await ok('alice', 'vol-create-as', 'apool', 'disk', '2M');
    await ok('bob', 'pool-define-as', 'bpool', 'dir', '--target', '/var/lib/libvirt/bpool');
    await ok('bob', 'pool-start', 'bpool');
    await ok('bob', 'vol-create-as', 'bpool', 'bdisk', '1M');
    await ok('root', 'vol-create-as', 'default-pool', 'shared.iso', '1M');
    for (const u of USERS) {
      fs.writeFileSync(file(u, 'in.img'), Buffer.alloc(300_000, u.charCodeAt(0)));
      const { uid, gid } = ids(u);
      fs.chownSync(file(u, 'in.img'), uid, gid);
    }
  });
  afterAll(async () => vg?.stop());

  test('an owner uploads into and downloads from its own volume; audited with its tenant, the volume and the bytes', async () => {
    await ok('alice', 'vol-upload', '--pool', 'apool', 'disk', file('alice', 'in.img'));
    await ok('alice', 'vol-download', '--pool', 'apool', 'disk', file('alice', 'out.img'));
    const got = fs.readFileSync(file('alice', 'out.img'));
    expect(got.length).toBe(2 * 1024 * 1024);
    expect(got.subarray(0, 300_000).equals(Buffer.alloc(300_000, 'a'.charCodeAt(0)))).toBe(true);
    expect(got.subarray(300_000).every((x) => x === 0)).toBe(true);
    const audit = fs.readFileSync(path.join(home, 'log', 'audit.log'), 'utf8').split('\n');
    const outcome = audit.find((l) => l.includes('"kind":"outcome"') && l.includes('"procedure":"storageVolUpload"'))!;
    expect(outcome).toContain('"who":{"user":"alice","tenant":"acme"');
    expect(outcome).toContain('"object":{"kind":"storage_vol","name":"apool/disk","tenant":"acme"}');
    expect(outcome).toContain('"helperOp":"VOLUME_WRITE_REQ.upload"');
    const rid = /"requestId":"([^"]+)"/.exec(outcome)![1];
    const end = audit.find((l) => l.includes('"stream-end"') && l.includes(`"requestId":"${rid}"`))!;
    expect(end).toContain('"user":"alice","tenant":"acme"');
    expect(end).toContain('"object":"apool/disk","objectTenant":"acme","offset":"0","bytes":300000,"end":"finished"');
    // The helper journaled the upload once (not per chunk), under the same request id.
    const journal = fs.readFileSync(path.join(home, 'lib', 'helper-journal.log'), 'utf8');
    expect(
      journal
        .split('\n')
        .filter((l) => l.includes(`"requestId":"${rid}"`))
        .map((l) => JSON.parse(l).phase),
    ).toEqual(['begin', 'end']);
  });

  test("another tenant's volume is absent; the shared pool's is not a tenant's to write; a viewer moves no bytes", async () => {
    const bobUp = await virsh('bob', 'vol-upload', '/var/lib/libvirt/apool/disk', file('bob', 'in.img'));
    expect(bobUp.err).toMatch(/Storage volume not found: no storage vol with matching path/);
    const bobDown = await virsh('bob', 'vol-download', '--pool', 'apool', 'disk', file('bob', 'x.img'));
    expect(bobDown.err).toMatch(/Storage pool not found: no storage pool with matching name 'apool'/);
    const shared = await virsh('bob', 'vol-upload', '--pool', 'default-pool', 'shared.iso', file('bob', 'in.img'));
    expect(shared.err).toContain(DENIED);
    for (const args of [
      ['vol-upload', '--pool', 'bpool', 'bdisk', file('carol', 'in.img')],
      ['vol-download', '--pool', 'bpool', 'bdisk', file('carol', 'x.img')],
    ]) {
      const r = await virsh('carol', ...args);
      expect([args[0], r.err]).toEqual([args[0], expect.stringContaining(DENIED)]);
    }
    // Nothing reached the volumes.
    await ok('root', 'vol-download', '--pool', 'apool', 'disk', path.join(home, 'check-a.img'));
    expect(
      fs
        .readFileSync(path.join(home, 'check-a.img'))
        .subarray(0, 300_000)
        .every((x) => x === 'a'.charCodeAt(0)),
    ).toBe(true);
    await ok('root', 'vol-download', '--pool', 'default-pool', 'shared.iso', path.join(home, 'check-s.img'));
    expect(fs.readFileSync(path.join(home, 'check-s.img')).every((x) => x === 0)).toBe(true);
    await ok('root', 'vol-download', '--pool', 'bpool', 'bdisk', path.join(home, 'check-b.img'));
    expect(fs.readFileSync(path.join(home, 'check-b.img')).every((x) => x === 0)).toBe(true);
  });
});
