// SPDX-License-Identifier: Apache-2.0
// Row 8 "abuse" (bounded under abuse): the attacks of the issue at full size, each while a normal client calls GetInfo
// in a loop, with the front end's RSS read from /proc and that client's p99 measured in its own process.
//   1 messages:    40 × 31 MiB unfinished messages on the read-only socket, 20 × 31 MiB before a SASL login, and an
//                  authorized client's 40 × 31 MiB, closed: RSS peak and after close;
//   2 events:      12 read-only subscribers that stop reading while a writer makes lifecycle events (writes/s kept),
//                  and one read-only client asking for 20,000 event registrations;
//   3 connections: 5,000 idle read-only connections of an unprivileged user, then a read-write client; 20 idle TCP
//                  connections to the TLS port that never handshake, then a TLS client.
// The attackers and the probe are child processes of this file (`node abuse.js '{"mode":...}'`), attackers as another
// local user (setpriv) when the bench runs as root; test/load/ runs the same tools at a smaller size.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ListAllFlags, type RemoteDomain, VirtgateClient } from '../../src/client';
import { KeepaliveProc } from '../../src/protocol/constants';
import { encodeMessage } from '../../src/protocol/header';
import { encodeKeepalive } from '../../src/protocol/messages';
import { P } from '../../src/protocol/procs/remote';
import { type BenchCtx, type Figures, type Row, type RowResult } from '../lib/ctx';
import { ROOT, fdLimit, onCleanup, pgrep, rssKiB, stopChild } from '../lib/proc';
import type { Target } from '../lib/target';
import { startVirtgate } from '../lib/virtgate';

const ROW = '8 abuse';
const MiB = 1024 * 1024;

// ---------- the tools (child processes) ----------

export type Endpoint = { path: string } | { host: string; port: number; localAddress?: string };

export type ToolSpec =
  // count connections; each optionally opens (AUTH_LIST + CONNECT_OPEN) and then sends `bytes` of a message whose
  // length word says `claim`, and then holds still. Status lines count those still open and those the server closed.
  | { mode: 'conns'; to: Endpoint; count: number; open?: boolean; claim?: number; bytes?: number; batch?: number }
  // count read-only-style subscribers: open, register `callbacks` lifecycle callbacks (all domains), then stop reading
  // (read: false) or keep reading and counting events (read: true).
  | { mode: 'subscribe'; to: Endpoint; count: number; callbacks: number; read: boolean }
  // the normal client: GetInfo on every running guest in turn, one call every `intervalMs`, latencies kept.
  | { mode: 'probe'; uri: string; intervalMs: number }
  // lifecycle events on demand: suspend/resume of the running guests, `concurrency` loops.
  | { mode: 'writer'; uri: string; concurrency: number };

