# SPDX-License-Identifier: Apache-2.0
# python3-libvirt networks: networkLookupByName, listAllNetworks, lifecycle and the network lifecycle event callback.
# Prints JSON facts; run against virtgate and against test:///default, the two outputs are compared.
import json
import sys
import threading
import time

import libvirt

uri = sys.argv[1]
out = {}
libvirt.virEventRegisterDefaultImpl()
conn = libvirt.open(uri)
events = []


def on_event(_conn, net, event, detail, _opaque):
    events.append([net.name(), event, detail])


cb = conn.networkEventRegisterAny(None, libvirt.VIR_NETWORK_EVENT_ID_LIFECYCLE, on_event, None)
stop = False


def loop():
    while not stop:
        libvirt.virEventRunDefaultImpl()


t = threading.Thread(target=loop, daemon=True)
t.start()

d = conn.networkLookupByName("default")
out["default"] = [d.name(), d.UUIDString(), d.isActive(), d.isPersistent(), d.autostart(), d.bridgeName()]
out["all"] = sorted(n.name() for n in conn.listAllNetworks(0))
out["active"] = sorted(n.name() for n in conn.listAllNetworks(libvirt.VIR_CONNECT_LIST_NETWORKS_ACTIVE))
xml = "<network><name>pynet</name><uuid>0a3c9b24-5c5e-4c43-9ac8-7e5b0d6f4e11</uuid><bridge name='vbrpy'/><ip address='10.77.0.1' prefix='24'/></network>"
n = conn.networkDefineXML(xml)
out["defined"] = [n.isActive(), n.isPersistent()]
n.create()
n.setAutostart(1)
out["started"] = [n.isActive(), n.autostart()]
out["xml"] = n.XMLDesc(0)
n.destroy()
n.undefine()
try:
    conn.networkLookupByName("pynet")
    out["after_undefine"] = "still there"
except libvirt.libvirtError as e:
    out["after_undefine"] = [e.get_error_code(), str(e)]
try:
    conn.networkDefineXML("<network><name>broken")
except libvirt.libvirtError as e:
    out["bad_xml_code"] = e.get_error_code()
deadline = time.time() + 5
while len(events) < 4 and time.time() < deadline:
    time.sleep(0.05)
out["events"] = events
conn.networkEventDeregisterAny(cb)
stop = True
conn.close()
print(json.dumps(out))
