// SPDX-License-Identifier: Apache-2.0
// qcow2 headers (helper side, untrusted bytes): a pure, bounds-checked parser of what decides which files QEMU would
// reach (backing file, external data file), and createQcow2, which writes a new empty image so the helper never execs
// qemu-img. Layout: QEMU's docs/interop/qcow2.txt; all fields big-endian.
import * as fs from 'node:fs';

export const QCOW2_MAGIC = 0x514649fb; // 'QFI\xfb'
export const EXT = {
  END: 0x00000000,
  BACKING_FORMAT: 0xe2792aca,
  FEATURE_TABLE: 0x6803f857,
  BITMAPS: 0x23852875,
  FULL_DISK_ENCRYPTION: 0x0537be77,
  EXTERNAL_DATA_FILE: 0x44415441, // 'DATA'
} as const;
export const INCOMPAT = { DIRTY: 1n, CORRUPT: 2n, EXTERNAL_DATA_FILE: 4n, COMPRESSION_TYPE: 8n, EXTENDED_L2: 16n } as const;
const KNOWN_INCOMPAT = INCOMPAT.DIRTY | INCOMPAT.CORRUPT | INCOMPAT.EXTERNAL_DATA_FILE | INCOMPAT.COMPRESSION_TYPE | INCOMPAT.EXTENDED_L2;

const V2_HEADER = 72; // bytes of a version 2 header; version 3 adds 32 (+ optional fields up to header_length)
const V3_HEADER_MIN = 104;
const MIN_CLUSTER_BITS = 9; // QEMU's own bounds (block/qcow2.h)
const MAX_CLUSTER_BITS = 21;
const BACKING_NAME_MAX = 1023; // QEMU refuses longer backing file names
const EXT_NAME_MAX = 1023; // a backing format or data file name longer than this is not one QEMU writes
const MAX_EXTENSIONS = 256; // far above the handful QEMU defines; a header of thousands is hostile

export interface Qcow2Header {
  version: 2 | 3;
  clusterBits: number;
  size: bigint; // virtual disk size in bytes
  cryptMethod: number;
  incompatible: bigint; // v2: 0
  headerLength: number;
  backingFile: string | null; // raw name as stored (UTF-8)
  backingFormat: string | null; // from the backing format extension
  externalDataFile: string | null; // from the external data file extension
  extensions: number[]; // extension types in order (END excluded)
  featureNames: FeatureName[]; // from the feature name table, for messages only
}

export interface FeatureName {
  type: 'incompatible' | 'compatible' | 'autoclear';
  bit: number;
  name: string;
}
const FEATURE_TYPES = ['incompatible', 'compatible', 'autoclear'] as const;
const FEATURE_ENTRY = 48; // u8 type, u8 bit, char name[46] (NUL-padded)

// A malformed or hostile header: `why` says what is wrong, for the caller's message.
export class Qcow2FormatError extends Error {
  constructor(readonly why: string) {
    super(`qcow2 header: ${why}`);
    this.name = 'Qcow2FormatError';
  }
}

const bad = (why: string): never => {
  throw new Qcow2FormatError(why);
};

const utf8 = new TextDecoder('utf-8', { fatal: true });
function text(buf: Buffer, off: number, len: number, what: string): string {
  if (off + len > buf.length) bad(`${what} (${len} bytes at offset ${off}) lies beyond the ${buf.length} bytes read`);
  try {
    return utf8.decode(buf.subarray(off, off + len));
  } catch {
    return bad(`${what} is not valid UTF-8`);
  }
}

export function looksLikeQcow2(buf: Buffer): boolean {
  return buf.length >= 4 && buf.readUInt32BE(0) === QCOW2_MAGIC;
}

