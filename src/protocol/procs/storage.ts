// SPDX-License-Identifier: Apache-2.0
// REMOTE procedures of storage pools and volumes (virStorageDriver), as data (libvirt 9.0 remote_protocol.x), pure.
export {};
