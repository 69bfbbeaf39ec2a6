// SPDX-License-Identifier: Apache-2.0
// Exit statuses the daemons and their supervisor agree on.

// sysexits.h EX_CONFIG: a configuration problem or a listening address that is taken. A restart cannot fix either, so
// `virtgate start` does not restart a process that exits with it (systemd: RestartPreventExitStatus=78).
export const EXIT_CONFIG = 78;
