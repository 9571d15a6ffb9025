"""The image spec: each bad field named, defaults, normalisation, the hash (no network, no build)."""

from __future__ import annotations

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput
from ansible_collections.sirocco.cimi.plugins.module_utils.images import spec as specmod
from ansible_collections.sirocco.cimi.plugins.module_utils.images.mirror import PackageIndex
from ansible_collections.sirocco.cimi.plugins.module_utils.images.spec import parse_spec

INDEX = PackageIndex({"curl", "nginx", "cloud-init", "mail-transport-agent"}, "a test index")


def parse(**fields):
    data = {"name": "web"}
    data.update(fields)
    return parse_spec(data, index=INDEX)


def test_defaults():
    spec = parse()
    assert spec.distribution == "debian-12"
    assert spec.formats == ["qcow2"] and spec.size_gib == 4 and spec.cloud_init is True
    assert spec.packages == [] and spec.files == {} and spec.run == []
    names = spec.all_packages()
    for package in ("openssh-server", "qemu-guest-agent", "dbus", "cloud-init", "open-vm-tools",
                    "linux-image-cloud-amd64"):
        assert package in names
    assert "cloud-init" not in parse(cloud_init=False).all_packages()
    assert "open-vm-tools" not in parse(cloud_init=False).all_packages()


@pytest.mark.parametrize("fields, attribute, words", [
    ({"colour": "blue"}, "colour", "unknown field"),
    ({"name": ""}, "name", "name"),
    ({"name": "Web Server"}, "name", "name"),
    ({"name": None}, "name", "name"),
    ({"distribution": "debian-99"}, "distribution", "debian-12"),
    ({"packages": "curl nginx"}, "packages", "not a Debian package name"),
    ({"packages": [1]}, "packages", "list of strings"),
    ({"packages": ["curl", "Nginx"]}, "packages", "Nginx"),
    ({"packages": ["curl", "no-such-thing"]}, "packages", "no-such-thing"),
    ({"formats": ["qcow2", "iso"]}, "formats", "iso"),
    ({"formats": []}, "formats", "at least one"),
    ({"size_gib": 1}, "size_gib", "too small"),
    ({"size_gib": "4"}, "size_gib", "whole number"),
    ({"size_gib": 4.5}, "size_gib", "whole number"),
    ({"size_gib": True}, "size_gib", "whole number"),
    ({"size_gib": 100000}, "size_gib", "more than"),
    ({"files": ["/etc/x"]}, "files", "mapping"),
    ({"files": {"etc/x": "x"}}, "files", "absolute"),
    ({"files": {"/etc/../x": "x"}}, "files", "normalised"),
    ({"files": {"/proc/x": "x"}}, "files", "/proc"),
    ({"files": {"/etc/x": {"content": "x", "mode": "rwx"}}}, "files", "octal"),
    ({"files": {"/etc/x": {"content": "x", "mode": "0999"}}}, "files", "octal"),
    ({"files": {"/etc/x": {"content": "x", "mode": 0o17777}}}, "files", "out of range"),
    ({"files": {"/etc/x": {"content": "x", "owner": "root"}}}, "files", "owner"),
    ({"files": {"/etc/x": {"content": 3}}}, "files", "string"),
    ({"run": [""]}, "run", "empty"),
    ({"run": [["ls"]]}, "run", "list of strings"),
    ({"cloud_init": "yes"}, "cloud_init", "true or false"),
])
def test_each_bad_field_is_named(fields, attribute, words):
    with pytest.raises(InvalidInput) as failure:
        parse(**fields)
    assert failure.value.attribute == attribute
    assert words in str(failure.value)
    assert attribute in str(failure.value)


def test_not_a_mapping():
    with pytest.raises(InvalidInput):
        parse_spec(["name"], index=INDEX)


def test_virtual_packages_are_known():
    assert parse(packages=["mail-transport-agent"]).packages == ["mail-transport-agent"]


def test_package_check_can_be_skipped():
    assert parse_spec({"name": "x", "packages": ["anything"]}, check_packages=False).packages == ["anything"]


def test_normalisation():
    spec = parse(packages=["nginx", "curl", "curl"], formats=["vhd", "qcow2", "vhd"],
                 files={"/etc/a": "text", "/etc/b": {"content": "b", "mode": 0o600}, "/etc/c": {"mode": "755"}},
                 run="echo hi")
    assert spec.packages == ["curl", "nginx"]
    assert spec.formats == ["qcow2", "vhd"]
    assert spec.files == {"/etc/a": {"content": "text", "mode": 0o644}, "/etc/b": {"content": "b", "mode": 0o600},
                          "/etc/c": {"content": "", "mode": 0o755}}
    assert spec.run == ["echo hi"]


def test_hash_is_stable_and_sensitive():
    base = parse(packages=["curl", "nginx"], formats=["qcow2", "vmdk"])
    same = parse(packages=["nginx", "curl"], formats=["vmdk", "qcow2"])
    assert base.spec_hash() == same.spec_hash()
    assert len(base.spec_hash()) == 64
    for change in ({"packages": ["curl"]}, {"formats": ["qcow2"]}, {"size_gib": 5}, {"cloud_init": False},
                   {"run": ["true"]}, {"files": {"/etc/x": "x"}}, {"name": "web2"}):
        fields = {"packages": ["curl", "nginx"], "formats": ["qcow2", "vmdk"]}
        fields.update(change)
        assert parse(**fields).spec_hash() != base.spec_hash(), change
    # the order of commands matters
    assert parse(run=["a", "b"]).spec_hash() != parse(run=["b", "a"]).spec_hash()


def test_hash_includes_the_recipe(monkeypatch):
    before = parse().spec_hash()
    monkeypatch.setattr(specmod, "RECIPE_VERSION", specmod.RECIPE_VERSION + 1)
    assert parse().spec_hash() != before


def test_canonical_modes_are_octal_strings():
    assert parse(files={"/etc/a": {"content": "", "mode": "0600"}}).canonical()["files"]["/etc/a"]["mode"] == "0600"
