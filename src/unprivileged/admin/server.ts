// SPDX-License-Identifier: Apache-2.0
// virt-admin's socket: libvirt's admin program for root and host admins only; every write audited (intent, outcome).
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { ComponentLog, Logger } from '../../common/log';
import { FrameDecoder } from '../../common/framing';
import { XdrReader, XdrWriter } from '../../common/xdr';
import {
  ADMIN_PROGRAM,
  ADMIN_PROTOCOL_VERSION,
  AdminArgs,
  AdminLimits,
  AdminParam,
  AdminProc,
  ClientTransport,
  adminClientCodec,
  paramsOf,
} from '../../protocol/admin';
import { KeepaliveProc, MessageStatus, MessageType, Program } from '../../protocol/constants';
import { type Header, decodeHeader, encodeMessage } from '../../protocol/header';
import { encodeErrorReply, encodeKeepalive } from '../../protocol/messages';
import { type TypedParam, tpBool, tpInt, tpString, tpUint, validateTypedParams } from '../../protocol/typed-params';
import { type RemoteError, remoteError } from '../../protocol/types';
import type { Authorizer } from '../../policy/authorizer';
import type { AuditHook } from '../audit-hook';
import { policyUser } from '../identity';
import { peerCred } from '../../sandbox/peercred';
import type { Session } from '../session';
import { userNameForUid } from '../users';

export const SERVER_NAME = 'virtgated'; // the one server virt-admin sees (srv-list)
const FRAME_MAX = 1024 * 1024; // admin calls are small: a filter or output string at most
const LIB_VERSION = 9_000_000n; // the libvirt API level we answer as (9.0.0)
const REFUSED_LINGER_MS = 2000; // a refused peer gets its error reply, then is cut off
const MAX_CONNECTIONS = 16; // admin connections at once: a widened socket mode cannot be used to exhaust descriptors

// virErrorNumber / virErrorDomain values used here (virterror.h, libvirt 9.0).
const E = { INTERNAL: 1, INVALID_ARG: 8, RPC: 39, OPERATION_UNSUPPORTED: 84, ACCESS_DENIED: 88, NO_SERVER: 95, NO_CLIENT: 96, ARGUMENT_UNSUPPORTED: 74 };
const D = { RPC: 7, ADMIN: 62, ACCESS: 55 };

class AdminError extends Error {
  constructor(
    readonly code: number,
    readonly domain: number,
    message: string,
  ) {
    super(message);
  }
}

// What the admin server needs of the daemon (Daemon implements it).
export interface AdminTarget {
  readonly sessions: ReadonlySet<Session>;
  readonly limits: { maxClients: number; maxAnonymousClients: number };
  readonly logger: Logger;
  readonly authorizer: Authorizer;
  readonly audit: AuditHook | null;
  readonly config: { logOutputs: string; journalSocket: string };
  stats(): { clients: number };
  anonymousCount(): number;
}

export class AdminServer {
  readonly #d: AdminTarget;
  readonly #log: ComponentLog;
  #server: net.Server | null = null;
  readonly #conns = new Set<net.Socket>();
  #path = '';

  constructor(d: AdminTarget, log: ComponentLog) {
    this.#d = d;
    this.#log = log;
  }

