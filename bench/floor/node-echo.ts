// SPDX-License-Identifier: Apache-2.0
// The Node floor: the cheapest libvirt-speaking server, for the bench's "0 floor" row. Answers each call frame with the reply
// virtgate gave to the same call while recording (bench/lib/floor.ts), its serial patched in; reads nothing but the header's
// program, procedure and serial (and, when one procedure has several recorded replies, compares the call body bytes).
// Socket handling as virtgated's: 'data' events, one write per reply. A call with no recorded reply for its procedure closes
// the connection. Keepalive PING gets PONG.
// usage: node node-echo.js TABLE --unix PATH [--tcp] [--tls --cert F --key F --ca F]; prints {"tcp":port,"tls":port} when ready.
import fs from 'node:fs';
import net from 'node:net';
import { parseArgs } from 'node:util';
import tls from 'node:tls';
import { decodeTable } from './table';

const KEEPALIVE = 0x6b656570;
const MAX_FRAME = 32 * 1024 * 1024; // libvirt's largest message

interface Entry {
  single: Buffer | null; // the reply when every recorded call of this procedure got the same one
  bodies: Buffer[];
  replies: Buffer[];
}

const key = (prog: number, proc: number): number => prog * 65536 + proc;

function load(file: string): Map<number, Entry> {
  const map = new Map<number, Entry>();
  for (const c of decodeTable(fs.readFileSync(file))) {
    const k = key(c.prog, c.proc);
    const e = map.get(k) ?? { single: null, bodies: [], replies: [] };
    e.bodies.push(c.callBody);
    e.replies.push(c.reply);
    map.set(k, e);
  }
  for (const e of map.values()) e.single = e.replies.every((r) => r.equals(e.replies[0])) ? e.replies[0] : null;
  return map;
}

// PONG: type MESSAGE, serial 0, no body.
const PONG = Buffer.from([0, 0, 0, 28, 0x6b, 0x65, 0x65, 0x70, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]);

function reply(table: Map<number, Entry>, buf: Buffer, off: number, len: number): Buffer | null {
  const prog = buf.readUInt32BE(off + 4);
  const proc = buf.readInt32BE(off + 12);
  const e = table.get(key(prog, proc));
  if (!e) return null;
  let r = e.single;
  if (!r) {
    const body = buf.subarray(off + 28, off + len);
    const i = e.bodies.findIndex((b) => b.equals(body));
    r = e.replies[i < 0 ? 0 : i];
  }
  const out = Buffer.allocUnsafe(r.length);
  r.copy(out);
  buf.copy(out, 20, off + 20, off + 24); // the call's serial
  return out;
}

function serve(table: Map<number, Entry>, sock: net.Socket): void {
  let pending: Buffer | null = null;
  sock.on('data', (chunk: Buffer) => {
    const buf = pending ? Buffer.concat([pending, chunk]) : chunk;
    let off = 0;
    while (buf.length - off >= 4) {
      const len = buf.readUInt32BE(off);
      if (len < 28 || len > MAX_FRAME) return void sock.destroy();
      if (buf.length - off < len) break;
      if (buf.readUInt32BE(off + 4) === KEEPALIVE) {
        if (buf.readInt32BE(off + 12) === 1) sock.write(PONG); // a PONG from the client needs no answer
      } else {
        const r = reply(table, buf, off, len);
        if (!r) return void sock.destroy();
        sock.write(r);
      }
      off += len;
    }
    pending = off < buf.length ? buf.subarray(off) : null;
  });
  sock.on('error', () => sock.destroy());
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      unix: { type: 'string' },
      tcp: { type: 'boolean' },
      tls: { type: 'boolean' },
      cert: { type: 'string' },
      key: { type: 'string' },
      ca: { type: 'string' },
    },
  });
  const table = load(positionals[0]);
  const listen = (srv: net.Server, where: string | number): Promise<number> =>
    new Promise((resolve, reject) => {
      srv.once('error', reject);
      const done = (): void => resolve(typeof where === 'string' ? 0 : (srv.address() as net.AddressInfo).port);
      if (typeof where === 'string') srv.listen(where, done);
      else srv.listen(where, '127.0.0.1', done);
    });
  const ready: Record<string, number> = {};
  // noDelay on unix and TCP, the TLS server's default on TLS: as virtgated's listeners.
  if (values.unix)
    await listen(
      net.createServer({ noDelay: true }, (s) => serve(table, s)),
      values.unix,
    );
  if (values.tcp)
    ready.tcp = await listen(
      net.createServer({ noDelay: true }, (s) => serve(table, s)),
      0,
    );
  if (values.tls) {
    // As virtgated's listener: mutual TLS requested, TLS 1.2-1.3, libvirt's one-byte confirmation written synchronously
    // in the handler (so TLS 1.3 session tickets leave in the same flush).
    const srv = tls.createServer({
      cert: fs.readFileSync(values.cert!),
      key: fs.readFileSync(values.key!),
      ca: fs.readFileSync(values.ca!),
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.3',
    });
    srv.on('secureConnection', (s: tls.TLSSocket) => {
      s.write(Buffer.from([1]));
      serve(table, s);
    });
    srv.on('tlsClientError', (_e, s: tls.TLSSocket) => s.destroy());
    ready.tls = await listen(srv, 0);
  }
  process.on('SIGTERM', () => process.exit(0));
  process.stdout.write(`${JSON.stringify(ready)}\n`);
}

main().catch((e: Error) => {
  process.stderr.write(`node-echo: ${e.stack ?? e.message}\n`);
  process.exit(1);
});
