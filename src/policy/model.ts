// SPDX-License-Identifier: Apache-2.0
// The Casbin model (RBAC with tenants) and the built-in roles, as text: the model file shipped by default, pure.
//
// Request  r = sub, dom, otn, obj, act
//   sub  the authenticated user, qualified by where it was proved (`unix:alice`, `x509:admin`)
//   dom  the session's tenant ('' = none chosen)
//   otn  the object's tenant (a VM's recorded tenant; for `host`, the session's tenant)
//   obj  `vm:NAME` for a domain, `host` for the connection/host
//   act  a libvirt permission, `object:perm` (vocabulary.ts)
// Policy   p = sub, dom, obj, act   (sub: a qualified user or a role; dom: a tenant or `*`; obj and act: globs)
// Roles    g = user, role, tenant   (user always a qualified identity: roles do not nest; tenant `*`: the role holds in every tenant, across tenants)
//
// A rule applies (1) through a membership in the session's tenant, to objects of that same tenant, or (2) through a
// `*` membership (host-wide roles such as host-admin), to objects of any tenant. Deny by default: allow-only effect.
// `r.sub != p.sub` in (2): Casbin's g() is true for a name and itself, which must not make a direct rule host-wide.
export const MODEL_TEXT = `# virtgate RBAC model: libvirt permissions per user, per tenant, per VM (see src/policy/model.ts)
[request_definition]
r = sub, dom, otn, obj, act

[policy_definition]
p = sub, dom, obj, act

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = ((r.dom != "" && r.otn == r.dom && g(r.sub, p.sub, r.dom)) || (r.sub != p.sub && g(r.sub, p.sub, "*"))) && (p.dom == "*" || p.dom == r.otn) && globMatch(r.obj, p.obj) && globMatch(r.act, p.act)
`;

const viewer = ['host connect:getattr', 'host connect:read', 'host connect:search_domains', 'vm:* domain:getattr', 'vm:* domain:read'];
const operator = [...viewer, 'vm:* domain:start', 'vm:* domain:stop', 'vm:* domain:suspend', 'vm:* domain:init_control', 'vm:* domain:reset'];
const owner = ['host connect:getattr', 'host connect:read', 'host connect:search_domains', 'vm:* domain:*'];

// Built-in roles, loaded before the site policy (which may extend them, never remove from them).
export const BUILTIN_ROLES: Readonly<Record<string, readonly string[]>> = {
  viewer,
  operator,
  owner,
  'host-admin': ['* *'],
};

export const BUILTIN_POLICY: string = Object.entries(BUILTIN_ROLES)
  .flatMap(([role, rules]) => rules.map((r) => `p, ${role}, *, ${r.split(' ').join(', ')}`))
  .join('\n');

// The policy `npm start` uses when HOME/etc/policy.csv does not exist: local root and the `admin` certificate are host admins.
export const DEFAULT_POLICY = `# virtgate policy (CSV): see README "Access control". Built-in roles: viewer, operator, owner, host-admin.
# g, USER, ROLE, TENANT     membership (TENANT * = every tenant; host-admin is meant for *)
# p, SUBJECT, TENANT, OBJECT, PERMISSION   extra rule (OBJECT: vm:NAME-GLOB or host; PERMISSION: libvirt name or glob)
# USER is where the identity comes from: unix:NAME (local account), x509:NAME (client certificate), sasl:NAME (SASL
# login), tcp:anonymous (plain TCP). A bare NAME is unix:NAME (in p rows: unless NAME is a role).
g, unix:root, host-admin, *
g, x509:admin, host-admin, *
`;

// The README's example tenant policy.
export const EXAMPLE_POLICY = `${DEFAULT_POLICY}g, alice, owner, acme
g, bob, operator, acme
g, carol, viewer, globex
`;
