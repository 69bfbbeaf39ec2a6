// SPDX-License-Identifier: Apache-2.0
// virtgate-launcher from the outside, as an attacker (a compromised helper, another local user) would use it: real
// socket, real descriptors, real QEMU in the real jail; everything checked in /proc and the cgroup tree.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { LauncherClient, LauncherError, type SpawnRequest } from '../../src/privileged/launcher-client';
import { bindUnixListener, closeFd, recvMsg, sendMsg, seqpacketConnect, watchReadable } from '../../src/sandbox/fdpass';
import { QEMU, SANDBOX, type RunningLauncher, launcherRequirements, purgeCgroupRoot, startLauncher } from '../helpers/launcher';
import { describeIf } from '../helpers/skip';

const UID_BASE = 200000;
let n = 0;
const uuid = (): string => `00000000-4c61-4e63-8000-${(process.pid * 1000 + n++).toString(16).padStart(12, '0')}`;

const base = (over: Partial<SpawnRequest> = {}): SpawnRequest => ({
  vm: uuid(),
  slot: 4000 + (n % 1000),
  tenant: '',
  argv: ['-machine', 'none', '-nodefaults', '-display', 'none', '-S', '-sandbox', SANDBOX],
  limits: { memoryBytes: 256n << 20n, pids: 64 },
  kvm: false,
  ...over,
});

const status = (pid: number): Record<string, string> =>
  Object.fromEntries(
    fs
      .readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .filter((l) => l.includes(':'))
      .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]),
  );

const alive = (pid: number): boolean => {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
};

const until = async (what: string, f: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

// One QMP exchange over the helper-side listening socket QEMU was handed: greeting, capabilities, one command.
function qmp(sock: string, command: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const s = net.connect(sock);
    let buf = '';
    let sent = 0;
    const timer = setTimeout(() => (s.destroy(), reject(new Error(`QMP timeout: ${buf}`))), 10000);
    s.on('error', reject);
    s.on('data', (d) => {
      buf += d.toString();
      const lines = buf.split('\n').filter((l) => l.trim());
      if (sent === 0 && lines.some((l) => l.includes('"QMP"'))) {
        s.write('{"execute":"qmp_capabilities"}\n');
        sent = 1;
      }
      const returns = lines.filter((l) => l.includes('"return"'));
      if (sent === 1 && returns.length === 1) {
        s.write(`{"execute":"${command}"}\n`);
        sent = 2;
      }
      if (returns.length === 2) {
        clearTimeout(timer);
        s.destroy();
        resolve(JSON.parse(returns[1]).return as Record<string, unknown>);
      }
    });
  });
}

// A raw SEQPACKET peer: what an attacker sends when it does not use our client.
async function raw(socket: string, msgs: (Buffer | { data: Buffer; fds: number[] })[], waitMs = 3000): Promise<{ answers: unknown[]; eof: boolean }> {
  const fd = seqpacketConnect(socket);
  const answers: unknown[] = [];
  let eof = false;
  for (const m of msgs) {
    try {
      if (Buffer.isBuffer(m)) sendMsg(fd, m);
      else sendMsg(fd, m.data, m.fds);
    } catch {
      break; // the launcher already ended the connection (EPIPE): what it answered is still to be read
    }
  }
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, waitMs);
    const w = watchReadable(fd, () => {
      for (;;) {
        const r = recvMsg(fd, 65536, 0);
        if (r === 'again') return;
        if (r === 'eof') return done();
        answers.push(JSON.parse(r.data.toString()));
      }
    });
    function done(): void {
      clearTimeout(timer);
      eof = true;
      w.close(true);
      resolve();
    }
  });
  return { answers, eof };
}

