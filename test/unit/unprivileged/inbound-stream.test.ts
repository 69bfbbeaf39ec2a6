// SPDX-License-Identifier: Apache-2.0
// InboundStream (client -> server, volume upload) with a fake connection and sink: data and holes reach the sink in
// order, the finish commits and is confirmed, the byte cap, holes on a non-sparse stream, data after the end, a stall,
// an abort, a failing sink, and the backpressure signal (bytes held before the connection stops being read).
import { XdrWriter } from '../../../src/common/xdr';
import { MessageStatus, MessageType, Program } from '../../../src/protocol/constants';
import { decodeHeader, encodeMessage } from '../../../src/protocol/header';
import { encodeCall, encodeReply } from '../../../src/protocol/messages';
import { PS } from '../../../src/protocol/procs/storage';
import '../../../src/protocol/procs/remote';
import { Session } from '../../../src/unprivileged/session';
import { errorCodec } from '../../../src/protocol/types';
import { type ByteSink, type ClientStream, InboundStream, type StreamConnection, type StreamEnd } from '../../../src/unprivileged/streams';

class FakeConn implements StreamConnection {
  closed = false;
  readonly streamHighWater = 1024 * 1024;
  readonly frames: Buffer[] = [];
  held = 0;
  maxHeld = 0;
  send(frame: Buffer): void {
    this.frames.push(frame);
  }
  queuedOut(): number {
    return 0;
  }
  whenRelieved(): void {}
  inboundHeld(_s: ClientStream, bytes: number): void {
    this.held = bytes;
    this.maxHeld = Math.max(this.maxHeld, bytes);
  }
  last(): { status: number; message?: string } {
    const { header, body } = decodeHeader(this.frames[this.frames.length - 1]);
    expect(header.type).toBe(MessageType.STREAM);
    return { status: header.status, message: header.status === MessageStatus.ERROR ? (errorCodec.decode(body).message ?? '') : undefined };
  }
}

class FakeSink implements ByteSink {
  readonly log: string[] = [];
  bytes = 0;
  gate: Promise<void> | null = null; // writes wait on it (a slow helper)
  failWrite = false;
  async write(data: Buffer): Promise<void> {
    if (this.gate) await this.gate;
    if (this.failWrite) throw new Error('disk on fire');
    this.bytes += data.length;
    this.log.push(`data ${data.length}`);
  }
  async hole(n: bigint): Promise<void> {
    this.log.push(`hole ${n}`);
  }
  async finish(): Promise<void> {
    this.log.push('finish');
  }
  abort(): void {
    this.log.push('abort');
  }
}

const hole = (length: bigint, flags = 0): Buffer => new XdrWriter().i64(length).u32(flags).finish();
const settle = () => new Promise((r) => setTimeout(r, 10));
const CALL = { proc: 208, serial: 9 };

function open(opts: { maxBytes?: bigint; sparse?: boolean; stallMs?: number; highWater?: number } = {}) {
  const conn = new FakeConn();
  const sink = new FakeSink();
  const ends: [StreamEnd, number][] = [];
  const s = new InboundStream(conn, CALL, sink, { maxBytes: 1n << 30n, sparse: true, stallMs: 0, ...opts }, (e, n) => ends.push([e, n]));
  s.start();
  return { conn, sink, s, ends };
}

test('data and holes reach the sink in order; an empty CONTINUE then OK finishes, confirmed with OK', async () => {
  const { conn, sink, s, ends } = open();
  s.receive(MessageType.STREAM, MessageStatus.CONTINUE, Buffer.alloc(1000, 1));
  s.receive(MessageType.STREAM_HOLE, MessageStatus.CONTINUE, hole(5000n));
  s.receive(MessageType.STREAM, MessageStatus.CONTINUE, Buffer.alloc(24, 2));
  s.receive(MessageType.STREAM, MessageStatus.CONTINUE, Buffer.alloc(0)); // EOF
  s.receive(MessageType.STREAM, MessageStatus.OK, Buffer.alloc(0));
  await settle();
  expect(sink.log).toEqual(['data 1000', 'hole 5000', 'data 24', 'finish']);
  expect(conn.last()).toEqual({ status: MessageStatus.OK, message: undefined });
  expect(ends).toEqual([['finished', 6024]]);
  expect(conn.held).toBe(0);
});

test('packets after the finish are dropped (the commit stands, confirmed once)', async () => {
  const { conn, sink, s, ends } = open();
  s.receive(MessageType.STREAM, MessageStatus.CONTINUE, Buffer.alloc(10));
  s.receive(MessageType.STREAM, MessageStatus.OK, Buffer.alloc(0));
  s.receive(MessageType.STREAM, MessageStatus.CONTINUE, Buffer.alloc(99));
  s.receive(MessageType.STREAM, MessageStatus.OK, Buffer.alloc(0));
  s.receive(MessageType.STREAM_HOLE, MessageStatus.CONTINUE, hole(5n));
  await settle();
  expect(sink.log).toEqual(['data 10', 'finish']);
  expect(conn.frames).toHaveLength(1);
  expect(conn.last().status).toBe(MessageStatus.OK);
  expect(ends).toEqual([['finished', 10]]);
});

