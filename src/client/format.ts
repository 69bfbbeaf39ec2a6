// SPDX-License-Identifier: Apache-2.0
// Display helpers over protocol values (UUIDs, states, lifecycle events) worded as virsh prints them, pure.

export { uuidFromString, uuidToString } from '../common/uuid';

// virDomainState order; virsh's wording.
const STATE_NAMES = ['no state', 'running', 'idle', 'paused', 'in shutdown', 'shut off', 'crashed', 'pmsuspended'] as const;

export function stateName(state: number): string {
  return STATE_NAMES[state] ?? 'unknown';
}

// virshDomainStateReasonToString, indexed by state then reason.
const REASONS: readonly (readonly string[])[] = [
  [],
  [
    'unknown',
    'booted',
    'migrated',
    'restored',
    'from snapshot',
    'unpaused',
    'migration canceled',
    'save canceled',
    'event wakeup',
    'crashed',
    'post-copy',
    'post-copy failed',
  ],
  [],
  [
    'unknown',
    'user',
    'migrating',
    'saving',
    'dumping',
    'I/O error',
    'watchdog',
    'from snapshot',
    'shutting down',
    'creating snapshot',
    'crashed',
    'starting up',
    'post-copy',
    'post-copy failed',
    'api error',
  ],
  ['unknown', 'user'],
  ['unknown', 'shutdown', 'destroyed', 'crashed', 'migrated', 'saved', 'failed', 'from snapshot', 'daemon'],
  ['unknown', 'panicked'],
  ['unknown'],
];

export function stateReasonName(state: number, reason: number): string {
  return REASONS[state]?.[reason] ?? 'unknown';
}

// virshDomainEventToString / virshDomainEventDetailToString.
const EVENTS = ['Defined', 'Undefined', 'Started', 'Suspended', 'Resumed', 'Stopped', 'Shutdown', 'PMSuspended', 'Crashed'] as const;
const DETAILS: readonly (readonly string[])[] = [
  ['Added', 'Updated', 'Renamed', 'Snapshot'],
  ['Removed', 'Renamed'],
  ['Booted', 'Migrated', 'Restored', 'Snapshot', 'Event wakeup'],
  ['Paused', 'Migrated', 'I/O Error', 'Watchdog', 'Restored', 'Snapshot', 'API error', 'Post-copy', 'Post-copy Error'],
  ['Unpaused', 'Migrated', 'Snapshot', 'Post-copy', 'Post-copy Error'],
  ['Shutdown', 'Destroyed', 'Crashed', 'Migrated', 'Saved', 'Failed', 'Snapshot'],
  ['Finished', 'Finished after guest request', 'Finished after host request'],
  ['Memory', 'Disk'],
  ['Panicked', 'Crashloaded'],
];

export function lifecycleEventName(event: number): string {
  return EVENTS[event] ?? 'unknown';
}

export function lifecycleDetailName(event: number, detail: number): string {
  return DETAILS[event]?.[detail] ?? 'unknown';
}

// libvirt packs versions as major * 1e6 + minor * 1e3 + micro.
export function versionString(v: bigint | number): string {
  const n = BigInt(v);
  return `${n / 1000000n}.${(n / 1000n) % 1000n}.${n % 1000n}`;
}
