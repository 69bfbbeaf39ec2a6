#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Builds selinux/virtgate.pp, links it against Debian's base.pp and asserts the boundary rules with sesearch (no SELinux kernel needed).
# Needs: checkpolicy semodule-utils selinux-policy-dev setools (apt-get install), and base.pp: $BASE_PP, or fetched with
# `apt-get download selinux-policy-default` + dpkg-deb -x. Exit 0 = all assertions hold, 1 = a failure (a failed download of
# base.pp included: that is no missing tool), 77 = tools missing. `check.sh --probe` only checks the tools (77 or 0).
set -eu
# VIRTGATE_SELINUX_SRC: check another copy of the sources (the test uses it to prove a bad rule fails).
here=${VIRTGATE_SELINUX_SRC:-$(cd "$(dirname "$0")" && pwd)}
for t in make checkmodule semodule_package semodule_link semodule_expand sesearch seinfo bunzip2; do
  command -v "$t" >/dev/null 2>&1 || { echo "SKIP: $t not found; apt-get install checkpolicy semodule-utils selinux-policy-dev setools bzip2"; exit 77; }
done
[ -f /usr/share/selinux/devel/Makefile ] || { echo "SKIP: /usr/share/selinux/devel/Makefile missing; apt-get install selinux-policy-dev"; exit 77; }
[ "${1:-}" = --probe ] && exit 0

