// SPDX-License-Identifier: Apache-2.0
// Per-tenant pools named `default` with the qemu driver (issue 14), through real connections: local users alice (acme)
// and bob (globex) each see exactly their own `default` (made by the helper on first need, TENANT_ROOT/<tenant>/default,
// root 0700), never the other's, by name or by uuid; volumes made in one are invisible to the other; the host admin
// sees every pool and finds the host's own `default` by name. No client defines or creates any of them.
import fs from 'node:fs';
import path from 'node:path';
import { type RunningQemuDaemon, startQemuDaemon } from '../helpers/daemon';
import { launcherRequirements } from '../helpers/launcher';
import { describeIf, virshTool } from '../helpers/skip';
import { type Result, asUser, exec, localUsers } from '../helpers/users';

jest.setTimeout(60000);
const USERS = ['alice', 'bob'];
const POLICY = 'g, unix:root, host-admin, *\ng, alice, owner, acme\ng, bob, owner, globex\n';

describeIf(
  [...localUsers(USERS, 'per-tenant default pools as other local users'), virshTool(), ...launcherRequirements()],
  "every tenant's own `default` pool",
  () => {
    let vg: RunningQemuDaemon;
    const tenantOf: Record<string, string> = { alice: 'acme', bob: 'globex' };
    const virsh = (user: string, ...args: string[]): Promise<Result> =>
      user === 'root' ? exec(['virsh', '-c', vg.uri, ...args]) : exec([...asUser(user, vg.home), 'virsh', '-c', `${vg.uri}&tenant=${tenantOf[user]}`, ...args]);
    const ok = async (user: string, ...args: string[]): Promise<string> => {
      const r = await virsh(user, ...args);
      expect({ user, args, err: r.err, rc: r.rc }).toEqual({ user, args, err: '', rc: 0 });
      return r.out;
    };
    const uuids: Record<string, string> = {};
    // The front end reconnects to a restarted helper on its own: calls fail meanwhile.
    const until = async (call: () => Promise<Result>): Promise<Result> => {
      for (let i = 0; ; i++) {
        const r = await call();
        if (r.rc === 0 || i > 50) return r;
        await new Promise((res) => setTimeout(res, 200));
      }
    };

    beforeAll(async () => {
      vg = await startQemuDaemon({ policy: POLICY, conf: 'unixSocketMode = 0o666\n', otherUsers: true });
    });
    afterAll(async () => vg?.stop());

    test('alice and bob each list exactly one pool, `default`, their own (different uuids, own directories)', async () => {
      for (const u of USERS) {
        expect((await ok(u, 'pool-list', '--all', '--name')).trim()).toBe('default');
        uuids[u] = (await ok(u, 'pool-uuid', 'default')).trim();
        const xml = await ok(u, 'pool-dumpxml', 'default');
        const dir = path.join(vg.home, 'lib', 'pools', tenantOf[u], 'default');
        expect(xml).toContain(`<path>${dir}</path>`);
        const st = fs.statSync(dir);
        expect([st.uid, st.mode & 0o777]).toEqual([0, 0o700]);
        expect(await ok(u, 'pool-info', 'default')).toMatch(/State:\s+running[\s\S]*Autostart:\s+yes/);
      }
      expect(uuids.alice).toMatch(/^[0-9a-f-]{36}$/);
      expect(uuids.alice).not.toBe(uuids.bob);
    });

    test("another tenant's default is absent by uuid; volumes in alice's default are invisible to bob", async () => {
      for (const [u, other] of [
        ['alice', 'bob'],
        ['bob', 'alice'],
      ]) {
        const r = await virsh(u, 'pool-info', uuids[other]);
        expect(r.rc).toBe(1);
        expect(r.err).toMatch(/no storage pool with matching (uuid|name)/);
      }
      await ok('alice', 'vol-create-as', 'default', 'a.raw', '1M', '--format', 'raw');
      expect(await ok('alice', 'vol-list', 'default')).toMatch(/a\.raw/);
      expect(await ok('bob', 'vol-list', 'default')).not.toMatch(/a\.raw/);
      const r = await virsh('bob', 'vol-info', '--pool', 'default', 'a.raw');
      expect(r.rc).toBe(1);
      expect(r.err).toMatch(/no storage vol with matching (name|path) 'a\.raw'/); // virsh tries the name, then a path
      const byPath = await virsh('bob', 'vol-info', path.join(vg.home, 'lib', 'pools', 'acme', 'default', 'a.raw'));
      expect(byPath.rc).toBe(1);
      expect(fs.existsSync(path.join(vg.home, 'lib', 'pools', 'globex', 'default', 'a.raw'))).toBe(false);
      // A name only the other tenant has: absent, as a pool that does not exist.
      await ok('bob', 'pool-define-as', 'bonly', 'dir', '--target', path.join(vg.home, 'lib', 'pools', 'globex', 'bonly'));
      const only = await virsh('alice', 'pool-info', 'bonly');
      expect(only.rc).toBe(1);
      expect(only.err).toMatch(/no storage pool with matching name 'bonly'/);
      await ok('bob', 'pool-undefine', 'bonly');
    });

    test('bob may make a pool of any name, even one alice has; names are per tenant', async () => {
      await ok('alice', 'pool-define-as', 'data', 'dir', '--target', path.join(vg.home, 'lib', 'pools', 'acme', 'data'));
      await ok('bob', 'pool-define-as', 'data', 'dir', '--target', path.join(vg.home, 'lib', 'pools', 'globex', 'data'));
      expect(
        (await ok('alice', 'pool-list', '--all', '--name'))
          .trim()
          .split('\n')
          .map((l) => l.trim())
          .sort(),
      ).toEqual(['data', 'default']);
      expect(await ok('bob', 'pool-dumpxml', 'data')).toContain(path.join('globex', 'data'));
      // Alice's second `default` is refused as libvirt refuses a duplicate name.
      const dup = await virsh('alice', 'pool-define-as', 'default', 'dir', '--target', path.join(vg.home, 'lib', 'pools', 'acme', 'x'));
      expect(dup.rc).toBe(1);
      expect(dup.err).toMatch(/pool 'default' already exists/);
    });

    test("the host admin lists every pool; by name it finds the host's own `default`, by uuid a tenant's", async () => {
      const names = (await ok('root', 'pool-list', '--all', '--name'))
        .trim()
        .split('\n')
        .map((l) => l.trim())
        .sort();
      expect(names).toEqual(['data', 'data', 'default', 'default', 'default']);
      expect(await ok('root', 'pool-dumpxml', 'default')).toContain(`<path>${path.join(vg.home, 'lib', 'images', 'default')}</path>`);
      expect(await ok('root', 'pool-dumpxml', uuids.alice)).toContain(path.join('acme', 'default'));
      // Two tenants' `data` and no host one: a name alone does not say which.
      const amb = await virsh('root', 'pool-info', 'data');
      expect(amb.rc).toBe(1);
      expect(amb.err).toMatch(/2 tenants have one: look it up by uuid/);
    });

    test('after a helper restart every `default` is the same pool (none made again)', async () => {
      await vg.killHelper9();
      await vg.startHelper();
      for (const u of USERS) {
        const r = await until(() => virsh(u, 'pool-uuid', 'default'));
        expect(r.out.trim()).toBe(uuids[u]);
      }
    });

    test('the helper made the three `default` pools itself (journaled), no client defined or created one', () => {
      const lines = vg.journal().split('\n').filter(Boolean);
      const provisioned = lines.filter((l) => l.includes('POOL_PROVISION')).map((l) => /tenant '([^']*)'/.exec(l)?.[1]);
      expect(provisioned.sort()).toEqual(['', 'acme', 'globex']);
      const made = lines.filter((l) => /POOL_WRITE_REQ\.(define|create)\b/.test(l) && l.includes('"phase":"begin"'));
      expect(made.map((l) => /"name":"([^"]*)"/.exec(l)?.[1] ?? l)).not.toContain('default');
    });
  },
);
