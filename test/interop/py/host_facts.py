# SPDX-License-Identifier: Apache-2.0
# Host facts as python3-libvirt (virt-manager) reads them, printed as JSON so the test compares two URIs.
import json
import sys

import libvirt

c = libvirt.open(sys.argv[1])
out = {
    "freeMemory": c.getFreeMemory(),
    "cells": c.getCellsFreeMemory(0, 8),
    "cell1": c.getCellsFreeMemory(1, 1),
    "maxVcpus": c.getMaxVcpus(None),
}
try:
    c.getCellsFreeMemory(7, 1)
    out["outOfRange"] = None
except libvirt.libvirtError as e:
    out["outOfRange"] = [e.get_error_code(), e.get_error_message()]
print(json.dumps(out))
