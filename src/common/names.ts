// SPDX-License-Identifier: Apache-2.0
// The one definition of tenant, user and role names: the policy parser, the dispatcher and the helper all check with it,
// so no name can be accepted on one side of the boundary and refused (or truncated) on the other. Pure.

export const NAME_LIMITS = {
  TENANT_MAX: 64, // bytes; the helper's IPC field and the domain XML metadata hold this much
  USER_MAX: 64, // bytes of the name itself; an identity adds its source prefix (`x509:`) in front
} as const;

// 1-64 characters of [A-Za-z0-9_.@+-], not starting with . @ + or -.
const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,63}$/;

export const NAME_RULE = '1-64 characters of [A-Za-z0-9_.@+-], not starting with . @ + or -';

// Tenant names: '' means none (host level); otherwise NAME_RULE.
export function isTenantName(t: string): boolean {
  return t === '' || NAME_RE.test(t);
}

// User names (the part after the source prefix) and role names: NAME_RULE, never empty.
export function isUserName(u: string): boolean {
  return NAME_RE.test(u);
}

// Where an identity was proved. Policy subjects carry it (`x509:admin`), so a certificate can never act as a local
// account or a SASL user of the same name.
export const IDENTITY_SOURCES = ['unix', 'x509', 'sasl', 'tcp'] as const;
export type IdentitySource = (typeof IDENTITY_SOURCES)[number];

// `unix:alice` -> { source: 'unix', name: 'alice' }; null when it is not a qualified identity.
export function parseQualified(s: string): { source: IdentitySource; name: string } | null {
  const i = s.indexOf(':');
  if (i < 0) return null;
  const source = s.slice(0, i) as IdentitySource;
  const name = s.slice(i + 1);
  if (!(IDENTITY_SOURCES as readonly string[]).includes(source) || !isUserName(name)) return null;
  return { source, name };
}

export const qualify = (source: IdentitySource, name: string): string => `${source}:${name}`;

export const isIdentitySource = (s: string): s is IdentitySource => (IDENTITY_SOURCES as readonly string[]).includes(s);

// The prefix and name of anything written `prefix:name`, known source or not (for the policy parser's messages); null without ':'.
export function splitQualified(s: string): { prefix: string; name: string } | null {
  const i = s.indexOf(':');
  return i < 0 ? null : { prefix: s.slice(0, i), name: s.slice(i + 1) };
}
