// SPDX-License-Identifier: Apache-2.0
// Annotated hex for golden bytes: comments in /* */ are ignored, whitespace too.
export function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\/\*.*?\*\//g, '').replace(/\s+/g, ''), 'hex');
}
