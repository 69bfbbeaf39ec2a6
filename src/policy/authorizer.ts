// SPDX-License-Identifier: Apache-2.0
// The policy seam of the dispatch pipeline: can(identity, object, permission) -> Decision.
// CasbinAuthorizer (engine.ts) implements it; AllowAllAuthorizer remains for tests that exercise other layers.
import { isReadPermission } from './vocabulary';

export interface Subject {
  user: string; // qualified by where it was proved: unix:alice, x509:admin, sasl:bob, tcp:anonymous (unprivileged/identity.ts)
  tenant: string;
  readOnly: boolean;
}

export type ObjectKind = 'connect' | 'domain' | 'network' | 'storage_pool' | 'storage_vol' | 'interface' | 'node_device';

export interface PolicyObject {
  kind: ObjectKind;
  name: string; // the object's name (a volume: POOL/NAME), or the connection's driver
  uuid?: string;
  // The object's recorded tenant ('' = none): a VM or volume of no tenant is host-level; a network, pool or volume of
  // no tenant is shared (tenants' roles may read it); interfaces and node devices are always host-level. Ignored for
  // `connect`.
  tenant?: string;
}

// Object kinds whose tenant-less objects are shared with every tenant (policy decides what a tenant may do with them).
export const SHAREABLE: ReadonlySet<ObjectKind> = new Set(['network', 'storage_pool', 'storage_vol']);

export interface Decision {
  allowed: boolean;
  rule: string; // the rule that decided, for audit and `policy check`
}

export interface Authorizer {
  can(subject: Subject, object: PolicyObject, permission: string): Decision;
  // Changes whenever any decision may change (a policy reload); absent: decisions must not be remembered by callers.
  readonly generation?: number;
  // Settles when the first load attempt is over (loaded, or failed and denying): the daemon listens only after it.
  readonly ready?: Promise<unknown>;
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
