#!/bin/bash
# Runs virt-manager (debug log on) against URI under Xvfb, opens the connection's details window, and saves a
# screenshot of its Virtual Networks and Storage tabs. usage: virt-manager.sh URI OUTDIR
set -u
URI=$1
OUT=$2
mkdir -p "$OUT"
export HOME="$OUT/home" XDG_CONFIG_HOME="$OUT/home/.config" XDG_CACHE_HOME="$OUT/home/.cache" NO_AT_BRIDGE=1
mkdir -p "$HOME"
SHOT="/usr/bin/python3 $(dirname "$(readlink -f "$0")")/screenshot.py"
export SHOT
exec xvfb-run -a -s "-screen 0 1024x700x24" bash -c '
  virt-manager --no-fork --debug --connect "$0" --show-host-summary > "$1/virt-manager-debug.log" 2>&1 &
  VM=$!
  for i in $(seq 1 60); do xdotool search --name "Connection Details" >/dev/null 2>&1 && break; sleep 0.5; done
  sleep 4
  xdotool mousemove 175 49 click 1; sleep 3; $SHOT "$1/networks.png"
  xdotool mousemove 286 49 click 1; sleep 3; $SHOT "$1/storage.png"
  sleep 2
  kill $VM; wait $VM 2>/dev/null
  exit 0
' "$URI" "$OUT"
