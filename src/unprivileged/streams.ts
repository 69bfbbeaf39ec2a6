// SPDX-License-Identifier: Apache-2.0
// libvirt streams on a client connection [remote_daemon_stream.c]: a call opens one (its reply first), then packets
// carrying the call's procedure and serial flow: CONTINUE with raw bytes (at most 262,120 per packet; empty = EOF), OK
// with none from the client to finish (we confirm with the same), ERROR to abort (confirmed with OK too), and on sparse
// streams STREAM_HOLE (a run of zeroes by length). Outbound data is paced by the connection's output queue: the next
// packet is read from its source only while less than STREAM_HIGH_WATER bytes wait for the client, so a client that
// stops reading holds at most that much of the front end's memory per stream. Inbound data is paced as libvirtd paces
// it (its stream packets count as client requests): while a stream holds STREAM_IN_HIGH_WATER bytes not yet written
// to its sink, or the connection's streams hold STREAM_IN_CONNECTION_MAX, the connection is not read.
import { VG_ERR_STREAM, type VgError, isVgError } from '../common/errors';
import { XdrReader } from '../common/xdr';
import { Limits, MessageStatus, MessageType } from '../protocol/constants';
import { decodeStreamHole, encodeStreamConfirm, encodeStreamData, encodeStreamError, encodeStreamHole } from '../protocol/messages';
import { remoteError } from '../protocol/types';

export const STREAM_HIGH_WATER = 1024 * 1024;
export const STREAMS_PER_CONNECTION = 16;
export const STREAM_IN_HIGH_WATER = 1024 * 1024; // bytes an upload may hold in the front end before its connection is not read
export const STREAM_IN_CONNECTION_MAX = 4 * 1024 * 1024; // the same for all of a connection's uploads together
export const STREAM_STALL_MS = 30_000; // an upload that sends nothing for this long is abandoned (its volume untouched)
const HOLE_COST = 64; // what a queued hole is counted as (a flood of holes is paced like data)

// A run of zeroes a sparse download skips (sent as STREAM_HOLE).
export interface StreamHole {
  hole: bigint;
}

// Where a download's bytes come from; null = end of data, a hole only when the client asked for a sparse stream.
// `close` is called once, however the stream ends.
export interface ByteSource {
  read(max: number): Promise<Buffer | StreamHole | null>;
  close?(): void;
}

// Where an upload's bytes go, in order. `finish` commits (the client finished); `abort` discards (abort, failure,
// stall, a closed connection): called once, and never after `finish` succeeded.
export interface ByteSink {
  write(data: Buffer): Promise<void>;
  hole(length: bigint): Promise<void>;
  finish(): Promise<void>;
  abort(): Promise<void> | void;
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
  // An upload's bytes not yet written to its sink changed (the connection stops reading while they are too many).
  inboundHeld?(stream: ClientStream, bytes: number): void;
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
        if (chunk && !Buffer.isBuffer(chunk)) {
          if (chunk.hole > 0n) this.#conn.send(encodeStreamHole(this, chunk.hole));
          continue;
        }
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

export interface InboundOptions {
  maxBytes: bigint; // data and holes together; more is refused ("Too many bytes to write to stream")
  sparse: boolean; // the call asked for a sparse stream: holes are allowed
  stallMs?: number; // default STREAM_STALL_MS
  highWater?: number; // default STREAM_IN_HIGH_WATER
}

type Item = { data: Buffer } | { hole: bigint } | { finish: true };

// Client -> server (volume upload). Packets are queued as they arrive and written to the sink one at a time; the
// connection is not read while the queue is over its mark, so memory stays bounded whatever the client sends.
export class InboundStream implements ClientStream {
  readonly proc: number;
  readonly serial: number;
  readonly #conn: StreamConnection;
  readonly #sink: ByteSink;
  readonly #opts: Required<InboundOptions>;
  readonly #onEnd: (end: StreamEnd, bytes: number, error?: VgError) => void;
  readonly #queue: Item[] = [];
  #queued = 0; // bytes counted against the high-water mark
  #declared = 0n; // data and hole bytes received (the cap applies to these)
  #written = 0n; // ... and written to the sink
  #started = false;
  #eof = false; // an empty CONTINUE or the finish: no more data may come
  #finishing = false; // the finish (OK) came: nothing more may come
  #pumping = false;
  #done = false;
  #timer: NodeJS.Timeout | null = null;

  constructor(
    conn: StreamConnection,
    call: { proc: number; serial: number },
    sink: ByteSink,
    opts: InboundOptions,
    onEnd: (end: StreamEnd, bytes: number, error?: VgError) => void = () => {},
  ) {
    this.#conn = conn;
    this.proc = call.proc;
    this.serial = call.serial;
    this.#sink = sink;
    this.#opts = { stallMs: STREAM_STALL_MS, highWater: STREAM_IN_HIGH_WATER, ...opts };
    this.#onEnd = onEnd;
  }

  get receivedBytes(): bigint {
    return this.#written;
  }

