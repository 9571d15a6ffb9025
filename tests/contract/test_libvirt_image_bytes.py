"""libvirt beyond the contract: an imported image's bytes, on the real libvirtd.

Uploaded with the stream API into a volume of the image pool, the image is read back with the stream
API (virStorageVolDownload) and compared with the raw original by `qemu-img compare`, for a qcow2 and
a raw upload. A machine made from it gets a disk backed by it. (libvirt's test driver keeps no bytes:
the contract suite only checks what it records there.)
"""

from __future__ import annotations

import subprocess

import pytest
from standins.libvirt import LibvirtQemu

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states


@pytest.fixture(scope="module")
def qemu_standin(tmp_path_factory):
    standin = LibvirtQemu()
    standin.start(tmp_path_factory.mktemp("libvirt-bytes"))
    yield standin
    standin.stop()


@pytest.mark.parametrize("fmt", ["qcow2", "raw"])
def test_the_bytes_arrive(qemu_standin, disk_image, tiny_disks, fmt, tmp_path, make_spec_for):
    connector = qemu_standin.connect()
    try:
        image = disk_image(qemu_standin.name("bytes-" + fmt), generic_name="bytes-test", formats=[fmt])
        got = connector.import_machine_image(image)
        assert got.properties["sirocco.format"] == fmt
        vol = connector.conn.storageVolLookupByKey(got.id)
        stream = connector.conn.newStream(0)
        copy = tmp_path / ("back." + fmt)
        with open(copy, "wb") as handle:
            vol.download(stream, 0, 0, 0)
            stream.recvAll(lambda _stream, data, out: out.write(data), handle)
            stream.finish()
        done = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", fmt, str(tiny_disks["raw"]), str(copy)],
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        machine = connector.create_machine(make_spec_for(connector, qemu_standin, image=got.id))
        assert machine.state == states.STOPPED and machine.disks
        connector.delete_machine(machine.id)
        connector.delete_machine_image(got.id)
    finally:
        connector.close()
        qemu_standin.clean()
