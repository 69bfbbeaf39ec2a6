// SPDX-License-Identifier: Apache-2.0
// The VNC proxy's RFB codec: the outer VeNCrypt X509None handshake and the inner no-auth one, as annotated bytes,
// split at every offset, and every way a peer can break them.
import { RfbNoAuthClient, type Step, VencryptServerHandshake, securityResult } from '../../../src/unprivileged/rfb';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const V38 = Buffer.from('RFB 003.008\n', 'latin1');

// What the client sends before TLS, and what the server answers to each part.
const CLIENT = [
  V38, // version
  hex('13'), // security type 19, VeNCrypt
  hex('00 02'), // VeNCrypt 0.2
  hex('00000104'), // subtype 260, X509None
];
const SERVER_ANSWERS = [
  hex('01 13'), // one security type: 19
  hex('00 02'), // VeNCrypt 0.2
  hex('00 01 00000104'), // ok, one subtype: 260
  hex('01'), // subtype accepted -> TLS
];

function drive(h: VencryptServerHandshake, chunks: Buffer[]): { out: Buffer; last: Step } {
  const out: Buffer[] = [];
  let last: Step = { send: [], next: 'more' };
  for (const c of chunks) {
    last = h.push(c);
    out.push(...last.send);
    if (last.next !== 'more') break;
  }
  return { out: Buffer.concat(out), last };
}

describe('VencryptServerHandshake (outer side)', () => {
  test('greets with RFB 003.008 and answers each client message with the golden bytes', () => {
    const h = new VencryptServerHandshake();
    expect(h.greeting()).toEqual(V38);
    CLIENT.forEach((msg, i) => {
      const s = h.push(msg);
      expect(Buffer.concat(s.send).toString('hex')).toBe(SERVER_ANSWERS[i].toString('hex'));
      expect(s.next).toBe(i === CLIENT.length - 1 ? 'tls' : 'more');
    });
  });

  test('the same bytes split at every offset (and byte by byte) give the same answers', () => {
    const all = Buffer.concat(CLIENT);
    const want = Buffer.concat(SERVER_ANSWERS).toString('hex');
    for (let cut = 0; cut <= all.length; cut++) {
      const { out, last } = drive(new VencryptServerHandshake(), [all.subarray(0, cut), all.subarray(cut)]);
      expect([cut, out.toString('hex'), last.next]).toEqual([cut, want, 'tls']);
    }
    const bytes = [...all].map((b) => Buffer.from([b]));
    const { out, last } = drive(new VencryptServerHandshake(), bytes);
    expect([out.toString('hex'), last.next]).toEqual([want, 'tls']);
  });

  test('a truncated handshake never reaches TLS', () => {
    const all = Buffer.concat(CLIENT);
    for (let n = 0; n < all.length; n++) expect(drive(new VencryptServerHandshake(), [all.subarray(0, n)]).last.next).toBe('more');
  });

  test.each([
    ['RFB 3.3 client', [Buffer.from('RFB 003.003\n')], '', /client protocol version "RFB 003.003\?"/],
    ['an HTTP request', [Buffer.from('GET / HTTP/1.1\r\n')], '', /client protocol version "GET \/ HTTP\/1"/],
    ['security type None instead of VeNCrypt', [V38, hex('01')], '0113' + securityResult('x').subarray(0, 4).toString('hex'), /security type 1/],
    ['VeNCrypt 0.1', [V38, hex('13'), hex('0001')], '0113' + '0002' + '01', /VeNCrypt version 0\.1/],
    ['subtype X509Plain (262)', [V38, hex('13'), hex('0002'), hex('00000106')], '0113000200010000010400', /subtype 262/],
    ['subtype TLSNone (257): no certificate', [V38, hex('13'), hex('0002'), hex('00000101')], '0113000200010000010400', /subtype 257/],
  ])('refused: %s', (_what, chunks, outPrefix, why) => {
    const { out, last } = drive(new VencryptServerHandshake(), chunks);
    expect(last.next).toBe('fail');
    expect(last.reason).toMatch(why);
    expect(out.toString('hex').startsWith(outPrefix)).toBe(true);
  });

  test('a wrong security type gets a 3.8 SecurityResult with a reason', () => {
    const { out } = drive(new VencryptServerHandshake(), [V38, hex('02')]);
    const r = out.subarray(2);
    expect(r.readUInt32BE(0)).toBe(1);
    expect(r.subarray(8, 8 + r.readUInt32BE(4)).toString()).toBe('only VeNCrypt X509None is offered');
  });

  test('bytes beyond the 19 of the pre-TLS handshake are refused, however they are split', () => {
    const all = Buffer.concat([...CLIENT, hex('16 03 01')]); // a ClientHello pipelined before the acceptance
    for (let cut = 0; cut <= all.length; cut++) {
      const { last } = drive(new VencryptServerHandshake(), [all.subarray(0, cut), all.subarray(cut)]);
      // Cut right after the subtype, the verdict is TLS: the proxy stops reading here and TLS gets (and refuses) the rest.
      expect([cut, last.next]).toEqual([cut, cut === 19 ? 'tls' : 'fail']);
    }
    const big = new VencryptServerHandshake().push(Buffer.alloc(1 << 20, 0x41));
    expect(big.next).toBe('fail');
    expect(big.reason).toMatch(/more than 19 bytes before TLS/);
  });

  test('after a verdict it accepts nothing more', () => {
    const h = new VencryptServerHandshake();
    drive(h, CLIENT);
    expect(h.push(hex('00')).next).toBe('fail');
  });
});

