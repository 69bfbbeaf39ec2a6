// SPDX-License-Identifier: Apache-2.0
// The virsh-like commands of `virtgate`, each a spec (arguments, options) and a handler over VirtgateClient.
import { readFileSync } from 'node:fs';
import {
  AffectFlags,
  ListAllFlags,
  type RemoteDomain,
  type VirtgateClient,
  VG_ERR_USAGE,
  isNoSupport,
  stateName,
  stateReasonName,
  uuidFromString,
  uuidToString,
  versionString,
} from '../client';
import { formatDomInfo, formatDomainId, formatDomainList, formatLifecycleEvent, formatNodeInfo, sortDomains, type DomInfoExtras } from './table';

// An operation failed: each line is printed as "error: <line>", exit status 1.
export class CommandError extends Error {
  readonly lines: string[];
  constructor(...lines: string[]) {
    super(lines.join('; '));
    this.name = 'CommandError';
    this.lines = lines;
  }
}

export interface CommandContext {
  client: VirtgateClient;
  out(s: string): void;
  readFile(path: string): string;
  // Resolves when the user interrupts (SIGINT); `event --loop` stops on it.
  interrupted(): Promise<void>;
}

export interface Parsed {
  positionals: string[];
  values: Record<string, string | boolean | undefined>;
}

// One option of a command: `help` is its line in `virtgate help COMMAND`; `arg` names a string option's value.
export interface OptionSpec {
  type: 'boolean' | 'string';
  help: string;
  arg?: string;
}

export interface CommandSpec {
  name: string;
  args: string[]; // positional names, all required
  options: Record<string, OptionSpec>;
  summary: string;
  run(ctx: CommandContext, p: Parsed): Promise<void>;
}

// virshLookupDomainBy: an id if numeric, a UUID if it parses, and the name last (also as the fallback).
export type LookupStep = { by: 'id'; id: number } | { by: 'uuid'; uuid: Buffer } | { by: 'name'; name: string };

export function lookupOrder(arg: string): LookupStep[] {
  const steps: LookupStep[] = [];
  if (/^\d+$/.test(arg) && Number(arg) <= 0x7fffffff) steps.push({ by: 'id', id: Number(arg) });
  const uuid = arg.length === 36 ? uuidFromString(arg) : null;
  if (uuid) steps.push({ by: 'uuid', uuid });
  steps.push({ by: 'name', name: arg });
  return steps;
}

const isRemote = (err: unknown): boolean => (err as { code?: string }).code === 'VG_ERR_CLIENT_REMOTE';

export async function resolveDomain(client: VirtgateClient, arg: string): Promise<RemoteDomain> {
  for (const step of lookupOrder(arg)) {
    try {
      if (step.by === 'id') return await client.lookupById(step.id);
      if (step.by === 'uuid') return await client.lookupByUuid(step.uuid);
      return await client.lookupByName(step.name);
    } catch (err) {
      if (!isRemote(err)) throw err; // a dead connection is not "try the next form"
    }
  }
  throw new CommandError(`failed to get domain '${arg}'`);
}

// Run a server call; a server error becomes virsh's two lines: what failed, then the server's reason.
async function attempt<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isRemote(err)) throw new CommandError(what, (err as Error).message);
    throw err;
  }
}

// Optional sub-calls (dominfo): any server error means "leave the line out".
async function optional<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    if (isRemote(err)) return undefined;
    throw err;
  }
}

function affectFlags(v: Parsed['values']): number {
  return (v.live ? AffectFlags.LIVE : 0) | (v.config ? AffectFlags.CONFIG : 0);
}

function parseCount(s: string, what: string, max: number): number {
  if (!/^\d+$/.test(s) || Number(s) > max) throw VG_ERR_USAGE(`invalid ${what} '${s}': expected a non-negative integer`);
  return Number(s);
}