// Parses the header and its extensions from the first bytes of an image (the caller reads at most the first cluster:
// QEMU keeps header, extensions and backing name there). Never reads outside `buf`, never allocates by a length from
// the image beyond a slice of `buf`, and every loop is bounded by `buf.length`.
export function parseQcow2Header(buf: Buffer): Qcow2Header {
  if (buf.length < V2_HEADER) bad(`${buf.length} bytes, shorter than a qcow2 header (${V2_HEADER})`);
  if (buf.readUInt32BE(0) !== QCOW2_MAGIC) bad('no qcow2 magic');
  const v = buf.readUInt32BE(4);
  if (v !== 2 && v !== 3) bad(`version ${v} is not 2 or 3`);
  const version = v as 2 | 3;
  const backingOffset = buf.readBigUInt64BE(8);
  const backingSize = buf.readUInt32BE(16);
  const clusterBits = buf.readUInt32BE(20);
  if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) bad(`cluster_bits ${clusterBits} outside [${MIN_CLUSTER_BITS}, ${MAX_CLUSTER_BITS}]`);
  const clusterSize = 2 ** clusterBits;
  const size = buf.readBigUInt64BE(24);
  const cryptMethod = buf.readUInt32BE(32);
  let incompatible = 0n;
  let headerLength = V2_HEADER;
  if (version === 3) {
    if (buf.length < V3_HEADER_MIN) bad(`${buf.length} bytes, shorter than a version 3 header (${V3_HEADER_MIN})`);
    incompatible = buf.readBigUInt64BE(72);
    headerLength = buf.readUInt32BE(100);
    if (headerLength < V3_HEADER_MIN || headerLength % 8 !== 0) bad(`header_length ${headerLength} is below ${V3_HEADER_MIN} or not a multiple of 8`);
    if (headerLength > clusterSize || headerLength > buf.length) bad(`header_length ${headerLength} exceeds the first cluster or the bytes read`);
  }

  let backingFile: string | null = null;
  if (backingOffset !== 0n) {
    if (backingSize === 0) bad('backing file offset set with an empty name');
    if (backingSize > BACKING_NAME_MAX) bad(`backing file name of ${backingSize} bytes (QEMU's limit is ${BACKING_NAME_MAX})`);
    if (backingOffset < BigInt(headerLength) || backingOffset + BigInt(backingSize) > BigInt(clusterSize))
      bad(`backing file name at offset ${backingOffset} (${backingSize} bytes) is not between the header and the end of the first cluster`);
    backingFile = text(buf, Number(backingOffset), backingSize, 'backing file name');
  }

  // Extensions: from the header's end to the backing name (or the end of the first cluster), each 8-aligned.
  const extEnd = Math.min(backingOffset !== 0n ? Number(backingOffset) : clusterSize, buf.length);
  let backingFormat: string | null = null;
  let externalDataFile: string | null = null;
  const extensions: number[] = [];
  const featureNames: FeatureName[] = [];
  let off = headerLength;
  for (;;) {
    if (off + 8 > extEnd) {
      // A v2 image may end its header with no extension area at all (QEMU stops at the cluster's end as well).
      if (version === 2 && off === headerLength) break;
      bad(`header extensions run past offset ${extEnd} without an end marker`);
    }
    const type = buf.readUInt32BE(off);
    const len = buf.readUInt32BE(off + 4);
    off += 8;
    if (type === EXT.END) break;
    if (extensions.length >= MAX_EXTENSIONS) bad(`more than ${MAX_EXTENSIONS} header extensions`);
    if (len > extEnd - off) bad(`header extension 0x${type.toString(16)} of ${len} bytes runs past offset ${extEnd}`);
    if (type === EXT.BACKING_FORMAT || type === EXT.EXTERNAL_DATA_FILE) {
      const what = type === EXT.BACKING_FORMAT ? 'backing format' : 'external data file name';
      if (len > EXT_NAME_MAX) bad(`${what} of ${len} bytes`);
      const s = text(buf, off, len, what);
      if (type === EXT.BACKING_FORMAT) {
        if (backingFormat !== null) bad('two backing format extensions');
        backingFormat = s;
      } else {
        if (externalDataFile !== null) bad('two external data file extensions');
        externalDataFile = s;
      }
    }
    if (type === EXT.FEATURE_TABLE) {
      for (let e = off; e + FEATURE_ENTRY <= off + len; e += FEATURE_ENTRY) {
        const t = FEATURE_TYPES[buf[e]];
        if (t === undefined || buf[e + 1] > 63) continue; // an entry we cannot place: it only names things
        const raw = buf.subarray(e + 2, e + FEATURE_ENTRY);
        const nul = raw.indexOf(0);
        featureNames.push({
          type: t,
          bit: buf[e + 1],
          name: raw
            .subarray(0, nul < 0 ? raw.length : nul)
            .toString('latin1')
            .replace(/[^\x20-\x7e]/g, '?'),
        });
      }
    }
    extensions.push(type);
    off += Math.ceil(len / 8) * 8; // len <= extEnd - off < 2^21: no overflow; padding may reach extEnd exactly
  }
  // Checked after the extensions so the message can use the image's own name for the bit (QEMU does the same).
  const unknown = incompatible & ~KNOWN_INCOMPAT;
  if (unknown !== 0n) {
    const named = featureNames.filter((f) => f.type === 'incompatible' && (unknown >> BigInt(f.bit)) & 1n).map((f) => `'${f.name}'`);
    bad(`unknown incompatible feature bits 0x${unknown.toString(16)}${named.length ? ` (${named.join(', ')})` : ''}`);
  }
  return { version, clusterBits, size, cryptMethod, incompatible, headerLength, backingFile, backingFormat, externalDataFile, extensions, featureNames };
}

