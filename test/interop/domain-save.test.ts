// SPDX-License-Identifier: Apache-2.0
// virsh save / restore / save-image-dumpxml / save-image-define against virtgate and against libvirt's own
// test:///default, line for line. Each side gets its own temporary directory (our helper never overwrites an existing
// file, so paths cannot be shared); the directory is written as DIR in both outputs. Live ids are masked.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { describeIf, pyLibvirt, virshTool } from '../helpers/skip';

const run = promisify(execFile);

interface Result {
  rc: number;
  out: string;
  err: string;
}

async function virsh(uri: string, script: string, timeout = 90000): Promise<Result & { hung?: boolean }> {
  try {
    const { stdout, stderr } = await run('virsh', ['-c', uri, script], { timeout });
    return { rc: 0, out: stdout, err: stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string; killed?: boolean };
    return { rc: typeof x.code === 'number' ? x.code : -1, out: x.stdout, err: x.stderr, hung: x.killed === true };
  }
}

const mask = (s: string, dir: string): string =>
  s
    .split(dir)
    .join('DIR')
    .replace(/^Id:(\s+)[0-9]+$/gm, 'Id:$1N')
    .replace(/^ [0-9]+(\s+\S+\s+(?:running|paused))/gm, ' N$1')
    .replace(/^(CPU time:\s+)[0-9.]+s$/gm, '$1Ns');

const TRANSIENT =
  "<domain type='test'><name>sv-t</name><uuid>0b5b4e38-4f6e-4c5a-9e55-9b1d7f1e0a01</uuid><memory>1024</memory><os><type>hvm</type></os></domain>\n";
const EDITED = (() => {
  // test's definition with less memory and a title, as a client would edit it
  return (
    "<domain type='test'><name>test</name><uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid><title>edited</title>" +
    "<memory unit='KiB'>8388608</memory><currentMemory unit='KiB'>1048576</currentMemory><vcpu>2</vcpu>" +
    "<os><type arch='i686'>hvm</type><boot dev='hd'/></os><clock offset='utc'/><devices>" +
    "<disk type='file' device='disk'><source file='/guest/diskimage1'/><target dev='vda' bus='virtio'/></disk>" +
    "<interface type='network'><mac address='aa:bb:cc:dd:ee:ff'/><source network='default'/><target dev='testnet0'/></interface>" +
    "<memballoon model='virtio'/></devices></domain>\n"
  );
})();

