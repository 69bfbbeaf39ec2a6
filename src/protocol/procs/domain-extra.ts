// SPDX-License-Identifier: Apache-2.0
// REMOTE procedures of domain stats, tuning, and the rest of the virHypervisorDriver table beyond lifecycle, as data (libvirt 9.0 remote_protocol.x), pure.
export {};
