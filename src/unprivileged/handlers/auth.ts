// SPDX-License-Identifier: Apache-2.0
// AUTH_LIST and libvirt's SASL exchange (AUTH_SASL_INIT/START/STEP): the only calls a connection may make before login.
import { VG_ERR_AUTH_FAILED } from '../../common/errors';
import { AuthType } from '../../protocol/constants';
import { P, type ProcDef } from '../../protocol/procs/remote';
import type { Attempt, AuthService } from '../auth';
import { type StepResult, mechanisms, startSession } from '../sasl';
import type { Session } from '../session';

export interface AuthContext {
  session: Session;
  auth: AuthService | null; // null when no listener uses SASL
}

type Entry = [ProcDef, (ctx: AuthContext, args: never) => Promise<unknown>];

const EMPTY = Buffer.alloc(0);

function evidenceOf(s: Session): { method: 'sasl'; source: string; evidence: Record<string, unknown> } {
  const e = s.evidence;
  return { method: 'sasl', source: e?.source ?? `session:${s.id}`, evidence: e ? { ...e } : {} };
}

// The attempt (a turn for one user, see AuthService) each connection's exchange holds, from the message naming the user.
const attempts = new WeakMap<Session, Attempt>();

async function fail(ctx: AuthContext, reason: string): Promise<never> {
  const s = ctx.session;
  const attempt = attempts.get(s) ?? null;
  attempts.delete(s);
  s.sasl = null;
  s.saslOffered = null;
  await ctx.auth?.failed({ ...evidenceOf(s), user: '', reason }, attempt);
  throw VG_ERR_AUTH_FAILED(); // libvirtd's words: the client learns nothing about why
}

// One SASL message: a message naming a user waits for that user's turn (the delays, one attempt per user at a time)
// before anything in it is looked at; a locked user's exchange runs on and fails at the end like a wrong password.
async function step(ctx: AuthContext, data: Buffer | null): Promise<{ complete: number; nil: number; data: Buffer }> {
  const s = ctx.session;
  const auth = ctx.auth!;
  const sasl = s.sasl!;
  if (data !== null && !attempts.has(s)) {
    const name = sasl.claimedUser(data);
    if (name !== null) {
      const attempt = await auth.turn(evidenceOf(s).source, name, () => !s.closed);
      if (!attempt) throw VG_ERR_AUTH_FAILED(); // the connection closed while waiting: nothing was read
      attempts.set(s, attempt);
      if (s.sasl !== sasl) return fail(ctx, 'SASL exchange restarted while waiting for its turn');
    }
  }
  return finish(ctx, await sasl.step(data));
}

async function finish(ctx: AuthContext, r: StepResult): Promise<{ complete: number; nil: number; data: Buffer }> {
  const s = ctx.session;
  if (r.kind === 'failure') return fail(ctx, r.reason);
  const reply = { nil: r.data === null ? 1 : 0, data: r.data ?? EMPTY };
  if (r.kind === 'continue') return { complete: 0, ...reply };
  const attempt = attempts.get(s) ?? null;
  const refused = ctx.auth!.refusal(attempt, r.user);
  if (refused) return fail(ctx, refused);
  attempts.delete(s);
  s.sasl = null;
  s.saslOffered = null;
  s.identity = { ...(s.evidence ?? { source: `session:${s.id}` }), user: r.user, method: 'sasl', saslUser: r.user };
  ctx.auth!.succeeded({ ...evidenceOf(s), user: r.user }, attempt);
  return { complete: 1, ...reply };
}

const saslRequired = (s: Session): boolean => s.authTypes.includes(AuthType.SASL);

export const authHandlers: Entry[] = [
  [P.AUTH_LIST, async (ctx: AuthContext) => ({ types: ctx.session.authTypes })],
  [
    P.AUTH_SASL_INIT,
    async (ctx: AuthContext) => {
      const s = ctx.session;
      if (!ctx.auth || !saslRequired(s) || s.identity || s.saslOffered) return fail(ctx, 'SASL init out of sequence');
      s.saslOffered = mechanisms(s.transport === 'tls');
      return { mechlist: s.saslOffered.join(',') };
    },
  ],
  [
    P.AUTH_SASL_START,
    async (ctx: AuthContext, args: { mech: string; nil: number; data: Buffer }) => {
      const s = ctx.session;
      if (!ctx.auth || !s.saslOffered || s.sasl || !s.saslOffered.includes(args.mech))
        return fail(ctx, `SASL start with mechanism '${args.mech.slice(0, 32)}'`);
      s.sasl = startSession(args.mech, ctx.auth.users);
      return step(ctx, args.nil ? null : args.data);
    },
  ],
  [
    P.AUTH_SASL_STEP,
    async (ctx: AuthContext, args: { nil: number; data: Buffer }) => {
      const s = ctx.session;
      if (!ctx.auth || !s.sasl) return fail(ctx, 'SASL step without start');
      return step(ctx, args.nil ? null : args.data);
    },
  ],
];
