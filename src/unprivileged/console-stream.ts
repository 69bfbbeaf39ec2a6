// SPDX-License-Identifier: Apache-2.0
// A VM's console as a libvirt stream (virDomainOpenConsole), both directions at once over the descriptor the helper
// handed over: the front end pumps the bytes itself, the helper never sees them.
// - guest -> client: each read of the console socket goes out as CONTINUE packets (<= 262,120 bytes each); while the
//   client's output queue is over the stream mark the socket is not read (socket.pause()), so a guest printing
//   without pause holds at most about that mark of the front end's memory, and QEMU's chardev blocks (it drops output
//   only if the guest's UART overruns, as on real hardware).
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

  // Guest output: to the client in packets; pause the socket while the client's queue is over the mark.
  #output(b: Buffer): void {
    if (this.#done || this.#conn.closed) return;
    for (let at = 0; at < b.length; at += Limits.STREAM_PAYLOAD_MAX) {
      const chunk = b.subarray(at, Math.min(b.length, at + Limits.STREAM_PAYLOAD_MAX));
      this.#totals.toClient += chunk.length;
      this.#conn.send(encodeStreamData(this, chunk));
    }
    this.#pace();
  }

  #pace(): void {
    if (this.#done || this.#waitingRelief) return;
    if (this.#conn.queuedOut() + Limits.STREAM_PAYLOAD_MAX <= this.#conn.streamHighWater) return;
    this.#sock.pause();
    this.#waitingRelief = true;
    this.#conn.whenRelieved(() => {
      this.#waitingRelief = false;
      if (this.#done || this.#conn.closed) return;
      if (this.#conn.queuedOut() + Limits.STREAM_PAYLOAD_MAX > this.#conn.streamHighWater) return this.#pace();
      this.#sock.resume();
    });
  }

  // The guest's side ended (the VM stopped, the helper let go): EOF to the client, which then finishes.
  #guestEof(): void {
    if (this.#done || this.#eofSent || !this.#started) return;
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
    this.#conn.inboundHeld?.(this, 0);
    this.#sock.destroy();
    this.#onEnd(end, { ...this.#totals }, error);
  }

  dispose(): void {
    this.#close('closed');
  }
}
