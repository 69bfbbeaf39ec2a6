// SPDX-License-Identifier: Apache-2.0
// Audit records as RFC 5424 syslog messages, framed for RFC 5425 (syslog over TLS: octet counting), and parsed back
// from a collector's file; pure (no I/O).
import type { AuditRecord } from './schema';

// SD-ID of our structured data. 32473 is the enterprise number RFC 5612 reserves for documentation: a site with its
// own Private Enterprise Number may want its own, but the verifier only needs this name to stay stable.
export const SD_ID = 'virtgate@32473';
export const APP_NAME = 'virtgate';
export const MSG_ID = 'audit';
const FACILITY_AUTHPRIV = 10; // RFC 5424 table 1: security/authorization messages
const SEV_WARNING = 4;
const SEV_NOTICE = 5;
const SEV_INFO = 6;

export interface ForwardMeta {
  resent: boolean; // this record may have reached the collector already (re-sent after a lost connection or a restart)
}

function severity(rec: Pick<AuditRecord, 'kind' | 'outcome'>): number {
  if (rec.kind === 'denial' || (rec.kind === 'auth' && rec.outcome?.result === 'error')) return SEV_WARNING;
  if (rec.outcome?.result === 'error') return SEV_NOTICE;
  return SEV_INFO;
}

// HOSTNAME is PRINTUSASCII, at most 255 (RFC 5424 6.2.4); anything else becomes '_' (the sealed line keeps the truth).
export function syslogHostname(h: string): string {
  const s = h.replace(/[^\x21-\x7e]/g, '_').slice(0, 255);
  return s || '-';
}

// One message: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG, where MSG is the sealed line byte for byte
// (verification recomputes hashes and MACs over exactly those bytes). JSON lines hold no newline or control character.
export function formatRecord(line: string, rec: Pick<AuditRecord, 'seq' | 'ts' | 'host' | 'kind' | 'outcome'>, meta: ForwardMeta): string {
  const pri = FACILITY_AUTHPRIV * 8 + severity(rec);
  const sd = `[${SD_ID} seq="${rec.seq}"${meta.resent ? ' resent="1"' : ''}]`;
  return `<${pri}>1 ${rec.ts} ${syslogHostname(rec.host)} ${APP_NAME} - ${MSG_ID} ${sd} ${line}`;
}

// RFC 5425 4.3 / RFC 6587 3.4.1: MSG-LEN SP SYSLOG-MSG, the length in octets.
export function frame(msg: string): Buffer {
  const body = Buffer.from(msg, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length} `, 'ascii'), body]);
}

// Decodes octet-counted frames from a byte stream (the test's fake collector, and the framing tests). Bounded: a
// declared length above `max` is an error before any allocation.
export class FrameDecoder {
  #buf: Buffer = Buffer.alloc(0);
  constructor(readonly max = 64 * 1024) {}

  push(chunk: Buffer): string[] {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    const out: string[] = [];
    for (;;) {
      const sp = this.#buf.indexOf(0x20);
      if (sp < 0) {
        if (this.#buf.length > 10) throw new Error('frame length field too long');
        return out;
      }
      const lenText = this.#buf.toString('ascii', 0, sp);
      if (!/^[1-9]\d{0,9}$/.test(lenText)) throw new Error(`bad frame length '${lenText.slice(0, 12)}'`);
      const len = Number(lenText);
      if (len > this.max) throw new Error(`frame of ${len} bytes exceeds ${this.max}`);
      if (this.#buf.length < sp + 1 + len) return out;
      out.push(this.#buf.toString('utf8', sp + 1, sp + 1 + len));
      this.#buf = this.#buf.subarray(sp + 1 + len);
    }
  }

  get pending(): number {
    return this.#buf.length;
  }
}

export interface ParsedMessage {
  pri: number;
  ts: string;
  hostname: string;
  app: string;
  msgid: string;
  seq: number | null; // from our SD element
  resent: boolean;
  msg: string; // the sealed line
}

const HEADER = /^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) /;
const SD_ELEMENT = /^\[([^\s\]=]+)((?: [^\s=\]]+="(?:[^"\\\]]|\\.)*")*)\]/;
const SD_PARAM = / ([^\s=\]]+)="((?:[^"\\\]]|\\.)*)"/g;

// Parses one RFC 5424 line as our forwarder writes it (and rsyslog stores it with a %rawmsg% template); null when it
// is not a virtgate audit message (other traffic in a shared collector file is skipped, not an error).
export function parseMessage(text: string): ParsedMessage | null {
  const m = HEADER.exec(text);
  if (!m) return null;
  let rest = text.slice(m[0].length);
  let seq: number | null = null;
  let resent = false;
  let ours = false;
  if (rest.startsWith('-')) rest = rest.slice(1);
  else {
    for (let el = SD_ELEMENT.exec(rest); el; el = SD_ELEMENT.exec(rest)) {
      if (el[1] === SD_ID) {
        ours = true;
        for (const p of el[2].matchAll(SD_PARAM)) {
          const v = p[2].replace(/\\(.)/g, '$1');
          if (p[1] === 'seq' && /^(0|[1-9]\d{0,15})$/.test(v)) seq = Number(v);
          else if (p[1] === 'resent') resent = v === '1';
        }
      }
      rest = rest.slice(el[0].length);
    }
  }
  if (!ours || m[4] !== APP_NAME || m[6] !== MSG_ID) return null;
  if (!rest.startsWith(' ')) return null;
  let msg = rest.slice(1);
  if (msg.startsWith('\ufeff')) msg = msg.slice(1); // a BOM some relays add
  return { pri: Number(m[1]), ts: m[2], hostname: m[3], app: m[4], msgid: m[6], seq, resent, msg };
}
