// SPDX-License-Identifier: Apache-2.0
// Save and restore to a client-named file (virDomainSave*, virDomainRestore*, virDomainSaveImage*) and core dumps
// (virDomainCoreDump*): actions of the
// DOMAIN_WRITE group, codes 160..191, pure. The root helper opens the file, so the path is checked here on both sides:
// absolute, normalised, bounded. Where a tenant's session may point it is the helper's rule (drivers/save-images.ts).
// All four are writes (journaled, audited): even reading an image is root opening a file the client named.
import { VG_ERR_IPC_VALIDATION } from '../../common/errors';
import type { XdrReader, XdrWriter } from '../../common/xdr';
import { action } from '../actions';
import { type Codec, checkRange, nothing, rec, summaryCodec, uuidCodec } from '../shared';
import { type DomainDef, domainDefCodec } from './domain-def';

export const SAVE_PATH_MAX = 4096; // PATH_MAX

// Why `p` is not a path the helper may be asked to open, or null. Normalised: no empty, `.` or `..` component (so
// no `//`, no trailing `/`); the text is the path the kernel resolves, nothing is rewritten.
export function savePathProblem(p: string): string | null {
  if (p.length === 0) return 'is empty';
  if (Buffer.byteLength(p) > SAVE_PATH_MAX) return `is longer than ${SAVE_PATH_MAX} bytes`;
  if (p.includes('\0')) return 'contains NUL';
  if (!p.startsWith('/')) return 'is not absolute';
  if (p === '/') return 'names no file';
  const parts = p.slice(1).split('/');
  if (parts.some((c) => c === '' || c === '.' || c === '..')) return "is not normalised (empty, '.' or '..' component)";
  return null;
}

const pathField: Codec<string> = {
  encode: (w: XdrWriter, v: string) => void w.string(v, SAVE_PATH_MAX),
  decode: (r: XdrReader) => {
    const p = r.string(SAVE_PATH_MAX, 'path');
    const why = savePathProblem(p);
    if (why) throw VG_ERR_IPC_VALIDATION('path', why);
    return p;
  },
};

const boolField: Codec<boolean> = {
  encode: (w: XdrWriter, v: boolean) => void w.u32(v ? 1 : 0),
  decode: (r: XdrReader) => checkRange(r.u32('crash'), 0, 1, 'crash') === 1,
};

export const SAVE_ACTIONS = {
  saveTo: action(160, rec<{ uuid: Buffer; path: string }>({ uuid: uuidCodec, path: pathField }), nothing),
  restoreFrom: action(161, rec<{ path: string }>({ path: pathField }), summaryCodec),
  // The image's definition (the front end writes the XML) and saveImageDefine's replacement (parsed by the front end).
  saveImageRead: action(162, rec<{ path: string }>({ path: pathField }), rec<{ def: DomainDef }>({ def: domainDefCodec })),
  saveImageDefine: action(163, rec<{ path: string; def: DomainDef }>({ path: pathField, def: domainDefCodec }), nothing),
  // A core dump to a new file under the same path rules; crash: stop the domain afterwards (VIR_DUMP_CRASH).
  coreDump: action(164, rec<{ uuid: Buffer; path: string; crash: boolean }>({ uuid: uuidCodec, path: pathField, crash: boolField }), nothing),
};
