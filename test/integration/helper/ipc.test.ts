// SPDX-License-Identifier: Apache-2.0
// The built helper's IPC boundary: state machine, every malformed input closes the connection, the process survives.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readJournal } from '../../../src/audit/journal';
import { XdrWriter } from '../../../src/common/xdr';
import { IPC_VERSION, IpcLimits, LookupKind, Op, encodeRequest } from '../../../src/ipc/program';
import { ACTOR, RawClient } from './ipc-client';
import { type Helper, startHelper, stopHelper, tempDir } from './spawn';
import { dx } from '../../helpers/domain-def';

let h: Helper;

beforeAll(async () => {
  h = await startHelper(tempDir());
});
afterAll(async () => {
  await stopHelper(h);
  fs.rmSync(h.dir, { recursive: true, force: true });
});

async function ready(): Promise<RawClient> {
  const c = await RawClient.connect(h.socket);
  const a = await c.hello();
  expect(a).toMatchObject({ op: Op.HELLO_ANS, ok: true, body: { version: IPC_VERSION, driver: 'test' } });
  return c;
}

// Builds a frame with an arbitrary op and raw payload (length word patched).
function frame(op: number, id: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(12 + payload.length);
  b.writeUInt32BE(b.length, 0);
  b.writeUInt32BE(op, 4);
  b.writeUInt32BE(id, 8);
  payload.copy(b, 12);
  return b;
}

async function expectClosed(c: RawClient, answersBefore = c.answers.length): Promise<void> {
  expect(await c.closesWithin()).toBe(true);
  expect(c.answers.length).toBe(answersBefore); // closed, never answered with an error
}

async function expectHelperHealthy(): Promise<void> {
  const c = await ready();
  const a = await c.call(Op.DOMAIN_READ_REQ, { action: 'list' });
  expect(a.ok).toBe(true);
  c.end();
}

test('the ready line was printed and the socket is 0600', () => {
  expect((fs.statSync(h.socket).mode & 0o777).toString(8)).toBe('600');
});

test('HELLO answers version and driver; then requests work', async () => {
  const c = await ready();
  const a = await c.call(Op.DOMAIN_READ_REQ, { action: 'lookup', key: { kind: LookupKind.NAME, name: 'test' } });
  expect(a).toMatchObject({ op: Op.DOMAIN_READ_ANS, ok: true, body: { name: 'test', id: 1 } });
  c.end();
});

test('any request before HELLO closes the connection', async () => {
  const c = await RawClient.connect(h.socket);
  c.request(Op.DOMAIN_READ_REQ, { action: 'list' });
  await expectClosed(c, 0);
});

test('HELLO with the wrong version closes the connection', async () => {
  const c = await RawClient.connect(h.socket);
  c.request(Op.HELLO_REQ, { version: IPC_VERSION + 1 });
  await expectClosed(c, 0);
});

test('a second HELLO closes the connection', async () => {
  const c = await ready();
  c.request(Op.HELLO_REQ, { version: IPC_VERSION });
  await expectClosed(c);
});

test('a second EVENTS_SUBSCRIBE closes the connection', async () => {
  const c = await ready();
  expect(await c.call(Op.EVENTS_SUBSCRIBE_REQ, {})).toMatchObject({ ok: true, body: { event: null } });
  // Wait for the end of the initial sync (the snapshots come first, then the answer with synced = true).
  for (let i = 0; ; i++) if ((await c.answer(i)).ok && (c.answers[i] as { body: { synced?: boolean } }).body.synced) break;
  c.request(Op.EVENTS_SUBSCRIBE_REQ, {});
  await expectClosed(c);
});

test.each([
  ['op 28 (one past the table)', 28],
  ['an answer op (HELLO_ANS)', Op.HELLO_ANS],
  ['op 0xffffffff', 0xffffffff],
])('unknown op closes: %s', async (_what, op) => {
  const c = await ready();
  c.send(frame(op, 9));
  await expectClosed(c);
});

test('unknown op before HELLO closes too', async () => {
  const c = await RawClient.connect(h.socket);
  c.send(frame(99, 1));
  await expectClosed(c, 0);
});

// Grouped ops: a read's payload is its action code then fields; a write's is the actor, the action code, the fields.
const rd = (code: number, fields: Buffer): Buffer => Buffer.concat([new XdrWriter(4).u32(code).finish(), fields]);
const actor = (user: string): Buffer => new XdrWriter(64).string(user, 256).string('t', 256).string('r', 64).string('', 80).finish();
const wr = (who: Buffer, code: number, fields: Buffer): Buffer => Buffer.concat([who, rd(code, fields)]);

