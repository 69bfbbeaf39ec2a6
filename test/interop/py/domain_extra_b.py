# SPDX-License-Identifier: Apache-2.0
# Issue 12 part B through python3-libvirt: memory peek, cpu stats, old-style lifecycle callbacks, create/define with
# files; prints one JSON object.
import json
import os
import sys
import threading
import time

import libvirt

libvirt.registerErrorHandler(lambda *_: None, None)
libvirt.virEventRegisterDefaultImpl()
conn = libvirt.open(sys.argv[1])
dom = conn.lookupByName('test')
out = {}


def err(fn):
    try:
        return ['ok', fn()]
    except libvirt.libvirtError as e:
        return [e.get_error_code(), e.get_error_message()]


out['peek'] = err(lambda: list(dom.memoryPeek(250, 10, libvirt.VIR_MEMORY_VIRTUAL)))
out['peekPhysical'] = err(lambda: list(dom.memoryPeek(0, 4, libvirt.VIR_MEMORY_PHYSICAL)))
out['peekBadFlags'] = err(lambda: dom.memoryPeek(0, 4, 0))
out['cpuStatsTotal'] = err(lambda: dom.getCPUStats(True))
out['cpuStatsPer'] = err(lambda: dom.getCPUStats(False))
out['launchSecurity'] = err(lambda: dom.launchSecurityInfo())
out['time'] = err(lambda: dom.getTime())
out['perf'] = err(lambda: dom.perfEvents())
out['iothreads'] = err(lambda: dom.ioThreadInfo())
out['ifaceParams'] = err(lambda: dom.interfaceParameters('testnet0', 0))
out['fsfreeze'] = err(lambda: dom.fsFreeze(['/boot']))
out['fsthaw'] = err(lambda: dom.fsThaw())
out['signalBad'] = err(lambda: dom.sendProcessSignal(1, 70))
out['signalPid'] = err(lambda: dom.sendProcessSignal(7, 9))
out['sendKeyBadCodeset'] = err(lambda: dom.sendKey(42, 0, [1], 1, 0))
out['sendKeyBad'] = err(lambda: dom.sendKey(0, 0, [65535], 1, 0))
out['iothreadSetBad'] = err(lambda: dom.setIOThreadParams(1, {'poll_max_ns': 5}, libvirt.VIR_DOMAIN_AFFECT_LIVE))
out['iothreadAddZero'] = err(lambda: dom.addIOThread(0, 0))

# old-style lifecycle callbacks: two events, then deregistration (a second one fails)
events = []
stop = False


def loop():
    while not stop:
        libvirt.virEventRunDefaultImpl()


t = threading.Thread(target=loop, daemon=True)
t.start()
def on_event(c, d, ev, detail, opaque):
    events.append([d.name(), ev, detail])


conn.domainEventRegister(on_event, None)
dom.suspend()
dom.resume()
for _ in range(50):
    if len(events) >= 2:
        break
    time.sleep(0.1)
out['legacyEvents'] = events
out['deregister'] = err(lambda: conn.domainEventDeregister(on_event))

XML = "<domain type='test'><name>%s</name><memory>1024</memory><os><type>hvm</type></os></domain>"
created = err(lambda: conn.createXMLWithFiles(XML % 'filesvm', []).name())
out['createXMLWithFiles'] = created
out['createXMLWithFilesState'] = err(lambda: conn.lookupByName('filesvm').info()[0])
err(lambda: conn.lookupByName('filesvm').destroy())
dom.destroy()
out['createWithFiles'] = err(lambda: dom.createWithFiles([]))
out['createWithFilesState'] = dom.info()[0]
out['createWithFilesAgain'] = err(lambda: dom.createWithFiles([]))

r, w = os.pipe()
res = err(lambda: conn.createXMLWithFiles(XML % 'fdvm', [r]).name())
if res[0] != 'ok':
    res.append('absent' if err(lambda: conn.lookupByName('fdvm'))[0] != 'ok' else 'present')
else:
    err(lambda: conn.lookupByName('fdvm').destroy())
out['withFds'] = res
stop = True
print(json.dumps(out))