test('more than the cap (data or a huge hole) fails the stream with a clear error; nothing is committed', async () => {
  const a = open({ maxBytes: 1500n });
  a.s.receive(MessageType.STREAM, MessageStatus.CONTINUE, Buffer.alloc(1000));
  a.s.receive(MessageType.STREAM, MessageStatus.CONTINUE, Buffer.alloc(501));
  a.s.receive(MessageType.STREAM, MessageStatus.OK, Buffer.alloc(0)); // too late: the stream is over
  await settle();
  expect(a.conn.last()).toEqual({
    status: MessageStatus.ERROR,
    message: 'stream error: Too many bytes to write to stream: the upload takes at most 1500 bytes',
  });
  expect(a.sink.log).not.toContain('finish');
  expect(a.sink.log[a.sink.log.length - 1]).toBe('abort');
  expect(a.ends[0][0]).toBe('failed');
  const b = open({ maxBytes: 1n << 20n });
  b.s.receive(MessageType.STREAM_HOLE, MessageStatus.CONTINUE, hole((1n << 63n) - 1n));
  await settle();
  expect(b.conn.last().message).toMatch(/Too many bytes to write to stream/);
  expect(b.sink.log).toEqual(['abort']);
});

test('a hole on a stream not opened sparse, a malformed or flagged hole, data after the end: each fails the stream', async () => {
  const cases: [string, (s: InboundStream) => void][] = [
    ['stream error: Unexpected stream hole', (s) => s.receive(MessageType.STREAM_HOLE, MessageStatus.CONTINUE, hole(10n))],
    ['stream error: Invalid stream hole', (s) => s.receive(MessageType.STREAM_HOLE, MessageStatus.CONTINUE, Buffer.alloc(5))],
    ['stream error: Invalid stream hole', (s) => s.receive(MessageType.STREAM_HOLE, MessageStatus.CONTINUE, hole(-1n))],
    ['stream error: unsupported stream hole flags 0x1', (s) => s.receive(MessageType.STREAM_HOLE, MessageStatus.CONTINUE, hole(10n, 1))],
    [
      'stream error: data after the end of the stream',
      (s) => (s.receive(MessageType.STREAM, MessageStatus.CONTINUE, Buffer.alloc(0)), s.receive(MessageType.STREAM, MessageStatus.CONTINUE, Buffer.alloc(9))),
    ],
    ['stream error: unexpected stream packet (type 6, status 0)', (s) => s.receive(MessageType.STREAM_HOLE, MessageStatus.OK, Buffer.alloc(0))],
  ];
  for (const [i, [message, act]] of cases.entries()) {
    const { conn, sink, s, ends } = open({ sparse: i !== 0 });
    act(s);
    await settle();
    expect(conn.last()).toEqual({ status: MessageStatus.ERROR, message });
    expect(sink.log).toEqual(['abort']);
    expect(ends[0][0]).toBe('failed');
  }
});

test('a client abort is confirmed and discards; a failing sink fails the stream; a closed connection aborts', async () => {
  const a = open();
  a.s.receive(MessageType.STREAM, MessageStatus.CONTINUE, Buffer.alloc(10));
  await settle();
  a.s.receive(MessageType.STREAM, MessageStatus.ERROR, Buffer.alloc(0));
  expect(a.conn.last().status).toBe(MessageStatus.OK);
  expect(a.sink.log).toEqual(['data 10', 'abort']);
  expect(a.ends).toEqual([['aborted', 10]]);
  const b = open();
  b.sink.failWrite = true;
  b.s.receive(MessageType.STREAM, MessageStatus.CONTINUE, Buffer.alloc(10));
  await settle();
  expect(b.conn.last()).toEqual({ status: MessageStatus.ERROR, message: 'stream error: the upload could not be written' });
  const c = open();
  c.s.dispose();
  expect(c.sink.log).toEqual(['abort']);
  expect(c.ends).toEqual([['closed', 0]]);
});

test('a stream that stops sending fails after the stall timeout, but not while its data waits for a slow sink', async () => {
  jest.useFakeTimers();
  try {
    const { conn, sink, s, ends } = open({ stallMs: 5000 });
    let release!: () => void;
    sink.gate = new Promise<void>((r) => (release = r));
    s.receive(MessageType.STREAM, MessageStatus.CONTINUE, Buffer.alloc(10));
    await jest.advanceTimersByTimeAsync(20_000); // the sink is slow: the client is not stalling
    expect(ends).toEqual([]);
    release();
    await jest.advanceTimersByTimeAsync(4_000);
    expect(ends).toEqual([]);
    await jest.advanceTimersByTimeAsync(1_500); // now the client owes us data
    expect(conn.last()).toEqual({ status: MessageStatus.ERROR, message: 'stream error: no data from the client for 5 s: the upload is abandoned' });
    expect(sink.log).toEqual(['data 10', 'abort']);
    expect(ends).toEqual([['failed', 10]]);
  } finally {
    jest.useRealTimers();
  }
});

