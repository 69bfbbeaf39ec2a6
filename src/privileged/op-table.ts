// SPDX-License-Identifier: Apache-2.0
// The helper's op table [openssh mon_table]: which request may come when, and which answer function serves it.
import { Op, isWriteOp } from '../ipc/program';
import type { RequestOp } from '../ipc/program';
import type { AnswerFn } from './answers/types';
import { answerHello } from './answers/hello';
import { answerNodeFacts } from './answers/node-facts';
import { answerDomainRead } from './answers/domain-read';
import { answerDomainWrite } from './answers/domain-write';
import { answerEventsSubscribe } from './answers/events';
import { answerNetworkRead, answerNetworkWrite } from './answers/network';
import { answerPoolRead, answerPoolWrite, answerVolumeRead, answerVolumeWrite } from './answers/storage';
import { answerHostRead, answerIfaceRead, answerIfaceWrite, answerNodeDevRead, answerNodeDevWrite } from './answers/host-objects';
import { answerSnapshotRead, answerSnapshotWrite } from './answers/snapshot';

export const OpFlag = {
  PERMIT: 1, // permitted on a fresh connection
  AFTER_HELLO: 2, // permitted once HELLO has been answered
  ONCE: 4, // at most once per connection
  WRITE: 8, // changes hypervisor state: journalled (set from the IPC op table, never written here)
} as const;

export interface OpEntry<K extends RequestOp = RequestOp> {
  req: K;
  flags: number;
  answer: AnswerFn<K>;
}

const entry = <K extends RequestOp>(req: K, flags: number, answer: AnswerFn<K>): OpEntry =>
  ({ req, flags: flags | (isWriteOp(req) ? OpFlag.WRITE : 0), answer }) as unknown as OpEntry;

const { PERMIT, AFTER_HELLO, ONCE } = OpFlag;

export const OP_TABLE: readonly OpEntry[] = [
  entry(Op.HELLO_REQ, PERMIT | ONCE, answerHello),
  entry(Op.NODE_FACTS_REQ, AFTER_HELLO, answerNodeFacts),
  entry(Op.DOMAIN_READ_REQ, AFTER_HELLO, answerDomainRead),
  entry(Op.DOMAIN_WRITE_REQ, AFTER_HELLO, answerDomainWrite),
  entry(Op.EVENTS_SUBSCRIBE_REQ, AFTER_HELLO | ONCE, answerEventsSubscribe),
  entry(Op.NETWORK_READ_REQ, AFTER_HELLO, answerNetworkRead),
  entry(Op.NETWORK_WRITE_REQ, AFTER_HELLO, answerNetworkWrite),
  entry(Op.POOL_READ_REQ, AFTER_HELLO, answerPoolRead),
  entry(Op.POOL_WRITE_REQ, AFTER_HELLO, answerPoolWrite),
  entry(Op.VOLUME_READ_REQ, AFTER_HELLO, answerVolumeRead),
  entry(Op.VOLUME_WRITE_REQ, AFTER_HELLO, answerVolumeWrite),
  entry(Op.IFACE_READ_REQ, AFTER_HELLO, answerIfaceRead),
  entry(Op.IFACE_WRITE_REQ, AFTER_HELLO, answerIfaceWrite),
  entry(Op.NODEDEV_READ_REQ, AFTER_HELLO, answerNodeDevRead),
  entry(Op.NODEDEV_WRITE_REQ, AFTER_HELLO, answerNodeDevWrite),
  entry(Op.HOST_READ_REQ, AFTER_HELLO, answerHostRead),
  entry(Op.SNAPSHOT_READ_REQ, AFTER_HELLO, answerSnapshotRead),
  entry(Op.SNAPSHOT_WRITE_REQ, AFTER_HELLO, answerSnapshotWrite),
];

export const OP_BY_REQ: ReadonlyMap<number, OpEntry> = new Map(OP_TABLE.map((e) => [e.req, e]));