const payloads: [string, number, Buffer][] = [
  ['HELLO with a trailing byte word', Op.HELLO_REQ, new XdrWriter(8).u32(IPC_VERSION).u32(0).finish()],
  ['HELLO truncated payload', Op.HELLO_REQ, Buffer.alloc(2)],
  ['DOMAIN_READ with an unknown action', Op.DOMAIN_READ_REQ, rd(99, Buffer.alloc(0))],
  ['DOMAIN_READ with no action at all', Op.DOMAIN_READ_REQ, Buffer.alloc(0)],
  ['LIST with a payload it does not take', Op.DOMAIN_READ_REQ, rd(0, Buffer.alloc(4))],
  ['LOOKUP with an unknown kind', Op.DOMAIN_READ_REQ, rd(1, new XdrWriter(8).u32(7).u32(0).finish())],
  ['LOOKUP by a name with a slash', Op.DOMAIN_READ_REQ, rd(1, new XdrWriter(16).u32(0).string('a/b', 64).finish())],
  ['LOOKUP by a negative id', Op.DOMAIN_READ_REQ, rd(1, new XdrWriter(8).u32(2).i32(-1).finish())],
  ['INFO with a 15-byte uuid', Op.DOMAIN_READ_REQ, rd(2, Buffer.alloc(15))],
  ['XML with a boolean of 2', Op.DOMAIN_READ_REQ, rd(3, Buffer.concat([Buffer.alloc(16), new XdrWriter(4).u32(2).finish()]))],
  ['DEFINE with a newline in the actor', Op.DOMAIN_WRITE_REQ, wr(actor('al\nice'), 0, new XdrWriter(64).string('<domain/>', 99999).finish())],
  ['DEFINE with a NUL in the XML', Op.DOMAIN_WRITE_REQ, wr(actor('a'), 0, new XdrWriter(64).string('<domain>\0', 99999).finish())],
  ['DEFINE with non-zero padding', Op.DOMAIN_WRITE_REQ, Buffer.from('00000001610000ff', 'hex')],
  ['DOMAIN_WRITE with an unknown action', Op.DOMAIN_WRITE_REQ, wr(actor('a'), 77, Buffer.alloc(16))],
  ['DOMAIN_WRITE with a read action code but no actor', Op.DOMAIN_WRITE_REQ, rd(3, Buffer.alloc(16))],
  ['CONTROL with control 9', Op.DOMAIN_WRITE_REQ, wr(actor('a'), 3, Buffer.concat([Buffer.alloc(16), new XdrWriter(4).i32(9).finish()]))],
  ['SET_VCPUS with 0 vcpus', Op.DOMAIN_WRITE_REQ, wr(actor('a'), 5, Buffer.concat([Buffer.alloc(16), Buffer.alloc(16)]))],
  ['SET_MEMORY with 0 KiB', Op.DOMAIN_WRITE_REQ, wr(actor('a'), 4, Buffer.concat([Buffer.alloc(16), Buffer.alloc(8), Buffer.alloc(12)]))],
  ['a string length larger than the frame', Op.DOMAIN_WRITE_REQ, new XdrWriter(8).u32(0xfffffff0).finish()],
];

test.each(payloads)('malformed payload closes: %s', async (_what, op, payload) => {
  const c = op === Op.HELLO_REQ ? await RawClient.connect(h.socket) : await ready();
  c.send(frame(op, 5, payload));
  await expectClosed(c);
});

test.each([
  ['length word larger than REQUEST_MAX', IpcLimits.REQUEST_MAX + 1],
  ['length word 0xffffffff', 0xffffffff],
  ['length word below FRAME_MIN', 11],
  ['length word 0', 0],
])('frame length error closes: %s', async (_what, len) => {
  const c = await ready();
  const b = Buffer.alloc(12);
  b.writeUInt32BE(len, 0);
  c.send(b);
  await expectClosed(c);
});

