"""Networks: list, create, use, delete."""

from __future__ import annotations

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import Conflict, NotFound, Unsupported


def test_network_lifecycle(connector, standin, make_spec, caps):
    if not caps.supports("network.create"):
        with pytest.raises(Unsupported):
            connector.create_network(standin.name("n"))
        return
    before = {n.id for n in connector.list_networks()}
    name = standin.name("n")
    net = connector.create_network(name, description="contract network", properties={"purpose": "test"})
    assert net.name == name and net.state == "STARTED"
    got = connector.get_network(name)
    assert got.id == net.id and got.name == name
    if "description" in standin.network_keeps:
        assert got.description == "contract network"
    if "properties" in standin.network_keeps:
        assert got.properties == {"purpose": "test"}
    assert {n.id for n in connector.list_networks()} == before | {net.id}
    with pytest.raises(Conflict):
        connector.create_network(name)

    m = connector.create_machine(make_spec(networks=[net.id]))
    assert [i.network["href"] for i in m.interfaces if i.network] == [net.id]
    assert all(i.macAddress for i in m.interfaces)
    with pytest.raises(Conflict):  # in use
        connector.delete_network(net.id)
    connector.delete_machine(m.id)

    connector.delete_network(net.id)
    assert {n.id for n in connector.list_networks()} == before
    with pytest.raises(NotFound):
        connector.delete_network(net.id)


def test_networks_listed(connector, caps):
    if not caps.supports("network.list"):
        with pytest.raises(Unsupported):
            connector.list_networks()
        return
    for net in connector.list_networks():
        assert net.id and net.name and net.state in ("STARTED", "STOPPED")
