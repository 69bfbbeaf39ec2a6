// SPDX-License-Identifier: Apache-2.0
// virt-install (Debian virtinst) with `--disk size=1` against virtgate: it creates the `default` pool at
// /var/lib/libvirt/images (define, build, start, autostart), a 1 GiB qcow2 volume in it, and the domain using it.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { describeIf, tool, virshTool } from '../helpers/skip';

const run = promisify(execFile);

async function cmd(argv: string[]): Promise<{ rc: number; out: string }> {
  try {
    const { stdout, stderr } = await run(argv[0], argv.slice(1), { timeout: 120000 });
    return { rc: 0, out: stdout + stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { rc: typeof x.code === 'number' ? x.code : -1, out: x.stdout + x.stderr };
  }
}

describeIf([tool('virt-install', 'virtinst'), virshTool()], 'virt-install --disk size=1 against virtgate', () => {
  let vg: RunningDaemon;
  beforeAll(async () => {
    vg = await startDaemon({ tcp: true, policy: 'g, unix:root, host-admin, *\ng, tcp:anonymous, host-admin, *\n' });
  });
  afterAll(async () => vg?.stop());

  test('creates the default pool, the disk volume and the domain', async () => {
    const vi = await cmd([
      'virt-install',
      '--connect',
      vg.uri,
      '--name',
      'vm1',
      '--memory',
      '512',
      '--disk',
      'size=1',
      '--import',
      '--noautoconsole',
      '--graphics',
      'none',
      '--osinfo',
      'detect=on,require=off',
    ]);
    expect({ rc: vi.rc, out: vi.out }).toMatchObject({ rc: 0 });
    expect(vi.out).toContain('Domain creation completed.');
    const virsh = async (...a: string[]): Promise<string> => (await cmd(['virsh', '-c', vg.uri, ...a])).out;
    expect(await virsh('pool-info', 'default')).toMatch(/State:\s+running\n[\s\S]*Autostart:\s+yes/);
    expect(await virsh('pool-dumpxml', 'default')).toContain('<path>/var/lib/libvirt/images</path>');
    expect(await virsh('vol-info', '/var/lib/libvirt/images/vm1.qcow2')).toContain('Capacity:       1.00 GiB');
    expect(await virsh('vol-dumpxml', '/var/lib/libvirt/images/vm1.qcow2')).toContain("<format type='qcow2'/>");
    expect(await virsh('dumpxml', 'vm1')).toContain("<source file='/var/lib/libvirt/images/vm1.qcow2'/>");
    expect(await virsh('domstate', 'vm1')).toBe('running\n\n');
  });
});