export interface CreateQcow2Options {
  backingFile?: string; // stored as written: the caller decides what a valid name is (disk.ts refuses others on open)
  backingFormat?: 'raw' | 'qcow2';
  // VIR_STORAGE_VOL_CREATE_PREALLOC_METADATA (virt-install asks for it): every L2 table and data cluster allocated
  // up front (the data clusters stay sparse holes reading as zeros), as `qemu-img create -o preallocation=metadata`.
  preallocMetadata?: boolean;
}

const CLUSTER_BITS = 16; // 64 KiB, QEMU's default
const CLUSTER = 1 << CLUSTER_BITS;
const L2_ENTRIES = CLUSTER / 8;
const REFCOUNT_ORDER = 4; // 16-bit refcounts, QEMU's default
export const QCOW2_MAX_SIZE = 64n * 2n ** 40n; // 64 TiB: an L1 table of 1 MiB (16 clusters)
// Metadata preallocation writes one 64 KiB L2 table per 512 MiB: capped so one create writes at most 32 MiB.
export const QCOW2_PREALLOC_MAX_SIZE = 256n * 2n ** 30n;
const REFS_PER_BLOCK = CLUSTER / 2;
const COPIED = 1n << 63n; // QCOW_OFLAG_COPIED: refcount exactly 1, writable in place
const HEADER_LENGTH = 112; // v3 with the compression type byte, as qemu-img writes it

// Writes an empty qcow2 v3 image of `sizeBytes` (a multiple of 512) into the empty regular file `fd`: header, one
// refcount table cluster, one refcount block, the L1 table; every data cluster unallocated. Same layout as
// `qemu-img create -f qcow2` (header at 0, refcount table at 64 KiB, refcount block at 128 KiB, L1 at 192 KiB).
export function createQcow2(fd: number, sizeBytes: bigint | number, opts: CreateQcow2Options = {}): void {
  const size = BigInt(sizeBytes);
  if (size <= 0n || size % 512n !== 0n || size > QCOW2_MAX_SIZE)
    throw new RangeError(`qcow2 size ${size} must be a positive multiple of 512 up to ${QCOW2_MAX_SIZE}`);
  const st = fs.fstatSync(fd);
  if (!st.isFile() || st.size !== 0) throw new RangeError('createQcow2 writes into an empty regular file only');
  const { backingFile, backingFormat } = opts;
  if ((backingFile === undefined) !== (backingFormat === undefined)) throw new RangeError('a backing file needs its format, and only with one');

  const l1Entries = Number((size + BigInt(CLUSTER * L2_ENTRIES) - 1n) / BigInt(CLUSTER * L2_ENTRIES));
  const l1Clusters = Math.max(1, Math.ceil((l1Entries * 8) / CLUSTER));
  if (opts.preallocMetadata) {
    if (size > QCOW2_PREALLOC_MAX_SIZE) throw new RangeError(`metadata preallocation is limited to ${QCOW2_PREALLOC_MAX_SIZE} bytes`);
    preallocLayout(fd, size, l1Entries, l1Clusters, opts);
    return;
  }
  const rtOffset = CLUSTER;
  const rbOffset = 2 * CLUSTER;
  const l1Offset = 3 * CLUSTER;
  const usedClusters = 3 + l1Clusters; // all within the one refcount block (32768 clusters)

  const { header, length: off } = qcow2Header(size, l1Entries, l1Offset, rtOffset, 1, opts);

  const rt = Buffer.alloc(8);
  rt.writeBigUInt64BE(BigInt(rbOffset), 0);
  const rb = Buffer.alloc(usedClusters * 2);
  for (let i = 0; i < usedClusters; i++) rb.writeUInt16BE(1, i * 2);

  fs.writeSync(fd, header, 0, off, 0);
  fs.writeSync(fd, rt, 0, rt.length, rtOffset);
  fs.writeSync(fd, rb, 0, rb.length, rbOffset);
  // The L1 table is all zeros: extending the file to its end is enough (QEMU reads past EOF as zeros, but qemu-img
  // check wants the clusters it counts to exist).
  fs.ftruncateSync(fd, l1Offset + l1Clusters * CLUSTER);
}

