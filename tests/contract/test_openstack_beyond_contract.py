"""openstack connector against the OpenStack stand-in (tests/standins/openstack): what the contract does not cover.

Uses the running stand-in, or installs and starts it (~1-2 min) and leaves it running, as
``make openstack`` does, so that the contract suite reuses it.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    AuthError,
    InvalidInput,
    NotFound,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import MachineSpec
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.openstack import OpenStackConnector

STANDIN = Path(__file__).resolve().parents[1] / "standins" / "openstack"
STATE = Path(os.environ.get("SIROCCO_OPENSTACK_DIR", "/var/tmp/sirocco-openstack"))
PREFIX = "sirocco-ut-%d-" % os.getpid()


@pytest.fixture(scope="module")
def cloud():
    """The stand-in's admin account (clouds.yaml entry), the stand-in started if needed."""
    for script, limit in (("install.sh", 1800), ("start.sh", 600)):
        done = subprocess.run(["bash", str(STANDIN / script)], capture_output=True, text=True, timeout=limit,
                              check=False)
        if done.returncode != 0:
            pytest.fail("tests/standins/openstack/%s failed (`make openstack` as root installs and starts the "
                        "stand-in):\n%s" % (script, done.stderr[-3000:]), pytrace=False)
    config = yaml.safe_load((STATE / "clouds.yaml").read_text())["clouds"]["sirocco-standin"]
    yield config
    with OpenStackConnector(options={"cloud": "sirocco-standin", "clouds_yaml": str(STATE / "clouds.yaml")}) as conn:
        for server in conn.conn.compute.servers(details=False):
            if (server.name or "").startswith(PREFIX):  # what a failed test left
                conn.conn.compute.delete_server(server)


def _explicit(cloud, **kw):
    auth = cloud["auth"]
    params = dict(uri=auth["auth_url"], username=auth["username"], password=auth["password"],
                  region=cloud["region_name"], options={"project": auth["project_name"], "image": "sirocco-tiny"})
    params.update(kw)
    return OpenStackConnector(timeout=60, **params)


def _spec(conn, name, **kw):
    return MachineSpec(name=PREFIX + name, config=conn.get_machine_config("tiny"), **kw)


def test_explicit_credentials_and_clouds_yaml_reach_the_same_cloud(cloud):
    with _explicit(cloud) as by_params, OpenStackConnector(options={
            "cloud": "sirocco-standin", "clouds_yaml": str(STATE / "clouds.yaml")}) as by_cloud:
        assert {c.id for c in by_params.list_machine_configs()} == {c.id for c in by_cloud.list_machine_configs()}
        caps = by_params.capabilities()
        assert caps.locations == ("nova",) and caps.archs == ("x86_64",)
        assert "volumev3" in caps.extras["services"]  # the stand-in's Cinder
        assert {"volume.create", "volume.attach", "network.create"} <= caps.operations


def test_wrong_password_is_auth_error_and_not_shown(cloud):
    conn = _explicit(cloud, password="not-the-password")
    with pytest.raises(AuthError) as info:
        conn.list_machines()
    assert "not-the-password" not in str(info.value)


def test_unknown_ids_and_images(cloud):
    with _explicit(cloud) as conn:
        with pytest.raises(NotFound):
            conn.get_machine(str(uuid.uuid4()))
        with pytest.raises(NotFound):
            conn.get_machine_image("no-such-image")
        with pytest.raises(NotFound):
            conn.create_machine(_spec(conn, "noimage", image="no-such-image"))
        with pytest.raises(InvalidInput):
            conn.create_machine(_spec(conn, "nozone", location="no-such-zone"))
        assert not conn.find_machines(PREFIX + "noimage") and not conn.find_machines(PREFIX + "nozone")


