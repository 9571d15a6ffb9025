"""How the inventory reaches a guest: ansible_host/port/user and the known_hosts file of guests' host keys."""

from __future__ import annotations

import shlex

from ansible_collections.sirocco.cimi.plugins.plugin_utils import inventory as inv

KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP/espv2CVbTs1bchWKsGXfSB/D+ZXQtBqMYrgSITfUa"
KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKfBqQ8m2Gm1y1k2m7xzvV5i7b0cG0Lq3mYwVbA7wq2Z"


def forwarded(machine_id, port, key=KEY_A, user="debian"):
    return {"id": machine_id, "name": "m", "properties": {inv.USER_PROPERTY: user, inv.HOST_KEY_PROPERTY: key},
            "interfaces": [{"addresses": [{"ip": "127.0.0.1", "sshPort": port}]}]}


def test_forwarded_guest_gets_address_port_user_and_key_checking(tmp_path):
    known = str(tmp_path / "known hosts")
    out = inv.connection_vars(forwarded("u-1", 42201), known)
    assert out["ansible_host"] == "127.0.0.1" and out["ansible_port"] == 42201 and out["ansible_user"] == "debian"
    args = shlex.split(out["ansible_ssh_common_args"])
    assert args == ["-o", "UserKnownHostsFile=" + known, "-o", "HostKeyAlias=" + inv.host_key_alias("u-1")]


def test_plain_address_without_port_key_or_user():
    machine = {"id": "i-1", "interfaces": [{"addresses": [{"ip": "10.0.0.5"}]}]}
    assert inv.connection_vars(machine, "/tmp/kh") == {"ansible_host": "10.0.0.5"}
    assert inv.connection_vars({"id": "i-2"}, "/tmp/kh") == {}


def test_no_known_hosts_file_no_ssh_arguments():
    assert "ansible_ssh_common_args" not in inv.connection_vars(forwarded("u-1", 42201), None)


def test_known_hosts_lines_replaced_per_machine_others_kept(tmp_path):
    path = tmp_path / "sub" / "known_hosts"
    inv.write_known_hosts(str(path), [forwarded("u-1", 42201), forwarded("u-2", 42202, KEY_B)])
    path.write_text(path.read_text() + "github.com ssh-ed25519 AAAAother\n")
    # a new guest, same machine id reused? no: a new machine has a new id; the old one's key is replaced
    inv.write_known_hosts(str(path), [forwarded("u-1", 42201, KEY_B)])
    lines = path.read_text().splitlines()
    assert "%s %s" % (inv.host_key_alias("u-1"), KEY_B) in lines
    assert "%s %s" % (inv.host_key_alias("u-2"), KEY_B) in lines
    assert "github.com ssh-ed25519 AAAAother" in lines
    assert len(lines) == 3 and oct(path.stat().st_mode & 0o777) == "0o600"


def test_host_key_makes_no_group_user_does():
    groups = inv.default_groups("local", forwarded("u-1", 42201))
    assert "prop_sirocco_user_debian" in groups
    assert not [g for g in groups if "sshHostKey" in g]