  async listen(p: string, mode: number): Promise<void> {
    fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o755 });
    try {
      if (fs.lstatSync(p).isSocket()) fs.rmSync(p); // left over from a crash; a live daemon's is refused below by listen()
    } catch {
      // absent
    }
    const srv = net.createServer((sock) => this.#accept(sock));
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(p, () => resolve());
    });
    fs.chmodSync(p, mode);
    this.#server = srv;
    this.#path = p;
  }

  async close(): Promise<void> {
    for (const c of this.#conns) c.destroy();
    const srv = this.#server;
    this.#server = null;
    if (srv) await new Promise<void>((resolve) => srv.close(() => resolve()));
    if (this.#path) fs.rmSync(this.#path, { force: true });
  }

  // Root, or a local user the policy makes a host admin ('* *' is the only rule that grants admin:write).
  #mayAdminister(uid: number, user: string): boolean {
    if (uid === 0) return true;
    const d = this.#d.authorizer.can({ user, tenant: '', readOnly: false }, { kind: 'connect', name: 'virt-admin', tenant: '' }, 'admin:write');
    return d.allowed;
  }

  #accept(sock: net.Socket): void {
    if (this.#conns.size >= MAX_CONNECTIONS) {
      this.#log.warn(`refusing virt-admin connection: ${MAX_CONNECTIONS} already open`);
      sock.destroy();
      return;
    }
    let uid: number;
    let pid: number;
    try {
      ({ uid, pid } = peerCred(sock));
    } catch {
      sock.destroy();
      return;
    }
    const source = `unix:pid=${pid},uid=${uid}`;
    const user = policyUser({ method: 'peercred', user: userNameForUid(uid), uid, source });
    const allowed = this.#mayAdminister(uid, user);
    this.#conns.add(sock);
    sock.on('close', () => this.#conns.delete(sock));
    sock.on('error', () => sock.destroy());
    if (!allowed) {
      this.#log.warn(`refusing virt-admin connection from ${source} (${user}): not root or a host admin`, { user, source });
      this.#d.audit?.event('admin-refused', { user, source }).catch(() => undefined); // an outage is logged loudly elsewhere
      setTimeout(() => sock.destroy(), REFUSED_LINGER_MS).unref();
    }
    const dec = new FrameDecoder({ min: 28, max: FRAME_MAX });
    let chain = Promise.resolve();
    sock.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = dec.push(chunk);
      } catch {
        sock.destroy();
        return;
      }
      for (const f of frames) {
        // One call at a time, in order: admin calls are rare and some (limits, outputs) must not interleave.
        chain = chain.then(() => this.#frame(sock, f, { allowed, uid, user, source })).catch(() => void sock.destroy());
      }
    });
  }

  async #frame(sock: net.Socket, frame: Buffer, who: Admin & { allowed: boolean }): Promise<void> {
    let header: Header;
    let body: XdrReader;
    try {
      ({ header, body } = decodeHeader(frame));
    } catch {
      sock.destroy();
      return;
    }
    const send = (b: Buffer): void => void (sock.writable && sock.write(b));
    if (header.prog === Program.KEEPALIVE) {
      if (header.proc === KeepaliveProc.PING) send(encodeKeepalive(KeepaliveProc.PONG));
      return;
    }
    if (header.type !== MessageType.CALL) return; // as libvirtd: replies and messages from a client are ignored
    const fail = (e: RemoteError): void => send(encodeErrorReply(header, e));
    if (!who.allowed) {
      fail(remoteError(E.ACCESS_DENIED, D.ACCESS, 'access denied: virt-admin is for root and host admins'));
      sock.end();
      return;
    }
    if (header.prog !== ADMIN_PROGRAM || header.vers !== ADMIN_PROTOCOL_VERSION) {
      fail(remoteError(E.RPC, D.RPC, `Cannot find program ${header.prog} version ${header.vers}`));
      return;
    }
    try {
      const out = await this.#call(header.proc, body, who, sock);
      if (out === undefined) return void fail(unknownProc(header.proc));
      send(encodeMessage({ ...header, type: MessageType.REPLY, status: MessageStatus.OK }, out));
      if (header.proc === AdminProc.CONNECT_CLOSE) sock.end();
    } catch (e) {
      if (e instanceof AdminError) fail(remoteError(e.code, e.domain, e.message));
      else fail(remoteError(E.RPC, D.RPC, 'Unable to decode message payload'));
    }
  }

  // Returns the reply's body writer, or undefined for a procedure we do not serve (libvirt's unknown-procedure answer).
  async #call(proc: number, r: XdrReader, who: Admin, self: net.Socket): Promise<((w: XdrWriter) => void) | undefined> {
    const done = <T>(v: T): T => (r.ensureConsumed('admin call'), v);
    const server = (name: string): void => {
      if (name !== SERVER_NAME) throw new AdminError(E.NO_SERVER, D.ADMIN, `Server not found: no server named '${name.slice(0, 64)}'`);
    };
    const noFlags = (flags: number): void => {
      if (flags !== 0) throw new AdminError(E.INVALID_ARG, D.ADMIN, `unsupported flags (0x${flags.toString(16)})`);
    };
    const d = this.#d;
    switch (proc) {
      case AdminProc.CONNECT_OPEN:
      case AdminProc.CONNECT_CLOSE:
        if (proc === AdminProc.CONNECT_OPEN) noFlags(done(AdminArgs.flags(r)).flags);
        else done(null);
        return () => undefined;
      case AdminProc.CONNECT_GET_LIB_VERSION:
        done(null);
        return (w) => void w.u64(LIB_VERSION);
      case AdminProc.CONNECT_LIST_SERVERS: {
        const a = done(AdminArgs.listServers(r));
        noFlags(a.flags);
        return (w) => void w.array(a.needResults ? [SERVER_NAME] : [], AdminLimits.SERVER_LIST_MAX, (x, s) => x.string(s, AdminLimits.STRING_MAX)).u32(1);
      }
      case AdminProc.CONNECT_LOOKUP_SERVER: {
        const a = done(AdminArgs.lookupServer(r));
        noFlags(a.flags);
        server(a.name);
        return (w) => void w.string(SERVER_NAME, AdminLimits.STRING_MAX);
      }
      case AdminProc.SERVER_GET_THREADPOOL_PARAMETERS: {
        const a = done(AdminArgs.server(r));
        noFlags(a.flags);
        server(a.srv);
        // One event loop thread does all the work (helper calls are asynchronous): that is the pool.
        const inFlight = [...d.sessions].reduce((n, s) => n + s.inFlight, 0);
        const v = [1, 1, 1, inFlight ? 0 : 1, 0, inFlight];
        const params = AdminParam.THREADPOOL.map((f, i) => tpUint(f, v[i]));
        return (w) => paramsOf(AdminLimits.THREADPOOL_PARAMETERS_MAX).encode(w, params);
      }
      case AdminProc.SERVER_LIST_CLIENTS: {
        const a = done(AdminArgs.listClients(r));
        noFlags(a.flags);
        server(a.srv);
        const all = [...d.sessions].map(clientOf);
        return (w) => void w.array(a.needResults ? all : [], AdminLimits.CLIENT_LIST_MAX, adminClientCodec.encode).u32(all.length);
      }
      case AdminProc.SERVER_LOOKUP_CLIENT: {
        const a = done(AdminArgs.lookupClient(r));
        noFlags(a.flags);
        server(a.srv);
        const s = this.#session(a.id);
        return (w) => adminClientCodec.encode(w, clientOf(s));
      }
      case AdminProc.CLIENT_GET_INFO: {
        const a = done(AdminArgs.client(r));
        noFlags(a.flags);
        server(a.clnt.srv);
        const params = clientInfo(this.#session(a.clnt.id));
        return (w) => paramsOf(AdminLimits.CLIENT_INFO_PARAMETERS_MAX).encode(w, params);
      }
      case AdminProc.SERVER_GET_CLIENT_LIMITS: {
        const a = done(AdminArgs.server(r));
        noFlags(a.flags);
        server(a.srv);
        const params = [
          tpUint(AdminParam.CLIENTS_MAX, d.limits.maxClients),
          tpUint(AdminParam.CLIENTS_CURRENT, d.stats().clients),
          tpUint(AdminParam.CLIENTS_UNAUTH_MAX, d.limits.maxAnonymousClients),
          tpUint(AdminParam.CLIENTS_UNAUTH_CURRENT, d.anonymousCount()),
        ];
        return (w) => paramsOf(AdminLimits.CLIENT_LIMITS_MAX).encode(w, params);
      }
      case AdminProc.CONNECT_GET_LOGGING_OUTPUTS:
        noFlags(done(AdminArgs.flags(r)).flags);
        return (w) => void w.string(d.logger.outputs, AdminLimits.STRING_MAX).u32(d.logger.outputCount);
      case AdminProc.CONNECT_GET_LOGGING_FILTERS:
        noFlags(done(AdminArgs.flags(r)).flags);
        return (w) => void w.optional(d.logger.filters || null, (x, s) => x.string(s, AdminLimits.STRING_MAX)).u32(d.logger.filterCount);
      // Writes: the intent is durable before anything changes, the outcome before the reply.
      case AdminProc.CLIENT_CLOSE: {
        const a = done(AdminArgs.client(r));
        noFlags(a.flags);
        server(a.clnt.srv);
        const s = this.#session(a.clnt.id);
        await this.#audited(who, 'client-close', { client: Number(a.clnt.id), clientUser: policyUser(s.identity ?? s.evidence) }, () =>
          s.close('closed by virt-admin client-disconnect'),
        );
        return () => undefined;
      }
      case AdminProc.SERVER_SET_CLIENT_LIMITS: {
        const a = done(AdminArgs.setServerParams(r, AdminLimits.CLIENT_LIMITS_MAX));
        noFlags(a.flags);
        server(a.srv);
        const bad = validateTypedParams(a.params, { [AdminParam.CLIENTS_MAX]: 2, [AdminParam.CLIENTS_UNAUTH_MAX]: 2 });
        if (bad) throw new AdminError(bad.kind === 'unsupported' ? E.ARGUMENT_UNSUPPORTED : E.INVALID_ARG, D.ADMIN, bad.message);
        const get = (f: string): number | undefined => a.params.find((p: TypedParam) => p.field === f)?.value as number | undefined;
        const max = get(AdminParam.CLIENTS_MAX) ?? d.limits.maxClients;
        const unauth = get(AdminParam.CLIENTS_UNAUTH_MAX) ?? d.limits.maxAnonymousClients;
        if (max < 1 || unauth < 1 || max > 100000) throw new AdminError(E.INVALID_ARG, D.ADMIN, 'limits must be between 1 and 100000');
        if (unauth > max)
          throw new AdminError(
            E.INVALID_ARG,
            D.ADMIN,
            `The overall maximum number of clients must be greater than the maximum number of clients waiting for authentication`,
          );
        await this.#audited(who, 'client-limits', { maxClients: max, maxAnonymousClients: unauth }, () => {
          d.limits.maxClients = max;
          d.limits.maxAnonymousClients = unauth;
        });
        return () => undefined;
      }
      case AdminProc.CONNECT_SET_LOGGING_OUTPUTS:
      case AdminProc.CONNECT_SET_LOGGING_FILTERS: {
        const a = done(AdminArgs.optString(r));
        noFlags(a.flags);
        const outputs = proc === AdminProc.CONNECT_SET_LOGGING_OUTPUTS;
        // An empty or absent value restores the default, as libvirtd does.
        const text = (a.value ?? '').trim() || (outputs ? d.config.logOutputs || defaultOutputsOf(d) : '');
        await this.#audited(who, outputs ? 'log-outputs' : 'log-filters', { value: text.slice(0, 1024) }, () => {
          try {
            if (outputs) d.logger.setOutputs(text);
            else d.logger.setFilters(text);
          } catch (e) {
            throw new AdminError(E.INVALID_ARG, D.ADMIN, `invalid ${outputs ? 'outputs' : 'filters'}: ${(e as Error).message}`);
          }
        });
        this.#log.info(`virt-admin (${who.user}) set log ${outputs ? 'outputs' : 'filters'} to '${text}'`);
        return () => undefined;
      }
      case AdminProc.SERVER_SET_THREADPOOL_PARAMETERS:
      case AdminProc.SERVER_UPDATE_TLS_FILES:
      case AdminProc.CONNECT_SET_DAEMON_TIMEOUT:
        throw new AdminError(
          E.OPERATION_UNSUPPORTED,
          D.ADMIN,
          'Operation not supported: virtgate has no thread pool, reloads TLS files on change or SIGHUP, and has no idle timeout',
        );
      default:
        void self;
        return undefined;
    }
  }

  #session(id: bigint): Session {
    for (const s of this.#d.sessions) if (BigInt(s.id) === id) return s;
    throw new AdminError(E.NO_CLIENT, D.ADMIN, `Client not found: no client with matching id '${id}'`);
  }

  // Intent recorded (and durable) first: with the audit trail down, nothing changes (fail closed).
  // The right is decided again at each write, as the libvirt pipeline decides each call: a host admin revoked while
  // connected changes nothing more.
  async #audited(who: Admin, action: string, detail: Record<string, string | number | boolean>, apply: () => void): Promise<void> {
    const audit = this.#d.audit;
    if (!this.#mayAdminister(who.uid, who.user)) {
      this.#log.warn(`refusing virt-admin ${action} by ${who.user}: no longer root or a host admin`, { user: who.user, action });
      await audit?.event('admin-refused', { user: who.user, source: who.source, action }).catch(() => undefined);
      throw new AdminError(E.ACCESS_DENIED, D.ACCESS, 'access denied: virt-admin is for root and host admins');
    }
    try {
      await audit?.event('admin-intent', { action, user: who.user, source: who.source, ...detail });
    } catch (e) {
      throw new AdminError(E.INTERNAL, D.ADMIN, `audit log unavailable, nothing changed: ${(e as Error).message}`);
    }
    let error = '';
    try {
      apply();
    } catch (e) {
      error = (e as Error).message;
      throw e;
    } finally {
      await audit
        ?.event('admin-outcome', { action, user: who.user, ok: error === '', ...(error ? { error: error.slice(0, 256) } : {}) })
        .catch(() => undefined);
      this.#log.warn(`virt-admin ${action} by ${who.user}: ${error || 'done'}`, { user: who.user, action });
    }
  }
}

