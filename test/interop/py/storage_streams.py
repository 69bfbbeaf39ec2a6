# SPDX-License-Identifier: Apache-2.0
# python3-libvirt volume streams: an upload (sendAll, then sparseSendAll with holes) and downloads (recvAll,
# sparseRecvAll) of a volume; prints what came back as JSON. Usage: storage_streams.py URI
import hashlib
import json
import sys

import libvirt

MiB = 1024 * 1024
uri = sys.argv[1]
conn = libvirt.open(uri)
pool = conn.storagePoolLookupByName('default-pool')
out = {}

# 4 MiB: data, a 2 MiB hole, data, a hole to the end.
content = bytearray(4 * MiB)
content[0:300000] = bytes((i * 31) % 256 for i in range(300000))
content[300000 + 2 * MiB:300000 + 2 * MiB + 4096] = b'\x42' * 4096
content = bytes(content)
segments = [(0, 300000, True), (300000, 2 * MiB, False), (300000 + 2 * MiB, 4096, True),
            (300000 + 2 * MiB + 4096, 4 * MiB - (300000 + 2 * MiB + 4096), False)]

try:
    vol = pool.createXML("<volume><name>pyv</name><capacity>%d</capacity></volume>" % (4 * MiB), 0)
    # Plain upload.
    st = conn.newStream(0)
    vol.upload(st, 0, 0, 0)
    pos = [0]

    def source(stream, nbytes, opaque):
        chunk = content[pos[0]:pos[0] + nbytes]
        pos[0] += len(chunk)
        return chunk

    st.sendAll(source, None)
    st.finish()

    def download(flags):
        st = conn.newStream(0)
        vol.download(st, 0, 0, flags)
        got = bytearray()
        holes = [0]

        def sink(stream, data, opaque):
            got.extend(data)
            return len(data)

        def hole(stream, length, opaque):
            holes[0] += 1
            got.extend(b'\0' * length)
            return 0

        if flags:
            st.sparseRecvAll(sink, hole, None)
        else:
            st.recvAll(sink, None)
        st.finish()
        return hashlib.sha256(bytes(got)).hexdigest(), len(got), holes[0]

    out['want'] = [hashlib.sha256(content).hexdigest(), len(content)]
    out['plain'] = download(0)
    out['sparse'] = download(libvirt.VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM)

    # Sparse upload of the same content into a second volume.
    vol2 = pool.createXML("<volume><name>pyv2</name><capacity>%d</capacity></volume>" % (4 * MiB), 0)
    st = conn.newStream(0)
    vol2.upload(st, 0, 0, libvirt.VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM)
    at = [0]

    def sparse_source(stream, nbytes, opaque):
        chunk = content[at[0]:at[0] + nbytes]
        at[0] += len(chunk)
        return chunk

    def hole_handler(stream, opaque):
        for start, length, data in segments:
            if start <= at[0] < start + length:
                return [data, start + length - at[0]]
        return [False, 0]

    def skip_handler(stream, length, opaque):
        at[0] += length
        return 0

    st.sparseSendAll(sparse_source, hole_handler, skip_handler, None)
    st.finish()
    vol = vol2
    out['sparseUpload'] = download(libvirt.VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM)

    # More bytes than the volume holds.
    vol3 = pool.createXML("<volume><name>pyv3</name><capacity>1000</capacity></volume>", 0)
    st = conn.newStream(0)
    vol3.upload(st, 0, 0, 0)
    try:
        st.send(b'x' * 600)
        st.send(b'x' * 600)
        st.finish()
        out['tooMany'] = 'accepted'
    except libvirt.libvirtError as e:
        out['tooMany'] = [e.get_error_code(), e.get_error_message()]
        try:
            st.abort()
        except libvirt.libvirtError:
            pass
except libvirt.libvirtError as e:
    out['error'] = [e.get_error_code(), e.get_error_message()]
print(json.dumps(out))
