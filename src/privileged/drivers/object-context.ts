// SPDX-License-Identifier: Apache-2.0
// What the test driver hands each object sub-driver (networks, storage, host objects): durable records in the
// driver's state log, the event emitter, and whether this is the first start (seed test:///default's objects then).
import type { ObjectEvent } from '../../ipc/program';
import { OBJECT_KEY, OBJECT_TYPE, type StateStore } from './store';

export interface ObjectRecords {
  // Every record of one type as loaded at start (key -> JSON).
  load(type: string): Map<string, string>;
  // Appends the change to the state log now (durable with this turn's batch; the IPC server holds the answer until
  // then). Throws on ENOSPC/EIO before anything changed: call it BEFORE changing memory. null removes the record.
  put(type: string, key: string, json: string | null): void;
}

export interface ObjectDriverContext {
  readonly records: ObjectRecords;
  readonly firstStart: boolean;
  warn(msg: string): void; // the helper's log (e.g. a seed that could not be saved: served from memory)
  emit(event: ObjectEvent): void;
}

export function storeRecords(store: StateStore, loaded: Map<string, Map<string, string>>): ObjectRecords {
  return {
    load: (type) => new Map(loaded.get(type) ?? []),
    put(type, key, json) {
      if (!OBJECT_TYPE.test(type) || !OBJECT_KEY.test(key)) throw new Error(`bad object record ${type}/${key}`);
      store.commit([{ kind: 'object', type, key, data: json }]);
    },
  };
}
