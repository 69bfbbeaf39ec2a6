// SPDX-License-Identifier: Apache-2.0
// The built helper end to end: events to subscribers, state surviving kill -9, CLI, signals, stale sockets, peer uid.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ControlAction, LookupKind, Op, uuidFromString } from '../../../src/ipc/program';
import type { AnswerFrame, DomainSummary, StreamItem } from '../../../src/ipc/program';
import { ACTOR, RawClient } from './ipc-client';
import { HELPER_BIN, startHelper, stopHelper, tempDir } from './spawn';
import { root, testIf } from '../../helpers/skip';
import { dx, xmlOf } from '../../helpers/domain-def';
import type { DomainDef } from '../../../src/ipc/objects/domain-def';

const TEST_UUID = uuidFromString('6695eb01-f6a4-8304-79aa-97f2502e193f')!;
const FOO =
  "<domain type='test'><name>foo</name><uuid>0d46d412-f292-416c-8b9a-ea26480a531f</uuid><memory unit='MiB'>512</memory><os><type>hvm</type></os></domain>";
const FOO_UUID = uuidFromString('0d46d412-f292-416c-8b9a-ea26480a531f')!;

const dirs: string[] = [];
const dir = () => {
  const d = tempDir();
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const body = <T>(a: AnswerFrame): T => {
  if (!a.ok) throw new Error(`${a.code}: ${a.detail}`);
  return a.body as T;
};

async function ready(socket: string): Promise<RawClient> {
  const c = await RawClient.connect(socket);
  await c.hello();
  return c;
}

test('a subscriber gets every domain, the sync mark, then a snapshot per change and a frame per lifecycle event', async () => {
  const h = await startHelper(dir());
  const sub = await ready(h.socket);
  const subId = sub.request(Op.EVENTS_SUBSCRIBE_REQ, {});
  // Initial sync: one snapshot per domain (just `test`), the other objects' states, then the answer that closes it.
  const first = await sub.answer(1);
  expect(first).toMatchObject({ op: Op.EVENTS_SUBSCRIBE_ANS, id: subId, ok: true, body: { event: null, synced: false } });
  expect(body<StreamItem>(first).snapshot?.info).toMatchObject({ name: 'test', id: 1, memoryKiB: 2097152n });
  let synced = 2;
  while (!body<StreamItem>(await sub.answer(synced)).synced) {
    expect(body<StreamItem>(sub.answers[synced]).objectState?.set).toBeDefined();
    synced++;
  }
  expect(synced).toBeGreaterThan(4); // the seed's network, pool, interfaces and node devices came before the mark
  expect(sub.answers[synced]).toMatchObject({ op: Op.EVENTS_SUBSCRIBE_ANS, id: subId, ok: true, body: { event: null, synced: true } });
  const w = await ready(h.socket);
  const ctl = (action: (typeof ControlAction)[keyof typeof ControlAction]) =>
    w.call(Op.DOMAIN_WRITE_REQ, { action: 'control', actor: ACTOR, uuid: TEST_UUID, control: action });
  body(await w.call(Op.DOMAIN_WRITE_REQ, { action: 'define', actor: ACTOR, def: dx(FOO) }));
  body(await ctl(ControlAction.SUSPEND));
  body(await ctl(ControlAction.RESUME));
  body(await ctl(ControlAction.REBOOT));
  body(await ctl(ControlAction.SHUTDOWN));
  expect(body<DomainSummary>(await ctl(ControlAction.START)).id).toBe(2);
  body(await ctl(ControlAction.DESTROY));
  body(await w.call(Op.DOMAIN_WRITE_REQ, { action: 'undefine', actor: ACTOR, uuid: FOO_UUID, removeManagedSave: false, removeSnapshots: false }));
  // 7 lifecycle events and 8 changes (reboot changes state without an event).
  await sub.answer(synced + 15);
  const items = sub.answers.slice(synced + 1).map((a) => {
    expect(a).toMatchObject({ op: Op.EVENTS_SUBSCRIBE_ANS, id: subId, ok: true });
    return body<StreamItem>(a);
  });
  const events = items.filter((i) => i.event).map(({ event: e }) => [e!.domain.name, e!.event, e!.detail, e!.domain.id]);
  expect(events).toEqual([
    ['foo', 0, 0, -1],
    ['test', 3, 0, 1],
    ['test', 4, 0, 1],
    ['test', 5, 0, -1],
    ['test', 2, 0, 2],
    ['test', 5, 1, -1],
    ['foo', 1, 0, -1],
  ]);
  // Each event is preceded by the snapshot of the state it announces; the undefine removes foo.
  const suspended = items.findIndex((i) => i.event?.event === 3);
  expect(items[suspended - 1].snapshot?.info).toMatchObject({ name: 'test', state: 3 });
  expect(items.some((i) => i.removed?.equals(FOO_UUID))).toBe(true);
  sub.end();
  w.end();
  expect(await stopHelper(h)).toBe(0);
});

test('define, kill -9, restart: domains, states, ids and memory settings are still there', async () => {
  const d = dir();
  let h = await startHelper(d);
  let c = await ready(h.socket);
  body(await c.call(Op.DOMAIN_WRITE_REQ, { action: 'define', actor: ACTOR, def: dx(FOO) }));
  body(await c.call(Op.DOMAIN_WRITE_REQ, { action: 'control', actor: ACTOR, uuid: FOO_UUID, control: ControlAction.START }));
  body(await c.call(Op.DOMAIN_WRITE_REQ, { action: 'control', actor: ACTOR, uuid: FOO_UUID, control: ControlAction.SUSPEND }));
  body(
    await c.call(Op.DOMAIN_WRITE_REQ, {
      action: 'createXml',
      actor: ACTOR,
      def: dx("<domain type='test'><name>tr</name><memory>1024</memory><os><type>hvm</type></os></domain>"),
    }),
  );
  body(await c.call(Op.DOMAIN_WRITE_REQ, { action: 'setMemory', actor: ACTOR, uuid: TEST_UUID, memoryKiB: 1048576n, live: true, config: false, max: false }));
  const before = body<{ domains: DomainSummary[] }>(await c.call(Op.DOMAIN_READ_REQ, { action: 'list' })).domains;
  c.end();
  expect(await stopHelper(h, 'SIGKILL')).toBe(null);
  expect(fs.statSync(h.socket).isSocket()).toBe(true); // left behind by kill -9

  h = await startHelper(d); // removes the stale socket
  c = await ready(h.socket);
  const after = body<{ domains: DomainSummary[] }>(await c.call(Op.DOMAIN_READ_REQ, { action: 'list' })).domains;
  const key = (x: DomainSummary) => [x.name, x.id, x.state, x.reason, x.persistent];
  expect(after.map(key).sort()).toEqual(before.map(key).sort());
  expect(after.map(key).sort()).toEqual(
    [
      ['foo', 2, 3, 1, true], // paused by the user: VIR_DOMAIN_PAUSED_USER = 1
      ['test', 1, 1, 0, true],
      ['tr', 3, 1, 1, false],
    ].sort(),
  );
  expect(body<{ memoryKiB: bigint }>(await c.call(Op.DOMAIN_READ_REQ, { action: 'info', uuid: TEST_UUID })).memoryKiB).toBe(1048576n);
  const lookup = await c.call(Op.DOMAIN_READ_REQ, { action: 'lookup', key: { kind: LookupKind.ID, id: 2 } });
  expect(body<DomainSummary>(lookup).name).toBe('foo');
  const started = await c.call(Op.DOMAIN_WRITE_REQ, { action: 'control', actor: ACTOR, uuid: TEST_UUID, control: ControlAction.DESTROY });
  expect(body<DomainSummary>(started).id).toBe(-1);
  c.end();
  expect(await stopHelper(h)).toBe(0);
  expect(fs.existsSync(h.socket)).toBe(false);
});

test('node facts and XML over the wire', async () => {
  const h = await startHelper(dir());
  const c = await ready(h.socket);
  const f = body<{ hvType: string; uri: string; capabilitiesXml: string }>(await c.call(Op.NODE_FACTS_REQ, {}));
  expect([f.hvType, f.uri]).toEqual(['TEST', 'test:///default']);
  const xml = xmlOf(body<{ def: DomainDef; id: number | null }>(await c.call(Op.DOMAIN_READ_REQ, { action: 'xml', uuid: TEST_UUID, inactive: false })));
  expect(xml.startsWith("<domain type='test' id='1'>\n  <name>test</name>")).toBe(true);
  c.end();
  await stopHelper(h);
});

test('SIGINT also stops cleanly', async () => {
  const h = await startHelper(dir());
  expect(await stopHelper(h, 'SIGINT')).toBe(0);
});

test('options: runtime dir, socket mode and group, allow-uid', async () => {
  const d = dir();
  const run = path.join(d, 'rt');
  const gid = String(process.getgid!());
  const h = await startHelper(d, [
    '--runtime-dir',
    run,
    '--socket-mode',
    '0660',
    '--socket-group',
    gid,
    '--allow-uid',
    '0',
    '--allow-uid',
    String(process.getuid!()),
  ]);
  expect((fs.statSync(h.socket).mode & 0o777).toString(8)).toBe('660');
  expect(String(fs.statSync(h.socket).gid)).toBe(gid);
  expect(fs.readdirSync(path.join(run, 'domains'))).toEqual(['6695eb01-f6a4-8304-79aa-97f2502e193f.json']);
  await stopHelper(h);
});

test('the default runtime dir is STATE/../run/helper', async () => {
  const d = dir();
  const h = await startHelper(d);
  expect(fs.existsSync(path.join(d, 'run', 'helper', 'next-id'))).toBe(true);
  await stopHelper(h);
});

test('a client whose uid is not allowed is refused', async () => {
  const h = await startHelper(dir(), ['--allow-uid', String(process.getuid!() + 12345)]);
  const c = await RawClient.connect(h.socket);
  c.request(Op.HELLO_REQ, { version: 1 });
  expect(await c.closesWithin()).toBe(true);
  expect(c.answers).toEqual([]);
  expect(h.stderr()).toMatch(/refused peer uid \d+ pid \d+/);
  await stopHelper(h);
});

testIf(root('switches to uid 65534'), 'as root: a uid-65534 client is refused by SO_PEERCRED even though the socket mode lets it connect', async () => {
  const d = dir();
  fs.chmodSync(d, 0o755);
  const h = await startHelper(d, ['--socket-mode', '0666']);
  // The child connects as nobody, sends HELLO, and prints what happened.
  const script = `const s=require('net').connect(${JSON.stringify(h.socket)});let got=0;
s.on('connect',()=>{const b=Buffer.alloc(16);b.writeUInt32BE(16,0);b.writeUInt32BE(0,4);b.writeUInt32BE(1,8);b.writeUInt32BE(1,12);s.write(b);});
s.on('data',(c)=>got+=c.length);s.on('error',()=>{});s.on('close',()=>{console.log('closed '+got);});`;
  const child = spawn(process.execPath, ['-e', script], { uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  await new Promise((r) => child.on('exit', r));
  expect(out.trim()).toBe('closed 0');
  expect(h.stderr()).toMatch(/refused peer uid 65534/);
  // Root (the allowed uid) still gets in.
  const c = await ready(h.socket);
  c.end();
  await stopHelper(h);
});

test('a socket a live helper is serving is not taken over', async () => {
  const d = dir();
  const h = await startHelper(d);
  await expect(startHelper(d)).rejects.toThrow(/in use by a running process/);
  const c = await ready(h.socket);
  c.end();
  await stopHelper(h);
});

test('a non-socket file at --socket is never removed', async () => {
  const d = dir();
  const sock = path.join(d, 'helper.sock');
  fs.writeFileSync(sock, 'precious');
  await expect(startHelper(d)).rejects.toThrow(/exists and is not a socket/);
  expect(fs.readFileSync(sock, 'utf8')).toBe('precious');
});

test.each([
  [[], /--socket is required/],
  [['--socket', '/tmp/x.sock'], /--state-dir is required/],
  [['--socket', '/tmp/x.sock', '--state-dir', '/tmp/x', '--driver', 'qemu'], /--driver qemu needs --launcher-socket PATH/],
  [['--socket', '/tmp/x.sock', '--state-dir', '/tmp/x', '--driver', 'xen'], /unsupported driver 'xen'/],
  [['--socket', '/tmp/x.sock', '--state-dir', '/tmp/x', '--allow-uid', 'root'], /--allow-uid: not a valid number/],
  [['--socket', '/tmp/x.sock', '--state-dir', '/tmp/x', '--socket-mode', '999'], /--socket-mode/],
  [['--socket', '/tmp/x.sock', '--state-dir', '/tmp/x', '--bogus'], /Unknown option '--bogus'/],
])('usage errors exit 2: %j', (args, msg) => {
  const r = spawnSync(process.execPath, [HELPER_BIN, ...args], { encoding: 'utf8' });
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(msg);
  expect(r.stderr).toMatch(/^usage: virtgate-helper/m);
});
