# SPDX-License-Identifier: Apache-2.0
# A stand-in for journald's native socket: AF_UNIX SOCK_DGRAM; each datagram is written base64 on its own line.
import base64, os, socket, sys
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)  # the front end runs as an unprivileged user
with open(out, 'ab', buffering=0) as f:
    print('ready', flush=True)
    while True:
        f.write(base64.b64encode(s.recv(1 << 20)) + b'\n')