interface Admin {
  uid: number;
  user: string;
  source: string;
}

function defaultOutputsOf(d: AdminTarget): string {
  return fs.existsSync(d.config.journalSocket) ? '2:journald' : '2:stderr';
}

function clientOf(s: Session): { srv: string; id: bigint; timestamp: bigint; transport: number } {
  const t = s.transport === 'tls' ? ClientTransport.TLS : s.transport === 'tcp' ? ClientTransport.TCP : ClientTransport.UNIX;
  return { srv: SERVER_NAME, id: BigInt(s.id), timestamp: BigInt(Math.floor(s.openedAt / 1000)), transport: t };
}

// libvirt's VIR_CLIENT_INFO_* names (libvirt-admin.h).
function clientInfo(s: Session): TypedParam[] {
  const ev = s.evidence;
  const id = s.identity;
  const out: TypedParam[] = [tpBool('readonly', s.readOnly)];
  if (ev?.uid !== undefined) {
    out.push(tpInt('unix_user_id', ev.uid), tpString('unix_user_name', userNameForUid(ev.uid)));
    if (ev.gid !== undefined) out.push(tpInt('unix_group_id', ev.gid));
    if (ev.pid !== undefined) out.push(tpInt('unix_process_id', ev.pid));
  } else if (ev?.source) out.push(tpString('sock_addr', ev.source));
  if (ev?.dn) out.push(tpString('x509_dname', ev.dn));
  if (id?.method === 'sasl') out.push(tpString('sasl_user_name', id.user));
  return out;
}

function unknownProc(proc: number): RemoteError {
  const message = `unknown procedure: ${proc}`;
  return { code: E.RPC, domain: D.RPC, message, level: 2, str1: '%s', str2: message, str3: null, int1: -1, int2: -1 };
}