test('random garbage closes the connection', async () => {
  for (let i = 0; i < 5; i++) {
    const c = await RawClient.connect(h.socket);
    const junk = Buffer.from(Array.from({ length: 64 }, () => Math.floor(Math.random() * 256)));
    junk.writeUInt32BE(12 + (junk.readUInt32BE(0) % 52), 0); // a plausible length so the op check is what fails
    junk.writeUInt32BE(1000 + i, 4);
    c.send(junk);
    await expectClosed(c, 0);
  }
  const text = await RawClient.connect(h.socket);
  text.send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  await expectClosed(text, 0);
  await expectHelperHealthy();
});

test('a truncated frame that then stalls hurts nobody else', async () => {
  const stalled = await ready();
  const full = encodeRequest(Op.DOMAIN_READ_REQ, 77, { action: 'list' });
  const big = Buffer.alloc(1000);
  big.writeUInt32BE(IpcLimits.REQUEST_MAX, 0); // announces REQUEST_MAX, sends 1000 bytes
  stalled.send(full.subarray(0, 6));
  const other = await RawClient.connect(h.socket);
  const stalled2 = await ready();
  stalled2.send(big);
  await other.hello();
  expect((await other.call(Op.NODE_FACTS_REQ, {})).ok).toBe(true);
  expect(stalled.isClosed || stalled2.isClosed).toBe(false);
  // The stalled one finishes its frame later and is served.
  stalled.send(full.subarray(6));
  expect(await stalled.answer(1)).toMatchObject({ op: Op.DOMAIN_READ_ANS, id: 77, ok: true });
  for (const c of [stalled, stalled2, other]) c.end();
});

test('requests split byte by byte and coalesced in one write are all answered in order', async () => {
  const c = await ready();
  const a = encodeRequest(Op.DOMAIN_READ_REQ, 10, { action: 'list' });
  const b = encodeRequest(Op.NODE_FACTS_REQ, 11, {});
  for (const byte of a) c.send(Buffer.from([byte]));
  c.send(Buffer.concat([b, encodeRequest(Op.DOMAIN_READ_REQ, 12, { action: 'list' })]));
  expect((await c.answer(1)).id).toBe(10);
  expect((await c.answer(2)).id).toBe(11);
  expect((await c.answer(3)).id).toBe(12);
  c.end();
});

test('driver failures are error answers and the connection stays usable', async () => {
  const c = await ready();
  const miss = await c.call(Op.DOMAIN_READ_REQ, { action: 'lookup', key: { kind: LookupKind.NAME, name: 'nope' } });
  expect(miss).toMatchObject({ op: Op.DOMAIN_READ_ANS, ok: false, code: 'VG_ERR_NO_DOMAIN', detail: '' });
  // XML errors are the front end's now (it parses); the helper's own refusals of a typed definition are answers too.
  const clash = await c.call(Op.DOMAIN_WRITE_REQ, {
    action: 'define',
    actor: { ...ACTOR, tenant: '' },
    def: dx("<domain type='test'><name>test</name><uuid>0d46d412-f292-416c-8b9a-ea26480a5399</uuid><memory>1</memory><os><type>hvm</type></os></domain>"),
  });
  expect(clash).toMatchObject({
    ok: false,
    code: 'VG_ERR_DOMAIN_EXISTS',
    detail: "domain 'test' already exists with uuid 6695eb01-f6a4-8304-79aa-97f2502e193f",
  });
  expect((await c.call(Op.DOMAIN_READ_REQ, { action: 'list' })).ok).toBe(true);
  c.end();
});

test('writes are journalled (STATE/helper-journal.log, hash-chained) with the actor, before the answer', async () => {
  const c = await ready();
  await c.call(Op.DOMAIN_WRITE_REQ, {
    action: 'define',
    actor: ACTOR,
    def: dx("<domain type='test'><name>journal1</name><memory>1</memory><os><type>hvm</type></os></domain>"),
  });
  c.end();
  const { records, problem } = readJournal(path.join(h.dir, 'state', 'helper-journal.log'));
  expect(problem).toBeNull();
  const end = records.find((r) => r.name === 'journal1');
  expect(end).toMatchObject({
    phase: 'end',
    op: 'DOMAIN_WRITE_REQ.define',
    requestId: expect.stringMatching(/^r-\d+-\d+$/),
    result: 'ok',
    uuid: expect.stringMatching(/^[0-9a-f]{32}$/),
  });
  // Its begin line came first, with what was known before the run: the claimed identity and the request's digest.
  expect(records.find((r) => r.seq === end!.of)).toMatchObject({
    phase: 'begin',
    op: 'DOMAIN_WRITE_REQ.define',
    user: 'alice',
    tenant: 'acme',
    requestId: end!.requestId,
    digest: expect.stringMatching(/^[0-9a-f]{64}$/),
  });
});

