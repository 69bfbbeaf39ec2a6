// SPDX-License-Identifier: Apache-2.0
// The policy seam of the dispatch pipeline: can(identity, object, permission) -> Decision.
// CasbinAuthorizer (engine.ts) implements it; AllowAllAuthorizer remains for tests that exercise other layers.
import { isReadPermission } from './vocabulary';

export interface Subject {
  user: string; // qualified by where it was proved: unix:alice, x509:admin, sasl:bob, tcp:anonymous (unprivileged/identity.ts)
  tenant: string;
  readOnly: boolean;
}

export interface PolicyObject {
  kind: 'connect' | 'domain';
  name: string; // domain name, or the connection's driver
  uuid?: string;
  tenant?: string; // a domain's recorded tenant ('' = none); ignored for `connect`
}

export interface Decision {
  allowed: boolean;
  rule: string; // the rule that decided, for audit and `policy check`
}

export interface Authorizer {
  can(subject: Subject, object: PolicyObject, permission: string): Decision;
  // The tenants a user belongs to (for the explicit choice at connect time); undefined = no tenancy (allow-all seam).
  tenantsOf?(user: string): string[];
  mayUseTenant?(user: string, tenant: string): boolean;
}

// Everything is allowed except what a read-only connection may never do.
export class AllowAllAuthorizer implements Authorizer {
  can(subject: Subject, _object: PolicyObject, permission: string): Decision {
    if (subject.readOnly && !isReadPermission(permission)) return { allowed: false, rule: 'read-only connection' };
    return { allowed: true, rule: 'allow-all (no policy configured)' };
  }
}

export { isReadPermission } from './vocabulary';
