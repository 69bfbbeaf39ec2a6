// SPDX-License-Identifier: Apache-2.0
// The generated permission flags on a real child: writes outside the allowed dir and child_process are refused.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { permissionFlags } from '../../src/sandbox/node-flags';

const ROOT = path.resolve(__dirname, '..', '..');

test('front-like flags: allowed writes work; outside writes, /etc/shadow, child_process, workers and (without the flag) addons are refused', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-perm-'));
  const code = path.join(dir, 'code');
  const allowed = path.join(dir, 'home', 'log');
  fs.mkdirSync(code);
  fs.mkdirSync(allowed, { recursive: true });
  fs.writeFileSync(
    path.join(code, 'probe.js'),
    `const fs = require('fs'); const r = {};
const t = (k, f) => { try { f(); r[k] = 'ok'; } catch (e) { r[k] = e.code || e.message; } };
t('writeAllowed', () => fs.writeFileSync(${JSON.stringify(path.join(allowed, 'audit.log'))}, 'x'));
t('writeOutside', () => fs.writeFileSync(${JSON.stringify(path.join(dir, 'home', 'evil'))}, 'x'));
t('writeTmp', () => fs.writeFileSync('/tmp/vg-perm-probe', 'x'));
t('readShadow', () => fs.readFileSync('/etc/shadow'));
t('childProcess', () => require('child_process').execFileSync('/bin/true'));
t('worker', () => new (require('worker_threads').Worker)('1', { eval: true }));
t('addon', () => require(${JSON.stringify(path.join(ROOT, 'node_modules', 'koffi'))}));
process.stdout.write(JSON.stringify(r));`,
  );
  const flags = permissionFlags({ read: [code], write: [allowed], addons: false });
  const r = spawnSync(process.execPath, [...flags, path.join(code, 'probe.js')], { encoding: 'utf8' });
  fs.rmSync(dir, { recursive: true, force: true });
  expect(JSON.parse(r.stdout)).toEqual({
    writeAllowed: 'ok',
    writeOutside: 'ERR_ACCESS_DENIED',
    writeTmp: 'ERR_ACCESS_DENIED',
    readShadow: 'ERR_ACCESS_DENIED',
    childProcess: 'ERR_ACCESS_DENIED',
    worker: 'ERR_ACCESS_DENIED',
    addon: 'ERR_ACCESS_DENIED',
  });
});

test('with --allow-addons the seccomp loader runs under the permission model (both layers together)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-perm-'));
  fs.writeFileSync(
    path.join(dir, 'probe.js'),
    `const { applySandbox, describeSandbox } = require(${JSON.stringify(path.join(ROOT, 'build', 'src', 'sandbox', 'index.js'))});
const r = applySandbox('front');
process.stdout.write(JSON.stringify({ line: describeSandbox(r), threads: r.seccomp.threads }));`,
  );
  const flags = permissionFlags({ read: [dir, path.join(ROOT, 'build'), path.join(ROOT, 'node_modules'), '/proc/self'], write: [], addons: true });
  const r = spawnSync(process.execPath, [...flags, path.join(dir, 'probe.js')], { encoding: 'utf8' });
  fs.rmSync(dir, { recursive: true, force: true });
  const out = JSON.parse(r.stdout);
  expect(out.line).toMatch(/seccomp \d+ syscalls allowed.*node permission model on$/);
  expect(out.threads.filtered).toBe(out.threads.total);
});
