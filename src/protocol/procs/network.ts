// SPDX-License-Identifier: Apache-2.0
// REMOTE procedures of networks (virNetworkDriver): lookup, list, define, create, lifecycle, XML, autostart, events, as data (libvirt 9.0 remote_protocol.x), pure.
export {};
