// SPDX-License-Identifier: Apache-2.0
// virDomainOpenGraphicsFD (343) and virDomainOpenGraphics (249), pure. 343's reply is REPLY_WITH_FDS (type 5): the
// header, u32 nfds, the (empty) payload, then each descriptor with its own 1-byte sendmsg, so only over a unix socket.
// 249 arrives as CALL_WITH_FDS with the client's socket: refused (we take no descriptors from clients).
import { type RemoteDomain, XdrVoid, domainCodec, struct, uint } from '../types';
import { acl, defineProc } from './table';

export const VIR_DOMAIN_OPEN_GRAPHICS_SKIPAUTH = 1;

const args = struct<{ dom: RemoteDomain; idx: number; flags: number }>(['dom', domainCodec], ['idx', uint], ['flags', uint]);

export const GRAPHICS_PROCS = {
  DOMAIN_OPEN_GRAPHICS: defineProc({
    proc: 249,
    name: 'domainOpenGraphics',
    cls: 'read',
    refuseReadOnly: true,
    acl: acl('domain:open_graphics'),
    args,
    ret: XdrVoid,
  }),
  DOMAIN_OPEN_GRAPHICS_FD: defineProc({
    proc: 343,
    name: 'domainOpenGraphicsFd',
    cls: 'write', // hands out the VM's display: audited (intent, outcome) and journaled by the helper
    refuseReadOnly: true,
    acl: acl('domain:open_graphics'),
    args,
    ret: XdrVoid,
  }),
} as const;
