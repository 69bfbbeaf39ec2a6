// SPDX-License-Identifier: Apache-2.0
// The descriptor channel between a real helper and a real front end (test driver, whose simulated console echoes),
// driven from outside as an attacker or a confused client would: the .fds socket's permissions, a uid the helper does
// not serve, another process of the front end's own uid that listens on the channel (it gets nothing: descriptors go to
// the asking pid), and the console stream on the wire: reply first, CONTINUE both ways, OK finishes (echoed), ERROR
// aborts, one console per VM across connections (force takes it over), bad flags and bad packets, read-only refused.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { MessageStatus, MessageType } from '../../src/protocol/constants';
import { encodeMessage } from '../../src/protocol/header';
import type { XdrWriter } from '../../src/common/xdr';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { type RawClient, openRaw } from '../helpers/raw';

const OPEN_CONSOLE = 201;
const TEST_UUID = Buffer.from('6695eb01f6a4830479aa97f2502e193f', 'hex');
const testDom = (w: XdrWriter) => w.string('test', 4096).opaqueFixed(TEST_UUID, 16).i32(1);
const open = (c: RawClient, serial: number, flags = 0, dev: string | null = null) =>
  c.call(OPEN_CONSOLE, serial, (w) => {
    testDom(w);
    w.optional(dev, (w2, s) => void w2.string(s, 64));
    w.u32(flags);
  });
const packet = (serial: number, status: number, data = Buffer.alloc(0)) => {
  const head = encodeMessage({ prog: 0x20008086, vers: 1, proc: OPEN_CONSOLE, type: MessageType.STREAM, serial, status });
  head.writeUInt32BE(head.length + data.length, 0);
  return Buffer.concat([head, data]);
};
const of = (c: RawClient, serial: number) => c.replies.filter((r) => r.header.serial === serial);
const streamText = (c: RawClient, serial: number) =>
  Buffer.concat(
    of(c, serial)
      .filter((r) => r.header.type === MessageType.STREAM && r.header.status === MessageStatus.CONTINUE)
      .map((r) => r.body),
  ).toString();
async function until(c: RawClient, done: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done() && !c.closed && Date.now() < deadline) await c.waitReplies(c.replies.length + 1, 100);
}
const ended = (c: RawClient, serial: number) =>
  of(c, serial).find((r) => r.header.type === MessageType.STREAM && r.header.status !== MessageStatus.CONTINUE) ?? null;

