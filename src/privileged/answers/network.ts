// SPDX-License-Identifier: Apache-2.0
// NETWORK_READ / NETWORK_WRITE (helper side of the IPC boundary): typed actions in, the network sub-driver's typed
// results out. The caller's tenant is the actor's; the sub-driver applies the tenant rule on its own.
import { VG_ERR_NOT_SUPPORTED } from '../../common/errors';
import type { NetworkSummary } from '../../ipc/objects/network';
import type { Op } from '../../ipc/program';
import { type Driver, driverError } from '../drivers/driver';
import type { NetworkDriver } from '../drivers/network-driver';
import { type AnswerFn, then } from './types';

// A driver without networks (a future qemu driver before it has them) answers as libvirt does for a missing API.
function networks(driver: Driver): NetworkDriver {
  if (!driver.networks) throw driverError(VG_ERR_NOT_SUPPORTED, 'virNetworkDriver');
  return driver.networks;
}

// Not `async`: the test driver answers at once, in the same turn, in request order.
export const answerNetworkRead: AnswerFn<typeof Op.NETWORK_READ_REQ> = (ctx, body) => {
  const n = networks(ctx.driver);
  switch (body.action) {
    case 'list':
      return then(n.list(), (list) => ({ networks: list }));
    case 'lookup':
      return then(n.lookup(body.key), (network) => ({ network }));
    case 'get':
      return n.get(body.uuid, body.inactive);
  }
};

export const answerNetworkWrite: AnswerFn<typeof Op.NETWORK_WRITE_REQ> = (ctx, body) => {
  const n = networks(ctx.driver);
  const caller = { tenant: body.actor.tenant };
  const done = (network: NetworkSummary) => ({ network });
  switch (body.action) {
    case 'define':
      return then(n.define(body.config, caller), done);
    case 'create':
      return then(n.create(body.config, caller), done);
    case 'undefine':
      return then(n.undefine(body.uuid, caller), done);
    case 'start':
      return then(n.start(body.uuid, caller), done);
    case 'destroy':
      return then(n.destroy(body.uuid, caller), done);
    case 'setAutostart':
      return then(n.setAutostart(body.uuid, body.autostart, caller), done);
    case 'update':
      return then(n.update(body, caller), done);
  }
};