describeIf(virshTool(), 'virsh: save and restore to a file against test:///default', () => {
  let vg: RunningDaemon;
  const dirs = { ours: '', theirs: '' };
  const cmp = async (script: (dir: string) => string): Promise<void> => {
    const ours = await virsh(vg.uri, script(dirs.ours));
    const before = fs.readdirSync(dirs.theirs); // what earlier scripts left there (images, dumps): the retry needs it
    let theirs = await virsh('test:///default', script(dirs.theirs), 20000);
    if (theirs.hung) {
      // virsh 9.0 against its own test driver sometimes never returns from a save/restore job (its job watcher keeps
      // polling virDomainGetJobInfo, seen in LIBVIRT_DEBUG logs): the reference is run again, in a fresh directory.
      process.stderr.write(`domain-save: virsh on test:///default hung on '${script('DIR')}'; run again in a fresh directory\n`);
      const again = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-save-theirs-'));
      for (const f of before) fs.cpSync(path.join(dirs.theirs, f), path.join(again, f), { recursive: true, preserveTimestamps: true });
      fs.rmSync(dirs.theirs, { recursive: true, force: true });
      dirs.theirs = again;
      theirs = await virsh('test:///default', script(dirs.theirs), 20000);
    }
    const view = (r: Result, dir: string) => ({ script: script('DIR'), rc: r.rc, out: mask(r.out, dir), err: mask(r.err, dir) });
    expect(view(ours, dirs.ours)).toEqual(view(theirs, dirs.theirs));
  };

  beforeAll(async () => {
    vg = await startDaemon({ tcp: true, policy: 'g, unix:root, host-admin, *\ng, tcp:anonymous, host-admin, *\n' });
    for (const k of ['ours', 'theirs'] as const) {
      dirs[k] = fs.mkdtempSync(path.join(os.tmpdir(), `vg-save-${k}-`));
      fs.writeFileSync(path.join(dirs[k], 't.xml'), TRANSIENT);
      fs.writeFileSync(path.join(dirs[k], 'edited.xml'), EDITED);
      fs.writeFileSync(path.join(dirs[k], 'empty.xml'), '');
      fs.writeFileSync(path.join(dirs[k], 'notimage'), 'just some text, longer than a header\n');
    }
  });
  afterAll(async () => {
    await vg?.stop();
    for (const d of Object.values(dirs)) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  // One virsh session per script; scripts leave `test` running, as they found it.
  test.each([
    [
      'save, state, dumpxml, restore',
      (d: string) =>
        `save test ${d}/a.img; domstate test --reason; list --all; save-image-dumpxml ${d}/a.img; restore ${d}/a.img; domstate test --reason; list --all; dominfo test`,
    ],
    ['save of a shut-off domain', (d: string) => `destroy test; save test ${d}/off.img; start test`],
    ['restore over a running domain', (d: string) => `save test ${d}/b.img; restore ${d}/b.img; restore ${d}/b.img; domstate test --reason`],
    [
      'flags the test driver refuses',
      (d: string) =>
        `save test ${d}/c.img --running; save test ${d}/c.img --paused; save test ${d}/c.img --bypass-cache; save test ${d}/c.img --xml ${d}/empty.xml`,
    ],
    [
      'restore flags',
      (d: string) =>
        `save test ${d}/r.img; restore ${d}/r.img --running; restore ${d}/r.img --paused; restore ${d}/r.img --bypass-cache; restore ${d}/r.img --xml ${d}/empty.xml; restore ${d}/r.img; domstate test --reason`,
    ],
    [
      'missing and foreign files',
      (d: string) => `restore ${d}/none.img; restore ${d}/notimage; save-image-dumpxml ${d}/none.img; save-image-dumpxml ${d}/notimage`,
    ],
    [
      'save-image-define then restore',
      (d: string) =>
        `save test ${d}/e.img; save-image-define ${d}/e.img ${d}/edited.xml --running; save-image-dumpxml ${d}/e.img --security-info; restore ${d}/e.img; dominfo test; setmem test 2097152 --live`,
    ],
    [
      'save-image-define --paused',
      (d: string) => `save test ${d}/f.img; save-image-define ${d}/f.img ${d}/edited.xml --paused; restore ${d}/f.img; setmem test 2097152 --live`,
    ],
    ['transient domain', (d: string) => `create ${d}/t.xml; save sv-t ${d}/t.img; list --all; restore ${d}/t.img; list --all; dominfo sv-t; destroy sv-t`],
    // Core dumps: raw only, --crash stops the domain (shut off, crashed); the other flags are refused.
    ['core dump', (d: string) => `dump test ${d}/core1; domstate test; dump test ${d}/core2 --crash; domstate test --reason; dump test ${d}/core3; start test`],
    [
      'core dump flags and formats the test driver refuses',
      (d: string) =>
        `dump test ${d}/core4 --live; dump test ${d}/core4 --memory-only; dump test ${d}/core4 --bypass-cache; dump test ${d}/core4 --reset; dump test ${d}/core5 --memory-only --format kdump-zlib; domstate test`,
    ],
  ])('%s', async (_name, script) => cmp(script));

  test("a core dump holds what the test driver's does, mode 0600", () => {
    for (const d of [dirs.ours, dirs.theirs]) expect(fs.statSync(path.join(d, 'core1')).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(path.join(dirs.ours, 'core1'))).toEqual(fs.readFileSync(path.join(dirs.theirs, 'core1')));
    expect(fs.readFileSync(path.join(dirs.ours, 'core1')).toString('latin1')).toBe('TestGuestMagic\0');
  });

  // The lifecycle events: stopped/saved (5 4) and started/restored (2 2), states shutoff/saved and running/restored.
  describeIf(pyLibvirt(), 'python3-libvirt', () => {
    test('save, restore and their events', async () => {
      const py = async (uri: string, dir: string): Promise<string> => {
        fs.mkdirSync(dir);
        const { stdout } = await run('/usr/bin/python3', [path.join(__dirname, 'py', 'save_events.py'), uri, dir], { timeout: 90000 });
        return stdout;
      };
      const ours = await py(vg.uri, path.join(dirs.ours, 'py'));
      expect(ours).toBe(await py('test:///default', path.join(dirs.theirs, 'py')));
      expect(ours).toContain('after save [5, 5]\nafter restore [1, 3]\n');
      expect(ours).toContain('event test 5 4\nevent test 2 2\n');
    });
  });

  // Our XML reader words an empty document as `XML error: Document is empty` (libxml2 adds its context lines).
  test('save-image-define with an empty document changes nothing', async () => {
    const file = path.join(dirs.ours, 'g.img');
    const r = await virsh(vg.uri, `save test ${file}; save-image-define ${file} ${dirs.ours}/empty.xml; save-image-dumpxml ${file}; restore ${file}`);
    expect(r.err).toBe(`error: Failed to update ${file}\nerror: XML error: Document is empty\n`);
    expect(r.out).toContain('<name>test</name>');
    expect(r.out).toContain(`Domain restored from ${file}`);
  });

  // Our one deliberate difference: the root helper never replaces an existing file (libvirt's test driver truncates it).
  test('save to an existing file is refused, the domain keeps running', async () => {
    const file = path.join(dirs.ours, 'exists.img');
    fs.writeFileSync(file, 'precious\n');
    const r = await virsh(vg.uri, `save test ${file}; domstate test`);
    expect(r.err).toContain(`error: saving domain 'test' to '${file}': open failed: File exists`);
    expect(r.out).toContain('running');
    expect(fs.readFileSync(file, 'utf8')).toBe('precious\n');
  });
});