// A python3 client of the .fds socket run as uid:gid; prints what it receives: EOF, or the message and its fd count.
const LISTENER = `
import socket, sys, array, select
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
print('connected', flush=True)
if sys.argv[2] == 'talk': s.send(b'hello helper')
r, _, _ = select.select([s], [], [], float(sys.argv[3]))
if not r: print('nothing'); sys.exit(0)
msg, anc, flags, _ = s.recvmsg(64, socket.CMSG_SPACE(16))
print('eof' if not msg and not anc else 'got %d bytes %d ancillary' % (len(msg), len(anc)), flush=True)
`;
const listener = (uid: number, gid: number, path: string, mode: 'listen' | 'talk', secs: number) => {
  const p = spawn('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '/usr/bin/python3', '-c', LISTENER, path, mode, String(secs)]);
  let out = '';
  p.stdout.on('data', (b: Buffer) => (out += b.toString()));
  p.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const done = new Promise<string>((r) => p.on('exit', () => r(out)));
  const connected = async () => {
    while (!/connected|Error/.test(out) && p.exitCode === null) await new Promise((r) => setTimeout(r, 20));
  };
  return { done, connected, kill: () => p.kill('SIGKILL') };
};

let vg: RunningDaemon;
let fds: string;
beforeAll(async () => {
  vg = await startDaemon({});
  fds = `${vg.helperSock}.fds`;
});
afterAll(async () => vg?.stop());

test('the .fds socket sits beside the helper socket with the same owner and mode', () => {
  const a = fs.statSync(vg.helperSock);
  const b = fs.statSync(fds);
  expect(b.isSocket()).toBe(true);
  expect([b.uid, b.gid, b.mode & 0o777]).toEqual([a.uid, a.gid, a.mode & 0o777]);
});

test('a uid the helper does not serve is hung up on at once, even with the socket group', async () => {
  const gid = fs.statSync(fds).gid;
  const l = listener(54321, gid, fds, 'listen', 3);
  expect(await l.done).toMatch(/connected\s+eof/);
  expect(vg.output()).toMatch(/fd channel: refused peer uid 54321/);
});

test("another process of the front end's uid on the channel gets nothing of a console the front end opens", async () => {
  const front = fs.statSync(vg.sock).uid; // the front end runs as this user
  const gid = fs.statSync(fds).gid;
  const spy = listener(front, gid, fds, 'listen', 3);
  await spy.connected();
  const c = await openRaw(vg.sock);
  open(c, 5);
  await until(c, () => /test console of test/.test(streamText(c, 5)));
  expect(of(c, 5)[0].header).toMatchObject({ type: MessageType.REPLY, status: MessageStatus.OK });
  expect(of(c, 5)[0].body.length).toBe(0); // the reply is empty; the stream follows
  c.write(packet(5, MessageStatus.OK));
  await until(c, () => ended(c, 5) !== null);
  expect(await spy.done).toMatch(/connected\s+nothing/);
  c.end();
});

test('a peer that talks on the channel is disconnected', async () => {
  const front = fs.statSync(vg.sock).uid;
  const l = listener(front, fs.statSync(fds).gid, fds, 'talk', 3);
  expect(await l.done).toMatch(/connected\s+eof/);
  expect(vg.output()).toMatch(/sent a message on the descriptor channel/);
});

test('console: banner, echo both ways, finish confirmed with OK; audited and journaled', async () => {
  const c = await openRaw(vg.sock);
  open(c, 7);
  await until(c, () => /test console of test/.test(streamText(c, 7)));
  c.write(packet(7, MessageStatus.CONTINUE, Buffer.from('hello-42\r')));
  await until(c, () => /hello-42/.test(streamText(c, 7)));
  const n = c.replies.length;
  c.write(packet(7, MessageStatus.OK));
  await until(c, () => c.replies.length > n);
  expect(c.replies[n].header).toMatchObject({ type: MessageType.STREAM, status: MessageStatus.OK, serial: 7, proc: OPEN_CONSOLE });
  c.end();
  // Audit: intent + outcome of domainOpenConsole, and the stream's end with its byte counts.
  const auditLog = `${vg.home}/log/audit.log`;
  for (let i = 0; i < 50 && !/"toGuest":9/.test(fs.readFileSync(auditLog, 'utf8')); i++) await new Promise((r) => setTimeout(r, 50));
  const audit = fs.readFileSync(auditLog, 'utf8');
  expect(audit).toMatch(/"kind":"intent".*"procedure":"domainOpenConsole","permission":"domain:open_device"/);
  expect(audit).toMatch(/"name":"stream-end","detail":\{[^}]*"stream":"console","end":"finished","toClient":\d+,"toGuest":9/);
  // Helper journal: the open (begin/end) and the close (a result line of its own).
  await new Promise((r) => setTimeout(r, 300));
  const journal = fs.readFileSync(`${vg.home}/lib/helper-journal.log`, 'utf8');
  expect(journal).toMatch(/"phase":"begin","op":"DOMAIN_WRITE_REQ.openConsole"/);
  expect(journal).toMatch(/"op":"DOMAIN_WRITE_REQ.closeConsole"[^}]*"requestId":"[^"]+-close","result":"ok"/);
  // The cross-check still finds every helper write backed by an intent.
  const r = spawnSync(
    process.execPath,
    [`${__dirname}/../../bin/virtgate.js`, 'audit', 'verify', '--home', vg.home, '--cross-check', `${vg.home}/lib/helper-journal.log`],
    {
      encoding: 'utf8',
    },
  );
  expect(`${r.stdout}${r.stderr}`).not.toMatch(/no front-end audit record/);
  expect(r.status).toBe(0);
});

