// SPDX-License-Identifier: Apache-2.0
// The front end's request pipeline: auth state -> strict decode -> open state -> read-only -> policy -> handler -> reply.
import {
  VG_ERR_ACCESS_DENIED,
  VG_ERR_CONN_NOT_OPEN,
  VG_ERR_INTERNAL,
  VG_ERR_READ_ONLY,
  VG_ERR_RPC_AUTH_REQUIRED,
  VG_ERR_RPC_PAYLOAD,
  isVgError,
} from '../common/errors';
import type { Actor, DomainSummary, NodeFacts } from '../ipc/program';
import { Op, uuidToString } from '../ipc/program';
import { decodeBody, encodeReply } from '../protocol/messages';
import { P, type ProcDef, requiredPermissions } from '../protocol/procs/remote';
import type { RemoteDomain } from '../protocol/types';
import type { Authorizer, PolicyObject, Subject } from '../policy/authorizer';
import { type HandlerContext, handlerFor } from './handlers';
import type { HelperClient } from './helper-client';
import type { Call, Session } from './session';

// Allowed before CONNECT_OPEN (libvirtd answers "connection not open" to the rest).
const PRE_OPEN = new Set<number>([P.AUTH_LIST.proc, P.CONNECT_SUPPORTS_FEATURE.proc, P.CONNECT_OPEN.proc, P.CONNECT_CLOSE.proc]);

export interface DispatcherOptions {
  helper: HelperClient;
  authorizer: Authorizer;
  log?: (msg: string) => void;
}

export class Dispatcher {
  readonly #helper: HelperClient;
  readonly #authorizer: Authorizer;
  #facts: Promise<NodeFacts> | null = null;
  #callbackIds = 0;
  #requestIds = 0;

  constructor(opts: DispatcherOptions) {
    this.#helper = opts.helper;
    this.#authorizer = opts.authorizer;
    // Host facts are fixed per helper connection: cache them, refresh after a reconnect.
    this.#helper.on('up', () => (this.#facts = null));
  }

  facts(): Promise<NodeFacts> {
    if (!this.#facts) {
      this.#facts = this.#helper.call(Op.NODE_FACTS_REQ, {}).catch((e: Error) => {
        this.#facts = null;
        throw e;
      });
    }
    return this.#facts;
  }

  nextCallbackId(): number {
    return this.#callbackIds++;
  }

  subject(s: Session): Subject {
    return { user: s.identity?.user ?? '', tenant: s.tenant, readOnly: s.readOnly };
  }

  canSee(s: Session, d: Pick<DomainSummary, 'name' | 'uuid'>, permission = 'domain:getattr'): boolean {
    return this.#authorizer.can(this.subject(s), { kind: 'domain', name: d.name, uuid: uuidToString(d.uuid) }, permission).allowed;
  }

  dispatch = async (s: Session, call: Call): Promise<Buffer> => {
    const { def, header, body } = call;
    if (def.needAuth && !s.identity) throw VG_ERR_RPC_AUTH_REQUIRED();
    let args: Record<string, unknown>;
    try {
      args = (decodeBody(def.args, body, def.name) ?? {}) as Record<string, unknown>;
    } catch {
      throw VG_ERR_RPC_PAYLOAD();
    }
    if (!s.opened && !PRE_OPEN.has(def.proc)) throw VG_ERR_CONN_NOT_OPEN();
    if (def.cls === 'write' && s.readOnly) throw VG_ERR_READ_ONLY(apiName(def));
    this.#authorize(s, def, args);
    const handler = handlerFor(def.proc);
    if (!handler) throw VG_ERR_INTERNAL(`no handler for ${def.name}`);
    const ctx = this.#context(s);
    try {
      const ret = await handler(ctx, args);
      return encodeReply(def, header.serial, ret);
    } catch (e) {
      if (isVgError(e)) throw e;
      throw VG_ERR_INTERNAL('unexpected failure'); // never leak internals to the network
    }
  };

  // Every permission the call needs, on the object it names; deny by default.
  #authorize(s: Session, def: ProcDef, args: Record<string, unknown>): void {
    const perms = requiredPermissions(def, typeof args.flags === 'number' ? args.flags : 0);
    if (perms.length === 0) return;
    const object = policyObject(args);
    const subject = this.subject(s);
    for (const perm of perms) {
      const obj: PolicyObject = perm.startsWith('domain:') ? object : { kind: 'connect', name: 'virtgate' };
      // The denial names no object: existence of what the caller may not see does not leak.
      if (!this.#authorizer.can(subject, obj, perm).allowed) throw VG_ERR_ACCESS_DENIED();
    }
  }

  #context(s: Session): HandlerContext {
    return {
      session: s,
      helper: this.#helper,
      facts: () => this.facts(),
      actor: (): Actor => ({
        user: printable(s.identity?.user ?? ''),
        tenant: printable(s.tenant),
        requestId: `${s.id}-${++this.#requestIds}`,
      }),
      nextCallbackId: () => this.nextCallbackId(),
      visible: (d) => this.canSee(s, d),
    };
  }
}

function policyObject(args: Record<string, unknown>): PolicyObject {
  const dom = args.dom as RemoteDomain | undefined | null;
  if (dom) return { kind: 'domain', name: dom.name, uuid: uuidToString(dom.uuid) };
  if (typeof args.name === 'string') return { kind: 'domain', name: args.name };
  // define/create: the object is only known after parsing the XML; tenancy rules decide (issue 5).
  return { kind: 'domain', name: '*' };
}

// `domainSuspend` -> `virDomainSuspend`, as libvirt names the API in read-only denials.
export function apiName(def: ProcDef): string {
  return 'vir' + def.name[0].toUpperCase() + def.name.slice(1).replace(/Xml/g, 'XML').replace(/Uuid/g, 'UUID').replace(/Id$/, 'ID');
}

const printable = (s: string): string => s.replace(/[^\x20-\x7e]/g, '?').slice(0, 256);