test('a client that sends its EOF but never finishes is timed out too', async () => {
  jest.useFakeTimers();
  try {
    const { conn, sink, s, ends } = open({ stallMs: 2000 });
    s.receive(MessageType.STREAM, MessageStatus.CONTINUE, Buffer.alloc(10));
    s.receive(MessageType.STREAM, MessageStatus.CONTINUE, Buffer.alloc(0)); // EOF while the data is being written, then nothing
    await jest.advanceTimersByTimeAsync(2500);
    expect(conn.last().message).toBe('stream error: no data from the client for 2 s: the upload is abandoned');
    expect(sink.log).toEqual(['data 10', 'abort']);
    expect(ends).toEqual([['failed', 10]]);
  } finally {
    jest.useRealTimers();
  }
});

test('bytes held are reported as they queue and drain: a slow sink makes the connection stop reading', async () => {
  const { conn, sink, s } = open();
  let release!: () => void;
  sink.gate = new Promise<void>((r) => (release = r));
  for (let i = 0; i < 8; i++) s.receive(MessageType.STREAM, MessageStatus.CONTINUE, Buffer.alloc(262_120));
  expect(conn.held).toBe(8 * 262_120); // the session compares this with its marks and stops reading
  release();
  await settle();
  expect(conn.held).toBe(0);
  expect(sink.bytes).toBe(8 * 262_120);
});

// The session: an upload whose sink is slow makes it stop reading at the stream's mark (or the connection's, across
// its uploads), and read again once the bytes are written; packets go only to the stream their serial opened.
describe('Session pacing of uploads', () => {
  const frame = (serial: number, type: number, status: number, data: Buffer = Buffer.alloc(0), proc = 208): Buffer => {
    const head = encodeMessage({ prog: Program.REMOTE, vers: 1, proc, type, serial, status });
    head.writeUInt32BE(head.length + data.length, 0);
    return Buffer.concat([head, data]);
  };
  const args = { vol: { pool: 'p', name: 'v', key: '/p/v' }, offset: 0n, length: 0n, flags: 0 };

  function setup(opts: { streamInHighWater?: number; streamInConnectionMax?: number }) {
    const busy: boolean[] = [];
    const sinks: FakeSink[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const s: Session = new Session({
      id: 1,
      readOnly: false,
      secure: true,
      identity: { user: 'alice', method: 'peercred', uid: 1000, source: 'unix:pid=1,uid=1000' },
      maxMessageBytes: 1 << 20,
      maxClientRequests: 8,
      streamStallMs: 0,
      ...opts,
      onWrite: () => undefined,
      onClose: () => undefined,
      onBusy: (b) => busy.push(b),
      dispatch: async (sess, call) => {
        const sink = new FakeSink();
        sink.gate = gate;
        sinks.push(sink);
        sess.openStream(new InboundStream(sess, call.header, sink, { maxBytes: 1n << 40n, sparse: false, stallMs: 0 }));
        return encodeReply(PS.STORAGE_VOL_UPLOAD, call.header.serial, undefined);
      },
    });
    s.opened = true;
    return { s, busy, sinks, release: () => release() };
  }

  test('one upload over its mark stops reading; written, reading resumes', async () => {
    const { s, busy, sinks, release } = setup({ streamInHighWater: 600_000 });
    s.push(encodeCall(PS.STORAGE_VOL_UPLOAD, 5, args));
    await settle();
    s.push(frame(5, MessageType.STREAM, MessageStatus.CONTINUE, Buffer.alloc(262_120)));
    s.push(frame(5, MessageType.STREAM, MessageStatus.CONTINUE, Buffer.alloc(262_120)));
    expect(busy).toEqual([]);
    s.push(frame(5, MessageType.STREAM, MessageStatus.CONTINUE, Buffer.alloc(262_120)));
    expect(busy).toEqual([true]);
    expect(s.inboundBytes).toBe(3 * 262_120);
    s.push(frame(77, MessageType.STREAM, MessageStatus.CONTINUE, Buffer.alloc(1000))); // another serial: dropped
    expect(s.inboundBytes).toBe(3 * 262_120);
    release();
    await settle();
    expect(busy).toEqual([true, false]);
    expect(s.inboundBytes).toBe(0);
    expect(sinks[0].bytes).toBe(3 * 262_120);
  });

  test("several uploads together stop reading at the connection's mark, each under its own", async () => {
    const { s, busy, release } = setup({ streamInHighWater: 1 << 20, streamInConnectionMax: 1_000_000 });
    for (const serial of [5, 6, 7, 8]) s.push(encodeCall(PS.STORAGE_VOL_UPLOAD, serial, args));
    await settle();
    for (const serial of [5, 6, 7]) s.push(frame(serial, MessageType.STREAM, MessageStatus.CONTINUE, Buffer.alloc(262_120)));
    expect(busy).toEqual([]);
    s.push(frame(8, MessageType.STREAM, MessageStatus.CONTINUE, Buffer.alloc(262_120)));
    expect(busy).toEqual([true]);
    release();
    await settle();
    expect(busy).toEqual([true, false]);
    s.close('test over');
  });
});
