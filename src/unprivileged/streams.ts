// SPDX-License-Identifier: Apache-2.0
// libvirt streams on a client connection [remote_daemon_stream.c]: a call opens one (its reply first), then packets
// carrying the call's procedure and serial flow: CONTINUE with raw bytes (at most 262,120 per packet; empty = EOF), OK
// with none from the client to finish (we confirm with the same), ERROR to abort (confirmed with OK too). Outbound data is paced by the
// connection's output queue: the next packet is read from its source only while less than STREAM_HIGH_WATER bytes wait
// for the client, so a client that stops reading holds at most that much of the front end's memory per stream.
import { VG_ERR_STREAM, type VgError, isVgError } from '../common/errors';
import { Limits, MessageStatus, MessageType } from '../protocol/constants';
import { encodeStreamConfirm, encodeStreamData, encodeStreamError } from '../protocol/messages';
import { remoteError } from '../protocol/types';

export const STREAM_HIGH_WATER = 1024 * 1024;
export const STREAMS_PER_CONNECTION = 16;

// Where a download's bytes come from; null = end of data. `close` is called once, however the stream ends.
export interface ByteSource {
  read(max: number): Promise<Buffer | null>;
  close?(): void;
}

// A source over bytes already in memory (a screenshot the helper returned).
export function bufferSource(data: Buffer): ByteSource {
  let at = 0;
  return {
    read: async (max) => {
      if (at >= data.length) return null;
      const chunk = data.subarray(at, Math.min(data.length, at + max));
      at += chunk.length;
      return chunk;
    },
  };
}

// What a stream needs of its connection.
export interface StreamConnection {
  readonly closed: boolean;
  send(frame: Buffer): void;
  queuedOut(): number; // bytes written to the client's socket queue and not yet sent
  readonly streamHighWater: number; // pace below this (under the connection's output limit, so pacing never drops it)
  whenRelieved(cb: () => void): void; // once the output queue drains below its limit
}

export type StreamEnd = 'finished' | 'aborted' | 'failed' | 'closed';

export interface ClientStream {
  readonly proc: number;
  readonly serial: number;
  start(): void; // the opening call's reply has gone out
  receive(type: number, status: number, body: Buffer): void; // a STREAM / STREAM_HOLE packet from the client
  dispose(): void; // the connection closed
}

const toRemote = (e: VgError) => remoteError(e.virCode, e.virDomain, e.message);

// Server -> client (screenshot, volume download, later the console's output half).
export class OutboundStream implements ClientStream {
  readonly proc: number;
  readonly serial: number;
  readonly #conn: StreamConnection;
  readonly #source: ByteSource;
  readonly #onEnd: (end: StreamEnd, bytes: number) => void;
  #started = false;
  #eofSent = false;
  #done = false;
  #bytes = 0;

  constructor(conn: StreamConnection, call: { proc: number; serial: number }, source: ByteSource, onEnd: (end: StreamEnd, bytes: number) => void = () => {}) {
    this.#conn = conn;
    this.proc = call.proc;
    this.serial = call.serial;
    this.#source = source;
    this.#onEnd = onEnd;
  }

  get sentBytes(): number {
    return this.#bytes;
  }

  start(): void {
    if (this.#started || this.#done) return;
    this.#started = true;
    void this.#pump();
  }

  async #pump(): Promise<void> {
    try {
      while (!this.#done && !this.#conn.closed) {
        // A packet goes when the queue is empty or stays under the mark with it (one packet into an empty queue always
        // goes, as the output queue itself allows).
        const queued = this.#conn.queuedOut();
        if (queued > 0 && queued + Limits.STREAM_PAYLOAD_MAX > this.#conn.streamHighWater) {
          await new Promise<void>((r) => this.#conn.whenRelieved(r));
          continue;
        }
        const chunk = await this.#source.read(Limits.STREAM_PAYLOAD_MAX);
        if (this.#done || this.#conn.closed) return;
        if (!chunk || chunk.length === 0) {
          this.#eofSent = true;
          this.#conn.send(encodeStreamData(this));
          return; // the client finishes (OK) or aborts (ERROR); we confirm either
        }
        this.#bytes += chunk.length;
        this.#conn.send(encodeStreamData(this, chunk));
      }
    } catch (e) {
      this.#fail(isVgError(e) ? e : VG_ERR_STREAM('the stream source failed'));
    }
  }

  receive(type: number, status: number): void {
    if (this.#done) return;
    if (type === MessageType.STREAM && status === MessageStatus.OK) return this.#end('finished'); // a finish (after EOF, or early)
    if (type === MessageType.STREAM && status === MessageStatus.ERROR) return this.#end('aborted');
    // Data or a hole sent into a download: the client is confused or hostile; the stream ends with an error.
    this.#fail(VG_ERR_STREAM('this stream does not accept data from the client'));
  }

  // Finish or abort: confirmed with an empty OK packet, as libvirtd does.
  #end(end: 'finished' | 'aborted'): void {
    this.#conn.send(encodeStreamConfirm(this));
    this.#close(end);
  }

  #fail(e: VgError): void {
    if (this.#done) return;
    this.#conn.send(encodeStreamError(this, toRemote(e)));
    this.#close('failed');
  }

  #close(end: StreamEnd): void {
    if (this.#done) return;
    this.#done = true;
    this.#source.close?.();
    this.#onEnd(end, this.#bytes);
  }

  dispose(): void {
    this.#close('closed');
  }

  get eofSent(): boolean {
    return this.#eofSent;
  }
}
