// SPDX-License-Identifier: Apache-2.0
// The remote-display listeners follow the helper's domain stream: a port only while a VM with VNC graphics runs,
// asked once per run, never for a VM that stopped while we asked; ports taken by others are skipped; a full range is
// logged, not fatal. Real listening sockets; the helper's stream is an EventEmitter fed by the test.
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { resolveConfig } from '../../src/common/config';
import type { DomainSnapshot, DomainSummary } from '../../src/ipc/program';
import { AllowAllAuthorizer } from '../../src/policy/authorizer';
import { VncProxy } from '../../src/unprivileged/vnc-proxy';

const uuidOf = (n: number): Buffer => Buffer.from(`${n.toString(16).padStart(8, '0')}aaaabbbbccccdddddddddddd`, 'hex');
const snap = (n: number, id: number): DomainSnapshot => ({
  info: { uuid: uuidOf(n), name: `v${n}`, id } as unknown as DomainSnapshot['info'],
  cpuBaseNs: 0n,
  cpuSinceMs: null,
  cpuClock: true,
});
const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

describe('VNC listeners follow the VMs', () => {
  const base = 20000 + Math.floor(Math.random() * 20000);
  let helper: EventEmitter;
  let proxy: VncProxy;
  let logs: string[];
  let asked: string[];
  let graphics: Map<string, boolean>;
  let gate: Promise<void> | null;
  let active: DomainSummary[] | undefined;

  beforeEach(() => {
    helper = new EventEmitter();
    logs = [];
    asked = [];
    graphics = new Map();
    gate = null;
    active = undefined;
    proxy = new VncProxy({
      config: resolveConfig({ vncListen: '127.0.0.1', vncPortMin: base, vncPortMax: base + 2 }),
      log: (m) => logs.push(m),
      authorizer: new AllowAllAuthorizer(),
      domain: () => null,
      openUpstream: () => Promise.reject(new Error('not here')),
    });
    proxy.follow(
      helper,
      async (uuid) => {
        asked.push(uuid.toString('hex').slice(0, 8));
        if (gate) await gate;
        return graphics.get(uuid.toString('hex').slice(0, 8)) ?? true;
      },
      () => active,
    );
  });
  afterEach(() => proxy.close());

  test('a running VM with VNC gets a port; the same run is asked once; it stops: the port closes', async () => {
    helper.emit('snapshot', snap(1, 5));
    helper.emit('snapshot', snap(1, 5));
    await tick();
    expect(proxy.portOf(uuidOf(1))).toEqual({ address: '127.0.0.1', port: base });
    helper.emit('snapshot', snap(1, 5));
    await tick();
    expect(asked).toEqual(['00000001']);
    helper.emit('snapshot', snap(1, -1));
    expect(proxy.portOf(uuidOf(1))).toBeNull();
    await expect(new Promise((res, rej) => net.connect(base, '127.0.0.1', () => res(1)).on('error', rej))).rejects.toThrow(/ECONNREFUSED/);
  });

  test('a VM without VNC is asked once per run, and again after a restart', async () => {
    graphics.set('00000002', false);
    helper.emit('snapshot', snap(2, 7));
    await tick();
    helper.emit('snapshot', snap(2, 7));
    await tick();
    expect(proxy.portOf(uuidOf(2))).toBeNull();
    expect(asked).toEqual(['00000002']);
    helper.emit('snapshot', snap(2, -1));
    helper.emit('snapshot', snap(2, 8));
    await tick();
    expect(asked).toEqual(['00000002', '00000002']);
  });

  test('a VM that stops (or is removed) while its definition is asked for gets no listener', async () => {
    let release!: () => void;
    gate = new Promise((r) => (release = r));
    helper.emit('snapshot', snap(3, 9));
    helper.emit('snapshot', snap(4, 10));
    await tick();
    helper.emit('snapshot', snap(3, -1));
    helper.emit('removed', uuidOf(4));
    release();
    await tick();
    expect(proxy.portOf(uuidOf(3))).toBeNull();
    expect(proxy.portOf(uuidOf(4))).toBeNull();
  });

  test('after a helper resync, VMs that stopped meanwhile lose their listeners', async () => {
    helper.emit('snapshot', snap(5, 11));
    helper.emit('snapshot', snap(6, 12));
    await tick();
    expect(proxy.portOf(uuidOf(5))).not.toBeNull();
    active = [{ uuid: uuidOf(6), name: 'v6', id: 12 } as unknown as DomainSummary];
    helper.emit('up');
    expect(proxy.portOf(uuidOf(5))).toBeNull();
    expect(proxy.portOf(uuidOf(6))).not.toBeNull();
  });

  test('a port taken by another process is skipped; a full range is logged and leaves the VM without a port', async () => {
    const squatter = net.createServer();
    await new Promise<void>((r) => squatter.listen(base, '127.0.0.1', () => r()));
    try {
      for (const n of [7, 8, 9]) helper.emit('snapshot', snap(n, 20 + n));
      await tick();
      await tick();
      const ports = [7, 8, 9].map((n) => proxy.portOf(uuidOf(n))?.port ?? null);
      expect(ports.filter((p) => p !== null).sort()).toEqual([base + 1, base + 2]);
      expect(logs.some((l) => l.includes(`no free port in ${base}..${base + 2}`))).toBe(true);
    } finally {
      squatter.close();
    }
  });
});

describe('unauthenticated VNC connections per address', () => {
  test('one address holds at most maxAnonymousClientsPerSource handshakes; another address still gets in', async () => {
    const base = 20000 + Math.floor(Math.random() * 20000);
    const logs: string[] = [];
    const proxy = new VncProxy({
      config: resolveConfig({ vncListen: '127.0.0.1', vncPortMin: base, vncPortMax: base + 2, maxAnonymousClientsPerSource: 2, vncMaxClientsPerVm: 10 }),
      log: (m) => logs.push(m),
      authorizer: new AllowAllAuthorizer(),
      domain: () => null,
      openUpstream: () => Promise.reject(new Error('not here')),
    });
    const port = (await proxy.listen(uuidOf(1)))!.port;
    const greeting = (localAddress: string): Promise<string> =>
      new Promise((resolve) => {
        const s = net.connect({ port, host: '127.0.0.1', localAddress });
        let got = '';
        s.on('data', (b) => (got += b.toString('latin1')));
        s.on('close', () => resolve(got));
        s.on('error', () => undefined);
        setTimeout(() => resolve(got), 500);
        held.push(s);
      });
    const held: net.Socket[] = [];
    try {
      expect(await greeting('127.0.0.1')).toBe('RFB 003.008\n');
      expect(await greeting('127.0.0.1')).toBe('RFB 003.008\n');
      expect(await greeting('127.0.0.1')).toBe(''); // refused at once
      expect(await greeting('127.0.0.2')).toBe('RFB 003.008\n');
      expect(logs.some((l) => /2 unauthenticated VNC connections from 127\.0\.0\.1 already.*maxAnonymousClientsPerSource/.test(l))).toBe(true);
    } finally {
      for (const s of held) s.destroy();
      proxy.close();
    }
  });
});
