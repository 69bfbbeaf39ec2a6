// SPDX-License-Identifier: Apache-2.0
// `virsh console` against a real, jailed TCG guest (issue 14): the helper connects the guest's console socket and
// hands the descriptor to the front end, which pumps it. Marker and typed input (hello-42) through real virsh under a
// pty; Ctrl-] ends with OK both ways and the helper's serial logger takes the socket back; one console per VM with
// force; 1 MiB of console output to a slow python3-libvirt reader keeps the front end's memory bounded and moves no
// bytes through the helper (its read/write syscall counters, /proc/PID/io); the VM stopping ends the stream with EOF;
// tenancy and the open_device permission. One VM per describe block; every process is cleaned up in afterAll.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { type RunningQemuDaemon, startQemuDaemon } from '../helpers/daemon';
import { testGuest } from '../helpers/guest';
import { launcherRequirements } from '../helpers/launcher';
import { describeIf, pyLibvirt, virshTool } from '../helpers/skip';
import { type Result, asUser, exec, localUsers, makeUserHomes } from '../helpers/users';

jest.setTimeout(90000);
const guestReq = testGuest();
const guest = guestReq.guest;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const POLICY =
  'g, unix:root, host-admin, *\ng, alice, owner, acme\ng, bob, owner, globex\ng, carol, viewer, acme\ng, dave, viewer, acme\n' +
  'p, dave, acme, vm:a1, domain:open_device\n';

// virDomainOpenConsole straight on the wire (no lookup first, as virsh does): AUTH_LIST, CONNECT_OPEN, then 201 on the
// VM named by argv (name, uuid); prints the error's code and message, or "opened".
const RAW201 = `
import socket, struct, sys
path, name, uuid = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3])
s = socket.socket(socket.AF_UNIX); s.connect(path)
def recvn(n):
    b = b''
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d: raise SystemExit('closed')
        b += d
    return b
def xs(t):
    b = t.encode(); return struct.pack('>I', len(b)) + b + bytes((4 - len(b) % 4) % 4)
def call(proc, serial, body=b''):
    h = struct.pack('>IIIiII', 0x20008086, 1, proc, 0, serial, 0)
    s.sendall(struct.pack('>I', 4 + len(h) + len(body)) + h + body)
    n = struct.unpack('>I', recvn(4))[0]; m = recvn(n - 4)
    return struct.unpack('>I', m[20:24])[0], m[24:]
call(66, 1)
call(1, 2, struct.pack('>I', 1) + xs('qemu:///system') + struct.pack('>I', 0))
st, body = call(201, 3, xs(name) + uuid + struct.pack('>iII', -1, 0, 0))
if st == 0: print('opened'); sys.exit(0)
code, dom, present = struct.unpack('>iiI', body[:12])
ln = struct.unpack('>I', body[12:16])[0] if present else 0
print(code, body[16:16 + ln].decode())
`;

async function until<T>(what: string, f: () => T | undefined | false | Promise<T | undefined | false>, ms = 30000, every = 50): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(every);
  }
}

