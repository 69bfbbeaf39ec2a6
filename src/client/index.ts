// SPDX-License-Identifier: Apache-2.0
// Public surface of the client library; the CLI imports only this (it must not reach into protocol/ itself).
export { VirtgateClient } from './client';
export type { ConnectOptions, DomainInfo, LifecycleEvent, NodeInfo, RemoteDomain, ServerFeatures } from './client';
export { RemoteCallError, RpcClient, isNoSupport } from './rpc-client';
export type { CallOptions, RpcClientOptions, RpcEvent } from './rpc-client';
export { DEFAULT_SOCKET, DEFAULT_SOCKET_RO, DEFAULT_TCP_PORT, DEFAULT_TLS_PORT, DEFAULT_URI, parseUri } from './uri';
export type { ConnectTarget, Transport } from './uri';
export { awaitTlsConfirmation, openTransport, pkiFiles } from './transport';
export type { PkiFiles } from './transport';
export * from './format';
export { AffectFlags, DomainState, ListAllFlags, VcpuFlags, XmlFlags } from '../protocol/constants';
export { P as Procedures } from '../protocol/procs/remote';
export type { ProcDef } from '../protocol/procs/remote';
export { VG_ERR_USAGE, VgError, isVgError } from '../common/errors';
