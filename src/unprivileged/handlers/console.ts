// SPDX-License-Identifier: Apache-2.0
// virDomainOpenConsole (201): the helper connects the guest's console and hands the descriptor over the descriptor
// channel; this front end pumps it as a two-way stream (console-stream.ts). One console per VM across every
// connection of this front end (it is the authority): a second open answers "Active console session exists for this
// domain" unless it forces, which ends the old stream with an error first. Open is an audited write (intent, outcome;
// journaled by the helper); the stream's end is recorded (stream-end) and the helper journals its closeConsole.
import * as net from 'node:net';
import { VG_ERR_CONSOLE_ACTIVE, VG_ERR_NOT_SUPPORTED, type VgError } from '../../common/errors';
import { FdKind } from '../../ipc/fd-channel';
import { Op, uuidToString } from '../../ipc/program';
import { CONSOLE_PROCS, VIR_DOMAIN_CONSOLE_FORCE, VIR_DOMAIN_CONSOLE_SAFE } from '../../protocol/procs/console';
import { ConsoleStream, type ConsoleTotals } from '../console-stream';
import type { StreamEnd } from '../streams';
import { type Entry, type HandlerContext, checkFlags, entry } from './common';

interface Held {
  stream: ConsoleStream | null; // null while the open is under way
  released: Promise<void>; // the helper has been told the console is closed
}

// Per front end (its domain mirror is one per dispatcher): uuid -> the session holding that VM's console.
const registries = new WeakMap<object, Map<string, Held>>();
const registryOf = (ctx: HandlerContext): Map<string, Held> => {
  let r = registries.get(ctx.mirror);
  if (!r) registries.set(ctx.mirror, (r = new Map()));
  return r;
};

async function openConsole(ctx: HandlerContext, uuid: Buffer, devName: string | null, flags: number): Promise<void> {
  checkFlags(flags, VIR_DOMAIN_CONSOLE_FORCE | VIR_DOMAIN_CONSOLE_SAFE, 'virDomainOpenConsole');
  const { takeFd, openStream, continuation } = ctx;
  if (!takeFd || !openStream || !continuation) throw VG_ERR_NOT_SUPPORTED('virDomainOpenConsole');
  const reg = registryOf(ctx);
  const key = uuidToString(uuid);
  let old = reg.get(key);
  // A stream that has ended but whose helper close is still under way is not a session: wait for it to be let go.
  while (old?.stream?.done) {
    await old.released;
    old = reg.get(key);
  }
  const force = (flags & VIR_DOMAIN_CONSOLE_FORCE) !== 0;
  if (old && (!force || !old.stream)) throw VG_ERR_CONSOLE_ACTIVE('Active console session exists for this domain');
  let release!: () => void;
  const held: Held = { stream: null, released: new Promise((r) => (release = r)) };
  reg.set(key, held);
  const actor = ctx.actor();
  // Told once, whatever ends the console: the helper gives its logger the console socket back.
  let closed = false;
  const closeAtHelper = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    try {
      await continuation.act(Op.DOMAIN_WRITE_REQ, 'closeConsole', { uuid, actor: { ...actor, requestId: `${actor.requestId}-close` } });
    } catch {
      // the helper is away: its connection's close already ended the console there
    } finally {
      if (reg.get(key) === held) reg.delete(key);
      release();
    }
  };
  try {
    if (old?.stream) {
      old.stream.forceEnd(VG_ERR_CONSOLE_ACTIVE('Console session was taken over by another client'));
      await old.released; // its descriptor is closed and the helper knows: QEMU takes our client next
    }
    const { token } = await ctx.helper.act(Op.DOMAIN_WRITE_REQ, 'openConsole', { uuid, devName, force, actor });
    let fd: number;
    try {
      fd = await takeFd(token, FdKind.CONSOLE);
    } catch (e) {
      await closeAtHelper();
      throw e;
    }
    const sock = new net.Socket({ fd, readable: true, writable: true });
    try {
      openStream((conn, call, ended) => {
        const stream = new ConsoleStream(conn, call, sock, (end: StreamEnd, totals: ConsoleTotals, error?: VgError) => {
          ended();
          const detail: Record<string, string | number | boolean> = { stream: 'console', end, toClient: totals.toClient, toGuest: totals.toGuest };
          if (error) detail.error = error.code;
          ctx.recordStreamEnd?.(detail);
          void closeAtHelper();
        });
        held.stream = stream;
        return stream;
      });
    } catch (e) {
      sock.destroy();
      await closeAtHelper();
      throw e;
    }
  } catch (e) {
    if (!closed && reg.get(key) === held) reg.delete(key);
    release();
    throw e;
  }
}

export const consoleHandlers: Entry[] = [
  entry(CONSOLE_PROCS.DOMAIN_OPEN_CONSOLE, async (ctx, { dom, devName, flags }) => openConsole(ctx, dom.uuid, devName, flags)),
];