// Runs argv under a pseudo-terminal (virsh console needs one): what we write goes to the pty, what it prints comes back.
const PTY = `
import os, pty, sys, select
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
ins = [fd, 0]
while True:
    r, _, _ = select.select(ins, [], [])
    if fd in r:
        try:
            d = os.read(fd, 65536)
        except OSError:
            break
        if not d:
            break
        os.write(1, d)
    if 0 in r:
        d = os.read(0, 65536)
        if not d:
            ins = [fd]
        else:
            os.write(fd, d)
_, st = os.waitpid(pid, 0)
sys.exit(os.WEXITSTATUS(st) if os.WIFEXITED(st) else 128)
`;
interface Pty {
  out(): string;
  write(s: string): void;
  exited: Promise<number>;
  proc: ChildProcess;
}
const procs: ChildProcess[] = [];
function pty(argv: string[]): Pty {
  const p = spawn('/usr/bin/python3', ['-c', PTY, ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
  procs.push(p);
  let out = '';
  p.stdout!.on('data', (b: Buffer) => (out += b.toString('latin1')));
  p.stderr!.on('data', (b: Buffer) => (out += b.toString('latin1')));
  const exited = new Promise<number>((r) => p.on('exit', (code) => r(code ?? -1)));
  return { out: () => out, write: (s) => void p.stdin!.write(s), exited, proc: p };
}

// The python script's last line, JSON; its whole output in the error otherwise.
function lastJson<T>(out: string): T {
  try {
    return JSON.parse(out.trim().split('\n').pop()!) as T;
  } catch {
    throw new Error(`python3-libvirt client failed:\n${out}`);
  }
}

// A short pty run: its output once it exits (or after `ms`, killed).
async function ptyRun(argv: string[], ms = 15000): Promise<{ code: number; out: string }> {
  const p = pty(argv);
  const t = setTimeout(() => p.proc.kill('SIGKILL'), ms);
  const code = await p.exited;
  clearTimeout(t);
  return { code, out: p.out() };
}

// The front end's pid (bin/virtgated.js --home HOME), and a process's read/write syscall byte counters.
function frontPid(home: string): number {
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (cmd.some((a) => a.endsWith('virtgated.js')) && cmd.includes(home)) return Number(d);
    } catch {
      // gone
    }
  }
  throw new Error('front end not found');
}
const rssKiB = (pid: number): number => Number(/^VmRSS:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
const ioBytes = (pid: number): number => {
  const t = fs.readFileSync(`/proc/${pid}/io`, 'utf8');
  return Number(/^rchar: (\d+)/m.exec(t)![1]) + Number(/^wchar: (\d+)/m.exec(t)![1]);
};

// python3-libvirt: opens the console, types `cmd`, reads nothing for `stall` s, then reads until `until` appears,
// slowly (`delay` s per 4 KiB), then finishes; prints JSON {bytes, xs, found, eof}. With `eof`: reads until the server's EOF (the VM stopped), then finishes.
const PYREAD = `
import libvirt, sys, time, json
uri, name, cmd, until, delay, mode, stall = sys.argv[1:8]
c = libvirt.open(uri)
d = c.lookupByName(name)
st = c.newStream(0)
d.openConsole(None, st, 0)
print('open', flush=True)
if cmd: st.send(cmd.encode())
time.sleep(float(stall))
buf = b''; total = 0; xs = 0; found = False; eof = False
while True:
    data = st.recv(4096)
    if not data:
        eof = True
        break
    total += len(data); xs += data.count(b'x')
    buf = (buf + data)[-4096:]
    if until and until.encode() in buf and mode != 'eof':
        found = True
        break
    if float(delay) > 0: time.sleep(float(delay))
st.finish()
print(json.dumps({'bytes': total, 'xs': xs, 'found': found, 'eof': eof}), flush=True)
`;

describeIf([guestReq, virshTool(), pyLibvirt(), ...launcherRequirements()], 'virsh console on a real guest (TCG)', () => {
  let vg: RunningQemuDaemon;
  let uuid = '';
  const v = (...a: string[]): Promise<Result> => exec(['virsh', '-c', vg.uri, ...a]);
  const ok = async (...a: string[]): Promise<string> => {
    const r = await v(...a);
    if (r.rc !== 0) throw new Error(`virsh ${a.join(' ')}: rc ${r.rc}: ${r.err}`);
    return r.out;
  };
  const serial = () => (fs.existsSync(vg.serialLog(uuid)) ? fs.readFileSync(vg.serialLog(uuid), 'latin1') : '');
  const audit = () => fs.readFileSync(path.join(vg.home, 'log', 'audit.log'), 'utf8');

  beforeAll(async () => {
    vg = await startQemuDaemon({ policy: POLICY });
    fs.writeFileSync(
      path.join(vg.home, 'g1.xml'),
      `<domain type='qemu'><name>g1</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type><kernel>${guest!.kernel}</kernel><initrd>${guest!.initrd}</initrd>
  <cmdline>console=ttyS0 panic=-1</cmdline></os><features><acpi/></features><on_poweroff>destroy</on_poweroff>
  <devices><serial type='pty'/><console type='pty'/><memballoon model='none'/></devices></domain>\n`,
    );
    await ok('define', path.join(vg.home, 'g1.xml'));
    uuid = (await ok('domuuid', 'g1')).trim();
  });
  afterAll(async () => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    await vg?.stop();
  });

  test('virsh start --console: the marker, typed input runs (hello-42), Ctrl-] ends with OK; the logger is back', async () => {
    const t0 = Date.now();
    const con = pty(['virsh', '-c', vg.uri, 'start', '--console', 'g1']);
    await until('the marker on the console', () => con.out().includes(guest!.marker), 60000);
    const tMarker = Date.now() - t0;
    con.write('\r');
    await sleep(500);
    con.write('echo hello-$((40+2))\r');
    await until('hello-42 from the guest shell', () => /hello-42\r?\n/.test(con.out()), 20000);
    // Printed after we let go: only the helper's logger, reconnected, can record it.
    con.write('(sleep 3; echo LOGGER-BACK-$((2+3))) &\r');
    await sleep(500);
    con.write('\x1d');
    expect(await con.exited).toBe(0);
    console.log(`console: marker after ${tMarker} ms`);
    await until('the stream-end audit record', () => /"stream":"console","end":"finished"/.test(audit()), 5000);
    const j = vg.journal();
    expect(j).toMatch(/"phase":"begin","op":"DOMAIN_WRITE_REQ.openConsole","uuid":"[0-9a-f]{32}"/);
    expect(j).toMatch(/"op":"DOMAIN_WRITE_REQ.closeConsole"[^}]*"result":"ok"/);
    await until('the serial log to record output after the console closed', () => serial().includes('LOGGER-BACK-5'), 15000);
  });

  test('one console per VM: a second virsh is refused; --force takes it over and QEMU serves the new client', async () => {
    const a = pty(['virsh', '-c', vg.uri, 'console', 'g1']);
    await until('first console', () => a.out().includes('Escape character'), 10000);
    const second = await ptyRun(['virsh', '-c', vg.uri, 'console', 'g1']);
    expect(second.out).toMatch(/Active console session exists for this domain/);
    expect(second.code).not.toBe(0);
    const b = pty(['virsh', '-c', vg.uri, 'console', '--force', 'g1']);
    await until('forced console', () => b.out().includes('Escape character'), 10000);
    expect(await a.exited).not.toBe(0); // the first session ended with an error
    expect(a.out()).toMatch(/taken over/);
    b.write('\recho forced-$((6*7))\r');
    await until('forced-42 through the new client', () => /forced-42\r?\n/.test(b.out()), 20000);
    b.write('\x1d');
    expect(await b.exited).toBe(0);
  });

  test('1 MiB of console output to a slow reader: front-end memory bounded, no bytes through the helper', async () => {
    const front = frontPid(vg.home);
    const helper = vg.helperPid();
    const rss0 = rssKiB(front);
    const h0 = ioBytes(helper);
    const f0 = ioBytes(front);
    const cmd = "\rhead -c 1048576 /dev/zero | tr '\\0' x; echo; echo END-$((6*7))\r";
    const py = spawn('/usr/bin/python3', ['-c', PYREAD, vg.uri, 'g1', cmd, 'END-42', '0.03', 'until', '4'], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(py);
    let out = '';
    py.stdout.on('data', (b: Buffer) => (out += b.toString()));
    py.stderr.on('data', (b: Buffer) => (out += b.toString()));
    let rssMax = rss0;
    const t0 = Date.now();
    const sampler = setInterval(() => (rssMax = Math.max(rssMax, rssKiB(front))), 100);
    const code = await new Promise<number>((r) => py.on('exit', (c) => r(c ?? -1)));
    clearInterval(sampler);
    const took = Date.now() - t0;
    const res = lastJson<{ bytes: number; xs: number; found: boolean }>(out);
    const dh = ioBytes(helper) - h0;
    const df = ioBytes(front) - f0;
    console.log(
      `1 MiB console: ${res.bytes} bytes read in ${took} ms; front end RSS ${rss0} KiB -> max ${rssMax} KiB (+${rssMax - rss0} KiB); ` +
        `helper rchar+wchar +${dh} bytes; front end +${df} bytes`,
    );
    expect(code).toBe(0);
    expect(res.found).toBe(true);
    expect(res.xs).toBeGreaterThanOrEqual(1048576);
    expect(df).toBeGreaterThan(2 * 1048576); // the front end read the console and wrote the client: >= 2 MiB of syscalls
    expect(dh).toBeLessThan(128 * 1024); // the helper: open and close (IPC, journal) only; the MiB went around it
    expect(rssMax - rss0).toBeLessThan(48 * 1024);
  });

  test('the VM stops while the console is open: the client gets EOF, then finishes', async () => {
    const py = spawn('/usr/bin/python3', ['-c', PYREAD, vg.uri, 'g1', '', '', '0', 'eof', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(py);
    let out = '';
    py.stdout.on('data', (b: Buffer) => (out += b.toString()));
    py.stderr.on('data', (b: Buffer) => (out += b.toString()));
    let code: number | null = null;
    py.on('exit', (c) => (code = c ?? -1));
    await until('console open', () => out.includes('open'), 10000);
    await sleep(300);
    const mark = vg.output().length;
    const destroyed = await v('destroy', 'g1');
    expect(destroyed).toMatchObject({ rc: 0 });
    try {
      await until('the client to see EOF and finish', () => code !== null, 15000);
    } catch (e) {
      throw new Error(`${(e as Error).message}\nclient: ${out}\ndaemon: ${vg.output().slice(mark)}`);
    }
    expect({ code, out }).toMatchObject({ code: 0 });
    expect(lastJson(out)).toMatchObject({ eof: true });
    const r = await ptyRun(['virsh', '-c', vg.uri, 'console', 'g1']);
    expect(r.out).toMatch(/domain is not running/);
  });
});

// Tenancy: bob (another tenant) is told alice's VM does not exist; carol (a viewer in alice's tenant) is denied;
// alice, the owner, opens it.
describeIf(
  [guestReq, virshTool(), ...localUsers(['alice', 'bob', 'carol', 'dave'], 'console tenancy as other local users'), ...launcherRequirements()],
  'console tenancy',
  () => {
    let vg: RunningQemuDaemon;
    let uuid = '';
    const tenantOf: Record<string, string | undefined> = { alice: 'acme', bob: 'globex', carol: 'acme', dave: 'acme' };
    const uri = (user: string): string => `${vg.uri}${tenantOf[user] ? `&tenant=${tenantOf[user]}` : ''}`;
    const virsh = (user: string, ...args: string[]): Promise<Result> => exec([...asUser(user, vg.home), 'virsh', '-c', uri(user), ...args]);

    beforeAll(async () => {
      vg = await startQemuDaemon({ policy: POLICY, conf: 'unixSocketMode = 0o666\n', otherUsers: true });
      makeUserHomes(vg.home, ['alice', 'bob', 'carol', 'dave']);
      const f = path.join(vg.home, 'a1.xml');
      // No kernel (a tenant names no host path): the firmware runs; a serial port is all the console needs.
      fs.writeFileSync(
        f,
        `<domain type='qemu'><name>a1</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os><devices><serial type='pty'/><memballoon model='none'/></devices></domain>\n`,
      );
      fs.chmodSync(f, 0o644);
      for (const args of [
        ['define', f],
        ['start', 'a1'],
      ]) {
        const r = await virsh('alice', ...args);
        if (r.rc !== 0) throw new Error(`alice: virsh ${args.join(' ')}: ${r.err}`);
      }
      uuid = (await virsh('alice', 'domuuid', 'a1')).out.trim();
    });
    afterAll(async () => {
      for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
      await vg?.stop();
    });

    test("bob: alice's VM's console answers as for an absent VM, by name and by uuid", async () => {
      const bob = (dom: string) => ptyRun([...asUser('bob', vg.home), 'virsh', '-c', uri('bob'), 'console', dom]);
      const byName = await bob('a1');
      const absent = await bob('no-such-vm');
      expect(byName.out).toMatch(/failed to get domain/);
      expect(byName.out.replace(/a1/g, 'X')).toBe(absent.out.replace(/no-such-vm/g, 'X'));
      expect((await bob(uuid)).out).toMatch(/failed to get domain/);
      // The call itself, without virsh's lookup: alice's VM and a VM that does not exist answer alike.
      const raw = (name: string, u: string) => exec([...asUser('bob', vg.home), '/usr/bin/python3', '-c', RAW201, vg.sock, name, u.replace(/-/g, '')]);
      const hers = await raw('a1', uuid);
      const none = await raw('a1', '0badc0de-0000-4000-8000-000000000001');
      expect(hers.out).toMatch(/^42 Domain not found/);
      expect(hers.out.replace(uuid, 'U')).toBe(none.out.replace('0badc0de-0000-4000-8000-000000000001', 'U'));
    });

    test('carol (viewer) is denied domain:open_device; dave (viewer granted open_device on a1) and alice (owner) get it', async () => {
      const r = await ptyRun([...asUser('carol', vg.home), 'virsh', '-c', uri('carol'), 'console', 'a1']);
      expect(r.out).toMatch(/access denied/);
      for (const user of ['dave', 'alice']) {
        const a = pty([...asUser(user, vg.home), 'virsh', '-c', uri(user), 'console', 'a1']);
        await until(`${user}'s console`, () => a.out().includes('Escape character'), 10000);
        await sleep(300);
        a.write('\x1d');
        expect(await a.exited).toBe(0);
      }
      // carol's refusal is on record: a denial of domainOpenConsole naming her.
      const lines = fs.readFileSync(path.join(vg.home, 'log', 'audit.log'), 'utf8').split('\n');
      const denial = lines.find((l) => l.includes('"procedure":"domainOpenConsole"') && l.includes('"user":"carol"'));
      expect(denial).toMatch(/"result":"deny"/);
      expect(denial).toMatch(/domain:open_device/);
    });
  },
);
