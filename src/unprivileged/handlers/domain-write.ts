// SPDX-License-Identifier: Apache-2.0
// Domain writes: define, create, lifecycle control, undefine, memory and vCPUs. Each is one audited helper request.
import { VG_ERR_ARG_INVALID } from '../../common/errors';
import { type ControlActionCode, ControlAction, type DomainSummary, IpcLimits, Op } from '../../ipc/program';
import { AffectFlags, MemoryFlags, VcpuFlags } from '../../protocol/constants';
import { P } from '../../protocol/procs/remote';
import type { RemoteDomain } from '../../protocol/types';
import { type Entry, type HandlerContext, checkFlags, entry, toRemote } from './common';
import { type DomainDef, parseDomainXml } from '../xml/domain';

// The client's XML is parsed here, in the unprivileged front end; the helper gets the typed definition only.
async function defOf(ctx: HandlerContext, xml: string): Promise<DomainDef> {
  if (Buffer.byteLength(xml) > IpcLimits.XML_MAX) throw VG_ERR_ARG_INVALID(`domain XML larger than ${IpcLimits.XML_MAX} bytes`);
  if (xml.includes('\0')) throw VG_ERR_ARG_INVALID('domain XML contains NUL');
  return parseDomainXml(xml, { refuseQemuNamespace: (await ctx.facts()).driver === 'qemu' });
}

const control = async (ctx: HandlerContext, dom: RemoteDomain, action: ControlActionCode): Promise<DomainSummary> =>
  ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'control', { actor: ctx.actor(), uuid: dom.uuid, control: action });

const UNDEFINE_MANAGED_SAVE = 1;
const UNDEFINE_SNAPSHOTS_METADATA = 2;
const undefine = async (ctx: HandlerContext, dom: RemoteDomain, flags = 0): Promise<void> =>
  void (await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'undefine', {
    actor: ctx.actor(),
    uuid: dom.uuid,
    removeManagedSave: (flags & UNDEFINE_MANAGED_SAVE) !== 0,
    removeSnapshots: (flags & UNDEFINE_SNAPSHOTS_METADATA) !== 0,
  }));

function affect(flags: number): { live: boolean; config: boolean } {
  return { live: (flags & AffectFlags.LIVE) !== 0, config: (flags & AffectFlags.CONFIG) !== 0 };
}

async function setMemory(ctx: HandlerContext, dom: RemoteDomain, memory: bigint, flags: number): Promise<void> {
  if (memory < 1n || memory > IpcLimits.MEMORY_KIB_MAX) throw VG_ERR_ARG_INVALID(`memory ${memory} KiB out of range`);
  await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'setMemory', {
    actor: ctx.actor(),
    uuid: dom.uuid,
    memoryKiB: memory,
    ...affect(flags),
    max: (flags & MemoryFlags.MAXIMUM) !== 0,
  });
}

async function setVcpus(ctx: HandlerContext, dom: RemoteDomain, nvcpus: number, flags: number): Promise<void> {
  if (nvcpus < 1 || nvcpus > IpcLimits.VCPUS_MAX) throw VG_ERR_ARG_INVALID(`vcpu count ${nvcpus} out of range`);
  await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'setVcpus', {
    actor: ctx.actor(),
    uuid: dom.uuid,
    nvcpus,
    ...affect(flags),
    max: (flags & VcpuFlags.MAXIMUM) !== 0,
  });
}

