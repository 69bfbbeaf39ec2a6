#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Interfaces, node devices and host facts through python3-libvirt; prints one JSON object, so virtgate's answers can be
# compared with test:///default's. Usage: host_objects.py URI
import json
import sys

import libvirt

libvirt.registerErrorHandler(lambda *_: None, None)  # errors are collected below, not printed


def err(f):
    try:
        return ['ok', f()]
    except libvirt.libvirtError as e:
        return [e.get_error_code(), e.get_error_message()]


c = libvirt.open(sys.argv[1])
out = {}
out['ifaces'] = sorted([i.name(), i.MACString(), i.isActive()] for i in c.listAllInterfaces(0))
out['ifaces_active'] = sorted(i.name() for i in c.listAllInterfaces(libvirt.VIR_CONNECT_LIST_INTERFACES_ACTIVE))
out['list_ifaces'] = [c.listInterfaces(), c.listDefinedInterfaces(), c.numOfInterfaces(), c.numOfDefinedInterfaces()]
eth1 = c.interfaceLookupByName('eth1')
out['eth1_xml'] = eth1.XMLDesc(0)
out['eth1_xml_inactive'] = err(lambda: eth1.XMLDesc(libvirt.VIR_INTERFACE_XML_INACTIVE))
out['by_mac'] = c.interfaceLookupByMACString('AA:BB:CC:DD:EE:FF').name()
out['no_iface'] = err(lambda: c.interfaceLookupByName('lo'))
out['no_mac'] = err(lambda: c.interfaceLookupByMACString('00:00:00:00:00:00'))
xml = "<interface type='ethernet' name='eth9'><start mode='onboot'/><mac address='52:54:00:12:34:56'/></interface>"
i = c.interfaceDefineXML(xml, 0)
out['defined'] = [i.name(), i.MACString(), i.isActive(), i.XMLDesc(0)]
out['iface_cycle'] = [err(lambda: i.create(0)), i.isActive(), err(lambda: i.create(0)), err(lambda: i.destroy(0)), i.isActive(), err(lambda: i.destroy(0))]
out['txn'] = [err(lambda: c.changeCommit(0)), err(lambda: c.changeBegin(0)), err(lambda: c.changeBegin(0))]
c.interfaceDefineXML(xml.replace('eth9', 'eth10').replace(':56', ':57'), 0)
out['txn'] += [err(lambda: c.changeRollback(0)), sorted([x.name(), x.isActive()] for x in c.listAllInterfaces(0))]
out['undefine'] = [err(lambda: c.interfaceLookupByName('eth9').undefine()), err(lambda: c.interfaceLookupByName('eth9'))]
out['bad_iface_xml'] = err(lambda: c.interfaceDefineXML("<interface type='bond' name='x'/>", 0))

out['devices'] = sorted(c.listDevices(None, 0))
out['num_devices'] = [c.numOfDevices(None, 0), c.numOfDevices('scsi_host', 0), c.numOfDevices('fc_host', 0), c.numOfDevices('vports', 0), c.numOfDevices('nope', 0)]
out['all_devices'] = sorted(d.name() for d in c.listAllDevices(0))
out['fc_devices'] = sorted(d.name() for d in c.listAllDevices(libvirt.VIR_CONNECT_LIST_NODE_DEVICES_CAP_FC_HOST))
out['vport_devices'] = sorted(d.name() for d in c.listAllDevices(libvirt.VIR_CONNECT_LIST_NODE_DEVICES_CAP_VPORTS | libvirt.VIR_CONNECT_LIST_NODE_DEVICES_CAP_SYSTEM))
out['dev_facts'] = {}
for n in out['devices']:
    d = c.nodeDeviceLookupByName(n)
    out['dev_facts'][n] = [d.listCaps(), d.numOfCaps(), d.parent(), d.XMLDesc(0)]
out['no_dev'] = err(lambda: c.nodeDeviceLookupByName('test-scsi-host-vport'))
vhba = "<device><parent>scsi_host1</parent><capability type='scsi_host'><capability type='fc_host'><wwnn>2001001b32a9da4e</wwnn><wwpn>2101001b32a9da4e</wwpn></capability></capability></device>"
d = c.nodeDeviceCreateXML(vhba, 0)
out['created'] = [d.name(), d.XMLDesc(0), sorted(c.listDevices(None, 0))]
out['destroyed'] = [err(lambda: d.destroy()), sorted(c.listDevices(None, 0)), err(lambda: c.nodeDeviceLookupByName('scsi_host12'))]
out['bad_dev_xml'] = err(lambda: c.nodeDeviceCreateXML("<device><capability type='scsi_host'/></device>", 0))
out['bad_parent'] = err(lambda: c.nodeDeviceCreateXML(vhba.replace('scsi_host1<', 'scsi_host11<'), 0))

out['sysinfo'] = c.getSysinfo(0)
out['cpu_stats'] = [c.getCPUStats(-1, 0), c.getCPUStats(0, 0)]
out['cpu_map'] = c.getCPUMap(0)
out['cpu_models'] = [c.getCPUModelNames('x86_64', 0), c.getCPUModelNames('aarch64', 0), err(lambda: c.getCPUModelNames('foo', 0))]
print(json.dumps(out))