describe('securityResult', () => {
  test('ok is four zero bytes; a failure carries a printable, bounded reason', () => {
    expect(securityResult().toString('hex')).toBe('00000000');
    expect(securityResult('access denied').toString('hex')).toBe('00000001' + '0000000d' + Buffer.from('access denied').toString('hex'));
    const long = securityResult('\u0000x'.repeat(1000));
    expect(long.readUInt32BE(4)).toBe(256);
    expect(long.subarray(8).toString('latin1')).toMatch(/^(\?x)+$/);
  });
});

describe('RfbNoAuthClient (inner side, QEMU)', () => {
  // What QEMU 7.2 sends for `-vnc` without auth (measured against qemu-system-x86_64), then the start of its ServerInit.
  const QEMU = [V38, hex('01 01'), hex('00000000')];

  function run(chunks: Buffer[]): { out: Buffer; last: Step } {
    const c = new RfbNoAuthClient();
    const out: Buffer[] = [];
    let last: Step = { send: [], next: 'more' };
    for (const ch of chunks) {
      last = c.push(ch);
      out.push(...last.send);
      if (last.next !== 'more') break;
    }
    return { out: Buffer.concat(out), last };
  }

  test('answers version 3.8 and type None, then is ready with nothing left over', () => {
    const { out, last } = run(QEMU);
    expect(out.toString('hex')).toBe(V38.toString('hex') + '01');
    expect(last.next).toBe('ready');
    expect(last.rest!.length).toBe(0);
  });

  test('split at every offset; bytes after the SecurityResult are handed on', () => {
    const all = Buffer.concat([...QEMU, hex('0280 01e0')]);
    for (let cut = 0; cut <= all.length; cut++) {
      const { out, last } = run([all.subarray(0, cut), all.subarray(cut)]);
      // Cut at or after the SecurityResult's end, the verdict comes with the first chunk; the proxy passes on the next.
      const rest = Buffer.concat([last.rest!, cut >= 18 ? all.subarray(cut) : Buffer.alloc(0)]).toString('hex');
      expect([cut, out.toString('hex'), last.next, rest]).toEqual([cut, V38.toString('hex') + '01', 'ready', '028001e0']);
    }
  });

  test('picks None among several types', () => {
    expect(run([V38, hex('03 02 01 13'), hex('00000000')]).last.next).toBe('ready');
  });

  test.each([
    ['another version', [Buffer.from('RFB 003.003\n')], /version "RFB 003.003\?"/],
    ['no None type (a password is set)', [V38, hex('01 02')], /wants authentication \(types 2\)/],
    ['a refusal with its reason', [V38, hex('00 00000004'), Buffer.from('busy')], /refused: "busy"/],
    ['a failed SecurityResult', [V38, hex('0101'), hex('00000001 00000002'), Buffer.from('no')], /SecurityResult: "no"/],
  ])('fails: %s', (_what, chunks, why) => {
    const { last } = run(chunks);
    expect(last.next).toBe('fail');
    expect(last.reason).toMatch(why);
  });

  test('a refusal announcing a huge reason fails at once, without waiting for (or buffering) it', () => {
    const c = new RfbNoAuthClient();
    c.push(V38);
    const s = c.push(hex('00 7fffffff 41'));
    expect(s.next).toBe('fail');
    expect(s.reason).toMatch(/refused: "A"\.\.\./);
  });
});
