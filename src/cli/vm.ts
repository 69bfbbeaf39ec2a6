// SPDX-License-Identifier: Apache-2.0
// `virtgate vm set-tenant VM TENANT [-c URI]`: a host admin moves a VM to another tenant (virDomainSetMetadata on
// virtgate's tenant element). The daemon decides who may: it needs connect:write on host, which only host-admin holds.
import { DEFAULT_URI, VirtgateClient } from '../client';
import type { AdminIo } from './admin';
import { parseAdminArgs } from './admin-args';
import { CommandError, resolveDomain } from './commands';

const USAGE = `usage: virtgate vm set-tenant VM TENANT [-c URI]
  VM is a name, id or UUID; TENANT '-' leaves the VM in no tenant. URI defaults to $VIRTGATE_URI or ${DEFAULT_URI}.
  Only a host admin may reassign a VM; its tenant is kept in the VM's XML <metadata> and survives restarts.`;

export async function vmMain(argv: string[], io: AdminIo & { connect?: (uri: string) => Promise<VirtgateClient> }): Promise<number> {
  const parsed = parseAdminArgs(argv, { connect: { type: 'string', short: 'c' } } as const, USAGE, io);
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  const [verb, vm, tenantArg] = positionals;
  if (verb !== 'set-tenant' || positionals.length !== 3) {
    io.stderr(`${USAGE}\n`);
    return 2;
  }
  const tenant = tenantArg === '-' ? '' : tenantArg;
  const uri = values.connect ?? (io.env.VIRTGATE_URI || DEFAULT_URI);
  let client: VirtgateClient;
  try {
    client = await (io.connect ?? ((u: string) => VirtgateClient.connect(u)))(uri);
  } catch (e) {
    io.stderr(`error: failed to connect to the hypervisor\nerror: ${(e as Error).message}\n`);
    return 1;
  }
  try {
    const dom = await resolveDomain(client, vm);
    await client.setTenant(dom, tenant);
    io.stdout(`Domain '${dom.name}' ${tenant === '' ? 'now belongs to no tenant' : `moved to tenant '${tenant}'`}\n`);
    return 0;
  } catch (e) {
    const lines = e instanceof CommandError ? e.lines : [`failed to set the tenant of domain '${vm}'`, (e as Error).message];
    io.stderr(lines.map((l) => `error: ${l}\n`).join(''));
    return 1;
  } finally {
    await client.close().catch(() => undefined);
  }
}
