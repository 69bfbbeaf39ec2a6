// SPDX-License-Identifier: Apache-2.0
// Privilege drop in a real child Node started as root: every thread moves to 65534, root cannot be regained.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { root, testIf } from '../helpers/skip';

const ROOT = path.resolve(__dirname, '..', '..');
const BUILD = path.join(ROOT, 'build', 'src', 'sandbox');

function runChild(body: string): { result: any; stderr: string; status: number | null } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-privdrop-'));
  const file = path.join(dir, 'child.js');
  fs.writeFileSync(
    file,
    `'use strict';
const pd = require(${JSON.stringify(path.join(BUILD, 'privdrop.js'))});
const sandbox = require(${JSON.stringify(path.join(BUILD, 'index.js'))});
const fs = require('fs');
const done = (r) => process.stdout.write('RESULT ' + JSON.stringify(r) + '\\n');
(async () => { ${body} })().catch((e) => { done({ error: e.code || String(e.stack || e) }); });
`,
  );
  fs.chmodSync(dir, 0o755);
  const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 30000 });
  fs.rmSync(dir, { recursive: true, force: true });
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  return { result: line ? JSON.parse(line.slice(7)) : null, stderr: r.stderr, status: r.status };
}

const rootOnly = (name: string, fn: () => void): void => testIf(root('drops privileges'), name, fn);

// Threads first: the libuv pool and V8 platform threads exist before the drop, so a per-thread setuid would miss them.
const THREADS = `await new Promise((r) => require('crypto').pbkdf2('w', 's', 10, 16, 'sha256', r));`;
const PROBE = `
  const tasks = fs.readdirSync('/proc/self/task').map((t) => {
    const s = fs.readFileSync('/proc/self/task/' + t + '/status', 'utf8');
    return { uid: s.match(/^Uid:\\s+(.*)$/m)[1].split(/\\s+/), gid: s.match(/^Gid:\\s+(.*)$/m)[1].split(/\\s+/), groups: s.match(/^Groups:[ \\t]*(.*)$/m)[1].trim() };
  });
  let shadow; try { fs.readFileSync('/etc/shadow'); shadow = 'readable'; } catch (e) { shadow = e.code; }
  let regain; try { process.setuid(0); regain = 'root again'; } catch (e) { regain = e.code; }
  const st = fs.readFileSync('/proc/self/status', 'utf8');
  const cap = (k) => st.match(new RegExp('^' + k + ':\\\\s+(\\\\w+)', 'm'))[1];
`;

rootOnly('dropPrivileges(65534): all four uid/gid slots of every thread, no groups, /etc/shadow unreadable, setuid(0) EPERM', () => {
  const { result, stderr } = runChild(`
    ${THREADS}
    const report = pd.dropPrivileges({ user: 65534, group: 65534 });
    ${PROBE}
    done({ report, tasks, shadow, regain, capEff: cap('CapEff'), capBnd: cap('CapBnd'), capAmb: cap('CapAmb') });
  `);
  expect(stderr).toBe('');
  expect(result.error).toBeUndefined();
  expect(result.tasks.length).toBeGreaterThanOrEqual(5); // main + 4 pool threads at least
  for (const t of result.tasks) {
    expect(t.uid).toEqual(['65534', '65534', '65534', '65534']);
    expect(t.gid).toEqual(['65534', '65534', '65534', '65534']);
    expect(t.groups).toBe('');
  }
  expect(result.shadow).toBe('EACCES');
  expect(result.regain).toBe('EPERM');
  expect(result).toMatchObject({ capEff: '0000000000000000', capBnd: '0000000000000000', capAmb: '0000000000000000' });
  expect(result.report).toMatchObject({ uid: 65534, gid: 65534, groups: [], boundingSetCleared: true, regainRefused: true, threads: result.tasks.length });
  process.stdout.write(`privdrop: ${result.tasks.length} threads at 65534/65534, CapBnd ${result.capBnd}\n`);
});

rootOnly('by name, with a supplementary group kept', () => {
  const { result } = runChild(`
    const report = pd.dropPrivileges({ user: 'nobody', groups: ['nogroup'] });
    done({ report, groups: process.getgroups() });
  `);
  expect(result.report).toMatchObject({ uid: 65534, gid: 65534, groups: [65534] });
  expect(result.groups).toEqual([65534]);
});

rootOnly('applySandbox(front): drop first, then the filter that removes setuid; the report says both', () => {
  const { result, stderr } = runChild(`
    ${THREADS}
    const report = sandbox.applySandbox('front', { user: 65534, group: 65534 });
    ${PROBE}
    let again; try { sandbox.applySandbox('front'); again = 'twice'; } catch (e) { again = e.code; }
    done({ report, line: sandbox.describeSandbox(report), tasks, shadow, regain, again });
  `);
  expect(stderr).toBe('');
  expect(result.report.privdrop).toMatchObject({ uid: 65534, gid: 65534 });
  expect(result.report.seccomp).toMatchObject({ defaultAction: 'errno(EPERM)', tsync: true });
  expect(result.tasks.every((t: any) => t.uid.every((u: string) => u === '65534'))).toBe(true);
  expect(result.shadow).toBe('EACCES');
  expect(result.regain).toBe('EPERM');
  expect(result.again).toBe('VG_ERR_SANDBOX_CONFIG');
  expect(result.line).toMatch(/^sandbox \(front\): uid 65534 gid 65534 groups \[\], bounding set empty; seccomp \d+ syscalls allowed, default errno\(EPERM\)/);
  process.stdout.write(`${result.line}; total ${result.report.totalMs} ms\n`);
});

test('refuses to drop to root or to an unknown user, without touching ids', () => {
  const { result } = runChild(`
    const codes = [];
    for (const o of [{ user: 0 }, { user: 'no-such-user-vg' }, { user: 65534, group: 0 }, { user: 65534, groups: [0] }, { user: -1 }]) {
      try { pd.dropPrivileges(o); codes.push('dropped'); } catch (e) { codes.push(e.code); }
    }
    done({ codes, uid: process.getuid() });
  `);
  expect(result.codes).toEqual(Array(5).fill('VG_ERR_SANDBOX_CONFIG'));
  expect(result.uid).toBe(process.getuid!());
});

test('applySandbox: the helper never drops, and the front end skips the drop when not root', () => {
  const { result } = runChild(`
    let helperUser; try { sandbox.applySandbox('helper', { user: 65534 }); } catch (e) { helperUser = e.code; }
    done({ helperUser });
  `);
  expect(result.helperUser).toBe('VG_ERR_SANDBOX_CONFIG');
});
