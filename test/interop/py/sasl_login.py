# SPDX-License-Identifier: Apache-2.0
# python3-libvirt openAuth with a SASL user name and password (libsasl2-modules' SCRAM/PLAIN plugins on the client side).
import json
import sys

import libvirt

uri, user, password = sys.argv[1], sys.argv[2], sys.argv[3]


def creds(credentials, _data):
    for c in credentials:
        if c[0] == libvirt.VIR_CRED_AUTHNAME:
            c[4] = user
        elif c[0] == libvirt.VIR_CRED_PASSPHRASE:
            c[4] = password
    return 0


libvirt.registerErrorHandler(lambda *_: None, None)
try:
    conn = libvirt.openAuth(uri, [[libvirt.VIR_CRED_AUTHNAME, libvirt.VIR_CRED_PASSPHRASE], creds, None], 0)
    names = sorted(d.name() for d in conn.listAllDomains(0))
    conn.close()
    print(json.dumps({"ok": True, "names": names}))
except libvirt.libvirtError as e:
    print(json.dumps({"ok": False, "code": e.get_error_code(), "message": str(e)}))
