# SPDX-License-Identifier: Apache-2.0
# Domain stats, pinning, tuning and metadata through python3-libvirt; prints one JSON object (clock-derived figures masked).
import json
import sys

import libvirt

libvirt.registerErrorHandler(lambda *_: None, None)
conn = libvirt.open(sys.argv[1])
dom = conn.lookupByName('test')
out = {}


def err(fn):
    try:
        return ['ok', fn()]
    except libvirt.libvirtError as e:
        return [e.get_error_code(), e.get_error_message()]


def clock(v):
    # counters that libvirt's test driver derives from the wall clock: only their type and sign are comparable
    return 'N' if isinstance(v, int) and v > 0 else v


out['maxMemory'] = dom.maxMemory()
info, maps = dom.vcpus()
out['vcpus'] = [[n, st, clock(t), cpu] for (n, st, t, cpu) in info]
out['vcpumaps'] = maps
out['vcpuPinInfo'] = dom.vcpuPinInfo(0)
out['emulatorPinInfo'] = dom.emulatorPinInfo(0)
out['memoryStats'] = dom.memoryStats()
out['blockStats'] = [clock(v) for v in dom.blockStats('vda')]
out['blockStatsBad'] = err(lambda: dom.blockStats('vdz'))
out['interfaceStats'] = [clock(v) for v in dom.interfaceStats('testnet0')]
out['blockInfo'] = dom.blockInfo('vda')
out['controlInfo'] = dom.controlInfo()
out['diskErrors'] = dom.diskErrors()
out['hostname'] = dom.hostname()
out['fsInfo'] = dom.fsInfo()
out['interfaceAddresses'] = dom.interfaceAddresses(libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE)
out['isUpdated'] = dom.isUpdated()
out['schedulerType'] = dom.schedulerType()
out['schedulerParameters'] = dom.schedulerParameters()
out['memoryParameters'] = dom.memoryParameters()
out['blkioParameters'] = dom.blkioParameters()
out['numaParameters'] = dom.numaParameters()
out['allStats'] = [[d.name(), s] for (d, s) in conn.getAllDomainStats()]
out['listStats'] = [[d.name(), s] for (d, s) in conn.domainListGetStats([dom], libvirt.VIR_DOMAIN_STATS_STATE)]
out['enforce'] = err(lambda: conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_BALLOON, libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ENFORCE_STATS))
out['setMemoryBad'] = err(lambda: dom.setMemoryParameters({'hard_limit': 1, 'swap_hard_limit': 0}, 0))
out['setBlkio'] = err(lambda: dom.setBlkioParameters({'weight': 300, 'device_weight': '/dev/sda,100'}, 0))
out['blkioAfter'] = dom.blkioParameters()
out['setNumaBad'] = err(lambda: dom.setNumaParameters({'numa_nodeset': 'x'}, 0))
out['pin'] = err(lambda: dom.pinVcpu(1, (False, True, True)))
out['pinAfter'] = dom.vcpuPinInfo(0)
out['setDesc'] = err(lambda: dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_DESCRIPTION, 'hello', None, None, 0))
out['desc'] = err(lambda: dom.metadata(libvirt.VIR_DOMAIN_METADATA_DESCRIPTION, None, 0))
out['setElem'] = err(lambda: dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, '<info a="1"><b>t</b></info>', 'x', 'urn:x', 0))
out['elem'] = err(lambda: dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, 'urn:x', 0))
out['noElem'] = err(lambda: dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, 'urn:y', 0))
print(json.dumps(out, sort_keys=True))
