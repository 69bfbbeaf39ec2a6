// SPDX-License-Identifier: Apache-2.0
// `virtgate install`: lays the built tree, its production node_modules, the systemd units, sysusers/tmpfiles files, the
// default config (never over an existing one) and, where the host runs SELinux, the policy module onto a host or DESTDIR.
// Everything is planned first (reading only), then either printed (--dry-run) or done, so a dry run writes nothing.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AdminIo } from './admin';
import { parseAdminArgs } from './admin-args';

export const DEFAULT_PREFIX = '/usr/lib/virtgate';
const DEFAULT_NODE = '/usr/bin/node';
const UNIT_DIR = '/usr/lib/systemd/system';
const MARKER = '.virtgate-install'; // in PREFIX: only a tree carrying it is ever replaced

const USAGE = `usage: virtgate install [--prefix DIR] [--destdir DIR] [--node PATH] [--dry-run]
  --prefix DIR   where the code goes on the target host (default ${DEFAULT_PREFIX}); the units' ExecStart follow it
  --destdir DIR  stage everything under DIR instead of / (packaging, or a scratch tree); nothing is registered then
  --node PATH    the node binary the units run (default ${DEFAULT_NODE})
  --dry-run      print what would be done and write nothing
  Installs: PREFIX/{build,bin,node_modules,package.json}, ${UNIT_DIR}/virtgate*.{service,socket},
  /usr/lib/sysusers.d/virtgate.conf, /usr/lib/tmpfiles.d/virtgate.conf, /etc/virtgate/virtgate.conf (kept if present),
  and the SELinux module where SELinux is enabled. Run \`npm run build\` first.`;

type Step = { say: string; run: () => void };

export interface InstallOptions {
  source: string; // the built checkout: package.json, package-lock.json, build/, bin/, systemd/, etc/, selinux/
  prefix: string;
  destdir: string; // '' = the live host
  node: string;
  dryRun: boolean;
  selinux?: boolean; // default: detected (/sys/fs/selinux/enforce); a test forces it off
}

export class InstallError extends Error {}

// The production closure from package-lock.json (v2/v3 "packages"): every installed package not marked dev or
// devOptional. Optional platform packages (koffi's) are taken only when present on disk.
export function productionPackages(source: string): string[] {
  const lockFile = path.join(source, 'package-lock.json');
  if (!fs.existsSync(lockFile)) throw new InstallError(`${lockFile} missing: the production dependency set comes from it`);
  const lock = JSON.parse(fs.readFileSync(lockFile, 'utf8')) as { packages?: Record<string, { dev?: boolean; devOptional?: boolean; link?: boolean }> };
  if (!lock.packages) throw new InstallError(`${lockFile}: no "packages" map (lockfileVersion 2 or 3 needed; run npm install with npm >= 7)`);
  const out: string[] = [];
  for (const [rel, p] of Object.entries(lock.packages)) {
    if (!rel.startsWith('node_modules/') || p.dev || p.devOptional) continue;
    if (p.link) throw new InstallError(`${rel} is a linked package; install from a plain \`npm ci\` tree`);
    if (fs.existsSync(path.join(source, rel, 'package.json'))) out.push(rel);
    else if (!(p as { optional?: boolean }).optional) throw new InstallError(`${rel} is a production dependency but not installed: run npm ci`);
  }
  return out.sort();
}

// A unit's text for this prefix and node: only Exec* lines name the code, so only they are rewritten.
export function rewriteUnit(text: string, prefix: string, node: string): string {
  return text
    .split('\n')
    .map((l) => (/^Exec[A-Za-z]*=/.test(l) ? l.split(`${DEFAULT_PREFIX}/`).join(`${prefix}/`).split(`${DEFAULT_NODE} `).join(`${node} `) : l))
    .join('\n');
}

