#!/bin/bash
# Runs virt-manager-newvm.py (the New VM wizard against a virtgate QEMU daemon) under Xvfb with a private HOME and an
# in-memory GSettings backend (no D-Bus here; no remembered answers between runs).
# usage: virt-manager-qemu.sh URI OUTDIR NAME SERIAL_LOG_DIR MARKER
set -u
OUT=$2
mkdir -p "$OUT/home"
export HOME="$OUT/home" XDG_CONFIG_HOME="$OUT/home/.config" XDG_CACHE_HOME="$OUT/home/.cache" NO_AT_BRIDGE=1 GSETTINGS_BACKEND=memory
exec xvfb-run -a -s "-screen 0 1280x900x24" /usr/bin/python3 "$(dirname "$(readlink -f "$0")")/virt-manager-newvm.py" "$@"
