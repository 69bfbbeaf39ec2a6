// SPDX-License-Identifier: Apache-2.0
// The test driver: an in-memory simulated hypervisor behaving like libvirt's test:///default, persisted to disk (helper side).
import { hostname } from 'node:os';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { join as joinPath } from 'node:path';
import {
  VG_ERR_ACCESS_DENIED,
  VG_ERR_DOMAIN_ARG,
  VG_ERR_DOMAIN_INTERNAL,
  VG_ERR_DOMAIN_EXISTS,
  VG_ERR_DOMAIN_STATE,
  VG_ERR_INTERNAL,
  VG_ERR_LIMIT,
  VG_ERR_NO_DOMAIN,
  VG_ERR_RESOURCE_DENIED,
  VG_ERR_STORAGE,
} from '../../common/errors';
import { ControlAction, IpcLimits, LookupKind, uuidFromString, uuidToString } from '../../ipc/program';
import type { ControlActionCode, DomainInfo, DomainSnapshot, DomainSummary, LookupKey, NodeFacts } from '../../ipc/program';
import { type DomainDef, type XmlEl, devicesOf, domainDefFromJson, domainDefToJson } from '../../ipc/objects/domain-def';
import { type ChangeListener, type Driver, DriverError, type LifecycleListener, type ObjectEventListener, type SetFlags, driverError } from './driver';
import { type ObjectDriverContext, storeRecords } from './object-context';
import { hostResourcesOf } from './host-resources';
import { TestHostFacts, TestInterfaces, TestNodeDevices } from './test-host-objects';
import { DEFAULT_POOL_ROOTS, TestStorage } from './test-storage';
import { TestNetworks } from './test-networks';
import { type DomainStatus, type FileChange, StateStore, type StateStoreOptions } from './store';
import { TEST_CAPABILITIES_XML } from './test-capabilities';
import { DomainState } from '../../common/domain-state';
import { isTenantName } from '../../common/names';
import { TestDomainExtra } from './test-domain-extra';
import { type RevertTarget, TestSnapshots } from './test-snapshots';
import { SaveImages } from './save-images';
import { streamPair } from '../../sandbox/fdpass';

// virDomainState (one definition, in common/) and the reasons we use (libvirt-domain.h).
export { DomainState };
export const RunningReason = { UNKNOWN: 0, BOOTED: 1, UNPAUSED: 5 } as const;
export const PausedReason = { USER: 1 } as const; // virDomainPausedReason: UNKNOWN 0, USER 1, MIGRATION 2
export const ShutoffReason = { UNKNOWN: 0, SHUTDOWN: 1, DESTROYED: 2 } as const;

// virDomainEventType and details (§5.1 of libvirt-wire.md).
export const LifecycleEventType = { DEFINED: 0, UNDEFINED: 1, STARTED: 2, SUSPENDED: 3, RESUMED: 4, STOPPED: 5 } as const;
export const EventDetail = { ADDED: 0, UPDATED: 1, REMOVED: 0, BOOTED: 0, PAUSED: 0, UNPAUSED: 0, SHUTDOWN: 0, DESTROYED: 1 } as const;

const TEST_MAX_VCPUS = 32; // testConnectGetMaxVcpus
// virDomainShutoffReason SAVED; virDomainEvent{Stopped,Undefined,Defined}DetailType SAVED / RENAMED
const SHUTOFF_SAVED = 5;
const STOPPED_SAVED = 4;
const RUNNING_RESTORED = 3; // virDomainRunningReason
const SHUTOFF_CRASHED = 3; // virDomainShutoffReason
const STOPPED_CRASHED = 2; // virDomainEventStoppedDetailType
const STARTED_RESTORED = 2; // virDomainEventStartedDetailType
const UNDEFINED_RENAMED = 1;
const DEFINED_RENAMED = 2;
// "from snapshot" reasons and event details (virDomain{Shutoff,Running,Paused}Reason, virDomainEvent*DetailType)
const FromSnapshot = { SHUTOFF: 7, RUNNING: 4, PAUSED: 7, STOPPED: 6, STARTED: 3, SUSPENDED: 5 } as const;

const el = (tag: string, attrs: Record<string, string>, kids: XmlEl[] = []): XmlEl => ({ tag, attrs, text: '', kids });
const pci = (bus: string, slot: string) => el('address', { type: 'pci', domain: '0x0000', bus, slot, function: '0x0' });
const TEST_DEVICES: XmlEl[] = [
  el('disk', { type: 'file', device: 'disk' }, [el('source', { file: '/guest/diskimage1' }), el('target', { dev: 'vda', bus: 'virtio' }), pci('0x01', '0x00')]),
  el('interface', { type: 'network' }, [
    el('mac', { address: 'aa:bb:cc:dd:ee:ff' }),
    el('source', { network: 'default' }),
    el('target', { dev: 'testnet0' }),
    pci('0x00', '0x01'),
  ]),
  el('memballoon', { model: 'virtio' }, [pci('0x00', '0x02')]),
];

// test:///default's `test` domain (libvirt's testdomfc4 XML), typed: the helper parses no XML, not even its own.
export const TEST_DOMAIN_DEF: DomainDef = Object.freeze({
  type: 'test',
  name: 'test',
  uuid: '6695eb01-f6a4-8304-79aa-97f2502e193f',
  title: null,
  description: null,
  maxMemKiB: 8388608n,
  curMemKiB: 2097152n,
  vcpusMax: 2,
  vcpus: 2,
  osType: 'hvm',
  arch: 'i686',
  machine: null,
  osExtra: [],
  boot: ['hd'],
  clockOffset: 'utc',
  clock: el('clock', { offset: 'utc' }),
  top: [],
  metadata: [],
  onPoweroff: 'destroy',
  onReboot: 'restart',
  onCrash: 'destroy',
  devices: TEST_DEVICES,
  ...devicesOf(TEST_DEVICES, (m) => new Error(m)),
  cpumask: null,
  vcpuPins: new Map(),
  emulatorPin: null,
  iothreadPins: new Map(),
  memtune: { hardLimit: null, softLimit: null, swapHardLimit: null, minGuarantee: null },
  blkiotune: { weight: 0, devices: [] },
  numatune: null,
  tenant: '',
});

// Mirrors virDomainObj: `def` is the live definition while active, else the config; `newDef` is the config while active.
interface DomainObj {
  readonly def: DomainDef;
  readonly newDef: DomainDef | null;
  readonly persistent: boolean;
  readonly state: number;
  readonly reason: number;
  readonly id: number;
  readonly cpuNs: bigint; // accumulated before the current running stretch
  readonly since: number | null;
  readonly autostart?: boolean;
  readonly managedSave?: boolean;
}

