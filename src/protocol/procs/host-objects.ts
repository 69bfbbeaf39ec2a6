// SPDX-License-Identifier: Apache-2.0
// REMOTE procedures of interfaces (virInterfaceDriver), node devices (virNodeDeviceDriver), and host facts beyond connect, as data (libvirt 9.0 remote_protocol.x), pure.
export {};
