// SPDX-License-Identifier: Apache-2.0
// The console stream's flow control with a real socket pair standing in for the guest's console (what the descriptor
// channel hands the front end) and a recording connection: a guest that floods while the client reads nothing is held
// at the stream mark (the console socket is no longer read, the guest's writes back up); small writes are gathered into
// one packet while the client is behind; input reaches the guest; finish, abort and EOF as libvirt has them.
import net from 'node:net';
import { MessageStatus, MessageType } from '../../../src/protocol/constants';
import { decodeHeader } from '../../../src/protocol/header';
import { streamPair } from '../../../src/sandbox/fdpass';
import { ConsoleStream } from '../../../src/unprivileged/console-stream';
import type { StreamConnection, StreamEnd } from '../../../src/unprivileged/streams';

const MARK = 1024 * 1024;

class FakeConn implements StreamConnection {
  closed = false;
  queued = 0; // bytes "sent" the client has not read
  frames: Buffer[] = [];
  held = 0;
  readonly streamHighWater = MARK;
  #relief: (() => void)[] = [];
  send(frame: Buffer): void {
    this.frames.push(frame);
    this.queued += frame.length;
  }
  queuedOut(): number {
    return this.queued;
  }
  whenRelieved(cb: () => void): void {
    this.#relief.push(cb);
  }
  inboundHeld(_s: unknown, bytes: number): void {
    this.held = bytes;
  }
  // The client read everything.
  drain(): void {
    this.queued = 0;
    for (const cb of this.#relief.splice(0)) cb();
  }
  get payload(): number {
    return this.frames.reduce((n, f) => n + f.length - 28, 0);
  }
  last(): { type: number; status: number; len: number } {
    const f = this.frames[this.frames.length - 1];
    const { header } = decodeHeader(f);
    return { type: header.type, status: header.status, len: f.length - 28 };
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const open: net.Socket[] = [];
afterAll(() => open.forEach((s) => s.destroy()));

function setup(): { conn: FakeConn; guest: net.Socket; stream: ConsoleStream; ends: StreamEnd[] } {
  const [a, b] = streamPair();
  const guest = new net.Socket({ fd: a, readable: true, writable: true });
  const mine = new net.Socket({ fd: b, readable: true, writable: true });
  open.push(guest, mine);
  const conn = new FakeConn();
  const ends: StreamEnd[] = [];
  const stream = new ConsoleStream(conn, { proc: 201, serial: 9 }, mine, (end) => ends.push(end));
  return { conn, guest, stream, ends };
}

test('a guest flooding a client that reads nothing is held at the stream mark; reading lets it go on', async () => {
  const { conn, guest, stream } = setup();
  stream.start();
  const chunk = Buffer.alloc(64 * 1024, 0x78);
  let written = 0;
  const pump = (): void => {
    while (written < 8 * MARK && guest.write(chunk)) written += chunk.length;
    if (written < 8 * MARK) guest.once('drain', () => ((written += chunk.length), pump()));
  };
  pump();
  await sleep(500);
  // Sent to the client: about the mark, not the 8 MiB; the rest waits in the guest's socket (QEMU would block).
  expect(conn.payload).toBeLessThanOrEqual(MARK + 64 * 1024);
  expect(conn.payload).toBeGreaterThan(MARK / 2);
  expect(written).toBeLessThan(4 * MARK);
  expect(conn.frames.every((f) => f.length - 28 <= 262_120)).toBe(true);
  const before = conn.payload;
  for (let i = 0; i < 40 && conn.payload < 8 * MARK; i++) {
    conn.drain();
    await sleep(20);
  }
  expect(conn.payload).toBeGreaterThan(before + MARK);
  stream.dispose();
});

test('small writes while the client is behind go out as one packet; with the client caught up, at once', async () => {
  const { conn, guest, stream } = setup();
  stream.start();
  guest.write('a');
  await sleep(30);
  expect(conn.frames).toHaveLength(1); // caught up: no waiting for company
  conn.queued = 100; // the client is behind
  for (let i = 0; i < 50; i++) {
    guest.write('b');
    await sleep(0);
  }
  await sleep(60);
  const packets = conn.frames.slice(1).map((f) => f.length - 28);
  expect(packets.reduce((n, x) => n + x, 0)).toBe(50);
  expect(packets.length).toBeLessThanOrEqual(5);
  stream.dispose();
});

test('input reaches the guest; client EOF half-closes; OK finishes and is confirmed; data after EOF fails', async () => {
  const { conn, guest, stream, ends } = setup();
  stream.start();
  let got = '';
  guest.on('data', (b: Buffer) => (got += b.toString()));
  stream.receive(MessageType.STREAM, MessageStatus.CONTINUE, Buffer.from('hello-42\r'));
  await sleep(30);
  expect(got).toBe('hello-42\r');
  stream.receive(MessageType.STREAM, MessageStatus.CONTINUE, Buffer.alloc(0)); // EOF
  const ended = new Promise<void>((r) => guest.once('end', () => r()));
  await ended;
  stream.receive(MessageType.STREAM, MessageStatus.CONTINUE, Buffer.from('late'));
  expect(conn.last()).toMatchObject({ type: MessageType.STREAM, status: MessageStatus.ERROR });
  expect(ends).toEqual(['failed']);
});

test('the guest hangs up: its last output, then EOF (an empty CONTINUE); the client finishes, confirmed with OK', async () => {
  const { conn, guest, stream, ends } = setup();
  stream.start();
  conn.queued = 10; // behind: the last words are being gathered when the guest goes
  guest.end('bye');
  await sleep(50);
  expect(conn.frames.map((f) => f.subarray(28).toString())).toEqual(['bye', '']);
  stream.receive(MessageType.STREAM, MessageStatus.OK, Buffer.alloc(0));
  expect(conn.last()).toMatchObject({ type: MessageType.STREAM, status: MessageStatus.OK, len: 0 });
  expect(ends).toEqual(['finished']);
});

test('an oversized packet, a hole and an abort', () => {
  const a = setup();
  a.stream.start();
  a.stream.receive(MessageType.STREAM, MessageStatus.CONTINUE, Buffer.alloc(262_121));
  expect(a.conn.last()).toMatchObject({ status: MessageStatus.ERROR });
  const b = setup();
  b.stream.start();
  b.stream.receive(MessageType.STREAM_HOLE, MessageStatus.CONTINUE, Buffer.alloc(12));
  expect(b.ends).toEqual(['failed']);
  const c = setup();
  c.stream.start();
  c.stream.receive(MessageType.STREAM, MessageStatus.ERROR, Buffer.alloc(0));
  expect(c.conn.last()).toMatchObject({ status: MessageStatus.OK });
  expect(c.ends).toEqual(['aborted']);
});
