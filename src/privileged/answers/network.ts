// SPDX-License-Identifier: Apache-2.0
// NETWORK_READ / NETWORK_WRITE answers (helper side): typed actions in, the network sub-driver's typed results out.
import { VG_ERR_NOT_SUPPORTED } from '../../common/errors';
import type { ActionAnswer, ActionRequest } from '../../ipc/actions';
import type { NETWORK_READ, NETWORK_WRITE } from '../../ipc/objects/network';
import { type Driver, driverError } from '../drivers/driver';
import type { NetworkDriver } from '../drivers/network-driver';

type ReadActions = (typeof NETWORK_READ)['actions'];
type WriteActions = (typeof NETWORK_WRITE)['actions'];
export type NetworkReadRequest = ActionRequest<ReadActions, false>;
export type NetworkReadAnswer = ActionAnswer<ReadActions>;
export type NetworkWriteRequest = ActionRequest<WriteActions, true>;
export type NetworkWriteAnswer = ActionAnswer<WriteActions>;

// A driver without networks (a future qemu driver before it has them) answers as libvirt does for a missing API.
function networks(driver: Driver): NetworkDriver {
  const n = (driver as Driver & { networks?: NetworkDriver }).networks;
  if (!n) throw driverError(VG_ERR_NOT_SUPPORTED, 'virNetworkDriver');
  return n;
}

export function answerNetworkRead(ctx: { readonly driver: Driver }, body: NetworkReadRequest): NetworkReadAnswer {
  const n = networks(ctx.driver);
  switch (body.action) {
    case 'list':
      return { action: 'list', networks: n.list() };
    case 'lookup':
      return { action: 'lookup', network: n.lookup(body.key) };
    case 'get':
      return { action: 'get', ...n.get(body.uuid, body.inactive) };
  }
}

// The caller's tenant is the actor's (the session's), as the front end's audit record names it; the driver applies the
// tenant rule (a tenant's session never changes another tenant's network) on its own.
export async function answerNetworkWrite(ctx: { readonly driver: Driver }, body: NetworkWriteRequest): Promise<NetworkWriteAnswer> {
  const n = networks(ctx.driver);
  const caller = { tenant: body.actor.tenant };
  switch (body.action) {
    case 'define':
      return { action: 'define', network: await n.define(body.config, caller) };
    case 'create':
      return { action: 'create', network: await n.create(body.config, caller) };
    case 'undefine':
      return { action: 'undefine', network: await n.undefine(body.uuid, caller) };
    case 'start':
      return { action: 'start', network: await n.start(body.uuid, caller) };
    case 'destroy':
      return { action: 'destroy', network: await n.destroy(body.uuid, caller) };
    case 'setAutostart':
      return { action: 'setAutostart', network: await n.setAutostart(body.uuid, body.autostart, caller) };
    case 'update':
      return { action: 'update', network: await n.update(body, caller) };
  }
}
