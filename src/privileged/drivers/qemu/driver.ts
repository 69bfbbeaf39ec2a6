// SPDX-License-Identifier: Apache-2.0
// The QEMU driver: persistent definitions, real QEMU processes spawned by the launcher, driven over QMP (helper side).
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { hostname } from 'node:os';
import * as path from 'node:path';
import {
  VG_ERR_ACCESS_DENIED,
  VG_ERR_CONFIG_UNSUPPORTED,
  VG_ERR_DOMAIN_ARG,
  VG_ERR_DOMAIN_EXISTS,
  VG_ERR_DOMAIN_INTERNAL,
  VG_ERR_DOMAIN_STATE,
  VG_ERR_INTERNAL,
  VG_ERR_LIMIT,
  VG_ERR_NO_DOMAIN,
  VG_ERR_NOT_SUPPORTED,
  VG_ERR_OP_UNSUPPORTED,
  VG_ERR_RESOURCE_DENIED,
  VG_ERR_STORAGE,
} from '../../../common/errors';
import { DomainState } from '../../../common/domain-state';
import { isTenantName } from '../../../common/names';
import { type DomainDef, domainDefFromJson, domainDefToJson } from '../../../ipc/objects/domain-def';
import { ControlAction, IpcLimits, LookupKind, uuidFromString, uuidToString } from '../../../ipc/program';
import type { ControlActionCode, DomainInfo, DomainSnapshot, DomainSummary, LookupKey, NodeFacts } from '../../../ipc/program';
import type { DomainExtraDriver } from '../domain-extra-driver';
import { connectConsole, consoleDevOk } from './console';
import { openDisplay, screendump, sendKeys } from './display';
import { KeycodeError } from '../../qemu/keycodes';
import type { DomainCapsQuery } from '../../../ipc/objects/host-objects';
import { type QemuProbe, domainCapabilitiesXml, probeQemu, qemuCapabilitiesXml, qemuVersionNumber } from '../../qemu/host-caps';
import { type ChangeListener, type Driver, DriverError, type LifecycleListener, type ObjectEventListener, type SetFlags, driverError } from '../driver';
import { storeRecords } from '../object-context';
import { QemuPools, type QemuPoolsOptions } from '../qemu-pools';
import { type DomainStatus, type FileChange, StateStore } from '../store';
import { type DescriptorPlan, type PlannedLayer, SANDBOX, argvDigest, buildArgv } from './argv';
import { EMULATOR, type QemuConfig, QEMU_MAX_VCPUS, confineQemu, qemuConfigOf } from './config';
import { type QemuHost, vmCpuFile, vmCpuNs } from './host';
import { QmpClient, type QmpEvent } from './qmp';

// virDomain*Reason and virDomainEvent*DetailType values (libvirt-domain.h).
const Running = { UNKNOWN: 0, BOOTED: 1, UNPAUSED: 5 } as const;
const Paused = { UNKNOWN: 0, USER: 1, SHUTTING_DOWN: 8 } as const;
const Shutoff = { UNKNOWN: 0, SHUTDOWN: 1, DESTROYED: 2, CRASHED: 3, FAILED: 6 } as const;
const Ev = { DEFINED: 0, UNDEFINED: 1, STARTED: 2, SUSPENDED: 3, RESUMED: 4, STOPPED: 5 } as const;
const Stopped = { SHUTDOWN: 0, DESTROYED: 1, CRASHED: 2, FAILED: 5 } as const;

const SLOT_MAX = 9999;
const MEM_OVERHEAD_BYTES = 512n * 1024n * 1024n; // QEMU's own heap, TCG translation cache, device state above guest RAM
const PIDS_MAX = 256; // QEMU threads: one per vCPU plus I/O workers; a fork bomb inside QEMU stops here
const SERIAL_LOG_MAX = 1024 * 1024; // 1 MiB per VM log; the rest of the output is dropped
const EXIT_WAIT_MS = 3000; // SIGKILL to gone: QEMU exits in ~23 ms (qemu-notes)
const CLEANUP_WAIT_MS = 2000; // the jail's own processes exit right after QEMU
const REATTACH_QMP_MS = 1500; // a running QEMU answers in ~1 ms; the whole reattach must fit in 2 s

export interface QemuDriverOptions {
  stateDir: string;
  runtimeDir: string;
  host: QemuHost;
  cgroupRoot: string;
  warn?: (msg: string) => void;
  // The helper's journal: one record per spawn with the argv's sha256 (what exactly ran).
  pools?: QemuPoolsOptions; // directory pools (tenant root, admin roots); absent: no pools, file disks for host admins only
  onClose?: () => void; // the wiring's own teardown (launcher reconnects)
  journalSpawn?: (rec: { uuid: string; name: string; tenant: string; digest: string; slot: number }) => (result: string) => void;
}

interface Run {
  slot: number;
  pid: number;
  tenant: string;
  qmp: QmpClient | null;
  serial: SerialLog | null;
  stopping: boolean; // a destroy (or on_poweroff) is killing it: the monitor's EOF is expected
  rebooting: boolean; // reboot asked: the guest's SHUTDOWN means reset, not poweroff
  ownStopCont: boolean; // our own stop/cont is in flight: its STOP/RESUME event is committed by the caller
  shuttingDown: boolean; // the guest's SHUTDOWN was seen: QEMU's following STOP is part of it
}

interface Vm {
  def: DomainDef; // live definition while active, else the config
  newDef: DomainDef | null; // the config while active
  persistent: boolean;
  state: number;
  reason: number;
  id: number;
  autostart: boolean;
  run: Run | null;
}

const isActive = (d: Vm) => d.state !== DomainState.SHUTOFF;

// The helper's copy of the guest's serial output: STATE/qemu/logs/<uuid>.serial.log, 0600, capped.
class SerialLog {
  readonly #sock: net.Socket;
  readonly #fd: number;
  #bytes: number;
  constructor(socketPath: string, file: string, truncate: boolean) {
    this.#fd = fs.openSync(file, truncate ? 'w' : 'a', 0o600);
    this.#bytes = truncate ? 0 : fs.fstatSync(this.#fd).size;
    this.#sock = net.connect(socketPath);
    this.#sock.on('data', (b: Buffer) => {
      const room = SERIAL_LOG_MAX - this.#bytes;
      if (room <= 0) return;
      const chunk = b.length > room ? b.subarray(0, room) : b;
      try {
        fs.writeSync(this.#fd, chunk);
        this.#bytes += chunk.length;
      } catch {
        this.#bytes = SERIAL_LOG_MAX; // a full disk: stop logging this VM, never the helper
      }
    });
    this.#sock.on('error', () => undefined);
  }
  close(): void {
    this.#sock.destroy();
    try {
      fs.closeSync(this.#fd);
    } catch {
      // already closed
    }
  }
}

export class QemuDriver implements Driver {
  readonly name = 'qemu';
  // Autostart, reset and the checks virsh makes; the other extra calls (tuning, pinning, stats) answer "not supported".
  readonly domainExtra: DomainExtraDriver = extraOf(this);
  readonly #o: QemuDriverOptions;
  readonly #store: StateStore;
  readonly #warn: (msg: string) => void;
  readonly #domains = new Map<string, Vm>();
  readonly #listeners = new Set<LifecycleListener>();
  readonly #changeListeners = new Set<ChangeListener>();
  readonly #objectListeners = new Set<ObjectEventListener>();
  pools?: QemuPools;
  readonly #qemuRun: string;
  readonly #logDir: string;
  #nextId = 1;
  #closed = false;
  readonly #probeSlots = new Set<number>(); // slots a probe QEMU holds
  readonly #foreignSlots = new Set<number>(); // slots whose uid a process of another launcher held when we tried
  #probe: QemuProbe | null = null; // what this host's QEMU offers (capabilities); null until probed