// The header cluster: v3, 64 KiB clusters, 16-bit refcounts, the backing format extension and name when given.
function qcow2Header(
  size: bigint,
  l1Entries: number,
  l1Offset: number,
  rtOffset: number,
  rtClusters: number,
  opts: CreateQcow2Options,
): { header: Buffer; length: number } {
  const { backingFile, backingFormat } = opts;
  const header = Buffer.alloc(CLUSTER);
  header.writeUInt32BE(QCOW2_MAGIC, 0);
  header.writeUInt32BE(3, 4);
  header.writeUInt32BE(CLUSTER_BITS, 20);
  header.writeBigUInt64BE(size, 24);
  header.writeUInt32BE(0, 32); // no encryption
  header.writeUInt32BE(l1Entries, 36);
  header.writeBigUInt64BE(BigInt(l1Offset), 40);
  header.writeBigUInt64BE(BigInt(rtOffset), 48);
  header.writeUInt32BE(rtClusters, 56); // refcount table clusters
  header.writeUInt32BE(0, 60); // snapshots
  header.writeBigUInt64BE(0n, 64);
  header.writeBigUInt64BE(0n, 72); // incompatible: none
  header.writeBigUInt64BE(0n, 80); // compatible: none
  header.writeBigUInt64BE(0n, 88); // autoclear: none
  header.writeUInt32BE(REFCOUNT_ORDER, 96);
  header.writeUInt32BE(HEADER_LENGTH, 100);
  header.writeUInt8(0, 104); // compression type zlib
  let off = HEADER_LENGTH;
  if (backingFile !== undefined && backingFormat !== undefined) {
    const fmt = Buffer.from(backingFormat, 'utf8');
    header.writeUInt32BE(EXT.BACKING_FORMAT, off);
    header.writeUInt32BE(fmt.length, off + 4);
    fmt.copy(header, off + 8);
    off += 8 + Math.ceil(fmt.length / 8) * 8;
  }
  off += 8; // END extension: type 0, length 0 (already zero)
  if (backingFile !== undefined) {
    const name = Buffer.from(backingFile, 'utf8');
    if (name.length === 0 || name.length > BACKING_NAME_MAX || name.includes(0)) throw new RangeError('backing file name must be 1..1023 bytes without NUL');
    header.writeBigUInt64BE(BigInt(off), 8);
    header.writeUInt32BE(name.length, 16);
    name.copy(header, off);
    off += name.length;
  }

  return { header, length: off };
}

// Layout with every cluster allocated: header, refcount table, refcount blocks, L1, the L2 tables, then the data
// clusters (holes). The counts depend on each other (more clusters need more refcount blocks): iterate to a fixpoint.
function preallocLayout(fd: number, size: bigint, l1Entries: number, l1Clusters: number, opts: CreateQcow2Options): void {
  const dataClusters = Number((size + BigInt(CLUSTER) - 1n) / BigInt(CLUSTER));
  let refBlocks = 1;
  let rtClusters = 1;
  let total = 0;
  for (;;) {
    total = 1 + rtClusters + refBlocks + l1Clusters + l1Entries + dataClusters;
    const needBlocks = Math.ceil(total / REFS_PER_BLOCK);
    const needRt = Math.ceil((needBlocks * 8) / CLUSTER);
    if (needBlocks === refBlocks && needRt === rtClusters) break;
    refBlocks = needBlocks;
    rtClusters = needRt;
  }
  const rtOffset = CLUSTER;
  const rbFirst = 1 + rtClusters;
  const l1First = rbFirst + refBlocks;
  const l2First = l1First + l1Clusters;
  const dataFirst = l2First + l1Entries;
  const { header, length } = qcow2Header(size, l1Entries, l1First * CLUSTER, rtOffset, rtClusters, opts);
  fs.writeSync(fd, header, 0, length, 0);
  const rt = Buffer.alloc(rtClusters * CLUSTER);
  for (let i = 0; i < refBlocks; i++) rt.writeBigUInt64BE(BigInt((rbFirst + i) * CLUSTER), i * 8);
  fs.writeSync(fd, rt, 0, rt.length, rtOffset);
  for (let i = 0; i < refBlocks; i++) {
    const rb = Buffer.alloc(CLUSTER);
    const covered = Math.min(REFS_PER_BLOCK, total - i * REFS_PER_BLOCK);
    for (let c = 0; c < covered; c++) rb.writeUInt16BE(1, c * 2);
    fs.writeSync(fd, rb, 0, CLUSTER, (rbFirst + i) * CLUSTER);
  }
  const l1 = Buffer.alloc(l1Clusters * CLUSTER);
  for (let j = 0; j < l1Entries; j++) l1.writeBigUInt64BE(BigInt((l2First + j) * CLUSTER) | COPIED, j * 8);
  fs.writeSync(fd, l1, 0, l1.length, l1First * CLUSTER);
  const l2 = Buffer.alloc(CLUSTER);
  for (let j = 0; j < l1Entries; j++) {
    l2.fill(0);
    for (let k = 0; k < L2_ENTRIES; k++) {
      const data = j * L2_ENTRIES + k;
      if (data >= dataClusters) break;
      l2.writeBigUInt64BE(BigInt((dataFirst + data) * CLUSTER) | COPIED, k * 8);
    }
    fs.writeSync(fd, l2, 0, CLUSTER, (l2First + j) * CLUSTER);
  }
  fs.ftruncateSync(fd, total * CLUSTER);
}
