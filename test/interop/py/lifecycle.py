# SPDX-License-Identifier: Apache-2.0
# python3-libvirt against virtgate: listAllDomains, info(), lifecycle calls, defineXML/undefine. Prints JSON facts.
import json
import sys

import libvirt

uri = sys.argv[1]
out = {}
conn = libvirt.open(uri)
doms = conn.listAllDomains(0)
out["names"] = sorted(d.name() for d in doms)
test = conn.lookupByName("test")
out["info"] = test.info()
test.suspend()
out["paused"] = test.state()[0] == libvirt.VIR_DOMAIN_PAUSED
test.resume()
out["running"] = test.state()[0] == libvirt.VIR_DOMAIN_RUNNING
xml = "<domain type='test'><name>pyvm</name><memory unit='MiB'>256</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>"
d = conn.defineXML(xml)
out["defined_id"] = d.ID()
out["defined_persistent"] = d.isPersistent()
d.create()
out["started_active"] = d.isActive()
d.destroy()
d.undefine()
try:
    conn.lookupByName("pyvm")
    out["after_undefine"] = "still there"
except libvirt.libvirtError as e:
    out["after_undefine"] = e.get_error_code()
try:
    conn.defineXML("<domain><name>broken")
except libvirt.libvirtError as e:
    out["bad_xml_code"] = e.get_error_code()
    out["bad_xml_msg"] = str(e)
conn.close()
print(json.dumps(out))
