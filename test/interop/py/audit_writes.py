# SPDX-License-Identifier: Apache-2.0
# Every write procedure through python3-libvirt, on VM NAME (define -> ... -> undefine, then createXML -> destroy);
# each step's result printed as JSON, {"step": 0} or {"step": libvirt error code}, so a denied run still goes to the end.
import json
import sys

import libvirt

uri, name = sys.argv[1], sys.argv[2]
libvirt.registerErrorHandler(lambda *a: None, None)
conn = libvirt.open(uri)
xml = "<domain type='test'><name>%s</name><memory unit='MiB'>128</memory><vcpu>2</vcpu><os><type>hvm</type></os></domain>"
out = {}
dom = None


def step(label, fn):
    global dom
    try:
        r = fn()
        if isinstance(r, libvirt.virDomain):
            dom = r
        out[label] = 0
    except libvirt.libvirtError as e:
        out[label] = e.get_error_code()


def on_dom(fn):
    def go():
        global dom
        if dom is None:
            dom = conn.lookupByName(name)
        return fn(dom)
    return go


step("define", lambda: conn.defineXML(xml % name))
step("start", on_dom(lambda d: d.create()))
step("setmem", on_dom(lambda d: d.setMemory(98304)))
step("setvcpus", on_dom(lambda d: d.setVcpusFlags(1, libvirt.VIR_DOMAIN_AFFECT_CONFIG)))
step("suspend", on_dom(lambda d: d.suspend()))
step("resume", on_dom(lambda d: d.resume()))
step("reboot", on_dom(lambda d: d.reboot(0)))
step("shutdown", on_dom(lambda d: d.shutdown()))
step("start2", on_dom(lambda d: d.create()))
step("destroy", on_dom(lambda d: d.destroy()))
step("undefine", on_dom(lambda d: d.undefine()))
dom = None
step("create", lambda: conn.createXML(xml % (name + "-t"), 0))
step("destroy2", lambda: (dom or conn.lookupByName(name + "-t")).destroy())
print(json.dumps(out))
