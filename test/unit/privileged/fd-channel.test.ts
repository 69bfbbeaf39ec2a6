// SPDX-License-Identifier: Apache-2.0
// The descriptor channel with real sockets in one process: the helper's FdChannelServer hands a descriptor to the
// channel of the asking pid, the front end's FdChannelClient pairs it with its token; no channel, a wrong kind, an
// unclaimed descriptor, a peer that talks on the channel.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { FdKind, decodeFdMessage, encodeFdMessage } from '../../../src/ipc/fd-channel';
import { FdChannelServer } from '../../../src/privileged/fd-channel';
import { fdIsOpen, sendMsg, seqpacketConnect, seqpacketListen, streamPair } from '../../../src/sandbox/fdpass';
import { FdChannelClient } from '../../../src/unprivileged/fd-channel';

let dir: string;
let server: FdChannelServer;
let sockPath: string;
const logs: string[] = [];
const clients: FdChannelClient[] = [];

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-fdch-'));
  sockPath = path.join(dir, 'helper-sock.fds');
  server = new FdChannelServer(seqpacketListen(sockPath, 0o600), { allowUids: [process.getuid!()], log: (l) => logs.push(l) });
});
afterAll(() => {
  for (const c of clients) c.close();
  server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const client = (o: Partial<ConstructorParameters<typeof FdChannelClient>[0]> = {}): FdChannelClient => {
  const c = new FdChannelClient({ path: sockPath, ...o });
  clients.push(c);
  expect(c.connect()).toBe(true);
  return c;
};
const until = async (f: () => boolean, ms = 2000): Promise<void> => {
  const end = Date.now() + ms;
  while (!f() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
};
const echoPair = (): { mine: net.Socket; theirs: number } => {
  const [a, b] = streamPair();
  return { mine: new net.Socket({ fd: a, readable: true, writable: true }), theirs: b };
};

test('the codec: 16 token bytes and a known kind, nothing else', () => {
  const t = Buffer.alloc(16, 7);
  expect(decodeFdMessage(encodeFdMessage(t, FdKind.CONSOLE))).toEqual({ token: t, kind: FdKind.CONSOLE });
  expect(decodeFdMessage(Buffer.alloc(17, 0))).toBeNull(); // kind 0
  expect(decodeFdMessage(Buffer.alloc(18, 1))).toBeNull();
  expect(() => encodeFdMessage(Buffer.alloc(15), FdKind.CONSOLE)).toThrow();
});

test('a descriptor passed for our pid reaches our channel; take() before or after arrival; the helper copy is closed', async () => {
  const c = client();
  await until(() => server.hasChannel(process.pid));
  // take() after arrival
  const p1 = echoPair();
  const t1 = server.pass(process.pid, p1.theirs, FdKind.CONSOLE);
  expect(fdIsOpen(p1.theirs)).toBe(false); // the helper's copy is gone
  await until(() => c.pending === 1);
  const fd1 = await c.take(t1, FdKind.CONSOLE);
  const s1 = new net.Socket({ fd: fd1, readable: true, writable: true });
  const got = new Promise<string>((r) => p1.mine.once('data', (b) => r(b.toString())));
  s1.write('through the passed descriptor');
  expect(await got).toBe('through the passed descriptor');
  s1.destroy();
  p1.mine.destroy();
  // take() before arrival: the token is known only from the answer; simulate the answer racing ahead
  const p2 = echoPair();
  let t2: Buffer | null = null;
  const origPass = server.pass.bind(server);
  setTimeout(() => (t2 = origPass(process.pid, p2.theirs, FdKind.GRAPHICS)), 50);
  await until(() => t2 !== null);
  const fd2 = await c.take(t2!, FdKind.GRAPHICS);
  expect(fdIsOpen(fd2)).toBe(true);
  new net.Socket({ fd: fd2 }).destroy();
  p2.mine.destroy();
});

test('no channel for the asking pid: the pass fails with "no descriptor channel" and the descriptor is closed', () => {
  const p = echoPair();
  expect(() => server.pass(process.pid + 100000, p.theirs, FdKind.CONSOLE)).toThrow(
    expect.objectContaining({ code: 'VG_ERR_DOMAIN_INTERNAL', detail: expect.stringMatching(/no descriptor channel/) }),
  );
  expect(fdIsOpen(p.theirs)).toBe(false);
  p.mine.destroy();
});

test('a wrong kind is refused and closed; an unknown token times out; an unclaimed descriptor is closed', async () => {
  for (const old of clients) old.close();
  await until(() => server.channels === 0);
  const c = client({ unclaimedMs: 200, claimMs: 200 });
  await until(() => server.channels === 1);
  const p = echoPair();
  const t = server.pass(process.pid, p.theirs, FdKind.SCREENSHOT);
  await until(() => c.pending === 1);
  await expect(c.take(t, FdKind.CONSOLE)).rejects.toThrow(/kind 3 where 1/);
  await expect(c.take(Buffer.alloc(16, 9), FdKind.CONSOLE)).rejects.toThrow(/did not answer/);
  const q = echoPair();
  server.pass(process.pid, q.theirs, FdKind.CONSOLE);
  await until(() => c.pending === 1);
  const closed = new Promise<void>((r) => q.mine.once('end', () => r()));
  q.mine.resume();
  await until(() => c.pending === 0, 2000);
  expect(c.pending).toBe(0);
  await closed; // the front end closed it: the other end sees EOF
  p.mine.destroy();
  q.mine.destroy();
});

test('a peer that sends anything on the channel loses it', async () => {
  const before = server.channels;
  const fd = seqpacketConnect(sockPath);
  await until(() => server.channels === before + 1);
  const closed = new Promise<number>((r) => server.once('closed', r));
  sendMsg(fd, Buffer.from('hello'));
  expect(await closed).toBe(process.pid);
  expect(logs.some((l) => /sent a message on the descriptor channel/.test(l))).toBe(true);
  fs.closeSync(fd);
});
