// SPDX-License-Identifier: Apache-2.0
// Real virsh 9.0 (Debian libvirt-clients) against a started daemon: every command of issue #2 item 6.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { type Result, exec, referenceVirsh } from '../helpers/users';
import { describeIf, virshTool } from '../helpers/skip';

const virsh = (uri: string, ...args: string[]): Promise<Result> => exec(['virsh', '-c', uri, ...args]);

const withoutCpuTime = (s: string): string =>
  s
    .split('\n')
    .filter((l) => !l.startsWith('CPU time:'))
    .join('\n');

describeIf(virshTool(), 'virsh against virtgate', () => {
  let vg: RunningDaemon;
  let dir: string;
  const v = (...a: string[]): Promise<Result> => virsh(vg.uri, ...a);

  beforeAll(async () => {
    // Plain TCP (development) carries no identity: the user is `tcp:anonymous`, who gets nothing unless the policy says so.
    vg = await startDaemon({ tcp: true, policy: 'g, unix:root, host-admin, *\ng, tcp:anonymous, host-admin, *\n' });
    dir = vg.home;
    fs.writeFileSync(
      path.join(dir, 'newvm.xml'),
      `<domain type='test'><name>newvm</name><memory unit='MiB'>512</memory><vcpu>2</vcpu><os><type arch='i686'>hvm</type></os></domain>\n`,
    );
    fs.writeFileSync(
      path.join(dir, 'transient.xml'),
      `<domain type='test'><name>transient1</name><memory unit='KiB'>262144</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>\n`,
    );
  });
  afterAll(async () => vg?.stop());

  test('dominfo test matches real test:///default line for line, except CPU time', async () => {
    const ours = await v('dominfo', 'test');
    const theirs = await referenceVirsh('dominfo', 'test');
    expect(ours.rc).toBe(0);
    expect(withoutCpuTime(ours.out)).toBe(withoutCpuTime(theirs.out));
  });

  test('nodeinfo matches real test:///default', async () => {
    const ours = await v('nodeinfo');
    expect(ours.rc).toBe(0);
    expect(ours.out).toBe((await referenceVirsh('nodeinfo')).out);
  });

  test('maxvcpus and freecell (host facts) match real test:///default, errors included', async () => {
    for (const args of [
      ['maxvcpus'],
      ['maxvcpus', '--type', 'kvm'],
      ['freecell'],
      ['freecell', '--all'],
      ['freecell', '0'],
      ['freecell', '1'],
      ['freecell', '5'],
    ]) {
      const ours = await v(...args);
      const theirs = await referenceVirsh(...args);
      expect({ args, rc: ours.rc, out: ours.out, err: ours.err }).toEqual({ args, rc: theirs.rc, out: theirs.out, err: theirs.err });
    }
    expect((await v('freecell', '5')).err).toMatch(/invalid argument: Range exceeds available cells/);
  });

  test('qemu-monitor-command and qemu-agent-command are refused as by test:///default (deliberately unserved)', async () => {
    for (const args of [
      ['qemu-monitor-command', 'test', '{"execute":"query-status"}'],
      ['qemu-agent-command', 'test', '{"execute":"guest-ping"}'],
    ]) {
      const ours = await v(...args);
      const theirs = await referenceVirsh(...args);
      expect({ args, rc: ours.rc, err: ours.err }).toEqual({ args, rc: theirs.rc, err: theirs.err });
    }
    expect((await v('qemu-monitor-command', 'test', '{}')).err).toMatch(/this function is not supported by the connection driver: virDomainQemuMonitorCommand/);
  });

  test('screenshot streams the same image as test:///default; a read-only connection is refused as by libvirt', async () => {
    const ours = await v('screenshot', 'test', path.join(dir, 'ours.png'));
    const theirs = await referenceVirsh('screenshot', 'test', path.join(dir, 'theirs.png'));
    expect(ours.rc).toBe(0);
    expect(ours.out.replace('ours.png', 'F')).toBe(theirs.out.replace('theirs.png', 'F'));
    expect(fs.readFileSync(path.join(dir, 'ours.png')).equals(fs.readFileSync(path.join(dir, 'theirs.png')))).toBe(true);
    const ro = await virsh(vg.uriRo, 'screenshot', 'test', path.join(dir, 'ro.png'));
    expect(ro.rc).toBe(1);
    expect(ro.err).toMatch(/read only access prevents virDomainScreenshot/);
    const missing = await v('screenshot', 'nosuchvm', path.join(dir, 'x.png'));
    expect(missing.err).toBe((await referenceVirsh('screenshot', 'nosuchvm', path.join(dir, 'y.png'))).err);
  });

  test('hostname, version, capabilities', async () => {
    expect((await v('hostname')).out.trim()).toBe((await referenceVirsh('hostname')).out.trim());
    const ver = await v('version');
    expect(ver.out).toMatch(/Using API: TEST 9\.0\.0/);
    expect(ver.out).toMatch(/Running hypervisor: TEST 0\.0\.2/);
    const caps = await v('capabilities');
    expect(caps.rc).toBe(0);
    expect(caps.out).toBe((await referenceVirsh('capabilities')).out);
  });

  test('list variants, domid, domuuid, domstate, dumpxml', async () => {
    expect((await v('list', '--all')).out).toMatch(/^\s*1\s+test\s+running\s*$/m);
    expect((await v('list')).out).toMatch(/test\s+running/);
    expect((await v('list', '--inactive')).out).not.toMatch(/shut off/);
    expect((await v('list', '--all', '--name')).out.trim()).toBe('test');
    expect((await v('domid', 'test')).out.trim()).toBe('1');
    expect((await v('domuuid', 'test')).out.trim()).toBe('6695eb01-f6a4-8304-79aa-97f2502e193f');
    expect((await v('domstate', 'test')).out.trim()).toBe('running');
    const xml = await v('dumpxml', 'test');
    expect(xml.out).toBe((await referenceVirsh('dumpxml', 'test')).out);
    // Numeric id and UUID arguments resolve too.
    expect((await v('domstate', '1')).out.trim()).toBe('running');
    expect((await v('domstate', '6695eb01-f6a4-8304-79aa-97f2502e193f')).out.trim()).toBe('running');
  });

  test('lifecycle: suspend, resume, shutdown, start, reboot, destroy, start', async () => {
    for (const [cmd, state] of [
      ['suspend', 'paused'],
      ['resume', 'running'],
      ['shutdown', 'shut off'],
      ['start', 'running'],
      ['reboot', 'running'],
      ['destroy', 'shut off'],
      ['start', 'running'],
    ]) {
      const r = await v(cmd, 'test');
      expect({ cmd, rc: r.rc, err: r.err }).toEqual({ cmd, rc: 0, err: '' });
      expect((await v('domstate', 'test')).out.trim()).toBe(state);
    }
    expect((await v('domstate', 'test', '--reason')).out.trim()).toBe('running (booted)');
    // Ids advance on each start, -1 ("-") while inactive.
    expect(Number((await v('domid', 'test')).out.trim())).toBeGreaterThan(1);
  });

  test('wrong-state operations fail with libvirt errors', async () => {
    const r = await v('start', 'test');
    expect(r.rc).toBe(1);
    expect(r.err).toMatch(/Domain is already active/);
    const res = await v('resume', 'test');
    expect(res.rc).toBe(1);
    expect(res.err).toMatch(/domain is not paused|not paused/);
  });

  test('setmem and setvcpus --live, with limits', async () => {
    expect((await v('setmem', 'test', '1048576', '--live')).rc).toBe(0);
    expect((await v('setvcpus', 'test', '1', '--live')).rc).toBe(0);
    const info = (await v('dominfo', 'test')).out;
    expect(info).toMatch(/Used memory:\s+1048576 KiB/);
    expect(info).toMatch(/CPU\(s\):\s+1\n/);
    const tooBig = await v('setmem', 'test', '99999999999', '--live');
    expect(tooBig.rc).toBe(1);
    expect(tooBig.err).toMatch(/cannot set memory higher than max memory/);
  });

  test('define, dumpxml, undefine; create a transient domain; destroy removes it', async () => {
    expect((await v('define', path.join(dir, 'newvm.xml'))).out).toMatch(/Domain 'newvm' defined/);
    expect((await v('list', '--all')).out).toMatch(/-\s+newvm\s+shut off/);
    expect((await v('dumpxml', 'newvm')).out).toMatch(/<memory unit='KiB'>524288<\/memory>/);
    expect((await v('start', 'newvm')).rc).toBe(0);
    expect((await v('destroy', 'newvm')).rc).toBe(0);
    expect((await v('undefine', 'newvm')).out).toMatch(/Domain 'newvm' has been undefined/);
    expect((await v('list', '--all')).out).not.toMatch(/newvm/);

    expect((await v('create', path.join(dir, 'transient.xml'))).out).toMatch(/Domain 'transient1' created/);
    expect((await v('dominfo', 'transient1')).out).toMatch(/Persistent:\s+no/);
    expect((await v('destroy', 'transient1')).rc).toBe(0);
    expect((await v('list', '--all')).out).not.toMatch(/transient1/);
  });

  test('broken XML and unknown domains give clear errors', async () => {
    fs.writeFileSync(path.join(dir, 'bad.xml'), '<domain><name>x');
    const bad = await v('define', path.join(dir, 'bad.xml'));
    expect(bad.rc).toBe(1);
    expect(bad.err).toMatch(/XML error/);
    fs.writeFileSync(path.join(dir, 'noname.xml'), '<domain type="test"><memory>1</memory></domain>');
    expect((await v('define', path.join(dir, 'noname.xml'))).err).toMatch(/missing name information/);
    const none = await v('dominfo', 'nosuch');
    expect(none.rc).toBe(1);
    expect(none.err).toMatch(/failed to get domain 'nosuch'/);
  });

  test('read-only socket serves reads and refuses writes', async () => {
    expect((await virsh(vg.uriRo, 'list', '--all')).out).toMatch(/test/);
    const w = await virsh(`${vg.uriRo}`, 'suspend', 'test');
    expect(w.rc).toBe(1);
    expect(w.err).toMatch(/read only access prevents virDomainSuspend/);
  });

  test('plain TCP on loopback works for development', async () => {
    const r = await virsh(`test+tcp://127.0.0.1:${vg.tcpPort}/default`, 'list', '--all');
    expect(r.rc).toBe(0);
    expect(r.out).toMatch(/test/);
  });

  test('event --all --loop prints lifecycle events caused by another client', async () => {
    const ev = spawn('virsh', ['-c', vg.uri, 'event', '--all', '--loop', '--timeout', '20'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    ev.stdout.setEncoding('utf8').on('data', (t: string) => (out += t));
    // Wait for registration (virsh prints nothing until an event): poll with a harmless read.
    await new Promise((r) => setTimeout(r, 1500));
    await v('suspend', 'test');
    await v('resume', 'test');
    const deadline = Date.now() + 10000;
    while (!/Resumed Unpaused/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    ev.kill('SIGINT');
    expect(out).toMatch(/event 'lifecycle' for domain 'test': Suspended Paused/);
    expect(out).toMatch(/event 'lifecycle' for domain 'test': Resumed Unpaused/);
  });
});
