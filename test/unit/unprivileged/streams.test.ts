// SPDX-License-Identifier: Apache-2.0
// OutboundStream pacing and endings with a fake connection: a client that does not read holds at most the high-water
// mark plus one packet of the front end's memory per stream, however large the source; reading resumes the flow.
import { Limits, MessageStatus, MessageType } from '../../../src/protocol/constants';
import { decodeHeader } from '../../../src/protocol/header';
import { type ByteSource, OutboundStream, type StreamConnection, type StreamEnd, bufferSource } from '../../../src/unprivileged/streams';

class FakeConn implements StreamConnection {
  closed = false;
  queued = 0;
  readonly streamHighWater = 1024 * 1024;
  readonly frames: Buffer[] = [];
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
  drain(): void {
    this.queued = 0;
    for (const cb of this.#relief.splice(0)) cb();
  }
  headers() {
    return this.frames.map((f) => decodeHeader(f).header);
  }
}

const settle = () => new Promise((r) => setTimeout(r, 20));

test('a client that never reads: at most the high-water mark plus one packet is queued, from a 64 MiB source', async () => {
  const conn = new FakeConn();
  let reads = 0;
  const source: ByteSource = { read: async (max) => (reads++, Buffer.alloc(max, 7)) }; // endless
  const s = new OutboundStream(conn, { proc: 211, serial: 3 }, source);
  s.start();
  await settle();
  expect(conn.queued).toBeLessThanOrEqual(conn.streamHighWater + Limits.STREAM_PAYLOAD_MAX + 28);
  const frozen = reads;
  await settle();
  expect(reads).toBe(frozen); // nothing read from the source while the client does not read
  conn.drain();
  await settle();
  expect(reads).toBeGreaterThan(frozen); // reading resumes the flow
  s.dispose();
});

test('EOF is an empty CONTINUE; a finish gets an OK confirmation; the end is reported once, with the byte count', async () => {
  const conn = new FakeConn();
  const ends: [StreamEnd, number][] = [];
  const data = Buffer.alloc(Limits.STREAM_PAYLOAD_MAX + 10, 1);
  const s = new OutboundStream(conn, { proc: 211, serial: 4 }, bufferSource(data), (e, n) => ends.push([e, n]));
  s.start();
  await settle();
  const h = conn.headers();
  expect(h.map((x) => [x.type, x.status])).toEqual([
    [MessageType.STREAM, MessageStatus.CONTINUE],
    [MessageType.STREAM, MessageStatus.CONTINUE],
    [MessageType.STREAM, MessageStatus.CONTINUE],
  ]);
  expect(conn.frames[2].length).toBe(28); // EOF: no data
  expect(s.eofSent).toBe(true);
  s.receive(MessageType.STREAM, MessageStatus.OK);
  expect(conn.headers()[3]).toMatchObject({ type: MessageType.STREAM, status: MessageStatus.OK, serial: 4, proc: 211 });
  s.receive(MessageType.STREAM, MessageStatus.OK); // a second finish: the stream is done, nothing more is sent
  expect(conn.frames).toHaveLength(4);
  expect(ends).toEqual([['finished', data.length]]);
});

test('a source that fails ends the stream with an ERROR packet and closes the source once', async () => {
  const conn = new FakeConn();
  let closes = 0;
  const source: ByteSource = {
    read: async () => {
      throw new Error('disk gone');
    },
    close: () => void closes++,
  };
  const ends: StreamEnd[] = [];
  new OutboundStream(conn, { proc: 211, serial: 5 }, source, (e) => ends.push(e)).start();
  await settle();
  expect(conn.headers()).toEqual([expect.objectContaining({ type: MessageType.STREAM, status: MessageStatus.ERROR })]);
  expect(ends).toEqual(['failed']);
  expect(closes).toBe(1);
});

test('a hole or data from the client ends a download with an error; the connection closing ends it quietly', async () => {
  const conn = new FakeConn();
  const s = new OutboundStream(conn, { proc: 211, serial: 6 }, { read: () => new Promise(() => undefined) }); // never yields
  s.start();
  s.receive(MessageType.STREAM_HOLE, MessageStatus.CONTINUE);
  expect(conn.headers()).toEqual([expect.objectContaining({ status: MessageStatus.ERROR })]);
  const quiet = new FakeConn();
  const ends: StreamEnd[] = [];
  const t = new OutboundStream(quiet, { proc: 211, serial: 7 }, { read: () => new Promise(() => undefined) }, (e) => ends.push(e));
  t.start();
  t.dispose();
  expect(quiet.frames).toEqual([]);
  expect(ends).toEqual(['closed']);
});