describeIf(launcherRequirements(), 'virtgate-launcher (real QEMU, real jail)', () => {
  let L: RunningLauncher;
  let client: LauncherClient;
  let tmp: string;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-launcher-test-'));
    L = await startLauncher({ dir: tmp });
    client = await LauncherClient.connect(L.socket);
  });

  afterAll(async () => {
    client?.close();
    await L?.purge();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe('who may connect', () => {
    test('the socket is root 0600: another uid cannot even connect', () => {
      const st = fs.statSync(L.socket);
      expect(st.mode & 0o777).toBe(0o600);
      expect(st.uid).toBe(0);
      const probe = `const f = require(${JSON.stringify(path.join(__dirname, '..', '..', 'build', 'src', 'sandbox', 'fdpass.js'))});
try { f.seqpacketConnect(process.argv[1]); console.log('connected'); } catch (e) { console.log(e.message); }`;
      const r = spawnSync(process.execPath, ['-e', probe, L.socket], { uid: 65534, gid: 65534, encoding: 'utf8' });
      expect(r.stdout).toMatch(/Permission denied/);
    });

    test('a uid not on the allow-list is refused by SO_PEERCRED, with a clear error, then disconnected', async () => {
      const other = await startLauncher({ allowUid: [12345] });
      try {
        const c = await LauncherClient.connect(other.socket);
        const err = (await c.list().catch((e) => e)) as LauncherError;
        expect(err).toBeInstanceOf(LauncherError);
        expect(err.code).toBe('peer-refused');
        expect(err.message).toMatch(/uid 0 is not allowed/);
        expect(c.closed).toBe(true);
        await other.waitFor(/refused pid \d+ uid 0: uid 0 is not allowed/);
      } finally {
        await other.purge();
        fs.rmSync(other.dir, { recursive: true, force: true });
      }
    });
  });

  describe('argv policy: every refusal names what it refused', () => {
    const refused: [string, string[], RegExp, string?][] = [
      ['-runas', ['-runas', 'root'], /-runas is refused/],
      ['-chroot', ['-chroot', '/'], /-chroot is refused/],
      ['-plugin', ['-plugin', 'file=/tmp/evil.so'], /-plugin is refused: loads a shared object/],
      ['-daemonize', ['-daemonize'], /-daemonize is refused/],
      ['-drive with a path', ['-drive', 'file=/etc/shadow,format=raw'], /-drive is refused/],
      ['-qmp on a path', ['-qmp', 'unix:/tmp/q.sock,server=on'], /-qmp is refused/],
      ['-monitor', ['-monitor', 'stdio'], /-monitor is refused/],
      ['-bios', ['-bios', '/tmp/evil.bin'], /-bios is refused/],
      ['-L', ['-L', '/tmp'], /-L is refused/],
      ['-incoming', ['-incoming', 'exec:sh'], /-incoming is refused/],
      ['-readconfig', ['-readconfig', '/etc/shadow'], /-readconfig is refused/],
      ['a positional disk path', ['/var/lib/images/disk.img'], /not an option \(a positional argument is a disk image path\)/],
      ['vfio', ['-device', 'vfio-pci,host=0000:00:02.0'], /vfio-pci is refused: host device passthrough/],
      ['an unlisted device', ['-device', 'ivshmem-plain,memdev=x'], /device 'ivshmem-plain' is not allowed/],
      ['a ROM file', ['-device', 'e1000,romfile=evil.rom'], /romfile= reads a file/],
      ['/etc/shadow as -kernel', ['-kernel', '/etc/shadow'], /-kernel: '\/etc\/shadow' is a path; only \/proc\/self\/fd\/N/, 'fd-refused'],
      ['a chardev on a path', ['-chardev', 'socket,id=c,path=/tmp/c.sock,server=on'], /key 'path' is not allowed/],
      ['a file chardev', ['-chardev', 'file,id=c,path=/etc/passwd'], /backend 'file' refused/],
      ['-serial on a path', ['-serial', 'file:/etc/passwd'], /only chardev:ID/],
      [
        'a blockdev on a path',
        ['-blockdev', '{"driver":"file","filename":"/etc/shadow","node-name":"f"}'],
        /filename "\/etc\/shadow" is a path; only \/dev\/fdset\/N/,
        'fd-refused',
      ],
      [
        'a json: backing name',
        ['-blockdev', '{"driver":"qcow2","node-name":"q","file":"f","backing":{"driver":"file","filename":"json:{}"}}'],
        /is a path; only \/dev\/fdset\/N/,
        'fd-refused',
      ],
      ['a qcow2 external data file', ['-blockdev', '{"driver":"qcow2","node-name":"q","file":"f","data-file":"d"}'], /key 'data-file' is not allowed/],
      ['an nbd blockdev', ['-blockdev', '{"driver":"nbd","server":{"type":"inet","host":"10.0.0.1","port":"10809"}}'], /driver "nbd" refused/],
      [
        'an undeclared fdset',
        ['-blockdev', '{"driver":"file","filename":"/dev/fdset/9","node-name":"f"}'],
        /\/dev\/fdset\/9 names no -add-fd set/,
        'fd-refused',
      ],
      ['a tap by name', ['-netdev', 'tap,id=n,ifname=tap0,script=/tmp/x'], /key 'ifname' is not allowed/],
      ['user net with smb', ['-netdev', 'user,id=n,smb=/home'], /smb= is refused/],
      ['a memory backend file', ['-object', 'memory-backend-file,id=m,mem-path=/dev/shm/x'], /object type 'memory-backend-file' refused/],
      ['escaped commas', ['-name', 'guest=a,,debug-threads=on'], /escaped commas/],
      ['a VNC listener', ['-vnc', ':0'], /-vnc: only 'none'/],
      ['an fd number out of range', ['-chardev', 'socket,id=q,fd=3,server=on,wait=off'], /descriptor 3 out of range: 0 passed/, 'fd-refused'],
      ['a huge fd number', ['-add-fd', 'fd=9999,set=1'], /descriptor 9999 out of range/, 'fd-refused'],
    ];
    test.each(refused)('%s', async (_name, extra, msg, code = 'argv-refused') => {
      const err = (await client.spawn(base({ argv: [...base().argv, ...extra] }), []).catch((e) => e)) as LauncherError;
      expect(err).toBeInstanceOf(LauncherError);
      expect(err.code).toBe(code);
      expect(err.message).toMatch(msg);
    });

    test('-sandbox missing, off, or weakened: refused', async () => {
      const noSandbox = ['-machine', 'none', '-nodefaults', '-display', 'none', '-S'];
      for (const argv of [
        noSandbox,
        [...noSandbox, '-sandbox', 'off'],
        [...noSandbox, '-sandbox', 'on,spawn=allow'],
        [...noSandbox, '-sandbox', SANDBOX, '-sandbox', 'off'],
      ]) {
        const err = (await client.spawn(base({ argv }), []).catch((e) => e)) as LauncherError;
        expect(err.code).toBe('argv-refused');
        expect(err.message).toMatch(/-sandbox/);
      }
    });

    test('a descriptor of the wrong kind (a regular file as a QMP listener) is refused', async () => {
      const fd = fs.openSync('/etc/hostname', 'r');
      try {
        const err = (await client
          .spawn(base({ argv: [...base().argv, '-chardev', 'socket,id=q,fd=3,server=on,wait=off'] }), [fd])
          .catch((e) => e)) as LauncherError;
        expect(err.code).toBe('fd-refused');
        expect(err.message).toMatch(/descriptor 3 is not what chardev-listener needs/);
      } finally {
        fs.closeSync(fd);
      }
    });

    test('a descriptor passed but not used is refused', async () => {
      const fd = fs.openSync('/etc/hostname', 'r');
      try {
        const err = (await client.spawn(base(), [fd]).catch((e) => e)) as LauncherError;
        expect(err.code).toBe('fd-refused');
        expect(err.message).toMatch(/descriptor 3 was passed but no argument uses it/);
      } finally {
        fs.closeSync(fd);
      }
    });

    test('refusals leave no cgroup and no process behind', () => {
      for (const c of ['memory', 'pids']) {
        const d = `/sys/fs/cgroup/${c}/${L.cgroupRoot}/_host`;
        expect(fs.existsSync(d) ? fs.readdirSync(d).filter((x) => x.startsWith('vm-')) : []).toEqual([]);
      }
    });
  });

  describe('malformed messages: a clear error, then the connection ends', () => {
    const bad: [string, Buffer, RegExp][] = [
      ['not JSON', Buffer.from('{"id":1,'), /not JSON/],
      ['not UTF-8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), /not UTF-8/],
      ['an array', Buffer.from('[1,2]'), /not an object/],
      ['an unknown op', Buffer.from('{"id":3,"op":"exec","cmd":"/bin/sh"}'), /unknown operation "exec"/],
      ['an extra field', Buffer.from('{"id":4,"op":"list","path":"/etc"}'), /unknown field 'path'/],
      ['a missing field', Buffer.from('{"id":5,"op":"signal","vm":"00000000-0000-4000-8000-000000000001"}'), /missing field 'signal'/],
      [
        'a signal outside the two',
        Buffer.from('{"id":6,"op":"signal","vm":"00000000-0000-4000-8000-000000000001","signal":"SIGSTOP"}'),
        /signal: not one of SIGTERM, SIGKILL/,
      ],
      ['a bad uuid', Buffer.from('{"id":7,"op":"cleanup","vm":"../../../../etc"}'), /not a lower-case canonical UUID/],
      [
        'a slot out of range',
        Buffer.from(
          JSON.stringify({
            id: 8,
            op: 'spawn',
            vm: '00000000-0000-4000-8000-000000000001',
            slot: 0,
            tenant: '',
            argv: ['-S'],
            limits: { memoryBytes: '268435456', pids: 64 },
            kvm: false,
          }),
        ),
        /slot: not an integer in \[1, 9999\]/,
      ],
      [
        'a tenant path',
        Buffer.from(
          JSON.stringify({
            id: 9,
            op: 'spawn',
            vm: '00000000-0000-4000-8000-000000000001',
            slot: 1,
            tenant: '../x',
            argv: ['-S'],
            limits: { memoryBytes: '268435456', pids: 64 },
            kvm: false,
          }),
        ),
        /tenant: not a tenant name/,
      ],
      [
        'a NUL in argv',
        Buffer.from(
          JSON.stringify({
            id: 10,
            op: 'spawn',
            vm: '00000000-0000-4000-8000-000000000001',
            slot: 1,
            tenant: '',
            argv: ['-S\u0000-runas'],
            limits: { memoryBytes: '268435456', pids: 64 },
            kvm: false,
          }),
        ),
        /contains NUL/,
      ],
      [
        'a memory limit as a number',
        Buffer.from(JSON.stringify({ id: 11, op: 'limits', vm: '00000000-0000-4000-8000-000000000001', memoryBytes: 1e18, pids: 64 })),
        /memoryBytes: not a decimal byte count/,
      ],
    ];
    test.each(bad)('%s', async (_name, msg, why) => {
      const r = await raw(L.socket, [msg, Buffer.from('{"id":99,"op":"list"}')]);
      expect(r.eof).toBe(true);
      expect(r.answers).toHaveLength(1); // the list after it is never answered: the connection is gone
      expect(r.answers[0]).toMatchObject({ ok: false, error: { code: 'malformed' } });
      expect((r.answers[0] as { error: { message: string } }).error.message).toMatch(why);
    });

    test('a message over 64 KiB is refused whole', async () => {
      const big = Buffer.from(JSON.stringify({ id: 1, op: 'list', pad: 'x'.repeat(70000) }));
      const r = await raw(L.socket, [big]);
      expect(r.eof).toBe(true);
      expect(r.answers[0]).toMatchObject({ ok: false, error: { code: 'malformed', message: expect.stringMatching(/over 65536 bytes/) } });
    });

    test('descriptors sent with an op that takes none are closed and refused', async () => {
      const fd = fs.openSync('/etc/hostname', 'r');
      try {
        const r = await raw(L.socket, [{ data: Buffer.from('{"id":2,"op":"list"}'), fds: [fd] }]);
        expect(r.answers[0]).toMatchObject({ id: 2, ok: false, error: { code: 'malformed', message: expect.stringMatching(/list carries no descriptors/) } });
      } finally {
        fs.closeSync(fd);
      }
    });

    test('the launcher keeps serving others after all that', async () => {
      expect(await client.list()).toEqual([]);
    });
  });

  describe('a real QEMU in the jail', () => {
    const vms: { vm: string; pid: number; qmp: string }[] = [];
    const spawnQmp = async (slot: number, tenant = ''): Promise<{ vm: string; pid: number; qmp: string }> => {
      const qmpPath = path.join(tmp, `qmp-${slot}.sock`);
      const fd = bindUnixListener(qmpPath, 0o600);
      const req = base({ slot, tenant, argv: [...base().argv, '-chardev', 'socket,id=qmp,fd=3,server=on,wait=off', '-mon', 'chardev=qmp,mode=control'] });
      try {
        const { pid } = await client.spawn(req, [fd]);
        const v = { vm: req.vm, pid, qmp: qmpPath };
        vms.push(v);
        return v;
      } finally {
        closeFd(fd); // the launcher and QEMU have their own copies
      }
    };

    test('spawned QEMU: its own uid, no capabilities, no_new_privs, seccomp, own network namespace, cgroup limits', async () => {
      const t0 = Date.now();
      const v = await spawnQmp(4101, 'acme');
      const spawnMs = Date.now() - t0;
      expect(await qmp(v.qmp, 'query-status')).toMatchObject({ status: 'prelaunch', running: false });
      const s = status(v.pid);
      expect(s.Uid).toBe(`${UID_BASE + 4101}\t${UID_BASE + 4101}\t${UID_BASE + 4101}\t${UID_BASE + 4101}`);
      expect(s.Gid.split(/\s+/)).toEqual(Array(4).fill(String(UID_BASE + 4101)));
      expect(s.Groups).toBe('');
      expect(s.Seccomp).toBe('2');
      expect(Number(s.Seccomp_filters)).toBeGreaterThanOrEqual(2); // the launcher's inherited one and QEMU's -sandbox
      expect(s.NoNewPrivs).toBe('1');
      for (const k of ['CapEff', 'CapPrm', 'CapBnd', 'CapInh', 'CapAmb']) expect(s[k]).toBe('0000000000000000');
      expect(fs.readlinkSync(`/proc/${v.pid}/exe`)).toBe(QEMU);
      for (const ns of ['net', 'pid', 'ipc', 'uts', 'mnt']) expect(fs.readlinkSync(`/proc/${v.pid}/ns/${ns}`)).not.toBe(fs.readlinkSync(`/proc/self/ns/${ns}`));
      // It sees no host paths: its root is bwrap's, with /usr read-only and nothing of /etc, /home or /root.
      const root = `/proc/${v.pid}/root`;
      expect(fs.readdirSync(root).sort()).toEqual(['bin', 'dev', 'lib', 'lib64', 'proc', 'sbin', 'tmp', 'usr']);
      const cg = (c: string, f: string): string => fs.readFileSync(`/sys/fs/cgroup/${c}/${L.cgroupRoot}/acme/vm-${v.vm}/${f}`, 'utf8').trim();
      expect(cg('memory', 'memory.limit_in_bytes')).toBe(String(256 << 20));
      expect(cg('pids', 'pids.max')).toBe('64');
      for (const c of ['cpu', 'cpuacct', 'memory', 'pids']) expect(cg(c, 'cgroup.procs').split('\n').map(Number)).toContain(v.pid);
      // Not in the launcher's session or process group: a group kill of the launcher misses it.
      const stat = (pid: number): string[] => {
        const t = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        return t.slice(t.lastIndexOf(')') + 2).split(' ');
      };
      expect(stat(v.pid)[2]).not.toBe(stat(L.pid)[2]); // pgrp
      expect(stat(v.pid)[3]).not.toBe(stat(L.pid)[3]); // session
      process.stdout.write(`launcher spawn to pid: ${spawnMs} ms\n`);
    });

    test('two VMs run under two different uids; a slot or a uuid in use is refused', async () => {
      const a = vms[0];
      const b = await spawnQmp(4102);
      expect(status(b.pid).Uid.split('\t')[0]).toBe(String(UID_BASE + 4102));
      expect(status(a.pid).Uid).not.toBe(status(b.pid).Uid);
      const slotErr = (await client.spawn(base({ slot: 4102 }), []).catch((e) => e)) as LauncherError;
      expect(slotErr.code).toBe('slot-in-use');
      const vmErr = (await client.spawn(base({ vm: b.vm, slot: 4103 }), []).catch((e) => e)) as LauncherError;
      expect(vmErr.code).toBe('vm-exists');
      const listed = await client.list();
      expect(listed).toEqual(
        expect.arrayContaining([
          { vm: a.vm, pid: a.pid, slot: 4101, tenant: 'acme' },
          { vm: b.vm, pid: b.pid, slot: 4102, tenant: '' },
        ]),
      );
      expect(listed).toHaveLength(2);
    });

    test('limits: raised and lowered in the cgroup', async () => {
      const b = vms[1];
      await client.limits(b.vm, { memoryBytes: 300n << 20n, pids: 100 });
      expect(fs.readFileSync(`/sys/fs/cgroup/memory/${L.cgroupRoot}/_host/vm-${b.vm}/memory.limit_in_bytes`, 'utf8').trim()).toBe(String(300 << 20));
      expect(fs.readFileSync(`/sys/fs/cgroup/pids/${L.cgroupRoot}/_host/vm-${b.vm}/pids.max`, 'utf8').trim()).toBe('100');
    });

    test('kill -9 of the launcher: QEMU keeps running, QMP answers, a new launcher lists and adopts it', async () => {
      client.close();
      await L.kill9();
      const [a, b] = vms;
      expect(alive(a.pid) && alive(b.pid)).toBe(true);
      expect(await qmp(a.qmp, 'query-status')).toMatchObject({ status: 'prelaunch' });
      await L.restart();
      expect(L.output()).toMatch(/2 running VM\(s\) found/);
      client = await LauncherClient.connect(L.socket);
      const listed = await client.list();
      expect(listed.map((v) => v.pid).sort()).toEqual([a.pid, b.pid].sort());
    });

    test('SIGTERM: QEMU exits cleanly; SIGKILL: every process of the VM is gone; cleanup: no cgroup left', async () => {
      const [a, b] = vms;
      await client.signal(a.vm, 'SIGTERM');
      await until('QEMU a exits on SIGTERM', () => !alive(a.pid));
      const t0 = Date.now();
      await client.signal(b.vm, 'SIGKILL');
      await until('QEMU b gone after SIGKILL', () => !alive(b.pid), 1000);
      const goneMs = Date.now() - t0;
      for (const v of [a, b]) {
        await until(
          'cgroup empty',
          () => fs.readFileSync(`/sys/fs/cgroup/pids/${L.cgroupRoot}/${v === a ? 'acme' : '_host'}/vm-${v.vm}/cgroup.procs`, 'utf8').trim() === '',
        );
        await client.cleanup(v.vm);
        for (const c of ['cpu', 'cpuacct', 'memory', 'pids'])
          expect(fs.existsSync(`/sys/fs/cgroup/${c}/${L.cgroupRoot}/${v === a ? 'acme' : '_host'}/vm-${v.vm}`)).toBe(false);
      }
      expect(await client.list()).toEqual([]);
      const err = (await client.signal(a.vm, 'SIGKILL').catch((e) => e)) as LauncherError;
      expect(err.code).toBe('no-such-vm');
      process.stdout.write(`launcher SIGKILL to gone: ${goneMs} ms\n`);
    });

    test('a QEMU that fails at start: its own message is in its log, and cleanup leaves nothing behind', async () => {
      const req = base({ slot: 4104, argv: [...base().argv, '-machine', 'nosuchmachine'] });
      // QEMU may already be exec'd when it refuses (then the launcher answered its pid) or not (then spawn-failed).
      const r = await client.spawn(req, []).catch((e) => e as LauncherError);
      if (r instanceof LauncherError) expect(r.code).toBe('spawn-failed');
      else await until('QEMU exits on a bad machine', () => !alive(r.pid));
      const log = path.join(L.logDir, `${req.vm}.log`);
      await until("the log has QEMU's refusal", () => /unsupported machine type/.test(fs.readFileSync(log, 'utf8')));
      expect(fs.statSync(log).mode & 0o777).toBe(0o600);
      await until(
        'cgroup empty',
        () =>
          !fs.existsSync(`/sys/fs/cgroup/pids/${L.cgroupRoot}/_host/vm-${req.vm}`) ||
          fs.readFileSync(`/sys/fs/cgroup/pids/${L.cgroupRoot}/_host/vm-${req.vm}/cgroup.procs`, 'utf8').trim() === '',
      );
      if (!(r instanceof LauncherError)) await client.cleanup(req.vm);
      expect(fs.existsSync(`/sys/fs/cgroup/pids/${L.cgroupRoot}/_host/vm-${req.vm}`)).toBe(false);
    });
  });

  test('purgeCgroupRoot of an unknown root is harmless', async () => {
    await purgeCgroupRoot(`vgtest-none-${process.pid}`);
  });
});
