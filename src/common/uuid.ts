// SPDX-License-Identifier: Apache-2.0
// UUID text forms shared by both processes and the client, pure.

export function uuidToString(uuid: Buffer): string {
  const h = uuid.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// virUUIDParse: 32 hex digits, dashes anywhere between them, surrounding blanks ignored. null if not a UUID.
export function uuidFromString(s: string): Buffer | null {
  const t = s.trim();
  const hex = t.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex) || t.startsWith('-') || t.endsWith('-')) return null;
  return Buffer.from(hex, 'hex');
}
