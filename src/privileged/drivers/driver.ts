// SPDX-License-Identifier: Apache-2.0
// The hypervisor driver contract behind the helper's op table (test now, qemu later); results are IPC value shapes.
import type { ErrorFactory } from '../../common/errors';
import type { DomainExtraDriver } from './domain-extra-driver';
import type { ControlActionCode, DomainInfo, DomainSnapshot, DomainSummary, LifecycleEvent, LookupKey, NodeFacts } from '../../ipc/program';

// A failure the front end shows to the user: `code` is a catalogue code, `detail` fills its %s exactly.
export class DriverError extends Error {
  readonly code: string;
  readonly detail: string;

  constructor(code: string, detail: string) {
    super(`${code}: ${detail}`);
    this.name = 'DriverError';
    this.code = code;
    this.detail = detail;
  }
}

export function driverError(factory: ErrorFactory, detail: string): DriverError {
  return new DriverError(factory.spec.code, detail);
}

export interface SetFlags {
  live: boolean;
  config: boolean;
  max: boolean;
}

export type LifecycleListener = (event: LifecycleEvent) => void;

// Every method is synchronous and either returns or throws DriverError; anything else is a helper bug.
export type ChangeListener = (change: { snapshot: DomainSnapshot } | { removed: Buffer }) => void;

export interface Driver {
  readonly name: string; // URI scheme: 'test' | 'qemu'
  readonly domainExtra?: DomainExtraDriver; // stats, pinning, tuning
  nodeFacts(): NodeFacts;
  list(): DomainSummary[];
  lookup(key: LookupKey): DomainSummary;
  info(uuid: Buffer): DomainInfo;
  xml(uuid: Buffer, inactive: boolean): string;
  define(xml: string, tenant: string): DomainSummary; // tenant: for a new VM; an existing one keeps its own
  createXml(xml: string, tenant: string): DomainSummary;
  setTenant(uuid: Buffer, tenant: string): DomainSummary;
  undefine(uuid: Buffer): void;
  control(uuid: Buffer, action: ControlActionCode): DomainSummary;
  setMemory(uuid: Buffer, memoryKiB: bigint, flags: SetFlags): void;
  setVcpus(uuid: Buffer, nvcpus: number, flags: SetFlags): void;
  onLifecycle(listener: LifecycleListener): () => void; // returns the unsubscribe function
  snapshots(): DomainSnapshot[]; // every domain's committed state, for a new subscriber's initial sync
  // Called after every committed change, before its lifecycle event: the new state, or the uuid of a removed domain.
  onChange(listener: ChangeListener): () => void;
  // Calls `done` once every change committed so far is on disk; a write's answer must not leave before. Drivers
  // that persist synchronously may omit it.
  whenDurable?(done: () => void): void;
  close(): void; // flush state; the driver is unusable afterwards
}
