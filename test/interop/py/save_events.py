# SPDX-License-Identifier: Apache-2.0
# virDomainSave/Restore[Flags] and SaveImageGetXMLDesc through python3-libvirt, with the lifecycle events they cause:
# argv: URI DIR (a fresh directory). Run by test/interop/domain-save.test.ts against virtgate and test:///default.
import sys, threading, time, libvirt
uri, d = sys.argv[1], sys.argv[2]
libvirt.virEventRegisterDefaultImpl()
def loop():
    while True:
        libvirt.virEventRunDefaultImpl()
threading.Thread(target=loop, daemon=True).start()
c = libvirt.open(uri)
seen = []
c.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, lambda conn, dom, ev, det, op: seen.append((dom.name(), ev, det)), None)
dom = c.lookupByName('test')
dom.save(d + '/ev.img')
print('after save', dom.state())
c.restore(d + '/ev.img')
print('after restore', c.lookupByName('test').state())
dom = c.lookupByName('test')
dom.saveFlags(d + '/ev2.img', None, 0)
c.restoreFlags(d + '/ev2.img', None, 0)
print(c.saveImageGetXMLDesc(d + '/ev2.img', 1).splitlines()[1])
time.sleep(0.5)
for s in seen: print('event', *s)
