// SPDX-License-Identifier: Apache-2.0
// The policy seam of the dispatch pipeline: can(identity, object, permission) -> Decision.
// The Casbin implementation replaces AllowAllAuthorizer (issue 5); the pipeline already calls it for every permission.

export interface Subject {
  user: string;
  tenant: string;
  readOnly: boolean;
}

export interface PolicyObject {
  kind: 'connect' | 'domain';
  name: string; // domain name, or the connection's driver
  uuid?: string;
}

export interface Decision {
  allowed: boolean;
  rule: string; // the rule that decided, for audit and `policy check`
}

export interface Authorizer {
  can(subject: Subject, object: PolicyObject, permission: string): Decision;
}

// Everything is allowed except what a read-only connection may never do.
export class AllowAllAuthorizer implements Authorizer {
  can(subject: Subject, _object: PolicyObject, permission: string): Decision {
    if (subject.readOnly && !isReadPermission(permission)) return { allowed: false, rule: 'read-only connection' };
    return { allowed: true, rule: 'allow-all (no policy configured)' };
  }
}

// What a read-only socket may ever be granted, whatever the policy says.
export function isReadPermission(permission: string): boolean {
  const perm = permission.split(':')[1] ?? '';
  return perm === 'getattr' || perm === 'read' || perm.startsWith('search_');
}