  start(): void {
    if (this.#started || this.#done) return;
    this.#started = true;
    this.#armStall();
    void this.#pump();
  }

  receive(type: number, status: number, body: Buffer): void {
    if (this.#done) return;
    if (type === MessageType.STREAM && status === MessageStatus.ERROR) return void this.#abortByClient();
    if (type === MessageType.STREAM && status === MessageStatus.OK && !this.#finishing) {
      this.#eof = true;
      this.#finishing = true;
      return this.#push({ finish: true }, 0);
    }
    // After the finish the stream is as good as closed (its commit may be running): dropped, as libvirtd drops packets
    // for a closed stream.
    if (this.#finishing) return;
    if (this.#eof) {
      // Data after the client's EOF (an empty CONTINUE): a confused or hostile client.
      return this.#fail(VG_ERR_STREAM('data after the end of the stream'));
    }
    if (type === MessageType.STREAM && status === MessageStatus.CONTINUE) {
      if (body.length === 0) {
        this.#eof = true; // the client's EOF; its finish (OK) follows
        return;
      }
      if (!this.#admit(BigInt(body.length))) return;
      // The frame's buffer may hold a large read: keep a copy of just these bytes.
      return this.#push({ data: Buffer.from(body) }, body.length);
    }
    if (type === MessageType.STREAM_HOLE && status === MessageStatus.CONTINUE) {
      if (!this.#opts.sparse) return this.#fail(VG_ERR_STREAM('Unexpected stream hole'));
      let hole: { length: bigint; flags: number };
      try {
        hole = decodeStreamHole(new XdrReader(body));
      } catch {
        return this.#fail(VG_ERR_STREAM('Invalid stream hole'));
      }
      if (hole.flags !== 0) return this.#fail(VG_ERR_STREAM(`unsupported stream hole flags 0x${hole.flags.toString(16)}`));
      if (hole.length === 0n) return;
      if (!this.#admit(hole.length)) return;
      return this.#push({ hole: hole.length }, HOLE_COST);
    }
    this.#fail(VG_ERR_STREAM(`unexpected stream packet (type ${type}, status ${status})`));
  }

  // The cap: the upload's declared length (or the volume's end), counted as packets arrive, before anything queues.
  #admit(n: bigint): boolean {
    if (this.#declared + n > this.#opts.maxBytes) {
      this.#fail(VG_ERR_STREAM(`Too many bytes to write to stream: the upload takes at most ${this.#opts.maxBytes} bytes`));
      return false;
    }
    this.#declared += n;
    return true;
  }

  #push(item: Item, cost: number): void {
    this.#queue.push(item);
    this.#queued += cost;
    this.#conn.inboundHeld?.(this, this.#queued);
    this.#disarmStall();
    void this.#pump();
  }

  async #pump(): Promise<void> {
    if (this.#pumping || !this.#started) return;
    this.#pumping = true;
    try {
      while (!this.#done && this.#queue.length > 0) {
        const item = this.#queue[0];
        if ('finish' in item) {
          await this.#sink.finish();
          if (this.#done) return;
          this.#conn.send(encodeStreamConfirm(this));
          this.#close('finished');
          return;
        }
        if ('data' in item) await this.#sink.write(item.data);
        else await this.#sink.hole(item.hole);
        if (this.#done) return;
        this.#queue.shift();
        const n = 'data' in item ? item.data.length : HOLE_COST;
        this.#written += 'data' in item ? BigInt(item.data.length) : item.hole;
        this.#queued -= n;
        this.#conn.inboundHeld?.(this, this.#queued);
      }
      if (!this.#done && !this.#finishing) this.#armStall(); // after an EOF too: the finish is owed
    } catch (e) {
      this.#fail(isVgError(e) ? e : VG_ERR_STREAM('the upload could not be written'));
    } finally {
      this.#pumping = false;
    }
  }

  // Waiting for the client (nothing queued): it must send within stallMs. While we hold its data (and may have
  // stopped reading it), the clock does not run.
  #armStall(): void {
    this.#disarmStall();
    if (this.#done || this.#opts.stallMs <= 0) return;
    this.#timer = setTimeout(() => {
      const s = this.#opts.stallMs / 1000;
      this.#fail(VG_ERR_STREAM(`no data from the client for ${s} s: the upload is abandoned`));
    }, this.#opts.stallMs);
    this.#timer.unref?.();
  }

  #disarmStall(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #abortByClient(): void {
    this.#conn.send(encodeStreamConfirm(this));
    this.#close('aborted');
  }

  #fail(e: VgError): void {
    if (this.#done) return;
    this.#conn.send(encodeStreamError(this, toRemote(e)));
    this.#close('failed', e);
  }

  #close(end: StreamEnd, error?: VgError): void {
    if (this.#done) return;
    this.#done = true;
    this.#disarmStall();
    this.#queue.length = 0;
    this.#queued = 0;
    this.#conn.inboundHeld?.(this, 0);
    if (end !== 'finished') void Promise.resolve(this.#sink.abort()).catch(() => undefined);
    this.#onEnd(end, Number(this.#written), error);
  }

  dispose(): void {
    this.#close('closed');
  }
}
