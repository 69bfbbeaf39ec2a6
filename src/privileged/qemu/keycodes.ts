// SPDX-License-Identifier: Apache-2.0
// libvirt keycode sets -> QEMU "qnum" numbers for QMP send-key {type:'number'} (helper side). Our own table: qnum is
// the AT set-1 scancode, with E0-prefixed (extended) keys as 0x80|code; Linux KEY_* 1..83 and 86..88 equal set-1 codes.
// A codeset or key we cannot map is refused by name, never guessed.

// virKeycodeSet (libvirt's keycode.h).
export const KeycodeSet = { LINUX: 0, XT: 1, ATSET1: 2, ATSET2: 3, ATSET3: 4, OSX: 5, XT_KBD: 6, USB: 7, WIN32: 8, QNUM: 9 } as const;
const SET_NAMES = ['linux', 'xt', 'atset1', 'atset2', 'atset3', 'os_x', 'xt_kbd', 'usb', 'win32', 'qnum'];

export class KeycodeError extends Error {
  constructor(msg: string) {
    super(msg);
    this.name = 'KeycodeError';
  }
}

// Linux KEY_* codes of the extended keys -> their set-1 code after E0.
const LINUX_EXTENDED: ReadonlyMap<number, number> = new Map([
  [96, 0x1c], // KP_ENTER
  [97, 0x1d], // RIGHTCTRL
  [98, 0x35], // KPSLASH
  [100, 0x38], // RIGHTALT
  [102, 0x47], // HOME
  [103, 0x48], // UP
  [104, 0x49], // PAGEUP
  [105, 0x4b], // LEFT
  [106, 0x4d], // RIGHT
  [107, 0x4f], // END
  [108, 0x50], // DOWN
  [109, 0x51], // PAGEDOWN
  [110, 0x52], // INSERT
  [111, 0x53], // DELETE
  [125, 0x5b], // LEFTMETA
  [126, 0x5c], // RIGHTMETA
  [127, 0x5d], // COMPOSE
]);
const LINUX_PLAIN_SPECIAL: ReadonlyMap<number, number> = new Map([[99, 0x54]]); // SYSRQ: qnum 0x54 (QEMU's sysrq)

function linuxToQnum(k: number): number | null {
  if ((k >= 1 && k <= 83) || (k >= 86 && k <= 88)) return k;
  const ext = LINUX_EXTENDED.get(k);
  if (ext !== undefined) return 0x80 | ext;
  return LINUX_PLAIN_SPECIAL.get(k) ?? null;
}

// USB HID usage page 7 -> Linux KEY_*.
const USB_TO_LINUX: ReadonlyMap<number, number> = (() => {
  const m = new Map<number, number>();
  const letters = [30, 48, 46, 32, 18, 33, 34, 35, 23, 36, 37, 38, 50, 49, 24, 25, 16, 19, 31, 20, 22, 47, 17, 45, 21, 44]; // a..z
  letters.forEach((l, i) => m.set(0x04 + i, l));
  for (let i = 0; i < 10; i++) m.set(0x1e + i, 2 + i); // 1..9, 0
  const rest: [number, number][] = [
    [0x28, 28],
    [0x29, 1],
    [0x2a, 14],
    [0x2b, 15],
    [0x2c, 57],
    [0x2d, 12],
    [0x2e, 13],
    [0x2f, 26],
    [0x30, 27],
    [0x31, 43],
    [0x32, 43],
    [0x33, 39],
    [0x34, 40],
    [0x35, 41],
    [0x36, 51],
    [0x37, 52],
    [0x38, 53],
    [0x39, 58],
    [0x3a, 59],
    [0x3b, 60],
    [0x3c, 61],
    [0x3d, 62],
    [0x3e, 63],
    [0x3f, 64],
    [0x40, 65],
    [0x41, 66],
    [0x42, 67],
    [0x43, 68],
    [0x44, 87],
    [0x45, 88],
    [0x46, 99],
    [0x47, 70],
    [0x49, 110],
    [0x4a, 102],
    [0x4b, 104],
    [0x4c, 111],
    [0x4d, 107],
    [0x4e, 109],
    [0x4f, 106],
    [0x50, 105],
    [0x51, 108],
    [0x52, 103],
    [0x53, 69],
    [0x54, 98],
    [0x55, 55],
    [0x56, 74],
    [0x57, 78],
    [0x58, 96],
    [0x59, 79],
    [0x5a, 80],
    [0x5b, 81],
    [0x5c, 75],
    [0x5d, 76],
    [0x5e, 77],
    [0x5f, 71],
    [0x60, 72],
    [0x61, 73],
    [0x62, 82],
    [0x63, 83],
    [0x64, 86],
    [0x65, 127],
    [0xe0, 29],
    [0xe1, 42],
    [0xe2, 56],
    [0xe3, 125],
    [0xe4, 97],
    [0xe5, 54],
    [0xe6, 100],
    [0xe7, 126],
  ];
  for (const [u, l] of rest) m.set(u, l);
  return m;
})();

const QNUM_VALID: ReadonlySet<number> = new Set([...Array(128).keys()].map((k) => linuxToQnum(k)).filter((q): q is number => q !== null));

function one(codeset: number, k: number): number | null {
  switch (codeset) {
    case KeycodeSet.LINUX:
      return linuxToQnum(k);
    case KeycodeSet.XT: // the original XT keyboard: 83 keys, no extended ones
      return k >= 1 && k <= 83 ? k : null;
    case KeycodeSet.ATSET1: // set 1 as sent on the wire: 0xe0XX for the extended keys
      if (k >= 1 && k <= 0x58 && QNUM_VALID.has(k)) return k;
      if (k >> 8 === 0xe0 && QNUM_VALID.has(0x80 | (k & 0x7f)) && (k & 0x80) === 0) return 0x80 | (k & 0x7f);
      return null;
    case KeycodeSet.QNUM: // libvirt's "qnum"/"rfb" set is QEMU's own numbering
      return QNUM_VALID.has(k) ? k : null;
    case KeycodeSet.USB: {
      const l = USB_TO_LINUX.get(k);
      return l === undefined ? null : linuxToQnum(l);
    }
    default:
      return null;
  }
}

export const codesetName = (c: number): string => SET_NAMES[c] ?? String(c);

// Every keycode translated, or KeycodeError naming the codeset or the first key that has no QEMU number.
export function toQnums(codeset: number, keycodes: readonly number[]): number[] {
  const supported: number[] = [KeycodeSet.LINUX, KeycodeSet.XT, KeycodeSet.ATSET1, KeycodeSet.USB, KeycodeSet.QNUM];
  if (!supported.includes(codeset))
    throw new KeycodeError(`keycode set '${codesetName(codeset)}' is not supported by the qemu driver (use linux, xt, atset1, usb or qnum)`);
  return keycodes.map((k) => {
    const q = one(codeset, k);
    if (q === null) throw new KeycodeError(`cannot translate keycode ${k} of set '${codesetName(codeset)}' to a QEMU key number`);
    return q;
  });
}