def test_shelve_option_stops_by_shelving(cloud):
    with _explicit(cloud, options={"project": cloud["auth"]["project_name"], "image": "sirocco-tiny",
                                   "shelve": True}) as conn:
        m = conn.create_machine(_spec(conn, "shelved", initial_state=states.STARTED))
        conn.machine_action(m.id, "stop")
        assert conn.wait_for_machine(m.id, states.STOPPED, timeout=60).state == states.STOPPED
        assert conn.conn.compute.get_server(m.id).status in ("SHELVED", "SHELVED_OFFLOADED")
        assert {x.aspect.rsplit("/", 1)[1] for x in conn.list_meters(m.id)} >= {"cpu", "memory"}
        conn.machine_action(m.id, "start")  # unshelves
        assert conn.wait_for_machine(m.id, states.STARTED, timeout=90).state == states.STARTED
        conn.delete_machine(m.id)


def test_metadata_user_data_and_list_markers(cloud):
    with _explicit(cloud) as conn:
        m = conn.create_machine(_spec(conn, "meta", properties={"role": "web"}, user_data="#cloud-config\n"))
        assert conn.get_machine(m.id).properties == {"role": "web"}
        assert conn.list_machines(limit=1).marker is not None or len(conn.list_machines().items) == 1
        with pytest.raises(InvalidInput):
            conn.list_machines(limit=1, marker="not-a-server")
        started = time.monotonic()
        conn.delete_machine(m.id)
        assert time.monotonic() - started < 60
        with pytest.raises(NotFound):
            conn.get_machine(m.id)


def test_network_subnet_cidr_and_bad_input(cloud):
    """A network's subnet takes property cidr, else a free /24; bad input changes nothing."""
    with _explicit(cloud) as conn:
        before = {n.id for n in conn.list_networks()}
        for bad in ({"cidr": "10.9.0.1/24"}, {"cidr": "not-a-cidr"}, {"k=v": "x"}, {"k": 1}):
            with pytest.raises(InvalidInput) as info:
                conn.create_network(PREFIX + "bad", properties=bad)
            assert info.value.attribute.startswith("properties")
        with pytest.raises(InvalidInput):
            conn.create_network("")
        assert {n.id for n in conn.list_networks()} == before
        chosen = conn.create_network(PREFIX + "cidr", properties={"cidr": "10.9.8.0/24"})
        auto = conn.create_network(PREFIX + "auto")
        try:
            subnets = {s.network_id: s.cidr for s in conn.conn.network.subnets()}
            assert subnets[chosen.id] == "10.9.8.0/24"
            assert subnets[auto.id].startswith("10.") and subnets[auto.id].endswith("/24")
            assert len(set(subnets.values())) == len(subnets)  # the free /24 overlaps no other subnet
            assert conn.get_network(chosen.id).properties == {"cidr": "10.9.8.0/24"}
        finally:
            conn.delete_network(chosen.id)
            conn.delete_network(auto.id)
        assert not [s for s in conn.conn.network.subnets() if s.network_id in (chosen.id, auto.id)]


def test_volume_given_at_creation_outlives_its_machine(cloud):
    """A machine created with a volume has it attached; deleting the machine leaves the volume free."""
    with _explicit(cloud) as conn:
        before = {v.id for v in conn.list_volumes()}
        for name, capacity in (("", 1024), (PREFIX + "zero", 0), (PREFIX + "text", "1024")):
            with pytest.raises(InvalidInput):
                conn.create_volume(name, capacity)
        assert {v.id for v in conn.list_volumes()} == before
        vol = conn.create_volume(PREFIX + "kept", 1024)
        try:
            m = conn.create_machine(_spec(conn, "withvol", volumes=[vol.id]))
            assert [v.volume["href"] for v in m.volumes] == [vol.id]
            assert [a["href"] for a in conn.get_volume(vol.id).attachedTo] == [m.id]
            conn.delete_machine(m.id)
            deadline = time.monotonic() + 30
            while conn.get_volume(vol.id).attachedTo and time.monotonic() < deadline:
                time.sleep(0.25)
            got = conn.get_volume(vol.id)
            assert not got.attachedTo and got.state == "AVAILABLE"
        finally:
            conn.delete_volume(vol.id)
        assert {v.id for v in conn.list_volumes()} == before
