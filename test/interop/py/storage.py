# SPDX-License-Identifier: Apache-2.0
# Storage as python3-libvirt (virt-manager, virt-install) uses it, printed as JSON so the test compares two URIs.
# uuids are left out: a pool defined without one gets a random uuid on both sides.
import json
import sys

import libvirt


def err(f):
    try:
        f()
        return None
    except libvirt.libvirtError as e:
        return [e.get_error_code(), e.get_error_message()]


c = libvirt.open(sys.argv[1])
out = {}
dp = c.storagePoolLookupByName("default-pool")
out["default"] = [dp.name(), dp.UUIDString(), dp.info(), dp.isActive(), dp.isPersistent(), dp.autostart()]
out["pools"] = sorted(p.name() for p in c.listAllStoragePools(0))
out["numPools"] = [c.numOfStoragePools(), c.numOfDefinedStoragePools()]
p = c.storagePoolDefineXML("<pool type='dir'><name>pyp</name><target><path>/var/lib/libvirt/pyp</path></target></pool>", 0)
out["defined"] = [p.isActive(), p.isPersistent(), p.info()]
out["listVolsInactive"] = err(lambda: p.listAllVolumes(0))
p.build(0)
p.create(0)
v = p.createXML("<volume><name>disk1.qcow2</name><capacity unit='G'>1</capacity><allocation>0</allocation><target><format type='qcow2'/></target></volume>", 0)
out["vol"] = [v.name(), v.key(), v.path(), v.info(), v.storagePoolLookupByVolume().name()]
out["vols"] = sorted(x.name() for x in p.listAllVolumes(0))
out["listVolumes"] = sorted(p.listVolumes())
out["byKey"] = c.storageVolLookupByKey(v.key()).name()
out["byPath"] = c.storageVolLookupByPath(v.path()).name()
clone = p.createXMLFrom("<volume><name>clone</name><capacity>1024</capacity></volume>", v, 0)
out["clone"] = [clone.name(), clone.info()]
out["poolInfo"] = p.info()
out["dup"] = err(lambda: p.createXML("<volume><name>clone</name><capacity>1</capacity></volume>", 0))
out["badSize"] = err(lambda: p.createXML("<volume><name>bad</name><capacity unit='XB'>10</capacity></volume>", 0))
out["brokenXml"] = err(lambda: c.storagePoolDefineXML("<pool type='dir'><name>x</name>", 0))[0]
out["unknownPool"] = err(lambda: c.storagePoolLookupByName("nosuch"))
out["unknownVol"] = err(lambda: c.storageVolLookupByPath("/etc/shadow"))
clone.delete(0)
v.delete(0)
out["afterDelete"] = [p.numOfVolumes(), p.info()]
p.destroy()
p.undefine()
out["gone"] = err(lambda: c.storagePoolLookupByName("pyp"))
t = c.storagePoolCreateXML("<pool type='dir'><name>transient</name><target><path>/var/lib/libvirt/tr</path></target></pool>", 0)
out["transient"] = [t.isActive(), t.isPersistent(), t.autostart()]
out["transientAutostart"] = err(lambda: t.setAutostart(1))
t.destroy()
out["transientGone"] = err(lambda: c.storagePoolLookupByName("transient"))
print(json.dumps(out))
