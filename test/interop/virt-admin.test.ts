// SPDX-License-Identifier: Apache-2.0
// Real virt-admin (libvirt-clients 9.0) on the admin socket: servers, clients, limits and log settings, live; refused
// for anyone but root and host admins; every write in the audit trail.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { describeIf, tool, virshTool } from '../helpers/skip';
import { asUser, exec, localUsers, makeUserHomes } from '../helpers/users';
import net from 'node:net';
import { FrameDecoder } from '../../src/common/framing';
import { decodeHeader, encodeMessage } from '../../src/protocol/header';
import { errorCodec } from '../../src/protocol/types';

let vg: RunningDaemon | undefined;
let home: string;
let uri: string;
const kids: ChildProcess[] = [];

const admin = (...args: string[]): Promise<{ rc: number; out: string; err: string }> => exec(['virt-admin', '-c', uri, ...args]);

async function until(what: string, f: () => Promise<boolean> | boolean, ms = 20000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// A long-lived virsh session (event loop) whose connection virt-admin can see and cut.
function holdVirsh(): { proc: ChildProcess; out: () => string } {
  let out = '';
  const proc = spawn('virsh', ['-c', vg!.uri, 'event', '--loop', '--all'], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  kids.push(proc);
  return { proc, out: () => out };
}

const clientIds = async (): Promise<number[]> =>
  (await admin('srv-clients-list', 'virtgated')).out
    .split('\n')
    .map((l) => /^\s*(\d+)\s+unix\s/.exec(l)?.[1])
    .filter((x): x is string => !!x)
    .map(Number);

const auditText = (): string => fs.readFileSync(path.join(home, 'log', 'audit.log'), 'utf8');

describeIf([tool('virt-admin', 'libvirt-clients'), virshTool(), ...localUsers(['alice'])], 'virt-admin', () => {
  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-vadm-'));
    fs.chmodSync(home, 0o755); // alice can reach the socket: the daemon's own uid check is what refuses her
    fs.mkdirSync(path.join(home, 'etc'));
    fs.writeFileSync(path.join(home, 'etc', 'virtgate.conf'), 'adminSocketMode = 0o666\nlogOutputs = "1:stderr"\n');
    makeUserHomes(home, ['alice']);
    vg = await startDaemon({ home });
    uri = `libvirtd:///system?socket=${path.join(home, 'run', 'virtgate-admin-sock')}`;
  }, 60000);

  afterAll(async () => {
    for (const k of kids) k.kill('SIGKILL');
    await vg?.stop();
  });

  test('srv-list, srv-threadpool-info, srv-clients-info, version', async () => {
    expect((await admin('srv-list')).out).toMatch(/^\s*0\s+virtgated\s*$/m);
    expect((await admin('srv-threadpool-info', 'virtgated')).out).toMatch(/maxWorkers\s*: 1/);
    const info = await admin('srv-clients-info', 'virtgated');
    expect(info.out).toMatch(/nclients_max\s*: 5000/);
    expect(info.out).toMatch(/nclients_unauth_max\s*: 20/);
    const nosuch = await admin('srv-clients-info', 'libvirtd');
    expect(nosuch.rc).not.toBe(0);
    expect(nosuch.err).toMatch(/Server not found/);
    expect((await admin('version')).out).toMatch(/Running against daemon: 9\.0\.0/);
  }, 60000);

  test('an unknown admin procedure answers as libvirtd: code 39, domain 7, "unknown procedure: N"', async () => {
    const sock = net.connect(path.join(home, 'run', 'virtgate-admin-sock'));
    const dec = new FrameDecoder({ min: 28, max: 1 << 20 });
    const replies: Buffer[] = [];
    sock.on('data', (c) => replies.push(...dec.push(c)));
    const call = (proc: number, serial: number, body?: (w: import('../../src/common/xdr').XdrWriter) => void): void =>
      void sock.write(encodeMessage({ prog: 0x06900690, vers: 1, proc, type: 0, serial, status: 0 }, body));
    call(1, 1, (w) => void w.u32(0)); // CONNECT_OPEN
    call(4242, 2);
    await until('two replies', () => replies.length >= 2);
    sock.destroy();
    const open = decodeHeader(replies[0]).header;
    expect([open.serial, open.status]).toEqual([1, 0]);
    const { header, body } = decodeHeader(replies[1]);
    expect([header.serial, header.proc, header.status]).toEqual([2, 4242, 1]);
    expect(errorCodec.decode(body)).toMatchObject({ code: 39, domain: 7, message: 'unknown procedure: 4242', level: 2 });
  });

  test('a non-root user is refused at connect, and the refusal is logged and audited', async () => {
    const r = await exec([...asUser('alice', home), 'virt-admin', '-c', uri, 'srv-list']);
    expect(r.rc).not.toBe(0);
    expect(r.err).toMatch(/access denied/);
    expect(r.out).not.toMatch(/virtgated/);
    await vg!.waitFor(/warning: refusing virt-admin connection from unix:pid=\d+,uid=\d+ \(unix:alice\)/);
    await until('the refusal in the audit log', () => /admin-refused/.test(auditText()));
  }, 60000);

  test('client-info and client-disconnect really close a virsh session; audited', async () => {
    const before = new Set(await clientIds());
    const v = holdVirsh();
    let id = 0;
    await until('the virsh session in srv-clients-list', async () => {
      id = (await clientIds()).find((x) => !before.has(x)) ?? 0;
      return id > 0;
    });
    const info = await admin('client-info', 'virtgated', String(id));
    expect(info.out).toMatch(/transport\s*: unix/);
    expect(info.out).toMatch(/unix_user_name\s*: root/);
    expect(info.out).toMatch(new RegExp(`unix_process_id\\s*: \\d+`));
    const d = await admin('client-disconnect', 'virtgated', String(id));
    expect(d.out).toMatch(new RegExp(`Client '${id}' disconnected`));
    await until('virsh to lose its connection', () => v.proc.exitCode !== null);
    expect(v.out()).toMatch(/end of file/);
    expect(await clientIds()).not.toContain(id);
    expect(auditText()).toMatch(/admin-intent.*client-close|client-close.*admin-intent/);
    expect(auditText()).toMatch(/admin-outcome/);
    const gone = await admin('client-info', 'virtgated', String(id));
    expect(gone.err).toMatch(/Client not found/);
  }, 60000);

  test('srv-clients-set takes effect on the running daemon: the next connection over the limit is refused', async () => {
    const v = holdVirsh();
    await until('one client', async () => (await clientIds()).length >= 1);
    const n = (await clientIds()).length;
    const set = await admin('srv-clients-set', 'virtgated', '--max-clients', String(n), '--max-unauth-clients', '1');
    expect(set.rc).toBe(0);
    expect((await admin('srv-clients-info', 'virtgated')).out).toMatch(new RegExp(`nclients_max\\s*: ${n}\\b`));
    const refused = await exec(['virsh', '-c', vg!.uri, 'list', '--all']);
    expect(refused.rc).not.toBe(0);
    await vg!.waitFor(/refusing connection from .*\(maxClients\)/);
    expect(auditText()).toMatch(/client-limits/);
    // A bad pair changes nothing.
    const bad = await admin('srv-clients-set', 'virtgated', '--max-clients', '2', '--max-unauth-clients', '5');
    expect(bad.rc).not.toBe(0);
    expect(await admin('srv-clients-set', 'virtgated', '--max-clients', '5000', '--max-unauth-clients', '20')).toMatchObject({ rc: 0 });
    expect(await exec(['virsh', '-c', vg!.uri, 'list', '--all'])).toMatchObject({ rc: 0 });
    v.proc.kill('SIGKILL');
  }, 60000);

  test('daemon-log-filters and daemon-log-outputs: get and set, live', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-vadm-log-'));
    fs.chmodSync(dir, 0o755);
    const file = path.join(dir, 'out.log');
    fs.writeFileSync(file, '');
    fs.chmodSync(file, 0o666); // the front end's user appends to it
    expect((await admin('daemon-log-outputs')).out).toMatch(/Logging outputs: 1:stderr/);
    expect((await admin('daemon-log-outputs', `1:stderr 1:file:${file}`)).rc).toBe(0);
    expect((await admin('daemon-log-outputs')).out).toMatch(new RegExp(`Logging outputs: 1:stderr 1:file:${file}`));
    // errors only for 'admin': the next admin write's warning line does not reach the file...
    expect((await admin('daemon-log-filters', '4:admin')).rc).toBe(0);
    expect((await admin('daemon-log-filters')).out).toMatch(/Logging filters: 4:admin/);
    await admin('srv-clients-set', 'virtgated', '--max-clients', '4999');
    expect(fs.readFileSync(file, 'utf8')).not.toMatch(/client-limits by/);
    // ...and with warnings allowed again it does.
    expect((await admin('daemon-log-filters', 'warning:admin')).rc).toBe(0);
    await admin('srv-clients-set', 'virtgated', '--max-clients', '5000');
    await until('the admin line in the file', () => /warning: virt-admin client-limits by unix:root: done \[admin/.test(fs.readFileSync(file, 'utf8')));
    const bad = await admin('daemon-log-outputs', '1:nowhere');
    expect(bad.rc).not.toBe(0);
    expect((await admin('daemon-log-outputs')).out).toMatch(new RegExp(`1:file:${file}`)); // unchanged
    expect(auditText()).toMatch(/log-filters/);
    expect(auditText()).toMatch(/log-outputs/);
    expect((await admin('daemon-log-outputs', '1:stderr')).rc).toBe(0);
  }, 60000);

  test('a host admin revoked while connected can change nothing more: each write is decided again', async () => {
    const policy = path.join(home, 'etc', 'policy.csv');
    fs.writeFileSync(policy, 'g, unix:alice, host-admin, *\n');
    await vg!.waitFor(/policy loaded \(file change\)/, 10000, 0);
    // One virt-admin session as alice, commands on its stdin: a write while she is a host admin, then after the revoke.
    const argv = [...asUser('alice', home), 'virt-admin', '-c', uri];
    const proc = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    kids.push(proc);
    let out = '';
    proc.stdout!.on('data', (d) => (out += d));
    proc.stderr!.on('data', (d) => (out += d));
    proc.stdin!.write('srv-clients-set virtgated --max-clients 4000\nsrv-clients-info virtgated\n');
    await until('the first write as a host admin', () => /nclients_max\s*:\s*4000/.test(out));
    const mark = vg!.output().length;
    fs.writeFileSync(policy, '# alice revoked\n');
    await vg!.waitFor(/policy loaded \(file change\)/, 10000, mark);
    proc.stdin!.write('srv-clients-set virtgated --max-clients 3000\n');
    await until('the refusal on the same connection', () => /access denied/.test(out));
    proc.stdin!.end();
    expect((await admin('srv-clients-info', 'virtgated')).out).toMatch(/nclients_max\s*:\s*4000/);
    await until('the refusal in the audit log', () => /admin-refused.*"action":"client-limits"/.test(auditText()));
    await admin('srv-clients-set', 'virtgated', '--max-clients', '5000');
  }, 60000);
});
