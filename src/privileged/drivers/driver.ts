// SPDX-License-Identifier: Apache-2.0
// The hypervisor driver contract behind the helper's op table (test now, qemu later); results are IPC value shapes.
import type { StoragePoolDriver } from './storage-driver';
import type { ErrorFactory } from '../../common/errors';
import type { DomainExtraDriver } from './domain-extra-driver';
import type { HostFactsDriver, InterfaceDriver, NodeDeviceDriver } from './host-objects-driver';
import type { NetworkDriver } from './network-driver';
import type { SnapshotDriver } from './test-snapshots';
import type { DomainDef } from '../../ipc/objects/domain-def';
import type { DomainCapsQuery } from '../../ipc/objects/host-objects';
import type { ControlActionCode, DomainInfo, DomainSnapshot, DomainSummary, LifecycleEvent, LookupKey, NodeFacts, ObjectEvent } from '../../ipc/program';

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

export type ChangeListener = (change: { snapshot: DomainSnapshot } | { removed: Buffer }) => void;
export type ObjectEventListener = (event: ObjectEvent) => void;

// Hypervisor calls are async: a real one (QMP, qemu-img) takes time and the helper serves other requests meanwhile.
// Each resolves or rejects with DriverError; anything else is a helper bug. Writes to one object never overlap (the
// IPC server's job queue, libvirt's BeginJob); reads do not wait for writes. Events and the state stream stay
// synchronous, emitted at commit, so a change's snapshot always precedes the answer of the write that made it.
// A method may answer at once (the test driver) or later (a real hypervisor); the IPC server awaits either.
export type Async<T> = T | Promise<T>;

// Save and restore to a client-named file; tenant: the session's ('' = host admin), for the path and image rules.
export interface SaveDriver {
  saveTo(uuid: Buffer, path: string, tenant: string): Async<void>;
  restoreFrom(path: string, tenant: string): Async<DomainSummary>;
  saveImageRead(path: string, tenant: string): Async<DomainDef>;
  saveImageDefine(path: string, def: DomainDef, tenant: string): Async<void>;
  coreDump(uuid: Buffer, path: string, crash: boolean, tenant: string): Async<void>;
}

export interface Driver {
  readonly name: string; // URI scheme: 'test' | 'qemu'
  readonly saves?: SaveDriver;
  readonly domainExtra?: DomainExtraDriver; // stats, pinning, tuning, metadata, autostart, managed save, rename
  nodeFacts(): Async<NodeFacts>;
  list(): Async<DomainSummary[]>;
  lookup(key: LookupKey): Async<DomainSummary>;
  info(uuid: Buffer): Async<DomainInfo>;
  // Definitions are typed (ipc/objects/domain-def.ts): the front end parses and formats the XML.
  xml(uuid: Buffer, inactive: boolean): Async<{ def: DomainDef; id: number | null }>;
  define(def: DomainDef, tenant: string): Async<DomainSummary>; // tenant: for a new VM; an existing one keeps its own
  createXml(def: DomainDef, tenant: string): Async<DomainSummary>;
  setTenant(uuid: Buffer, tenant: string): Async<DomainSummary>;
  undefine(uuid: Buffer, removeManagedSave?: boolean, removeSnapshots?: boolean): Async<void>;
  control(uuid: Buffer, action: ControlActionCode): Async<DomainSummary>;
  setMemory(uuid: Buffer, memoryKiB: bigint, flags: SetFlags): Async<void>;
  setVcpus(uuid: Buffer, nvcpus: number, flags: SetFlags): Async<void>;
  // The guest's screen as an image (absent: the driver cannot take one).
  screenshot?(uuid: Buffer, screen: number): Async<{ mime: string; data: Buffer }>;
  // A connected descriptor to the guest's console (absent: no consoles); consoleClosed: its holder let go of it.
  openConsole?(uuid: Buffer, devName: string | null): Async<number>;
  consoleClosed?(uuid: Buffer): void;
  // A connected socket to the VM's VNC server (graphics idx), the screen as a sealed memfd, keys typed (absent: none).
  openGraphics?(uuid: Buffer, idx: number): Async<number>;
  screenshotFd?(uuid: Buffer, screen: number): Async<{ mime: string; fd: number }>;
  sendKeys?(uuid: Buffer, codeset: number, keycodes: number[]): Async<void>;
  onLifecycle(listener: LifecycleListener): () => void; // returns the unsubscribe function
  snapshots(): DomainSnapshot[]; // every domain's committed state, for a new subscriber's initial sync
  // Called after every committed change, before its lifecycle event: the new state, or the uuid of a removed domain.
  onChange(listener: ChangeListener): () => void;
  // Lifecycle events of networks, storage pools and node devices (the sub-drivers below).
  onObjectEvent?(listener: ObjectEventListener): () => void;
  // Calls `done` once every change committed so far is on disk; a write's answer must not leave before. Drivers
  // that persist synchronously may omit it.
  whenDurable?(done: () => void): void;
  close(): void; // flush state; the driver is unusable afterwards
  // Other object types, each its own sub-driver (absent: the helper answers "not supported").
  readonly interfaces?: InterfaceDriver;
  readonly nodeDevices?: NodeDeviceDriver;
  readonly host?: HostFactsDriver; // host facts beyond NODE_FACTS (sysinfo, CPU stats/map/models, free pages)
  // virConnectGetDomainCapabilities' XML (absent: "not supported", as libvirt's test driver answers).
  domainCapabilities?(q: DomainCapsQuery): Async<string>;
  pools?: StoragePoolDriver;
  networks?: NetworkDriver;
  readonly moments?: SnapshotDriver; // domain snapshots and checkpoints
}
