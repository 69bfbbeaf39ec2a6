// SPDX-License-Identifier: Apache-2.0
// Front-end procedure handlers: libvirt calls in, helper IPC requests out. Every REMOTE procedure has one entry,
// in the file of its object; this registry assembles them into the table the dispatcher looks procedures up in.
import { authHandlers } from './auth';
import { type Entry, type EntryOptions, type Handler } from './common';
import { connectHandlers } from './connect';
import { domainReadHandlers } from './domain-read';
import { domainWriteHandlers } from './domain-write';
import { eventHandlers } from './events';
import { metadataHandlers } from './metadata';
import { networkHandlers } from './network';
import { storageHandlers } from './storage';
import { hostObjectHandlers } from './host-objects';
import { domainExtraHandlers } from './domain-extra';
import { snapshotHandlers } from './snapshot';
import { domainSaveHandlers } from './domain-save';
import { consoleHandlers } from './console';
import { graphicsHandlers } from './graphics';

export type { CallObject, HandlerContext, NowContext } from './common';
export { matchesListFlags } from './domain-read';
export { SERVER_MESSAGES } from './events';

// AUTH_LIST and the SASL exchange (./auth) are the only calls allowed before login; DOMAIN_SET_METADATA (./metadata)
// sets the VM's tenant, host admins only. Their contexts are subsets of HandlerContext.
const tables: Entry[][] = [
  authHandlers,
  metadataHandlers,
  connectHandlers,
  domainReadHandlers,
  domainWriteHandlers,
  eventHandlers,
  networkHandlers,
  storageHandlers,
  hostObjectHandlers,
  domainExtraHandlers,
  snapshotHandlers,
  domainSaveHandlers,
  consoleHandlers,
  graphicsHandlers,
];

const handlers = new Map<number, Handler<unknown, unknown>>();
const options = new Map<number, EntryOptions<unknown>>();
for (const [def, h, opts] of tables.flat()) {
  // Two files claiming one procedure would silently shadow one another.
  if (handlers.has(def.proc)) throw new Error(`two handlers for procedure ${def.proc} (${def.name})`);
  handlers.set(def.proc, h as Handler<unknown, unknown>);
  if (opts) options.set(def.proc, opts as EntryOptions<unknown>);
}

export function handlerFor(proc: number): Handler<unknown, unknown> | undefined {
  return handlers.get(proc);
}

// The call's object resolver, for procedures on objects other than domains (domains: the `dom` argument).
export function entryOptions(proc: number): EntryOptions<unknown> | undefined {
  return options.get(proc);
}

export function handledProcs(): number[] {
  return [...handlers.keys()];
}
