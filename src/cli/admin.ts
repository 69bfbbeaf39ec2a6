// SPDX-License-Identifier: Apache-2.0
// Administration subcommands (pki, user, policy, audit, vm): one table, so each module adds one line here.
import { auditMain } from './audit';
import { installMain } from './install';
import { pkiMain } from './pki';
import { policyMain } from './policy';
import { userMain } from './user';
import { vmMain } from './vm';

export interface AdminIo {
  stdout(s: string): void;
  stderr(s: string): void;
  env: NodeJS.ProcessEnv;
}

type AdminMain = (args: string[], io: AdminIo) => number | Promise<number>;

const ADMIN: Record<string, AdminMain> = {
  pki: pkiMain,
  user: userMain,
  policy: policyMain,
  audit: auditMain,
  vm: vmMain,
  install: installMain,
};

export function isAdminCommand(name: string): boolean {
  return Object.hasOwn(ADMIN, name);
}

export async function runAdmin(name: string, args: string[], io: AdminIo): Promise<number> {
  return ADMIN[name](args, io);
}
