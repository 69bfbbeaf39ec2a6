// SPDX-License-Identifier: Apache-2.0
// virDomainState (libvirt-domain.h): one definition for the wire protocol, the helper's IPC and its drivers. Pure.

export const DomainState = {
  NOSTATE: 0,
  RUNNING: 1,
  BLOCKED: 2,
  PAUSED: 3,
  SHUTDOWN: 4,
  SHUTOFF: 5,
  CRASHED: 6,
  PMSUSPENDED: 7,
} as const;
export type DomainStateCode = (typeof DomainState)[keyof typeof DomainState];
