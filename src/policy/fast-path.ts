// SPDX-License-Identifier: Apache-2.0
// The built-in model's matcher, precompiled: the same decision and deciding rule as Casbin's enforceEx, without
// evaluating the matcher expression once per policy row and re-parsing every glob per call (uncached decisions went
// from ~45-140 µs to a few µs). Only used when the loaded model is the built-in one; any other model goes to Casbin.
// Exactness is tested against Casbin itself (test/unit/policy: property tests over random policies and requests).
//
//   m = ((r.dom != "" && r.otn == r.dom && g(r.sub, p.sub, r.dom)) || (r.sub != p.sub && g(r.sub, p.sub, "*")))
//       && (p.dom == "*" || p.dom == r.otn) && globMatch(r.obj, p.obj) && globMatch(r.act, p.act)
//   e = some(where (p.eft == allow))   -> the first matching row, in policy order, decides
import { Minimatch } from 'minimatch';

export interface FastRequest {
  sub: string;
  dom: string;
  otn: string;
  obj: string;
  act: string;
}

// Casbin's DefaultRoleManager(10): g(a, b, d) is a == b, or b reachable from a over at most 10 links of domain d.
const MAX_HIERARCHY = 10;
const MEMO_MAX = 4096; // glob results kept per pattern (objects are VM names: bounded, but not by us)

type Glob = (s: string) => boolean;

// Casbin's globMatch (util/builtinOperators.js): minimatch(string, pattern), with a leading `*/` trimmed to `/`.
// minimatch() is `#`-comment check + new Minimatch(pattern).match(s): the Minimatch is built once here, not per call.
function compileGlob(pattern: string): Glob {
  const p = pattern[0] === '*' && pattern[1] === '/' ? pattern.substring(1) : pattern;
  if (p.charAt(0) === '#') return () => false;
  const mm = new Minimatch(p);
  const memo = new Map<string, boolean>();
  return (s) => {
    let v = memo.get(s);
    if (v === undefined) {
      v = mm.match(s);
      if (memo.size >= MEMO_MAX) memo.clear();
      memo.set(s, v);
    }
    return v;
  };
}

interface Rule {
  index: number;
  dom: string;
  obj: Glob;
  act: Glob;
  row: string[];
}

export class FastMatcher {
  readonly #bySubject = new Map<string, Rule[]>(); // p.sub -> its rules, in policy order
  readonly #links = new Map<string, Map<string, string[]>>(); // domain -> name -> direct roles (g rows, in order)

  constructor(pRows: readonly string[][], gRows: readonly string[][]) {
    const globs = new Map<string, Glob>();
    const glob = (p: string): Glob => {
      let g = globs.get(p);
      if (!g) globs.set(p, (g = compileGlob(p)));
      return g;
    };
    pRows.forEach((row, index) => {
      const [sub, dom, obj, act] = row;
      let list = this.#bySubject.get(sub);
      if (!list) this.#bySubject.set(sub, (list = []));
      list.push({ index, dom, obj: glob(obj), act: glob(act), row: [...row] });
    });
    for (const [user, role, dom] of gRows) {
      let d = this.#links.get(dom);
      if (!d) this.#links.set(dom, (d = new Map()));
      let roles = d.get(user);
      if (!roles) d.set(user, (roles = []));
      if (!roles.includes(role)) roles.push(role);
    }
  }

  // Every name `name` is linked to in `dom`, itself included (g(x, x) holds for any x).
  #reach(name: string, dom: string): Set<string> {
    const out = new Set<string>([name]);
    const links = this.#links.get(dom);
    if (!links) return out;
    let frontier = [name];
    for (let depth = 0; depth < MAX_HIERARCHY && frontier.length > 0; depth++) {
      const next: string[] = [];
      for (const n of frontier) {
        for (const r of links.get(n) ?? []) {
          if (!out.has(r)) {
            out.add(r);
            next.push(r);
          }
        }
      }
      frontier = next;
    }
    return out;
  }

  enforce(q: FastRequest): [boolean, string[]] {
    // Subjects whose rules may apply: through the session's tenant (same tenant objects only), or host-wide (`*`).
    const subjects = q.dom !== '' && q.otn === q.dom ? this.#reach(q.sub, q.dom) : new Set<string>();
    for (const s of this.#reach(q.sub, '*')) if (s !== q.sub) subjects.add(s);
    let best: Rule | null = null;
    for (const s of subjects) {
      const rules = this.#bySubject.get(s);
      if (!rules) continue;
      for (const r of rules) {
        if (best && r.index >= best.index) break; // rules are in policy order: nothing earlier left here
        if ((r.dom === '*' || r.dom === q.otn) && r.obj(q.obj) && r.act(q.act)) {
          best = r;
          break;
        }
      }
    }
    return best ? [true, [...best.row]] : [false, []];
  }
}
