// SPDX-License-Identifier: Apache-2.0
// The test driver's networks (helper side): libvirt test_driver.c's network state machine over typed configs, seeded
// with test:///default's `default` network, persisted as JSON records. Never parses XML.
import { VG_ERR_DOMAIN_STATE, VG_ERR_LIMIT, VG_ERR_NETWORK_EXISTS, VG_ERR_NOT_SUPPORTED, VG_ERR_NO_NETWORK, VG_ERR_STORAGE } from '../../common/errors';
import { isTenantName } from '../../common/names';
import { uuidToString } from '../../common/uuid';
import {
  type DhcpHost,
  type NetworkConfig,
  type NetworkIp,
  type NetworkKey,
  type NetworkSummary,
  NetLimits,
  UpdateCommand,
  UpdateSection,
  type UpdateRequest,
  canonicalIp,
  checkNetworkConfig,
  configFromJson,
  configToJson,
  ipIndexForUpdate,
} from '../../ipc/objects/network';
import { driverError } from './driver';
import type { ObjectDriverContext } from './object-context';
import type { Caller, NetworkDriver } from './network-driver';

// virNetworkEventLifecycleType (libvirt-network.h); the test driver's detail is always 0.
export const NetworkEventType = { DEFINED: 0, UNDEFINED: 1, STARTED: 2, STOPPED: 3 } as const;

const RECORD = 'network';
const SEED_MARK = 'netseeded'; // one record, key '0': the default network was seeded (and saved) once

// test_driver.c defaultConnXML's <network>, as its parser leaves it (forward without mode = nat).
export const DEFAULT_NETWORK: NetworkConfig = {
  name: 'default',
  uuid: Buffer.from('dd8fe8846c02601e7551cca97df1c5df', 'hex'),
  ipv6: false,
  trustGuestRxFilters: '',
  forward: { mode: 'nat', dev: '', interfaces: [], managed: false, natStart: '', natEnd: '', portStart: 0, portEnd: 0, natIpv6: '' },
  bridge: { name: 'virbr0', zone: '', stp: true, delay: 0, macTableManager: '' },
  mtu: 0,
  mac: '',
  domain: { name: '', localOnly: '' },
  ips: [
    {
      family: '',
      address: '192.168.122.1',
      netmask: '255.255.255.0',
      prefix: 0,
      localPtr: '',
      ranges: [{ start: '192.168.122.2', end: '192.168.122.254' }],
      hosts: [],
    },
  ],
};

// Mirrors virNetworkObj: `config` is the live def while active (else the config); `next` the persistent one while active.
interface NetworkObj {
  readonly config: NetworkConfig;
  readonly next: NetworkConfig | null;
  readonly tenant: string;
  readonly active: boolean;
  readonly persistent: boolean;
  readonly autostart: boolean;
}

const keyOf = (uuid: Buffer): string => uuidToString(uuid);
const summaryOf = (o: NetworkObj): NetworkSummary => ({
  name: o.config.name,
  uuid: Buffer.from(o.config.uuid),
  tenant: o.tenant,
  active: o.active,
  persistent: o.persistent,
  autostart: o.autostart,
});

const toJson = (o: NetworkObj) => ({
  config: configToJson(o.config),
  next: o.next ? configToJson(o.next) : null,
  tenant: o.tenant,
  active: o.active,
  persistent: o.persistent,
  autostart: o.autostart,
});

export const NOT_AVAILABLE = 'name or uuid is not available';

export class TestNetworks implements NetworkDriver {
  readonly #ctx: ObjectDriverContext;
  readonly #nets = new Map<string, NetworkObj>(); // by uuid text
  #seedPending: NetworkObj | null = null; // the seeded network, not yet durable
  #markPending = false; // the `seeded` marker not yet durable

