// SPDX-License-Identifier: Apache-2.0
// systemd's socket-activation hand-over (sd_listen_fds(3)) read from an environment, without a package: pure, no I/O.
import { VG_ERR_CONFIG_INVALID } from './errors';

export const SD_LISTEN_FDS_START = 3;
export const LISTEN_ENV = ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES'] as const;

// The FileDescriptorName= each listener is known by in the shipped .socket units.
export const FD_NAMES = { rw: 'virtgate-sock', ro: 'virtgate-sock-ro', tls: 'virtgate-tls' } as const;
export type ListenerRole = keyof typeof FD_NAMES;
export type InheritedFds = Partial<Record<ListenerRole, number>>;

// The fds systemd passed, by role. Nothing is passed (an empty object) unless LISTEN_PID names this process, so a
// child that inherited the variables by mistake takes nothing. A name that matches no listener, or a role passed twice,
// is a unit/config mismatch: refused, not guessed at.
export function parseListenFds(env: Readonly<Record<string, string | undefined>>, pid: number): InheritedFds {
  const count = env.LISTEN_FDS;
  if (count === undefined || env.LISTEN_PID === undefined) return {};
  if (!/^[0-9]+$/.test(env.LISTEN_PID)) throw VG_ERR_CONFIG_INVALID('LISTEN_PID', `not a pid: '${env.LISTEN_PID}'`);
  if (Number(env.LISTEN_PID) !== pid) return {};
  if (!/^[0-9]{1,4}$/.test(count)) throw VG_ERR_CONFIG_INVALID('LISTEN_FDS', `not a count: '${count}'`);
  const n = Number(count);
  if (n === 0) return {};
  const names = env.LISTEN_FDNAMES === undefined ? [] : env.LISTEN_FDNAMES.split(':');
  if (names.length !== n) {
    throw VG_ERR_CONFIG_INVALID('LISTEN_FDNAMES', `${n} socket(s) passed but ${names.length} name(s); set FileDescriptorName= in each .socket unit`);
  }
  const byName = new Map<string, ListenerRole>(Object.entries(FD_NAMES).map(([role, name]) => [name, role as ListenerRole]));
  const out: InheritedFds = {};
  names.forEach((name, i) => {
    const role = byName.get(name);
    if (!role) throw VG_ERR_CONFIG_INVALID('LISTEN_FDNAMES', `socket '${name}' is none of ${Object.values(FD_NAMES).join(', ')}`);
    if (out[role] !== undefined) throw VG_ERR_CONFIG_INVALID('LISTEN_FDNAMES', `socket '${name}' passed twice`);
    out[role] = SD_LISTEN_FDS_START + i;
  });
  return out;
}