type Msg = Record<string, unknown> & { event: string };
const emit = (m: Msg): boolean => process.stdout.write(`${JSON.stringify(m)}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const call = (proc: number, serial: number, body?: (w: import('../../src/common/xdr').XdrWriter) => void): Buffer =>
  encodeMessage({ prog: 0x20008086, vers: 1, proc, type: 0, serial, status: 0 }, body);
const openCalls = (): Buffer =>
  Buffer.concat([call(P.AUTH_LIST.proc, 1), call(P.CONNECT_OPEN.proc, 2, (w) => P.CONNECT_OPEN.args.encode(w, { name: 'test:///default', flags: 0 }))]);

function connectTo(to: Endpoint): net.Socket {
  return 'path' in to ? net.createConnection(to.path) : net.createConnection({ host: to.host, port: to.port, localAddress: to.localAddress });
}

// Counts the replies (and their error flags) in a byte stream; events (MESSAGE, type 2) are counted apart.
function replyCounter(): { push(c: Buffer): void; replies: number; errors: number; events: number; callErrors: number } {
  let buf: Buffer = Buffer.alloc(0);
  const st = {
    replies: 0,
    errors: 0,
    callErrors: 0, // errors answering the calls after the open sequence (serial 3 and up)
    events: 0,
    push(c: Buffer): void {
      buf = buf.length ? Buffer.concat([buf, c]) : c;
      while (buf.length >= 4 && buf.length >= buf.readUInt32BE(0)) {
        const len = buf.readUInt32BE(0);
        const type = buf.readInt32BE(16);
        if (type === 2)
          st.events++; // MESSAGE (an event); replies are type 1
        else {
          st.replies++;
          if (buf.readInt32BE(24) !== 0) {
            st.errors++;
            if (buf.readUInt32BE(20) >= 3) st.callErrors++;
          }
        }
        buf = buf.subarray(len);
      }
    },
  };
  return st;
}

async function toolConns(s: Extract<ToolSpec, { mode: 'conns' }>): Promise<void> {
  const socks: net.Socket[] = [];
  let open = 0;
  let closed = 0;
  let failed = 0;
  const chunk = Buffer.alloc(Math.min(MiB, s.bytes ?? 0));
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const sock = connectTo(s.to);
      socks.push(sock);
      let up = false;
      const rc = replyCounter();
      let opened = !s.open;
      const send = (): void => {
        if (s.claim) {
          const head = Buffer.alloc(4);
          head.writeUInt32BE(s.claim, 0);
          sock.write(head);
          let left = s.bytes ?? 0;
          const more = (): void => {
            while (left > 0 && !sock.destroyed) {
              const n = Math.min(left, chunk.length);
              left -= n;
              if (!sock.write(chunk.subarray(0, n))) return void sock.once('drain', more);
            }
            resolve();
          };
          more();
        } else resolve();
      };
      sock.on('connect', () => {
        up = true;
        open++;
        // As libvirt's clients do, the message comes after CONNECT_OPEN's reply (before it, the pre-open limit applies).
        if (s.open) sock.write(openCalls());
        else send();
      });
      sock.on('data', (c: Buffer) => {
        if (opened) return;
        rc.push(c);
        if (rc.replies >= 2) {
          opened = true;
          send();
        }
      });
      sock.on('error', () => undefined);
      sock.on('close', () => {
        if (up) {
          open--;
          closed++;
        } else failed++;
        resolve();
      });
    });
  const batch = s.batch ?? 50;
  for (let i = 0; i < s.count; i += batch) await Promise.all(Array.from({ length: Math.min(batch, s.count - i) }, one));
  await sleep(300);
  emit({ event: 'ready', open, closed, failed });
  setInterval(() => emit({ event: 'status', open, closed, failed }), 250);
  process.once('SIGTERM', () => {
    emit({ event: 'done', open, closed, failed });
    for (const x of socks) x.destroy();
    process.exit(0);
  });
}

async function toolSubscribe(s: Extract<ToolSpec, { mode: 'subscribe' }>): Promise<void> {
  let open = 0;
  let closed = 0;
  let ok = 0;
  let refused = 0;
  let events = 0;
  const socks: net.Socket[] = [];
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const sock = connectTo(s.to);
      socks.push(sock);
      const rc = replyCounter();
      let registered = false;
      sock.on('connect', () => {
        open++;
        const calls = [openCalls()];
        for (let i = 0; i < s.callbacks; i++) {
          calls.push(
            call(P.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY.proc, 3 + i, (w) =>
              P.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY.args.encode(w, { eventID: 0, dom: null }),
            ),
          );
        }
        sock.write(Buffer.concat(calls));
      });
      sock.on('data', (c: Buffer) => {
        rc.push(c);
        events = Math.max(events, rc.events);
        if (!registered && rc.replies >= 2 + s.callbacks) {
          registered = true;
          ok += rc.replies - 2 - rc.callErrors;
          refused += rc.callErrors;
          if (!s.read) {
            // From now on this client reads nothing. A paused socket does not see the server's close either, so it
            // sends a keepalive PONG (accepted silently) now and then: a write to a closed connection fails.
            sock.pause();
            const poke = setInterval(() => (sock.destroyed ? clearInterval(poke) : sock.write(encodeKeepalive(KeepaliveProc.PONG))), 200);
          }
          resolve();
        }
      });
      sock.on('error', () => undefined);
      sock.on('close', () => {
        open--;
        closed++;
        resolve();
      });
    });
  await Promise.all(Array.from({ length: s.count }, one));
  emit({ event: 'ready', open, closed, ok, refused });
  setInterval(() => emit({ event: 'status', open, closed, ok, refused, events }), 250);
  process.once('SIGTERM', () => {
    emit({ event: 'done', open, closed, ok, refused, events });
    for (const x of socks) x.destroy();
    process.exit(0);
  });
}

async function toolProbe(s: Extract<ToolSpec, { mode: 'probe' }>): Promise<void> {
  const c = await VirtgateClient.connect(s.uri);
  const doms: RemoteDomain[] = await c.listAllDomains(ListAllFlags.ACTIVE);
  const lat: number[] = [];
  let failures = 0;
  let stop = false;
  process.once('SIGTERM', () => (stop = true));
  emit({ event: 'ready', guests: doms.length });
  const started = Date.now();
  for (let i = 0; !stop; i++) {
    const t0 = process.hrtime.bigint();
    try {
      await c.getInfo(doms[i % doms.length]);
      lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
    } catch {
      failures++;
    }
    await sleep(s.intervalMs);
  }
  lat.sort((a, b) => a - b);
  const pct = (p: number): number => (lat.length ? lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))] : NaN);
  const meanMs = lat.reduce((a, b) => a + b, 0) / lat.length;
  emit({
    event: 'done',
    calls: lat.length,
    failures,
    seconds: (Date.now() - started) / 1000,
    meanMs,
    p50Ms: pct(50),
    p99Ms: pct(99),
    maxMs: lat.length ? lat[lat.length - 1] : NaN,
  });
  await c.close().catch(() => undefined);
  process.exit(0);
}

async function toolWriter(s: Extract<ToolSpec, { mode: 'writer' }>): Promise<void> {
  const c = await VirtgateClient.connect(s.uri);
  const doms = await c.listAllDomains(ListAllFlags.ACTIVE);
  let writes = 0;
  let failures = 0;
  let stop = false;
  const t0 = Date.now();
  process.once('SIGTERM', () => (stop = true));
  emit({ event: 'ready', guests: doms.length });
  const status = setInterval(() => emit({ event: 'status', writes, failures, seconds: (Date.now() - t0) / 1000 }), 250);
  // One loop per guest at most: two loops suspending the same guest would only make errors.
  await Promise.all(
    Array.from({ length: Math.min(s.concurrency, doms.length) }, async (_, k) => {
      const d = doms[k % doms.length];
      while (!stop) {
        try {
          await c.suspend(d);
          await c.resume(d);
          writes += 2;
        } catch {
          failures++;
          await sleep(10);
        }
      }
    }),
  );
  clearInterval(status);
  emit({ event: 'done', writes, failures, seconds: (Date.now() - t0) / 1000 });
  await c.close().catch(() => undefined);
  process.exit(0);
}

// ---------- the parent's side ----------

export interface User {
  uid: number;
  gid: number;
}

export class Tool {
  readonly proc: ChildProcess;
  readonly msgs: Msg[] = [];
  #err = '';
  #forget: () => void;
  // 'close', not 'exit': the last stdout chunk (the 'done' line) may still be unread when 'exit' fires.
  readonly #closed: Promise<void>;

  constructor(spec: ToolSpec, user?: User) {
    const script = path.join(ROOT, 'build', 'bench', 'rows', 'abuse.js');
    const argv = [process.execPath, script, JSON.stringify(spec)];
    const cmd = user ? ['setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', ...argv] : argv;
    this.proc = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    this.proc.stdout!.setEncoding('utf8').on('data', (t: string) => {
      buf += t;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          this.msgs.push(JSON.parse(line) as Msg);
        } catch {
          this.#err += `${line}\n`;
        }
      }
    });
    this.proc.stderr!.setEncoding('utf8').on('data', (t: string) => (this.#err += t));
    this.#closed = new Promise<void>((r) => this.proc.once('close', () => r()));
    this.#forget = onCleanup(() => stopChild(this.proc, 2000));
  }

  last(event?: string): Msg | undefined {
    for (let i = this.msgs.length - 1; i >= 0; i--) if (!event || this.msgs[i].event === event) return this.msgs[i];
    return undefined;
  }

  async waitFor(pred: (m: Msg) => boolean, timeoutMs = 30000): Promise<Msg> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.msgs.find(pred);
      if (m) return m;
      if (this.proc.exitCode !== null) throw new Error(`tool exited (${this.proc.exitCode}): ${this.#err}`);
      if (Date.now() > deadline) throw new Error(`tool: timed out; last ${JSON.stringify(this.last())}; ${this.#err}`);
      await sleep(25);
    }
  }

  // The newest status that satisfies pred (status lines come every 250 ms).
  async until(pred: (m: Msg) => boolean, timeoutMs = 30000): Promise<Msg> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.last();
      if (m && pred(m)) return m;
      if (this.proc.exitCode !== null) throw new Error(`tool exited (${this.proc.exitCode}): ${this.#err}`);
      if (Date.now() > deadline) throw new Error(`tool: condition not met; last ${JSON.stringify(m)}; ${this.#err}`);
      await sleep(50);
    }
  }

  ready(timeoutMs = 60000): Promise<Msg> {
    return this.waitFor((m) => m.event === 'ready', timeoutMs);
  }

  async stop(): Promise<Msg> {
    this.#forget();
    if (this.proc.exitCode === null) this.proc.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#closed, new Promise<void>((r) => (timer = setTimeout(r, 10000)))]);
    clearTimeout(timer); // a pending timer would keep a test runner alive
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGKILL');
      await this.#closed;
    }
    const done = this.last('done');
    if (!done) throw new Error(`tool ended without a result: ${this.#err}`);
    return done;
  }
}