  constructor(ctx: ObjectDriverContext) {
    this.#ctx = ctx;
    for (const [key, text] of ctx.records.load(RECORD)) {
      try {
        const j = JSON.parse(text) as ReturnType<typeof toJson>;
        const config = configFromJson(j.config);
        const obj: NetworkObj = {
          config,
          next: j.next ? configFromJson(j.next) : null,
          tenant: typeof j.tenant === 'string' && isTenantName(j.tenant) ? j.tenant : '',
          active: j.active === true,
          persistent: j.persistent === true,
          autostart: j.autostart === true,
        };
        if (keyOf(config.uuid) !== key) throw new Error('key does not match its uuid');
        this.#nets.set(key, obj);
      } catch (e) {
        ctx.warn(`network record ${key} ignored: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    // Seeded once, on the first start that can save it: the `seeded` marker record says it happened. Until the seed
    // and its marker are durable (a full disk at first start), the seed is served from memory, no network write is
    // accepted (each retries saving it first), and a restart seeds again: nothing the host did is lost or undone.
    if (ctx.records.load(SEED_MARK).size === 0) {
      if (!this.#nets.has(keyOf(DEFAULT_NETWORK.uuid)) && (ctx.firstStart || this.#nets.size === 0)) {
        this.#seedPending = { config: DEFAULT_NETWORK, next: null, tenant: '', active: true, persistent: true, autostart: false };
        this.#nets.set(keyOf(DEFAULT_NETWORK.uuid), this.#seedPending);
      } else this.#seedPending = null;
      this.#markPending = true;
      const e = this.#saveSeed();
      if (e) ctx.warn(`the default network cannot be saved (${e.message}): served from memory, network writes refused until it is saved`);
    }
  }

  // The seed record (if still to write), then the marker. Returns the error, or null.
  #saveSeed(): Error | null {
    if (!this.#markPending) return null;
    try {
      if (this.#seedPending) {
        this.#ctx.records.put(RECORD, keyOf(this.#seedPending.config.uuid), JSON.stringify(toJson(this.#seedPending)));
        this.#seedPending = null;
      }
      this.#ctx.records.put(SEED_MARK, '0', '{}');
      this.#markPending = false;
      return null;
    } catch (e) {
      return e instanceof Error ? e : new Error(String(e));
    }
  }

  list(): NetworkSummary[] {
    return [...this.#nets.values()].map(summaryOf);
  }

  lookup(key: NetworkKey): NetworkSummary {
    if (key.uuid !== undefined) return summaryOf(this.#byUuid(key.uuid));
    const o = this.#byName(key.name);
    if (!o) throw driverError(VG_ERR_NO_NETWORK, `: no network with matching name '${key.name}'`);
    return summaryOf(o);
  }

  get(uuid: Buffer, inactive: boolean): { network: NetworkSummary; config: NetworkConfig } {
    const o = this.#byUuid(uuid);
    return { network: summaryOf(o), config: inactive ? (o.next ?? o.config) : o.config };
  }

  // testNetworkDefineXMLFlags + virNetworkObjAssignDef(flags 0)
  define(config: NetworkConfig, caller: Caller): NetworkSummary {
    const cfg = checkNetworkConfig(config);
    const old = this.#checkClash(cfg, caller);
    let next: NetworkObj;
    if (!old) {
      this.#checkLimit();
      next = { config: cfg, next: null, tenant: caller.tenant, active: false, persistent: true, autostart: false };
    } else if (old.active)
      next = { ...old, next: cfg, persistent: true }; // the config for after the next destroy
    else next = { ...old, config: cfg, next: null, persistent: true };
    this.#commit(next, NetworkEventType.DEFINED);
    return summaryOf(next);
  }

  // testNetworkCreateXMLFlags: virNetworkObjAssignDef(ADD_LIVE | ADD_CHECK_LIVE), then active.
  create(config: NetworkConfig, caller: Caller): NetworkSummary {
    const cfg = checkNetworkConfig(config);
    const old = this.#checkClash(cfg, caller);
    if (old?.active) throw driverError(VG_ERR_DOMAIN_STATE, `network is already active as '${old.config.name}'`);
    if (!old) this.#checkLimit();
    const next: NetworkObj = old
      ? { ...old, config: cfg, next: old.persistent ? (old.next ?? old.config) : null, active: true }
      : { config: cfg, next: null, tenant: caller.tenant, active: true, persistent: false, autostart: false };
    this.#commit(next, NetworkEventType.STARTED);
    return summaryOf(next);
  }

  // testNetworkUndefine: refused while active (the test driver's rule; libvirtd's network driver would make it transient).
  undefine(uuid: Buffer, caller: Caller): NetworkSummary {
    const o = this.#owned(uuid, caller);
    if (o.active) throw driverError(VG_ERR_DOMAIN_STATE, `Network '${o.config.name}' is still running`);
    this.#commit(o, NetworkEventType.UNDEFINED, true);
    return { ...summaryOf(o), persistent: false };
  }

  start(uuid: Buffer, caller: Caller): NetworkSummary {
    const o = this.#owned(uuid, caller);
    if (o.active) throw driverError(VG_ERR_DOMAIN_STATE, `Network '${o.config.name}' is already running`);
    const next = { ...o, active: true };
    this.#commit(next, NetworkEventType.STARTED);
    return summaryOf(next);
  }

  // testNetworkDestroy: no "not active" check (as the test driver); a transient network goes away. The persistent
  // config saved by a define or create while active becomes the config again (virNetworkObjUnsetDefTransient).
  destroy(uuid: Buffer, caller: Caller): NetworkSummary {
    const o = this.#owned(uuid, caller);
    const next: NetworkObj = { ...o, config: o.next ?? o.config, next: null, active: false };
    this.#commit(next, NetworkEventType.STOPPED, !o.persistent);
    return summaryOf(next);
  }

  setAutostart(uuid: Buffer, autostart: boolean, caller: Caller): NetworkSummary {
    const o = this.#owned(uuid, caller);
    const next = { ...o, autostart };
    if (o.autostart !== autostart) this.#commit(next, null);
    return summaryOf(next);
  }

  // testNetworkUpdate / virNetworkObjUpdate for the DHCP host and range sections.
  update(req: UpdateRequest, caller: Caller): NetworkSummary {
    const o = this.#owned(req.uuid, caller);
    let { live, config } = req;
    if (!live && !config) {
      if (o.active) live = true;
      else config = true;
    }
    if (!o.active && live) throw driverError(VG_ERR_DOMAIN_STATE, 'network is not running');
    if (config && !o.persistent) throw driverError(VG_ERR_DOMAIN_STATE, 'cannot change persistent config of a transient network');
    // Any change while active first saves the persistent config (virNetworkObjSetDefTransient, as the network driver
    // does; the test driver skips it for live-only changes, which then leak into the persistent config). The live and
    // the persistent change are each made on a copy, from the configs as they were.
    let saved = o.next;
    if (o.active && o.persistent && !saved) saved = o.config;
    let current = live ? applyUpdate(o.config, req) : o.config;
    if (config) {
      const p = applyUpdate(saved ?? o.config, req);
      if (o.active) saved = p;
      else current = p;
    }
    const next: NetworkObj = { ...o, config: current, next: saved };
    this.#commit(next, null);
    return summaryOf(next);
  }

  // ---------- internals ----------

  #byUuid(uuid: Buffer): NetworkObj {
    const o = this.#nets.get(keyOf(uuid));
    if (!o) throw driverError(VG_ERR_NO_NETWORK, `: no network with matching uuid '${keyOf(uuid)}'`);
    return o;
  }

  #byName(name: string): NetworkObj | undefined {
    for (const o of this.#nets.values()) if (o.config.name === name) return o;
    return undefined;
  }

  // The helper's own tenant rule: a tenant's session changes only its tenant's networks; any other answers as absent.
  #owned(uuid: Buffer, caller: Caller): NetworkObj {
    const o = this.#byUuid(uuid);
    if (caller.tenant !== '' && o.tenant !== caller.tenant) throw driverError(VG_ERR_NO_NETWORK, `: no network with matching uuid '${keyOf(uuid)}'`);
    return o;
  }

  // virNetworkObjAssignDefLocked's clash rules, and the tenant boundary before them (no uuid of another tenant leaks).
  #checkClash(cfg: NetworkConfig, caller: Caller): NetworkObj | undefined {
    const same = this.#nets.get(keyOf(cfg.uuid));
    const named = this.#byName(cfg.name);
    if (caller.tenant !== '' && [same, named].some((o) => o !== undefined && o.tenant !== caller.tenant))
      throw driverError(VG_ERR_NETWORK_EXISTS, NOT_AVAILABLE);
    if (same) {
      if (same.config.name !== cfg.name)
        throw driverError(VG_ERR_NETWORK_EXISTS, `network '${same.config.name}' is already defined with uuid ${keyOf(same.config.uuid)}`);
      return same;
    }
    if (named) throw driverError(VG_ERR_NETWORK_EXISTS, `network '${cfg.name}' already exists with uuid ${keyOf(named.config.uuid)}`);
    return undefined;
  }

  #checkLimit(): void {
    if (this.#nets.size >= NetLimits.NETWORKS_MAX) throw driverError(VG_ERR_LIMIT, `at most ${NetLimits.NETWORKS_MAX} networks`);
  }

  // Durable first (the record write throws before anything changes), then memory, then the event.
  #commit(next: NetworkObj, event: number | null, remove = false): void {
    const unsaved = this.#saveSeed();
    if (unsaved) throw driverError(VG_ERR_STORAGE, `the default network is not saved yet: ${unsaved.message}`);
    const key = keyOf(next.config.uuid);
    this.#ctx.records.put(RECORD, key, remove ? null : JSON.stringify(toJson(next)));
    if (remove) this.#nets.delete(key);
    else this.#nets.set(key, next);
    if (event !== null) this.#ctx.emit({ type: 'network', name: next.config.name, uuid: Buffer.from(next.config.uuid), tenant: next.tenant, event, detail: 0 });
  }
}

// ---------- networkUpdate (virNetworkDefUpdateIPDHCPHost / ...Range), on a copy ----------

const familyOf = (ip: NetworkIp): 4 | 6 => canonicalIp(ip.address)?.family ?? 4;
const invalidOp = (msg: string) => driverError(VG_ERR_DOMAIN_STATE, msg);

export function ipForUpdate(cfg: NetworkConfig, parentIndex: number): number {
  const i = ipIndexForUpdate(cfg, parentIndex);
  if (i >= 0) return i;
  if (parentIndex >= 0) throw invalidOp(`couldn't update dhcp host entry - no <ip> element found at index ${parentIndex} in network '${cfg.name}'`);
  throw invalidOp(`couldn't update dhcp host entry - no <ip> element found in network '${cfg.name}'`);
}

function checkMultiDhcp(cfg: NetworkConfig, index: number): void {
  const fam = familyOf(cfg.ips[index]);
  if (cfg.ips.some((ip, i) => i !== index && familyOf(ip) === fam && (ip.ranges.length > 0 || ip.hosts.length > 0)))
    throw invalidOp(`dhcp is supported only for a single ${fam === 4 ? 'IPv4' : 'IPv6'} address on each network`);
}

const macEq = (a: string, b: string): boolean => a !== '' && b !== '' && a.split(':').every((o, i) => parseInt(o, 16) === parseInt(b.split(':')[i], 16));

export function applyUpdate(cfg: NetworkConfig, req: UpdateRequest): NetworkConfig {
  const index = ipForUpdate(cfg, req.parentIndex);
  const ip = cfg.ips[index];
  const fam = familyOf(ip);
  const { command, item } = req;
  let changed: NetworkIp;
  if (item.section === UpdateSection.IP_DHCP_HOST) {
    const h: DhcpHost = item.host;
    if (command !== UpdateCommand.DELETE) {
      if (h.ip === '') throw invalidOp(`Missing IP address in static host definition for network '${cfg.name}'`);
      if (canonicalIp(h.ip)?.family !== fam)
        throw invalidOp("the address family of a host entry IP must match the address family of the dhcp element's parent");
    }
    const hosts = [...ip.hosts];
    const show = `mac='${h.mac || 'unknown'}' name='${h.name || '(null)'}' ip='${h.ip || 'unknown'}'`;
    if (command === UpdateCommand.MODIFY) {
      const i = hosts.findIndex((x) => macEq(h.mac, x.mac) || (h.ip !== '' && h.ip === x.ip) || (h.name !== '' && h.name === x.name));
      if (i < 0)
        throw invalidOp(
          `couldn't locate an existing dhcp host entry with "mac='${h.mac || 'unknown'}'" "name='${h.name || '(null)'}'" "ip='${h.ip}'" in network '${cfg.name}'`,
        );
      hosts[i] = h;
    } else if (command === UpdateCommand.ADD_FIRST || command === UpdateCommand.ADD_LAST) {
      checkMultiDhcp(cfg, index);
      if (hosts.some((x) => macEq(h.mac, x.mac) || (h.name !== '' && h.name === x.name) || h.ip === x.ip))
        throw invalidOp(`there is an existing dhcp host entry in network '${cfg.name}' that matches "<host ${show}/>"`);
      if (hosts.length >= NetLimits.HOSTS_MAX) throw driverError(VG_ERR_LIMIT, `at most ${NetLimits.HOSTS_MAX} DHCP hosts per <ip>`);
      if (command === UpdateCommand.ADD_FIRST) hosts.unshift(h);
      else hosts.push(h);
    } else {
      const i = hosts.findIndex(
        (x) => (h.mac === '' || x.mac === '' || macEq(h.mac, x.mac)) && (h.name === '' || h.name === x.name) && (h.ip === '' || h.ip === x.ip),
      );
      if (i < 0) throw invalidOp(`couldn't locate a matching dhcp host entry in network '${cfg.name}'`);
      hosts.splice(i, 1);
    }
    changed = { ...ip, hosts };
  } else {
    const r = item.range;
    if (command === UpdateCommand.MODIFY) throw driverError(VG_ERR_NOT_SUPPORTED, 'dhcp ranges cannot be modified, only added or deleted');
    if (canonicalIp(r.start)?.family !== fam) throw invalidOp("the address family of a dhcp range must match the address family of the dhcp element's parent");
    const ranges = [...ip.ranges];
    const i = ranges.findIndex((x) => x.start === r.start && x.end === r.end);
    if (command === UpdateCommand.DELETE) {
      if (i < 0) throw invalidOp(`couldn't locate a matching dhcp range entry in network '${cfg.name}'`);
      ranges.splice(i, 1);
    } else {
      checkMultiDhcp(cfg, index);
      if (i >= 0) throw invalidOp(`there is an existing dhcp range entry in network '${cfg.name}' that matches "<range start='${r.start}' end='${r.end}'/>"`);
      if (ranges.length >= NetLimits.RANGES_MAX) throw driverError(VG_ERR_LIMIT, `at most ${NetLimits.RANGES_MAX} DHCP ranges per <ip>`);
      if (command === UpdateCommand.ADD_FIRST) ranges.unshift(r);
      else ranges.push(r);
    }
    changed = { ...ip, ranges };
  }
  return checkNetworkConfig({ ...cfg, ips: cfg.ips.map((x, i) => (i === index ? changed : x)) });
}
