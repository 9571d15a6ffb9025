"""sirocco.cimi.cimi through the real ``ansible-inventory`` (and ``ansible-playbook``) against providers on the wire.

    pytest tests/integration/inventory            (~40 s; vcsim is built on first use)
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from inventory_helpers import BIN, ansible_env

SLOW_TIMEOUT = 3  # seconds the stalled provider is given


def libvirt(label, uri, **kw):
    return dict(name=label, provider="libvirt", uri=uri, **kw)


def xen(label, server, **kw):
    entry = dict(name=label, provider="xenserver", uri=server.url, username=server.username,
                 password=server.password)
    entry.update(kw)
    return entry


def source(*providers, **options):
    return dict(plugin="sirocco.cimi.cimi", providers=list(providers), **options)


# -- several providers at once, one down, one slow ----------------------------------------------------

@pytest.fixture
def everything(libvirt_hosts, xapi, vcsim, closed_port, stall):
    """Four working providers, one that refuses connections and one that never answers."""
    return source(
        libvirt("a", libvirt_hosts["a"]),
        libvirt("b", libvirt_hosts["b"]),
        xen("xs", xapi),
        dict(name="esx", provider="vsphere", uri=vcsim.url, username=vcsim.username, password=vcsim.password,
             validate_certs=False),
        dict(name="down", provider="xenserver", uri="http://127.0.0.1:%d" % closed_port, password="down-secret-1"),
        dict(name="slow", provider="xenserver", uri="http://127.0.0.1:%d" % stall.port, password="slow-secret-2",
             timeout=SLOW_TIMEOUT),
    )


def test_several_providers_one_down_one_slow(inventory, everything, stall):
    accepted = stall.accepted
    result = inventory(everything)
    assert result.rc == 0, result.stderr
    # every machine of the four providers that answered, in every state; duplicates renamed with the label
    assert {"web1_a", "db1", "batch1", "web1_b", "cache1", "seed-vm-000", "seed-vm-001", "seed-vm-002",
            "seed-vm-003"} <= result.hosts
    assert {h for h in result.hosts if h.startswith("ha-host_VM")} == {"ha-host_VM0", "ha-host_VM1"}
    assert len(result.hosts) == 11
    # the failures are warnings naming the label and type, never a secret
    assert "provider 'down' (xenserver) left out" in result.warnings
    assert "Connection refused" in result.warnings
    assert "provider 'slow' (xenserver) left out: no answer within its timeout of %d s" % SLOW_TIMEOUT \
        in result.warnings
    assert stall.accepted > accepted  # the slow provider really was asked, over TCP
    for secret in ("down-secret-1", "slow-secret-2", everything["providers"][2]["password"], "vcsim-secret"):
        assert secret not in result.stdout + result.stderr
    # concurrently: the slow provider's timeout bounds the run, not the sum of the providers' times
    assert result.seconds < SLOW_TIMEOUT + 6, result.seconds


def test_host_variables_and_default_groups(inventory, everything):
    everything["providers"] = everything["providers"][:4]
    result = inventory(everything)
    assert result.rc == 0, result.stderr
    assert result.ansible_warnings == []
    db1 = result.hostvars["db1"]
    assert db1["cimi_state"] == "STOPPED" and db1["cimi_provider"] == "a" and db1["cimi_provider_type"] == "libvirt"
    assert db1["cimi_id"] == "00000000-0000-4000-8000-00000000000b"
    assert db1["cimi"]["resourceURI"] == "http://schemas.dmtf.org/cimi/2/Machine"
    assert db1["cimi"]["cpu"] == 4 and db1["cimi"]["memory"] == 256 * 1024
    assert db1["cimi"]["properties"] == {"role": "db", "env": "prod", "team": "a.b c"}
    assert "ansible_host" not in db1
    # a running XenServer VM with an interface: its address becomes ansible_host
    assert result.hostvars["seed-vm-001"]["ansible_host"].startswith("10.")
    assert result.hostvars["seed-vm-001"]["cimi"]["interfaces"][0]["addresses"]
    # default groups: provider, state (every state), location, properties; names sanitized
    assert result.group("provider_a") == {"web1_a", "db1", "batch1"}
    assert result.group("provider_xs") == {"seed-vm-000", "seed-vm-001", "seed-vm-002", "seed-vm-003"}
    assert result.group("state_stopped") >= {"db1", "batch1", "seed-vm-003"}
    assert result.group("state_started") >= {"web1_a", "web1_b", "cache1", "seed-vm-000", "seed-vm-001"}
    assert result.group("prop_role_web") == {"web1_a", "web1_b"}
    assert result.group("prop_env_prod") == {"web1_a", "db1"}
    assert result.group("prop_team_a_b_c") == {"db1"}
    esx_location = result.hostvars["ha-host_VM0"]["cimi_location"]  # a standalone ESX host: its one location
    esx_group = "location_" + esx_location.replace(".", "_").replace("-", "_")
    assert result.group(esx_group) == {"ha-host_VM0", "ha-host_VM1"}
    assert "cimi_location" not in result.hostvars["seed-vm-000"]  # a pool of two hosts: no single location
    for group in result.groups:
        assert group.replace("_", "").isalnum(), group


def test_graph_and_a_playbook_targeting_its_groups(inventory, libvirt_hosts, collections_path, tmp_path):
    config = source(libvirt("a", libvirt_hosts["a"]), libvirt("b", libvirt_hosts["b"]))
    graph = inventory(config, "--graph", name="graph.cimi.yml")
    assert graph.rc == 0, graph.stderr
    assert "@provider_a:" in graph.stdout and "|--web1_a" in graph.stdout and "@state_stopped:" in graph.stdout
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "the stopped production machines", "hosts": "state_stopped:&prop_env_prod", "gather_facts": False,
        "tasks": [{"name": "show",
                   "ansible.builtin.debug": {"msg": "{{ inventory_hostname }} {{ cimi_state }} {{ cimi.cpu }}"}}]}]))
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(tmp_path / "graph.cimi.yml"), str(playbook)],
                          env=ansible_env(collections_path, tmp_path), cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert '"msg": "db1 STOPPED 4"' in proc.stdout
    assert "ok=1" in proc.stdout and "batch1" not in proc.stdout and "web1" not in proc.stdout


def test_fail_on_errors(inventory, libvirt_hosts, closed_port):
    config = source(libvirt("a", libvirt_hosts["a"]),
                    dict(name="down", provider="xenserver", uri="http://127.0.0.1:%d" % closed_port,
                         password="down-secret-3"),
                    fail_on_errors=True)
    result = inventory(config)
    assert result.rc != 0
    assert "provider 'down' (xenserver) left out" in result.warnings
    assert "down-secret-3" not in result.stdout + result.stderr


def test_every_page_of_every_provider(inventory, libvirt_hosts, xapi):
    result = inventory(source(libvirt("a", libvirt_hosts["a"]), xen("xs", xapi), page_size=1))
    assert result.rc == 0, result.stderr
    assert len(result.group("provider_a")) == 3 and len(result.group("provider_xs")) == 4


# -- host names --------------------------------------------------------------------------------------

def test_hostnames_preference_list(inventory, libvirt_hosts, xapi):
    result = inventory(source(libvirt("a", libvirt_hosts["a"]), xen("xs", xapi),
                              hostnames=["address", "property:role", "name"]))
    assert result.rc == 0, result.stderr
    address = next(h for h in result.hosts if h.startswith("10."))  # seed-vm-001, the VM with an address
    assert result.hostvars[address]["cimi"]["name"] == "seed-vm-001"
    assert "ansible_host" not in result.hostvars[address]  # the host name is the address already
    assert {"web", "db", "batch1"} <= result.hosts  # a role when there is one, else the name
    by_id = inventory(source(libvirt("a", libvirt_hosts["a"]), hostnames=["id"]))
    assert by_id.hosts == {"00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b",
                           "00000000-0000-4000-8000-00000000000c"}


def test_duplicates_are_renamed_predictably(inventory, libvirt_hosts):
    # the same host file twice (two labels), plus b: web1 three times, db1 twice
    config = source(libvirt("a", libvirt_hosts["a"]), libvirt("a2", libvirt_hosts["a"]),
                    libvirt("b", libvirt_hosts["b"]))
    first = inventory(config)
    assert first.rc == 0, first.stderr
    assert first.hosts == {"web1_a", "web1_a2", "web1_b", "db1_a", "db1_a2", "batch1_a", "batch1_a2", "cache1"}
    # (that the order of the providers does not change the names is a unit test of assign_hostnames)
    # by role: "web" on a and on b -> suffixed with the label; unique names stay; no role -> the name
    by_role = inventory(source(libvirt("b", libvirt_hosts["b"]), libvirt("a", libvirt_hosts["a"]),
                               hostnames=["property:role", "name"]))
    assert by_role.hosts == {"web_a", "web_b", "cache", "db", "batch1"}
    # by env: "prod" twice within provider a -> label and id; "dev" once
    by_env = inventory(source(libvirt("b", libvirt_hosts["b"]), libvirt("a", libvirt_hosts["a"]),
                              hostnames=["property:env", "name"]))
    assert by_env.hosts == {"prod_a_00000000-0000-4000-8000-00000000000a",
                            "prod_a_00000000-0000-4000-8000-00000000000b", "dev", "cache1", "batch1"}


# -- constructed ---------------------------------------------------------------------------------------

def test_compose_groups_keyed_groups(inventory, libvirt_hosts, xapi):
    config = source(
        libvirt("a", libvirt_hosts["a"]), xen("xs", xapi),
        compose={"memory_mib": "cimi.memory // 1024", "owner": "cimi.properties.role | default('nobody')"},
        groups={"big": "cimi.cpu >= 4", "xen_running": "cimi_provider == 'xs' and cimi_state == 'STARTED'"},
        keyed_groups=[{"key": "cimi_provider_type", "prefix": "type"},
                      {"key": "cimi.properties.env | default('none')", "prefix": "env"}],
        default_groups=["provider"])
    result = inventory(config)
    assert result.rc == 0, result.stderr
    assert result.hostvars["db1"]["memory_mib"] == 256 and result.hostvars["db1"]["owner"] == "db"
    assert result.hostvars["batch1"]["owner"] == "nobody"
    assert result.group("big") == {"db1"}
    assert result.group("xen_running") == {"seed-vm-000", "seed-vm-001", "seed-vm-002"}
    assert result.group("type_libvirt") == {"web1", "db1", "batch1"}
    assert result.group("type_xenserver") == {"seed-vm-000", "seed-vm-001", "seed-vm-002", "seed-vm-003"}
    assert result.group("env_prod") == {"web1", "db1"} and "batch1" in result.group("env_none")
    # default_groups: only the provider groups were asked for
    assert not any(g.startswith(("state_", "prop_", "location_")) for g in result.groups)


def test_strict(inventory, libvirt_hosts):
    bad = {"broken": "cimi.no_such_attribute.deeper"}
    lenient = inventory(source(libvirt("a", libvirt_hosts["a"]), compose=bad, strict=False))
    assert lenient.rc == 0 and "broken" not in lenient.hostvars["web1"]
    strict = inventory(source(libvirt("a", libvirt_hosts["a"]), compose=bad, strict=True))
    assert strict.rc != 0 and "Could not set broken" in strict.warnings


# -- caching ------------------------------------------------------------------------------------------

def test_cache_serves_a_provider_that_went_away(inventory, libvirt_hosts, xapi_control, tmp_path):
    """Cache on: the second run is served from the cache, proven by stopping the stand-in first."""
    server = xapi_control.start(hosts=1, seed_vms=2)
    cache_dir = tmp_path / "cache"
    try:
        config = source(libvirt("a", libvirt_hosts["a"]), xen("xs", server), xen("intruder", server,
                        username="intruder", password="wrong-password-4"),
                        cache=True, cache_plugin="ansible.builtin.jsonfile", cache_connection=str(cache_dir),
                        cache_timeout=600)
        first = inventory(config, name="cached.cimi.yml")
        assert first.rc == 0, first.stderr
        assert {"seed-vm-000", "seed-vm-001", "web1"} <= first.hosts
        assert "provider 'intruder' (xenserver) left out" in first.warnings
        files = sorted(cache_dir.iterdir())
        assert len(files) == 2  # one entry per provider account that answered; the failed one is not cached
        for path in files:
            text = path.read_text()
            assert server.password not in text and "wrong-password-4" not in text and server.url not in text
            assert server.username not in path.name and "xenserver" not in path.name
        # same uri, another account: not served the first account's entry
        again = inventory(config, name="cached.cimi.yml")
        assert "provider 'intruder' (xenserver) left out" in again.warnings
    finally:
        server.stop()
    # the stand-in is gone: the hosts still come, from the cache
    cached = inventory(config, name="cached.cimi.yml")
    assert cached.rc == 0, cached.stderr
    assert cached.hosts == first.hosts
    assert "provider 'xs'" not in cached.warnings
    # --flush-cache asks again: xs is down now, a (libvirt) still answers
    flushed = inventory(config, "--list", "--flush-cache", name="cached.cimi.yml")
    assert flushed.rc == 0, flushed.stderr
    assert "provider 'xs' (xenserver) left out" in flushed.warnings
    assert "web1" in flushed.hosts and "seed-vm-000" not in flushed.hosts


def test_cache_off_asks_every_time(inventory, libvirt_hosts, xapi_control, tmp_path):
    server = xapi_control.start(hosts=1, seed_vms=1)
    config = source(xen("xs", server), libvirt("a", libvirt_hosts["a"]), cache=False,
                    cache_plugin="ansible.builtin.jsonfile", cache_connection=str(tmp_path / "cache"))
    try:
        assert "seed-vm-000" in inventory(config, name="nocache.cimi.yml").hosts
    finally:
        server.stop()
    after = inventory(config, name="nocache.cimi.yml")
    assert "seed-vm-000" not in after.hosts and "provider 'xs' (xenserver) left out" in after.warnings
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_a_corrupt_cache_entry_is_asked_again(inventory, libvirt_hosts, tmp_path):
    cache_dir = tmp_path / "cache-corrupt"
    config = source(libvirt("a", libvirt_hosts["a"]), cache=True, cache_plugin="ansible.builtin.jsonfile",
                    cache_connection=str(cache_dir))
    assert inventory(config, name="corrupt.cimi.yml").rc == 0
    [entry] = cache_dir.iterdir()
    entry.write_text("{not json")
    again = inventory(config, name="corrupt.cimi.yml")
    assert again.rc == 0, again.stderr
    assert again.hosts == {"web1", "db1", "batch1"}
    assert json.loads(entry.read_text()) and "00000000-0000-4000-8000-00000000000a" in entry.read_text()  # afresh


# -- credentials: vault, environment, clouds file; never shown ----------------------------------------------

def _vault(text, password_file, collections_path, tmp_path):
    proc = subprocess.run([str(BIN / "ansible-vault"), "encrypt_string", "--vault-password-file", str(password_file),
                           text], env=ansible_env(collections_path, tmp_path), capture_output=True, text=True,
                          check=True)
    return proc.stdout.strip()


def test_credentials_from_vault_environment_and_clouds_file(inventory, xapi, collections_path, tmp_path):
    password_file = tmp_path / "vault-pass"
    password_file.write_text("vault-key-5\n")
    encrypted = _vault(xapi.password, password_file, collections_path, tmp_path)
    vaulted = ("plugin: sirocco.cimi.cimi\nproviders:\n  - name: xs\n    provider: xenserver\n    uri: %s\n"
               "    username: %s\n    password: %s\n"
               % (xapi.url, xapi.username, encrypted.replace("\n", "\n      ")))
    result = inventory(vaulted, "--list", "--vault-password-file", str(password_file), "-vvv")
    assert result.rc == 0, result.stderr
    assert len(result.group("provider_xs")) == 4
    assert xapi.password not in result.stdout + result.stderr

    # the password from the environment, through a template
    templated = source(xen("xs", xapi, password="{{ lookup('ansible.builtin.env', 'XS_SECRET') }}"))
    result = inventory(templated, env={"XS_SECRET": xapi.password})
    assert result.rc == 0 and len(result.group("provider_xs")) == 4, result.stderr
    # a wrong one: the warning does not show it
    result = inventory(templated, env={"XS_SECRET": "not-it-6"})
    assert "provider 'xs' (xenserver) left out" in result.warnings and "not-it-6" not in result.stderr
    # SIROCCO_* variables are the top-level defaults, as for the modules
    result = inventory(source({"name": "xs"}), env={"SIROCCO_PROVIDER": "xenserver", "SIROCCO_URI": xapi.url,
                                                    "SIROCCO_USERNAME": xapi.username,
                                                    "SIROCCO_PASSWORD": xapi.password})
    assert result.rc == 0 and len(result.group("provider_xs")) == 4, result.stderr

    # a vault-encrypted clouds file, OpenStack spelling
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(yaml.safe_dump({"clouds": {"lab-xen": {
        "provider": "xenserver", "auth": {"auth_url": xapi.url, "username": xapi.username,
                                          "password": xapi.password}}}}))
    subprocess.run([str(BIN / "ansible-vault"), "encrypt", "--vault-password-file", str(password_file), str(clouds)],
                   env=ansible_env(collections_path, tmp_path), capture_output=True, check=True)
    result = inventory(source({"cloud": "lab-xen"}, clouds_file=str(clouds)),
                       "--list", "--vault-password-file", str(password_file))
    assert result.rc == 0, result.stderr
    assert len(result.group("provider_lab-xen".replace("-", "_"))) == 4
    assert {v["cimi_provider"] for v in result.hostvars.values()} == {"lab-xen"}
    assert xapi.password not in result.stdout + result.stderr


def test_one_provider_at_the_top_level(inventory, libvirt_hosts):
    result = inventory({"plugin": "sirocco.cimi.cimi", "provider": "libvirt", "uri": libvirt_hosts["b"]})
    assert result.rc == 0, result.stderr
    assert result.hosts == {"web1", "cache1"} and result.group("provider_libvirt") == {"web1", "cache1"}
    # top-level options are the defaults of each entry
    result = inventory({"plugin": "sirocco.cimi.cimi", "uri": libvirt_hosts["a"],
                        "providers": [{"name": "x"}, {"name": "y", "uri": libvirt_hosts["b"]}]})
    assert result.group("provider_x") == {"web1_x", "db1", "batch1"}
    assert result.group("provider_y") == {"web1_y", "cache1"}


@pytest.mark.parametrize("config, message", [
    ({"providers": [{"provider": "libvirt", "uri": "test:///default", "pasword": "x"}]},
     "providers[0]: unknown option(s) pasword"),
    ({"providers": [{"provider": "nimbus"}]}, "providers[0]: value of provider must be one of"),
    ({"providers": [{"provider": "libvirt", "name": "x"}, {"provider": "libvirt", "name": "x"}]},
     "'x' names two providers"),
    ({"providers": [{"cloud": "nowhere"}], "clouds_file": "/nonexistent/clouds.yaml"}, "clouds_file: cannot read"),
    ({"hostnames": ["fqdn"]}, "hostnames: 'fqdn' is none of"),
])
def test_configuration_errors_fail_the_source(inventory, config, message):
    result = inventory(dict({"plugin": "sirocco.cimi.cimi"}, **config))
    assert result.rc != 0
    assert message in result.warnings, result.stderr


def test_demo_source_against_the_local_libvirtd(inventory):
    """playbooks/inventory/demo.cimi.yml (what `make demo` graphs) parses and reaches qemu:///system."""
    demo = (Path(__file__).resolve().parents[3] / "playbooks" / "inventory" / "demo.cimi.yml").read_text()
    result = inventory(demo, "--graph", name="demo.cimi.yml")
    assert result.rc == 0, result.stderr
    assert result.stdout.startswith("@all:") and "left out" not in result.warnings, result.stderr


# -- EC2 on moto, with the others ----------------------------------------------------------------------------

def test_ec2_with_the_others(inventory, moto, libvirt_hosts, xapi):
    config = source(dict(name="aws", provider="ec2", uri=moto.url, region="us-east-1", username=moto.access_key,
                         password=moto.secret_key),
                    libvirt("a", libvirt_hosts["a"]), xen("xs", xapi))
    result = inventory(config)
    assert result.rc == 0, result.stderr
    assert result.group("provider_aws") == {"app1", "app2", "web1_aws"}  # web1 is also on libvirt host a
    assert "web1_a" in result.hosts and len(result.group("provider_xs")) == 4
    assert result.hostvars["app2"]["cimi_state"] == "STOPPED" and "app2" in result.group("state_stopped")
    assert result.hostvars["app1"]["cimi_id"] in moto.instance_ids
    assert result.hostvars["app1"]["cimi_provider_type"] == "ec2"
    assert result.group("location_us_east_1") == {"app1", "app2", "web1_aws"}
    assert result.group("prop_role_web") >= {"app1", "app2"}
    assert moto.secret_key not in result.stdout + result.stderr
