// SPDX-License-Identifier: Apache-2.0
// The descriptor form end to end: a root-only 0600 qcow2 overlay on a raw base, opened by openPoolDisk, handed to a
// real QEMU running as an unprivileged uid (as the jail runs it) as two fdsets with the backing chain explicit in
// -blockdev; QEMU reads the base through the overlay and writes only into the overlay, and cannot open the same files
// by path.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type DiskLayer, blockdevArgs, openPoolDisk } from '../../../src/privileged/qemu/disk';
import { createQcow2 } from '../../../src/privileged/qemu/qcow2';
import { describeIf, file, root, tool } from '../../helpers/skip';

const QEMU = '/usr/bin/qemu-system-x86_64';
const UID = 200_000 + 4242; // a jail-range uid no other test uses

// A minimal QMP client over QEMU's stdio: one JSON object per line; events skipped. HMP's qemu-io prints its result
// straight to stdout, between the replies: those lines are kept as `text`.
class Qmp {
  #buf = '';
  #waiters: ((v: Record<string, unknown>) => void)[] = [];
  #replies: Record<string, unknown>[] = [];
  text = '';
  constructor(private readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      this.#buf += chunk;
      let nl: number;
      while ((nl = this.#buf.indexOf('\n')) >= 0) {
        const line = this.#buf.slice(0, nl).trim();
        this.#buf = this.#buf.slice(nl + 1);
        if (!line) continue;
        if (!line.startsWith('{')) {
          this.text += line + '\n';
          continue;
        }
        const msg = JSON.parse(line) as Record<string, unknown>;
        if ('event' in msg) continue;
        const w = this.#waiters.shift();
        if (w) w(msg);
        else this.#replies.push(msg);
      }
    });
  }
  next(): Promise<Record<string, unknown>> {
    const r = this.#replies.shift();
    if (r) return Promise.resolve(r);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no QMP reply within 10 s')), 10_000);
      this.#waiters.push((v) => {
        clearTimeout(t);
        resolve(v);
      });
    });
  }
  async exec(cmd: string, args?: object): Promise<unknown> {
    this.child.stdin!.write(JSON.stringify(args ? { execute: cmd, arguments: args } : { execute: cmd }) + '\n');
    const reply = await this.next();
    if ('error' in reply) throw new Error(`${cmd}: ${JSON.stringify(reply.error)}`);
    return reply.return;
  }
}

