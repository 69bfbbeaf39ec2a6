// SPDX-License-Identifier: Apache-2.0
// POOL_READ / POOL_WRITE / VOLUME_READ / VOLUME_WRITE (helper side): one answer per group, dispatched on the action.
// Bodies arrive decoded and validated (../../ipc/objects/storage.ts); writes act as the actor's tenant.
import { VG_ERR_NOT_SUPPORTED } from '../../common/errors';
import type { ActionAnswer, ActionRequest } from '../../ipc/actions';
import { POOL_READ, POOL_WRITE, VOLUME_READ, VOLUME_WRITE } from '../../ipc/objects/storage';
import type { Driver } from '../drivers/driver';
import { driverError } from '../drivers/driver';
import type { StoragePoolDriver } from '../drivers/storage-driver';

type PoolReadReq = ActionRequest<typeof POOL_READ.actions, false>;
type PoolWriteReq = ActionRequest<typeof POOL_WRITE.actions, true>;
type VolReadReq = ActionRequest<typeof VOLUME_READ.actions, false>;
type VolWriteReq = ActionRequest<typeof VOLUME_WRITE.actions, true>;

interface Ctx {
  readonly driver: Driver;
}

function pools(ctx: Ctx): StoragePoolDriver {
  const d = (ctx.driver as Driver & { pools?: StoragePoolDriver }).pools;
  if (!d) throw driverError(VG_ERR_NOT_SUPPORTED, 'storage pools');
  return d;
}

export function answerPoolRead(ctx: Ctx, body: PoolReadReq): ActionAnswer<typeof POOL_READ.actions> {
  const d = pools(ctx);
  switch (body.action) {
    case 'list':
      return { action: 'list', pools: d.listPools() };
    case 'byName':
      return { action: 'byName', pool: d.poolByName(body.name) };
    case 'byUuid':
      return { action: 'byUuid', pool: d.poolByUuid(body.uuid) };
  }
}

export function answerPoolWrite(ctx: Ctx, body: PoolWriteReq): ActionAnswer<typeof POOL_WRITE.actions> {
  const d = pools(ctx);
  const t = body.actor.tenant;
  switch (body.action) {
    case 'define':
      return { action: 'define', pool: d.definePool(body.config, t) };
    case 'create':
      return { action: 'create', pool: d.createPool(body.config, t) };
    case 'build':
      return { action: 'build', pool: d.buildPool(body.uuid, t) };
    case 'start':
      return { action: 'start', pool: d.startPool(body.uuid, t) };
    case 'destroy':
      return { action: 'destroy', pool: d.destroyPool(body.uuid, t) };
    case 'delete':
      return { action: 'delete', pool: d.deletePool(body.uuid, t) };
    case 'undefine':
      d.undefinePool(body.uuid, t);
      return { action: 'undefine' };
    case 'refresh':
      return { action: 'refresh', pool: d.refreshPool(body.uuid, t) };
    case 'setAutostart':
      return { action: 'setAutostart', pool: d.setPoolAutostart(body.uuid, body.autostart, t) };
  }
}

export function answerVolumeRead(ctx: Ctx, body: VolReadReq): ActionAnswer<typeof VOLUME_READ.actions> {
  const d = pools(ctx);
  switch (body.action) {
    case 'list':
      return { action: 'list', vols: d.listVolumes(body.uuid) };
    case 'byName':
      return { action: 'byName', vol: d.volumeByName(body.pool, body.name) };
    case 'byKey':
      return { action: 'byKey', vol: d.volumeByKey(body.key) };
    case 'byPath':
      return { action: 'byPath', vol: d.volumeByPath(body.path) };
  }
}

export function answerVolumeWrite(ctx: Ctx, body: VolWriteReq): ActionAnswer<typeof VOLUME_WRITE.actions> {
  const d = pools(ctx);
  const t = body.actor.tenant;
  switch (body.action) {
    case 'create':
      return { action: 'create', vol: d.createVolume(body.pool, body.config, t) };
    case 'createFrom':
      return { action: 'createFrom', vol: d.cloneVolume(body.pool, body.config, body.fromPool, body.from, t) };
    case 'delete':
      d.deleteVolume(body.pool, body.name, t);
      return { action: 'delete' };
    case 'resize':
      return { action: 'resize', vol: d.resizeVolume(body.pool, body.name, body.capacity, body.flags, t) };
    case 'wipe':
      return { action: 'wipe', vol: d.wipeVolume(body.pool, body.name, t) };
  }
}
