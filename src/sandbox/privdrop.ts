// SPDX-License-Identifier: Apache-2.0
// Root -> service user: bounding set, supplementary groups, gid, uid, in that order, then proof it stuck (sandbox boundary).
import * as fs from 'node:fs';
import { VG_ERR_SANDBOX_CONFIG, VG_ERR_SANDBOX_PRIVDROP } from '../common/errors';
import { PR, prctl } from './libc';

export interface PrivDropOptions {
  user: string | number; // name (looked up in /etc/passwd) or uid; never 0
  group?: string | number; // default: the user's primary group
  groups?: ReadonlyArray<string | number>; // supplementary groups after the drop; default none
  clearBoundingSet?: boolean; // default true: needs CAP_SETPCAP, so only possible before setuid (koffi prctl)
}

export interface PrivDropReport {
  uid: number;
  gid: number;
  groups: number[];
  boundingSetCleared: boolean;
  capEff: string | null; // hex from /proc/self/status, null when unreadable
  threads: number | null; // threads whose four Uid and Gid slots all match
  regainRefused: boolean; // setuid(0) failed with EPERM
}

// Node has getuid but no getpwnam/getgrnam: read the two files, as `id` would with files-only NSS.
function lookup(file: string, name: string): string[] | null {
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === name) return f;
  }
  return null;
}

function toId(v: string | number, file: '/etc/passwd' | '/etc/group', what: string): number {
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 0 || v > 0xfffffffe) throw VG_ERR_SANDBOX_CONFIG(what, `not a valid id: ${v}`);
    return v;
  }
  if (/^[0-9]+$/.test(v)) return toId(Number(v), file, what);
  const f = lookup(file, v);
  if (!f) throw VG_ERR_SANDBOX_CONFIG(what, `no such ${file === '/etc/passwd' ? 'user' : 'group'}: ${v}`);
  return Number(f[2]);
}

export function resolveIds(o: PrivDropOptions): { uid: number; gid: number; groups: number[] } {
  const uid = toId(o.user, '/etc/passwd', 'user');
  if (uid === 0) throw VG_ERR_SANDBOX_CONFIG('user', 'dropping to uid 0 drops nothing');
  let gid: number;
  if (o.group !== undefined) gid = toId(o.group, '/etc/group', 'group');
  else if (typeof o.user === 'string' && !/^[0-9]+$/.test(o.user)) gid = Number(lookup('/etc/passwd', o.user)![3]);
  else gid = uid; // a bare uid with no group: use the same number, as 65534/65534 (nobody/nogroup)
  if (gid === 0) throw VG_ERR_SANDBOX_CONFIG('group', 'gid 0 keeps root-group file access');
  const groups = [...new Set((o.groups ?? []).map((g) => toId(g, '/etc/group', 'groups')))];
  if (groups.includes(0)) throw VG_ERR_SANDBOX_CONFIG('groups', 'supplementary group 0 keeps root-group file access');
  return { uid, gid, groups };
}

function statusField(text: string, key: string): string | null {
  const m = new RegExp(`^${key}:\\s+(.*)$`, 'm').exec(text);
  return m ? m[1].trim() : null;
}

// Per-thread check: glibc's setxid broadcast should have moved every thread (libuv pool, V8 platform threads).
function threadsMatching(uid: number, gid: number): number | null {
  try {
    const want = (line: string | null, id: number): boolean => line !== null && line.split(/\s+/).every((x) => Number(x) === id);
    let n = 0;
    for (const t of fs.readdirSync('/proc/self/task')) {
      const s = fs.readFileSync(`/proc/self/task/${t}/status`, 'utf8');
      if (!want(statusField(s, 'Uid'), uid) || !want(statusField(s, 'Gid'), gid))
        throw VG_ERR_SANDBOX_PRIVDROP(`thread ${t} kept ids ${statusField(s, 'Uid')} / ${statusField(s, 'Gid')}`);
      n++;
    }
    return n;
  } catch (e) {
    if ((e as { code?: string }).code === 'VG_ERR_SANDBOX_PRIVDROP') throw e;
    return null; // /proc not readable (permission model): the process-level checks below still hold
  }
}

// Must run on the main thread before any Worker: Node does not offer setuid() in workers.
export function dropPrivileges(o: PrivDropOptions): PrivDropReport {
  const { uid, gid, groups } = resolveIds(o);
  if (!process.setuid || !process.setgid || !process.setgroups)
    throw VG_ERR_SANDBOX_PRIVDROP('process.setuid/setgroups unavailable (not POSIX, or in a Worker)');
  if (process.geteuid!() !== 0) throw VG_ERR_SANDBOX_PRIVDROP(`not root (euid ${process.geteuid!()}); nothing to drop`);

  // The bounding set survives setuid; only a process still holding CAP_SETPCAP can empty it. Ambient caps too.
  let boundingSetCleared = false;
  if (o.clearBoundingSet !== false) {
    const last = Number(fs.readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8'));
    for (let cap = 0; cap <= last; cap++) {
      if (prctl(PR.CAPBSET_DROP, cap) !== 0) throw VG_ERR_SANDBOX_PRIVDROP(`PR_CAPBSET_DROP ${cap} failed`);
    }
    if (prctl(PR.CAP_AMBIENT, PR.CAP_AMBIENT_CLEAR_ALL) !== 0) throw VG_ERR_SANDBOX_PRIVDROP('PR_CAP_AMBIENT_CLEAR_ALL failed');
    boundingSetCleared = true;
  }
  // Order matters: groups and gid need root, so they go before setuid; the reverse would leave root's groups.
  try {
    process.setgroups(groups);
    process.setgid(gid);
    process.setuid(uid);
  } catch (e) {
    throw VG_ERR_SANDBOX_PRIVDROP(`set ids to ${uid}:${gid}: ${(e as Error).message}`);
  }

  if (process.getuid!() !== uid || process.geteuid!() !== uid)
    throw VG_ERR_SANDBOX_PRIVDROP(`uid is ${process.getuid!()}/${process.geteuid!()}, wanted ${uid}`);
  if (process.getgid!() !== gid || process.getegid!() !== gid)
    throw VG_ERR_SANDBOX_PRIVDROP(`gid is ${process.getgid!()}/${process.getegid!()}, wanted ${gid}`);
  // Node adds the egid to getgroups(); anything else must be what we asked for.
  const extra = process.getgroups!().filter((g) => g !== gid && !groups.includes(g));
  if (extra.length) throw VG_ERR_SANDBOX_PRIVDROP(`supplementary groups kept: ${extra.join(',')}`);
  let regainRefused = false;
  try {
    process.setuid(0);
  } catch (e) {
    regainRefused = (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  if (!regainRefused) throw VG_ERR_SANDBOX_PRIVDROP('setuid(0) did not fail with EPERM: the drop is reversible');

  let capEff: string | null = null;
  try {
    capEff = statusField(fs.readFileSync('/proc/self/status', 'utf8'), 'CapEff');
  } catch {
    // unreadable under the permission model; the setuid(0) probe above is the stronger proof
  }
  if (capEff !== null && BigInt(`0x${capEff}`) !== 0n) throw VG_ERR_SANDBOX_PRIVDROP(`effective capabilities left: ${capEff}`);
  return { uid, gid, groups, boundingSetCleared, capEff, threads: threadsMatching(uid, gid), regainRefused };
}
