// SPDX-License-Identifier: Apache-2.0
// `virtgate install --destdir`: the staged tree is complete (every path a unit names exists, or a directive creates it),
// holds only production dependencies, passes systemd-analyze verify/security against it, runs from itself (a real
// socket-activated front end answering virsh), and never overwrites an operator's config; --dry-run writes nothing.
import { execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { planInstall } from '../../src/cli/install';
import { ROOT, requireBuild } from '../helpers/daemon';

const run = promisify(execFile);
const CLI = path.join(ROOT, 'bin', 'virtgate.js');
const UNITS = ['virtgated.service', 'virtgate-helper.service', 'virtgated.socket', 'virtgated-ro.socket', 'virtgated-tls.socket'];

const need = [
  ['systemd-analyze', 'systemd'],
  ['systemd-sysusers', 'systemd'],
  ['systemd-tmpfiles', 'systemd'],
  ['systemd-socket-activate', 'systemd'],
  ['virsh', 'libvirt-clients'],
  ['npm', 'npm'],
].filter(([c]) => spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0);
if (need.length && process.env.CI === 'true') throw new Error(`install.test.ts needs ${need.map(([c, p]) => `${c} (${p})`).join(', ')}`);
if (need.length) process.stdout.write(`SKIP install.test.ts: needs ${need.map(([c, p]) => `${c} (Debian package ${p})`).join(', ')}\n`);
const maybe = need.length ? describe.skip : describe;

function install(...args: string[]): { rc: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, 'install', ...args], { encoding: 'utf8' });
  return { rc: r.status, out: r.stdout, err: r.stderr };
}

function listTree(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).sort();
}

// The host's own pieces a unit runs (node, sh, kill) and systemd's targets, placed in the scratch root the way they are
// on the host (symlink chains kept, files hard-linked), so `--root` sees an OS with our tree on top.
function addHost(root: string, exe: string[]): void {
  for (const top of ['bin', 'sbin', 'lib', 'lib64']) {
    const p = path.join('/', top);
    if (fs.existsSync(p) && fs.lstatSync(p).isSymbolicLink() && !fs.existsSync(path.join(root, top))) fs.symlinkSync(fs.readlinkSync(p), path.join(root, top));
  }
  for (const p of exe) {
    let cur = path.join(fs.realpathSync(path.dirname(p)), path.basename(p));
    for (;;) {
      const to = path.join(root, cur);
      fs.mkdirSync(path.dirname(to), { recursive: true });
      if (fs.lstatSync(cur).isSymbolicLink()) {
        const t = fs.readlinkSync(cur);
        if (!fs.existsSync(to)) fs.symlinkSync(t, to);
        const next = path.resolve(path.dirname(cur), t);
        cur = path.join(fs.realpathSync(path.dirname(next)), path.basename(next));
        continue;
      }
      if (!fs.existsSync(to)) {
        try {
          fs.linkSync(cur, to);
        } catch {
          fs.copyFileSync(cur, to);
          fs.chmodSync(to, 0o755);
        }
      }
      break;
    }
  }
  const sys = '/usr/lib/systemd/system';
  for (const t of fs.readdirSync(sys).filter((f) => f.endsWith('.target'))) {
    const to = path.join(root, sys, t);
    if (fs.existsSync(to)) continue;
    if (fs.lstatSync(path.join(sys, t)).isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(path.join(sys, t)), to);
    else fs.copyFileSync(path.join(sys, t), to);
  }
}

// Package directories (node_modules/NAME, node_modules/@SCOPE/NAME, and nested ones), relative to base.
function packagesUnder(base: string, rel: string): string[] {
  const out: string[] = [];
  const dir = path.join(base, rel);
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir)) {
    const names = e.startsWith('@') ? fs.readdirSync(path.join(dir, e)).map((n) => `${e}/${n}`) : e.startsWith('.') ? [] : [e];
    for (const n of names) {
      out.push(`${rel}/${n}`);
      out.push(...packagesUnder(base, `${rel}/${n}/node_modules`));
    }
  }
  return out;
}

