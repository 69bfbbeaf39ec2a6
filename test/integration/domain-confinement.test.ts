// SPDX-License-Identifier: Apache-2.0
// A tenant's VM may name only its tenant's (or shared) volumes and networks: attacks through real connections as local
// users alice (owner, acme) and bob (owner, globex), with virsh. A disk on /etc/shadow, on bob's volume, on a host
// device; an interface on bob's network or a host bridge; a host directory share: all refused with a clear error,
// nothing defined, and the refusal is in the audit log. Alice's own and the shared volumes and networks work; the host
// admin (no tenant) is not confined.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { describeIf, virshTool } from '../helpers/skip';
import { type Result, asUser, exec, ids, localUsers } from '../helpers/users';

const USERS = ['alice', 'bob'];
const POLICY = 'g, alice, owner, acme\ng, bob, owner, globex\n';

describeIf([...localUsers(USERS, 'domain confinement as other local users'), virshTool()], "a tenant's VM names only its tenant's resources", () => {
  let vg: RunningDaemon;
  let home: string;
  const tenantOf: Record<string, string | undefined> = { alice: 'acme', bob: 'globex', root: undefined };
  const uri = (user: string): string => `test+unix:///default?socket=${vg.sock}${tenantOf[user] ? `&tenant=${tenantOf[user]}` : ''}`;
  const virsh = (user: string, ...args: string[]): Promise<Result> => exec([...asUser(user, home), 'virsh', '-c', uri(user), ...args]);
  const ok = async (user: string, ...args: string[]): Promise<string> => {
    const r = await virsh(user, ...args);
    expect({ args, err: r.err, rc: r.rc }).toEqual({ args, err: '', rc: 0 });
    return r.out;
  };
  let n = 0;
  // Writes a domain XML with these devices where `user` can read it; returns its path.
  const vmXml = (devices: string, name = `c${++n}`): string => {
    const f = path.join(home, 'u', 'shared', `${name}.xml`);
    fs.writeFileSync(f, `<domain type='test'><name>${name}</name><memory>1024</memory><os><type>hvm</type></os><devices>${devices}</devices></domain>\n`);
    fs.chmodSync(f, 0o644);
    return f;
  };
  const refused = async (user: string, devices: string, what: RegExp): Promise<void> => {
    for (const verb of ['define', 'create']) {
      const r = await virsh(user, verb, vmXml(devices));
      expect(r.rc).toBe(1);
      expect(r.err).toMatch(/error: operation forbidden: /);
      expect(r.err).toMatch(what);
    }
  };

  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-confine-'));
    fs.chmodSync(home, 0o755);
    fs.mkdirSync(path.join(home, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(home, 'etc', 'virtgate.conf'), 'unixSocketMode = 0o666\n');
    fs.mkdirSync(path.join(home, 'u', 'shared'), { recursive: true, mode: 0o755 });
    for (const u of USERS) {
      fs.mkdirSync(path.join(home, 'u', u), { recursive: true });
      const { uid, gid } = ids(u);
      fs.chownSync(path.join(home, 'u', u), uid, gid);
    }
    vg = await startDaemon({ home, policy: POLICY });
    await ok('alice', 'pool-define-as', 'apool', 'dir', '--target', '/var/lib/libvirt/apool');
    await ok('alice', 'pool-start', 'apool');
    await ok('alice', 'vol-create-as', 'apool', 'a.qcow2', '1G');
    await ok('bob', 'pool-define-as', 'bpool', 'dir', '--target', '/var/lib/libvirt/bpool');
    await ok('bob', 'pool-start', 'bpool');
    await ok('bob', 'vol-create-as', 'bpool', 'b.qcow2', '1G');
    await ok('root', 'vol-create-as', 'default-pool', 'shared.img', '10M');
    fs.writeFileSync(path.join(home, 'u', 'shared', 'bnet.xml'), "<network><name>bnet</name><bridge name='vbrb'/></network>\n");
    await ok('bob', 'net-define', path.join(home, 'u', 'shared', 'bnet.xml'));
  });
  afterAll(async () => vg?.stop());

  test('host paths, host devices and host shares are refused', async () => {
    await refused(
      'alice',
      "<disk type='file'><source file='/etc/shadow'/><target dev='vda'/></disk>",
      /disk 'vda' \(file '\/etc\/shadow'\) is not a volume the VM may use/,
    );
    await refused('alice', "<disk type='block'><source dev='/dev/sda'/><target dev='vda'/></disk>", /disk 'vda' \(block '\/dev\/sda'\)/);
    await refused('alice', "<disk type='file'><source file='/var/lib/libvirt/apool/../bpool/b.qcow2'/><target dev='vda'/></disk>", /is not a volume/);
    await refused('alice', "<filesystem type='mount'><source dir='/'/><target dir='root'/></filesystem>", /<filesystem> device names a resource of the host/);
    await refused('alice', "<serial type='file'><source path='/etc/passwd'/><target port='0'/></serial>", /<serial type='file'>/);
    await refused('alice', "<interface type='bridge'><source bridge='br0'/></interface>", /interface of type 'bridge' on bridge 'br0'/);
    await refused('alice', "<interface type='direct'><source dev='eth0' mode='vepa'/></interface>", /interface of type 'direct'/);
  });

  test("another tenant's volume (by path or by pool/volume) and network are refused", async () => {
    await refused('alice', "<disk type='file'><source file='/var/lib/libvirt/bpool/b.qcow2'/><target dev='vda'/></disk>", /is not a volume the VM may use/);
    await refused('alice', "<disk type='volume'><source pool='bpool' volume='b.qcow2'/><target dev='vda'/></disk>", /volume 'bpool\/b.qcow2'/);
    await refused('alice', "<interface type='network'><source network='bnet'/></interface>", /on network 'bnet' is not a network the VM may use/);
    expect((await virsh('alice', 'list', '--all', '--name')).out).not.toMatch(/^c\d+$/m); // nothing was defined
  });

  test('its own and shared volumes and networks work; an empty CD-ROM and user networking too', async () => {
    const f = vmXml(
      "<disk type='file'><source file='/var/lib/libvirt/apool/a.qcow2'/><target dev='vda'/></disk>" +
        "<disk type='volume'><source pool='default-pool' volume='shared.img'/><target dev='vdb'/></disk>" +
        "<disk type='file' device='cdrom'><target dev='hdc' bus='ide'/></disk>" +
        "<interface type='network'><source network='default'/></interface><interface type='user'/>" +
        "<serial type='pty'><target port='0'/></serial>",
      'good',
    );
    await ok('alice', 'define', f);
    expect(await ok('alice', 'domblklist', 'good')).toMatch(/vda\s+\/var\/lib\/libvirt\/apool\/a.qcow2/);
  });

  test('the host admin is not confined (it manages the host itself, as libvirtd root does)', async () => {
    await ok(
      'root',
      'define',
      vmXml(
        "<disk type='file'><source file='/srv/images/x.img'/><target dev='vda'/></disk><interface type='bridge'><source bridge='br0'/></interface>",
        'admin1',
      ),
    );
  });

  test('each refusal is in the audit log, with who asked and why', async () => {
    const log = fs.readFileSync(path.join(vg.home, 'log', 'audit.log'), 'utf8');
    const refusals = log.split('\n').filter((l) => l.includes('VG_ERR_RESOURCE_DENIED'));
    expect(refusals.length).toBeGreaterThanOrEqual(20);
    expect(refusals.some((l) => l.includes('"user":"alice","tenant":"acme"') && l.includes("file '/etc/shadow'"))).toBe(true);
  });
});
