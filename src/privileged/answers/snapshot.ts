// SPDX-License-Identifier: Apache-2.0
// SNAPSHOT_READ / SNAPSHOT_WRITE (helper side of the IPC boundary): typed moments in, the moments sub-driver's typed
// results out; the writer's tenant is the actor's, and the sub-driver applies the tenant rule again.
import { VG_ERR_NOT_SUPPORTED } from '../../common/errors';
import type { Op } from '../../ipc/program';
import { type Driver, driverError } from '../drivers/driver';
import type { SnapshotDriver } from '../drivers/test-snapshots';
import type { AnswerFn } from './types';

function moments(driver: Driver): SnapshotDriver {
  if (!driver.moments) throw driverError(VG_ERR_NOT_SUPPORTED, 'virDomainSnapshotCreateXML');
  return driver.moments;
}

export const answerSnapshotRead: AnswerFn<typeof Op.SNAPSHOT_READ_REQ> = (ctx, body) => {
  const m = moments(ctx.driver);
  switch (body.action) {
    case 'list':
      return { names: m.list(body.uuid, body.kind, body.from, body.flags) };
    case 'get':
      return m.get(body.uuid, body.kind, body.name);
    case 'current':
      return { name: m.current(body.uuid, body.kind) };
  }
};

export const answerSnapshotWrite: AnswerFn<typeof Op.SNAPSHOT_WRITE_REQ> = (ctx, body) => {
  const m = moments(ctx.driver);
  const tenant = body.actor.tenant;
  switch (body.action) {
    case 'create':
      return { name: m.create(body.uuid, body.kind, body.moment, body.flags, tenant) };
    case 'delete':
      return (m.delete(body.uuid, body.kind, body.name, body.flags, tenant), {});
    case 'revert':
      return (m.revert(body.uuid, body.name, body.flags, tenant), {});
  }
};
