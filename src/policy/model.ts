// SPDX-License-Identifier: Apache-2.0
// The Casbin model (RBAC with tenants) and the built-in roles, as text: the model file shipped by default, pure.
//
// Request  r = sub, dom, otn, obj, act
//   sub  the authenticated user, qualified by where it was proved (`unix:alice`, `x509:admin`)
//   dom  the session's tenant ('' = none chosen)
//   otn  the object's tenant (a VM's recorded tenant; for `host`, the session's tenant)
//   obj  `vm:NAME` for a domain, `net:`, `pool:`, `vol:POOL:`, `iface:`, `nodedev:` NAME for the other objects
//        (`shared:net:NAME` etc. for shared ones, decided in the session's tenant), `host` for the connection/host
//   act  a libvirt permission, `object:perm` (vocabulary.ts)
// Policy   p = sub, dom, obj, act   (sub: a qualified user or a role; dom: a tenant or `*`; obj and act: globs)
// Roles    g = user, role, tenant   (user always a qualified identity: roles do not nest; tenant `*`: the role holds in every tenant, across tenants)
//
// A rule applies (1) through a membership in the session's tenant, to objects of that same tenant, or (2) through a
// `*` membership (host-wide roles such as host-admin), to objects of any tenant. Deny by default: allow-only effect.
// `r.sub != p.sub` in (2): Casbin's g() is true for a name and itself, which must not make a direct rule host-wide.
import { isUserName } from '../common/names';

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

// Tenants read shared networks, pools and volumes (`shared:` objects: no tenant); only host admins change them.
const sharedRead = ['shared:* *:getattr', 'shared:* *:read', 'shared:* storage_pool:search_storage_vols'];
const search = ['host connect:search_domains', 'host connect:search_networks', 'host connect:search_storage_pools'];
const viewer = [
  'host connect:getattr',
  'host connect:read',
  ...search,
  'vm:* domain:getattr',
  'vm:* domain:read',
  'net:* network:getattr',
  'net:* network:read',
  'pool:* storage_pool:getattr',
  'pool:* storage_pool:read',
  'pool:* storage_pool:search_storage_vols',
  'vol:* storage_vol:getattr',
  'vol:* storage_vol:read',
  ...sharedRead,
];
const operator = [...viewer, 'vm:* domain:start', 'vm:* domain:stop', 'vm:* domain:suspend', 'vm:* domain:init_control', 'vm:* domain:reset'];
// An owner does everything to its tenant's VMs, networks, pools and volumes.
const owner = [
  'host connect:getattr',
  'host connect:read',
  ...search,
  'vm:* domain:*',
  'net:* network:*',
  'pool:* storage_pool:*',
  'vol:* storage_vol:*',
  ...sharedRead,
];

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

// Built-in memberships: local root and the `admin` certificate of `npm start`'s development PKI are host admins, plus
// the configured `hostAdmin` (`virtgate start` run by a non-root user: that user). They are added to a site policy.csv
// too, unless the file holds the line `builtin, off` (then only its own rows apply; the built-in roles always exist).
export const BUILTIN_ADMINS: readonly string[] = ['unix:root', 'x509:admin'];
export const BUILTIN_OFF = 'builtin, off';

// A starting policy.csv: the built-in host admins written out (they apply without it; see composePolicy).
export const DEFAULT_POLICY = `# virtgate policy (CSV): see README "Access control". Built-in roles: viewer, operator, owner, host-admin.
# g, USER, ROLE, TENANT     membership (TENANT * = every tenant; host-admin is meant for *)
# p, SUBJECT, TENANT, OBJECT, PERMISSION   extra rule (OBJECT: vm:NAME-GLOB, net:, pool:, vol:POOL:, iface:, nodedev:, shared:..., or host; PERMISSION: libvirt name or glob)
# USER is where the identity comes from: unix:NAME (local account), x509:NAME (client certificate), sasl:NAME (SASL
# login), tcp:anonymous (plain TCP). A bare NAME is unix:NAME (in p rows: unless NAME is a role).
# builtin, off    (a line of its own) stops adding the built-in host admins unix:root, x509:admin and the user
#                 who ran virtgate start: then only this file's rows apply
${BUILTIN_ADMINS.map((a) => `g, ${a}, host-admin, *`).join('\n')}
`;

// The README's example tenant policy.
export const EXAMPLE_POLICY = `${DEFAULT_POLICY}g, alice, owner, acme
g, bob, operator, acme
g, carol, viewer, globex
`;

export interface ComposedPolicy {
  text: string; // what the engine loads: the site rows (same line numbers), then the built-in memberships
  siteLines: number; // rules on a later line are built in
  admins: string[]; // identities the built-in memberships make host admins ([] with `builtin, off`)
}

// The one place where the site file and the built-in memberships meet: the daemon and `virtgate policy` both use it,
// so they cannot disagree. site: the file's text, or null when there is none. The `builtin, off` line is blanked (line
// numbers stay); any other `builtin` line is an error, as a typo must not silently keep or drop host admins.
export function composePolicy(site: string | null, hostAdmin = '', source = 'policy'): ComposedPolicy {
  const lines = (site ?? '').split('\n');
  let off = false;
  lines.forEach((raw, i) => {
    const f = raw.split(',').map((x) => x.trim());
    if (f[0] !== 'builtin') return;
    if (f.length !== 2 || f[1] !== 'off') throw new Error(`${source}:${i + 1}: expected '${BUILTIN_OFF}' (the only builtin line), got '${raw.trim()}'`);
    if (off) throw new Error(`${source}:${i + 1}: '${BUILTIN_OFF}' given twice`);
    off = true;
    lines[i] = '';
  });
  const admins = off ? [] : [...new Set([...BUILTIN_ADMINS, ...(hostAdmin ? [hostAdmin] : [])])];
  const body = site === null ? [] : lines;
  return {
    text: [...body, ...admins.map((a) => `g, ${a}, host-admin, *`)].join('\n') + '\n',
    siteLines: body.length,
    admins,
  };
}

// The policy identity of local uid `uid` as the front end names its unix-socket peers (src/unprivileged/users.ts):
// the first /etc/passwd name for the uid when it is a valid user name and not all digits, else the number.
export function unixIdentity(uid: number, passwd: string): string {
  for (const line of passwd.split('\n')) {
    const f = line.split(':');
    if (f.length >= 3 && /^\d+$/.test(f[2]) && Number(f[2]) === uid) return `unix:${isUserName(f[0]) && !/^\d+$/.test(f[0]) ? f[0] : uid}`;
  }
  return `unix:${uid}`;
}