test('a request id already executed is refused, not run again, even on a new connection (replay), and the journal anchors the audit head', async () => {
  const c = await ready();
  const actor = { user: 'alice', tenant: 'acme', requestId: 'replay-me', auditHead: `7:${'a'.repeat(64)}` };
  const xml = (n: string) => `<domain type='test'><name>${n}</name><memory>1</memory><os><type>hvm</type></os></domain>`;
  expect(await c.call(Op.DOMAIN_WRITE_REQ, { action: 'define', actor, def: dx(xml('replay1')) })).toMatchObject({ ok: true });
  c.end();
  const c2 = await ready();
  expect(await c2.call(Op.DOMAIN_WRITE_REQ, { action: 'define', actor, def: dx(xml('replay2')) })).toMatchObject({ ok: false, code: 'VG_ERR_IPC_REPLAY' });
  expect(await c2.call(Op.DOMAIN_READ_REQ, { action: 'lookup', key: { kind: LookupKind.NAME, name: 'replay2' } })).toMatchObject({
    ok: false,
    code: 'VG_ERR_NO_DOMAIN',
  });
  // A malformed audit head is refused like any other malformed field: the connection closes.
  c2.request(Op.DOMAIN_WRITE_REQ, { action: 'define', actor: { ...actor, requestId: 'other', auditHead: 'junk' }, def: dx(xml('replay3')) });
  expect(await c2.closesWithin()).toBe(true);
  const { records } = readJournal(path.join(h.dir, 'state', 'helper-journal.log'));
  expect(records.filter((r) => r.requestId === 'replay-me')).toEqual([
    expect.objectContaining({ phase: 'begin', auditHead: actor.auditHead }),
    expect.objectContaining({ phase: 'end', name: 'replay1', result: 'ok' }),
  ]);
  expect(h.stderr()).toMatch(/REFUSED DOMAIN_WRITE_REQ.define: request id "replay-me" was already executed \(replay\)/);
});

// Self-contained: it provokes each closing reason itself and reads only the stderr written since it began.
test('every closing reason is logged on one stderr line', async () => {
  const from = h.stderr().length;
  const early = await RawClient.connect(h.socket);
  early.request(Op.DOMAIN_READ_REQ, { action: 'list' });
  await expectClosed(early, 0);
  const twice = await ready();
  twice.request(Op.HELLO_REQ, { version: IPC_VERSION });
  await expectClosed(twice);
  const unknown = await ready();
  unknown.send(frame(98, 9));
  await expectClosed(unknown);
  const long = await ready();
  const b = Buffer.alloc(12);
  b.writeUInt32BE(IpcLimits.REQUEST_MAX + 1, 0);
  long.send(b);
  await expectClosed(long);
  const bad = await ready();
  bad.send(frame(Op.DOMAIN_READ_REQ, 5, rd(1, new XdrWriter(8).u32(7).u32(0).finish())));
  await expectClosed(bad);
  const lines = h
    .stderr()
    .slice(from)
    .split('\n')
    .filter((l) => l.includes('closing:'));
  expect(lines).toHaveLength(5);
  expect(lines.some((l) => /DOMAIN_READ_REQ not permitted before HELLO/.test(l))).toBe(true);
  expect(lines.some((l) => /HELLO_REQ not permitted again/.test(l))).toBe(true);
  expect(lines.some((l) => /unknown op 98/.test(l))).toBe(true);
  expect(lines.some((l) => l.includes(`bad frame: frame length ${IpcLimits.REQUEST_MAX + 1}`))).toBe(true);
  expect(lines.some((l) => /malformed DOMAIN_READ_REQ: .*unknown kind 7/.test(l))).toBe(true);
});

test('at most 8 concurrent connections; the ninth is closed at once', async () => {
  const cs = await Promise.all(Array.from({ length: 8 }, () => ready()));
  const ninth = await RawClient.connect(h.socket);
  ninth.request(Op.HELLO_REQ, { version: IPC_VERSION });
  await expectClosed(ninth, 0);
  cs[0].end();
  await cs[0].closed;
  await new Promise((r) => setTimeout(r, 100));
  const again = await ready();
  for (const c of [...cs, again]) c.end();
});
