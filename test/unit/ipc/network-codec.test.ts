// SPDX-License-Identifier: Apache-2.0
// The NETWORK_READ / NETWORK_WRITE codecs as the helper meets them: truncated at every offset, random bytes, every
// field's rule; an undecodable request is a validation or XDR error, never anything else (the helper then hangs up).
import fc from 'fast-check';
import { XdrDecodeError, XdrReader, XdrWriter } from '../../../src/common/xdr';
import { NETWORK_READ, NETWORK_WRITE } from '../../../src/ipc/objects/network';
import { DEFAULT_NETWORK } from '../../../src/privileged/drivers/test-networks';

const actor = { user: 'x509:admin', tenant: 'acme', requestId: 'r-1', auditHead: '' };

function encode(body: Parameters<typeof NETWORK_WRITE.request.encode>[1]): Buffer {
  const w = new XdrWriter();
  NETWORK_WRITE.request.encode(w, body);
  return w.finish();
}

const decodeWrite = (b: Buffer) => {
  const r = new XdrReader(b);
  const v = NETWORK_WRITE.request.decode(r);
  r.ensureConsumed();
  return v;
};

const expected = (e: unknown): boolean => e instanceof XdrDecodeError || (e as { code?: string }).code === 'VG_ERR_IPC_VALIDATION';

test('a define request round-trips; every truncation of it is refused cleanly', () => {
  const full = encode({ action: 'define', actor, config: DEFAULT_NETWORK });
  expect(decodeWrite(full)).toEqual({ action: 'define', actor, config: DEFAULT_NETWORK });
  for (let n = 0; n < full.length; n++) {
    let err: unknown;
    try {
      decodeWrite(full.subarray(0, n));
    } catch (e) {
      err = e;
    }
    expect({ n, ok: expected(err) }).toEqual({ n, ok: true });
  }
});

test('random bytes after a valid action code decode or fail with a validation/XDR error only', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 6 }), fc.uint8Array({ maxLength: 400 }), (code, tail) => {
      const w = new XdrWriter();
      const head = encode({ action: 'start', actor, uuid: Buffer.alloc(16) });
      const actorPart = head.subarray(0, head.length - 20); // actor, then u32 action + 16-byte uuid
      w.opaqueFixed(actorPart, actorPart.length);
      w.u32(code);
      const buf = Buffer.concat([w.finish(), Buffer.from(tail)]);
      try {
        decodeWrite(buf);
      } catch (e) {
        if (!expected(e)) throw e;
      }
    }),
    { numRuns: 500 },
  );
});

test('fields the parser never produces are refused by the decoder', () => {
  const bad = [
    { ...DEFAULT_NETWORK, name: '../x' },
    { ...DEFAULT_NETWORK, bridge: { ...DEFAULT_NETWORK.bridge, name: 'br 0' } },
    { ...DEFAULT_NETWORK, ips: [{ ...DEFAULT_NETWORK.ips[0], address: '192.168.122.001' }] },
    { ...DEFAULT_NETWORK, ips: [{ ...DEFAULT_NETWORK.ips[0], family: 'ipv6' as const }] },
    { ...DEFAULT_NETWORK, forward: { ...DEFAULT_NETWORK.forward, mode: 'route' as const, natIpv6: 'yes' as const } },
    { ...DEFAULT_NETWORK, forward: { ...DEFAULT_NETWORK.forward, portStart: 10, portEnd: 5 } },
    { ...DEFAULT_NETWORK, domain: { name: 'a b', localOnly: '' as const } },
  ];
  for (const config of bad) {
    const w = new XdrWriter();
    let err: unknown;
    try {
      NETWORK_WRITE.request.encode(w, { action: 'define', actor, config });
      decodeWrite(w.finish());
    } catch (e) {
      err = e;
    }
    expect((err as { code?: string })?.code).toBe('VG_ERR_IPC_VALIDATION');
  }
  const w = new XdrWriter();
  w.u32(7);
  expect(() => NETWORK_READ.answer.decode(new XdrReader(w.finish()))).toThrow(/unknown NETWORK_READ action 7/);
});
