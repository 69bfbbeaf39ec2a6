// SPDX-License-Identifier: Apache-2.0
// Local account names for peer uids (SO_PEERCRED); read from /etc/passwd, refreshed when it changes.
// The policy knows the peer as `unix:NAME`: a name that is not a valid user name (NAME_RULE), or is all digits (it
// could pass for another account's uid), is replaced by the numeric uid, so no name ever stands for two accounts.
import fs from 'node:fs';
import { isUserName } from '../common/names';

let cache: { file: string; mtimeMs: number; byUid: Map<number, string> } | null = null;

export function userNameForUid(uid: number, passwdPath = '/etc/passwd'): string {
  let mtimeMs = -1;
  try {
    mtimeMs = fs.statSync(passwdPath).mtimeMs;
  } catch {
    // No passwd file (minimal containers): fall back to the numeric form below.
  }
  if (!cache || cache.file !== passwdPath || cache.mtimeMs !== mtimeMs) {
    const byUid = new Map<number, string>();
    if (mtimeMs >= 0) {
      for (const line of fs.readFileSync(passwdPath, 'utf8').split('\n')) {
        const f = line.split(':');
        if (f.length >= 3 && /^\d+$/.test(f[2]) && !byUid.has(Number(f[2]))) byUid.set(Number(f[2]), f[0]);
      }
    }
    cache = { file: passwdPath, mtimeMs, byUid };
  }
  const name = cache.byUid.get(uid);
  return name !== undefined && isUserName(name) && !/^\d+$/.test(name) ? name : String(uid);
}