export function selinuxEnabled(): boolean {
  if (fs.existsSync('/sys/fs/selinux/enforce')) return true;
  try {
    execFileSync('selinuxenabled', { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function planInstall(o: InstallOptions): { steps: Step[]; notes: string[] } {
  const src = o.source;
  if (!fs.existsSync(path.join(src, 'systemd')) || !fs.existsSync(path.join(src, 'package-lock.json'))) {
    throw new InstallError(`${src} is not a virtgate checkout (no systemd/ or package-lock.json): run install from the built source tree`);
  }
  for (const need of ['build/src/cli/main.js', 'build/src/unprivileged/main.js', 'build/src/privileged/main.js']) {
    if (!fs.existsSync(path.join(src, need))) throw new InstallError(`${path.join(src, need)} missing: run \`npm run build\` first`);
  }
  if (!path.isAbsolute(o.prefix) || path.resolve(o.prefix) === '/')
    throw new InstallError(`--prefix must be an absolute directory other than /, not '${o.prefix}'`);
  if (!path.isAbsolute(o.node)) throw new InstallError(`--node must be an absolute path, not '${o.node}'`);
  const prefix = path.resolve(o.prefix);
  const root = o.destdir ? path.resolve(o.destdir) : '/';
  const at = (p: string): string => path.join(root, p);
  const steps: Step[] = [];
  const notes: string[] = [];
  const mkdir = (d: string, mode = 0o755): void => void fs.mkdirSync(d, { recursive: true, mode });
  const put = (from: string, to: string, mode: number, text?: string): void => {
    steps.push({
      say: `install -m ${mode.toString(8).padStart(4, '0')} ${from} ${to}`,
      run: () => {
        mkdir(path.dirname(to));
        if (text === undefined) fs.copyFileSync(from, to);
        else fs.writeFileSync(to, text);
        fs.chmodSync(to, mode);
      },
    });
  };
  const tree = (from: string, to: string, skip: (rel: string) => boolean = () => false): void => {
    steps.push({
      say: `cp -r ${from} ${to}`,
      run: () => fs.cpSync(from, to, { recursive: true, verbatimSymlinks: true, filter: (s) => !skip(path.relative(from, s)) }),
    });
  };

  // 1. The code: a fresh copy each time (no stale modules), but only over a tree this command made.
  const dest = at(prefix);
  const ours = fs.existsSync(path.join(dest, MARKER));
  const stale = ['build', 'bin', 'node_modules'].filter((d) => fs.existsSync(path.join(dest, d)));
  if (stale.length && !ours) throw new InstallError(`${dest} holds ${stale.join(', ')} but no ${MARKER}: not a virtgate install, refusing to replace it`);
  for (const d of stale) steps.push({ say: `rm -r ${path.join(dest, d)}`, run: () => fs.rmSync(path.join(dest, d), { recursive: true, force: true }) });
  tree(path.join(src, 'build', 'src'), path.join(dest, 'build', 'src'));
  for (const b of fs.readdirSync(path.join(src, 'bin')).filter((f) => f.endsWith('.js'))) put(path.join(src, 'bin', b), path.join(dest, 'bin', b), 0o755);
  const pkg = JSON.parse(fs.readFileSync(path.join(src, 'package.json'), 'utf8')) as Record<string, unknown>;
  const slim = {
    name: pkg.name,
    version: pkg.version,
    description: pkg.description,
    license: pkg.license,
    private: true,
    bin: pkg.bin,
    dependencies: pkg.dependencies,
  };
  const slimText = `${JSON.stringify(slim, null, 2)}\n`;
  put(path.join(src, 'package.json'), path.join(dest, 'package.json'), 0o644, slimText);
  // build/src/common/version.js reads ../../package.json, i.e. build/package.json (where tsc puts its copy).
  put(path.join(src, 'package.json'), path.join(dest, 'build', 'package.json'), 0o644, slimText);
  // 2. Production dependencies only, each package without its nested node_modules (those are listed on their own).
  const mods = productionPackages(src);
  for (const rel of mods) tree(path.join(src, rel), path.join(dest, rel), (r) => r === 'node_modules' || r.startsWith(`node_modules${path.sep}`));
  put(path.join(src, 'etc', 'virtgate.conf'), path.join(dest, 'etc', 'virtgate.conf'), 0o644);
  steps.push({ say: `touch ${path.join(dest, MARKER)}`, run: () => fs.writeFileSync(path.join(dest, MARKER), `virtgate ${String(pkg.version)}\n`) });

  // 3. Units, sysusers, tmpfiles.
  const sd = path.join(src, 'systemd');
  for (const u of fs.readdirSync(sd).filter((f) => /\.(service|socket)$/.test(f))) {
    put(path.join(sd, u), at(path.join(UNIT_DIR, u)), 0o644, rewriteUnit(fs.readFileSync(path.join(sd, u), 'utf8'), prefix, o.node));
  }
  put(path.join(sd, 'virtgate.sysusers.conf'), at('/usr/lib/sysusers.d/virtgate.conf'), 0o644);
  put(path.join(sd, 'virtgate.tmpfiles.conf'), at('/usr/lib/tmpfiles.d/virtgate.conf'), 0o644);

  // 4. The config: an operator's file is never replaced; the shipped one stays next to the code for comparison.
  const conf = at('/etc/virtgate/virtgate.conf');
  if (fs.existsSync(conf)) notes.push(`kept the existing ${conf} (not overwritten); the shipped default is ${path.join(prefix, 'etc', 'virtgate.conf')}`);
  else put(path.join(src, 'etc', 'virtgate.conf'), conf, 0o644);

  // 5. SELinux: only where the host enforces or runs it; the module is built from selinux/ with this prefix's paths.
  if (!(o.selinux ?? selinuxEnabled()))
    notes.push('SELinux is not enabled on this host (no /sys/fs/selinux/enforce, selinuxenabled false): policy module skipped');
  else {
    const pp = at('/usr/share/selinux/packages/virtgate/virtgate.pp');
    steps.push({
      say: `make -f /usr/share/selinux/devel/Makefile virtgate.pp (from ${path.join(src, 'selinux')}) && install ${pp}${o.destdir ? '' : ' && semodule -i && restorecon'}`,
      run: () => {
        const work = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgate-selinux-'));
        try {
          for (const f of ['virtgate.te', 'virtgate.if']) fs.copyFileSync(path.join(src, 'selinux', f), path.join(work, f));
          const fc = fs.readFileSync(path.join(src, 'selinux', 'virtgate.fc'), 'utf8');
          fs.writeFileSync(path.join(work, 'virtgate.fc'), fc.split(`${DEFAULT_PREFIX}/`).join(`${prefix}/`));
          execFileSync('make', ['-s', '-f', '/usr/share/selinux/devel/Makefile', 'virtgate.pp'], { cwd: work, stdio: 'inherit' });
          mkdir(path.dirname(pp));
          fs.copyFileSync(path.join(work, 'virtgate.pp'), pp);
        } finally {
          fs.rmSync(work, { recursive: true, force: true });
        }
        if (!o.destdir) {
          execFileSync('semodule', ['-i', pp], { stdio: 'inherit' });
          execFileSync('restorecon', ['-R', prefix, '/etc/virtgate'], { stdio: 'inherit' });
        }
      },
    });
  }

  // 6. On the live host: create the user and directories now and tell systemd; staged trees get the commands instead.
  if (!o.destdir) {
    steps.push({
      say: 'systemd-sysusers virtgate.conf',
      run: () => execFileSync('systemd-sysusers', ['/usr/lib/sysusers.d/virtgate.conf'], { stdio: 'inherit' }),
    });
    steps.push({
      say: 'systemd-tmpfiles --create virtgate.conf',
      run: () => execFileSync('systemd-tmpfiles', ['--create', '/usr/lib/tmpfiles.d/virtgate.conf'], { stdio: 'inherit' }),
    });
    if (fs.existsSync('/run/systemd/system'))
      steps.push({ say: 'systemctl daemon-reload', run: () => execFileSync('systemctl', ['daemon-reload'], { stdio: 'inherit' }) });
    else notes.push('systemd is not running here (no /run/systemd/system): no daemon-reload');
    if (!fs.existsSync(o.node)) notes.push(`${o.node} does not exist on this host: the units will not start (--node PATH)`);
  } else {
    notes.push(`staged under ${root}; on the target run: systemd-sysusers; systemd-tmpfiles --create; systemctl daemon-reload`);
  }
  notes.push('then: TLS key readable by the front end (chgrp virtgate /etc/pki/libvirt/private/serverkey.pem; chmod 0640 it)');
  notes.push('then: systemctl enable --now virtgated.service (its sockets come with it; local users: usermod -aG virtgate-users NAME)');
  return { steps, notes };
}

export function installMain(argv: string[], io: AdminIo): number {
  const parsed = parseAdminArgs(
    argv,
    { prefix: { type: 'string' }, destdir: { type: 'string' }, node: { type: 'string' }, 'dry-run': { type: 'boolean' } } as const,
    USAGE,
    io,
  );
  if (typeof parsed === 'number') return parsed;
  if (parsed.positionals.length) {
    io.stderr(`error: install takes no arguments, got '${parsed.positionals[0]}'\n${USAGE}\n`);
    return 2;
  }
  const v = parsed.values;
  const opts: InstallOptions = {
    source: path.resolve(__dirname, '..', '..', '..'),
    prefix: v.prefix ?? DEFAULT_PREFIX,
    destdir: v.destdir ?? '',
    node: v.node ?? DEFAULT_NODE,
    dryRun: v['dry-run'] === true,
  };
  let plan;
  try {
    plan = planInstall(opts);
  } catch (e) {
    io.stderr(`error: ${(e as Error).message}\n`);
    return 1;
  }
  for (const s of plan.steps) {
    if (opts.dryRun) {
      io.stdout(`would: ${s.say}\n`);
      continue;
    }
    io.stdout(`${s.say}\n`);
    try {
      s.run();
    } catch (e) {
      io.stderr(`error: ${s.say}: ${(e as Error).message}\n`);
      return 1;
    }
  }
  for (const n of plan.notes) io.stdout(`note: ${n}\n`);
  if (opts.dryRun) io.stdout(`dry run: ${plan.steps.length} step(s), nothing written\n`);
  return 0;
}
