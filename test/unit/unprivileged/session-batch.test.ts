// SPDX-License-Identifier: Apache-2.0
// One write per read: the replies to the calls of one read leave in one write, in order; nothing is lost to the
// batching (a close), and replies answered later (from the helper) are written as they come, in order.
import { MessageStatus, MessageType, Program } from '../../../src/protocol/constants';
import { encodeMessage } from '../../../src/protocol/header';
import { P } from '../../../src/protocol/procs/remote';
import { type Call, Session, type SessionOptions } from '../../../src/unprivileged/session';

const call = (serial: number): Buffer =>
  encodeMessage({ prog: Program.REMOTE, vers: 1, proc: P.DOMAIN_GET_INFO.proc, type: MessageType.CALL, serial, status: MessageStatus.OK });
const reply = (serial: number): Buffer =>
  encodeMessage({ prog: Program.REMOTE, vers: 1, proc: P.DOMAIN_GET_INFO.proc, type: MessageType.REPLY, serial, status: MessageStatus.OK }, (w) =>
    w.u32(serial),
  );

// The serials in what was written, in order (each write may hold several frames).
function serials(writes: Buffer[]): number[][] {
  return writes.map((w) => {
    const out: number[] = [];
    for (let at = 0; at < w.length; at += w.readUInt32BE(at)) out.push(w.readUInt32BE(at + 20));
    return out;
  });
}

function session(o: Partial<SessionOptions> = {}): { s: Session; writes: Buffer[]; log: string[] } {
  const writes: Buffer[] = [];
  const log: string[] = [];
  const s = new Session({
    id: 1,
    transport: 'unix',
    readOnly: false,
    secure: true,
    identity: { user: 'alice', method: 'peercred', uid: 1000, source: 'unix:pid=1,uid=1000' },
    maxMessageBytes: 1 << 20,
    maxClientRequests: 64,
    onWrite: (b) => {
      writes.push(b);
      log.push('write');
    },
    onClose: (r) => log.push(`close: ${r}`),
    onBusy: () => undefined,
    dispatch: (_s, c: Call) => Promise.resolve(reply(c.header.serial)),
    ...o,
  });
  return { s, writes, log };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('the replies to the calls of one read leave in one write, in call order', () => {
  const { s, writes } = session({ dispatchNow: (_s, c) => reply(c.header.serial) });
  s.push(Buffer.concat([call(1), call(2), call(3)]));
  expect(serials(writes)).toEqual([[1, 2, 3]]);
  s.push(call(4));
  expect(serials(writes)).toEqual([[1, 2, 3], [4]]);
});

test('a message larger than a batch goes on its own, after what was held before it', () => {
  const big = Buffer.alloc(20 * 1024);
  big.writeUInt32BE(big.length, 0);
  big.writeUInt32BE(9, 20);
  const { s, writes } = session({ dispatchNow: (_s, c) => (c.header.serial === 2 ? big : reply(c.header.serial)) });
  s.push(Buffer.concat([call(1), call(2), call(3)]));
  expect(serials(writes)).toEqual([[1], [9], [3]]);
});

test('a frame that closes the connection does not cost the replies to the calls before it in the same read', () => {
  const { s, writes, log } = session({ dispatchNow: (_s, c) => reply(c.header.serial) });
  const bad = call(2);
  bad.writeInt32BE(99, 16); // unknown message type: the connection is closed
  s.push(Buffer.concat([call(1), bad, call(3)]));
  expect(serials(writes)).toEqual([[1]]);
  expect(log).toEqual(['write', expect.stringMatching(/^close: header: .*unknown message type 99/)]);
});

test('replies answered later (the helper, descriptors) go out as they come, in order', async () => {
  const order: string[] = [];
  const { s } = session({
    onWrite: (b) => order.push(`write ${serials([b])[0].join(',')}`),
    onWriteFds: (b, fds) => order.push(`fds ${serials([b])[0].join(',')} [${fds.join(',')}]`),
    closeFd: () => undefined,
    dispatch: (sess, c: Call) => {
      if (c.header.serial === 2) sess.replyWithFds(2, [77]);
      return Promise.resolve(reply(c.header.serial));
    },
  });
  s.push(Buffer.concat([call(1), call(2), call(3)]));
  await tick();
  expect(order).toEqual(['write 1', 'fds 2 [77]', 'write 3']);
});