  constructor(o: QemuDriverOptions) {
    this.#o = o;
    this.#warn = o.warn ?? ((m: string) => process.stderr.write(`virtgate-helper: ${m}\n`));
    this.#store = new StateStore(o.stateDir, o.runtimeDir, { warn: this.#warn });
    this.#qemuRun = path.join(o.runtimeDir, 'qemu');
    this.#logDir = path.join(o.stateDir, 'qemu', 'logs');
    for (const d of [this.#qemuRun, this.#logDir]) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
    this.#load();
    this.#probe = this.#cachedProbe();
    this.#store.noteNextId(this.#nextId);
    this.#store.checkpoint();
    this.#store.markInitialized();
  }

  #load(): void {
    const loaded = this.#store.load(this.#warn);
    if (this.#o.pools) {
      const ctx = {
        records: storeRecords(this.#store, loaded.objects),
        firstStart: loaded.firstStart,
        warn: this.#warn,
        emit: (ev: Parameters<ObjectEventListener>[0]) => {
          for (const l of [...this.#objectListeners]) l(ev);
        },
      };
      this.pools = new QemuPools(ctx, this.#o.pools);
    }
    const autostart = loaded.objects.get('autostart') ?? new Map<string, string>();
    for (const [uuid, json] of loaded.configs) {
      try {
        const def = domainDefFromJson(JSON.parse(json) as Record<string, unknown>);
        if (def.uuid !== uuid) throw new Error('file name does not match its uuid');
        this.#domains.set(uuid, {
          def,
          newDef: null,
          persistent: true,
          state: DomainState.SHUTOFF,
          reason: Shutoff.UNKNOWN,
          id: -1,
          autostart: autostart.has(uuid),
          run: null,
        });
      } catch (e) {
        this.#warn(`ignoring stored domain ${uuid}: ${(e as Error).message}`);
      }
    }
    let maxId = 0;
    for (const [uuid, st] of loaded.statuses) {
      try {
        const vm = this.#restore(uuid, st);
        if (!vm) continue;
        this.#domains.set(uuid, vm);
        maxId = Math.max(maxId, vm.id);
      } catch (e) {
        this.#warn(`ignoring status of domain ${uuid}: ${(e as Error).message}`);
      }
    }
    this.#nextId = Math.max(loaded.nextId ?? 1, maxId + 1);
  }

  // An active status from before the restart: the VM is taken as it was until reattach() checks it.
  #restore(uuid: string, st: DomainStatus & { qemu?: unknown }): Vm | null {
    const config = this.#domains.get(uuid);
    if (st.state === DomainState.SHUTOFF) return config ? { ...config, reason: typeof st.reason === 'number' ? st.reason : 0 } : null;
    if (st.state !== DomainState.RUNNING && st.state !== DomainState.PAUSED) throw new Error('bad state');
    const q = st.qemu as { slot?: unknown; pid?: unknown; tenant?: unknown } | undefined;
    if (!q || !Number.isInteger(q.slot) || !Number.isInteger(q.pid) || typeof q.tenant !== 'string') throw new Error('active status without its QEMU record');
    if (typeof st.live !== 'object' || st.live === null) throw new Error('active domain without live definition');
    const live = domainDefFromJson(st.live as Record<string, unknown>);
    if (live.uuid !== uuid) throw new Error('live definition uuid mismatch');
    if (!Number.isInteger(st.id) || st.id < 1) throw new Error('bad id');
    return {
      def: live,
      newDef: config?.def ?? null,
      persistent: config !== undefined,
      state: st.state,
      reason: st.reason,
      id: st.id,
      autostart: config?.autostart ?? false,
      run: {
        slot: q.slot as number,
        pid: q.pid as number,
        tenant: q.tenant,
        qmp: null,
        serial: null,
        stopping: false,
        rebooting: false,
        ownStopCont: false,
        shuttingDown: false,
      },
    };
  }

  // After a helper restart: every VM we think active is checked against the launcher and its monitor; QEMUs the launcher
  // runs for us that we do not know (a start cut short) are killed. Then autostart VMs that are not running start.
  async reattach(bootAutostart: boolean): Promise<void> {
    const launcher = this.#o.host.launcher();
    if (!launcher) {
      this.#warn('launcher not connected: running VMs are not re-attached yet');
      return;
    }
    const live = new Map((await launcher.list()).map((v) => [v.vm, v]));
    await Promise.all(
      [...this.#domains.values()].filter(isActive).map(async (d) => {
        const run = d.run!;
        const seen = live.get(d.def.uuid);
        live.delete(d.def.uuid);
        if (!seen || seen.pid !== run.pid) {
          this.#warn(`domain '${d.def.name}': its QEMU (pid ${run.pid}) is gone; shut off`);
          return this.#stopped(d, Shutoff.FAILED, Stopped.FAILED);
        }
        try {
          await this.#attach(d, false);
          const st = (await run.qmp!.execute('query-status', undefined, REATTACH_QMP_MS)) as { status?: unknown; running?: unknown };
          if (st.status === 'shutdown') {
            // The guest powered off while the helper was away (-no-shutdown keeps QEMU there): apply on_poweroff now.
            return this.#onGuestShutdown(d);
          }
          const running = st.running === true;
          if (running !== (d.state === DomainState.RUNNING)) {
            const next = running ? { state: DomainState.RUNNING, reason: Running.UNPAUSED } : { state: DomainState.PAUSED, reason: Paused.UNKNOWN };
            this.#commit(d, { ...d, ...next }, running ? [Ev.RESUMED, 0] : [Ev.SUSPENDED, 0]);
          }
        } catch (e) {
          this.#warn(`domain '${d.def.name}': cannot re-attach to QEMU pid ${run.pid} (${(e as Error).message}); killing it`);
          await this.#kill(d, Shutoff.FAILED, Stopped.FAILED);
        }
      }),
    );
    for (const orphan of live.values()) {
      this.#warn(`killing QEMU pid ${orphan.pid} of VM ${orphan.vm}: no active domain of ours owns it`);
      await launcher.signal(orphan.vm, 'SIGKILL').catch(() => undefined);
      await waitGone(orphan.pid);
      await this.#cleanup(orphan.vm);
    }
    if (!bootAutostart) return;
    for (const d of [...this.#domains.values()]) {
      if (!d.autostart || isActive(d)) continue;
      try {
        await this.#start(d);
      } catch (e) {
        this.#warn(`autostart of '${d.def.name}' failed: ${e instanceof DriverError ? e.detail : (e as Error).message}`);
      }
    }
  }

  // ---------- the probe: what this host's QEMU offers ----------

  // Cached under STATE by the emulator's identity (size, mtime, inode): a helper restart answers at once.
  #probeCache(): { file: string; key: string } {
    let key = 'absent';
    try {
      const st = fs.statSync(EMULATOR);
      key = `${st.size}:${st.mtimeMs}:${st.ino}`;
    } catch {
      // no emulator: the helper refused to start already
    }
    return { file: path.join(this.#o.stateDir, 'qemu', 'probe.json'), key };
  }

  #cachedProbe(): QemuProbe | null {
    const { file, key } = this.#probeCache();
    try {
      const o = JSON.parse(fs.readFileSync(file, 'utf8')) as { key?: unknown; probe?: QemuProbe };
      // Our own root-only file under STATE, written from a checked probe; a stale or odd one is probed again.
      if (o.key !== key || !o.probe || !Array.isArray(o.probe.machines) || typeof o.probe.version !== 'string') return null;
      return o.probe;
    } catch {
      return null;
    }
  }

  // A QEMU with no machine, started paused through the launcher like any VM, asked over QMP, then killed.
  async probe(): Promise<QemuProbe> {
    if (this.#probe) return this.#probe;
    const launcher = this.#o.host.launcher();
    if (!launcher) throw driverError(VG_ERR_DOMAIN_INTERNAL, 'the QEMU launcher is not connected; try again');
    const vm = randomUUID();
    const dir = path.join(this.#qemuRun, vm);
    fs.mkdirSync(dir, { mode: 0o700 });
    const fd = this.#o.host.bindListener(path.join(dir, 'qmp.sock'));
    const argv = ['-machine', 'none', '-nodefaults', '-no-user-config', '-display', 'none', '-S', '-sandbox', SANDBOX];
    argv.push('-chardev', 'socket,id=charmonitor,fd=3,server=on,wait=off', '-mon', 'chardev=charmonitor,mode=control');
    let pid = -1;
    const slot = this.#freeSlot();
    this.#probeSlots.add(slot);
    const end = this.#o.journalSpawn?.({ uuid: vm, name: '(capabilities probe)', tenant: '', digest: argvDigest(argv), slot });
    try {
      ({ pid } = await launcher.spawn({ vm, slot, tenant: '', argv, limits: { memoryBytes: MEM_OVERHEAD_BYTES, pids: PIDS_MAX }, kvm: false }, [fd]));
      end?.(`ok pid ${pid}`);
    } catch (e) {
      end?.((e as { code?: string }).code ?? 'failed');
      throw e;
    } finally {
      this.#o.host.closeFd(fd);
    }
    let qmp: QmpClient | null = null;
    try {
      qmp = await QmpClient.connect(path.join(dir, 'qmp.sock'));
      const q = qmp;
      this.#probe = await probeQemu((cmd, args) => q.execute(cmd, args as Record<string, unknown> | undefined), EMULATOR);
    } finally {
      qmp?.close();
      await launcher.signal(vm, 'SIGKILL').catch(() => undefined);
      await waitGone(pid);
      await this.#cleanup(vm);
      fs.rmSync(dir, { recursive: true, force: true });
      this.#probeSlots.delete(slot);
    }
    const { file, key } = this.#probeCache();
    const tmp = `${file}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, JSON.stringify({ key, probe: this.#probe }), { mode: 0o600 });
    fs.renameSync(tmp, file);
    return this.#probe;
  }

  async domainCapabilities(q: DomainCapsQuery): Promise<string> {
    return domainCapabilitiesXml(await this.probe(), q);
  }

  // ---------- reads ----------

  nodeFacts(): NodeFacts {
    const memKiB = BigInt(/^MemTotal:\s+([0-9]+) kB/m.exec(readOr('/proc/meminfo', ''))?.[1] ?? '0');
    const freeKiB = BigInt(/^MemAvailable:\s+([0-9]+) kB/m.exec(readOr('/proc/meminfo', ''))?.[1] ?? '0');
    const cpus = (readOr('/proc/cpuinfo', '').match(/^processor\s*:/gm) ?? []).length || 1;
    const mhz = Math.round(Number(/^cpu MHz\s*:\s*([0-9.]+)/m.exec(readOr('/proc/cpuinfo', ''))?.[1] ?? '0'));
    return {
      driver: 'qemu',
      uri: 'qemu:///system',
      hvType: 'QEMU',
      hvVersion: this.#probe ? qemuVersionNumber(this.#probe) : 0n,
      hostname: hostname(),
      model: 'x86_64',
      memoryKiB: memKiB,
      cpus,
      mhz,
      nodes: 1,
      sockets: 1,
      cores: cpus,
      threads: 1,
      capabilitiesXml: this.#probe ? qemuCapabilitiesXml(this.#probe, { uuid: hostUuid(), cpus, memKiB, arch: 'x86_64' }) : minimalCapabilities(),
      securityModel: 'none',
      securityDoi: '0',
      maxVcpus: QEMU_MAX_VCPUS,
      cellsFreeBytes: [freeKiB * 1024n],
      freeMemoryBytes: freeKiB * 1024n,
    };
  }

  list(): DomainSummary[] {
    return [...this.#domains.values()].map(summaryOf);
  }

  lookup(key: LookupKey): DomainSummary {
    let found: Vm | undefined;
    if (key.kind === LookupKind.UUID) found = this.#domains.get(uuidToString(key.uuid));
    else if (key.kind === LookupKind.NAME) found = this.#byName(key.name);
    else found = [...this.#domains.values()].find((d) => isActive(d) && d.id === key.id);
    if (!found) throw driverError(VG_ERR_NO_DOMAIN, '');
    return summaryOf(found);
  }

  info(uuid: Buffer): DomainInfo {
    return this.#infoOf(this.#get(uuid));
  }

  #infoOf(d: Vm): DomainInfo {
    const active = isActive(d);
    return {
      ...summaryOf(d),
      maxMemKiB: d.def.maxMemKiB,
      memoryKiB: d.def.curMemKiB,
      nrVirtCpu: d.def.vcpus,
      maxVcpus: d.def.vcpusMax,
      cpuTimeNs: active && d.run ? (vmCpuNs(this.#o.cgroupRoot, d.run.tenant, d.def.uuid, d.run.pid) ?? 0n) : 0n,
      autostart: d.autostart,
      osType: 'hvm',
      hasManagedSave: false,
      securityLabel: '',
      securityEnforcing: false,
    };
  }

  snapshots(): DomainSnapshot[] {
    return [...this.#domains.values()].map((d) => this.#snapshotOf(d));
  }

  // CPU time comes from the cgroup at each GetInfo (cpuClock false): the front end reads the running VM's accounting
  // file itself (cgroup files are world-readable); without one it asks the helper.
  #snapshotOf(d: Vm): DomainSnapshot {
    const info = this.#infoOf(d);
    const cpuFile = isActive(d) && d.run ? vmCpuFile(this.#o.cgroupRoot, d.run.tenant, d.def.uuid) : null;
    return { info, cpuBaseNs: info.cpuTimeNs, cpuSinceMs: null, cpuClock: false, cpuFile };
  }

  onChange(listener: ChangeListener): () => void {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  onObjectEvent(listener: ObjectEventListener): () => void {
    this.#objectListeners.add(listener);
    return () => this.#objectListeners.delete(listener);
  }

  onLifecycle(listener: LifecycleListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  xml(uuid: Buffer, inactive: boolean): { def: DomainDef; id: number | null } {
    const d = this.#get(uuid);
    if (inactive && d.newDef) return { def: d.newDef, id: null };
    return { def: d.def, id: isActive(d) ? d.id : null };
  }

  // Where the guest's serial output is logged (tests, the console of a later issue).
  serialLogPath(uuid: string): string {
    return path.join(this.#logDir, `${uuid}.serial.log`);
  }

  // ---------- definitions ----------

  define(parsed: DomainDef, tenant = ''): DomainSummary {
    checkTenant(tenant);
    const old = this.#checkClash(parsed, tenant);
    const def = { ...parsed, tenant: this.#tenantFor(old, tenant) };
    this.#confine(def, tenant);
    if (!old) {
      if (this.#domains.size >= IpcLimits.DOMAINS_MAX) throw driverError(VG_ERR_LIMIT, `at most ${IpcLimits.DOMAINS_MAX} domains`);
      const vm: Vm = { def, newDef: null, persistent: true, state: DomainState.SHUTOFF, reason: Shutoff.UNKNOWN, id: -1, autostart: false, run: null };
      this.#commit(null, vm, [Ev.DEFINED, 0], def);
      return summaryOf(vm);
    }
    const next: Vm = isActive(old) ? { ...old, newDef: def, persistent: true } : { ...old, def };
    this.#commit(old, next, [Ev.DEFINED, old.persistent ? 1 : 0], def);
    return summaryOf(next);
  }

  async createXml(parsed: DomainDef, tenant = ''): Promise<DomainSummary> {
    checkTenant(tenant);
    const old = this.#checkClash(parsed, tenant);
    const def = { ...parsed, tenant: this.#tenantFor(old, tenant) };
    this.#confine(def, tenant);
    if (old && isActive(old)) throw driverError(VG_ERR_DOMAIN_STATE, `domain '${old.def.name}' is already active`);
    const base: Vm = old
      ? { ...old, def }
      : { def, newDef: null, persistent: false, state: DomainState.SHUTOFF, reason: Shutoff.UNKNOWN, id: -1, autostart: false, run: null };
    if (!old) this.#domains.set(def.uuid, base); // reserved while it starts; removed again if the start fails
    try {
      return await this.#start(base, old ? this.#configOf(old) : null);
    } catch (e) {
      if (!old && this.#domains.get(def.uuid) === base) this.#domains.delete(def.uuid);
      throw e;
    }
  }

  // The subset, then a tenant session's limits: no host paths or bridges, disks only in pools it may use.
  #confine(def: DomainDef, tenant: string): void {
    const cfg = qemuConfigOf(def);
    if (tenant === '') return;
    confineQemu(cfg, tenant);
    for (const d of cfg.disks)
      if (d.source && !this.#diskPlace(d.source, tenant))
        throw driverError(
          VG_ERR_RESOURCE_DENIED,
          `disk '${d.target}' (${d.source.kind === 'file' ? d.source.path : `${d.source.pool}/${d.source.volume}`}) is not a volume the VM may use; tenant '${tenant}' may use only its own or shared storage volumes and networks`,
        );
  }

  setTenant(uuid: Buffer, tenant: string): DomainSummary {
    checkTenant(tenant);
    const d = this.#get(uuid);
    const next: Vm = { ...d, def: { ...d.def, tenant }, newDef: d.newDef ? { ...d.newDef, tenant } : null };
    this.#commit(d, next, [Ev.DEFINED, 1], d.persistent ? (next.newDef ?? next.def) : undefined);
    return summaryOf(next);
  }

  undefine(uuid: Buffer): void {
    const d = this.#get(uuid);
    if (!d.persistent) throw driverError(VG_ERR_DOMAIN_STATE, 'cannot undefine transient domain');
    const next: Vm | null = isActive(d) ? { ...d, persistent: false, newDef: null, autostart: false } : null;
    this.#commit(d, next, [Ev.UNDEFINED, 0], null, { autostart: false });
  }

  setAutostart(uuid: Buffer, on: boolean): void {
    const d = this.#get(uuid);
    if (!d.persistent) throw driverError(VG_ERR_DOMAIN_STATE, 'cannot set autostart for transient domain');
    this.#commit(d, { ...d, autostart: on }, null, undefined, { autostart: on });
  }

  // ---------- lifecycle ----------

  async control(uuid: Buffer, action: ControlActionCode): Promise<DomainSummary> {
    const d = this.#get(uuid);
    const name = d.def.name;
    switch (action) {
      case ControlAction.START:
        if (isActive(d)) throw driverError(VG_ERR_DOMAIN_STATE, 'domain is already running');
        return this.#start(d);
      case ControlAction.DESTROY:
        if (!isActive(d)) throw driverError(VG_ERR_DOMAIN_STATE, 'domain is not running');
        await this.#kill(d, Shutoff.DESTROYED, Stopped.DESTROYED);
        return summaryOf(this.#domains.get(d.def.uuid) ?? { ...d, state: DomainState.SHUTOFF, reason: Shutoff.DESTROYED, id: -1 });
      case ControlAction.SUSPEND:
        if (!isActive(d)) throw driverError(VG_ERR_DOMAIN_STATE, 'domain is not running');
        if (d.state === DomainState.PAUSED) return summaryOf(d);
        await this.#ownStopCont(d, 'stop');
        return this.#commit(d, { ...this.#now(d), state: DomainState.PAUSED, reason: Paused.USER }, [Ev.SUSPENDED, 0]);
      case ControlAction.RESUME:
        if (!isActive(d)) throw driverError(VG_ERR_DOMAIN_STATE, 'domain is not running');
        if (d.state !== DomainState.PAUSED) throw driverError(VG_ERR_DOMAIN_STATE, 'domain is not paused');
        await this.#ownStopCont(d, 'cont');
        return this.#commit(d, { ...this.#now(d), state: DomainState.RUNNING, reason: Running.UNPAUSED }, [Ev.RESUMED, 0]);
      case ControlAction.SHUTDOWN:
        if (!isActive(d)) throw driverError(VG_ERR_DOMAIN_STATE, 'domain is not running');
        // ACPI power button; the guest decides. The state changes when QEMU reports the guest's SHUTDOWN.
        await this.#qmp(d, 'system_powerdown');
        return summaryOf(d);
      case ControlAction.REBOOT:
        if (!isActive(d)) throw driverError(VG_ERR_DOMAIN_STATE, 'domain is not running');
        // libvirt's ACPI reboot with -no-shutdown: power button now; the guest's SHUTDOWN then becomes reset + cont.
        d.run!.rebooting = true;
        await this.#qmp(d, 'system_powerdown');
        return summaryOf(d);
    }
    throw driverError(VG_ERR_DOMAIN_ARG, `unsupported action ${String(action)} (${name})`);
  }

  // Checked now; the reset itself is QMP's (a few ms): the extra-action answer does not wait for it.
  reset(uuid: Buffer): Promise<void> {
    const d = this.#get(uuid);
    if (!isActive(d)) throw driverError(VG_ERR_DOMAIN_STATE, 'domain is not running');
    const done = this.#qmp(d, 'system_reset').then(() => undefined);
    done.catch((e: Error) => this.#warn(`reset of '${d.def.name}': ${e instanceof DriverError ? e.detail : e.message}`));
    return done;
  }

  // The serial console as a descriptor (qemu/console.ts): the helper's logger lets go of QEMU's one client slot.
  async openConsole(uuid: Buffer, devName: string | null): Promise<number> {
    const d = this.#get(uuid);
    if (!isActive(d) || !d.run) throw driverError(VG_ERR_DOMAIN_STATE, 'domain is not running');
    const sock = path.join(this.#qemuRun, d.def.uuid, 'serial.sock');
    if (!consoleDevOk(devName) || !fs.existsSync(sock)) throw driverError(VG_ERR_DOMAIN_INTERNAL, `cannot find character device ${devName ?? '<null>'}`);
    d.run.serial?.close();
    d.run.serial = null;
    return connectConsole(sock);
  }

  // The console's holder let go: the logger takes QEMU's client slot again (QEMU accepts it once the holder hung up).
  consoleClosed(uuid: Buffer): void {
    const d = this.#domains.get(uuidToString(uuid));
    const run = d?.run;
    if (!d || !run || !isActive(d) || run.serial) return;
    const sock = path.join(this.#qemuRun, d.def.uuid, 'serial.sock');
    if (fs.existsSync(sock)) run.serial = new SerialLog(sock, this.serialLogPath(d.def.uuid), false);
  }

  // Graphics (qemu/display.ts): a VNC client socket, the screen as a sealed memfd, keys typed through QMP.
  async openGraphics(uuid: Buffer, idx: number): Promise<number> {
    const d = this.#running(uuid);
    if (idx !== 0 || !qemuConfigOf(d.def).vnc) throw driverError(VG_ERR_DOMAIN_INTERNAL, `No graphics backend with index ${idx}`);
    return this.#display(d, 'add_client', (q) => openDisplay(q));
  }

  async screenshotFd(uuid: Buffer, screen: number): Promise<{ mime: string; fd: number }> {
    const d = this.#running(uuid);
    if (screen !== 0) throw driverError(VG_ERR_DOMAIN_ARG, `no screen with index ${screen}`);
    const cfg = qemuConfigOf(d.def);
    if (!cfg.vnc && !cfg.video) throw driverError(VG_ERR_DOMAIN_STATE, 'the domain has no display');
    const { mime, fd } = await this.#display(d, 'screendump', (q) => screendump(q));
    return { mime, fd };
  }

  async sendKeys(uuid: Buffer, codeset: number, keycodes: number[]): Promise<void> {
    await this.#display(this.#running(uuid), 'send-key', (q) => sendKeys(q, codeset, keycodes));
  }

  #running(uuid: Buffer): Vm {
    const d = this.#get(uuid);
    if (!isActive(d) || !d.run) throw driverError(VG_ERR_DOMAIN_STATE, 'domain is not running');
    return d;
  }

  async #display<T>(d: Vm, what: string, f: (q: QmpClient) => Promise<T>): Promise<T> {
    const qmp = d.run?.qmp;
    if (!qmp || qmp.closed) throw driverError(VG_ERR_DOMAIN_INTERNAL, `the monitor of domain '${d.def.name}' is not connected`);
    try {
      return await f(qmp);
    } catch (e) {
      if (e instanceof KeycodeError) throw driverError(VG_ERR_DOMAIN_ARG, e.message);
      throw driverError(VG_ERR_DOMAIN_INTERNAL, `QEMU ${what}: ${(e as Error).message}`);
    }
  }

  checkActive(uuid: Buffer): void {
    if (!isActive(this.#get(uuid))) throw driverError(VG_ERR_DOMAIN_STATE, 'domain is not running');
  }

  async setMemory(uuid: Buffer, memoryKiB: bigint, flags: SetFlags): Promise<void> {
    const d = this.#get(uuid);
    const { live, config } = this.#impact(d, flags);
    if (flags.max) {
      if (live) throw driverError(VG_ERR_DOMAIN_STATE, 'cannot resize the maximum memory on an active domain');
      const conf = this.#configOf(d);
      const def = { ...conf, maxMemKiB: memoryKiB, curMemKiB: memoryKiB < conf.curMemKiB ? memoryKiB : conf.curMemKiB };
      qemuConfigOf(def);
      this.#commit(d, isActive(d) ? { ...d, newDef: def } : { ...d, def }, null, def);
      return;
    }
    if (live) {
      if (memoryKiB > d.def.maxMemKiB) throw driverError(VG_ERR_DOMAIN_ARG, 'cannot set memory higher than max memory');
      if (!d.def.memballoon) throw driverError(VG_ERR_OP_UNSUPPORTED, 'Unable to change memory of active domain without the balloon device');
      await this.#qmp(d, 'balloon', { value: Number(memoryKiB * 1024n) });
      this.#commit(d, { ...this.#domains.get(d.def.uuid)!, def: { ...d.def, curMemKiB: memoryKiB } }, null);
    }
    if (config) {
      const cur = this.#domains.get(d.def.uuid)!;
      const conf = this.#configOf(cur);
      if (memoryKiB > conf.maxMemKiB) throw driverError(VG_ERR_DOMAIN_ARG, 'cannot set memory higher than max memory');
      const def = { ...conf, curMemKiB: memoryKiB };
      this.#commit(cur, isActive(cur) ? { ...cur, newDef: def } : { ...cur, def }, null, def);
    }
  }

  async setVcpus(uuid: Buffer, nvcpus: number, flags: SetFlags): Promise<void> {
    if (flags.max && !flags.config) throw driverError(VG_ERR_DOMAIN_ARG, "Flag 'VIR_DOMAIN_AFFECT_CONFIG' is required by flag 'VIR_DOMAIN_VCPU_MAXIMUM'");
    const d = this.#get(uuid);
    const { live, config } = this.#impact(d, flags);
    if (nvcpus < 1 || nvcpus > QEMU_MAX_VCPUS) throw driverError(VG_ERR_DOMAIN_ARG, `requested vcpus ${nvcpus} outside 1..${QEMU_MAX_VCPUS}`);
    if (live) {
      if (nvcpus > d.def.vcpusMax)
        throw driverError(VG_ERR_DOMAIN_ARG, `requested vcpus is greater than max allowable vcpus for the live domain: ${nvcpus} > ${d.def.vcpusMax}`);
      if (nvcpus < d.def.vcpus) throw driverError(VG_ERR_OP_UNSUPPORTED, 'vCPU unplug (guest cooperation) is not supported; use --config');
      if (nvcpus > d.def.vcpus) await this.#hotplugCpus(d, nvcpus - d.def.vcpus);
      const cur = this.#domains.get(d.def.uuid)!;
      this.#commit(cur, { ...cur, def: { ...cur.def, vcpus: nvcpus } }, null);
    }
    if (config) {
      const cur = this.#domains.get(d.def.uuid)!;
      const conf = this.#configOf(cur);
      const def = flags.max ? { ...conf, vcpusMax: nvcpus, vcpus: Math.min(conf.vcpus, nvcpus) } : { ...conf, vcpus: nvcpus };
      if (def.vcpus > def.vcpusMax) throw driverError(VG_ERR_DOMAIN_ARG, `requested vcpus is greater than max allowable vcpus: ${nvcpus} > ${def.vcpusMax}`);
      this.#commit(cur, isActive(cur) ? { ...cur, newDef: def } : { ...cur, def }, null, def);
    }
  }

  async #ownStopCont(d: Vm, cmd: 'stop' | 'cont'): Promise<void> {
    const run = d.run!;
    run.ownStopCont = true;
    try {
      await this.#qmp(d, cmd);
    } finally {
      run.ownStopCont = false;
    }
  }

  async #hotplugCpus(d: Vm, count: number): Promise<void> {
    const slots = (await this.#qmp(d, 'query-hotpluggable-cpus')) as unknown;
    if (!Array.isArray(slots)) throw driverError(VG_ERR_DOMAIN_INTERNAL, 'query-hotpluggable-cpus: not a list');
    const free = slots.filter((s): s is { type: string; props: Record<string, unknown>; 'qom-path'?: string } => {
      const o = s as Record<string, unknown>;
      return typeof o.type === 'string' && /^[a-z0-9_.-]{1,64}$/.test(o.type) && typeof o.props === 'object' && o.props !== null && o['qom-path'] === undefined;
    });
    // QEMU lists them highest first; plug in order of socket id so the guest numbers them as libvirt does.
    free.sort((a, b) => Number(a.props['socket-id'] ?? 0) - Number(b.props['socket-id'] ?? 0));
    if (free.length < count) throw driverError(VG_ERR_DOMAIN_INTERNAL, `only ${free.length} hotpluggable vCPU slots left`);
    for (const s of free.slice(0, count)) {
      const props = Object.fromEntries(Object.entries(s.props).filter(([k, v]) => /^[a-z-]{1,32}$/.test(k) && Number.isInteger(v)));
      await this.#qmp(d, 'device_add', { driver: s.type, id: `vcpu${String(props['socket-id'] ?? '')}`, ...props });
    }
  }

  // ---------- starting and stopping ----------

  async #start(d: Vm, keepConfig: DomainDef | null = null): Promise<DomainSummary> {
    const host = this.#o.host;
    const launcher = host.launcher();
    if (!launcher) throw driverError(VG_ERR_DOMAIN_INTERNAL, 'the QEMU launcher is not connected; try again');
    const def = d.def;
    const uuid = def.uuid;
    const cfg = qemuConfigOf(def);
    confineQemu(cfg, def.tenant);
    let slot = this.#freeSlot();
    const dir = path.join(this.#qemuRun, uuid);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { mode: 0o700 });
    const opened: number[] = [];
    const own = (fd: number): number => (opened.push(fd), fd);
    let pid: number;
    try {
      const plan: DescriptorPlan = {
        qmp: own(host.bindListener(path.join(dir, 'qmp.sock'))),
        serial: cfg.serial ? own(host.bindListener(path.join(dir, 'serial.sock'))) : null,
        agent: cfg.guestAgent ? own(host.bindListener(path.join(dir, 'agent.sock'))) : null,
        kernel: cfg.kernel ? own(host.kernelMemfd(cfg.kernel, 'kernel')) : null,
        initrd: cfg.initrd ? own(host.kernelMemfd(cfg.initrd, 'initrd')) : null,
        disks: cfg.disks.map((disk) => this.#openDisk(disk, def.tenant, own)),
        taps: [],
      };
      // Bridged interfaces (host admins only, confineQemu): the launcher makes each tap and hands its descriptor over.
      for (const n of cfg.nets) {
        if (n.kind !== 'bridge') {
          plan.taps!.push(null);
          continue;
        }
        try {
          plan.taps!.push(own((await launcher.tap(n.bridge!)).fd));
        } catch (e) {
          throw driverError(VG_ERR_CONFIG_UNSUPPORTED, `interface on bridge '${n.bridge}': ${(e as Error).message}`);
        }
      }
      const built = buildArgv(cfg, plan);
      let end = this.#o.journalSpawn?.({ uuid, name: def.name, tenant: def.tenant, digest: built.digest, slot });
      const limits = { memoryBytes: cfg.maxMemKiB * 1024n + MEM_OVERHEAD_BYTES, pids: PIDS_MAX };
      for (let tries = 0; ; tries++) {
        try {
          ({ pid } = await launcher.spawn({ vm: uuid, slot, tenant: def.tenant, argv: built.argv, limits, kvm: cfg.accel === 'kvm' }, built.fds));
          break;
        } catch (e) {
          const code = (e as { code?: string }).code;
          end?.(code ?? 'failed');
          // A slot whose uid a process we did not start holds (another launcher's VM on this host): skipped from now on.
          if (code === 'slot-in-use' && /in use by pid/.test((e as Error).message) && tries < 8) {
            this.#foreignSlots.add(slot);
            slot = this.#freeSlot();
            end = this.#o.journalSpawn?.({ uuid, name: def.name, tenant: def.tenant, digest: built.digest, slot });
            continue;
          }
          throw driverError(VG_ERR_DOMAIN_INTERNAL, `the launcher refused to start QEMU: ${(e as Error).message}`);
        }
      }
      end?.(`ok pid ${pid}`);
    } catch (e) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw e;
    } finally {
      for (const fd of opened) host.closeFd(fd);
    }
    const run: Run = { slot, pid, tenant: def.tenant, qmp: null, serial: null, stopping: false, rebooting: false, ownStopCont: false, shuttingDown: false };
    const booting: Vm = { ...d, run };
    this.#domains.set(uuid, booting);
    try {
      await this.#attach(booting, true);
      if (cfg.balloon && cfg.curMemKiB < cfg.maxMemKiB) await run.qmp!.execute('balloon', { value: Number(cfg.curMemKiB * 1024n) });
      await run.qmp!.execute('cont');
    } catch (e) {
      run.stopping = true;
      await launcher.signal(uuid, 'SIGKILL').catch(() => undefined);
      await waitGone(pid);
      this.#release(booting);
      await this.#cleanup(uuid);
      this.#domains.set(uuid, d);
      throw e instanceof DriverError ? e : driverError(VG_ERR_DOMAIN_INTERNAL, `QEMU failed while starting: ${(e as Error).message}`);
    }
    const config = d.persistent ? (keepConfig ?? this.#configOf(d)) : null;
    const started: Vm = { ...booting, def, newDef: config, state: DomainState.RUNNING, reason: Running.BOOTED, id: this.#nextId };
    return this.#commit(d, started, [Ev.STARTED, 0], undefined, { nextId: this.#nextId + 1 });
  }

  // Monitor (and serial log) of a spawned or surviving QEMU; events drive the state from here on.
  async #attach(d: Vm, fresh: boolean): Promise<void> {
    const run = d.run!;
    const dir = path.join(this.#qemuRun, d.def.uuid);
    const qmp = await QmpClient.connect(path.join(dir, 'qmp.sock'), fresh ? undefined : REATTACH_QMP_MS);
    run.qmp = qmp;
    qmp.on('event', (ev: QmpEvent) => this.#onEvent(d.def.uuid, run, ev));
    qmp.once('close', () => this.#onMonitorClosed(d.def.uuid, run));
    if (fs.existsSync(path.join(dir, 'serial.sock'))) run.serial = new SerialLog(path.join(dir, 'serial.sock'), this.serialLogPath(d.def.uuid), fresh);
  }

  // Disk confinement, first layer: a disk is a plain name in an active pool (a tenant: its own or a shared one); with no
  // pools configured, a host admin's absolute path. openPoolDisk then opens it under its rules (openat2, one link, root's,
  // same filesystem, declared format, backing chain only within the pool or a base pool).
  #openDisk(disk: QemuConfig['disks'][number], tenant: string, own: (fd: number) => number): PlannedLayer[] | null {
    if (disk.source === null) return null;
    const where = this.#diskPlace(disk.source, tenant);
    if (!where) {
      const what = disk.source.kind === 'file' ? `file '${disk.source.path}'` : `volume '${disk.source.pool}/${disk.source.volume}'`;
      throw driverError(VG_ERR_RESOURCE_DENIED, `disk '${disk.target}': ${what} is not in a storage pool this VM may use`);
    }
    const layers = this.#o.host.openDisk({ ...where, format: disk.format, readOnly: disk.readOnly });
    return layers.map((l) => ({ fd: own(l.fd), format: l.format, readOnly: l.readOnly }));
  }

  #diskPlace(src: NonNullable<QemuConfig['disks'][number]['source']>, tenant: string): { poolDir: string; name: string; basePools: string[] } | null {
    const pools = this.pools;
    if (!pools) return src.kind === 'file' && tenant === '' ? { poolDir: path.dirname(src.path), name: path.basename(src.path), basePools: [] } : null;
    // Shared pools are read-only bases for backing files; the disk's own pool is its pool, writable.
    const base = (dir: string) => pools.basePoolDirs().filter((b) => b !== dir);
    if (src.kind === 'file') {
      const dir = path.dirname(src.path);
      return pools.diskSourceAllowed(src.path, tenant) ? { poolDir: dir, name: path.basename(src.path), basePools: base(dir) } : null;
    }
    try {
      const p = pools.poolByName(src.pool, tenant);
      if (!p.active || (tenant !== '' && p.tenant !== '' && p.tenant !== tenant)) return null;
      return { poolDir: p.config.targetPath, name: src.volume, basePools: base(p.config.targetPath) };
    } catch {
      return null;
    }
  }

  #freeSlot(): number {
    const used = new Set([...this.#probeSlots, ...this.#foreignSlots, ...[...this.#domains.values()].map((d) => d.run?.slot).filter((s) => s !== undefined)]);
    for (let s = 1; s <= SLOT_MAX; s++) if (!used.has(s)) return s;
    throw driverError(VG_ERR_LIMIT, `all ${SLOT_MAX} VM slots are in use`);
  }

  // SIGKILL through the launcher, wait for the exit, remove its cgroups; then shut off with the given reason.
  async #kill(d: Vm, reason: number, detail: number): Promise<void> {
    const run = d.run;
    if (!run) return this.#stopped(d, reason, detail);
    run.stopping = true;
    const launcher = this.#o.host.launcher();
    if (!launcher) throw driverError(VG_ERR_DOMAIN_INTERNAL, 'the QEMU launcher is not connected; try again');
    await launcher.signal(d.def.uuid, 'SIGKILL').catch((e: Error) => {
      if (pidAlive(run.pid)) throw driverError(VG_ERR_DOMAIN_INTERNAL, `cannot kill QEMU pid ${run.pid}: ${e.message}`);
    });
    if (!(await waitGone(run.pid))) throw driverError(VG_ERR_DOMAIN_INTERNAL, `QEMU pid ${run.pid} did not exit after SIGKILL`);
    await this.#cleanup(d.def.uuid);
    const cur = this.#domains.get(d.def.uuid);
    if (cur && cur.run === run) this.#stopped(cur, reason, detail);
  }

  // The VM's cgroups go once the jail above QEMU has exited too (a few ms after QEMU); a leftover is only logged.
  async #cleanup(uuid: string): Promise<void> {
    const until = Date.now() + CLEANUP_WAIT_MS;
    for (;;) {
      const launcher = this.#o.host.launcher();
      try {
        if (!launcher) throw new Error('launcher not connected');
        await launcher.cleanup(uuid);
        return;
      } catch (e) {
        if (Date.now() > until) return this.#warn(`cgroup cleanup of VM ${uuid}: ${(e as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  // Shut off in our books (the process is gone or being killed): release its sockets and monitor, commit, event.
  #stopped(d: Vm, reason: number, detail: number): void {
    this.#release(d);
    if (!d.persistent) {
      const summary = { ...summaryOf(d), id: -1, state: DomainState.SHUTOFF, reason };
      this.#commitRaw(d.def.uuid, null, [Ev.STOPPED, detail], summary);
      return;
    }
    const next: Vm = { ...d, def: this.#configOf(d), newDef: null, state: DomainState.SHUTOFF, reason, id: -1, run: null };
    this.#commit(d, next, [Ev.STOPPED, detail]);
  }

  #release(d: Vm): void {
    const run = d.run;
    if (!run) return;
    run.stopping = true;
    run.qmp?.close();
    run.serial?.close();
    fs.rmSync(path.join(this.#qemuRun, d.def.uuid), { recursive: true, force: true });
  }

  #onEvent(uuid: string, run: Run, ev: QmpEvent): void {
    const d = this.#domains.get(uuid);
    if (!d || d.run !== run || run.stopping || !isActive(d)) return;
    switch (ev.event) {
      case 'SHUTDOWN':
        // -no-shutdown: QEMU stopped the guest (its poweroff, or a SIGTERM from the host) and waits for our decision.
        this.#onGuestShutdown(d).catch((e: Error) => this.#warn(`domain '${d.def.name}': after the guest's shutdown: ${e.message}`));
        return;
      case 'STOP':
        if (run.ownStopCont || run.shuttingDown) return;
        if (d.state === DomainState.RUNNING) this.#commit(d, { ...d, state: DomainState.PAUSED, reason: Paused.UNKNOWN }, [Ev.SUSPENDED, 0]);
        return;
      case 'RESUME':
        if (run.ownStopCont || run.shuttingDown) return;
        if (d.state === DomainState.PAUSED) this.#commit(d, { ...d, state: DomainState.RUNNING, reason: Running.UNPAUSED }, [Ev.RESUMED, 0]);
        return;
      case 'BALLOON_CHANGE': {
        const actual = ev.data.actual;
        if (typeof actual === 'number' && actual > 0) {
          const kib = BigInt(Math.floor(actual / 1024));
          if (kib <= d.def.maxMemKiB && kib !== d.def.curMemKiB) this.#commit(d, { ...d, def: { ...d.def, curMemKiB: kib } }, null);
        }
        return;
      }
      default:
        return;
    }
  }

  async #onGuestShutdown(d: Vm): Promise<void> {
    const run = d.run!;
    const action = run.rebooting ? 'restart' : qemuConfigOf(d.def).onPoweroff;
    run.rebooting = false;
    run.shuttingDown = true;
    if (action === 'restart') {
      await run.qmp!.execute('system_reset');
      await run.qmp!.execute('cont');
      run.shuttingDown = false;
      return;
    }
    if (action === 'preserve') {
      this.#commit(d, { ...d, state: DomainState.PAUSED, reason: Paused.SHUTTING_DOWN }, [Ev.SUSPENDED, 0]);
      return;
    }
    await this.#kill(d, Shutoff.SHUTDOWN, Stopped.SHUTDOWN);
  }

  // QEMU went away (crash, kill from outside) without us stopping it.
  #onMonitorClosed(uuid: string, run: Run): void {
    const d = this.#domains.get(uuid);
    if (!d || d.run !== run || run.stopping || this.#closed || !isActive(d)) return;
    this.#warn(`domain '${d.def.name}': QEMU (pid ${run.pid}) closed its monitor unexpectedly`);
    run.stopping = true;
    void (async () => {
      await waitGone(run.pid);
      await this.#cleanup(uuid);
      const cur = this.#domains.get(uuid);
      if (cur && cur.run === run) this.#stopped(cur, Shutoff.FAILED, Stopped.FAILED);
    })();
  }

  async #qmp(d: Vm, cmd: string, args?: Record<string, unknown>): Promise<unknown> {
    const qmp = d.run?.qmp;
    if (!qmp || qmp.closed) throw driverError(VG_ERR_DOMAIN_INTERNAL, `the monitor of domain '${d.def.name}' is not connected`);
    try {
      return await qmp.execute(cmd, args);
    } catch (e) {
      throw driverError(VG_ERR_DOMAIN_INTERNAL, `QEMU ${cmd}: ${(e as Error).message}`);
    }
  }

  // ---------- internals ----------

  whenDurable(done: () => void): void {
    this.#store.whenDurable(done);
  }

  // Stops listening to the QEMUs; they keep running (re-attached by the next helper).
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#o.onClose?.();
    for (const d of this.#domains.values()) {
      if (!d.run) continue;
      d.run.qmp?.close();
      d.run.serial?.close();
    }
    this.#listeners.clear();
    this.#changeListeners.clear();
    this.#store.close();
  }

  #get(uuid: Buffer): Vm {
    const key = uuidToString(uuid);
    const d = this.#domains.get(key);
    if (!d) throw driverError(VG_ERR_NO_DOMAIN, `: no domain with matching uuid '${key}'`);
    return d;
  }

  #byName(name: string): Vm | undefined {
    for (const d of this.#domains.values()) if (d.def.name === name) return d;
    return undefined;
  }

  #configOf(d: Vm): DomainDef {
    return d.newDef ?? d.def;
  }

  #now(d: Vm): Vm {
    return this.#domains.get(d.def.uuid) ?? d;
  }

  #checkClash(def: DomainDef, tenant: string): Vm | undefined {
    const same = this.#domains.get(def.uuid);
    const named = this.#byName(def.name);
    if (tenant !== '' && [same, named].some((d) => d !== undefined && d.def.tenant !== tenant))
      throw driverError(VG_ERR_DOMAIN_EXISTS, 'name or uuid is not available');
    if (same) {
      if (same.def.name !== def.name) throw driverError(VG_ERR_DOMAIN_EXISTS, `domain '${same.def.name}' is already defined with uuid ${def.uuid}`);
      return same;
    }
    if (named) throw driverError(VG_ERR_DOMAIN_EXISTS, `domain '${def.name}' already exists with uuid ${named.def.uuid}`);
    return undefined;
  }

