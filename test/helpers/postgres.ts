// SPDX-License-Identifier: Apache-2.0
// What a PostgreSQL test needs; the cluster itself is bench/lib/postgres.ts (the bench's fleet row starts one too).
import { PG_BIN, PG_OWNER } from '../../bench/lib/postgres';
import { type Requirement, file } from './skip';
import { localUsers } from './users';

export { PG_BIN, type RunningPostgres, startPostgres } from '../../bench/lib/postgres';

export const postgresNeeds = (): Requirement[] => [
  ...localUsers([PG_OWNER], 'runs PostgreSQL as an unprivileged user'),
  file(`${PG_BIN}/pg_ctl`, 'postgresql'),
];
