// SPDX-License-Identifier: Apache-2.0
// The front end's CPU-map conversions for the pinning procedures (virBitmapToDataBuf / virBitmapNewData).
import { cpumapBytes, cpusOf } from '../../../src/unprivileged/handlers/domain-extra';

test('bit N of a map is bit N%8 of byte N/8, cut to maplen bytes', () => {
  expect(cpumapBytes([0, 2, 4], 1)).toEqual(Buffer.from([0x15]));
  expect(cpumapBytes([0, 9, 15], 2)).toEqual(Buffer.from([0x01, 0x82]));
  expect(cpumapBytes([3, 15], 1)).toEqual(Buffer.from([0x08])); // CPU 15 does not fit one byte: dropped, as libvirt does
  const rows = Buffer.alloc(4);
  cpumapBytes([1], 2, rows, 2);
  expect(rows).toEqual(Buffer.from([0, 0, 0x02, 0]));
});

test('a cpumap names its set bits, in order', () => {
  expect(cpusOf(Buffer.from([0x15]))).toEqual([0, 2, 4]);
  expect(cpusOf(Buffer.from([0x00, 0x80]))).toEqual([15]);
  expect(cpusOf(Buffer.alloc(3))).toEqual([]);
  for (const cpus of [[0], [7, 8], [1, 2, 3, 200]]) expect(cpusOf(cpumapBytes(cpus, 32))).toEqual(cpus);
});