interface Change {
  uuid: string;
  next: DomainObj | null; // null removes the domain
  config?: DomainDef | null; // new persistent config; null deletes it; absent leaves it
  nextId?: number;
  event?: { summary: DomainSummary; event: number; detail: number };
}

export interface TestDriverOptions {
  stateDir: string;
  runtimeDir: string;
  warn?: (msg: string) => void;
  now?: () => number; // wall-clock ms; injectable for tests
  store?: Omit<StateStoreOptions, 'warn'>; // the state log's fs layer, size limit and fatal handler (tests)
  screenshotFile?: string; // what every screenshot shows, as libvirt's test driver (PKGDATADIR/test-screenshot.png)
}

export const TEST_SCREENSHOT = '/usr/share/libvirt/test-screenshot.png';
const SCREENSHOT_FILE_MAX = 8 * 1024 * 1024;

const isActive = (d: DomainObj) => d.state !== DomainState.SHUTOFF;

export class TestDriver implements Driver {
  readonly name = 'test';
  readonly interfaces: TestInterfaces;
  readonly nodeDevices: TestNodeDevices;
  readonly host = new TestHostFacts();
  readonly pools: TestStorage;
  readonly networks: TestNetworks;
  readonly moments: TestSnapshots; // snapshots and checkpoints (metadata only, as libvirt's test driver)
  readonly saveImages: SaveImages; // save/restore to a client-named file: STATE/saves/TENANT/ for tenants
  readonly #store: StateStore;
  readonly #now: () => number;
  readonly #screenshotFile: string;
  readonly #consoles = new Map<string, net.Socket>(); // simulated consoles by uuid (openConsole)
  readonly #domains = new Map<string, DomainObj>(); // by canonical uuid
  readonly #listeners = new Set<LifecycleListener>();
  readonly #changeListeners = new Set<ChangeListener>();
  readonly #objectListeners = new Set<ObjectEventListener>();
  // For the object sub-drivers (networks, storage, host objects): durable records, events, first start.
  #objectCtx!: ObjectDriverContext;
  #nextId = 1;
  #closed = false;
  readonly saves = this; // save/restore to a file: the methods below
  readonly domainExtra = new TestDomainExtra({
    get: (uuid) => {
      const d = this.#get(uuid);
      return { def: d.def, config: d.persistent ? this.#config(d) : null, active: isActive(d), persistent: d.persistent, id: d.id };
    },
    nowMs: () => this.#now(),
    commit: (uuid, live, config) => this.#applyDefs(this.#get(uuid), live, config),
    lifecycle: {
      setAutostart: (uuid, on) => this.setAutostart(uuid, on),
      managedSave: (uuid) => void this.managedSave(uuid),
      managedSaveRemove: (uuid) => this.managedSaveRemove(uuid),
      rename: (uuid, name, tenant) => void this.rename(uuid, name, tenant),
    },
    // XXX: test:///default's `default` network (192.168.122.2-254/24) until the network objects answer this.
    networkIpv4: (name) => (name === 'default' ? { start: '192.168.122.2', prefix: 24 } : null),
  });
  // First start whose seed could not be saved (a full disk): the seed is served from memory, every write is refused
  // until it is saved (by the next write or a retry every second), and the next start seeds again until then.
  #seed: { changes: FileChange[]; logged: boolean; retry: NodeJS.Timeout | null } | null = null;

  constructor(opts: TestDriverOptions) {
    const warn = opts.warn ?? ((m: string) => process.stderr.write(`virtgate-helper: ${m}\n`));
    this.#store = new StateStore(opts.stateDir, opts.runtimeDir, { ...opts.store, warn });
    this.#now = opts.now ?? Date.now;
    this.#screenshotFile = opts.screenshotFile ?? TEST_SCREENSHOT;
    this.#load(warn);
    [this.interfaces, this.nodeDevices] = [new TestInterfaces(this.#objectCtx), new TestNodeDevices(this.#objectCtx)];
    this.pools = new TestStorage(this.#objectCtx, DEFAULT_POOL_ROOTS, joinPath(opts.stateDir, 'volumes'));
    this.networks = new TestNetworks(this.#objectCtx);
    this.saveImages = new SaveImages(joinPath(opts.stateDir, 'saves'));
    this.moments = new TestSnapshots(
      {
        get: (uuid) => {
          const d = this.#get(uuid);
          return { def: d.def, active: isActive(d), persistent: d.persistent, state: d.state };
        },
        nowMs: () => this.#now(),
        halt: (uuid) => void this.#stop(this.#get(uuid), FromSnapshot.SHUTOFF, FromSnapshot.STOPPED),
        revert: (uuid, def, target, online) => this.#revert(uuid, def, target, online),
        confine: (def, tenant) => this.#confine(def, tenant),
      },
      this.#objectCtx.records,
      warn,
    );
    this.moments.pruneTo((key) => this.#domains.has(key));
    // Start-up checkpoint: the replayed log goes into the per-domain files and the log starts empty. On a full disk
    // (or any write error) the log is kept as it is and the helper serves from memory, as after a failed checkpoint at
    // run time: reads work, writes are refused until the disk takes them, the next checkpoint retries.
    this.#store.noteNextId(this.#nextId);
    try {
      this.#store.checkpoint();
    } catch (e) {
      warn(`start-up checkpoint failed, serving with the state log kept (${this.#store.walBytes} bytes; replayed at the next start): ${(e as Error).message}`);
    }
  }

  #load(warn: (msg: string) => void): void {
    const loaded = this.#store.load(warn);
    // Definitions an older version stored as XML: converted before start by virtgate-upgrade-state (a separate
    // process; the helper parses no XML). Starting without them would hide those VMs, so the helper refuses.
    const legacy = [
      ...new Set([...loaded.legacyXml.keys(), ...[...loaded.statuses].filter(([, st]) => typeof st.liveXml === 'string' && !st.live).map(([u]) => u)]),
    ];
    if (legacy.length > 0) throw new LegacyStateError(legacy);
    this.#objectCtx = {
      records: storeRecords(this.#store, loaded.objects),
      firstStart: loaded.firstStart,
      warn,
      emit: (ev) => {
        for (const l of [...this.#objectListeners]) l(ev);
      },
    };
    if (loaded.firstStart) {
      // test:///default starts with `test` running, reason unknown (the real driver resets the reason to 0).
      const def = TEST_DOMAIN_DEF;
      const obj: DomainObj = {
        def,
        newDef: def,
        persistent: true,
        state: DomainState.RUNNING,
        reason: RunningReason.UNKNOWN,
        id: 1,
        cpuNs: 0n,
        since: this.#now(),
      };
      this.#domains.set(def.uuid, obj);
      this.#nextId = 2;
      const changes: FileChange[] = [
        { kind: 'domain', uuid: def.uuid, data: `${domainDefToJson(def)}\n` },
        { kind: 'status', uuid: def.uuid, data: statusJson(obj) },
        { kind: 'nextId', data: '2\n' },
      ];
      this.#seed = { changes, logged: false, retry: null };
      const e = this.#saveSeed();
      if (e) {
        warn(`first start: the seed domain cannot be saved (${errText(e)}): served from memory, writes refused until it is saved (retried every second)`);
        this.#seed.retry = setInterval(() => {
          if (!this.#saveSeed()) warn('first start: seed domain saved; writes accepted');
        }, 1000);
        this.#seed.retry.unref();
      }
      return;
    }
    for (const [uuid, xml] of loaded.configs) {
      const def = tryParse(xml, uuid, warn);
      if (def)
        this.#domains.set(uuid, {
          def,
          newDef: null,
          persistent: true,
          state: DomainState.SHUTOFF,
          reason: ShutoffReason.UNKNOWN,
          id: -1,
          cpuNs: 0n,
          since: null,
        });
    }
    let maxId = 0;
    for (const [uuid, st] of loaded.statuses) {
      const config = this.#domains.get(uuid);
      try {
        const obj = restore(st, config?.def ?? null, uuid);
        if (obj === null) continue;
        this.#domains.set(uuid, obj);
        if (obj.id > maxId) maxId = obj.id;
      } catch (e) {
        warn(`ignoring status of domain ${uuid}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    // A crash between the status write and the next-id write must not hand out a live id twice.
    this.#nextId = Math.max(loaded.nextId ?? 1, maxId + 1);
  }

  // The seed record, made durable, then the marker that says the seed happened: until both are on disk a restart
  // seeds again (no other write is accepted meanwhile, so nothing else can be lost). Returns the error, or null.
  #saveSeed(): Error | null {
    const seed = this.#seed;
    if (!seed) return null;
    try {
      if (!seed.logged) {
        this.#store.commit(seed.changes);
        seed.logged = true;
      }
      this.#store.syncNow();
      this.#store.markInitialized();
    } catch (e) {
      return e as Error;
    }
    if (seed.retry) clearInterval(seed.retry);
    this.#seed = null;
    return null;
  }

  // ---------- reads ----------

  nodeFacts(): NodeFacts {
    return {
      driver: 'test',
      uri: 'test:///default',
      hvType: 'TEST',
      hvVersion: 2n,
      hostname: hostname(),
      model: 'i686',
      memoryKiB: 3145728n,
      cpus: 16,
      mhz: 1400,
      nodes: 2,
      sockets: 2,
      cores: 2,
      threads: 2,
      capabilitiesXml: TEST_CAPABILITIES_XML,
      securityModel: 'testSecurity',
      securityDoi: '',
      // As libvirt's test driver: 32 vCPUs whatever the type; two cells of 2 and 4 MiB with 1 and 2 MiB free, where
      // the per-cell call answers each cell's size (its quirk, kept so clients see what test:///default shows) and
      // the total the sum of the free memory.
      maxVcpus: 32,
      cellsFreeBytes: [2048n * 1024n, 4096n * 1024n],
      freeMemoryBytes: 3072n * 1024n,
    };
  }

  list(): DomainSummary[] {
    return [...this.#domains.values()].map(summaryOf);
  }

  lookup(key: LookupKey): DomainSummary {
    let found: DomainObj | undefined;
    if (key.kind === LookupKind.UUID) found = this.#domains.get(uuidToString(key.uuid));
    else if (key.kind === LookupKind.NAME) found = this.#byName(key.name);
    else found = [...this.#domains.values()].find((d) => isActive(d) && d.id === key.id);
    if (!found) throw driverError(VG_ERR_NO_DOMAIN, ''); // libvirt: plain "Domain not found" for lookups
    return summaryOf(found);
  }

  info(uuid: Buffer): DomainInfo {
    return this.#infoOf(this.#get(uuid));
  }

  snapshots(): DomainSnapshot[] {
    return [...this.#domains.values()].map((d) => this.#snapshotOf(d));
  }

  onChange(listener: ChangeListener): () => void {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  #infoOf(d: DomainObj): DomainInfo {
    const active = isActive(d);
    return {
      ...summaryOf(d),
      maxMemKiB: d.def.maxMemKiB,
      memoryKiB: d.def.curMemKiB,
      nrVirtCpu: d.def.vcpus,
      maxVcpus: d.def.vcpusMax,
      cpuTimeNs: this.#cpuNs(d),
      autostart: d.autostart ?? false,
      osType: 'linux', // what the test driver reports, whatever <os><type> says
      hasManagedSave: d.managedSave ?? false,
      // The real driver labels only active domains (virsh dominfo shows no label for a shut-off one).
      securityLabel: active ? 'libvirt-test' : '',
      securityEnforcing: active,
    };
  }

  // Simulated CPU time is a pure function of the wall clock, so the front end may extrapolate it.
  #snapshotOf(d: DomainObj): DomainSnapshot {
    return { info: this.#infoOf(d), cpuBaseNs: d.cpuNs, cpuSinceMs: d.since, cpuClock: true };
  }

  // The definition the XML of virDomainGetXMLDesc shows (the front end formats it), with the live id while active.
  xml(uuid: Buffer, inactive: boolean): { def: DomainDef; id: number | null } {
    const d = this.#get(uuid);
    if (inactive && d.newDef) return { def: d.newDef, id: null };
    return { def: d.def, id: isActive(d) ? d.id : null };
  }

  // ---------- writes ----------

  // `parsed`: decoded and field-checked by the IPC codec (ipc/objects/domain-def.ts); its tenant is ignored.
  define(parsed: DomainDef, tenant = ''): DomainSummary {
    checkTenant(tenant);
    const old = this.#checkClash(parsed, tenant);
    const def = { ...parsed, tenant: this.#tenantFor(old, tenant) };
    this.#confine(def, tenant);
    if (!old) {
      this.#checkLimit();
      const obj: DomainObj = { def, newDef: null, persistent: true, state: DomainState.SHUTOFF, reason: ShutoffReason.UNKNOWN, id: -1, cpuNs: 0n, since: null };
      this.#apply({ uuid: def.uuid, next: obj, config: def, event: { summary: summaryOf(obj), event: LifecycleEventType.DEFINED, detail: EventDetail.ADDED } });
      return summaryOf(obj);
    }
    // Redefining an active domain changes only its next-boot config; a transient one becomes persistent.
    const next: DomainObj = isActive(old) ? { ...old, newDef: def, persistent: true } : { ...old, def };
    const detail = old.persistent ? EventDetail.UPDATED : EventDetail.ADDED;
    this.#apply({ uuid: def.uuid, next, config: def, event: { summary: summaryOf(next), event: LifecycleEventType.DEFINED, detail } });
    return summaryOf(next);
  }

  createXml(parsed: DomainDef, tenant = ''): DomainSummary {
    checkTenant(tenant);
    const old = this.#checkClash(parsed, tenant);
    const def = { ...parsed, tenant: this.#tenantFor(old, tenant) };
    this.#confine(def, tenant);
    if (old && isActive(old)) throw driverError(VG_ERR_DOMAIN_STATE, `domain '${old.def.name}' is already active`);
    if (!old) this.#checkLimit();
    // Starting XML over an inactive persistent domain boots it with that XML and keeps its config (libvirt semantics).
    const base: DomainObj = old ?? { def, newDef: null, persistent: false, state: DomainState.SHUTOFF, reason: 0, id: -1, cpuNs: 0n, since: null };
    const next = this.#started(base, def);
    this.#apply({
      uuid: def.uuid,
      next,
      nextId: this.#nextId + 1,
      event: { summary: summaryOf(next), event: LifecycleEventType.STARTED, detail: EventDetail.BOOTED },
    });
    return summaryOf(next);
  }

  // A tenant's VM may use only volumes of its tenant's or shared pools, its tenant's or shared networks, and nothing of
  // the host itself (paths, devices, bridges, sockets). A session with no tenant is a host admin's: it manages the
  // host's resources directly, as libvirtd's root does, and is not confined.
  #confine(def: DomainDef, tenant: string): void {
    if (tenant === '') return;
    const refuse = (what: string) =>
      driverError(VG_ERR_RESOURCE_DENIED, `${what}; tenant '${tenant}' may use only its own or shared storage volumes and networks`);
    // The typed views again from the devices themselves: what is checked is what is stored.
    const { disks, nets } = devicesOf(def.devices, (m) => driverError(VG_ERR_DOMAIN_ARG, m));
    for (const d of disks) {
      if (d.source === null) continue; // an empty CD-ROM drive
      let path: string | null = d.type === 'file' || d.type === 'block' ? d.source : null;
      if (d.type === 'volume' && d.pool && d.volume) path = this.#volumePath(d.pool, d.volume, tenant);
      if (path === null || !this.pools.diskSourceAllowed(path, tenant))
        throw refuse(`disk '${d.target}' (${d.type} '${d.source}') is not a volume the VM may use`);
    }
    for (const n of nets) {
      if (n.type === 'user') continue;
      if (n.type === 'network' && n.network !== null && this.#networkUsable(n.network, tenant)) continue;
      throw refuse(
        `interface of type '${n.type}'${n.network ? ` on network '${n.network}'` : n.bridge ? ` on bridge '${n.bridge}'` : ''} is not a network the VM may use`,
      );
    }
    const host = hostResourcesOf(def);
    if (host.length > 0) throw refuse(`${host[0]} names a resource of the host`);
  }

  #volumePath(pool: string, volume: string, tenant: string): string | null {
    try {
      const p = this.pools.poolByName(pool);
      if (p.tenant !== '' && p.tenant !== tenant) return null;
      return this.pools.volumeByName(p.config.uuid, volume).path;
    } catch {
      return null;
    }
  }

  // Its tenant's or a shared network, by name (whether it runs now is the start's business, as in libvirt).
  #networkUsable(name: string, tenant: string): boolean {
    const n = this.networks.list().find((x) => x.name === name);
    return n !== undefined && (n.tenant === '' || n.tenant === tenant);
  }

  // A VM keeps its tenant through redefinition; a session of another tenant may not redefine it (a tenant-less one may).
  #tenantFor(old: DomainObj | undefined, tenant: string): string {
    if (!old) return tenant;
    if (tenant !== '' && old.def.tenant !== tenant) throw driverError(VG_ERR_ACCESS_DENIED, '');
    return old.def.tenant;
  }

  setTenant(uuid: Buffer, tenant: string): DomainSummary {
    checkTenant(tenant);
    const d = this.#get(uuid);
    const next: DomainObj = { ...d, def: { ...d.def, tenant }, newDef: d.newDef ? { ...d.newDef, tenant } : null };
    const config = d.persistent ? (next.newDef ?? next.def) : undefined;
    this.#apply({ uuid: d.def.uuid, next, config, event: { summary: summaryOf(next), event: LifecycleEventType.DEFINED, detail: EventDetail.UPDATED } });
    return summaryOf(next);
  }

  undefine(uuid: Buffer, removeManagedSave = false, removeSnapshots = false): void {
    const d = this.#get(uuid);
    if (!d.persistent) throw driverError(VG_ERR_DOMAIN_STATE, 'cannot undefine transient domain');
    // testDomainUndefineFlags: a managed-save image is removed only when the caller says so.
    if (d.managedSave && !removeManagedSave) throw driverError(VG_ERR_DOMAIN_STATE, 'Refusing to undefine while domain managed save image exists');
    // ... and so is snapshot metadata of an inactive VM (an active one keeps it, as a transient VM, until it stops).
    const nsnapshots = this.moments.count(uuid, 0);
    if (!isActive(d) && nsnapshots > 0 && !removeSnapshots)
      throw driverError(VG_ERR_DOMAIN_STATE, `cannot delete inactive domain with ${nsnapshots} snapshots`);
    const next: DomainObj | null = isActive(d) ? { ...d, persistent: false, newDef: null } : null;
    const summary = next ? summaryOf(next) : { ...summaryOf(d), persistent: false };
    this.#apply({ uuid: d.def.uuid, next, config: null, event: { summary, event: LifecycleEventType.UNDEFINED, detail: EventDetail.REMOVED } });
  }

  control(uuid: Buffer, action: ControlActionCode): DomainSummary {
    const d = this.#get(uuid);
    const name = d.def.name;
    const now = this.#now();
    switch (action) {
      case ControlAction.START: {
        if (isActive(d)) throw driverError(VG_ERR_DOMAIN_INTERNAL, `Domain '${name}' is already running`);
        const next = this.#started(d, d.def);
        return this.#applyEvent(d, next, LifecycleEventType.STARTED, EventDetail.BOOTED, this.#nextId + 1);
      }
      case ControlAction.SHUTDOWN:
        if (!isActive(d)) throw driverError(VG_ERR_DOMAIN_INTERNAL, `domain '${name}' not running`);
        return this.#stop(d, ShutoffReason.SHUTDOWN, EventDetail.SHUTDOWN);
      case ControlAction.DESTROY:
        if (!isActive(d)) throw driverError(VG_ERR_DOMAIN_STATE, 'domain is not running');
        return this.#stop(d, ShutoffReason.DESTROYED, EventDetail.DESTROYED);
      case ControlAction.SUSPEND: {
        if (d.state !== DomainState.RUNNING) throw driverError(VG_ERR_DOMAIN_INTERNAL, `domain '${name}' not running`);
        const next: DomainObj = { ...d, state: DomainState.PAUSED, reason: PausedReason.USER, cpuNs: this.#cpuNs(d), since: null };
        return this.#applyEvent(d, next, LifecycleEventType.SUSPENDED, EventDetail.PAUSED);
      }
      case ControlAction.RESUME: {
        if (d.state !== DomainState.PAUSED) throw driverError(VG_ERR_DOMAIN_INTERNAL, `domain '${name}' not paused`);
        const next: DomainObj = { ...d, state: DomainState.RUNNING, reason: RunningReason.UNPAUSED, since: now };
        return this.#applyEvent(d, next, LifecycleEventType.RESUMED, EventDetail.UNPAUSED);
      }
      case ControlAction.REBOOT: {
        if (!isActive(d)) throw driverError(VG_ERR_DOMAIN_STATE, 'domain is not running');
        // The test driver restarts in place: running/booted, same id, no lifecycle event.
        const next: DomainObj = { ...d, state: DomainState.RUNNING, reason: RunningReason.BOOTED, cpuNs: this.#cpuNs(d), since: now };
        this.#apply({ uuid: d.def.uuid, next });
        return summaryOf(next);
      }
    }
    throw driverError(VG_ERR_DOMAIN_ARG, `unsupported action ${String(action)}`);
  }

  setMemory(uuid: Buffer, memoryKiB: bigint, flags: SetFlags): void {
    const d = this.#get(uuid);
    // virDomainObjGetOneDef: exactly one definition is changed.
    if (flags.live && flags.config)
      throw driverError(VG_ERR_DOMAIN_ARG, "Flags 'VIR_DOMAIN_AFFECT_LIVE' and 'VIR_DOMAIN_AFFECT_CONFIG' are mutually exclusive");
    const live = this.#impact(d, flags).live;
    const target = live ? d.def : this.#config(d);
    let def: DomainDef;
    if (flags.max) {
      if (live) throw driverError(VG_ERR_DOMAIN_STATE, 'cannot resize the maximum memory on an active domain');
      def = { ...target, maxMemKiB: memoryKiB, curMemKiB: memoryKiB < target.curMemKiB ? memoryKiB : target.curMemKiB };
    } else {
      if (memoryKiB > target.maxMemKiB) throw driverError(VG_ERR_DOMAIN_ARG, 'cannot set memory higher than max memory');
      def = { ...target, curMemKiB: memoryKiB };
    }
    this.#applyDefs(d, live ? def : null, live ? null : def);
  }

  setVcpus(uuid: Buffer, nvcpus: number, flags: SetFlags): void {
    if (flags.max && !flags.config) throw driverError(VG_ERR_DOMAIN_ARG, "Flag 'VIR_DOMAIN_AFFECT_CONFIG' is required by flag 'VIR_DOMAIN_VCPU_MAXIMUM'");
    if (nvcpus > TEST_MAX_VCPUS) throw driverError(VG_ERR_DOMAIN_ARG, `requested cpu amount exceeds maximum supported amount (${nvcpus} > ${TEST_MAX_VCPUS})`);
    const d = this.#get(uuid);
    const impact = this.#impact(d, flags); // virDomainObjGetDefs: live and config together are fine here
    const tooMany = (max: number) => driverError(VG_ERR_DOMAIN_ARG, `requested cpu amount exceeds maximum (${nvcpus} > ${max})`);
    if (impact.live && d.def.vcpusMax < nvcpus) throw tooMany(d.def.vcpusMax);
    const conf = impact.config ? this.#config(d) : null;
    if (conf && !flags.max && conf.vcpusMax < nvcpus) throw tooMany(conf.vcpusMax);
    const liveDef = impact.live ? { ...d.def, vcpus: nvcpus } : null;
    let confDef: DomainDef | null = null;
    if (conf) confDef = flags.max ? { ...conf, vcpusMax: nvcpus, vcpus: Math.min(conf.vcpus, nvcpus) } : { ...conf, vcpus: nvcpus };
    this.#applyDefs(d, liveDef, confDef);
  }

  // ---------- lifecycle and config extras (libvirt's test driver: autostart, managed save, rename) ----------

  setAutostart(uuid: Buffer, autostart: boolean): void {
    const d = this.#get(uuid);
    this.#apply({ uuid: d.def.uuid, next: { ...d, autostart } });
  }

  // testDomainManagedSave: a persistent running domain stops (reason saved) and remembers an image.
  managedSave(uuid: Buffer): DomainSummary {
    const d = this.#get(uuid);
    if (!isActive(d)) throw driverError(VG_ERR_DOMAIN_STATE, 'domain is not running');
    if (!d.persistent) throw driverError(VG_ERR_DOMAIN_STATE, 'cannot do managed save for transient domain');
    const next: DomainObj = {
      ...d,
      def: this.#config(d),
      newDef: null,
      state: DomainState.SHUTOFF,
      reason: SHUTOFF_SAVED,
      id: -1,
      cpuNs: this.#cpuNs(d),
      since: null,
      managedSave: true,
    };
    return this.#applyEvent(d, next, LifecycleEventType.STOPPED, STOPPED_SAVED);
  }

  managedSaveRemove(uuid: Buffer): void {
    const d = this.#get(uuid);
    this.#apply({ uuid: d.def.uuid, next: { ...d, managedSave: false } });
  }

  // testDomainSaveFlags: the running (or paused) domain's live definition goes to a new file, then it stops with
  // reason saved (a transient one disappears). An image whose state change the disk refused is removed again.
  saveTo(uuid: Buffer, path: string, tenant: string): void {
    const d = this.#ownFile(uuid, tenant);
    if (!isActive(d)) throw driverError(VG_ERR_DOMAIN_STATE, 'domain is not running');
    this.saveImages.write(path, tenant, { def: d.def, state: d.state === DomainState.PAUSED ? 'paused' : 'running' });
    try {
      this.#stop(d, SHUTOFF_SAVED, STOPPED_SAVED);
    } catch (e) {
      this.saveImages.remove(path);
      throw e;
    }
  }

  // testDomainRestoreFlags (virDomainObjListAdd LIVE|CHECK_LIVE): the image's domain runs again, reason restored; a
  // shut-off persistent domain of that uuid keeps its config, a new one is transient. A tenant's session restores only
  // its own tenant's images, and each is confined again as a define is (an image may have been edited since).
  restoreFrom(path: string, tenant: string): DomainSummary {
    checkTenant(tenant);
    const { def: image } = this.saveImages.read(path, tenant);
    if (tenant !== '' && image.tenant !== tenant)
      throw driverError(VG_ERR_RESOURCE_DENIED, `save image '${path}' holds a domain of another tenant; tenant '${tenant}' may restore only its own`);
    const old = this.#checkClash(image, tenant);
    const def = { ...image, tenant: this.#tenantFor(old, image.tenant) };
    this.#confine(def, tenant);
    if (old && isActive(old)) throw driverError(VG_ERR_DOMAIN_STATE, `domain '${old.def.name}' is already active`);
    if (!old) this.#checkLimit();
    const base: DomainObj = old ?? { def, newDef: null, persistent: false, state: DomainState.SHUTOFF, reason: 0, id: -1, cpuNs: 0n, since: null };
    const next: DomainObj = { ...this.#started(base, def), reason: RUNNING_RESTORED };
    this.#apply({
      uuid: def.uuid,
      next,
      nextId: this.#nextId + 1,
      event: { summary: summaryOf(next), event: LifecycleEventType.STARTED, detail: STARTED_RESTORED },
    });
    return summaryOf(next);
  }

  // testDomainSaveImageGetXMLDesc: the definition in the image (a tenant's session: its own tenant's images only).
  saveImageRead(path: string, tenant: string): DomainDef {
    const { def } = this.saveImages.read(path, tenant);
    if (tenant !== '' && def.tenant !== tenant)
      throw driverError(VG_ERR_RESOURCE_DENIED, `save image '${path}' holds a domain of another tenant; tenant '${tenant}' may read only its own`);
    return def;
  }

  // Before root writes a file from a VM for a tenant's session, the VM must be that tenant's (the front end decided so
  // already; a forged request must not put another tenant's VM into this tenant's directory).
  #ownFile(uuid: Buffer, tenant: string): DomainObj {
    const d = this.#get(uuid);
    if (tenant !== '' && d.def.tenant !== tenant) throw driverError(VG_ERR_RESOURCE_DENIED, `domain '${d.def.name}' is not of tenant '${tenant}'`);
    return d;
  }

  // testDomainCoreDumpWithFormat (raw only: the front end refuses other formats before anything is written): the dump
  // goes to a new file under the save rules, then with `crash` the domain stops, reason crashed (a transient one goes).
  coreDump(uuid: Buffer, path: string, crash: boolean, tenant: string): void {
    const d = this.#ownFile(uuid, tenant);
    if (!isActive(d)) throw driverError(VG_ERR_DOMAIN_STATE, 'domain is not running');
    this.saveImages.dump(path, tenant, d.def.name);
    if (crash) this.#stop(d, SHUTOFF_CRASHED, STOPPED_CRASHED);
  }

  // testDomainSaveImageDefineXML: the image's definition replaced (libvirt checks neither name nor uuid against the
  // old one; neither do we). It keeps the image's tenant; a tenant's session must own it, and the new one is confined.
  saveImageDefine(path: string, parsed: DomainDef, tenant: string): void {
    const old = this.saveImages.read(path, tenant);
    if (tenant !== '' && old.def.tenant !== tenant)
      throw driverError(VG_ERR_RESOURCE_DENIED, `save image '${path}' holds a domain of another tenant; tenant '${tenant}' may change only its own`);
    const def = { ...parsed, tenant: old.def.tenant };
    this.#confine(def, tenant);
    this.saveImages.replace(path, tenant, { def, state: old.state });
  }

  // testDomainRename: shut-off persistent domains only; UNDEFINED/RENAMED for the old name, DEFINED/RENAMED for the new.
  rename(uuid: Buffer, newName: string, tenant: string): DomainSummary {
    const d = this.#get(uuid);
    if (isActive(d)) throw driverError(VG_ERR_DOMAIN_STATE, 'cannot rename active domain');
    if (!d.persistent) throw driverError(VG_ERR_DOMAIN_STATE, 'cannot rename a transient domain');
    const named = this.#byName(newName);
    if (named && tenant !== '' && named.def.tenant !== tenant) throw driverError(VG_ERR_DOMAIN_EXISTS, NOT_AVAILABLE);
    if (named) throw driverError(VG_ERR_DOMAIN_EXISTS, `domain with name '${newName}' already exists`);
    const def = { ...d.def, name: newName };
    const next: DomainObj = { ...d, def };
    const old = summaryOf(d);
    this.#apply({ uuid: d.def.uuid, next, config: def, event: { summary: old, event: LifecycleEventType.UNDEFINED, detail: UNDEFINED_RENAMED } });
    const summary = summaryOf(next);
    for (const l of this.#listeners) l({ domain: summary, event: LifecycleEventType.DEFINED, detail: DEFINED_RENAMED });
    return summary;
  }

  // testDomainRevertToSnapshot's transitions: stop if active, take the snapshot's definition, then run or pause, each
  // step with its "from snapshot" event. Two quirks of libvirt's test driver are kept, so clients see what
  // test:///default shows: after an offline snapshot, --running / --paused only emit the started (and suspended)
  // events and the VM stays shut off; a transient VM is not dropped from the list by the intermediate stop.
  #revert(uuid: Buffer, def: DomainDef, target: RevertTarget, online: boolean): void {
    let d = this.#get(uuid);
    if (isActive(d)) {
      const stopped: DomainObj = {
        ...d,
        def: this.#config(d),
        newDef: null,
        state: DomainState.SHUTOFF,
        reason: FromSnapshot.SHUTOFF,
        id: -1,
        cpuNs: this.#cpuNs(d),
        since: null,
      };
      this.#applyEvent(d, stopped, LifecycleEventType.STOPPED, FromSnapshot.STOPPED);
      d = stopped;
    }
    const assigned: DomainObj = { ...d, def, newDef: null };
    if (!online) {
      this.#apply({ uuid: d.def.uuid, next: assigned, ...(d.persistent ? { config: def } : {}) });
      if (target === 'shutoff') return;
      const summary = summaryOf(assigned);
      for (const l of this.#listeners) l({ domain: summary, event: LifecycleEventType.STARTED, detail: FromSnapshot.STARTED });
      if (target === 'paused') for (const l of this.#listeners) l({ domain: summary, event: LifecycleEventType.SUSPENDED, detail: FromSnapshot.SUSPENDED });
      return;
    }
    const started: DomainObj = { ...this.#started(assigned, def), reason: FromSnapshot.RUNNING };
    this.#apply({
      uuid: d.def.uuid,
      next: started,
      ...(d.persistent ? { config: def } : {}),
      nextId: this.#nextId + 1,
      event: { summary: summaryOf(started), event: LifecycleEventType.STARTED, detail: FromSnapshot.STARTED },
    });
    if (target === 'paused') {
      const paused: DomainObj = { ...started, state: DomainState.PAUSED, reason: FromSnapshot.PAUSED, cpuNs: this.#cpuNs(started), since: null };
      this.#applyEvent(started, paused, LifecycleEventType.SUSPENDED, FromSnapshot.SUSPENDED);
    }
  }

  // The sub-drivers' shared context (tests build a sub-driver on it).
  get objectContext(): ObjectDriverContext {
    return this.#objectCtx;
  }

  onObjectEvent(listener: ObjectEventListener): () => void {
    this.#objectListeners.add(listener);
    return () => this.#objectListeners.delete(listener);
  }

  // libvirt's test driver streams one fixed PNG for any domain and screen; so does this one.
  screenshot(uuid: Buffer, _screen: number): { mime: string; data: Buffer } {
    this.#get(uuid);
    let data: Buffer;
    try {
      const fd = fs.openSync(this.#screenshotFile, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      try {
        const size = fs.fstatSync(fd).size;
        if (size > SCREENSHOT_FILE_MAX) throw Object.assign(new Error('too large'), { code: 'EFBIG' });
        data = Buffer.alloc(size);
        fs.readSync(fd, data, 0, size, 0);
      } finally {
        fs.closeSync(fd);
      }
    } catch (e) {
      throw driverError(
        VG_ERR_INTERNAL,
        `cannot read the test screenshot ${this.#screenshotFile} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      );
    }
    return { mime: 'image/png', data };
  }

  // A simulated serial console (tests of the console path without a VM): a banner, then it echoes what it is sent.
  // Unlike a QEMU console, these bytes do pass through the helper's loop: the test driver has no guest to hand over.
  openConsole(uuid: Buffer, devName: string | null): number {
    const d = this.#get(uuid);
    if (!isActive(d)) throw driverError(VG_ERR_DOMAIN_STATE, 'domain is not running');
    if (devName !== null && devName !== 'serial0' && devName !== 'console0') throw driverError(VG_ERR_INTERNAL, `cannot find character device ${devName}`);
    const key = uuidToString(uuid);
    this.#consoles.get(key)?.destroy();
    const [mine, theirs] = streamPair();
    const sock = new net.Socket({ fd: mine, readable: true, writable: true });
    this.#consoles.set(key, sock);
    sock.on('error', () => sock.destroy());
    sock.on('close', () => this.#consoles.get(key) === sock && this.#consoles.delete(key));
    sock.write(`test console of ${d.def.name}\r\n`);
    sock.pipe(sock);
    return theirs;
  }

  consoleClosed(uuid: Buffer): void {
    const key = uuidToString(uuid);
    this.#consoles.get(key)?.destroy();
    this.#consoles.delete(key);
  }

  onLifecycle(listener: LifecycleListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  // Calls `done` once every change committed so far is durable (group commit: one fdatasync per event-loop turn).
  whenDurable(done: () => void): void {
    this.#store.whenDurable(done);
  }

  close(): void {
    // Checkpoint: the log's changes go into the per-domain files and the log is emptied; then stop accepting work.
    if (this.#closed) return;
    this.#closed = true;
    if (this.#seed?.retry) clearInterval(this.#seed.retry);
    this.#listeners.clear();
    this.#changeListeners.clear();
    this.#store.close();
  }

  // ---------- internals ----------

  #get(uuid: Buffer): DomainObj {
    const key = uuidToString(uuid);
    const d = this.#domains.get(key);
    if (!d) throw driverError(VG_ERR_NO_DOMAIN, `: no domain with matching uuid '${key}'`);
    return d;
  }

  #byName(name: string): DomainObj | undefined {
    for (const d of this.#domains.values()) if (d.def.name === name) return d;
    return undefined;
  }

  // virDomainObjListAdd's checks: same uuid must keep its name; a name belongs to one uuid. A clash with another
  // tenant's VM (by name, by uuid or both) gets one answer that names nothing, so it reveals neither VM nor tenant.
  #checkClash(def: DomainDef, tenant: string): DomainObj | undefined {
    const same = this.#domains.get(def.uuid);
    const named = this.#byName(def.name);
    if (tenant !== '' && [same, named].some((d) => d !== undefined && d.def.tenant !== tenant)) throw driverError(VG_ERR_DOMAIN_EXISTS, NOT_AVAILABLE);
    if (same) {
      if (same.def.name !== def.name) throw driverError(VG_ERR_DOMAIN_EXISTS, `domain '${same.def.name}' is already defined with uuid ${def.uuid}`);
      return same;
    }
    if (named) throw driverError(VG_ERR_DOMAIN_EXISTS, `domain '${def.name}' already exists with uuid ${named.def.uuid}`);
    return undefined;
  }

  #checkLimit(): void {
    if (this.#domains.size >= IpcLimits.DOMAINS_MAX) throw driverError(VG_ERR_LIMIT, `at most ${IpcLimits.DOMAINS_MAX} domains`);
  }

  #config(d: DomainObj): DomainDef {
    return d.newDef ?? d.def;
  }

  // virDomainObjUpdateModificationImpact: neither flag means "current"; then check each against the domain.
  #impact(d: DomainObj, flags: SetFlags): { live: boolean; config: boolean } {
    let { live, config } = flags;
    if (!live && !config) {
      if (isActive(d)) live = true;
      else config = true;
    }
    if (live && !isActive(d)) throw driverError(VG_ERR_DOMAIN_STATE, 'domain is not running');
    if (config && !d.persistent) throw driverError(VG_ERR_DOMAIN_STATE, 'transient domains do not have any persistent config');
    return { live, config };
  }

  #applyDefs(d: DomainObj, liveDef: DomainDef | null, confDef: DomainDef | null): void {
    let next: DomainObj = d;
    if (liveDef) next = { ...next, def: liveDef };
    if (confDef) next = isActive(d) ? { ...next, newDef: confDef } : { ...next, def: confDef };
    this.#apply({ uuid: d.def.uuid, next, ...(confDef ? { config: confDef } : {}) });
  }

  #cpuNs(d: DomainObj): bigint {
    if (d.since === null) return d.cpuNs;
    return d.cpuNs + BigInt(Math.max(0, this.#now() - d.since)) * 1_000_000n;
  }

  #started(d: DomainObj, liveDef: DomainDef): DomainObj {
    const newDef = d.persistent ? this.#config(d) : null;
    return { ...d, def: liveDef, newDef, state: DomainState.RUNNING, reason: RunningReason.BOOTED, id: this.#nextId, since: this.#now(), managedSave: false };
  }

  #stop(d: DomainObj, reason: number, detail: number): DomainSummary {
    if (!d.persistent) {
      // A transient domain vanishes when it stops.
      const summary = { ...summaryOf(d), id: -1, state: DomainState.SHUTOFF, reason };
      this.#apply({ uuid: d.def.uuid, next: null, event: { summary, event: LifecycleEventType.STOPPED, detail } });
      return summary;
    }
    const next: DomainObj = { ...d, def: this.#config(d), newDef: null, state: DomainState.SHUTOFF, reason, id: -1, cpuNs: this.#cpuNs(d), since: null };
    return this.#applyEvent(d, next, LifecycleEventType.STOPPED, detail);
  }

  #applyEvent(d: DomainObj, next: DomainObj, event: number, detail: number, nextId?: number): DomainSummary {
    const summary = summaryOf(next);
    this.#apply({ uuid: d.def.uuid, next, ...(nextId !== undefined ? { nextId } : {}), event: { summary, event, detail } });
    return summary;
  }

  // Log first (one record, write(2) now, fdatasync with its batch), then commit in memory, then tell subscribers:
  // a write the disk refused changes nothing. Its answer waits for whenDurable (the IPC server holds it back).
  #apply(c: Change): void {
    if (this.#closed) throw driverError(VG_ERR_STORAGE, 'driver is shutting down');
    const seedError = this.#saveSeed();
    if (seedError) throw driverError(VG_ERR_STORAGE, errText(seedError));
    const files: FileChange[] = [];
    if (c.config !== undefined) files.push({ kind: 'domain', uuid: c.uuid, data: c.config === null ? null : `${domainDefToJson(c.config)}\n` });
    files.push({ kind: 'status', uuid: c.uuid, data: c.next === null ? null : statusJson(c.next) });
    if (c.nextId !== undefined) files.push({ kind: 'nextId', data: `${c.nextId}\n` });
    try {
      this.#store.commit(files);
    } catch (e) {
      throw driverError(VG_ERR_STORAGE, errText(e as Error));
    }
    if (c.next === null) {
      this.#domains.delete(c.uuid);
      this.moments?.dropDomain(uuidFromString(c.uuid)!); // undefined during the constructor's seeding
    } else this.#domains.set(c.uuid, c.next);
    if (c.nextId !== undefined) this.#nextId = c.nextId;
    if (this.#changeListeners.size > 0) {
      const change = c.next === null ? { removed: uuidFromString(c.uuid)! } : { snapshot: this.#snapshotOf(c.next) };
      for (const l of this.#changeListeners) l(change);
    }
    if (c.event) {
      const ev = { domain: c.event.summary, event: c.event.event, detail: c.event.detail };
      for (const l of this.#listeners) l(ev);
    }
  }
}

// The state holds domain XML of an older version (the uuids): run the one-shot conversion first.
export class LegacyStateError extends Error {
  readonly code = 'VG_LEGACY_DOMAIN_XML';
  constructor(readonly uuids: string[]) {
    super(
      `${uuids.length} domain definition(s) are stored as XML by an older virtgate (${uuids.slice(0, 3).join(', ')}${uuids.length > 3 ? ', ...' : ''}); ` +
        'the helper does not parse XML: run `virtgate-upgrade-state --state-dir DIR --runtime-dir DIR` with the helper stopped (the systemd unit and `virtgate start` run it before the helper)',
    );
  }
}

// What a refused write says: `write: ENOSPC`.
function errText(e: Error): string {
  const err = e as NodeJS.ErrnoException;
  return `${err.syscall ?? 'write'}: ${err.code ?? err.message}`;
}

function summaryOf(d: DomainObj): DomainSummary {
  const uuid = uuidFromString(d.def.uuid);
  if (!uuid) throw new DriverError(VG_ERR_INTERNAL.spec.code, 'corrupt uuid in domain table');
  return {
    name: d.def.name,
    uuid,
    id: isActive(d) ? d.id : -1,
    state: d.state,
    reason: d.reason,
    persistent: d.persistent,
    ...(d.def.tenant ? { tenant: d.def.tenant } : {}),
  };
}

function statusJson(d: DomainObj): string {
  const st: DomainStatus = {
    state: d.state,
    reason: d.reason,
    id: d.id,
    cpuNs: d.cpuNs.toString(),
    since: d.since,
    persistent: d.persistent,
    live: isActive(d) ? (JSON.parse(domainDefToJson(d.def)) as object) : null,
    ...(d.autostart ? { autostart: true } : {}),
    ...(d.managedSave ? { managedSave: true } : {}),
  };
  return `${JSON.stringify(st, null, 1)}\n`;
}

// The one answer to a define/create that collides with another tenant's VM.
export const NOT_AVAILABLE = 'name or uuid is not available';

// The helper's own check of the tenant it is asked to record (the IPC decoder already applies the same rule).
function checkTenant(tenant: string): void {
  if (!isTenantName(tenant)) throw driverError(VG_ERR_DOMAIN_ARG, 'tenant name is malformed');
}

function tryParse(json: string, uuid: string, warn: (msg: string) => void): DomainDef | null {
  try {
    const o = JSON.parse(json) as Record<string, unknown>;
    // A tenant name no policy can hold (written by an older version): keep the VM, host admins only, and say so.
    if (typeof o.tenant === 'string' && !isTenantName(o.tenant)) {
      warn(
        `stored tenant name of domain '${String(o.name).slice(0, 64)}' is malformed (${o.tenant.length} characters); the VM is kept without a tenant (host admins only) until reassigned`,
      );
      o.tenant = '';
    }
    const def = domainDefFromJson(o);
    if (def.uuid !== uuid) throw new Error(`file name does not match its uuid ${def.uuid}`);
    return def;
  } catch (e) {
    warn(`ignoring stored domain ${uuid}: ${e instanceof DriverError ? e.detail : e instanceof Error ? e.message : String(e)}`);
    return null;
  }
}

// Our own file, but still checked field by field: a corrupt one must not yield an impossible domain.
function restore(st: DomainStatus, config: DomainDef | null, uuid: string): DomainObj | null {
  const int = (v: unknown, lo: number, hi: number, what: string): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw new Error(`bad ${what}`);
    return v;
  };
  const state = int(st.state, 1, 7, 'state');
  const reason = int(st.reason, 0, 64, 'reason');
  if (typeof st.cpuNs !== 'string' || !/^[0-9]{1,20}$/.test(st.cpuNs)) throw new Error('bad cpuNs');
  const cpuNs = BigInt(st.cpuNs);
  const flags = { autostart: st.autostart === true, managedSave: st.managedSave === true };
  if (state === DomainState.SHUTOFF) {
    return config ? { def: config, newDef: null, persistent: true, state, reason, id: -1, cpuNs, since: null, ...flags } : null;
  }
  if (state !== DomainState.RUNNING && state !== DomainState.PAUSED) throw new Error('bad state');
  if (typeof st.live !== 'object' || st.live === null) throw new Error('active domain without live definition');
  const live = domainDefFromJson(st.live as Record<string, unknown>);
  if (live.uuid !== uuid) throw new Error('live definition uuid mismatch');
  const since = state === DomainState.RUNNING ? int(st.since, 0, Number.MAX_SAFE_INTEGER, 'since') : null;
  // The config file is the truth about persistence: undefine removed it even if the status says otherwise.
  const persistent = config !== null;
  return { def: live, newDef: config, persistent, state, reason, id: int(st.id, 1, 0x7fffffff, 'id'), cpuNs, since, ...flags };
}
