// SPDX-License-Identifier: Apache-2.0
// Remote users' VNC (docs/remote-display.md): one listener per running VM with VNC graphics. The front end, not QEMU,
// ends the network side: RFB 3.8 + VeNCrypt X509None, mutual TLS with the daemon's own CA and certificate, the client
// certificate's identity exactly as on the libvirt TLS listener, `domain:open_graphics` from the policy, the open
// audited. Only then is the VM's own VNC opened (the helper hands a descriptor) and its no-auth handshake consumed;
// then bytes are spliced both ways with backpressure. QEMU never sees a byte of an unauthenticated client.
import type { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import type { Config } from '../common/config';
import { VG_ERR_ACCESS_DENIED, VG_ERR_LIMIT, VG_ERR_STREAM, VG_ERR_TLS_REFUSED, type VgError, isVgError } from '../common/errors';
import type { Who } from '../audit/schema';
import type { EventRecord } from '../audit/trail';
import type { DomainDef } from '../ipc/objects/domain-def';
import type { Actor, DomainSnapshot, DomainSummary } from '../ipc/program';
import { uuidToString } from '../ipc/program';
import type { Authorizer, PolicyObject, Subject } from '../policy/authorizer';
import type { AuditHook, AuditedCall, AuditedSession, WriteGate } from './audit-hook';
import { policyUser } from './identity';
import { RfbNoAuthClient, VencryptServerHandshake, securityResult } from './rfb';
import type { Identity } from './session';
import { currentServerOptions, x509Identity } from './tls';

export interface VncDomain {
  name: string;
  tenant: string; // '' = none (a host-level VM)
}

// What openUpstream gets: the VM, who asks (the helper journals it) and the audit gate its one helper write passes.
export interface UpstreamRequest {
  uuid: Buffer;
  actor: Actor;
  before: (op: number, body: unknown) => Promise<string>; // makes the audit intent durable; resolves to the audit head
}

export interface VncProxyOptions {
  config: Readonly<Config>;
  log: (msg: string) => void;
  authorizer: Authorizer;
  domain: (uuid: Buffer) => VncDomain | null | undefined; // the helper's record; undefined: not known right now
  openUpstream: (req: UpstreamRequest) => Promise<net.Socket>; // a connected socket to the VM's own VNC server
  audit?: AuditHook | null; // opens (intent + outcome) and denials; null = audit off
  record?: (r: EventRecord) => Promise<void>; // close records, with who
  nextId?: () => number; // connection ids, shared with the libvirt sessions so request ids do not collide
  serverOptions?: () => tls.TlsOptions; // default: the TLS listener's files, read per connection
  recheckMs?: number; // how often open displays are re-decided against the policy in force (default 1000)
}

export interface VncAddress {
  address: string;
  port: number;
}

interface Listener extends VncAddress {
  server: net.Server;
  conns: Set<Conn>;
}

interface Conn {
  id: number;
  uuid: Buffer;
  source: string; // the peer's address: its unauthenticated connections are counted until the splice
  anonymous?: false;
  raw: net.Socket;
  sock: tls.TLSSocket | null;
  upstream: net.Socket | null;
  done: boolean;
  timer: NodeJS.Timeout;
  started: number;
  opened: { who: Who; source: string; requestId: string; subject: Subject; tenant: string } | null; // spliced
  bytesIn: number;
  bytesOut: number;
}

const REFUSAL_LOG_MS = 5000;

export class VncProxy {
  readonly #o: VncProxyOptions;
  readonly #listeners = new Map<string, Listener>();
  readonly #pending = new Map<string, Promise<VncAddress | null>>();
  readonly #unwanted = new Set<string>(); // unlisten() while its listen() was under way
  readonly #checked = new Map<string, number>(); // uuid -> domain id found without VNC graphics (asked once per run)
  readonly #checking = new Set<string>(); // uuids whose definition is being asked for
  readonly #active = new Map<string, number>(); // running VMs (uuid -> domain id), from the helper's stream
  readonly #refusals = new Map<string, { last: number; suppressed: number }>();
  readonly #handshaking = new Map<string, number>(); // address -> connections not yet spliced
  #total = 0;
  #ids = 0;
  #recheck: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(opts: VncProxyOptions) {
    this.#o = opts;
  }

  get connections(): number {
    return this.#total;
  }

  // Bytes the proxy holds for open displays (both directions, read and write buffers): what backpressure bounds.
  buffered(): number {
    let n = 0;
    for (const l of this.#listeners.values())
      for (const c of l.conns) for (const s of [c.raw, c.sock, c.upstream]) if (s) n += s.writableLength + s.readableLength;
    return n;
  }

  // Where the VM's display is reachable, while its listener is open; null otherwise (the XML then shows no port).
  portOf(uuid: Buffer | string): VncAddress | null {
    const l = this.#listeners.get(typeof uuid === 'string' ? uuid : uuidToString(uuid));
    return l ? { address: l.address, port: l.port } : null;
  }

  // Opens the VM's listener on the first free port of the range (idempotent); null when none is free.
  listen(uuid: Buffer): Promise<VncAddress | null> {
    const key = uuidToString(uuid);
    this.#unwanted.delete(key);
    const l = this.#listeners.get(key);
    if (l) return Promise.resolve({ address: l.address, port: l.port });
    const p = this.#pending.get(key) ?? this.#bind(uuid, key).finally(() => this.#pending.delete(key));
    this.#pending.set(key, p);
    return p;
  }

  // Closes the VM's listener and every connection to its display (the VM stopped or went away).
  unlisten(uuid: Buffer | string): void {
    const key = typeof uuid === 'string' ? uuid : uuidToString(uuid);
    if (this.#pending.has(key)) this.#unwanted.add(key);
    const l = this.#listeners.get(key);
    if (!l) return;
    this.#listeners.delete(key);
    l.server.close();
    for (const c of l.conns) this.#finish(c, 'the VM stopped');
    this.#o.log(`vnc: ${key}: listener ${fmt(l)} closed`);
  }

  close(): void {
    this.#closed = true;
    if (this.#recheck) clearInterval(this.#recheck);
    for (const key of [...this.#listeners.keys()]) this.unlisten(key);
  }

  // Follows the helper's domain stream: a listener while a VM with VNC graphics is active, none otherwise.
  // hasVnc: whether the running VM has <graphics type='vnc'> (asked once per run); active: the mirror's list once synced.
  follow(helper: EventEmitter, hasVnc: (uuid: Buffer) => Promise<boolean>, active: () => DomainSummary[] | undefined): void {
    const want = (sn: DomainSnapshot): void => {
      const { uuid, id } = sn.info;
      const key = uuidToString(uuid);
      if (id === -1) {
        this.#active.delete(key);
        this.#checked.delete(key);
        this.unlisten(key);
        return;
      }
      this.#active.set(key, id);
      if (this.#listeners.has(key) || this.#pending.has(key) || this.#checking.has(key) || this.#checked.get(key) === id) return;
      this.#checking.add(key);
      hasVnc(uuid)
        .then(
          (yes) => {
            if (!yes) this.#checked.set(key, id);
            // Still this run of the VM (it may have stopped, or restarted, while we asked)?
            else if (this.#active.get(key) === id && !this.#closed) return this.listen(uuid);
          },
          (e: Error) => this.#o.log(`vnc: ${key}: cannot tell whether it has VNC graphics: ${e.message}`),
        )
        .finally(() => this.#checking.delete(key));
    };
    const gone = (key: string): void => {
      this.#active.delete(key);
      this.#checked.delete(key);
      this.unlisten(key);
    };
    helper.on('snapshot', want);
    helper.on('removed', (uuid: Buffer) => gone(uuidToString(uuid)));
    // After a resync: a VM that stopped while the helper was away loses its listener.
    helper.on('up', () => {
      const list = active();
      if (!list) return;
      const running = new Set(list.filter((d) => d.id !== -1).map((d) => uuidToString(d.uuid)));
      for (const key of [...this.#active.keys()]) if (!running.has(key)) gone(key);
      for (const key of [...this.#listeners.keys()]) if (!running.has(key)) gone(key);
    });
  }

  async #bind(uuid: Buffer, key: string): Promise<VncAddress | null> {
    const c = this.#o.config;
    const used = new Set([...this.#listeners.values()].map((l) => l.port));
    for (let port = c.vncPortMin; port <= c.vncPortMax; port++) {
      if (used.has(port)) continue;
      const server = net.createServer({ noDelay: true });
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ port, host: c.vncListen, exclusive: true }, () => resolve());
        });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EADDRINUSE' || code === 'EACCES') continue;
        this.#o.log(`vnc: ${key}: cannot listen on ${c.vncListen}:${port}: ${(e as Error).message}`);
        return null;
      }
      if (this.#unwanted.delete(key) || this.#closed) {
        server.close();
        return null;
      }
      const l: Listener = { server, address: c.vncListen, port, conns: new Set() };
      server.on('connection', (raw) => this.#accept(raw, uuid, l));
      server.on('error', (e) => this.#o.log(`vnc: ${key}: listener error: ${e.message}`));
      this.#listeners.set(key, l);
      this.#o.log(`vnc: ${key}: listening on ${fmt(l)} (VeNCrypt x509)`);
      return { address: l.address, port };
    }
    this.#o.log(`vnc: ${key}: no free port in ${c.vncPortMin}..${c.vncPortMax}; its display is not reachable remotely`);
    return null;
  }

  #accept(raw: net.Socket, uuid: Buffer, l: Listener): void {
    const c = this.#o.config;
    const from = `${raw.remoteAddress}:${raw.remotePort}`;
    if (this.#total >= c.vncMaxClients) return this.#refuse(raw, 'vncMaxClients', `${from}: ${c.vncMaxClients} VNC connections already`);
    if (l.conns.size >= c.vncMaxClientsPerVm)
      return this.#refuse(raw, 'vncMaxClientsPerVm', `${from}: ${c.vncMaxClientsPerVm} VNC connections to this VM already`);
    // Unauthenticated connections per address, as on the libvirt listeners: one address cannot hold every slot.
    const source = raw.remoteAddress ?? '?';
    if ((this.#handshaking.get(source) ?? 0) >= c.maxAnonymousClientsPerSource)
      return this.#refuse(
        raw,
        'maxAnonymousClientsPerSource',
        `${from}: ${c.maxAnonymousClientsPerSource} unauthenticated VNC connections from ${source} already`,
      );
    this.#handshaking.set(source, (this.#handshaking.get(source) ?? 0) + 1);
    this.#total++;
    const conn: Conn = {
      id: this.#o.nextId?.() ?? ++this.#ids,
      uuid,
      source,
      raw,
      sock: null,
      upstream: null,
      done: false,
      started: Date.now(),
      // Everything up to the splice: RFB, TLS, the policy, the VM's own handshake.
      timer: setTimeout(() => this.#finish(conn, `handshake not finished in ${c.vncHandshakeTimeout} s`), c.vncHandshakeTimeout * 1000),
      opened: null,
      bytesIn: 0,
      bytesOut: 0,
    };
    l.conns.add(conn);
    raw.on('close', () => {
      l.conns.delete(conn);
      this.#finish(conn, 'closed');
    });
    raw.on('error', (e) => this.#finish(conn, `socket error: ${e.message}`));
    const hs = new VencryptServerHandshake();
    raw.write(hs.greeting());
    const onData = (chunk: Buffer): void => {
      const step = hs.push(chunk);
      for (const b of step.send) raw.write(b);
      if (step.next === 'fail') {
        raw.off('data', onData);
        const e = VG_ERR_TLS_REFUSED(`${from}: malformed RFB handshake: ${step.reason ?? ''}`);
        this.#o.log(`vnc: ${e.code}: ${e.message}`);
        this.#endThen(raw, conn, `malformed RFB handshake`);
      } else if (step.next === 'tls') {
        raw.off('data', onData);
        raw.pause();
        this.#startTls(conn, from);
      }
    };
    raw.on('data', onData);
  }

  #startTls(conn: Conn, from: string): void {
    let options: tls.TlsOptions;
    try {
      options = (this.#o.serverOptions ?? (() => currentServerOptions(this.#o.config)))();
    } catch (e) {
      this.#o.log(`vnc: ${from}: TLS credentials unavailable: ${(e as Error).message}`);
      return this.#finish(conn, 'TLS credentials unavailable');
    }
    // A tls.Server that never listens: handed this one socket, it does the handshake and verifies the chain as the
    // TLS listener does (rejectUnauthorized off there too: x509Identity gives the reason).
    const ts = tls.createServer({ ...options, requestCert: true, rejectUnauthorized: false });
    ts.on('secureConnection', (sock: tls.TLSSocket) =>
      this.#authorize(conn, sock, from).catch((e: Error) => {
        this.#o.log(`vnc: ${from}: ${e.message}`);
        this.#finish(conn, 'internal error');
      }),
    );
    ts.on('tlsClientError', (err: Error, sock: tls.TLSSocket) => {
      const e = VG_ERR_TLS_REFUSED(`${from}: ${tlsReason(err)}`);
      this.#o.log(`vnc: ${e.code}: ${e.message}`);
      sock.destroy();
      this.#finish(conn, 'TLS handshake failed');
    });
    ts.emit('connection', conn.raw);
  }

  async #authorize(conn: Conn, sock: tls.TLSSocket, from: string): Promise<void> {
    if (conn.done) return void sock.destroy();
    conn.sock = sock;
    sock.on('close', () => this.#finish(conn, 'closed'));
    sock.on('error', (e) => this.#finish(conn, `TLS error: ${e.message}`));
    const cfg = this.#o.config;
    let identity: Identity;
    try {
      identity = x509Identity(sock, cfg.tlsAllowedDnList, cfg.tlsUserField);
    } catch (e) {
      this.#o.log(`vnc: ${(e as VgError).code}: ${(e as Error).message}`);
      return this.#refuseSecure(conn, 'client certificate refused', 'certificate refused');
    }
    const key = uuidToString(conn.uuid);
    const d = this.#o.domain(conn.uuid);
    if (!d) {
      this.#o.log(`vnc: ${from} (${identity.user}): ${key} is ${d === null ? 'gone' : 'not known right now'}`);
      return this.#refuseSecure(conn, 'no such domain', 'no domain');
    }
    const authz = this.#o.authorizer;
    const user = policyUser(identity);
    // The VM's tenant when the user belongs to it (as `?tenant=` would choose it), else none: a tenant's rules then
    // never apply to another tenant's VM, and only host-wide (`*`) memberships can.
    const tenant = d.tenant !== '' && (authz.mayUseTenant?.(user, d.tenant) ?? true) ? d.tenant : '';
    const subject: Subject = { user, tenant, readOnly: false };
    const object: PolicyObject = { kind: 'domain', name: d.name, uuid: key, tenant: d.tenant };
    const session: AuditedSession = { id: conn.id, tenant, identity };
    const call = (permission: string): AuditedCall => ({
      procedure: 'vncOpen',
      permission,
      object: { kind: 'domain', name: d.name, uuid: key, tenant: d.tenant },
    });
    for (const [perm, code] of [
      ['domain:getattr', 'VG_ERR_NO_DOMAIN'],
      ['domain:open_graphics', 'VG_ERR_ACCESS_DENIED'],
    ] as const) {
      const v = authz.can(subject, object, perm);
      if (v.allowed) continue;
      await this.#o.audit?.denied(session, call(perm), v.rule, code);
      this.#o.log(`vnc: ${from}: ${VG_ERR_ACCESS_DENIED().message}: ${user} on ${d.name} (${key}): ${perm} (${v.rule})`);
      return this.#refuseSecure(conn, 'access denied', 'access denied');
    }
    const rule = authz.can(subject, object, 'domain:open_graphics').rule;
    let requestId = `vnc-${conn.id}`;
    const open = async (gate?: WriteGate): Promise<Buffer> => {
      if (gate) requestId = gate.requestId;
      const actor: Actor = { user: identity.user, tenant, requestId };
      const up = await this.#o.openUpstream({ uuid: conn.uuid, actor, before: gate ? gate.before : () => Promise.resolve('') });
      if (conn.done) {
        up.destroy();
        throw VG_ERR_STREAM('the VNC client went away while the display was opened');
      }
      conn.upstream = up;
      return innerHandshake(up);
    };
    let rest: Buffer;
    try {
      rest = this.#o.audit ? await this.#o.audit.write(session, call('domain:open_graphics'), rule, open) : await open();
    } catch (e) {
      const why = isVgError(e) ? e.message : (e as Error).message;
      this.#o.log(`vnc: ${from}: ${identity.user} on ${d.name} (${key}): display not opened: ${why}`);
      return this.#refuseSecure(conn, 'display not available', 'display not available');
    }
    if (conn.done) return;
    clearTimeout(conn.timer);
    this.#authenticated(conn);
    const up = conn.upstream!;
    up.on('error', (e) => this.#finish(conn, `VM display error: ${e.message}`));
    up.on('close', () => this.#finish(conn, 'the VM closed its display'));
    conn.opened = { who: whoOf(session), source: identity.source, requestId, subject, tenant: d.tenant };
    sock.write(securityResult());
    if (rest.length) sock.write(rest);
    // Both ways with backpressure: each side is paused while the other's write buffer is full, so memory stays bounded.
    sock.on('data', (b: Buffer) => void (conn.bytesIn += b.length));
    up.on('data', (b: Buffer) => void (conn.bytesOut += b.length));
    sock.pipe(up);
    up.pipe(sock);
    this.#o.log(`vnc: ${from}: ${identity.user} opened the display of ${d.name} (${key}), request ${requestId}`);
    this.#armRecheck();
  }

  // Refused after TLS: a 3.8 SecurityResult with the reason, then close.
  #refuseSecure(conn: Conn, reason: string, short: string): void {
    const s = conn.sock!;
    if (conn.done) return;
    s.write(securityResult(reason));
    this.#endThen(s, conn, short);
  }

  // Sends what is queued, then closes; the handshake deadline still covers a peer that never reads it.
  #endThen(s: net.Socket, conn: Conn, reason: string): void {
    s.end(() => this.#finish(conn, reason));
  }

  // No longer one of its address's unauthenticated connections.
  #authenticated(conn: Conn): void {
    if (conn.anonymous === false) return;
    conn.anonymous = false;
    const n = (this.#handshaking.get(conn.source) ?? 1) - 1;
    if (n > 0) this.#handshaking.set(conn.source, n);
    else this.#handshaking.delete(conn.source);
  }

  #finish(conn: Conn, reason: string): void {
    if (conn.done) return;
    conn.done = true;
    clearTimeout(conn.timer);
    this.#authenticated(conn);
    this.#total--;
    for (const l of this.#listeners.values()) l.conns.delete(conn);
    conn.upstream?.destroy();
    conn.sock?.destroy();
    conn.raw.destroy();
    const o = conn.opened;
    if (!o) return;
    const seconds = Math.round((Date.now() - conn.started) / 1000);
    this.#o.log(`vnc: ${o.source}: display of ${uuidToString(conn.uuid)} closed (${reason}; ${conn.bytesIn} bytes in, ${conn.bytesOut} out, ${seconds} s)`);
    this.#o
      .record?.({
        name: 'vnc-close',
        who: o.who,
        source: o.source,
        detail: {
          requestId: o.requestId,
          uuid: uuidToString(conn.uuid),
          reason: reason.slice(0, 256),
          bytesIn: conn.bytesIn,
          bytesOut: conn.bytesOut,
          seconds,
        },
      })
      .catch(() => undefined); // an outage is logged loudly by the appender
  }

  // An open display lasts only while the policy allows it: a revoked role or a VM moved to another tenant ends it.
  #armRecheck(): void {
    if (this.#recheck) return;
    this.#recheck = setInterval(() => {
      let open = 0;
      for (const l of this.#listeners.values()) {
        for (const c of l.conns) {
          if (!c.opened) continue;
          open++;
          const d = this.#o.domain(c.uuid);
          if (d === undefined) continue; // the helper is away: decided again once it is back
          const o = c.opened;
          const object: PolicyObject | null = d ? { kind: 'domain', name: d.name, uuid: uuidToString(c.uuid), tenant: d.tenant } : null;
          const still =
            object !== null &&
            d!.tenant === o.tenant &&
            this.#o.authorizer.can(o.subject, object, 'domain:getattr').allowed &&
            this.#o.authorizer.can(o.subject, object, 'domain:open_graphics').allowed;
          if (!still) this.#finish(c, 'permission revoked');
        }
      }
      if (open === 0 && this.#recheck) {
        clearInterval(this.#recheck);
        this.#recheck = null;
      }
    }, this.#o.recheckMs ?? 1000);
    this.#recheck.unref();
  }

  #refuse(raw: net.Socket, limit: string, detail: string): void {
    raw.destroy();
    const now = Date.now();
    const r = this.#refusals.get(limit);
    if (r && now - r.last < REFUSAL_LOG_MS) {
      r.suppressed++;
      return;
    }
    const more = r?.suppressed ? ` (${r.suppressed} more refused since the last such line)` : '';
    this.#o.log(`vnc: refusing ${detail}: ${VG_ERR_LIMIT(limit).message}${more}`);
    this.#refusals.set(limit, { last: now, suppressed: 0 });
  }
}

// QEMU's side: version 3.8, security None, SecurityResult ok; resolves to the bytes that followed (normally none).
function innerHandshake(up: net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const c = new RfbNoAuthClient();
    const done = (): void => {
      up.off('data', onData);
      up.off('close', onClose);
      up.off('error', onError);
      up.pause();
    };
    const onClose = (): void => {
      done();
      reject(VG_ERR_STREAM("the VM's VNC server closed during its handshake"));
    };
    const onError = (e: Error): void => {
      done();
      up.destroy();
      reject(VG_ERR_STREAM(`the VM's VNC server: ${e.message}`));
    };
    const onData = (chunk: Buffer): void => {
      const s = c.push(chunk);
      for (const b of s.send) up.write(b);
      if (s.next === 'ready') {
        done();
        resolve(s.rest ?? Buffer.alloc(0));
      } else if (s.next === 'fail') {
        done();
        reject(VG_ERR_STREAM(`the VM's VNC handshake: ${s.reason ?? ''}`));
      }
    };
    up.on('data', onData);
    up.on('close', onClose);
    up.on('error', onError);
  });
}

// Whether a running VM's definition has VNC graphics (the only kind the qemu driver runs).
export function hasVncGraphics(def: Pick<DomainDef, 'devices'>): boolean {
  return def.devices.some((d) => d.tag === 'graphics' && d.attrs.type === 'vnc');
}

function whoOf(s: AuditedSession): Who {
  const id = s.identity!;
  const w: Who = { user: id.user, tenant: s.tenant, method: id.method };
  if (id.fingerprint) w.fingerprint = id.fingerprint;
  if (id.dn) w.dn = id.dn;
  return w;
}

function fmt(a: VncAddress): string {
  return `${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`;
}

function tlsReason(err: Error & { code?: string }): string {
  return /error:[0-9A-F]+:[^:]*:[^:]*:(.*)$/.exec(err.message)?.[1] ?? err.message;
}
