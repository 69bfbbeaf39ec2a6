// SPDX-License-Identifier: Apache-2.0
// Issue 9 item 10 as the attacker would try it: with everything the front end's user can read and write (the log, the
// sealing state, the local anchor), a script run as that user rewrites, deletes, truncates and replaces the audit log,
// re-sealing with every key it holds; `virtgate audit verify --cross-check` (run as root, with the verification key
// and the root helper's journal) must report each variant.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type RunningDaemon, ROOT, startDaemon } from '../helpers/daemon';
import { type Result, asUser, exec, ids, localUsers } from '../helpers/users';
import { describeIf, virshTool } from '../helpers/skip';

const FRONT = 'vgfront';
const NEEDS = [...localUsers([FRONT], 'attacks the audit log as the front end’s user'), virshTool()];

// The attacker's tool: our own sealing code (he can read it), the sealing state he can read, the log he can write.
const ATTACK = `
const fs = require('node:fs');
const path = require('node:path');
const { sealRecord, lineHash } = require(${JSON.stringify(path.join(ROOT, 'build', 'src', 'audit', 'schema.js'))});
const [home, variant] = process.argv.slice(2);
const log = path.join(home, 'log', 'audit.log');
const sealFile = path.join(home, 'keys', 'audit.key');
const anchorFile = sealFile + '.anchor';
const out = {};
try { fs.readFileSync(path.join(home, 'lib', 'audit-verify.key')); out.verifyKey = 'READ'; } catch (e) { out.verifyKey = e.code; }
const state = JSON.parse(fs.readFileSync(sealFile, 'utf8'));
const key = Buffer.from(state.key, 'base64');
const keyId = state.seedId + '.' + state.epoch;
const parse = (l) => JSON.parse(l);
const strip = (r) => ({ kind: r.kind, requestId: r.requestId, who: r.who, source: r.source, what: r.what, decision: r.decision, outcome: r.outcome, event: r.event });
// Re-seals records from index i on with the key he holds, so the hash chain and MACs are consistent again.
function reseal(recs, from) {
  const lines = [];
  let prev = from === 0 ? '0'.repeat(64) : null;
  recs.forEach((r, i) => {
    if (i < from) { lines.push(r.__line); prev = lineHash(r.__line); return; }
    const line = sealRecord(strip(r), { seq: i, ts: r.ts, host: r.host, keyId, key, prev });
    lines.push(line);
    prev = lineHash(line);
  });
  return lines;
}
function writeAnchor(lines) {
  const last = parse(lines[lines.length - 1]);
  const { hmacHex } = require(${JSON.stringify(path.join(ROOT, 'build', 'src', 'audit', 'schema.js'))});
  const body = JSON.stringify({ log: 'audit.log', seq: last.seq, hash: lineHash(lines[lines.length - 1]), key: keyId });
  const text = body.slice(0, -1) + ',"mac":"' + hmacHex(key, 'anchor\\0' + body) + '"}';
  fs.writeFileSync(anchorFile, text.padEnd(255, ' ') + '\\n');
}
const recs = fs.readFileSync(log, 'utf8').split('\\n').filter(Boolean).map((l) => Object.assign(parse(l), { __line: l }));
const firstIntent = recs.findIndex((r) => r.kind === 'intent');
let lines;
if (variant === 'rewrite') {
  recs[firstIntent].who.user = 'somebody-else';
  lines = reseal(recs, firstIntent);
} else if (variant === 'delete') {
  recs.splice(firstIntent, 2);
  lines = reseal(recs, firstIntent);
} else if (variant === 'truncate') {
  lines = recs.slice(0, firstIntent + 3).map((r) => r.__line);
} else if (variant === 'replace') {
  const fresh = [{ kind: 'event', event: { name: 'daemon-start', detail: { pid: 1 } } }].map((r) => Object.assign(r, { ts: new Date().toISOString(), host: 'h' }));
  lines = reseal(fresh, 0);
} else if (variant === 'delete-all') {
  for (const f of [log, sealFile, anchorFile]) fs.rmSync(f, { force: true });
  console.log(JSON.stringify(out));
  process.exit(0);
}
fs.writeFileSync(log, lines.join('\\n') + '\\n');
writeAnchor(lines);
console.log(JSON.stringify(out));
`;

describeIf(NEEDS, 'audit history against the front end’s privileges', () => {
  let vg: RunningDaemon;
  let home: string;
  let pristine: string;
  const cli = (...args: string[]): Promise<Result> => exec([process.execPath, path.join(ROOT, 'bin', 'virtgate.js'), ...args]);
  const verify = (): Promise<Result> => cli('audit', 'verify', '--home', home, '--cross-check', path.join(home, 'lib', 'helper-journal.log'));

  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-forge-'));
    fs.chmodSync(home, 0o755);
    vg = await startDaemon({ home });
    const uri = `test+unix:///default?socket=${vg.sock}`;
    for (let i = 0; i < 6; i++) expect((await exec(['virsh', '-c', uri, 'setmem', 'test', String(1048576 + i * 1024)])).rc).toBe(0);
    await vg.stop();
    // What the front end's user owns when it runs unprivileged (start.ts --front-user chowns exactly these).
    const { uid, gid } = ids(FRONT);
    for (const dir of ['log', 'keys']) {
      execFileSync('chown', ['-R', `${uid}:${gid}`, path.join(home, dir)]);
    }
    fs.writeFileSync(path.join(home, 'attack.js'), ATTACK, { mode: 0o644 });
    pristine = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-forge-copy-'));
    execFileSync('cp', ['-a', path.join(home, 'log'), path.join(home, 'keys'), pristine]);
  });
  afterAll(() => {
    for (const dir of [home, pristine]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    for (const dir of ['log', 'keys']) {
      fs.rmSync(path.join(home, dir), { recursive: true, force: true });
      execFileSync('cp', ['-a', path.join(pristine, dir), home]);
    }
  });

  test('untouched, the log verifies and cross-checks', async () => {
    const v = await verify();
    expect(v.out).toMatch(/^ok: .*\n.*ok: cross-check: all 6 writes/s);
    expect(v.rc).toBe(0);
  });

  test.each([
    ['rewrite', /FAILED \((cross-check|edited|forged)\)/],
    ['delete', /FAILED \((cross-check|deleted|edited|forged)\)/],
    ['truncate', /truncated/],
    ['replace', /FAILED/],
    ['delete-all', /FAILED|no such file/],
  ])('%s, re-sealed with every key the front end holds: reported', async (variant, expected) => {
    const r = await exec([...asUser(FRONT, home), process.execPath, path.join(home, 'attack.js'), home, variant]);
    expect(r.err).toBe('');
    expect(JSON.parse(r.out)).toEqual({ verifyKey: 'EACCES' }); // the verification key is out of his reach
    const v = await verify();
    process.stdout.write(`audit forgery '${variant}': verify --cross-check exit ${v.rc}\n${v.out}${v.err}`);
    expect(v.rc).not.toBe(0);
    expect(v.out + v.err).toMatch(expected);
    // Whatever verify alone says, the helper's anchors catch every variant.
    expect(v.out + v.err).toMatch(/cross-check|no such file|FAILED \((edited|forged|deleted|truncated|unanchored)\)/);
  });
});
