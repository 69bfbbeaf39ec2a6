// SPDX-License-Identifier: Apache-2.0
// A VM's console as a libvirt stream (virDomainOpenConsole), both directions at once over the descriptor the helper
// handed over: the front end pumps the bytes itself, the helper never sees them.
// - guest -> client: console output goes out as CONTINUE packets (<= 262,120 bytes; gathered while the client is
//   behind); while the client's output queue is over the stream mark the socket is not read (socket.pause()), so a
//   guest printing without pause holds at most about that mark of the front end's memory, and QEMU waits to write
//   (the guest's UART, and its tty, with it).
// - client -> guest: CONTINUE bytes are written to the socket; while the socket holds more than the inbound mark
//   unsent, the client's connection is not read (inboundHeld, as an upload's).
// - the client's OK finishes (confirmed with OK), its ERROR aborts (confirmed with OK, as libvirtd does); the guest's
//   EOF (the VM stopped) is sent as an empty CONTINUE, and the client then finishes. force: another session took the
//   console, this stream ends with an error.
import type * as net from 'node:net';
import { VG_ERR_STREAM, type VgError } from '../common/errors';
import { Limits, MessageStatus, MessageType } from '../protocol/constants';
import { encodeStreamConfirm, encodeStreamData, encodeStreamError } from '../protocol/messages';
import { remoteError } from '../protocol/types';
import { type ClientStream, type StreamConnection, type StreamEnd } from './streams';

const COALESCE_MS = 20; // how long guest output may wait to fill a packet while the client is behind

export interface ConsoleTotals {
  toClient: number; // guest output sent to the client
  toGuest: number; // client input written to the guest
}

export class ConsoleStream implements ClientStream {
  readonly proc: number;
  readonly serial: number;
  readonly #conn: StreamConnection;
  readonly #sock: net.Socket;
  readonly #onEnd: (end: StreamEnd, totals: ConsoleTotals, error?: VgError) => void;
  readonly #totals: ConsoleTotals = { toClient: 0, toGuest: 0 };
  #started = false;
  #eofSent = false; // the guest's EOF went to the client: only its finish (or abort) may follow
  #clientEof = false; // the client sent an empty CONTINUE: no more input
  #waitingRelief = false;
  #gathered: Buffer[] = []; // guest output not yet sent (the client is behind)
  #gatheredLen = 0;
  #flushTimer: NodeJS.Timeout | null = null;
  #done = false;

