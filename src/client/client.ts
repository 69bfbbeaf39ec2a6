// SPDX-License-Identifier: Apache-2.0
// VirtgateClient: typed libvirt API over one RPC connection (open sequence, domain/host calls, lifecycle events).
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { VG_ERR_CLIENT_CLOSED, VgError, VirErr, VirFrom } from '../common/errors';
import { AuthType, ConnectFlags, DomainEventId, DomainMetadataType, Feature, TenantMetadata } from '../protocol/constants';
import { P, type ProcDef } from '../protocol/procs/remote';
import type { RemoteDomain } from '../protocol/types';
import { uuidFromString } from './format';
import { type CallOptions, type RpcEvent, RpcClient, isNoSupport } from './rpc-client';
import { openTransport } from './transport';
import { type ConnectTarget, parseUri } from './uri';

export type { RemoteDomain };

export interface ConnectOptions {
  readonly?: boolean;
  timeoutMs?: number; // connect timeout and default per-call timeout; absent = none
}

export interface LifecycleEvent {
  callbackID: number; // -1 on the legacy path (feature 14 off), which has no callback ids
  dom: RemoteDomain;
  event: number;
  detail: number;
}

export interface DomainInfo {
  state: number;
  maxMem: bigint; // KiB
  memory: bigint; // KiB
  nrVirtCpu: number;
  cpuTime: bigint; // ns
}

export interface NodeInfo {
  model: string;
  memory: bigint; // KiB
  cpus: number;
  mhz: number;
  nodes: number;
  sockets: number;
  cores: number;
  threads: number;
}

export interface ServerFeatures {
  keepalive: boolean;
  eventCallback: boolean;
  closeCallback: boolean;
}

const LEGACY_CALLBACK_ID = -1;

// Feature probes: libvirt treats any error as "not supported" (remoteConnectSupportsFeatureUnlocked).
async function supports(rpc: RpcClient, feature: number): Promise<boolean> {
  try {
    return (await rpc.call(P.CONNECT_SUPPORTS_FEATURE, { feature })).supported === 1;
  } catch (err) {
    if ((err as { code?: string }).code === 'VG_ERR_CLIENT_REMOTE') return false;
    throw err;
  }
}

// remoteAuthenticate: a NO_SUPPORT AUTH_LIST means "no auth"; we speak only AUTH_NONE.
async function authenticate(rpc: RpcClient): Promise<void> {
  let types: number[];
  try {
    types = (await rpc.call(P.AUTH_LIST, undefined)).types;
  } catch (err) {
    if (isNoSupport(err)) return;
    throw err;
  }
  if (types.length === 0 || types.includes(AuthType.NONE)) return;
  const names = types.map((t) => Object.keys(AuthType).find((k) => AuthType[k as keyof typeof AuthType] === t) ?? String(t));
  const msg = `authentication unavailable: server offers ${names.join(', ')}, this client supports only none`;
  throw new VgError('VG_ERR_CLIENT_REMOTE', msg, VirErr.AUTH_UNAVAILABLE, VirFrom.AUTH);
}

export class VirtgateClient extends EventEmitter {
  readonly target: ConnectTarget;
  readonly readonly: boolean;
  readonly #rpc: RpcClient;
  readonly #sock: Duplex;
  #features: ServerFeatures = { keepalive: false, eventCallback: false, closeCallback: false };

