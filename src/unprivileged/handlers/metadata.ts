// SPDX-License-Identifier: Apache-2.0
// DOMAIN_SET_METADATA: descriptions, titles and elements of any namespace, as libvirt keeps them; and virtgate's own
// element, the VM's tenant (`virtgate vm set-tenant`, or
// `virsh metadata DOM --uri https://virtgate.dev/xmlns/tenant/1 --key virtgate --set '<tenant>NAME</tenant>'`).
// Who may ask is decided before this runs: domain:write (+ domain:save) on the VM, and for the tenant element also
// connect:write on host, which only host admins hold (the procedure table's argument rule).
import { VG_ERR_ARG_INVALID } from '../../common/errors';
import { type Actor, Op, checkTenantName } from '../../ipc/program';
import { DomainExtraIpcLimits } from '../../ipc/objects/domain-extra';
import { AffectFlags, DomainMetadataType, TenantMetadata } from '../../protocol/constants';
import { P, type ProcDef } from '../../protocol/procs/remote';
import type { HelperClient } from '../helper-client';
import { checkFlags } from './common';
import { metadataElementOf } from '../xml/domain';

export interface MetadataContext {
  helper: Pick<HelperClient, 'call' | 'act'>; // audited writes get a wrapper that records the intent first
  actor(): Actor;
}

type Entry = [ProcDef, (ctx: MetadataContext, args: never) => Promise<unknown>];
type ArgsOf<D> = D extends ProcDef<infer A, unknown> ? A : never;

const NAME = '[A-Za-z_][A-Za-z0-9_.-]*';
// <tenant>NAME</tenant>, optionally prefixed and carrying our xmlns; <tenant/> (or no metadata at all) clears it.
const ELEMENT_RE = new RegExp(
  `^\\s*<(?:${NAME}:)?tenant(?:\\s+xmlns(?::${NAME})?\\s*=\\s*(["'])([^"'<>]*)\\1)?\\s*(?:/>|>\\s*([^<]*?)\\s*</(?:${NAME}:)?tenant\\s*>)\\s*$`,
);

// The tenant named by a metadata element; throws VG_ERR_ARG_INVALID for anything else.
export function tenantFromMetadata(metadata: string | null): string {
  if (metadata === null) return '';
  const m = ELEMENT_RE.exec(metadata);
  if (!m) throw VG_ERR_ARG_INVALID(`metadata for ${TenantMetadata.URI} is one element, <tenant>NAME</tenant>`);
  if (m[2] !== undefined && m[2] !== TenantMetadata.URI) throw VG_ERR_ARG_INVALID(`the tenant element's namespace must be ${TenantMetadata.URI}`);
  const tenant = m[3] ?? '';
  try {
    return checkTenantName(tenant);
  } catch {
    throw VG_ERR_ARG_INVALID('tenant names are 0-64 characters of [A-Za-z0-9_.@+-], not starting with . @ + or -');
  }
}

const tooLong = (max: number): never => {
  throw VG_ERR_ARG_INVALID(`metadata argument longer than ${max} bytes, or with a NUL`);
};

export const metadataHandlers: Entry[] = [
  [
    P.DOMAIN_SET_METADATA,
    async (ctx: MetadataContext, { dom, type, metadata, key, uri, flags }: ArgsOf<typeof P.DOMAIN_SET_METADATA>) => {
      checkFlags(flags, AffectFlags.LIVE | AffectFlags.CONFIG, 'virDomainSetMetadata');
      if (type !== DomainMetadataType.ELEMENT || uri !== TenantMetadata.URI) {
        // virDomainSetMetadata's argument checks, then the driver's.
        if (type === DomainMetadataType.TITLE && metadata?.includes('\n')) throw VG_ERR_ARG_INVALID("metadata title can't contain newlines");
        if (type === DomainMetadataType.TITLE || type === DomainMetadataType.DESCRIPTION) {
          if (uri !== null) throw VG_ERR_ARG_INVALID('uri in virDomainSetMetadata must be NULL');
          if (key !== null) throw VG_ERR_ARG_INVALID('key in virDomainSetMetadata must be NULL');
        } else if (type === DomainMetadataType.ELEMENT) {
          if (uri === null) throw VG_ERR_ARG_INVALID('uri in virDomainSetMetadata must not be NULL');
          if (metadata !== null && key === null) throw VG_ERR_ARG_INVALID('key in virDomainSetMetadata must not be NULL');
        } else throw VG_ERR_ARG_INVALID(`unknown metadata type '${type}'`);
        // Bounded as the helper's decoder bounds them (a longer field there would end the helper connection).
        const bound = (v: string | null, max: number) => (v !== null && (Buffer.byteLength(v) > max || v.includes('\0')) ? tooLong(max) : v);
        await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'setMetadata', {
          actor: ctx.actor(),
          uuid: dom.uuid,
          type,
          // An element is parsed here, never in the helper: it gets the tree, prefixed with `key`, declaring `uri`.
          value: type === DomainMetadataType.ELEMENT ? null : bound(metadata, DomainExtraIpcLimits.METADATA_MAX),
          element:
            type === DomainMetadataType.ELEMENT && metadata !== null ? metadataElementOf(bound(metadata, DomainExtraIpcLimits.METADATA_MAX)!, key, uri!) : null,
          uri: bound(uri, DomainExtraIpcLimits.TEXT_MAX),
          live: (flags & AffectFlags.LIVE) !== 0,
          config: (flags & AffectFlags.CONFIG) !== 0,
        });
        return;
      }
      if (metadata !== null && (key === null || !new RegExp(`^${NAME}$`).test(key)))
        throw VG_ERR_ARG_INVALID('key in virDomainSetMetadata must be an XML namespace prefix');
      const tenant = tenantFromMetadata(metadata);
      await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'setTenant', { actor: ctx.actor(), uuid: dom.uuid, tenant });
    },
  ],
];
