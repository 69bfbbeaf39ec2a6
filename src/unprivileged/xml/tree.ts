// SPDX-License-Identifier: Apache-2.0
// The one XML tree reader of the front end (domain, network, storage, interface and node-device XML): untrusted text
// -> checked, well-formed fast-xml-parser nodes. Each caller words the failures as libvirt does for its documents.
// Front end only: the root helper gets typed configurations, never XML text (test/unit/privileged/imports.test.ts).
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import type { VgError } from '../../common/errors';

// fast-xml-parser preserveOrder node: { tag: children, ':@'?: attrs } or { '#text': text } (or { '#comment': ... }).
export type XmlNode = Record<string, unknown>;

export interface TreeOptions {
  trimValues: boolean; // false where text is kept byte for byte (storage paths, permissions labels)
  comments: boolean; // keep comments as { '#comment': ... } nodes (skipped by every accessor below)
  maxBytes?: number; // refused before any parsing
  maxElements?: number; // '<' count cap, checked before parsing: bounds the parse time
}

// What went wrong, for the caller's libvirt wording; line and col are 1-based when known.
export type TreeProblem =
  | { kind: 'too-large'; bytes: number; max: number }
  | { kind: 'too-many'; max: number }
  | { kind: 'empty' }
  | { kind: 'dtd'; line: number }
  | { kind: 'syntax'; msg: string; line: number; col: number | null }
  | { kind: 'entity'; name: string; line: number }
  | { kind: 'roots'; count: number };

const parsers = new Map<string, XMLParser>();
function parserFor(o: TreeOptions): XMLParser {
  const key = `${o.trimValues}/${o.comments}`;
  let p = parsers.get(key);
  if (!p) {
    p = new XMLParser({
      preserveOrder: true,
      ignoreAttributes: false,
      attributeNamePrefix: '',
      parseTagValue: false,
      parseAttributeValue: false,
      trimValues: o.trimValues,
      ignoreDeclaration: true,
      ignorePiTags: true,
      processEntities: true,
      ...(o.comments ? { commentPropName: '#comment' } : {}),
    });
    parsers.set(key, p);
  }
  return p;
}

export function lineOf(xml: string, pos: number): number {
  let line = 1;
  for (let i = 0; i < pos; i++) if (xml.charCodeAt(i) === 10) line++;
  return line;
}

// The one root element of a well-formed document without DTD; `fail` turns a problem into the caller's error.
export function readXmlRoot(xml: string, o: TreeOptions, fail: (p: TreeProblem) => VgError): XmlNode {
  const bytes = Buffer.byteLength(xml);
  if (o.maxBytes !== undefined && bytes > o.maxBytes) throw fail({ kind: 'too-large', bytes, max: o.maxBytes });
  if (xml.trim() === '') throw fail({ kind: 'empty' });
  if (o.maxElements !== undefined) {
    let tags = 0;
    for (let i = xml.indexOf('<'); i !== -1 && tags <= o.maxElements * 2; i = xml.indexOf('<', i + 1)) tags++;
    if (tags > o.maxElements * 2) throw fail({ kind: 'too-many', max: o.maxElements });
  }
  // No DTDs at all: entity expansion is not something to do on untrusted input.
  const dtd = /<!(DOCTYPE|ENTITY)/i.exec(xml);
  if (dtd) throw fail({ kind: 'dtd', line: lineOf(xml, dtd.index) });
  const res = XMLValidator.validate(xml);
  if (res !== true) throw fail({ kind: 'syntax', msg: res.err.msg, line: res.err.line, col: res.err.col || null });
  const ent = /&(?!(?:amp|lt|gt|quot|apos|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});)([^;\s<&]{0,32})/.exec(xml);
  if (ent) throw fail({ kind: 'entity', name: ent[1], line: lineOf(xml, ent.index) });
  let parsed: XmlNode[];
  try {
    parsed = parserFor(o).parse(xml) as XmlNode[];
  } catch (e) {
    // The parser's own refusals (e.g. a name such as __proto__ it will not build an object from) are syntax errors too.
    throw fail({ kind: 'syntax', msg: (e as Error).message.slice(0, 200), line: 1, col: null });
  }
  const roots = parsed.filter((n) => tagOf(n) !== null);
  if (roots.length !== 1) throw fail({ kind: 'roots', count: roots.length });
  return roots[0];
}

export function tagOf(n: XmlNode): string | null {
  for (const k of Object.keys(n)) if (k !== ':@' && k !== '#text' && k !== '#comment') return k;
  return null;
}
export const kids = (n: XmlNode): XmlNode[] => (n[tagOf(n) ?? ''] as XmlNode[] | undefined) ?? [];
export const attrsOf = (n: XmlNode | undefined): Record<string, string> => (n?.[':@'] as Record<string, string> | undefined) ?? {};
export const first = (parent: XmlNode | undefined, tag: string): XmlNode | undefined => (parent ? kids(parent).find((c) => tagOf(c) === tag) : undefined);
export const all = (parent: XmlNode | undefined, tag: string): XmlNode[] => (parent ? kids(parent).filter((c) => tagOf(c) === tag) : []);
// The element's own text nodes, concatenated (what libvirt's parsers read for leaf elements); undefined: no element.
export const ownText = (n: XmlNode | undefined): string | undefined =>
  n === undefined
    ? undefined
    : kids(n)
        .map((c) => (typeof c['#text'] === 'string' ? c['#text'] : ''))
        .join('');
// XPath string(): the text of the element and all its descendants ('' for no element).
export function deepText(n: XmlNode | undefined): string {
  if (!n) return '';
  return kids(n)
    .map((c) => (typeof c['#text'] === 'string' ? c['#text'] : tagOf(c) !== null ? deepText(c) : ''))
    .join('');
}
// Elements nested deeper than `max` below `n` (n itself at `depth`).
export function tooDeep(nodes: XmlNode[], depth: number, max: number): boolean {
  if (depth > max) return true;
  for (const n of nodes) if (tagOf(n) !== null && tooDeep(kids(n), depth + 1, max)) return true;
  return false;
}
