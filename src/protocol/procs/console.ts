// SPDX-License-Identifier: Apache-2.0
// virDomainOpenConsole (201), pure: the call's reply is empty, then the console's bytes flow both ways as stream
// packets with the call's procedure and serial. libvirt refuses it on read-only connections; we also audit it.
import { type RemoteDomain, XdrVoid, domainCodec, optString, struct, uint } from '../types';
import { acl, defineProc } from './table';

export const VIR_DOMAIN_CONSOLE_FORCE = 1;
export const VIR_DOMAIN_CONSOLE_SAFE = 2;

export const CONSOLE_PROCS = {
  DOMAIN_OPEN_CONSOLE: defineProc({
    proc: 201,
    name: 'domainOpenConsole',
    cls: 'write', // takes the guest's console (from another session too, with force): audited, refused read-only
    refuseReadOnly: true,
    stream: 'write',
    acl: acl('domain:open_device'),
    args: struct<{ dom: RemoteDomain; devName: string | null; flags: number }>(['dom', domainCodec], ['devName', optString('dev_name')], ['flags', uint]),
    ret: XdrVoid,
  }),
} as const;
