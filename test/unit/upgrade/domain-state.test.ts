// SPDX-License-Identifier: Apache-2.0
// State written by an older virtgate (domain XML in files, in the state log and in running status): the helper refuses
// to start on it rather than hide those VMs; the one-shot conversion (a separate process) turns it into typed JSON.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LegacyStateError, TestDriver } from '../../../src/privileged/drivers/test-driver';
import { uuidFromString } from '../../../src/ipc/program';
import { upgradeDomainState } from '../../../src/upgrade/domain-state';
import { xmlOf } from '../../helpers/domain-def';
import { TEST_DOMAIN_XML } from '../../helpers/test-domain';

const FOO = '0d46d412-f292-416c-8b9a-ea26480a531f';
const BAR = '1d46d412-f292-416c-8b9a-ea26480a531f';
const TEST = '6695eb01-f6a4-8304-79aa-97f2502e193f';
const vm = (name: string, uuid: string, mem: number) =>
  `<domain type='test'>\n  <name>${name}</name>\n  <uuid>${uuid}</uuid>\n  <metadata>\n    <virtgate:tenant xmlns:virtgate='https://virtgate.dev/xmlns/tenant/1'>acme</virtgate:tenant>\n  </metadata>\n  <memory unit='KiB'>${mem}</memory>\n  <os>\n    <type arch='i686'>hvm</type>\n  </os>\n</domain>\n`;

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-upgrade-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
const state = () => path.join(dir, 'state');
const run = () => path.join(dir, 'run');
const open = () => new TestDriver({ stateDir: state(), runtimeDir: run(), warn: () => {} });

// The layout an older version left: files, a state-log record, running status with its live XML.
function legacyLayout(): void {
  for (const d of [path.join(state(), 'domains'), path.join(run(), 'domains')]) fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(state(), 'initialized'), 'x\n');
  fs.writeFileSync(path.join(state(), 'domains', `${TEST}.xml`), TEST_DOMAIN_XML);
  fs.writeFileSync(path.join(state(), 'domains', `${FOO}.xml`), vm('foo', FOO, 1024));
  const status = { state: 1, reason: 1, id: 3, cpuNs: '0', since: Date.now(), persistent: true, liveXml: vm('foo', FOO, 2048) };
  fs.writeFileSync(path.join(run(), 'domains', `${FOO}.json`), JSON.stringify(status));
  fs.writeFileSync(path.join(run(), 'next-id'), '4\n');
  const json = JSON.stringify([['config', BAR, vm('bar', BAR, 4096)]]);
  fs.writeFileSync(path.join(state(), 'state.wal'), `${createHash('sha256').update(json).digest('hex').slice(0, 16)} ${json}\n`);
}

test('the helper refuses to start on stored domain XML and names the conversion; it changes nothing', () => {
  legacyLayout();
  expect(open).toThrow(LegacyStateError);
  expect(open).toThrow(/3 domain definition\(s\) are stored as XML .*virtgate-upgrade-state/);
  expect(fs.existsSync(path.join(state(), 'domains', `${FOO}.xml`))).toBe(true);
});

test('after the conversion every VM is back, typed: configs, the state-log record, the running one with its tenant', () => {
  legacyLayout();
  const r = upgradeDomainState(state(), run(), () => {});
  expect(r).toEqual({ converted: expect.arrayContaining([TEST, FOO, BAR]), unconverted: [] });
  expect(fs.readdirSync(path.join(state(), 'domains')).sort()).toEqual([`${FOO}.json`, `${BAR}.json`, `${TEST}.json`].sort());
  const d = open();
  expect(
    d
      .list()
      .map((x) => [x.name, x.state, x.tenant])
      .sort(),
  ).toEqual([
    ['bar', 5, 'acme'],
    ['foo', 1, 'acme'],
    ['test', 5, undefined],
  ]);
  const foo = uuidFromString(FOO)!;
  expect(d.xml(foo, false).def.maxMemKiB).toBe(2048n); // the live definition
  expect(d.xml(foo, true).def.maxMemKiB).toBe(1024n); // the next-boot config
  expect(xmlOf(d.xml(uuidFromString(TEST)!, true))).toBe(TEST_DOMAIN_XML);
  d.close();
  expect(upgradeDomainState(state(), run(), () => {})).toEqual({ converted: [], unconverted: [] }); // idempotent
});

test('XML that cannot be read is kept aside, reported, and no longer blocks the helper', () => {
  legacyLayout();
  fs.writeFileSync(path.join(state(), 'domains', `${FOO}.xml`), '<domain');
  const warnings: string[] = [];
  const r = upgradeDomainState(state(), run(), (m) => warnings.push(m));
  expect(r.unconverted).toContain(FOO);
  expect(fs.readFileSync(path.join(state(), 'unconverted', `${FOO}.config.xml`), 'utf8')).toBe('<domain');
  expect(warnings.join('\n')).toMatch(new RegExp(`domain ${FOO}: its stored config XML cannot be converted`));
  const d = open();
  expect(d.list().map((x) => x.name)).toContain('bar');
});