  constructor(
    conn: StreamConnection,
    call: { proc: number; serial: number },
    sock: net.Socket,
    onEnd: (end: StreamEnd, totals: ConsoleTotals, error?: VgError) => void,
  ) {
    this.#conn = conn;
    this.proc = call.proc;
    this.serial = call.serial;
    this.#sock = sock;
    this.#onEnd = onEnd;
    sock.pause(); // nothing is read before the open call's reply is out
    sock.on('error', () => this.#guestGone());
    sock.on('close', () => this.#guestGone());
  }

  get gatheredBytes(): number {
    return this.#gatheredLen;
  }

  get totals(): Readonly<ConsoleTotals> {
    return this.#totals;
  }

  get done(): boolean {
    return this.#done;
  }

  start(): void {
    if (this.#started || this.#done) return;
    this.#started = true;
    this.#sock.on('data', (b: Buffer) => this.#output(b));
    this.#sock.on('end', () => this.#guestEof());
    this.#sock.on('drain', () => this.#conn.inboundHeld?.(this, this.#sock.writableLength));
    this.#sock.resume();
  }

  // Guest output. QEMU's UART writes a byte at a time, so reads are small; a client that is behind would get thousands
  // of tiny packets (libvirt's client takes about one per virStreamRecv). While the client's queue is not empty the
  // output is gathered into packets of up to 262,120 bytes, sent when its queue drains, when a packet is full, or after
  // COALESCE_MS; while the queue and what is gathered are over the stream mark, the socket is not read at all.
  #output(b: Buffer): void {
    if (this.#done || this.#conn.closed) return;
    this.#gathered.push(b);
    this.#gatheredLen += b.length;
    if (this.#conn.queuedOut() === 0 || this.#gatheredLen >= Limits.STREAM_PAYLOAD_MAX) this.#flush();
    else if (!this.#flushTimer) {
      this.#flushTimer = setTimeout(() => this.#flush(), COALESCE_MS);
      this.#flushTimer.unref?.();
    }
    this.#pace();
  }

  #flush(): void {
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    if (this.#gatheredLen === 0 || this.#done || this.#conn.closed) return;
    const all = this.#gathered.length === 1 ? this.#gathered[0] : Buffer.concat(this.#gathered, this.#gatheredLen);
    this.#gathered = [];
    this.#gatheredLen = 0;
    for (let at = 0; at < all.length; at += Limits.STREAM_PAYLOAD_MAX) {
      const chunk = all.subarray(at, Math.min(all.length, at + Limits.STREAM_PAYLOAD_MAX));
      this.#totals.toClient += chunk.length;
      this.#conn.send(encodeStreamData(this, chunk));
    }
  }

  #pace(): void {
    if (this.#done || this.#waitingRelief) return;
    if (this.#conn.queuedOut() + this.#gatheredLen + Limits.STREAM_PAYLOAD_MAX <= this.#conn.streamHighWater) return;
    this.#sock.pause();
    this.#waitingRelief = true;
    this.#conn.whenRelieved(() => {
      this.#waitingRelief = false;
      if (this.#done || this.#conn.closed) return;
      this.#flush();
      if (this.#conn.queuedOut() + Limits.STREAM_PAYLOAD_MAX > this.#conn.streamHighWater) return this.#pace();
      this.#sock.resume();
    });
  }

  // The guest's side ended (the VM stopped, the helper let go): EOF to the client, which then finishes.
  #guestEof(): void {
    if (this.#done || this.#eofSent || !this.#started) return;
    this.#flush(); // what the guest said before it went comes first
    this.#eofSent = true;
    this.#conn.send(encodeStreamData(this));
  }

  #guestGone(): void {
    if (this.#done) return;
    if (!this.#started) return this.#fail(VG_ERR_STREAM('the console closed'));
    this.#guestEof();
  }

  receive(type: number, status: number, body: Buffer): void {
    if (this.#done) return;
    if (type === MessageType.STREAM && status === MessageStatus.OK) return this.#end('finished');
    if (type === MessageType.STREAM && status === MessageStatus.ERROR) return this.#end('aborted');
    if (type !== MessageType.STREAM || status !== MessageStatus.CONTINUE)
      return this.#fail(VG_ERR_STREAM(`unexpected stream packet (type ${type}, status ${status})`));
    if (body.length > Limits.STREAM_PAYLOAD_MAX) return this.#fail(VG_ERR_STREAM(`stream packet of ${body.length} bytes exceeds ${Limits.STREAM_PAYLOAD_MAX}`));
    if (this.#clientEof) return this.#fail(VG_ERR_STREAM('data after the end of the stream'));
    if (body.length === 0) {
      this.#clientEof = true;
      this.#sock.end(); // the guest sees the client's EOF; its output still flows until the finish
      return;
    }
    if (this.#eofSent) return; // the guest is gone: its input has nowhere to go (libvirtd drops it too)
    this.#totals.toGuest += body.length;
    this.#sock.write(Buffer.from(body)); // the frame's buffer may be a large read: keep just these bytes
    // The connection stops being read while the guest is this far behind; 'drain' lets it go on.
    this.#conn.inboundHeld?.(this, this.#sock.writableLength);
  }

  // Another session took the console (force): this one ends with an error.
  forceEnd(e: VgError): void {
    this.#fail(e);
  }

  #end(end: 'finished' | 'aborted'): void {
    this.#conn.send(encodeStreamConfirm(this));
    this.#close(end);
  }

  #fail(e: VgError): void {
    if (this.#done) return;
    this.#conn.send(encodeStreamError(this, remoteError(e.virCode, e.virDomain, e.message)));
    this.#close('failed', e);
  }

  #close(end: StreamEnd, error?: VgError): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    this.#gathered = [];
    this.#gatheredLen = 0;
    this.#conn.inboundHeld?.(this, 0);
    this.#sock.destroy();
    this.#onEnd(end, { ...this.#totals }, error);
  }

  dispose(): void {
    this.#close('closed');
  }
}
