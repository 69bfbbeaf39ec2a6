// SPDX-License-Identifier: Apache-2.0
// The network sub-driver contract behind NETWORK_READ / NETWORK_WRITE (helper side): typed configs in and out, never XML.
import type { NetworkConfig, NetworkKey, NetworkSummary, UpdateRequest } from '../../ipc/objects/network';
import type { Async } from './driver';

// Who is asking, as far as the helper's own tenant rule goes: '' = the host (may touch every network).
export type Caller = { tenant: string };

// Every method returns (or resolves) or throws DriverError (a catalogue code with libvirt's detail text).
export interface NetworkDriver {
  list(): Async<NetworkSummary[]>;
  lookup(key: NetworkKey): Async<NetworkSummary>;
  // The live config, or with `inactive` the persistent one (what virsh net-dumpxml --inactive shows).
  get(uuid: Buffer, inactive: boolean): Async<{ network: NetworkSummary; config: NetworkConfig }>;
  define(config: NetworkConfig, caller: Caller): Async<NetworkSummary>;
  create(config: NetworkConfig, caller: Caller): Async<NetworkSummary>;
  undefine(uuid: Buffer, caller: Caller): Async<NetworkSummary>;
  start(uuid: Buffer, caller: Caller): Async<NetworkSummary>;
  destroy(uuid: Buffer, caller: Caller): Async<NetworkSummary>;
  setAutostart(uuid: Buffer, autostart: boolean, caller: Caller): Async<NetworkSummary>;
  update(req: UpdateRequest, caller: Caller): Async<NetworkSummary>;
}
