// SPDX-License-Identifier: Apache-2.0
import { FrameDecoder, SD_ID, formatRecord, frame, parseMessage, syslogHostname } from '../../../src/audit/forward-format';

const line = '{"v":1,"seq":7,"ts":"2026-01-02T03:04:05.678Z","host":"h1","kind":"denial","key":"k","prev":"p","mac":"m","x":"é"}';
const rec = { seq: 7, ts: '2026-01-02T03:04:05.678Z', host: 'h1', kind: 'denial' as const };

describe('RFC 5424 formatting', () => {
  test('header, structured data and the sealed line verbatim', () => {
    expect(formatRecord(line, rec, { resent: false })).toBe(`<84>1 2026-01-02T03:04:05.678Z h1 virtgate - audit [${SD_ID} seq="7"] ${line}`);
    expect(formatRecord(line, { ...rec, kind: 'intent' }, { resent: true })).toBe(
      `<86>1 2026-01-02T03:04:05.678Z h1 virtgate - audit [${SD_ID} seq="7" resent="1"] ${line}`,
    );
    expect(formatRecord(line, { ...rec, kind: 'outcome', outcome: { result: 'error' } }, { resent: false }).startsWith('<85>1 ')).toBe(true);
  });

  test('hostname is printable ASCII without spaces', () => {
    expect(syslogHostname('a b\u00e9')).toBe('a_b_');
    expect(syslogHostname('')).toBe('-');
    expect(syslogHostname('x'.repeat(300))).toHaveLength(255);
  });

  test('parse gives back seq, flag and the exact line', () => {
    for (const resent of [false, true]) {
      const p = parseMessage(formatRecord(line, rec, { resent }));
      expect(p).toMatchObject({ pri: 84, hostname: 'h1', seq: 7, resent, msg: line });
    }
  });

  test('other syslog traffic is not ours', () => {
    expect(parseMessage('<13>1 2026-01-02T03:04:05Z h1 sshd 12 - - hello')).toBeNull();
    expect(parseMessage('<13>1 2026-01-02T03:04:05Z h1 virtgate - audit [other@1 a="b"] x')).toBeNull();
    expect(parseMessage('Jan  2 03:04:05 h1 virtgate: old format')).toBeNull();
    expect(parseMessage('')).toBeNull();
  });

  test('a foreign SD element beside ours is skipped', () => {
    const t = `<86>1 2026-01-02T03:04:05.678Z h1 virtgate - audit [origin ip="1.2.3.4"][${SD_ID} seq="7"] ${line}`;
    expect(parseMessage(t)).toMatchObject({ seq: 7, msg: line });
  });
});

describe('RFC 5425 octet-counted framing', () => {
  const msgs = [formatRecord(line, rec, { resent: false }), formatRecord(line, { ...rec, seq: 8 }, { resent: true }), 'x'];

  test('length counts octets, not characters', () => {
    const f = frame('é');
    expect(f.toString('latin1')).toBe('2 \u00c3\u00a9');
  });

  test('decodes a stream split at every offset', () => {
    const all = Buffer.concat(msgs.map(frame));
    for (let cut = 0; cut <= all.length; cut++) {
      const d = new FrameDecoder();
      const got = [...d.push(all.subarray(0, cut)), ...d.push(all.subarray(cut))];
      expect(got).toEqual(msgs);
      expect(d.pending).toBe(0);
    }
  });

  test('byte by byte', () => {
    const d = new FrameDecoder();
    const got: string[] = [];
    for (const b of Buffer.concat(msgs.map(frame))) got.push(...d.push(Buffer.from([b])));
    expect(got).toEqual(msgs);
  });

  test('refuses bad and oversized lengths before allocating', () => {
    expect(() => new FrameDecoder().push(Buffer.from('012 x'))).toThrow(/bad frame length/);
    expect(() => new FrameDecoder().push(Buffer.from('abc x'))).toThrow(/bad frame length/);
    expect(() => new FrameDecoder(100).push(Buffer.from('101 '))).toThrow(/exceeds/);
    expect(() => new FrameDecoder().push(Buffer.from('12345678901'))).toThrow(/too long/);
  });
});