function unitText(root: string, u: string): string {
  return fs.readFileSync(path.join(root, 'usr/lib/systemd/system', u), 'utf8');
}
function directive(text: string, key: string): string[] {
  return [...text.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]);
}

maybe('virtgate install', () => {
  let scratch: string;
  let dest: string;
  beforeAll(() => {
    requireBuild();
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-install-'));
    dest = path.join(scratch, 'root');
  });
  afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

  test('--dry-run lists every step and writes nothing', () => {
    const r = install('--destdir', dest, '--dry-run');
    expect(r.err).toBe('');
    expect(r.rc).toBe(0);
    expect(r.out).toMatch(/^would: cp -r .*\/build\/src .*\/root\/usr\/lib\/virtgate\/build\/src$/m);
    expect(r.out).toMatch(/^would: install -m 0644 .*virtgated\.socket .*\/root\/usr\/lib\/systemd\/system\/virtgated\.socket$/m);
    expect(r.out).toMatch(/^would: install -m 0644 .*etc\/virtgate\.conf .*\/root\/etc\/virtgate\/virtgate\.conf$/m);
    expect(r.out).toMatch(/^dry run: \d+ step\(s\), nothing written$/m);
    expect(fs.existsSync(dest)).toBe(false);
    // Also over an existing tree: nothing changes.
    fs.mkdirSync(path.join(dest, 'etc'), { recursive: true });
    const before = listTree(dest);
    expect(install('--destdir', dest, '--dry-run').rc).toBe(0);
    expect(listTree(dest)).toEqual(before);
    fs.rmSync(dest, { recursive: true });
  });

  test('install stages code, production modules only, units, sysusers, tmpfiles and config', () => {
    const r = install('--destdir', dest);
    expect(r.err).toBe('');
    expect(r.rc).toBe(0);
    const prefix = path.join(dest, 'usr/lib/virtgate');
    for (const u of UNITS) expect(fs.existsSync(path.join(dest, 'usr/lib/systemd/system', u))).toBe(true);
    expect(fs.readFileSync(path.join(dest, 'usr/lib/sysusers.d/virtgate.conf'), 'utf8')).toBe(
      fs.readFileSync(path.join(ROOT, 'systemd/virtgate.sysusers.conf'), 'utf8'),
    );
    expect(fs.readFileSync(path.join(dest, 'usr/lib/tmpfiles.d/virtgate.conf'), 'utf8')).toBe(
      fs.readFileSync(path.join(ROOT, 'systemd/virtgate.tmpfiles.conf'), 'utf8'),
    );
    expect(fs.readFileSync(path.join(dest, 'etc/virtgate/virtgate.conf'), 'utf8')).toBe(fs.readFileSync(path.join(ROOT, 'etc/virtgate.conf'), 'utf8'));
    expect(fs.statSync(path.join(prefix, 'bin/virtgated.js')).mode & 0o777).toBe(0o755);
    if (!fs.existsSync('/sys/fs/selinux/enforce')) expect(r.out).toMatch(/^note: SELinux is not enabled on this host .*policy module skipped$/m);

    // node_modules = npm's own production closure, nothing more, nothing less.
    const npmLs = execFileSync('npm', ['ls', '--omit=dev', '--parseable', '--all'], { cwd: ROOT, encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.includes(`${path.sep}node_modules${path.sep}`))
      .map((l) => l.slice(l.indexOf('node_modules')))
      .sort();
    const installed = packagesUnder(prefix, 'node_modules').sort();
    expect(installed).toEqual(npmLs);
    for (const dev of ['jest', 'typescript', 'eslint', 'ts-jest', 'prettier', 'fast-check'])
      expect(fs.existsSync(path.join(prefix, 'node_modules', dev))).toBe(false);
    expect(fs.existsSync(path.join(prefix, 'node_modules', '.bin'))).toBe(false);
  });

  test('systemd-analyze verify --root on the staged tree (plus the host OS pieces) is silent', () => {
    addHost(dest, ['/usr/bin/node', '/bin/sh', '/bin/kill']);
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', `--root=${dest}`, ...UNITS], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  test.each([
    ['virtgate-helper.service', 25, 2.5],
    ['virtgated.service', 20, 2.0],
  ])('systemd-analyze security --offline --root: %s keeps its exposure gate', (u, threshold, max) => {
    const r = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', `--root=${dest}`, `--threshold=${threshold}`, u], { encoding: 'utf8' });
    const score = Number(/Overall exposure level for [^:]*: ([0-9.]+)/.exec(r.stdout)?.[1]);
    process.stdout.write(`installed ${u}: exposure ${score}\n`);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(score).toBeLessThanOrEqual(max);
  });

  test('every absolute path a unit names exists in the tree, on the host, or is made by a directive', () => {
    // Directives only: the comments name paths too (the TLS key's directory), which no directive depends on.
    const all = UNITS.map((u) => unitText(dest, u))
      .join('\n')
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .join('\n');
    const paths = new Set([...all.matchAll(/(?<![\w:/.-])(\/(?:usr|etc|run|var|bin|opt)[\w./-]*)/g)].map((m) => m[1]));
    const tmpfiles = fs.readFileSync(path.join(dest, 'usr/lib/tmpfiles.d/virtgate.conf'), 'utf8');
    const madeBy = (p: string): string | null => {
      if (fs.existsSync(path.join(dest, p))) return 'installed';
      if (['/usr/bin/node', '/bin/sh', '/bin/kill'].includes(p) && fs.existsSync(p)) return 'host';
      if (directive(all, 'ListenStream').includes(p)) return 'socket unit';
      const rt = /^\/run\/([^/]+)/.exec(p);
      if (rt && (directive(all, 'RuntimeDirectory').includes(rt[1]) || new RegExp(`^d /run/${rt[1]} `, 'm').test(tmpfiles))) return 'RuntimeDirectory/tmpfiles';
      const st = /^\/var\/lib\/([^/]+)$/.exec(p);
      if (st && directive(all, 'StateDirectory').includes(st[1])) return 'StateDirectory';
      return null;
    };
    const table = [...paths].sort().map((p) => [p, madeBy(p)]);
    expect(table.filter(([, how]) => how === null)).toEqual([]);
    // The code and config are really in the tree (not merely "somewhere"): the ExecStart scripts and --config.
    expect(table).toEqual(
      expect.arrayContaining([
        ['/usr/lib/virtgate/bin/virtgated.js', 'installed'],
        ['/usr/lib/virtgate/bin/virtgate-helper.js', 'installed'],
        ['/etc/virtgate/virtgate.conf', 'installed'],
        ['/etc/virtgate', 'installed'],
        ['/run/virtgate/virtgate-sock', 'socket unit'],
        ['/run/virtgate-helper/helper-sock', 'RuntimeDirectory/tmpfiles'],
        ['/var/lib/virtgate-helper', 'StateDirectory'],
      ]),
    );
  });

  test('the staged sysusers and tmpfiles files create the users and runtime directories', () => {
    const etc = path.join(dest, 'etc');
    for (const f of ['passwd', 'group']) if (!fs.existsSync(path.join(etc, f))) fs.writeFileSync(path.join(etc, f), '');
    execFileSync('systemd-sysusers', [`--root=${dest}`, path.join(dest, 'usr/lib/sysusers.d/virtgate.conf')], { stdio: 'pipe' });
    execFileSync('systemd-tmpfiles', [`--root=${dest}`, '--create', path.join(dest, 'usr/lib/tmpfiles.d/virtgate.conf')], { stdio: 'pipe' });
    const gid = (name: string): number => Number(new RegExp(`^${name}:x:(\\d+):`, 'm').exec(fs.readFileSync(path.join(etc, 'group'), 'utf8'))![1]);
    expect(fs.readFileSync(path.join(etc, 'passwd'), 'utf8')).toMatch(/^virtgate:x:\d+:\d+:virtgate front end:\/var\/lib\/virtgate:\/usr\/sbin\/nologin$/m);
    expect(gid('virtgate-users')).toBeGreaterThan(0);
    const run = fs.statSync(path.join(dest, 'run/virtgate'));
    const helper = fs.statSync(path.join(dest, 'run/virtgate-helper'));
    expect([run.mode & 0o777, run.uid, run.gid]).toEqual([0o755, 0, 0]);
    expect([helper.mode & 0o777, helper.uid, helper.gid]).toEqual([0o750, 0, gid('virtgate')]);
  });

  test('the installed tree runs by itself: --help of each binary, and a socket-activated front end answering virsh', async () => {
    const prefix = path.join(dest, 'usr/lib/virtgate');
    const cwd = os.tmpdir(); // not the checkout: nothing may resolve from the source tree's node_modules
    for (const [bin, re] of [
      ['virtgate.js', /^usage: virtgate /],
      ['virtgated.js', /^usage: virtgated /],
    ] as const) {
      const r = spawnSync(process.execPath, [path.join(prefix, 'bin', bin), '--help'], { cwd, encoding: 'utf8' });
      expect(r.stdout).toMatch(re);
      expect(r.status).toBe(0);
    }
    const home = path.join(scratch, 'home');
    fs.mkdirSync(path.join(home, 'run'), { recursive: true });
    const helper = spawn(
      process.execPath,
      [path.join(prefix, 'bin/virtgate-helper.js'), '--socket', path.join(home, 'run/helper-sock'), '--state-dir', path.join(home, 'helper')],
      {
        cwd,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const sock = path.join(home, 'run/virtgate-sock');
    const act = spawn(
      'systemd-socket-activate',
      ['-l', sock, '-l', `${sock}-ro`, '--fdname=virtgate-sock:virtgate-sock-ro', process.execPath, path.join(prefix, 'bin/virtgated.js'), '--home', home],
      { cwd, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    for (const p of [helper, act]) for (const s of [p.stdout!, p.stderr!]) s.setEncoding('utf8').on('data', (t: string) => (out += t));
    try {
      for (let i = 0; i < 200 && !(/Listening on .*virtgate-sock-ro/.test(out) && /helper: listening on/.test(out)); i++)
        await new Promise((r) => setTimeout(r, 50));
      const list = await run('virsh', ['-c', `test+unix:///default?socket=${sock}`, 'list', '--all', '--name'], { timeout: 30000 });
      expect(list.stdout).toMatch(/^test$/m);
      expect(out).toMatch(/listening on unix .*virtgate-sock \(fd 3 from systemd\)/);
      expect(out).not.toMatch(/Cannot find module/);
    } finally {
      for (const p of [act, helper]) {
        if (p.exitCode === null) {
          const gone = new Promise((r) => p.once('exit', r));
          p.kill('SIGTERM');
          await gone;
        }
      }
    }
  });

  test('a second install keeps an operator-edited config and replaces the code', () => {
    const conf = path.join(dest, 'etc/virtgate/virtgate.conf');
    fs.writeFileSync(conf, 'tls = ""\n');
    const stray = path.join(dest, 'usr/lib/virtgate/build/src/stale.js');
    fs.writeFileSync(stray, '');
    const r = install('--destdir', dest);
    expect(r.rc).toBe(0);
    expect(r.out).toMatch(
      new RegExp(`^note: kept the existing ${conf} \\(not overwritten\\); the shipped default is /usr/lib/virtgate/etc/virtgate.conf$`, 'm'),
    );
    expect(fs.readFileSync(conf, 'utf8')).toBe('tls = ""\n');
    expect(fs.existsSync(stray)).toBe(false);
  });

  test('--prefix moves the code and the units follow it; verify still passes', () => {
    const r = install('--destdir', dest, '--prefix', '/opt/virtgate');
    expect(r.rc).toBe(0);
    expect(fs.existsSync(path.join(dest, 'opt/virtgate/bin/virtgated.js'))).toBe(true);
    const exec = directive(unitText(dest, 'virtgated.service'), 'ExecStart')[0];
    expect(exec.startsWith('/usr/bin/node /opt/virtgate/bin/virtgated.js ')).toBe(true);
    expect(directive(unitText(dest, 'virtgate-helper.service'), 'ExecStart')[0]).toContain('/usr/bin/node --jitless /opt/virtgate/bin/virtgate-helper.js ');
    expect(unitText(dest, 'virtgated.service')).not.toMatch(/\/usr\/lib\/virtgate\//);
    const v = spawnSync('systemd-analyze', ['verify', '--man=no', `--root=${dest}`, ...UNITS], { encoding: 'utf8' });
    expect(v.stderr).toBe('');
  });

  test('refusals: a prefix that is not a virtgate tree, a relative prefix, a stray argument', () => {
    const foreign = path.join(dest, 'opt/other');
    fs.mkdirSync(path.join(foreign, 'build'), { recursive: true });
    const r = install('--destdir', dest, '--prefix', '/opt/other');
    expect([r.rc, r.err]).toEqual([1, `error: ${foreign} holds build but no .virtgate-install: not a virtgate install, refusing to replace it\n`]);
    expect(fs.existsSync(path.join(foreign, 'build'))).toBe(true);
    expect(install('--destdir', dest, '--prefix', 'rel').err).toMatch(/--prefix must be an absolute directory other than \/, not 'rel'/);
    const extra = install('now');
    expect([extra.rc, extra.err.split('\n')[0]]).toEqual([2, "error: install takes no arguments, got 'now'"]);
  });

  // This host has no SELinux, so the module step is forced on here: it must build the module from selinux/ with the
  // file contexts moved to the prefix, and stage it (no semodule under --destdir).
  const haveSelinuxTools = fs.existsSync('/usr/share/selinux/devel/Makefile') && spawnSync('sh', ['-c', 'command -v semodule_unpackage']).status === 0;
  if (!haveSelinuxTools) process.stdout.write('SKIP install SELinux step: needs selinux-policy-dev and semodule-utils\n');
  (haveSelinuxTools || process.env.CI === 'true' ? test : test.skip)('the SELinux step builds the module for the prefix and stages it', () => {
    const stage = path.join(scratch, 'selinux-root');
    const plan = planInstall({ source: ROOT, prefix: '/opt/vg', destdir: stage, node: '/usr/bin/node', dryRun: false, selinux: true });
    const step = plan.steps.filter((s) => s.say.startsWith('make -f /usr/share/selinux/devel/Makefile'));
    expect(step).toHaveLength(1);
    expect(step[0].say).not.toMatch(/semodule -i/); // staged only
    step[0].run();
    const pp = path.join(stage, 'usr/share/selinux/packages/virtgate/virtgate.pp');
    execFileSync('semodule_unpackage', [pp, path.join(scratch, 'm.mod'), path.join(scratch, 'm.fc')]);
    const fc = fs.readFileSync(path.join(scratch, 'm.fc'), 'utf8');
    expect(fc).toMatch(/^\/opt\/vg\/bin\/virtgated\(\\\.js\)\?\s+--\s+system_u:object_r:virtgate_front_exec_t:s0$/m);
    expect(fc).not.toMatch(/\/usr\/lib\/virtgate\//);
    expect(fc).toMatch(/^\/var\/lib\/virtgate-helper\(\/\.\*\)\?\s+system_u:object_r:virtgate_helper_var_lib_t:s0$/m);
  });
});
