// SPDX-License-Identifier: Apache-2.0
// Volume upload/download through real clients: virsh vol-upload / vol-download (plain and --sparse, --offset/--length,
// a file larger than the volume) and python3-libvirt streams (sendAll, sparseSendAll, recvAll, sparseRecvAll).
// libvirt's own test driver implements neither call (its virStorageDriver table has no volUpload/volDownload): the
// reference run shows that, and the byte-exact round trips are checked on our own semantics (libvirt's storage driver's).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { describeIf, pyLibvirt, virshTool } from '../helpers/skip';

const run = promisify(execFile);
const MiB = 1024 * 1024;

async function virsh(uri: string, command: string): Promise<{ out: string; code: number }> {
  try {
    const { stdout, stderr } = await run('virsh', ['-c', uri, command], { timeout: 60000 });
    return { out: stdout + stderr, code: 0 };
  } catch (e) {
    const x = e as { stdout: string; stderr: string; code: number };
    return { out: x.stdout + x.stderr, code: x.code };
  }
}

// 6 MiB with holes: random data, a 2 MiB hole, a little data, a hole, data at the very end.
function sparseFile(file: string): Buffer {
  const content = Buffer.alloc(6 * MiB);
  for (let i = 0; i < MiB; i++) content[i] = (i * 2654435761) >>> 24;
  content.fill(0x42, 3 * MiB, 3 * MiB + 5000);
  content.fill(0x17, 6 * MiB - 4096);
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, content, 0, MiB, 0);
  fs.writeSync(fd, content, 3 * MiB, 5000, 3 * MiB);
  fs.writeSync(fd, content, 6 * MiB - 4096, 4096, 6 * MiB - 4096);
  fs.closeSync(fd);
  return content;
}

const allocated = (file: string): number => fs.statSync(file).blocks * 512;

describeIf(virshTool(), 'volume streams: virsh vol-upload / vol-download', () => {
  let vg: RunningDaemon;
  let dir: string;
  beforeAll(async () => {
    vg = await startDaemon();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-volio-'));
  });
  afterAll(async () => {
    await vg?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("libvirt's test driver serves neither call (the reference)", async () => {
    const src = path.join(dir, 'ref.img');
    fs.writeFileSync(src, 'x');
    const ref = await virsh(
      'test:///default',
      `vol-create-as default-pool r 1M ; vol-upload --pool default-pool r ${src} ; vol-download --pool default-pool r ${src}.out`,
    );
    expect(ref.out).toContain('this function is not supported by the connection driver: virStorageVolUpload');
    expect(ref.out).toContain('this function is not supported by the connection driver: virStorageVolDownload');
  });

  test('plain and --sparse round trips of a 6 MiB file with holes are byte-exact; --sparse downloads stay sparse', async () => {
    const src = path.join(dir, 'src.img');
    const content = sparseFile(src);
    const [plain, sparse, up2] = ['plain.img', 'sparse.img', 'up2.img'].map((n) => path.join(dir, n));
    const r = await virsh(
      vg.uri,
      [
        'vol-create-as default-pool a 6M',
        `vol-upload --pool default-pool a ${src}`,
        `vol-download --pool default-pool a ${plain}`,
        `vol-download --sparse --pool default-pool a ${sparse}`,
        'vol-create-as default-pool b 6M',
        `vol-upload --sparse --pool default-pool b ${src}`,
        `vol-download --sparse --pool default-pool b ${up2}`,
      ].join(' ; '),
    );
    expect(r.out).not.toContain('error');
    for (const f of [plain, sparse, up2]) expect(fs.readFileSync(f).equals(content)).toBe(true);
    expect(allocated(plain)).toBeGreaterThanOrEqual(6 * MiB);
    expect(allocated(sparse)).toBeLessThan(3 * MiB);
    expect(allocated(up2)).toBeLessThan(3 * MiB);
  });

  test('--offset/--length change only that range; a file larger than the volume is refused and changes nothing', async () => {
    const small = path.join(dir, 'small.img');
    fs.writeFileSync(small, Buffer.alloc(100, 0x61));
    const big = path.join(dir, 'big.img');
    fs.writeFileSync(big, Buffer.alloc(MiB + 1, 0x62));
    const [after1, after2] = ['after1.img', 'after2.img'].map((n) => path.join(dir, n));
    const r = await virsh(
      vg.uri,
      [
        'vol-create-as default-pool c 1M',
        `vol-upload --pool default-pool c ${small} --offset 1000 --length 100`,
        `vol-download --pool default-pool c ${after1}`,
        `vol-upload --pool default-pool c ${big}`,
        `vol-download --pool default-pool c ${after2}`,
        `vol-upload --pool default-pool c ${small} --offset 1048570 --length 100`,
      ].join(' ; '),
    );
    const want = Buffer.alloc(MiB);
    want.fill(0x61, 1000, 1100);
    expect(fs.readFileSync(after1).equals(want)).toBe(true);
    expect(r.out).toMatch(/error: cannot (send data to|close) volume c/); // which one depends on when the error arrives
    expect(r.out).toContain(`error: stream error: Too many bytes to write to stream: the upload takes at most ${MiB} bytes`);
    expect(fs.readFileSync(after2).equals(want)).toBe(true); // the refused upload left the volume as it was
    expect(r.out).toContain(`error: invalid argument: upload of 100 bytes at offset 1048570 extends past the end of volume 'c' (${MiB} bytes)`);
  });
});

describeIf(pyLibvirt(), 'volume streams: python3-libvirt', () => {
  let vg: RunningDaemon;
  beforeAll(async () => (vg = await startDaemon()));
  afterAll(async () => vg?.stop());

  test('sendAll / sparseSendAll uploads and recvAll / sparseRecvAll downloads round-trip; too many bytes is an error', async () => {
    const { stdout } = await run('/usr/bin/python3', [path.join(__dirname, 'py', 'storage_streams.py'), vg.uri], { timeout: 60000 });
    const out = JSON.parse(stdout) as Record<string, unknown[]>;
    expect(out.error).toBeUndefined();
    const [sha, len] = out.want;
    expect(out.plain).toEqual([sha, len, 0]);
    expect(out.sparse).toEqual([sha, len, 2]); // two holes told
    expect(out.sparseUpload).toEqual([sha, len, 2]);
    expect(out.tooMany).toEqual([39, 'stream error: Too many bytes to write to stream: the upload takes at most 1000 bytes']);
    const ref = await run('/usr/bin/python3', [path.join(__dirname, 'py', 'storage_streams.py'), 'test:///default'], { timeout: 60000 });
    expect(JSON.parse(ref.stdout).error).toEqual([3, 'this function is not supported by the connection driver: virStorageVolUpload']);
  });
});
