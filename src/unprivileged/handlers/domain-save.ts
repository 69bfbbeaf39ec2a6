// SPDX-License-Identifier: Apache-2.0
// Save and restore to a client-named file: virDomainSave[Flags], virDomainRestore[Flags], virDomainSaveImageGetXMLDesc,
// virDomainSaveImageDefineXML, as libvirt's test driver answers them. The root helper opens the file: the path is
// checked here first (a malformed one would otherwise fail the IPC decoder and cost the helper connection), again by
// the decoder, and the helper applies the tenant's directory rule. Image XML is parsed and formatted here only.
import { VG_ERR_ARG_INVALID, VG_ERR_ARG_UNSUPPORTED, VG_ERR_OP_UNSUPPORTED, VG_ERR_XML_INVALID } from '../../common/errors';
import { IpcLimits, Op } from '../../ipc/program';
import { savePathProblem } from '../../ipc/objects/save-image';
import { PD } from '../../protocol/procs/domain-extra';
import type { RemoteDomain } from '../../protocol/types';
import { type CallObject, type Entry, type HandlerContext, checkFlags, entry } from './common';
import { formatDomainXml, parseDomainXml } from '../xml/domain';

const SAVE_RUNNING = 2; // VIR_DOMAIN_SAVE_RUNNING
const SAVE_PAUSED = 4; // VIR_DOMAIN_SAVE_PAUSED
const SAVE_IMAGE_XML_SECURE = 1; // VIR_DOMAIN_SAVE_IMAGE_XML_SECURE
const DUMP_CRASH = 1; // VIR_DUMP_CRASH: the only flag the test driver takes
const DUMP_FORMATS = 5; // virDomainCoreDumpFormat: RAW, KDUMP_ZLIB, KDUMP_LZO, KDUMP_SNAPPY, WIN_DMP

// testDomainCoreDumpWithFormat: raw only. libvirt's test driver writes the file before refusing another format; we
// refuse first, so a refused dump leaves no file behind.
async function coreDump(ctx: HandlerContext, dom: RemoteDomain, to: string, format: number, flags: number): Promise<void> {
  checkFlags(flags, DUMP_CRASH, 'testDomainCoreDumpWithFormat');
  if (format >= DUMP_FORMATS) throw VG_ERR_ARG_INVALID(`dumpformat '${format}' is not supported`);
  if (format !== 0) throw VG_ERR_OP_UNSUPPORTED('kdump-compressed format is not supported here');
  await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'coreDump', { actor: ctx.actor(), uuid: dom.uuid, path: checkPath(to), crash: (flags & DUMP_CRASH) !== 0 });
}

function checkPath(path: string): string {
  const why = savePathProblem(path);
  if (why) throw VG_ERR_ARG_INVALID(`save image path '${path.replace(/[^\x20-\x7e]/g, '?').slice(0, 256)}' ${why}`);
  return path;
}

// testDomainSaveFlags / testDomainRestoreFlags: no flag at all, and no replacement XML.
function plain(flags: number, dxml: string | null, fn: string): void {
  checkFlags(flags, 0, fn);
  if (dxml !== null) throw VG_ERR_ARG_UNSUPPORTED('xml modification unsupported');
}

async function save(ctx: HandlerContext, dom: RemoteDomain, to: string): Promise<void> {
  await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'saveTo', { actor: ctx.actor(), uuid: dom.uuid, path: checkPath(to) });
}

async function restore(ctx: HandlerContext, from: string): Promise<void> {
  await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'restoreFrom', { actor: ctx.actor(), path: checkPath(from) });
}

// The domain an image holds is only known to the helper: the rule must cover every VM of the session's tenant (object
// `vm:*`), as for define; the helper refuses another tenant's image.
const anyOfTenant = {
  objects: (ctx: HandlerContext): Promise<CallObject[]> => Promise.resolve([{ kind: 'domain', name: '*', tenant: ctx.session.tenant, fresh: true }]),
};

export const domainSaveHandlers: Entry[] = [
  entry(PD.DOMAIN_CORE_DUMP, async (ctx, { dom, to, flags }) => coreDump(ctx, dom, to, 0, flags)),
  entry(PD.DOMAIN_CORE_DUMP_WITH_FORMAT, async (ctx, { dom, to, dumpformat, flags }) => coreDump(ctx, dom, to, dumpformat, flags)),
  entry(PD.DOMAIN_SAVE, async (ctx, { dom, to }) => save(ctx, dom, to)),
  entry(PD.DOMAIN_SAVE_FLAGS, async (ctx, { dom, to, dxml, flags }) => {
    plain(flags, dxml, 'testDomainSaveFlags');
    await save(ctx, dom, to);
  }),
  entry(PD.DOMAIN_RESTORE, async (ctx, { from }) => restore(ctx, from), anyOfTenant),
  entry(
    PD.DOMAIN_RESTORE_FLAGS,
    async (ctx, { from, dxml, flags }) => {
      plain(flags, dxml, 'testDomainRestoreFlags');
      await restore(ctx, from);
    },
    anyOfTenant,
  ),
  entry(
    PD.DOMAIN_SAVE_IMAGE_GET_XML_DESC,
    async (ctx, { file, flags }) => {
      checkFlags(flags, SAVE_IMAGE_XML_SECURE, 'testDomainSaveImageGetXMLDesc');
      const { def } = await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'saveImageRead', { actor: ctx.actor(), path: checkPath(file) });
      return { xml: formatDomainXml(def, null, { secure: true }) }; // the test driver always formats with SECURE
    },
    anyOfTenant,
  ),
  entry(
    PD.DOMAIN_SAVE_IMAGE_DEFINE_XML,
    async (ctx, { file, dxml, flags }) => {
      checkFlags(flags, SAVE_RUNNING | SAVE_PAUSED, 'testDomainSaveImageDefineXML'); // taken and ignored, as there
      const path = checkPath(file);
      if (Buffer.byteLength(dxml) > IpcLimits.XML_MAX) throw VG_ERR_ARG_INVALID(`domain XML larger than ${IpcLimits.XML_MAX} bytes`);
      if (dxml.includes('\0')) throw VG_ERR_XML_INVALID('domain XML contains NUL');
      await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'saveImageDefine', { actor: ctx.actor(), path, def: parseDomainXml(dxml) });
    },
    anyOfTenant,
  ),
];