work=$(mktemp -d "${TMPDIR:-/tmp}/virtgate-selinux.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$here/virtgate.te" "$here/virtgate.fc" "$here/virtgate.if" "$work/"
cd "$work"

# 1. refpolicy-style build (m4 macros -> checkmodule -> semodule_package).
make -s -f /usr/share/selinux/devel/Makefile virtgate.pp >build.log 2>&1 || { cat build.log; echo "FAIL: module does not build"; exit 1; }

# 2. base.pp: checkmodule does not check that required types exist; only linking against the real base does.
if [ -n "${BASE_PP:-}" ]; then
  cp "$BASE_PP" base.pp
elif [ -f /usr/share/selinux/default/base.pp ]; then
  cp /usr/share/selinux/default/base.pp base.pp
elif [ -f /usr/share/selinux/default/base.pp.bz2 ]; then
  bunzip2 -kc /usr/share/selinux/default/base.pp.bz2 >base.pp
else
  (apt-get download selinux-policy-default >download.log 2>&1 && dpkg-deb -x selinux-policy-default_*.deb root) ||
    { cat download.log; echo "FAIL: cannot fetch selinux-policy-default for base.pp (apt-get download failed, log above; or set BASE_PP=/path/base.pp)"; exit 1; }
  bunzip2 -kc root/usr/share/selinux/default/base.pp.bz2 >base.pp
fi
semodule_link -o linked.lnk base.pp virtgate.pp >link.log 2>&1 || { cat link.log; echo "FAIL: semodule_link"; exit 1; }
semodule_expand linked.lnk policy.bin || { echo "FAIL: semodule_expand"; exit 1; }

fail=0
count() { sesearch "$@" policy.bin | grep -c '^\(allow\|type_transition\)' || true; }
expect() { # name, want, got
  if [ "$3" = "$2" ]; then echo "ok   $1: $3"; else echo "FAIL $1: want $2, got $3"; fail=1; fi
}
at_most() {
  if [ "$3" -le "$2" ]; then echo "ok   $1: $3 (<= $2)"; else echo "FAIL $1: want <= $2, got $3"; fail=1; fi
}

# Goal 9: front -> helper is exactly one rule, and it is unix_stream_socket connectto.
expect 'front->helper allow rules' 1 "$(count -A -s virtgate_front_t -t virtgate_helper_t)"
expect 'front->helper rule is connectto' 1 "$(count -A -s virtgate_front_t -t virtgate_helper_t -c unix_stream_socket -p connectto)"
expect 'helper->front allow rules' 0 "$(count -A -s virtgate_helper_t -t virtgate_front_t)"
expect 'front capability rules' 0 "$(count -A -s virtgate_front_t -c capability)"
expect 'front capability2 rules' 0 "$(count -A -s virtgate_front_t -c capability2)"
at_most 'helper capability rules' 3 "$(count -A -s virtgate_helper_t -c capability)"
# The helper runs --jitless: no W+X memory; and it cannot open a network socket of its own.
expect 'helper execmem' 0 "$(count -A -s virtgate_helper_t -c process -p execmem)"
expect 'helper own tcp/udp sockets' 0 "$(( $(count -A -s virtgate_helper_t -t virtgate_helper_t -c tcp_socket) + $(count -A -s virtgate_helper_t -t virtgate_helper_t -c udp_socket) ))"
# Audit log: append-only for the front end.
for p in write rename unlink setattr; do
  expect "front audit log file $p" 0 "$(count -A -s virtgate_front_t -t virtgate_audit_log_t -c file -p $p)"
done
expect 'front audit log append' 1 "$(count -A -s virtgate_front_t -t virtgate_audit_log_t -c file -p append)"
# The front end cannot touch the helper's state.
expect 'front -> helper state' 0 "$(count -A -s virtgate_front_t -t virtgate_helper_var_lib_t)"
# systemd (init_t) enters each domain when it runs the labelled executable.
expect 'init -> helper transition' 1 "$(count -T -s init_t -t virtgate_helper_exec_t -c process)"
expect 'init -> front transition' 1 "$(count -T -s init_t -t virtgate_front_exec_t -c process)"
# Type=notify: each process may send its readiness datagram to systemd (init_t), as sd_notify does.
# (Granted by the module's init_daemon_domain and logging rules together with base's `daemon` attribute: at least one.)
for d in helper front; do
  n=$(count -A -s virtgate_${d}_t -t init_t -c unix_dgram_socket -p sendto)
  if [ "$n" -ge 1 ]; then echo "ok   $d -> init notify: $n"; else echo "FAIL $d -> init notify: no sendto rule"; fail=1; fi
done

# Issue 13: the launcher, QEMU and their bridges.
# helper -> launcher: connect to its socket, use the tap descriptors it answers with; nothing else, and nobody else.
expect 'helper->launcher allow rules' 2 "$(count -A -s virtgate_helper_t -t virtgate_launcher_t)"
expect 'helper->launcher connectto' 1 "$(count -A -s virtgate_helper_t -t virtgate_launcher_t -c unix_stream_socket -p connectto)"
expect 'launcher->helper connectto' 0 "$(count -A -s virtgate_launcher_t -t virtgate_helper_t -c unix_stream_socket -p connectto)"
expect 'front->launcher allow rules' 0 "$(count -A -s virtgate_front_t -t virtgate_launcher_t)"
expect 'front->launcher socket' 0 "$(count -A -s virtgate_front_t -t virtgate_launcher_runtime_t)"
expect 'front->qemu allow rules' 0 "$(count -A -s virtgate_front_t -t virtgate_qemu_t)"
expect 'init -> launcher transition' 1 "$(count -T -s init_t -t virtgate_launcher_exec_t -c process)"
# The launcher's capabilities: exactly what it keeps (src/sandbox/index.ts) plus dac_override for its cgroup subtree.
caps=$(sesearch -A -s virtgate_launcher_t -c capability policy.bin | sed -n 's/.*{ \(.*\) };/\1/p' | tr ' ' '\n' | sort | tr '\n' ' ')
expect 'launcher capabilities' 'dac_override kill net_admin setgid setpcap setuid sys_admin sys_chroot ' "$caps"
expect 'launcher capability2 rules' 0 "$(count -A -s virtgate_launcher_t -c capability2)"
# Only the launcher enters QEMU's domain (a dynamic transition set by setpriv, through no_new_privs).
expect 'transitions into qemu' 1 "$(count -A -t virtgate_qemu_t -c process -p transition)"
expect 'launcher->qemu transition' 1 "$(count -A -s virtgate_launcher_t -t virtgate_qemu_t -c process -p transition)"
expect 'launcher->qemu nnp_transition' 1 "$(count -A -s virtgate_launcher_t -t virtgate_qemu_t -c process2 -p nnp_transition)"
expect 'qemu type transitions' 0 "$(count -T -s virtgate_qemu_t -c process)"
# QEMU: no capability, runs no program (no transition, no execute_no_trans), connects to no socket by path, ptraces
# nothing, touches no virtgate state or runtime directory.
expect 'qemu capability rules' 0 "$(( $(count -A -s virtgate_qemu_t -c capability) + $(count -A -s virtgate_qemu_t -c capability2) ))"
expect 'qemu process transition' 0 "$(count -A -s virtgate_qemu_t -c process -p transition)"
expect 'qemu dyntransition' 0 "$(count -A -s virtgate_qemu_t -c process -p dyntransition)"
expect 'qemu execute_no_trans' 0 "$(count -A -s virtgate_qemu_t -c file -p execute_no_trans)"
expect 'qemu connectto' 0 "$(count -A -s virtgate_qemu_t -c unix_stream_socket -p connectto)"
expect 'qemu ptrace' 0 "$(count -A -s virtgate_qemu_t -c process -p ptrace)"
for t in virtgate_helper_var_lib_t virtgate_var_lib_t virtgate_runtime_t virtgate_launcher_runtime_t virtgate_conf_t virtgate_audit_log_t; do
  expect "qemu -> $t" 0 "$(count -A -s virtgate_qemu_t -t $t)"
done
expect 'qemu -> helper fd use' 1 "$(count -A -s virtgate_qemu_t -t virtgate_helper_t -c fd -p use)"
# sVirt: the per-VM categories bind QEMU (mcs_constrained_type); the launcher may set any categories at exec.
if seinfo -a mcs_constrained_type -x policy.bin | grep -qw virtgate_qemu_t; then echo "ok   qemu is mcs_constrained_type"; else echo "FAIL qemu is not mcs_constrained_type"; fail=1; fi
if seinfo -a mcssetcats -x policy.bin | grep -qw virtgate_launcher_t; then echo "ok   launcher is mcssetcats"; else echo "FAIL launcher is not mcssetcats"; fail=1; fi

echo "module: $(wc -c <virtgate.pp) bytes; rules with source virtgate_helper_t: $(count -A -s virtgate_helper_t), virtgate_front_t: $(count -A -s virtgate_front_t), virtgate_launcher_t: $(count -A -s virtgate_launcher_t), virtgate_qemu_t: $(count -A -s virtgate_qemu_t)"
exit $fail