  #tenantFor(old: Vm | undefined, tenant: string): string {
    if (!old) return tenant;
    if (tenant !== '' && old.def.tenant !== tenant) throw driverError(VG_ERR_ACCESS_DENIED, '');
    return old.def.tenant;
  }

  #impact(d: Vm, flags: SetFlags): { live: boolean; config: boolean } {
    let { live, config } = flags;
    if (!live && !config) {
      if (isActive(d)) live = true;
      else config = true;
    }
    if (live && !isActive(d)) throw driverError(VG_ERR_DOMAIN_STATE, 'domain is not running');
    if (config && !d.persistent) throw driverError(VG_ERR_DOMAIN_STATE, 'transient domains do not have any persistent config');
    return { live, config };
  }

  #commit(
    d: Vm | null,
    next: Vm | null,
    event: [number, number] | null,
    config?: DomainDef | null,
    extra: { nextId?: number; autostart?: boolean } = {},
  ): DomainSummary {
    const uuid = (next ?? d)!.def.uuid;
    const summary = next ? summaryOf(next) : { ...summaryOf(d!), persistent: false };
    this.#commitRaw(uuid, next, event, summary, config, extra);
    return summary;
  }

  // Log first (the state log's write(2) now, fdatasync with its batch), then memory, then subscribers.
  #commitRaw(
    uuid: string,
    next: Vm | null,
    event: [number, number] | null,
    summary: DomainSummary,
    config?: DomainDef | null,
    extra: { nextId?: number; autostart?: boolean } = {},
  ): void {
    if (this.#closed) throw driverError(VG_ERR_STORAGE, 'driver is shutting down');
    const files: FileChange[] = [];
    if (config !== undefined) files.push({ kind: 'domain', uuid, data: config === null ? null : `${domainDefToJson(config)}\n` });
    files.push({ kind: 'status', uuid, data: next === null ? null : statusJson(next) });
    if (extra.nextId !== undefined) files.push({ kind: 'nextId', data: `${extra.nextId}\n` });
    if (extra.autostart !== undefined) files.push({ kind: 'object', type: 'autostart', key: uuid, data: extra.autostart ? '{}\n' : null });
    try {
      this.#store.commit(files);
    } catch (e) {
      throw driverError(VG_ERR_STORAGE, `${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (next === null) this.#domains.delete(uuid);
    else this.#domains.set(uuid, next);
    if (extra.nextId !== undefined) this.#nextId = extra.nextId;
    if (this.#changeListeners.size > 0) {
      const change = next === null ? { removed: uuidFromString(uuid)! } : { snapshot: this.#snapshotOf(next) };
      for (const l of this.#changeListeners) l(change);
    }
    if (event) for (const l of this.#listeners) l({ domain: summary, event: event[0], detail: event[1] });
  }
}

// DomainExtraDriver over the QEMU driver: what it implements, and "not supported" (libvirt's wording) for the rest.
function extraOf(q: QemuDriver): DomainExtraDriver {
  const impl: Partial<DomainExtraDriver> = {
    setAutostart: (uuid, on) => q.setAutostart(uuid, on),
    reset: (uuid) => void q.reset(uuid),
    checkActive: (uuid) => q.checkActive(uuid),
    iothreadStats: () => [], // no iothreads in this subset: domstats lists none
  };
  return new Proxy(impl as DomainExtraDriver, {
    get: (t, k) =>
      typeof k === 'string' && !(k in t)
        ? () => {
            throw driverError(VG_ERR_NOT_SUPPORTED, `${k} (qemu driver)`);
          }
        : (t as unknown as Record<string | symbol, unknown>)[k],
  });
}

function summaryOf(d: Vm): DomainSummary {
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

function statusJson(d: Vm): string {
  const st: DomainStatus & { qemu?: object } = {
    state: d.state,
    reason: d.reason,
    id: d.id,
    cpuNs: '0',
    since: null,
    persistent: d.persistent,
    live: isActive(d) ? (JSON.parse(domainDefToJson(d.def)) as object) : null,
    ...(d.run && isActive(d) ? { qemu: { slot: d.run.slot, pid: d.run.pid, tenant: d.run.tenant } } : {}),
  };
  return `${JSON.stringify(st, null, 1)}\n`;
}

function checkTenant(tenant: string): void {
  if (!isTenantName(tenant)) throw driverError(VG_ERR_DOMAIN_ARG, 'tenant name is malformed');
}

// The host's identity for <capabilities><host><uuid>: the DMI product uuid, else one derived from /etc/machine-id.
function hostUuid(): string {
  const dmi = readOr('/sys/class/dmi/id/product_uuid', '').trim().toLowerCase();
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(dmi)) return dmi;
  const m = readOr('/etc/machine-id', '').trim();
  if (/^[0-9a-f]{32}$/.test(m)) return `${m.slice(0, 8)}-${m.slice(8, 12)}-${m.slice(12, 16)}-${m.slice(16, 20)}-${m.slice(20)}`;
  return '00000000-0000-0000-0000-000000000000';
}

function readOr(file: string, dflt: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return dflt;
  }
}

function pidAlive(pid: number): boolean {
  try {
    // A zombie is gone for our purposes: its state letter is Z.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function waitGone(pid: number, ms = EXIT_WAIT_MS): Promise<boolean> {
  const until = Date.now() + ms;
  while (pidAlive(pid)) {
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

// Until the first probe of this QEMU has run (a fresh install, the launcher away): x86_64 hvm guests under TCG only.
function minimalCapabilities(): string {
  return [
    '<capabilities>',
    '  <host>',
    '    <cpu>',
    '      <arch>x86_64</arch>',
    '    </cpu>',
    '  </host>',
    '  <guest>',
    '    <os_type>hvm</os_type>',
    "    <arch name='x86_64'>",
    '      <wordsize>64</wordsize>',
    '      <emulator>/usr/bin/qemu-system-x86_64</emulator>',
    '      <machine>q35</machine>',
    '      <machine>pc</machine>',
    "      <domain type='qemu'/>",
    '    </arch>',
    '  </guest>',
    '</capabilities>',
    '',
  ].join('\n');
}
