"""Registering a disk image on a provider (machine_image.import): the image arrives AVAILABLE, under its
native name, and reads back with its generic name, format, size and architecture as the provider keeps
them; the generic name finds it; the name cannot be taken twice; it deletes. A connector without the
operation refuses it (Unsupported), and says so in its capabilities.

The image is a tiny one (8 MiB, made by qemu-img from a raw disk with a known pattern), in every format;
each connector uploads the one it takes. The factory's full-size images are built and booted elsewhere
(tests/unit/images, the libvirt import's byte check).
"""

from __future__ import annotations

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import Conflict, InvalidInput, Unsupported
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import (
    IMAGE_ARCH_PROPERTY,
    IMAGE_FORMAT_PROPERTY,
    IMAGE_NAME_PROPERTY,
    IMAGE_SIZE_PROPERTY,
)


def test_import_image(connector, standin, caps, disk_image):
    image = disk_image(standin.name("imp"), generic_name=standin.name("generic"))
    if not caps.supports("machine_image.import"):
        assert caps.image_formats == ()
        with pytest.raises(Unsupported):
            connector.import_machine_image(image)
        return
    assert caps.image_formats and set(caps.image_formats) <= {"qcow2", "raw", "vmdk", "vhd"}
    got = connector.import_machine_image(image)
    assert got.state == "AVAILABLE" and got.name == image.name and got.type == "IMAGE"
    props = got.properties or {}
    assert props.get(IMAGE_NAME_PROPERTY) == image.generic_name
    assert props.get(IMAGE_FORMAT_PROPERTY) == caps.image_formats[0]
    assert props.get(IMAGE_SIZE_PROPERTY) == str(image.virtual_size)
    assert props.get(IMAGE_ARCH_PROPERTY) == "x86_64"
    # the provider is the source of truth: listed again, found by its generic name
    (found,) = connector.find_machine_images(image.generic_name)
    assert found.id == got.id and (found.properties or {}).get(IMAGE_NAME_PROPERTY) == image.generic_name
    assert connector.get_machine_image(got.id).name == image.name
    with pytest.raises(Conflict):  # the native name is taken
        connector.import_machine_image(disk_image(image.name))
    if caps.supports("machine_image.delete"):
        connector.delete_machine_image(got.id)
        assert got.id not in {i.id for i in connector.list_machine_images()}


def test_import_refuses_an_image_in_no_format_it_takes(connector, standin, caps, disk_image):
    if not caps.supports("machine_image.import"):
        return
    others = [f for f in ("qcow2", "raw", "vmdk", "vhd") if f not in caps.image_formats]
    image = disk_image(standin.name("nofmt"), formats=others)
    with pytest.raises(InvalidInput):
        connector.import_machine_image(image)
    assert image.name not in {i.name for i in connector.list_machine_images()}
