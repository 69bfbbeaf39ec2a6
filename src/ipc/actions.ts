// SPDX-License-Identifier: Apache-2.0
// Ops grouped by object with a typed action enum [the DOMAIN_CONTROL pattern, openssh's mm_answer_* per object], pure.
// One group is one op pair of the IPC table (e.g. NETWORK_READ, NETWORK_WRITE); its body starts with the action's
// u32 code, then that action's own strict codec. A write group's request carries the actor (who asked, for the
// helper's journal) before the action. Answers echo the action code, so the front end can check the pairing.
import { VG_ERR_IPC_VALIDATION } from '../common/errors';
import type { XdrReader, XdrWriter } from '../common/xdr';
import { type Actor, type Codec, actorCodec } from './shared';

export interface ActionSpec<Req extends object, Ans extends object> {
  readonly code: number;
  readonly request: Codec<Req>;
  readonly answer: Codec<Ans>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Actions = Record<string, ActionSpec<any, any>>;
type ReqOf<S> = S extends ActionSpec<infer R, object> ? R : never;
type AnsOf<S> = S extends ActionSpec<object, infer A> ? A : never;

// The body of a group's request: the action's name (its wire code is the table's) and that action's fields.
export type ActionRequest<T extends Actions, W extends boolean> = {
  [K in keyof T & string]: { action: K } & (W extends true ? { actor: Actor } : unknown) & ReqOf<T[K]>;
}[keyof T & string];
export type ActionAnswer<T extends Actions> = { [K in keyof T & string]: { action: K } & AnsOf<T[K]> }[keyof T & string];
// One action's request fields (without `action`, and without `actor` for a write group) and answer.
export type ActionArgs<T extends Actions, K extends keyof T> = ReqOf<T[K]>;
export type ActionResult<T extends Actions, K extends keyof T> = { action: K } & AnsOf<T[K]>;

export const action = <Req extends object, Ans extends object>(code: number, request: Codec<Req>, answer: Codec<Ans>): ActionSpec<Req, Ans> =>
  Object.freeze({ code, request, answer });

export interface ActionGroup<T extends Actions, W extends boolean> {
  readonly name: string;
  readonly write: W;
  readonly actions: T;
  readonly request: Codec<ActionRequest<T, W>>;
  readonly answer: Codec<ActionAnswer<T>>;
}

// A group whose action codes repeat, or are not small non-negative integers, is a bug: refuse to load.
export function actionGroup<T extends Actions, W extends boolean>(name: string, write: W, actions: T): ActionGroup<T, W> {
  const byCode = new Map<number, [string, ActionSpec<object, object>]>();
  for (const [n, s] of Object.entries(actions)) {
    if (!Number.isInteger(s.code) || s.code < 0 || s.code > 0xffff || byCode.has(s.code))
      throw new Error(`IPC group ${name}: bad action code ${s.code} (${n})`);
    byCode.set(s.code, [n, s]);
  }
  const specOf = (r: XdrReader, field: string): [string, ActionSpec<object, object>] => {
    const code = r.u32(field);
    const found = byCode.get(code);
    if (!found) throw VG_ERR_IPC_VALIDATION(field, `unknown ${name} action ${code}`);
    return found;
  };
  const named = (n: string): ActionSpec<object, object> => {
    const s = actions[n];
    if (!s) throw VG_ERR_IPC_VALIDATION('action', `unknown ${name} action ${JSON.stringify(n)}`);
    return s;
  };
  const request: Codec<ActionRequest<T, W>> = {
    encode(w: XdrWriter, v) {
      const body = v as { action: string; actor?: Actor };
      if (write) actorCodec.encode(w, body.actor!);
      const s = named(body.action);
      w.u32(s.code);
      s.request.encode(w, v);
    },
    decode(r: XdrReader) {
      const actor = write ? actorCodec.decode(r) : undefined;
      const [n, s] = specOf(r, `${name}.action`);
      const fields = s.request.decode(r);
      return (write ? { ...fields, action: n, actor } : { ...fields, action: n }) as ActionRequest<T, W>;
    },
  };
  const answer: Codec<ActionAnswer<T>> = {
    encode(w: XdrWriter, v) {
      const s = named((v as { action: string }).action);
      w.u32(s.code);
      s.answer.encode(w, v);
    },
    decode(r: XdrReader) {
      const [n, s] = specOf(r, `${name}.answer.action`);
      return { ...s.answer.decode(r), action: n } as ActionAnswer<T>;
    },
  };
  return Object.freeze({ name, write, actions, request, answer });
}

// `{ action: 'define', ... }` -> 'define'; for logs, journal lines and audit records.
export const actionOf = (body: unknown): string | undefined => {
  const a = (body as { action?: unknown } | null)?.action;
  return typeof a === 'string' ? a : undefined;
};