// One spec per simple "look up, act, report" command.
function domainAction(name: string, verb: string, done: string, act: (c: VirtgateClient, d: RemoteDomain) => Promise<unknown>): CommandSpec {
  return {
    name,
    args: ['DOM'],
    options: {},
    summary: `${verb.charAt(0).toUpperCase()}${verb.slice(1)} a domain`,
    async run({ client, out }, { positionals: [arg] }) {
      const dom = await resolveDomain(client, arg);
      await attempt(`Failed to ${verb} domain '${dom.name}'`, () => act(client, dom));
      out(`Domain '${dom.name}' ${done}\n\n`);
    },
  };
}

const LIFECYCLE_ONLY = 'lifecycle';

// virsh's --live/--config/--current of setmem and setvcpus.
const AFFECT_OPTIONS: Record<string, OptionSpec> = {
  live: { type: 'boolean', help: 'change the running domain' },
  config: { type: 'boolean', help: "change the persistent definition (from the domain's next start)" },
  current: { type: 'boolean', help: 'change the current state: running if it runs, else the definition (the default)' },
};

export const COMMANDS: readonly CommandSpec[] = [
  {
    name: 'list',
    args: [],
    options: {
      all: { type: 'boolean', help: 'active and inactive domains' },
      inactive: { type: 'boolean', help: 'inactive domains only' },
      name: { type: 'boolean', help: 'print only the names' },
    },
    summary: 'List domains (active by default)',
    async run({ client, out }, { values }) {
      const flags = values.all ? ListAllFlags.ACTIVE | ListAllFlags.INACTIVE : values.inactive ? ListAllFlags.INACTIVE : ListAllFlags.ACTIVE;
      const doms = sortDomains(await attempt('Failed to list domains', () => client.listAllDomains(flags)));
      if (values.name) {
        out(doms.map((d) => `${d.name}\n`).join('') + '\n');
        return;
      }
      const rows: { dom: RemoteDomain; state: number }[] = [];
      for (const dom of doms) {
        // virsh falls back to GET_INFO only for NO_SUPPORT, and silently drops the row for other errors.
        const state = await client.getState(dom).then(
          (s) => s.state,
          (err) =>
            isNoSupport(err)
              ? client.getInfo(dom).then(
                  (i) => i.state,
                  () => undefined,
                )
              : isRemote(err)
                ? undefined
                : Promise.reject(err),
        );
        if (state !== undefined) rows.push({ dom, state });
      }
      out(formatDomainList(rows));
    },
  },
  {
    name: 'dominfo',
    args: ['DOM'],
    options: {},
    summary: 'Show domain information',
    async run({ client, out }, { positionals: [arg] }) {
      const dom = await resolveDomain(client, arg);
      const osType = await optional(() => client.getOsType(dom));
      const info = await attempt(`failed to get info for domain '${dom.name}'`, () => client.getInfo(dom));
      const x: DomInfoExtras = {
        osType,
        persistent: await optional(() => client.isPersistent(dom)),
        autostart: await optional(() => client.getAutostart(dom)),
        managedSave: await optional(() => client.hasManagedSaveImage(dom)),
      };
      const model = await optional(() => client.nodeGetSecurityModel());
      if (model && model.model !== '') {
        x.security = { ...model, label: await attempt(`failed to get security label of domain '${dom.name}'`, () => client.getSecurityLabel(dom)) };
      }
      out(formatDomInfo(dom, info, x));
    },
  },
  {
    name: 'domstate',
    args: ['DOM'],
    options: { reason: { type: 'boolean', help: 'also print why the domain is in that state' } },
    summary: 'Show domain state',
    async run({ client, out }, { positionals: [arg], values }) {
      const dom = await resolveDomain(client, arg);
      const { state, reason } = await attempt(`failed to get state of domain '${dom.name}'`, () =>
        client.getState(dom).catch((err) => (isNoSupport(err) ? client.getInfo(dom).then((i) => ({ state: i.state, reason: 0 })) : Promise.reject(err))),
      );
      out(values.reason ? `${stateName(state)} (${stateReasonName(state, reason)})\n\n` : `${stateName(state)}\n\n`);
    },
  },
  {
    name: 'domid',
    args: ['DOM'],
    options: {},
    summary: 'Convert a domain name or UUID to its id',
    async run({ client, out }, { positionals: [arg] }) {
      out(`${formatDomainId((await resolveDomain(client, arg)).id)}\n\n`);
    },
  },
  {
    name: 'domuuid',
    args: ['DOM'],
    options: {},
    summary: 'Convert a domain name or id to its UUID',
    async run({ client, out }, { positionals: [arg] }) {
      out(`${uuidToString((await resolveDomain(client, arg)).uuid)}\n\n`);
    },
  },
  {
    name: 'dumpxml',
    args: ['DOM'],
    options: {},
    summary: 'Print the domain XML',
    async run({ client, out }, { positionals: [arg] }) {
      const dom = await resolveDomain(client, arg);
      const xml = await attempt(`failed to get XML of domain '${dom.name}'`, () => client.getXmlDesc(dom));
      out(xml.endsWith('\n') ? xml : `${xml}\n`);
    },
  },
  {
    name: 'start',
    args: ['DOM'],
    options: {},
    summary: 'Start a defined (inactive) domain',
    async run({ client, out }, { positionals: [arg] }) {
      const dom = await resolveDomain(client, arg);
      // virsh decides from the lookup's id alone, without asking the server.
      if (dom.id !== -1) throw new CommandError('Domain is already active');
      await attempt(`Failed to start domain '${dom.name}'`, () => client.create(dom));
      out(`Domain '${dom.name}' started\n\n`);
    },
  },
  {
    name: 'create',
    args: ['FILE'],
    options: {},
    summary: 'Create and start a transient domain from an XML file',
    async run({ client, out, readFile }, { positionals: [file] }) {
      const xml = readXml(readFile, file, 'create');
      const dom = await attempt(`Failed to create domain from ${file}`, () => client.createXml(xml));
      out(`Domain '${dom.name}' created from ${file}\n\n`);
    },
  },
  {
    name: 'define',
    args: ['FILE'],
    options: {},
    summary: 'Define (but do not start) a domain from an XML file',
    async run({ client, out, readFile }, { positionals: [file] }) {
      const xml = readXml(readFile, file, 'define');
      const dom = await attempt(`Failed to define domain from ${file}`, () => client.defineXml(xml));
      out(`Domain '${dom.name}' defined from ${file}\n\n`);
    },
  },
  {
    name: 'undefine',
    args: ['DOM'],
    options: {},
    summary: 'Undefine a domain',
    async run({ client, out }, { positionals: [arg] }) {
      const dom = await resolveDomain(client, arg);
      await attempt(`Failed to undefine domain '${dom.name}'`, () => client.undefine(dom));
      out(`Domain '${dom.name}' has been undefined\n\n`);
    },
  },
  domainAction('suspend', 'suspend', 'suspended', (c, d) => c.suspend(d)),
  domainAction('resume', 'resume', 'resumed', (c, d) => c.resume(d)),
  domainAction('shutdown', 'shutdown', 'is being shutdown', (c, d) => c.shutdown(d)),
  domainAction('reboot', 'reboot', 'is being rebooted', (c, d) => c.reboot(d)),
  domainAction('destroy', 'destroy', 'destroyed', (c, d) => c.destroy(d)),
  {
    name: 'setmem',
    args: ['DOM', 'KIB'],
    options: AFFECT_OPTIONS,
    summary: 'Change the current memory allocation (KiB)',
    async run({ client }, { positionals: [arg, kib], values }) {
      const mem = parseCount(kib, 'memory size', Number.MAX_SAFE_INTEGER);
      const dom = await resolveDomain(client, arg);
      await attempt(`Unable to change memory of domain '${dom.name}'`, () => client.setMemory(dom, mem, affectFlags(values)));
    },
  },
  {
    name: 'setvcpus',
    args: ['DOM', 'N'],
    options: AFFECT_OPTIONS,
    summary: 'Change the number of virtual CPUs',
    async run({ client }, { positionals: [arg, n], values }) {
      const count = parseCount(n, 'vcpu count', 0xffffffff);
      const dom = await resolveDomain(client, arg);
      await attempt(`Unable to change vcpus of domain '${dom.name}'`, () => client.setVcpus(dom, count, affectFlags(values)));
    },
  },
  {
    name: 'nodeinfo',
    args: [],
    options: {},
    summary: 'Show host information',
    async run({ client, out }) {
      out(formatNodeInfo(await attempt('failed to get node information', () => client.nodeGetInfo())));
    },
  },
  {
    name: 'hostname',
    args: [],
    options: {},
    summary: 'Print the hypervisor host name',
    async run({ client, out }) {
      out(`${await attempt('failed to get hostname', () => client.getHostname())}\n`);
    },
  },
  {
    name: 'version',
    args: [],
    options: {},
    summary: 'Show the hypervisor type and version',
    async run({ client, out }) {
      const type = (await optional(() => client.getType())) ?? 'remote'; // virsh's wording when GET_TYPE fails
      const v = await attempt('failed to get the hypervisor version', () => client.getVersion());
      out(`Running hypervisor: ${type} ${versionString(v)}\n\n`);
    },
  },
  {
    name: 'capabilities',
    args: [],
    options: {},
    summary: 'Print the host capabilities XML',
    async run({ client, out }) {
      const caps = await attempt('failed to get capabilities', () => client.getCapabilities());
      out(caps.endsWith('\n') ? caps : `${caps}\n`);
    },
  },
  {
    name: 'event',
    args: [],
    options: {
      loop: { type: 'boolean', help: 'keep printing events until Ctrl-C or --timeout (default: stop after one)' },
      timeout: { type: 'string', arg: 'SECONDS', help: 'stop waiting after this many seconds' },
      event: { type: 'string', arg: 'NAME', help: "the event to wait for: only 'lifecycle'" },
      all: { type: 'boolean', help: 'every event type (here: lifecycle)' },
    },
    summary: 'Print domain lifecycle events (one, or all with --loop)',
    async run({ client, out, interrupted }, { values }) {
      if (values.event !== undefined && values.event !== LIFECYCLE_ONLY) throw VG_ERR_USAGE(`unsupported event '${String(values.event)}' (only 'lifecycle')`);
      const timeoutS = values.timeout === undefined ? 0 : parseCount(String(values.timeout), 'timeout', 0x7fffffff / 1000);
      if (values.timeout !== undefined && timeoutS < 1) throw VG_ERR_USAGE('timeout must be at least 1 second');
      const callbackID = await attempt('failed to register event callback', () => client.registerLifecycleEvents());
      const events = client.events();
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((r) => {
        if (timeoutS > 0) timer = setTimeout(() => r('timeout'), timeoutS * 1000);
      });
      const stop = interrupted().then(() => 'interrupted' as const);
      let count = 0;
      try {
        for (;;) {
          const next = await Promise.race([events.next(), timedOut, stop]);
          if (next === 'timeout') {
            out('event loop timed out\n');
            break;
          }
          if (next === 'interrupted' || next.done) break;
          out(formatLifecycleEvent(next.value));
          count++;
          if (!values.loop) break;
        }
      } finally {
        clearTimeout(timer);
        await events.return?.();
      }
      out(`events received: ${count}\n`);
      if (!client.closed) await attempt('failed to deregister event callback', () => client.deregisterLifecycleEvents(callbackID));
    },
  },
];

function readXml(readFile: (p: string) => string, file: string, verb: string): string {
  try {
    return readFile(file);
  } catch (err) {
    throw new CommandError(
      `Failed to ${verb} domain from ${file}`,
      `Failed to open file '${file}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}

export const readFileUtf8 = (p: string): string => readFileSync(p, 'utf8');

export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name);
}
