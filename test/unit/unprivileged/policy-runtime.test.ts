// SPDX-License-Identifier: Apache-2.0
// The live policy: the built-in default while no policy file exists; once a file was loaded, deleting it is a failed
// reload (the old policy stays, the log says POLICY FILE MISSING, the audit callback gets ok: false).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type PolicyReload, PolicyRuntime } from '../../../src/unprivileged/policy-runtime';

const host = { kind: 'connect' as const, name: 'virtgate' };
const vm = (name: string, tenant: string) => ({ kind: 'domain' as const, name, tenant });

describe('PolicyRuntime and the policy file', () => {
  let dir: string;
  let file: string;
  let rt: PolicyRuntime | null = null;
  let logs: string[];
  let reloads: PolicyReload[];
  const start = async (): Promise<PolicyRuntime> => {
    rt = new PolicyRuntime({ policyFile: file, log: (m) => logs.push(m), watch: false, signals: false, onReload: (r) => reloads.push(r) });
    await rt.ready;
    return rt;
  };

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-policy-rt-'));
    file = path.join(dir, 'policy.csv');
    logs = [];
    reloads = [];
  });
  afterEach(() => {
    rt?.close();
    rt = null;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('no file at start: the built-in default (local root and the admin certificate are host admins)', async () => {
    const p = await start();
    expect(reloads).toEqual([{ why: 'start', ok: true, source: 'built-in default policy', rules: 2 }]);
    expect(p.can({ user: 'unix:root', tenant: '', readOnly: false }, host, 'connect:write').allowed).toBe(true);
    expect(p.can({ user: 'x509:admin', tenant: '', readOnly: false }, host, 'connect:write').allowed).toBe(true);
    expect(p.can({ user: 'x509:root', tenant: '', readOnly: false }, host, 'connect:write').allowed).toBe(false);
    // A file that appears later is loaded; deleting it again is not a way back to the default (here: its admins).
    fs.writeFileSync(file, 'builtin, off\ng, unix:root, host-admin, *\n');
    expect(await p.reload('SIGHUP')).toBe(true);
    fs.rmSync(file);
    expect(await p.reload('file change')).toBe(false);
    expect(p.can({ user: 'x509:admin', tenant: '', readOnly: false }, host, 'connect:write').allowed).toBe(false);
  });

  test('a loaded file that disappears: failed reload, the old policy stays, logged loudly and reported ok: false', async () => {
    fs.writeFileSync(file, 'builtin, off\ng, unix:root, host-admin, *\ng, alice, owner, acme\n');
    const p = await start();
    const alice = { user: 'unix:alice', tenant: 'acme', readOnly: false };
    expect(p.can(alice, vm('web', 'acme'), 'domain:start').allowed).toBe(true);
    const generation = p.generation;
    fs.rmSync(file);
    for (const why of ['file change', 'SIGHUP']) {
      expect(await p.reload(why)).toBe(false);
      expect(logs[logs.length - 1]).toMatch(
        new RegExp(
          `policy reload failed \\(${why}\\), keeping the previous policy: POLICY FILE MISSING: ${file.replace(/[.]/g, '\\.')} was loaded before and is gone`,
        ),
      );
      expect(reloads[reloads.length - 1]).toMatchObject({ why, ok: false, source: file, error: expect.stringMatching(/^POLICY FILE MISSING/) });
    }
    expect(logs.some((l) => /policy loaded \(.*\) from built-in default policy/.test(l))).toBe(false);
    // Still the file's policy: alice keeps her tenant, and the default's x509:admin did not become a host admin.
    expect(p.generation).toBe(generation);
    expect(p.can(alice, vm('web', 'acme'), 'domain:start').allowed).toBe(true);
    expect(p.tenantsOf('unix:alice')).toEqual(['acme']);
    expect(p.can({ user: 'x509:admin', tenant: '', readOnly: false }, host, 'connect:write').allowed).toBe(false);
    // Restored: loads again.
    fs.writeFileSync(file, 'builtin, off\ng, unix:root, host-admin, *\n');
    expect(await p.reload('SIGHUP')).toBe(true);
    expect(reloads[reloads.length - 1]).toMatchObject({ why: 'SIGHUP', ok: true, source: file, rules: 1 });
    expect(p.can(alice, vm('web', 'acme'), 'domain:start').allowed).toBe(false);
  });

  test('the watcher sees the deletion: a failed reload without any signal', async () => {
    fs.writeFileSync(file, 'g, alice, owner, acme\n');
    rt = new PolicyRuntime({ policyFile: file, log: (m) => logs.push(m), signals: false, onReload: (r) => reloads.push(r) });
    await rt.ready;
    fs.rmSync(file);
    for (let i = 0; i < 100 && reloads.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(reloads[1]).toMatchObject({ why: 'file change', ok: false, error: expect.stringMatching(/POLICY FILE MISSING/) });
    expect(rt.tenantsOf('unix:alice')).toEqual(['acme']);
  });
});
