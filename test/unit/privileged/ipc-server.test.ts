// SPDX-License-Identifier: Apache-2.0
// IpcServer in-process with a stub driver: helper bugs, stalled partial frames, refused peers, backpressure.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { HelperJournal, readJournal } from '../../../src/audit/journal';
import { IPC_VERSION, Op, encodeRequest } from '../../../src/ipc/program';
import type { Driver } from '../../../src/privileged/drivers/driver';
import { TestDriver } from '../../../src/privileged/drivers/test-driver';
import { IpcServer, type IpcServerOptions } from '../../../src/privileged/ipc-server';
import { RawClient } from '../../integration/helper/ipc-client';
import { dx } from '../../helpers/domain-def';

let dir: string;
let server: IpcServer;
let socket: string;
let logs: string[];

async function serve(driver: Driver, extra: Partial<IpcServerOptions> = {}): Promise<void> {
  logs = [];
  server = new IpcServer({ driver, allowUids: [process.getuid!()], log: (l) => logs.push(l), ...extra });
  await server.listen(socket);
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-ipc-'));
  socket = path.join(dir, 's.sock');
});
afterEach(async () => {
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const testDriver = () => new TestDriver({ stateDir: path.join(dir, 'state'), runtimeDir: path.join(dir, 'run'), warn: () => {} });

test('a helper bug in one answer becomes VG_ERR_INTERNAL; the connection and the server live on', async () => {
  const d = testDriver();
  jest.spyOn(d, 'list').mockImplementation(() => {
    throw new TypeError('boom');
  });
  await serve(d);
  const c = await RawClient.connect(socket);
  await c.hello();
  expect(await c.call(Op.DOMAIN_READ_REQ, { action: 'list' })).toMatchObject({ ok: false, code: 'VG_ERR_INTERNAL' });
  expect((await c.call(Op.NODE_FACTS_REQ, {})).ok).toBe(true);
  expect(logs.some((l) => l.includes('DOMAIN_READ_REQ.list failed: TypeError: boom'))).toBe(true);
  c.end();
});

test('a write that happened but whose answer cannot be encoded is journaled ok and answered VG_ERR_HELPER_UNANSWERED, never "failed"', async () => {
  const d = testDriver();
  const real = d.define.bind(d);
  // A driver bug: the summary it returns names the domain with more than the IPC allows.
  jest.spyOn(d, 'define').mockImplementation((def, tenant?: string) => ({ ...real(def, tenant), name: 'n'.repeat(200) }));
  const journal = new HelperJournal(path.join(dir, 'journal.log'), { sync: 'none' });
  await serve(d, { journal });
  const c = await RawClient.connect(socket);
  await c.hello();
  const xml = "<domain type='test'><name>happened</name><memory>1024</memory><os><type>hvm</type></os></domain>";
  expect(await c.call(Op.DOMAIN_WRITE_REQ, { action: 'define', actor: { user: 'u', tenant: '', requestId: 'r-unanswered' }, def: dx(xml) })).toMatchObject({
    ok: false,
    code: 'VG_ERR_HELPER_UNANSWERED',
  });
  expect(d.list().some((x) => x.name === 'happened')).toBe(true);
  journal.close();
  expect(readJournal(path.join(dir, 'journal.log')).records).toEqual([
    expect.objectContaining({ phase: 'begin', op: 'DOMAIN_WRITE_REQ.define', requestId: 'r-unanswered' }),
    expect.objectContaining({ phase: 'end', of: 0, op: 'DOMAIN_WRITE_REQ.define', requestId: 'r-unanswered', result: 'ok', name: 'n'.repeat(200) }),
  ]);
  expect(logs.some((l) => /DOMAIN_WRITE_REQ\.define executed but its answer cannot be encoded/.test(l))).toBe(true);
  c.end();
});

test('a partial frame that stalls past the timeout is closed; an idle connection is not', async () => {
  await serve(testDriver(), { partialFrameTimeoutMs: 150 });
  const stalled = await RawClient.connect(socket);
  const idle = await RawClient.connect(socket);
  await idle.hello();
  stalled.send(encodeRequest(Op.HELLO_REQ, 1, { version: IPC_VERSION }).subarray(0, 10));
  expect(await stalled.closesWithin(2000)).toBe(true);
  expect(idle.isClosed).toBe(false);
  expect(logs.some((l) => /partial frame stalled for 150 ms/.test(l))).toBe(true);
  idle.end();
});

test('a peer whose credentials cannot be read is refused', async () => {
  await serve(testDriver(), {
    peerCred: () => {
      throw new Error('no fd');
    },
  });
  const c = await RawClient.connect(socket);
  expect(await c.closesWithin()).toBe(true);
  expect(logs).toEqual([expect.stringMatching(/conn 1: refused: no fd/)]);
});

test('a peer that stops reading gets every answer once it resumes; others are served meanwhile', async () => {
  const d = testDriver();
  await serve(d);
  const lazy = await RawClient.connect(socket);
  await lazy.hello();
  lazy.sock.pause(); // stop reading answers
  // Flood answers to the lazy peer: each NODE_FACTS answer carries the ~3 KB capabilities XML.
  const req = encodeRequest(Op.NODE_FACTS_REQ, 2, {});
  lazy.send(Buffer.concat(Array.from({ length: 2000 }, () => req)));
  const other = await RawClient.connect(socket);
  await other.hello();
  expect((await other.call(Op.DOMAIN_READ_REQ, { action: 'list' })).ok).toBe(true);
  lazy.sock.resume();
  await lazy.answer(2000, 10_000);
  for (const c of [lazy, other]) c.end();
});

describe('journal first: a write runs only once its begin line is durable', () => {
  const xml = (n: string) => `<domain type='test'><name>${n}</name><memory>1024</memory><os><type>hvm</type></os></domain>`;
  const actor = (requestId: string) => ({ user: 'alice', tenant: 'acme', requestId });

  test('the driver is not called before the fdatasync of the begin line completes, and the answer waits for the end line', async () => {
    const d = testDriver();
    const held: (() => void)[] = [];
    const journal = new HelperJournal(path.join(dir, 'journal.log'), { fs: { fdatasync: (fd, cb) => held.push(() => fs.fdatasync(fd, cb)) } });
    await serve(d, { journal });
    const c = await RawClient.connect(socket);
    await c.hello();
    c.request(Op.DOMAIN_WRITE_REQ, { action: 'define', actor: actor('r-gated'), def: dx(xml('gated')) });
    while (held.length === 0) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 50));
    expect(d.list().some((x) => x.name === 'gated')).toBe(false); // begin written, not yet durable: not run
    expect(readJournal(path.join(dir, 'journal.log')).records).toEqual([expect.objectContaining({ phase: 'begin', requestId: 'r-gated' })]);
    held.shift()!(); // the begin line's sync completes: the write runs, its end line is written
    while (!d.list().some((x) => x.name === 'gated')) await new Promise((r) => setTimeout(r, 5));
    while (held.length === 0) await new Promise((r) => setTimeout(r, 5));
    expect(c.answers).toHaveLength(1); // only HELLO: the answer waits for the end line's sync
    held.shift()!();
    expect(await c.answer(1)).toMatchObject({ ok: true, body: { name: 'gated' } });
    c.end();
    journal.close();
  });

  test('a begin line the disk refuses refuses the write: nothing runs, the error says why, and the same request id works once the disk takes it', async () => {
    const d = testDriver();
    let full = false;
    const journal = new HelperJournal(path.join(dir, 'journal.log'), {
      sync: 'none',
      fs: {
        writeSync: (fd, buf) => {
          if (full) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' });
          return fs.writeSync(fd, buf);
        },
      },
    });
    await serve(d, { journal });
    const c = await RawClient.connect(socket);
    await c.hello();
    full = true;
    expect(await c.call(Op.DOMAIN_WRITE_REQ, { action: 'define', actor: actor('r-full'), def: dx(xml('refused')) })).toMatchObject({
      ok: false,
      code: 'VG_ERR_STORAGE',
      detail: 'helper journal unavailable (ENOSPC); write refused',
    });
    expect(d.list().some((x) => x.name === 'refused')).toBe(false);
    expect(await c.call(Op.DOMAIN_READ_REQ, { action: 'list' })).toMatchObject({ ok: true }); // reads go on
    expect(logs.join('\n')).toMatch(/REFUSED DOMAIN_WRITE_REQ\.define request "r-full": helper journal unavailable \(ENOSPC\)/);
    full = false;
    expect(await c.call(Op.DOMAIN_WRITE_REQ, { action: 'define', actor: actor('r-full'), def: dx(xml('refused')) })).toMatchObject({ ok: true });
    expect(await c.call(Op.DOMAIN_WRITE_REQ, { action: 'define', actor: actor('r-full'), def: dx(xml('again')) })).toMatchObject({
      ok: false,
      code: 'VG_ERR_IPC_REPLAY',
    });
    journal.close();
    expect(readJournal(path.join(dir, 'journal.log')).records.map((r) => [r.phase, r.requestId, r.result])).toEqual([
      ['begin', 'r-full', undefined],
      ['end', 'r-full', 'ok'],
    ]);
    c.end();
  });

  test('a write begun before its connection closed still runs and its end is journaled', async () => {
    const d = testDriver();
    const held: (() => void)[] = [];
    const journal = new HelperJournal(path.join(dir, 'journal.log'), { fs: { fdatasync: (fd, cb) => held.push(() => fs.fdatasync(fd, cb)) } });
    await serve(d, { journal });
    const c = await RawClient.connect(socket);
    await c.hello();
    c.request(Op.DOMAIN_WRITE_REQ, { action: 'define', actor: actor('r-orphan'), def: dx(xml('orphan')) });
    while (held.length === 0) await new Promise((r) => setTimeout(r, 5));
    c.end();
    await c.closed;
    await new Promise((r) => setTimeout(r, 20));
    held.shift()!();
    while (held.length === 0) await new Promise((r) => setTimeout(r, 5));
    held.shift()!();
    expect(d.list().some((x) => x.name === 'orphan')).toBe(true);
    journal.close();
    expect(readJournal(path.join(dir, 'journal.log')).records.map((r) => [r.phase, r.result])).toEqual([
      ['begin', undefined],
      ['end', 'ok'],
    ]);
  });
});