  private constructor(target: ConnectTarget, readonly: boolean, sock: Duplex, timeoutMs: number | undefined) {
    super();
    this.target = target;
    this.readonly = readonly;
    this.#sock = sock;
    this.#rpc = new RpcClient({ onWrite: (b) => sock.write(b), timeoutMs });
    sock.on('data', (c: Buffer) => this.#rpc.push(c));
    sock.on('end', () => this.#rpc.end());
    sock.on('close', () => this.#rpc.end());
    sock.on('error', (err) => this.#rpc.close(err));
    this.#rpc.on('event', (e: RpcEvent) => this.#onEvent(e));
    this.#rpc.once('close', (reason: Error | null) => {
      sock.destroy();
      this.emit('close', reason);
    });
    sock.resume();
  }

  // The libvirt open sequence: AUTH_LIST, feature 10, CONNECT_OPEN, features 14 and 15.
  static async connect(uri: string, opts: ConnectOptions = {}): Promise<VirtgateClient> {
    const target = parseUri(uri, { readonly: opts.readonly });
    const sock = await openTransport(target, opts.timeoutMs);
    const client = new VirtgateClient(target, opts.readonly === true, sock, opts.timeoutMs);
    const rpc = client.#rpc;
    try {
      await authenticate(rpc);
      const keepalive = await supports(rpc, Feature.PROGRAM_KEEPALIVE);
      await rpc.call(P.CONNECT_OPEN, { name: target.openName, flags: opts.readonly ? ConnectFlags.RO : 0 });
      const eventCallback = await supports(rpc, Feature.REMOTE_EVENT_CALLBACK);
      const closeCallback = await supports(rpc, Feature.REMOTE_CLOSE_CALLBACK);
      client.#features = { keepalive, eventCallback, closeCallback };
    } catch (err) {
      rpc.close(VG_ERR_CLIENT_CLOSED('open failed'));
      throw err;
    }
    return client;
  }

  get features(): Readonly<ServerFeatures> {
    return this.#features;
  }

  get closed(): boolean {
    return this.#rpc.closed;
  }

  // Any procedure in the table; the typed methods below are thin wrappers over it.
  call<A, R>(def: ProcDef<A, R>, args: A, opts?: CallOptions): Promise<R> {
    return this.#rpc.call(def, args, opts);
  }

  // CONNECT_CLOSE, then end the stream. An error from CONNECT_CLOSE is ignored, as virsh does.
  async close(): Promise<void> {
    if (this.#rpc.closed) return;
    await this.#rpc.call(P.CONNECT_CLOSE, undefined).catch(() => undefined);
    this.#sock.end();
    this.#rpc.close(VG_ERR_CLIENT_CLOSED('closed by client'));
  }

  // --- connection and host
  async getType(): Promise<string> {
    return (await this.call(P.CONNECT_GET_TYPE, undefined)).type;
  }
  async getVersion(): Promise<bigint> {
    return (await this.call(P.CONNECT_GET_VERSION, undefined)).hvVer;
  }
  async getHostname(): Promise<string> {
    return (await this.call(P.CONNECT_GET_HOSTNAME, undefined)).hostname;
  }
  async getCapabilities(): Promise<string> {
    return (await this.call(P.CONNECT_GET_CAPABILITIES, undefined)).capabilities;
  }
  nodeGetInfo(): Promise<NodeInfo> {
    return this.call(P.NODE_GET_INFO, undefined);
  }
  nodeGetSecurityModel(): Promise<{ model: string; doi: string }> {
    return this.call(P.NODE_GET_SECURITY_MODEL, undefined);
  }

  // --- domain lookup and listing
  async listAllDomains(flags = 0): Promise<RemoteDomain[]> {
    return (await this.call(P.CONNECT_LIST_ALL_DOMAINS, { needResults: 1, flags })).domains;
  }
  async lookupByName(name: string): Promise<RemoteDomain> {
    return (await this.call(P.DOMAIN_LOOKUP_BY_NAME, { name })).dom;
  }
  async lookupById(id: number): Promise<RemoteDomain> {
    return (await this.call(P.DOMAIN_LOOKUP_BY_ID, { id })).dom;
  }
  // Accepts the 16 raw bytes or the printed form.
  async lookupByUuid(uuid: Buffer | string): Promise<RemoteDomain> {
    const raw = typeof uuid === 'string' ? uuidFromString(uuid) : uuid;
    if (!raw || raw.length !== 16) throw new TypeError(`lookupByUuid: not a UUID: ${String(uuid)}`);
    return (await this.call(P.DOMAIN_LOOKUP_BY_UUID, { uuid: raw })).dom;
  }

  // --- domain queries
  getInfo(dom: RemoteDomain): Promise<DomainInfo> {
    return this.call(P.DOMAIN_GET_INFO, { dom });
  }
  getState(dom: RemoteDomain, flags = 0): Promise<{ state: number; reason: number }> {
    return this.call(P.DOMAIN_GET_STATE, { dom, flags });
  }
  async getXmlDesc(dom: RemoteDomain, flags = 0): Promise<string> {
    return (await this.call(P.DOMAIN_GET_XML_DESC, { dom, flags })).xml;
  }
  async getOsType(dom: RemoteDomain): Promise<string> {
    return (await this.call(P.DOMAIN_GET_OS_TYPE, { dom })).type;
  }
  async isActive(dom: RemoteDomain): Promise<boolean> {
    return (await this.call(P.DOMAIN_IS_ACTIVE, { dom })).active !== 0;
  }
  async isPersistent(dom: RemoteDomain): Promise<boolean> {
    return (await this.call(P.DOMAIN_IS_PERSISTENT, { dom })).persistent !== 0;
  }
  async getAutostart(dom: RemoteDomain): Promise<boolean> {
    return (await this.call(P.DOMAIN_GET_AUTOSTART, { dom })).autostart !== 0;
  }
  async hasManagedSaveImage(dom: RemoteDomain): Promise<boolean> {
    return (await this.call(P.DOMAIN_HAS_MANAGED_SAVE_IMAGE, { dom, flags: 0 })).result !== 0;
  }
  getSecurityLabel(dom: RemoteDomain): Promise<{ label: string; enforcing: boolean }> {
    return this.call(P.DOMAIN_GET_SECURITY_LABEL, { dom }).then((r) => ({ label: r.label, enforcing: r.enforcing !== 0 }));
  }

  // --- domain lifecycle
  // Like the remote driver, look the domain up again after DOMAIN_CREATE: the reply carries no new id.
  async create(dom: RemoteDomain): Promise<RemoteDomain> {
    await this.call(P.DOMAIN_CREATE, { dom });
    return this.lookupByUuid(dom.uuid);
  }
  async createXml(xml: string, flags = 0): Promise<RemoteDomain> {
    return (await this.call(P.DOMAIN_CREATE_XML, { xml, flags })).dom;
  }
  async defineXml(xml: string): Promise<RemoteDomain> {
    return (await this.call(P.DOMAIN_DEFINE_XML, { xml })).dom;
  }
  // virDomainSetMetadata: virtgate serves one element, the VM's tenant (see setTenant); others answer NO_SUPPORT.
  async setMetadata(dom: RemoteDomain, type: number, metadata: string | null, key: string | null, uri: string | null, flags = 0): Promise<void> {
    await this.call(P.DOMAIN_SET_METADATA, { dom, type, metadata, key, uri, flags });
  }
  // Reassign a VM to TENANT ('' = none): host admins only (connect:write on host besides domain:write/save).
  async setTenant(dom: RemoteDomain, tenant: string): Promise<void> {
    const metadata = tenant === '' ? null : `<tenant>${tenant.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`)}</tenant>`;
    await this.setMetadata(dom, DomainMetadataType.ELEMENT, metadata, TenantMetadata.KEY, TenantMetadata.URI, 0);
  }
  // UNDEFINE_FLAGS, falling back to plain UNDEFINE on NO_SUPPORT when no flags are asked (virsh's fallback).
  async undefine(dom: RemoteDomain, flags = 0): Promise<void> {
    try {
      await this.call(P.DOMAIN_UNDEFINE_FLAGS, { dom, flags });
    } catch (err) {
      if (flags !== 0 || !isNoSupport(err)) throw err;
      await this.call(P.DOMAIN_UNDEFINE, { dom });
    }
  }
  suspend(dom: RemoteDomain): Promise<void> {
    return this.call(P.DOMAIN_SUSPEND, { dom });
  }
  resume(dom: RemoteDomain): Promise<void> {
    return this.call(P.DOMAIN_RESUME, { dom });
  }
  shutdown(dom: RemoteDomain): Promise<void> {
    return this.call(P.DOMAIN_SHUTDOWN, { dom });
  }
  reboot(dom: RemoteDomain, flags = 0): Promise<void> {
    return this.call(P.DOMAIN_REBOOT, { dom, flags });
  }
  destroy(dom: RemoteDomain): Promise<void> {
    return this.call(P.DOMAIN_DESTROY, { dom });
  }
  setMemory(dom: RemoteDomain, kib: bigint | number, flags = 0): Promise<void> {
    return this.call(P.DOMAIN_SET_MEMORY_FLAGS, { dom, memory: BigInt(kib), flags });
  }
  setVcpus(dom: RemoteDomain, nvcpus: number, flags = 0): Promise<void> {
    return this.call(P.DOMAIN_SET_VCPUS_FLAGS, { dom, nvcpus, flags });
  }

  // --- events
  // Lifecycle events for all domains. Uses the callback path (316) when the server has feature 14,
  // else the legacy path (167), whose events carry no callback id.
  async registerLifecycleEvents(): Promise<number> {
    if (!this.#features.eventCallback) {
      await this.call(P.CONNECT_DOMAIN_EVENT_REGISTER_ANY, { eventID: DomainEventId.LIFECYCLE });
      return LEGACY_CALLBACK_ID;
    }
    return (await this.call(P.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, { eventID: DomainEventId.LIFECYCLE, dom: null })).callbackID;
  }

  async deregisterLifecycleEvents(callbackID: number): Promise<void> {
    if (callbackID === LEGACY_CALLBACK_ID) await this.call(P.CONNECT_DOMAIN_EVENT_DEREGISTER_ANY, { eventID: DomainEventId.LIFECYCLE });
    else await this.call(P.CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY, { callbackID });
  }

  // Async iterator over 'lifecycle' events; ends when the connection closes or the loop breaks.
  events(): AsyncIterableIterator<LifecycleEvent> {
    const queue: LifecycleEvent[] = [];
    let wake: (() => void) | null = null;
    let done = this.#rpc.closed;
    const onEvent = (e: LifecycleEvent): void => {
      queue.push(e);
      wake?.();
    };
    const onClose = (): void => {
      done = true;
      wake?.();
    };
    const stop = (): void => {
      done = true;
      this.off('lifecycle', onEvent);
      this.off('close', onClose);
      wake?.();
    };
    this.on('lifecycle', onEvent);
    this.once('close', onClose);
    const it: AsyncIterableIterator<LifecycleEvent> = {
      next: async () => {
        while (queue.length === 0 && !done) await new Promise<void>((r) => (wake = r));
        wake = null;
        if (queue.length > 0) return { value: queue.shift()!, done: false };
        stop();
        return { value: undefined, done: true };
      },
      return: async () => {
        stop();
        queue.length = 0;
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  #onEvent(e: RpcEvent): void {
    if (e.proc === P.DOMAIN_EVENT_CALLBACK_LIFECYCLE.proc) {
      this.emit('lifecycle', e.body as LifecycleEvent);
    } else if (e.proc === P.DOMAIN_EVENT_LIFECYCLE.proc) {
      this.emit('lifecycle', { callbackID: LEGACY_CALLBACK_ID, ...(e.body as Omit<LifecycleEvent, 'callbackID'>) });
    }
  }
}
