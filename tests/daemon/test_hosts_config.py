"""Host keys of the configuration for real hosts: name_prefix, manage, validate_certs, cpu_allocation_ratio."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "daemon"))


def _host(**keys):
    from siroccod.config import load_config
    return load_config(env={}, overrides={"data_dir": "/tmp/x", "hosts": [
        dict({"name": "kvm", "uri": "qemu:///system"}, **keys)]}).hosts[0]


def test_defaults():
    host = _host()
    assert (host.name_prefix, host.manage, host.validate_certs, host.cpu_allocation_ratio) == (
        "sirocco-", None, True, 4.0)
    assert host.manages("anything")


def test_shared_host_keys():
    host = _host(name_prefix="siroccod-a-", manage=["siroccod-a-*", "legacy-?"], validate_certs=False,
                 cpu_allocation_ratio=2)
    assert host.name_prefix == "siroccod-a-" and not host.validate_certs and host.cpu_allocation_ratio == 2.0
    assert host.manages("siroccod-a-1234") and host.manages("legacy-1")
    assert not host.manages("siroccod-b-1234") and not host.manages("legacy-12") and not host.manages(None)
    assert _host(manage="x-*", name_prefix="x-").manage == ["x-*"]


@pytest.mark.parametrize("keys", [
    {"name_prefix": ""}, {"name_prefix": "bad prefix"}, {"name_prefix": "x" * 40}, {"name_prefix": 7},
    {"manage": []}, {"manage": [""]}, {"manage": {"a": 1}},
    {"manage": ["other-*"]},  # would hide the daemon's own machines from it
    {"cpu_allocation_ratio": 0}, {"cpu_allocation_ratio": "4"}, {"cpu_allocation_ratio": True},
    {"cpu_allocation_ratio": 1000},
])
def test_bad_values_are_refused(keys):
    with pytest.raises(InvalidInput):
        _host(**keys)
