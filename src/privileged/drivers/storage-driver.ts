// SPDX-License-Identifier: Apache-2.0
// The storage pool and volume driver contract behind the helper's POOL_* / VOLUME_* ops (test now, qemu later).
// Inputs are typed configs the IPC decoder already validated; `tenant` is the acting session's tenant ('' = host
// admin): a tenant acts only on its own pools and volumes, another tenant's answer "not found" as absent ones do.
import type { PoolConfig, PoolRecord, VolumeChunk, VolumeConfig, VolumeRecord } from '../../ipc/objects/storage';

// libvirt's virStoragePoolEventLifecycleType, and the refresh event (its own event id) as -1.
export const PoolEvent = { DEFINED: 0, UNDEFINED: 1, STARTED: 2, STOPPED: 3, CREATED: 4, DELETED: 5, REFRESH: -1 } as const;

export interface StoragePoolDriver {
  listPools(): PoolRecord[];
  poolByName(name: string, tenant?: string): PoolRecord; // names are per tenant where the driver says so (qemu)
  // The tenant's pool named `default` ('' = the host's), provisioned when absent (qemu).
  defaultPool?(tenant: string): PoolRecord;
  poolByUuid(uuid: Buffer): PoolRecord;
  definePool(config: PoolConfig, tenant: string): PoolRecord;
  createPool(config: PoolConfig, tenant: string): PoolRecord; // define + start, transient
  buildPool(uuid: Buffer, tenant: string): PoolRecord;
  startPool(uuid: Buffer, tenant: string): PoolRecord;
  destroyPool(uuid: Buffer, tenant: string): PoolRecord;
  deletePool(uuid: Buffer, tenant: string): PoolRecord;
  undefinePool(uuid: Buffer, tenant: string): void;
  refreshPool(uuid: Buffer, tenant: string): PoolRecord;
  setPoolAutostart(uuid: Buffer, autostart: boolean, tenant: string): PoolRecord;
  // Sources of `type` on this host ('' host: none given); libvirt's <sources> XML.
  findPoolSources(type: string, host: string): string;

  listVolumes(pool: Buffer): VolumeRecord[];
  volumeByName(pool: Buffer, name: string): VolumeRecord;
  volumeByKey(key: string): VolumeRecord;
  volumeByPath(path: string): VolumeRecord;
  createVolume(pool: Buffer, config: VolumeConfig, tenant: string, opts?: { preallocMetadata?: boolean }): VolumeRecord;
  cloneVolume(pool: Buffer, config: VolumeConfig, fromPool: Buffer, from: string, tenant: string): VolumeRecord;
  deleteVolume(pool: Buffer, name: string, tenant: string): void;
  resizeVolume(pool: Buffer, name: string, capacity: bigint, flags: number, tenant: string): VolumeRecord;
  wipeVolume(pool: Buffer, name: string, tenant: string): VolumeRecord;
  // Volume bytes (absent: upload and download are not supported). Reads are the front end's to allow; an upload is
  // the tenant's own volume only, and its chunks and end must come with the opening request's id and tenant.
  readVolume?(pool: Buffer, name: string, offset: bigint, length: bigint, sparse: boolean): VolumeChunk;
  openUpload?(
    pool: Buffer,
    name: string,
    offset: bigint,
    length: bigint,
    tenant: string,
    requestId: string,
  ): { handle: number; length: bigint; vol: VolumeRecord };
  uploadChunk?(handle: number, at: bigint, data: Buffer, hole: bigint, tenant: string, requestId: string): void;
  endUpload?(handle: number, commit: boolean, tenant: string, requestId: string): bigint;

  // A domain's disk may use `path` only if it is a volume of a pool `tenant` may use: its own, or a shared one.
  diskSourceAllowed(path: string, tenant: string): boolean;
}
