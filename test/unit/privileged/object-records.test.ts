// SPDX-License-Identifier: Apache-2.0
// Object records (networks, pools, ...) in the helper's state log: durable at once, replayed after a crash, written
// to STATE/objects/TYPE/KEY.json at checkpoint, and never a path component the store did not check.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { storeRecords } from '../../../src/privileged/drivers/object-context';
import { StateStore } from '../../../src/privileged/drivers/store';
import { TestDriver } from '../../../src/privileged/drivers/test-driver';

let dir: string;
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-objrec-'))));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const open = () => {
  const store = new StateStore(path.join(dir, 'state'), path.join(dir, 'run'));
  const loaded = store.load(() => {});
  return { store, loaded, records: storeRecords(store, loaded.objects) };
};

test('a record put and then a crash (no checkpoint) is replayed from the log; a removal too', () => {
  const a = open();
  a.records.put('network', 'aa-01', '{"name":"n1"}');
  a.records.put('network', 'bb-02', '{"name":"n2"}');
  a.records.put('network', 'aa-01', null);
  a.store.syncNow();
  // no close(), no checkpoint: the process "died" here
  const b = open();
  expect([...b.records.load('network')]).toEqual([['bb-02', '{"name":"n2"}']]);
  expect(b.records.load('pool').size).toBe(0);
  b.store.close();
});

test('a checkpoint writes one file per record under STATE/objects/TYPE and empties the log', () => {
  const a = open();
  a.records.put('pool', '0123abcd', '{"name":"p"}');
  a.store.checkpoint();
  expect(fs.readFileSync(path.join(dir, 'state', 'objects', 'pool', '0123abcd.json'), 'utf8')).toBe('{"name":"p"}');
  expect(fs.statSync(path.join(dir, 'state', 'state.wal')).size).toBe(0);
  a.records.put('pool', '0123abcd', null);
  a.store.checkpoint();
  expect(fs.existsSync(path.join(dir, 'state', 'objects', 'pool', '0123abcd.json'))).toBe(false);
  a.store.close();
});

test.each([
  ['a type with a slash', 'net/../x', 'aa'],
  ['a type with upper case', 'Network', 'aa'],
  ['a key with a dot-dot', 'network', '../../etc'],
  ['an empty key', 'network', ''],
  ['a key of 65 characters', 'network', 'a'.repeat(65)],
])('%s is refused before anything is written', (_what, type, key) => {
  const a = open();
  const before = fs.statSync(path.join(dir, 'state', 'state.wal')).size;
  expect(() => a.records.put(type, key, '{}')).toThrow(/bad object record/);
  expect(fs.statSync(path.join(dir, 'state', 'state.wal')).size).toBe(before);
  a.store.close();
});

test('unexpected files under STATE/objects are skipped with a warning, the rest loads', () => {
  const objects = path.join(dir, 'state', 'objects');
  fs.mkdirSync(path.join(objects, 'network'), { recursive: true });
  fs.writeFileSync(path.join(objects, 'network', 'cafe.json'), '{"ok":1}');
  fs.writeFileSync(path.join(objects, 'network', 'evil name.json'), '{}');
  fs.writeFileSync(path.join(objects, 'NOT-A-TYPE'), 'x');
  const warnings: string[] = [];
  const store = new StateStore(path.join(dir, 'state'), path.join(dir, 'run'));
  const loaded = store.load((m) => warnings.push(m));
  expect([...(loaded.objects.get('network') ?? [])]).toEqual([['cafe', '{"ok":1}']]);
  expect(warnings.filter((w) => w.includes('ignoring unexpected file'))).toHaveLength(2);
  store.close();
});

test('the test driver hands its sub-drivers the records, first start, and an event emitter its subscribers hear', () => {
  const d = new TestDriver({ stateDir: path.join(dir, 'state'), runtimeDir: path.join(dir, 'run'), warn: () => {} });
  const ctx = d.objectContext;
  expect(ctx.firstStart).toBe(true);
  const heard: unknown[] = [];
  const off = d.onObjectEvent((e) => heard.push(e));
  const ev = { type: 'network' as const, name: 'n1', uuid: Buffer.alloc(16, 1), tenant: 'acme', event: 0, detail: 0 };
  ctx.emit(ev);
  off();
  ctx.emit(ev);
  expect(heard).toEqual([ev]);
  ctx.records.put('network', 'abcd', '{"name":"n1"}');
  d.close();
  const again = new TestDriver({ stateDir: path.join(dir, 'state'), runtimeDir: path.join(dir, 'run'), warn: () => {} });
  expect(again.objectContext.firstStart).toBe(false);
  expect(again.objectContext.records.load('network').get('abcd')).toBe('{"name":"n1"}');
  again.close();
});
