// SPDX-License-Identifier: Apache-2.0
// The few libc calls Node lacks (prctl), bound through koffi on first use (sandbox boundary).

type Prctl = (option: number, ...typedArgs: unknown[]) => number;
let prctlFn: Prctl | null = null;
let koffiMod: typeof import('koffi') | null = null;

export function koffi(): typeof import('koffi') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  koffiMod ??= require('koffi') as typeof import('koffi');
  return koffiMod;
}

// prctl(2) is variadic in glibc: every argument goes through as unsigned long, as the kernel reads them.
export function prctl(option: number, a2 = 0, a3 = 0, a4 = 0, a5 = 0): number {
  prctlFn ??= koffi().load('libc.so.6').func('int prctl(int option, ...)') as Prctl;
  const ul = 'unsigned long';
  return prctlFn(option, ul, a2, ul, a3, ul, a4, ul, a5);
}

export function errno(): number {
  return koffi().errno();
}

export const PR = {
  GET_SECCOMP: 21,
  CAPBSET_READ: 23,
  CAPBSET_DROP: 24,
  SET_NO_NEW_PRIVS: 38,
  GET_NO_NEW_PRIVS: 39,
  CAP_AMBIENT: 47,
  CAP_AMBIENT_CLEAR_ALL: 4,
} as const;

// malloc_trim(3): hands the free pages of glibc's heaps back to the system (the front end, after a burst of
// connections freed many small buffers, which glibc otherwise keeps resident). Returns false when unavailable.
let trimFn: ((pad: number) => number) | null | undefined;
export function mallocTrim(): boolean {
  try {
    trimFn ??= koffi().load('libc.so.6').func('int malloc_trim(size_t pad)') as (pad: number) => number;
    return trimFn(0) === 1;
  } catch {
    trimFn = null;
    return false;
  }
}
