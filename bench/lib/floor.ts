// SPDX-License-Identifier: Apache-2.0
// The floor: the same clients against servers that only replay canned replies (bench/floor/node-echo.ts, bench/c/echo.c),
// so each virtgate row can say how far it is from what this machine does at all. The replies are recorded once per run
// from the bench's virtgate, through a unix proxy that keeps each (program, procedure, call body)'s reply frame.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { type Canned, encodeTable } from '../floor/table';
import { type BenchCtx, type Figures, type RowResult, fromC, ratio } from './ctx';
import { ROOT, buildCFloor, onCleanup, rssKiB, stopChild } from './proc';
import { GUESTS } from './target';
import { tsPipelined, tsSequential } from './ts-client';

const NODE_ECHO = path.join(ROOT, 'build', 'bench', 'floor', 'node-echo.js');
const CALL = 0;
const REPLY = 1;
// Iterations (× 3 guests) per client and transport before anything is measured (fewer when the rows themselves are tiny).
const WARM_UP = 500;
const warmUp = (ctx: BenchCtx): number => Math.min(WARM_UP, ctx.sizes.seqIterations);

export interface FloorServer {
  label: 'Node floor' | 'C floor';
  pid: number;
  unixUri: string;
  tcpUri: string | null;
  tlsUri: string | null;
}

export interface FloorServers {
  node: FloorServer;
  c: FloorServer | null; // null when bench/c/echo.c does not build (then a note says why)
}

// Splits a byte stream into whole frames (length word included) for the recording proxy.
function frames(onFrame: (f: Buffer) => void): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0);
  return (chunk) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= 4 && pending.length >= pending.readUInt32BE(0)) {
      const len = pending.readUInt32BE(0);
      if (len < 28) throw new Error(`recording proxy: frame of ${len} bytes`);
      onFrame(pending.subarray(0, len));
      pending = pending.subarray(len);
    }
  };
}

// A unix proxy in front of virtgate's socket that keeps the first reply to each distinct call (keepalive is not kept).
async function recordingProxy(upstream: string, sock: string): Promise<{ entries(): Canned[]; close(): Promise<void> }> {
  const seen = new Map<string, Canned>();
  const conns = new Set<net.Socket>();
  const srv = net.createServer((client) => {
    const up = net.connect(upstream);
    conns.add(client).add(up);
    const calls = new Map<number, Omit<Canned, 'reply'>>();
    const fromClient = frames((f) => {
      if (f.readInt32BE(16) === CALL)
        calls.set(f.readUInt32BE(20), { prog: f.readUInt32BE(4), proc: f.readInt32BE(12), callBody: Buffer.from(f.subarray(28)) });
    });
    const fromServer = frames((f) => {
      const call = f.readInt32BE(16) === REPLY ? calls.get(f.readUInt32BE(20)) : undefined;
      if (!call) return;
      calls.delete(f.readUInt32BE(20));
      const k = `${call.prog}/${call.proc}/${call.callBody.toString('hex')}`;
      if (!seen.has(k)) seen.set(k, { ...call, reply: Buffer.from(f) });
    });
    client.on('data', (c: Buffer) => {
      fromClient(c);
      up.write(c);
    });
    up.on('data', (c: Buffer) => {
      fromServer(c);
      client.write(c);
    });
    const end = (): void => {
      client.destroy();
      up.destroy();
    };
    for (const s of [client, up]) s.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve, reject) => srv.once('error', reject).listen(sock, resolve));
  return {
    entries: () => [...seen.values()],
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of conns) s.destroy();
        srv.close(() => resolve());
      }),
  };
}

const socketOf = (unixUri: string): string => {
  const m = /[?&]socket=([^&]+)/.exec(unixUri);
  if (!m) throw new Error(`no socket in ${unixUri}`);
  return decodeURIComponent(m[1]);
};

// Runs the C client (if built) and the TS client's sequence through the proxy; returns the table file.
async function record(ctx: BenchCtx, dir: string): Promise<string> {
  const sock = path.join(dir, 'record.sock');
  const proxy = await recordingProxy(socketOf(ctx.virtgate.unixUri), sock);
  const uri = `test+unix:///default?socket=${sock}`;
  // As many calls as the floor servers' warm-up below: virtgate gets the same (its TLS path directly).
  try {
    if (ctx.cclient) await ctx.runC(uri, warmUp(ctx), 1);
    await tsSequential(uri, warmUp(ctx));
  } finally {
    await proxy.close();
  }
  if (ctx.cclient && ctx.virtgate.tlsUri) await ctx.runC(ctx.virtgate.tlsUri, warmUp(ctx), 1);
  const entries = proxy.entries();
  const file = path.join(dir, 'replies.table');
  fs.writeFileSync(file, encodeTable(entries));
  ctx.log(`0 floor: recorded ${entries.length} distinct calls' replies from virtgate`);
  return file;
}

// Starts one floor process and waits for its {"tcp":port,"tls":port} line.
async function startFloor(label: FloorServer['label'], cmd: string, args: string[], sock: string, pkipath: string | null): Promise<FloorServer> {
  const proc: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  onCleanup(() => stopChild(proc, 2000));
  let out = '';
  proc.stdout!.setEncoding('utf8').on('data', (t: string) => (out += t));
  proc.stderr!.setEncoding('utf8').on('data', (t: string) => (out += t));
  const ports = await new Promise<{ tcp?: number; tls?: number }>((resolve, reject) => {
    const deadline = Date.now() + 20000;
    const poll = (): void => {
      const line = /^\{.*\}$/m.exec(out);
      if (line) return resolve(JSON.parse(line[0]) as { tcp?: number; tls?: number });
      if (proc.exitCode !== null || Date.now() > deadline) return reject(new Error(`${label} did not start: ${out.trim()}`));
      setTimeout(poll, 20);
    };
    poll();
  });
  return {
    label,
    pid: proc.pid!,
    unixUri: `test+unix:///default?socket=${sock}`,
    tcpUri: ports.tcp ? `test+tcp://127.0.0.1:${ports.tcp}/default` : null,
    tlsUri: ports.tls && pkipath ? `test+tls://127.0.0.1:${ports.tls}/default?pkipath=${pkipath}` : null,
  };
}

