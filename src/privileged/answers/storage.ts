// SPDX-License-Identifier: Apache-2.0
// POOL_READ / POOL_WRITE / VOLUME_READ / VOLUME_WRITE (helper side): one answer per group, dispatched on the action.
// Bodies arrive decoded and validated (../../ipc/objects/storage.ts); writes act as the actor's tenant.
import { VG_ERR_NOT_SUPPORTED } from '../../common/errors';
import type { Op } from '../../ipc/program';
import { driverError } from '../drivers/driver';
import type { StoragePoolDriver } from '../drivers/storage-driver';
import { type AnswerContext, type AnswerFn, ProtocolViolation } from './types';

function pools(ctx: AnswerContext): StoragePoolDriver {
  const d = ctx.driver.pools;
  if (!d) throw driverError(VG_ERR_NOT_SUPPORTED, 'storage pools');
  return d;
}

const unknown = (group: string, body: unknown): never => {
  throw new ProtocolViolation(`${group} action ${String((body as { action: unknown }).action)} has no answer`);
};

export const answerPoolRead: AnswerFn<typeof Op.POOL_READ_REQ> = (ctx, body) => {
  const d = pools(ctx);
  switch (body.action) {
    case 'list':
      return { pools: d.listPools() };
    case 'byName':
      return { pool: d.poolByName(body.name) };
    case 'byUuid':
      return { pool: d.poolByUuid(body.uuid) };
    case 'defaultFor':
      if (!d.defaultPool) throw driverError(VG_ERR_NOT_SUPPORTED, 'per-tenant default pools');
      return { pool: d.defaultPool(body.tenant) };
    default:
      return unknown('POOL_READ', body);
  }
};

export const answerPoolWrite: AnswerFn<typeof Op.POOL_WRITE_REQ> = (ctx, body) => {
  const d = pools(ctx);
  const t = body.actor.tenant;
  switch (body.action) {
    case 'define':
      return { pool: d.definePool(body.config, t) };
    case 'create':
      return { pool: d.createPool(body.config, t) };
    case 'build':
      return { pool: d.buildPool(body.uuid, t) };
    case 'start':
      return { pool: d.startPool(body.uuid, t) };
    case 'destroy':
      return { pool: d.destroyPool(body.uuid, t) };
    case 'delete':
      return { pool: d.deletePool(body.uuid, t) };
    case 'undefine':
      d.undefinePool(body.uuid, t);
      return {};
    case 'refresh':
      return { pool: d.refreshPool(body.uuid, t) };
    case 'setAutostart':
      return { pool: d.setPoolAutostart(body.uuid, body.autostart, t) };
    case 'findSources':
      return { xml: d.findPoolSources(body.type, body.host) };
    default:
      return unknown('POOL_WRITE', body);
  }
};

export const answerVolumeRead: AnswerFn<typeof Op.VOLUME_READ_REQ> = (ctx, body) => {
  const d = pools(ctx);
  switch (body.action) {
    case 'list':
      return { vols: d.listVolumes(body.uuid) };
    case 'byName':
      return { vol: d.volumeByName(body.pool, body.name) };
    case 'byKey':
      return { vol: d.volumeByKey(body.key) };
    case 'byPath':
      return { vol: d.volumeByPath(body.path) };
    case 'read':
      if (!d.readVolume) throw driverError(VG_ERR_NOT_SUPPORTED, 'storage pool does not support volume download');
      return d.readVolume(body.pool, body.name, body.offset, body.length, body.sparse);
    default:
      return unknown('VOLUME_READ', body);
  }
};

export const answerVolumeWrite: AnswerFn<typeof Op.VOLUME_WRITE_REQ> = (ctx, body) => {
  const d = pools(ctx);
  const t = body.actor.tenant;
  switch (body.action) {
    case 'create':
      return { vol: d.createVolume(body.pool, body.config, t, { preallocMetadata: body.prealloc }) };
    case 'createFrom':
      return { vol: d.cloneVolume(body.pool, body.config, body.fromPool, body.from, t) };
    case 'delete':
      d.deleteVolume(body.pool, body.name, t);
      return {};
    case 'resize':
      return { vol: d.resizeVolume(body.pool, body.name, body.capacity, body.flags, t) };
    case 'wipe':
      return { vol: d.wipeVolume(body.pool, body.name, t) };
    case 'upload':
      if (!d.openUpload) throw driverError(VG_ERR_NOT_SUPPORTED, 'storage pool does not support volume upload');
      return d.openUpload(body.pool, body.name, body.offset, body.length, t, body.actor.requestId);
    case 'uploadChunk':
      if (!d.uploadChunk) throw driverError(VG_ERR_NOT_SUPPORTED, 'storage pool does not support volume upload');
      d.uploadChunk(body.handle, body.at, body.data, body.hole, t, body.actor.requestId);
      return {};
    case 'uploadEnd':
      if (!d.endUpload) throw driverError(VG_ERR_NOT_SUPPORTED, 'storage pool does not support volume upload');
      return { bytes: d.endUpload(body.handle, body.commit, t, body.actor.requestId) };
    default:
      return unknown('VOLUME_WRITE', body);
  }
};