// RSS of the front end, sampled every 100 ms from outside the process while an attack runs.
export class RssSampler {
  readonly pid: number;
  peakKiB = 0;
  #timer: NodeJS.Timeout;

  constructor(pid: number) {
    this.pid = pid;
    this.#timer = setInterval(() => this.now(), 100);
  }

  now(): number {
    const k = rssKiB(this.pid) ?? 0;
    if (k > this.peakKiB) this.peakKiB = k;
    return k;
  }

  resetPeak(): void {
    this.peakKiB = this.now();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

export function frontEndPid(home: string): number {
  const pid = pgrep(`virtgated.js --home ${home}`);
  if (pid === null) throw new Error(`no front end for ${home}`);
  return pid;
}

// A local user for the attackers (root only: setpriv); null when we are not root.
export function attackerUser(name: string): User | null {
  if (process.getuid?.() !== 0) return null;
  try {
    execFileSync('id', [name], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', name]);
  }
  const id = (flag: string): number => Number(execFileSync('id', [flag, name]).toString().trim());
  return { uid: id('-u'), gid: id('-g') };
}

// Waits until the front end's RSS falls to `kib` or below (memory returned), or the timeout; returns the last reading.
export async function rssSettles(pid: number, kib: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let k = rssKiB(pid) ?? 0;
  while (k > kib && Date.now() < deadline) {
    await sleep(250);
    k = rssKiB(pid) ?? 0;
  }
  return k;
}

// ---------- the row ----------

interface Phase {
  what: string;
  rssBeforeMiB: number;
  rssPeakMiB: number;
  rssAfterMiB?: number;
  probe: Msg;
  extra: Record<string, unknown>;
}

const mib = (kib: number): number => Math.round(kib / 102.4) / 10;

// One phase: the probe runs throughout; `attack` does its work and returns what it measured.
async function phase(
  what: string,
  front: number,
  probeUri: string,
  attack: (s: RssSampler) => Promise<Record<string, unknown>>,
  after?: () => Promise<number>,
): Promise<Phase> {
  const sampler = new RssSampler(front);
  const before = sampler.now();
  const probe = new Tool({ mode: 'probe', uri: probeUri, intervalMs: 5 });
  try {
    await probe.ready();
    const extra = await attack(sampler);
    const p = await probe.stop();
    const rssAfter = after ? await after() : undefined;
    return {
      what,
      rssBeforeMiB: mib(before),
      rssPeakMiB: mib(sampler.peakKiB),
      rssAfterMiB: rssAfter === undefined ? undefined : mib(rssAfter),
      probe: p,
      extra,
    };
  } finally {
    sampler.stop();
    if (probe.proc.exitCode === null) await probe.stop().catch(() => undefined);
  }
}

// The probe's figures; RSS as the table shows it (label -> after): the peak during the attack, and after it where measured.
function toFigures(p: Phase): Figures {
  const calls = Number(p.probe.calls);
  const seconds = Number(p.probe.seconds);
  const rss: Record<string, Record<string, number>> = { 'front end peak': { after: p.rssPeakMiB * 1024 } };
  if (p.rssAfterMiB !== undefined) rss['after close'] = { after: p.rssAfterMiB * 1024 };
  return {
    calls,
    seconds,
    usPerCall: Number(p.probe.meanMs) * 1000,
    callsPerSec: calls / seconds,
    failures: Number(p.probe.failures),
    p50Ms: Number(p.probe.p50Ms),
    p99Ms: Number(p.probe.p99Ms),
    rssKiB: rss,
  };
}

export const abuse: Row = {
  name: ROW,
  async run(ctx: BenchCtx): Promise<RowResult[]> {
    // The bench's own smoke test runs every row at toy sizes; these attacks at a small size are test/load's job.
    if (ctx.sizes.clients < 50) {
      ctx.notes.push(`${ROW}: skipped at test sizes (npm test's load project runs these attacks small)`);
      return [];
    }
    const quick = ctx.sizes.clients < 1000; // the quick bench runs every attack at a tenth of its size
    const scale = (n: number): number => (quick ? Math.max(1, Math.round(n / 10)) : n);
    const user = attackerUser('vgabuse');
    if (!user) ctx.notes.push(`${ROW}: not root: attackers run as this user (per-uid caps then count the probe's uid too)`);
    const results: RowResult[] = [];
    const phases: Phase[] = [];
    // The attacking user may read everything: it can reach only the 0666 read-only socket, which grants at most read
    // permissions (a read-only user of the whole host, as libvirt's); so its event registrations are real.
    const vg = await startVirtgate(ctx.log, { policy: 'g, unix:root, host-admin, *\ng, x509:admin, host-admin, *\ng, vgabuse, host-admin, *\n' });
    let sasl: Target | null = null;
    try {
      const home = homeOf(vg);
      fs.chmodSync(home, 0o755);
      const front = frontEndPid(home);
      const sock = path.join(home, 'run', 'virtgate-sock');
      const ro = { path: `${sock}-ro` };

      // 1. unfinished large messages
      const n1 = scale(40);
      ctx.log(`${ROW}: ${n1} × 31 MiB unfinished messages on the read-only socket`);
      phases.push(
        await phase(`1 ro socket: ${n1} × 31 MiB unfinished`, front, vg.unixUri, async () => {
          const t = new Tool({ mode: 'conns', to: ro, count: n1, claim: 32 * MiB - 8, bytes: 31 * MiB, batch: 10 }, user ?? undefined);
          const r = await t.ready(120000);
          await sleep(1000);
          const d = await t.stop();
          return { closedByServer: r.closed, stillOpen: d.open };
        }),
      );
      const n1b = scale(20);
      // The read-only socket of a second daemon asks for a SASL login (its read-write socket, which sets up the
      // guests and carries the probe, does not); 20 anonymous slots for one uid, so all 20 attackers get in.
      sasl = await startVirtgate(ctx.log, { conf: 'authUnixRo = "sasl"\nmaxAnonymousClientsPerSource = 20\n' });
      const saslHome = homeOf(sasl);
      fs.chmodSync(saslHome, 0o755);
      const saslFront = frontEndPid(saslHome);
      ctx.log(`${ROW}: ${n1b} × 31 MiB before a SASL login`);
      phases.push(
        await phase(`1 before SASL login: ${n1b} × 31 MiB`, saslFront, sasl.unixUri, async () => {
          const t = new Tool(
            { mode: 'conns', to: { path: path.join(saslHome, 'run', 'virtgate-sock-ro') }, count: n1b, claim: 32 * MiB - 8, bytes: 31 * MiB, batch: 10 },
            user ?? undefined,
          );
          const r = await t.ready(120000);
          await sleep(1000);
          const d = await t.stop();
          return { closedByServer: r.closed, stillOpen: d.open };
        }),
      );
      await sasl.stop();
      sasl = null;
      ctx.log(`${ROW}: an authorized client's ${n1} × 31 MiB unfinished messages, then closed: memory returned?`);
      const baseKiB = rssKiB(front) ?? 0;
      phases.push(
        await phase(
          `1 opened rw (allowed): ${n1} × 31 MiB, then closed`,
          front,
          vg.unixUri,
          async () => {
            const t = new Tool({ mode: 'conns', to: { path: sock }, count: n1, open: true, claim: 32 * MiB - 8, bytes: 31 * MiB, batch: 10 });
            const r = await t.ready(120000);
            await sleep(1000);
            const d = await t.stop();
            return { closedByServer: r.closed, heldOpen: d.open };
          },
          () => rssSettles(front, baseKiB + 32 * 1024, 15000),
        ),
      );

      // 2. event output
      const n2 = scale(12);
      ctx.log(`${ROW}: ${n2} read-only subscribers that stop reading, while a writer makes lifecycle events`);
      const writerAlone = new Tool({ mode: 'writer', uri: vg.unixUri, concurrency: 3 });
      await writerAlone.ready();
      await sleep(quick ? 2000 : 5000);
      const wa = await writerAlone.stop();
      phases.push(
        await phase(`2 ${n2} ro subscribers not reading`, front, vg.unixUri, async () => {
          const subs = new Tool({ mode: 'subscribe', to: ro, count: n2, callbacks: 256, read: false }, user ?? undefined);
          await subs.ready();
          const w = new Tool({ mode: 'writer', uri: vg.unixUri, concurrency: 3 });
          await w.ready();
          await sleep(quick ? 4000 : 15000);
          const wd = await w.stop();
          const sd = await subs.stop();
          return {
            writesPerSecAlone: Math.round(Number(wa.writes) / Number(wa.seconds)),
            writesPerSec: Math.round(Number(wd.writes) / Number(wd.seconds)),
            subscribersDropped: sd.closed,
          };
        }),
      );
      const regs = quick ? 2000 : 20000;
      ctx.log(`${ROW}: one read-only client asking for ${regs} event registrations, events flowing`);
      phases.push(
        await phase(`2 ro client: ${regs} registrations`, front, vg.unixUri, async () => {
          const w = new Tool({ mode: 'writer', uri: vg.unixUri, concurrency: 1 });
          await w.ready();
          const subs = new Tool({ mode: 'subscribe', to: ro, count: 1, callbacks: regs, read: true }, user ?? undefined);
          const r = await subs.ready(120000);
          await sleep(quick ? 2000 : 5000);
          await w.stop();
          await subs.stop();
          return { registered: r.ok, refused: r.refused };
        }),
      );

      // 3. connections
      const n3 = Math.min(scale(5000), fdLimit() - 512);
      if (n3 < scale(5000)) ctx.notes.push(`${ROW}: ulimit -n ${fdLimit()} caps the idle connections at ${n3}`);
      ctx.log(`${ROW}: ${n3} idle read-only connections of one user, then read-write clients`);
      phases.push(
        await phase(`3 ${n3} idle ro connections, one uid`, front, vg.unixUri, async () => {
          const t = new Tool({ mode: 'conns', to: ro, count: n3, batch: 100 }, user ?? undefined);
          const r = await t.ready(120000);
          const c = await VirtgateClient.connect(vg.unixUri); // a read-write client still gets in
          await c.close();
          await t.stop();
          return { accepted: r.open, refused: Number(r.closed) + Number(r.failed), rwClientConnected: true };
        }),
      );
      if (vg.tlsUri) {
        const port = Number(/:(\d+)\//.exec(vg.tlsUri)![1]);
        const n3b = 20;
        ctx.log(`${ROW}: ${n3b} idle TCP connections to the TLS port from one address, then a TLS client`);
        phases.push(
          await phase(`3 ${n3b} idle TCP to the TLS port`, front, vg.unixUri, async () => {
            const t = new Tool({ mode: 'conns', to: { host: '127.0.0.1', port, localAddress: '127.0.0.2' }, count: n3b, batch: n3b });
            const r = await t.ready();
            const t0 = Date.now();
            const c = await VirtgateClient.connect(vg.tlsUri!);
            const ms = Date.now() - t0;
            await c.close();
            await t.stop();
            return { held: r.open, refused: r.closed, tlsClientConnectMs: ms };
          }),
        );
      }
      for (const p of phases) {
        ctx.notes.push(
          `${ROW} ${p.what}: front end RSS ${p.rssBeforeMiB} -> peak ${p.rssPeakMiB}${p.rssAfterMiB !== undefined ? ` -> after ${p.rssAfterMiB}` : ''} MiB; ` +
            `probe GetInfo p99 ${Number(p.probe.p99Ms).toFixed(2)} ms (max ${Number(p.probe.maxMs).toFixed(1)}, ${p.probe.calls} calls, ${p.probe.failures} failed); ${JSON.stringify(p.extra)}`,
        );
        results.push({ row: ROW, client: 'TS', transport: p.what, virtgate: toFigures(p), libvirtd: null, ratioOf: 'p99', ratio: null });
      }
      return results;
    } finally {
      await sasl?.stop();
      await vg.stop();
    }
  },
};

function homeOf(t: Target): string {
  return /socket=(.*)\/run\/virtgate-sock/.exec(t.unixUri)![1];
}

if (require.main === module && process.argv[2]?.startsWith('{')) {
  const spec = JSON.parse(process.argv[2]) as ToolSpec;
  const run = { conns: toolConns, subscribe: toolSubscribe, probe: toolProbe, writer: toolWriter }[spec.mode] as (s: ToolSpec) => Promise<void>;
  run(spec).catch((e: Error) => {
    process.stderr.write(`${e.stack ?? e.message}\n`);
    process.exit(1);
  });
}