// Recorded and started once per bench run (by the floor row, or by row 1 or 2 when run alone).
const started = new WeakMap<BenchCtx, Promise<FloorServers>>();
export function floorServers(ctx: BenchCtx): Promise<FloorServers> {
  let p = started.get(ctx);
  if (!p) {
    p = (async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-bench-floor-'));
      onCleanup(async () => fs.rmSync(dir, { recursive: true, force: true }));
      const table = await record(ctx, dir);
      const pki = ctx.virtgate.pki;
      const tlsArgs = pki
        ? [path.join(pki, 'server', 'servercert.pem'), path.join(pki, 'server', 'private', 'serverkey.pem'), path.join(pki, 'ca', 'cacert.pem')]
        : null;
      const pkipath = pki ? path.join(pki, 'admin') : null;
      const nodeSock = path.join(dir, 'node.sock');
      const node = await startFloor(
        'Node floor',
        process.execPath,
        [NODE_ECHO, table, '--unix', nodeSock, '--tcp', ...(tlsArgs ? ['--tls', '--cert', tlsArgs[0], '--key', tlsArgs[1], '--ca', tlsArgs[2]] : [])],
        nodeSock,
        pkipath,
      );
      let c: FloorServer | null = null;
      const built = buildCFloor();
      if ('why' in built) ctx.notes.push(`0 floor: no C floor: ${built.why}`);
      else {
        if (!built.tls) ctx.notes.push('0 floor: the C floor was built without gnutls (libgnutls28-dev): no TLS row against it');
        const cSock = path.join(dir, 'c.sock');
        c = await startFloor('C floor', built.bin, [table, cSock, ...(built.tls && tlsArgs ? tlsArgs : [])], cSock, pkipath);
      }
      // Warm-up, as virtgate had its own before the rows: the Node floor's first thousands of calls are JIT compilation.
      for (const srv of [node, c]) {
        for (const uri of [srv?.unixUri, srv?.tlsUri]) if (uri && ctx.cclient) await ctx.runC(uri, warmUp(ctx), 1);
      }
      await tsSequential(node.unixUri, warmUp(ctx));
      return { node, c };
    })();
    started.set(ctx, p);
  }
  return p;
}

// Rows 1 and 2 call this first: the recording (and its warm-up of virtgate) then happens before their measurements even
// when the floor row did not run. A floor that cannot start costs only the floor columns.
export async function prepareFloor(ctx: BenchCtx): Promise<void> {
  try {
    await floorServers(ctx);
  } catch (e) {
    ctx.notes.push(`no floor servers: ${(e as Error).message}`);
  }
}

// Transport strings as rows 1 and 2 print them: 'unix', 'tcp', 'tls', 'unix ×8 thr', 'unix ×64 in flight'.
export const floorKey = (client: 'C' | 'TS', transport: string): string => `${client}/${transport}`;

// One measurement of `client` over `transport` against a floor server, with the sizes of rows 1 and 2.
export async function measureFloor(ctx: BenchCtx, srv: FloorServer, client: 'C' | 'TS', transport: string): Promise<Figures> {
  const base = transport.split(' ')[0];
  const uri = base === 'unix' ? srv.unixUri : base === 'tcp' ? srv.tcpUri : srv.tlsUri;
  if (!uri) throw new Error(`${srv.label} has no ${base} listener`);
  const { seqIterations: n, pipelinedCalls: total, cThreads, tsInFlight } = ctx.sizes;
  const pipelined = transport.includes('×');
  if (client === 'C') {
    const threads = pipelined ? cThreads : 1;
    const iterations = pipelined ? Math.ceil(total / GUESTS / cThreads) * cThreads : n;
    return fromC(await ctx.runC(uri, iterations, threads));
  }
  return pipelined ? tsPipelined(uri, total, tsInFlight) : tsSequential(uri, n);
}

export function floorRss(srv: FloorServer): Record<string, Record<string, number>> {
  const kib = rssKiB(srv.pid);
  return kib === null ? {} : { [srv.label]: { after: kib } };
}

// Fills a row-1/row-2 result's floor: the "0 floor" row's figure when it ran, else measured now against the Node floor.
export async function withFloor(ctx: BenchCtx, r: RowResult): Promise<RowResult> {
  const k = floorKey(r.client, r.transport);
  let f = ctx.floors.get(k);
  if (!f) {
    try {
      const { node } = await floorServers(ctx);
      ctx.log(`${r.row}: its floor, ${r.client} client over ${r.transport} against the Node floor`);
      f = { label: node.label, figures: await measureFloor(ctx, node, r.client, r.transport) };
      ctx.floors.set(k, f);
    } catch (e) {
      ctx.notes.push(`${r.row} ${r.client} ${r.transport}: no floor figure: ${(e as Error).message}`);
      return { ...r, floor: null, floorRatio: null };
    }
  }
  return { ...r, floor: f, floorRatio: ratio(r.virtgate, f.figures, r.ratioOf) };
}