describeIf(
  [root('files of uid 0 for a QEMU of another uid'), file(QEMU, 'qemu-system-x86'), tool('setpriv', 'util-linux'), tool('qemu-img', 'qemu-utils')],
  'QEMU opens a confined chain through fdsets',
  () => {
    let dir: string;
    let pool: string;
    let layers: DiskLayer[] = [];
    let single: DiskLayer[] = [];
    const children: ChildProcess[] = [];

    beforeAll(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-diskqemu-'));
      fs.chmodSync(dir, 0o755); // QEMU's uid may walk in; the pool and images stay root-only
      pool = path.join(dir, 'pool');
      fs.mkdirSync(pool, { mode: 0o700 });
      fs.writeFileSync(path.join(pool, 'base.raw'), Buffer.alloc(1 << 20, 0x5a), { mode: 0o600 });
      const fd = fs.openSync(path.join(pool, 'top.qcow2'), 'wx', 0o600);
      createQcow2(fd, 1 << 20, { backingFile: 'base.raw', backingFormat: 'raw' });
      fs.closeSync(fd);
      layers = openPoolDisk({ poolDir: pool, name: 'top.qcow2', format: 'qcow2', readOnly: false, basePools: [] });
      fs.writeFileSync(path.join(pool, 'data.raw'), Buffer.alloc(1 << 20, 0x44), { mode: 0o600 });
      single = openPoolDisk({ poolDir: pool, name: 'data.raw', format: 'raw', readOnly: true, basePools: [] });
    });

    afterAll(async () => {
      for (const c of children)
        if (c.exitCode === null && c.signalCode === null) {
          c.kill('SIGKILL');
          await new Promise((r) => c.once('exit', r));
        }
      for (const l of [...layers, ...single]) fs.closeSync(l.fd);
      fs.rmSync(dir, { recursive: true, force: true });
    });

    const start = (extra: string[], fds: number[]): { child: ChildProcess; qmp: Qmp; stderr: () => string } => {
      const qemu = [QEMU, '-machine', 'none', '-nodefaults', '-display', 'none', '-S', '-qmp', 'stdio', ...extra];
      const child = spawn('setpriv', ['--reuid', String(UID), '--regid', String(UID), '--clear-groups', '--', ...qemu], {
        stdio: ['pipe', 'pipe', 'pipe', ...fds],
      });
      children.push(child);
      let err = '';
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      return { child, qmp: new Qmp(child), stderr: () => err };
    };

    test('reads come from the base through the overlay; writes land in the overlay only', async () => {
      expect(layers.map((l) => [path.basename(l.name), l.format, l.readOnly])).toEqual([
        ['top.qcow2', 'qcow2', false],
        ['base.raw', 'raw', true],
      ]);
      const chain = blockdevArgs(layers, { fd: 3, fdset: 1, node: 'disk0' });
      const data = blockdevArgs(single, { fd: 5, fdset: 3, node: 'disk1' });
      expect(chain.args).toEqual([
        '-add-fd',
        'fd=4,set=2',
        '-blockdev',
        '{"driver":"file","filename":"/dev/fdset/2","node-name":"disk0-f1","read-only":true}',
        '-blockdev',
        '{"driver":"raw","file":"disk0-f1","node-name":"disk0-l1","read-only":true}',
        '-add-fd',
        'fd=3,set=1',
        '-blockdev',
        '{"driver":"file","filename":"/dev/fdset/1","node-name":"disk0-f0","read-only":false}',
        '-blockdev',
        '{"driver":"qcow2","file":"disk0-f0","node-name":"disk0-l0","read-only":false,"backing":"disk0-l1"}',
      ]);
      const { child, qmp, stderr } = start(
        [...chain.args, ...data.args],
        [...layers, ...single].map((l) => l.fd),
      );
      const greeting = await Promise.race([qmp.next(), new Promise<never>((_, rej) => child.once('exit', () => rej(new Error(`QEMU exited: ${stderr()}`))))]);
      expect(greeting).toHaveProperty('QMP');
      await qmp.exec('qmp_capabilities');
      const nodes = (await qmp.exec('query-named-block-nodes')) as {
        'node-name': string;
        file: string;
        ro: boolean;
        backing_file_depth: number;
        drv: string;
      }[];
      const by = new Map(nodes.map((n) => [n['node-name'], n]));
      expect(by.get('disk0-l0')).toMatchObject({ drv: 'qcow2', ro: false, backing_file_depth: 1 });
      expect(by.get('disk0-f0')).toMatchObject({ drv: 'file', file: '/dev/fdset/1', ro: false });
      expect(by.get('disk0-f1')).toMatchObject({ drv: 'file', file: '/dev/fdset/2', ro: true });
      expect(by.get('disk1-l0')).toMatchObject({ drv: 'raw', ro: true });
      const io = async (cmd: string, node = chain.top): Promise<string> => {
        qmp.text = '';
        const ret = await qmp.exec('human-monitor-command', { 'command-line': `qemu-io ${node} "${cmd}"` });
        return `${qmp.text}${String(ret)}`;
      };
      expect(await io('read -P 0x44 0 64k', data.top)).toMatch(/read 65536\/65536 bytes/);
      expect(await io('write -P 0x11 0 4k', data.top)).toMatch(/read-only|Permission denied|not permitted/i);
      expect(await io('read -P 0x5a 0 64k')).toMatch(/read 65536\/65536 bytes/);
      expect(await io('read -P 0x00 0 64k')).toMatch(/Pattern verification failed/); // the check can fail
      expect(await io('write -P 0x33 0 4k')).toMatch(/wrote 4096\/4096 bytes/);
      expect(await io('read -P 0x33 0 4k')).toMatch(/read 4096\/4096 bytes/);
      // The QEMU uid, which reads both images fine through descriptors, cannot open them by path.
      const uidProc = fs.readFileSync(`/proc/${await qemuPid(child)}/status`, 'utf8');
      expect(uidProc).toMatch(new RegExp(`^Uid:\\s+${UID}\\s`, 'm'));
      await expect(
        qmp.exec('blockdev-add', { driver: 'file', filename: path.join(pool, 'base.raw'), 'node-name': 'bypath', 'read-only': true }),
      ).rejects.toThrow(/Permission denied/);
      // The backing layer's descriptor is read-only: QEMU cannot turn it into a writable node.
      await expect(qmp.exec('blockdev-add', { driver: 'file', filename: '/dev/fdset/2', 'node-name': 'base-rw', 'read-only': false })).rejects.toThrow(
        /denied|not permitted/i,
      );
      await qmp.exec('quit');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
      expect(fs.readFileSync(path.join(pool, 'base.raw')).every((b) => b === 0x5a)).toBe(true);
      execFileSync('qemu-img', ['check', '-q', path.join(pool, 'top.qcow2')]);
      execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'read -P 0x33 0 4k', '-c', 'read -P 0x5a 4k 60k', path.join(pool, 'top.qcow2')]);
    });
  },
);

// setpriv execs QEMU in place: the child's pid is QEMU's once its exe is QEMU.
async function qemuPid(child: ChildProcess): Promise<number> {
  for (let i = 0; i < 100; i++) {
    if (fs.readlinkSync(`/proc/${child.pid}/exe`) === QEMU) return child.pid!;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('QEMU never replaced setpriv');
}
