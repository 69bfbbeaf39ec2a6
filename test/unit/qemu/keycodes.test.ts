// SPDX-License-Identifier: Apache-2.0
// libvirt keycode sets -> QEMU qnum numbers (send-key): our own table, checked against known scancodes.
import { KeycodeError, KeycodeSet, toQnums } from '../../../src/privileged/qemu/keycodes';

describe('toQnums', () => {
  test.each([
    // [codeset, keycode, qnum]: linux KEY_* 1..88 equal set-1; extended keys are 0x80|code after E0
    [KeycodeSet.LINUX, 1, 0x01], // ESC
    [KeycodeSet.LINUX, 18, 0x12], // E
    [KeycodeSet.LINUX, 28, 0x1c], // ENTER
    [KeycodeSet.LINUX, 42, 0x2a], // LEFTSHIFT
    [KeycodeSet.LINUX, 88, 0x58], // F12
    [KeycodeSet.LINUX, 96, 0x9c], // KPENTER
    [KeycodeSet.LINUX, 97, 0x9d], // RIGHTCTRL
    [KeycodeSet.LINUX, 103, 0xc8], // UP
    [KeycodeSet.LINUX, 111, 0xd3], // DELETE
    [KeycodeSet.LINUX, 125, 0xdb], // LEFTMETA
    [KeycodeSet.XT, 0x1e, 0x1e], // A
    [KeycodeSet.ATSET1, 0x1e, 0x1e],
    [KeycodeSet.ATSET1, 0xe048, 0xc8], // E0 48: up arrow
    [KeycodeSet.USB, 0x04, 0x1e], // HID a -> A
    [KeycodeSet.USB, 0x28, 0x1c], // HID Enter
    [KeycodeSet.USB, 0xe1, 0x2a], // HID LeftShift
    [KeycodeSet.USB, 0x52, 0xc8], // HID Up
    [KeycodeSet.QNUM, 0xc8, 0xc8],
  ])('set %d key %d -> qnum %d', (set, key, want) => expect(toQnums(set, [key])).toEqual([want]));

  test('a chord keeps its order', () => expect(toQnums(KeycodeSet.LINUX, [29, 56, 111])).toEqual([0x1d, 0x38, 0xd3]));

  test.each([
    [KeycodeSet.ATSET2, 0x1c, /keycode set 'atset2' is not supported by the qemu driver/],
    [KeycodeSet.OSX, 0, /keycode set 'os_x' is not supported/],
    [KeycodeSet.WIN32, 0x41, /keycode set 'win32' is not supported/],
    [KeycodeSet.XT_KBD, 0x1e, /keycode set 'xt_kbd' is not supported/],
    [42, 1, /keycode set '42' is not supported/],
    [KeycodeSet.LINUX, 0, /cannot translate keycode 0 of set 'linux'/],
    [KeycodeSet.LINUX, 84, /cannot translate keycode 84/], // no key
    [KeycodeSet.LINUX, 200, /cannot translate keycode 200/],
    [KeycodeSet.XT, 0x57, /cannot translate keycode 87 of set 'xt'/], // F11 is not on an XT keyboard
    [KeycodeSet.ATSET1, 0xe0ff, /cannot translate/],
    [KeycodeSet.ATSET1, 0xe11d, /cannot translate/], // E1 prefix (Pause)
    [KeycodeSet.USB, 0x48, /cannot translate keycode 72 of set 'usb'/], // Pause
    [KeycodeSet.QNUM, 0x80, /cannot translate/],
  ])('set %d key %d is refused', (set, key, re) => {
    expect(() => toQnums(set, [key])).toThrow(KeycodeError);
    expect(() => toQnums(set, [key])).toThrow(re);
  });
});
