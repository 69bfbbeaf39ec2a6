// SPDX-License-Identifier: Apache-2.0
// The disk code runs where it will run: a child Node (build/) under the helper's seccomp list (default: kill, so a
// missing syscall kills the child). openat2 (through syscall(2)), memfd_create, seals, createQcow2 and the pool driver
// all work there. (Node 20's permission model is not usable for this code: it disables fsync and fchmod.)
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describeIf, root } from '../../helpers/skip';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const BUILD = path.join(ROOT, 'build', 'src');

describeIf(root('root-owned pools, seccomp'), 'disk code under the helper sandbox', () => {
  let dir: string;
  let elsewhere: string;
  beforeAll(() => {
    if (!fs.existsSync(path.join(BUILD, 'privileged', 'qemu', 'disk.js'))) throw new Error('build output missing: run `npm run build` first (npm test does)');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-disksb-'));
    elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-disksb-kernel-'));
    fs.chmodSync(elsewhere, 0o755);
    fs.writeFileSync(path.join(elsewhere, 'vmlinuz'), Buffer.alloc(3 << 20, 0x4b), { mode: 0o644 });
  });
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(elsewhere, { recursive: true, force: true });
  });

  test('pools, volumes, chains and kernels under the helper seccomp list (default: kill)', () => {
    const child = path.join(dir, 'child.js');
    fs.writeFileSync(
      child,
      `'use strict';
const B = ${JSON.stringify(BUILD)}, DIR = ${JSON.stringify(dir)}, KERNEL = ${JSON.stringify(path.join(elsewhere, 'vmlinuz'))};
const fs = require('fs'), path = require('path');
const { applySandbox } = require(B + '/sandbox/index.js');
const disk = require(B + '/privileged/qemu/disk.js');
const { kernelMemfd } = require(B + '/privileged/qemu/kernel.js');
const { QemuPools } = require(B + '/privileged/drivers/qemu-pools.js');
const { getSeals } = require(B + '/sandbox/files.js');
require(B + '/sandbox/libc.js').koffi(); // loaded before the filter, as the helper does at start
const out = {};
const report = applySandbox('helper');
out.seccomp = !('skipped' in report.seccomp) && report.seccomp.defaultAction === 'kill-process';
const recs = new Map();
const ctx = { firstStart: true, warn() {}, emit() {}, records: { load: (t) => new Map(recs.get(t) || []), put: (t, k, j) => { const m = recs.get(t) || new Map(); j === null ? m.delete(k) : m.set(k, j); recs.set(t, m); } } };
const pools = new QemuPools(ctx, { tenantRoot: path.join(DIR, 'tenants'), adminRoots: [path.join(DIR, 'admin')] });
const cfg = (name, target) => ({ type: 'dir', name, uuid: require('crypto').randomBytes(16), source: { hosts: [], devices: [], dir: '', format: '', protocolVer: '', vendor: '', product: '' }, targetPath: target, perms: { mode: -1, owner: -1, group: -1, label: '' }, cow: '' });
const vol = (name, format, capacity, backing = null) => ({ name, type: 'file', capacity, allocation: 0n, format, perms: { mode: -1, owner: -1, group: -1, label: '' }, backing, compat: '', nocow: false, features: null });
const p = cfg('t-vms', path.join(DIR, 'tenants', 'acme', 'vms'));
pools.definePool(p, 'acme'); pools.buildPool(p.uuid, 'acme'); pools.startPool(p.uuid, 'acme');
pools.createVolume(p.uuid, vol('base.raw', 'raw', 1n << 20n), 'acme');
pools.createVolume(p.uuid, vol('top.qcow2', 'qcow2', 1n << 30n, { path: p.targetPath + '/base.raw', format: 'raw' }), 'acme');
out.volumes = pools.listVolumes(p.uuid).map((v) => v.config.name + ':' + v.config.format);
const layers = disk.openPoolDisk({ poolDir: p.targetPath, name: 'top.qcow2', format: 'qcow2', readOnly: false, basePools: [] });
out.layers = layers.map((l) => l.format + (l.readOnly ? ':ro' : ':rw'));
layers.forEach((l) => fs.closeSync(l.fd));
fs.symlinkSync('/etc/shadow', path.join(p.targetPath, 'evil.raw'));
try { disk.openPoolDisk({ poolDir: p.targetPath, name: 'evil.raw', format: 'raw', readOnly: true, basePools: [] }); out.symlink = 'opened'; } catch (e) { out.symlink = e.code + ' ' + e.detail; }
const k = kernelMemfd(KERNEL, 'kernel');
out.kernelBytes = fs.fstatSync(k).size; out.seals = getSeals(k);
out.status = /Seccomp:\\s+2/.test(fs.readFileSync('/proc/self/status', 'utf8'));
process.stdout.write('RESULT ' + JSON.stringify(out) + '\\n');
`,
    );
    const r = spawnSync(process.execPath, [child], { encoding: 'utf8', timeout: 30_000, cwd: ROOT });
    const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    expect({ status: r.status, signal: r.signal, stderr: line ? '' : r.stderr }).toEqual({ status: 0, signal: null, stderr: '' });
    expect(JSON.parse(line!.slice(7))).toEqual({
      seccomp: true,
      status: true,
      volumes: ['base.raw:raw', 'top.qcow2:qcow2'],
      layers: ['qcow2:rw', 'raw:ro'],
      symlink: expect.stringMatching(/^VG_ERR_RESOURCE_DENIED .*rule: no symlinks/),
      kernelBytes: 3 << 20,
      seals: 15,
    });
  });
});