export const domainWriteHandlers: Entry[] = [
  entry(P.DOMAIN_DEFINE_XML, async (ctx, { xml }) => {
    return { dom: toRemote(await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'define', { actor: ctx.actor(), def: await defOf(ctx, xml) })) };
  }),
  entry(P.DOMAIN_DEFINE_XML_FLAGS, async (ctx, { xml, flags }) => {
    checkFlags(flags, 1, 'virDomainDefineXMLFlags'); // VALIDATE: we always validate
    return { dom: toRemote(await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'define', { actor: ctx.actor(), def: await defOf(ctx, xml) })) };
  }),
  entry(P.DOMAIN_CREATE_XML, async (ctx, { xml, flags }) => {
    checkFlags(flags, 0, 'virDomainCreateXML');
    return { dom: toRemote(await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'createXml', { actor: ctx.actor(), def: await defOf(ctx, xml) })) };
  }),
  entry(P.DOMAIN_CREATE, async (ctx, { dom }) => void (await control(ctx, dom, ControlAction.START))),
  entry(P.DOMAIN_CREATE_WITH_FLAGS, async (ctx, { dom, flags }) => {
    checkFlags(flags, 0, 'virDomainCreateWithFlags');
    return { dom: toRemote(await control(ctx, dom, ControlAction.START)) };
  }),
  entry(P.DOMAIN_SUSPEND, async (ctx, { dom }) => void (await control(ctx, dom, ControlAction.SUSPEND))),
  entry(P.DOMAIN_RESUME, async (ctx, { dom }) => void (await control(ctx, dom, ControlAction.RESUME))),
  entry(P.DOMAIN_SHUTDOWN, async (ctx, { dom }) => void (await control(ctx, dom, ControlAction.SHUTDOWN))),
  entry(P.DOMAIN_SHUTDOWN_FLAGS, async (ctx, { dom, flags }) => {
    checkFlags(flags, 0x1f, 'virDomainShutdownFlags'); // mode hints; the simulated guest honours any
    await control(ctx, dom, ControlAction.SHUTDOWN);
  }),
  entry(P.DOMAIN_REBOOT, async (ctx, { dom, flags }) => {
    checkFlags(flags, 0x1f, 'virDomainReboot');
    await control(ctx, dom, ControlAction.REBOOT);
  }),
  entry(P.DOMAIN_DESTROY, async (ctx, { dom }) => void (await control(ctx, dom, ControlAction.DESTROY))),
  entry(P.DOMAIN_DESTROY_FLAGS, async (ctx, { dom, flags }) => {
    checkFlags(flags, 3, 'virDomainDestroyFlags'); // GRACEFUL, REMOVE_LOGS
    await control(ctx, dom, ControlAction.DESTROY);
  }),
  entry(P.DOMAIN_UNDEFINE, async (ctx, { dom }) => undefine(ctx, dom)),
  entry(P.DOMAIN_UNDEFINE_FLAGS, async (ctx, { dom, flags }) => {
    // MANAGED_SAVE, SNAPSHOTS_METADATA, NVRAM, KEEP_NVRAM, CHECKPOINTS_METADATA, TPM, KEEP_TPM: nothing to remove here.
    checkFlags(flags, 0x7f, 'virDomainUndefineFlags');
    await undefine(ctx, dom, flags);
  }),
  entry(P.DOMAIN_SET_MEMORY, async (ctx, { dom, memory }) => setMemory(ctx, dom, memory, AffectFlags.LIVE)),
  entry(P.DOMAIN_SET_MEMORY_FLAGS, async (ctx, { dom, memory, flags }) => {
    checkFlags(flags, AffectFlags.LIVE | AffectFlags.CONFIG | MemoryFlags.MAXIMUM, 'virDomainSetMemoryFlags');
    await setMemory(ctx, dom, memory, flags);
  }),
  entry(P.DOMAIN_SET_VCPUS, async (ctx, { dom, nvcpus }) => setVcpus(ctx, dom, nvcpus, AffectFlags.LIVE)),
  entry(P.DOMAIN_SET_VCPUS_FLAGS, async (ctx, { dom, nvcpus, flags }) => {
    checkFlags(flags, AffectFlags.LIVE | AffectFlags.CONFIG | VcpuFlags.MAXIMUM, 'virDomainSetVcpusFlags');
    await setVcpus(ctx, dom, nvcpus, flags);
  }),
];
