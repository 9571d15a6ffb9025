"""Machine configurations and images: listing, creating from an image, capture, delete."""

from __future__ import annotations

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import Conflict, NotFound, Unsupported


def test_configs(connector, standin, caps):
    if not caps.supports("machine_config.list"):
        with pytest.raises(Unsupported):
            connector.list_machine_configs()
        return
    configs = connector.list_machine_configs()
    assert configs
    assert len({c.id for c in configs}) == len(configs)
    for c in configs:
        assert c.cpu >= 1 and c.memory >= 1 and c.name
        assert c.to_json()["resourceURI"].endswith("/MachineConfiguration")
    assert connector.get_machine_config(standin.size).name == standin.size
    with pytest.raises(NotFound):
        connector.get_machine_config("no-such-size")


def test_images_listed(connector, standin, caps):
    if not caps.supports("machine_image.list"):
        with pytest.raises(Unsupported):
            connector.list_machine_images()
        return
    images = connector.list_machine_images()
    seed = connector.get_machine_image(standin.image)
    assert seed.id in {i.id for i in images}
    assert seed.state == "AVAILABLE" and seed.type == "IMAGE" and seed.imageLocation
    with pytest.raises(NotFound):
        connector.get_machine_image("no-such-image")


def test_create_from_image_and_capture(connector, standin, machine, make_spec, caps):
    images_before = {i.id for i in connector.list_machine_images()}
    m = machine(states.STOPPED, image=connector.get_machine_image(standin.image).id)
    assert m.disks and m.disks[0].capacity > 0
    if not caps.supports("machine.capture"):
        with pytest.raises(Unsupported):
            connector.capture_machine(m.id, standin.name("img"))
        return
    image = connector.capture_machine(m.id, standin.name("img"))
    assert image.state == "AVAILABLE" and image.type == "IMAGE"
    assert image.id in {i.id for i in connector.list_machine_images()}
    assert connector.get_machine(m.id).state == states.STOPPED
    with pytest.raises(Conflict):  # the name is taken
        connector.capture_machine(m.id, image.name)

    # A machine made from the captured image keeps it in use.
    child = connector.create_machine(make_spec(image=image.id))
    assert child.disks
    if caps.supports("machine_image.delete"):
        with pytest.raises(Conflict):
            connector.delete_machine_image(image.id)
    connector.delete_machine(child.id)
    connector.delete_machine(m.id)
    # Deleting the machines removed their disks: the images are what they were plus the capture.
    assert {i.id for i in connector.list_machine_images()} == images_before | {image.id}
    if not caps.supports("machine_image.delete"):
        with pytest.raises(Unsupported):
            connector.delete_machine_image(image.id)
        return
    connector.delete_machine_image(image.id)
    assert {i.id for i in connector.list_machine_images()} == images_before
    with pytest.raises(NotFound):
        connector.delete_machine_image(image.id)


def test_capture_running_machine(connector, standin, machine, caps):
    m = machine(states.STARTED, image=standin.image)
    if not caps.supports("machine.capture"):
        with pytest.raises(Unsupported):
            connector.machine_action(m.id, "capture")
        return
    image = connector.capture_machine(m.id, standin.name("img"))
    assert image.state == "AVAILABLE"
    assert connector.get_machine(m.id).state == states.STARTED


def test_capture_diskless_conflict(connector, machine, standin, caps):
    m = machine(states.STOPPED)
    if m.disks:
        return  # this provider gives every machine a disk: nothing to refuse
    expected = Conflict if caps.supports("machine.capture") else Unsupported
    with pytest.raises(expected):
        connector.capture_machine(m.id, standin.name("img"))
