// SPDX-License-Identifier: Apache-2.0
// The name the policy knows a session by: the proven user, qualified by where it was proved, so that a certificate,
// a SASL login and a local account of the same name are three different subjects (`x509:root` is not `unix:root`).
import { type IdentitySource, qualify } from '../common/names';
import type { Identity } from './session';

const SOURCE_OF: Readonly<Record<Identity['method'], IdentitySource>> = {
  peercred: 'unix',
  x509: 'x509',
  sasl: 'sasl',
  none: 'tcp',
};

// '' (nobody: matches no rule) before authentication.
export function policyUser(identity: Identity | null | undefined): string {
  if (!identity) return '';
  return qualify(SOURCE_OF[identity.method], identity.user);
}
