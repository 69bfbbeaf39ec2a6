// SPDX-License-Identifier: Apache-2.0
// libvirt streams through a real daemon, as a hostile or confused client drives them (raw wire): the screenshot's
// stream (reply, data, empty CONTINUE = EOF, finish, OK confirm), an abort, data pushed into a download, packets for a
// stream that does not exist, and a client that opens streams and never reads.
import { XdrWriter } from '../../src/common/xdr';
import { MessageStatus, MessageType } from '../../src/protocol/constants';
import { encodeMessage } from '../../src/protocol/header';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { type RawClient, openRaw } from '../helpers/raw';
import fs from 'node:fs';

const SCREENSHOT = 211;
const TEST_UUID = Buffer.from('6695eb01f6a4830479aa97f2502e193f', 'hex');
const testDom = (w: XdrWriter) => w.string('test', 4096).opaqueFixed(TEST_UUID, 16).i32(1);
const shot = (c: RawClient, serial: number) => c.call(SCREENSHOT, serial, (w) => (testDom(w), w.u32(0).u32(0)));
const packet = (serial: number, status: number, data = Buffer.alloc(0)) => {
  const head = encodeMessage({ prog: 0x20008086, vers: 1, proc: SCREENSHOT, type: MessageType.STREAM, serial, status });
  head.writeUInt32BE(head.length + data.length, 0);
  return Buffer.concat([head, data]);
};
const of = (c: RawClient, serial: number) => c.replies.filter((r) => r.header.serial === serial);
async function until(c: RawClient, done: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done() && !c.closed && Date.now() < deadline) await c.waitReplies(c.replies.length + 1, 100);
}

let vg: RunningDaemon;
beforeAll(async () => {
  vg = await startDaemon({});
});
afterAll(async () => vg?.stop());

test('screenshot: reply, the PNG in CONTINUE packets, an empty CONTINUE (EOF); our finish is confirmed with OK', async () => {
  const c = await openRaw(vg.sock);
  shot(c, 5);
  await c.waitReplies(2 + 3);
  const mine = of(c, 5);
  expect(mine[0].header).toMatchObject({ type: MessageType.REPLY, status: MessageStatus.OK });
  const data = mine.slice(1).filter((r) => r.header.type === MessageType.STREAM);
  expect(data.every((r) => r.header.status === MessageStatus.CONTINUE && r.header.proc === SCREENSHOT)).toBe(true);
  expect(data[data.length - 1].body.length).toBe(0); // EOF
  const png = Buffer.concat(data.map((r) => r.body));
  expect(png.equals(fs.readFileSync('/usr/share/libvirt/test-screenshot.png'))).toBe(true);
  const before = c.replies.length;
  c.write(packet(5, MessageStatus.OK)); // finish
  await c.waitReplies(before + 1);
  expect(c.replies[before].header).toMatchObject({ type: MessageType.STREAM, status: MessageStatus.OK, serial: 5 });
  c.end();
});

test('data pushed into a download ends that stream with an error; the connection and other calls go on', async () => {
  const c = await openRaw(vg.sock);
  shot(c, 7);
  await c.waitReplies(2 + 1);
  c.write(packet(7, MessageStatus.CONTINUE, Buffer.from('not yours to write')));
  c.call(3, 8); // CONNECT_GET_TYPE after it
  await until(c, () => of(c, 8).length > 0);
  const err = of(c, 7).find((r) => r.header.type === MessageType.STREAM && r.header.status === MessageStatus.ERROR);
  // It may have finished before our packet arrived (EOF already sent): then the packet is for a closed stream, ignored.
  if (err) expect(err.error?.message).toBe('stream error: this stream does not accept data from the client');
  expect(of(c, 8)[0].header.status).toBe(MessageStatus.OK);
  expect(c.closed).toBe(false);
  c.end();
});

test('an abort is confirmed; packets for streams that do not exist are dropped, as libvirtd drops them', async () => {
  const c = await openRaw(vg.sock);
  shot(c, 9);
  await c.waitReplies(2 + 1);
  const before = c.replies.length;
  c.write(packet(9, MessageStatus.ERROR));
  c.write(packet(999, MessageStatus.CONTINUE, Buffer.alloc(1000, 1))); // never opened
  c.write(packet(9, MessageStatus.OK)); // after the abort: the stream is gone, dropped
  c.call(3, 10);
  await until(c, () => of(c, 10).length > 0);
  const after = c.replies.slice(before);
  expect(after.some((r) => r.header.serial === 9 && r.header.type === MessageType.STREAM && r.header.status === MessageStatus.OK)).toBe(true);
  expect(after.filter((r) => r.header.serial === 999)).toEqual([]);
  expect(of(c, 10)[0].header.status).toBe(MessageStatus.OK);
  expect(c.closed).toBe(false);
  c.end();
});

test('at most 16 streams open on one connection: the 17th call is refused with a clear error, nothing leaks', async () => {
  const c = await openRaw(vg.sock);
  c.sock.pause(); // never read: the streams stay open (EOF written, no finish)
  for (let s = 100; s < 117; s++) shot(c, s);
  c.sock.resume();
  const replies = () => c.replies.filter((r) => r.header.type === MessageType.REPLY && r.header.serial >= 100);
  await until(c, () => replies().length === 17);
  expect(replies()).toHaveLength(17);
  const refused = c.replies.filter((r) => r.header.type === MessageType.REPLY && r.error);
  expect(refused).toHaveLength(1);
  expect(refused[0].error?.message).toBe('stream error: at most 16 streams per connection');
  c.end();
});
