#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Node device lifecycle events through python3-libvirt: one callback for every device, one for scsi_host12 only (it
# does not exist yet: registering must fail), then a vHBA created and destroyed. Prints the events as JSON.
# Usage: nodedev_events.py URI
import json
import sys
import threading
import time

import libvirt

libvirt.registerErrorHandler(lambda *_: None, None)
libvirt.virEventRegisterDefaultImpl()
threading.Thread(target=lambda: [libvirt.virEventRunDefaultImpl() for _ in iter(int, 1)], daemon=True).start()

c = libvirt.open(sys.argv[1])
events = []
c.nodeDeviceEventRegisterAny(None, libvirt.VIR_NODE_DEVICE_EVENT_ID_LIFECYCLE, lambda _c, d, ev, det, _o: events.append(['all', d.name(), ev, det]), None)
c.nodeDeviceEventRegisterAny(c.nodeDeviceLookupByName('scsi_host11'), libvirt.VIR_NODE_DEVICE_EVENT_ID_LIFECYCLE, lambda _c, d, ev, det, _o: events.append(['scsi_host11', d.name(), ev, det]), None)
upd = c.nodeDeviceEventRegisterAny(None, libvirt.VIR_NODE_DEVICE_EVENT_ID_UPDATE, lambda _c, d, _o: events.append(['update', d.name()]), None)
vhba = "<device><parent>scsi_host1</parent><capability type='scsi_host'><capability type='fc_host'><wwnn>2001001b32a9da4e</wwnn><wwpn>2101001b32a9da4e</wwpn></capability></capability></device>"
c.nodeDeviceCreateXML(vhba, 0).destroy()
deadline = time.time() + 5
while len(events) < 2 and time.time() < deadline:
    time.sleep(0.05)
time.sleep(0.3)  # anything more would arrive now
c.nodeDeviceEventDeregisterAny(upd)
try:
    c.nodeDeviceEventDeregisterAny(upd)
    again = 'ok'
except libvirt.libvirtError as e:
    again = e.get_error_code()
print(json.dumps({'events': events, 'deregister_twice': again}))