test('one console per VM across connections: busy without force; force ends the old stream with an error', async () => {
  const a = await openRaw(vg.sock);
  const b = await openRaw(vg.sock);
  open(a, 5);
  await until(a, () => /test console/.test(streamText(a, 5)));
  open(b, 5);
  await until(b, () => of(b, 5).length > 0);
  expect(of(b, 5)[0].error).toMatchObject({ code: 9, message: 'operation failed: Active console session exists for this domain' });
  open(b, 6, 1); // VIR_DOMAIN_CONSOLE_FORCE
  await until(b, () => /test console/.test(streamText(b, 6)));
  await until(a, () => ended(a, 5) !== null);
  expect(ended(a, 5)).toMatchObject({ header: { status: MessageStatus.ERROR }, error: { code: 9 } });
  expect(ended(a, 5)!.error!.message).toMatch(/taken over/);
  // The new holder's console works.
  b.write(packet(6, MessageStatus.CONTINUE, Buffer.from('still-here')));
  await until(b, () => /still-here/.test(streamText(b, 6)));
  // Client abort (ERROR) is confirmed with OK; the console is free again.
  const n = b.replies.length;
  b.write(packet(6, MessageStatus.ERROR));
  await until(b, () => b.replies.length > n);
  expect(b.replies[n].header).toMatchObject({ type: MessageType.STREAM, status: MessageStatus.OK, serial: 6 });
  open(a, 8, 2); // VIR_DOMAIN_CONSOLE_SAFE is accepted
  await until(a, () => /test console/.test(streamText(a, 8)));
  a.end(); // a closed connection frees it too
  await new Promise((r) => setTimeout(r, 300));
  open(b, 9);
  await until(b, () => /test console/.test(streamText(b, 9)));
  b.end();
});

test('bad flags and bad packets; data after the finish is dropped; a read-only connection is refused', async () => {
  const c = await openRaw(vg.sock);
  open(c, 5, 4);
  await until(c, () => of(c, 5).length > 0);
  expect(of(c, 5)[0].error?.message).toMatch(/unsupported flags \(0x4\)/);
  open(c, 6, 0, 'parallel0');
  await until(c, () => of(c, 6).length > 0);
  expect(of(c, 6)[0].error?.message).toMatch(/cannot find character device parallel0/);
  // A data packet over the 262,120-byte limit ends the stream with an error; the connection survives.
  open(c, 7);
  await until(c, () => /test console/.test(streamText(c, 7)));
  c.write(packet(7, MessageStatus.CONTINUE, Buffer.alloc(262_121, 0x61)));
  await until(c, () => ended(c, 7) !== null);
  expect(ended(c, 7)!.error!.message).toMatch(/exceeds 262120/);
  // Finish, then data: the data is for a closed stream and ignored; the connection goes on.
  open(c, 8);
  await until(c, () => /test console/.test(streamText(c, 8)));
  c.write(packet(8, MessageStatus.OK));
  await until(c, () => ended(c, 8) !== null);
  c.write(packet(8, MessageStatus.CONTINUE, Buffer.from('late')));
  c.call(3, 9);
  await until(c, () => of(c, 9).length > 0);
  expect(c.closed).toBe(false);
  expect(of(c, 8).filter((r) => r.header.status === MessageStatus.ERROR)).toHaveLength(0);
  c.end();
  const ro = await openRaw(vg.sockRo);
  open(ro, 5);
  await until(ro, () => of(ro, 5).length > 0);
  expect(of(ro, 5)[0].error?.message).toMatch(/read only|read-only/i);
  ro.end();
});
