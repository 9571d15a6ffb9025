"""The built collection on every ansible-core of meta/runtime.yml's requires_ansible (2.16-2.19).

For each core, in a venv holding only that core and the collection's own requirements files (what an
existing Ansible set-up has): the tarball installs; the inventory plugin lists two providers on the wire,
one of them with a vault-encrypted password; `sirocco.cimi.machine` runs a machine's whole lifecycle on
EC2 (check mode, real, check mode again, real again, then the same for its deletion) and the provider
confirms each step; a provider whose SDK is not installed fails with a message naming what to install.
"""

from __future__ import annotations

import json
import textwrap

import pytest
from conftest import REPO, ansible_warnings, ec2_connection, unwrap, write_json

ROLE = "compat"


def _tags(instance) -> dict:
    return {t["Key"]: t["Value"] for t in instance.get("Tags", [])}


def _instances(ec2, **filters):
    reply = ec2.describe_instances(Filters=[{"Name": k, "Values": [v]} for k, v in filters.items()])
    return [i for r in reply["Reservations"] for i in r["Instances"]]


def test_core_and_collection(core, tarball):
    version = core.run("ansible", "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("ansible [core %s." % core.version), version.stdout.splitlines()[0]
    listing = core.run("ansible-galaxy", "collection", "list", "-p", core.collections, "--format", "json")
    assert listing.returncode == 0, listing.stderr
    found = {name: info["version"] for path in json.loads(listing.stdout).values() for name, info in path.items()}
    assert found.get("sirocco.cimi") == tarball.name.rsplit("-", 1)[1][: -len(".tar.gz")]
    # every plugin's documentation loads in this core
    docs = core.run("ansible-doc", "--json", "--type", "inventory", "sirocco.cimi.cimi")
    assert docs.returncode == 0 and "sirocco.cimi.cimi" in json.loads(docs.stdout), docs.stderr
    modules = core.run("ansible-doc", "--json", "sirocco.cimi.machine", "sirocco.cimi.machine_info",
                       "sirocco.cimi.provider_info")
    assert modules.returncode == 0, modules.stderr
    assert len(json.loads(modules.stdout)) == 3


def test_inventory_two_providers_with_a_vaulted_password(core, moto, ec2, ami, xapi, tmp_path):
    tag = "inv-%s" % core.version
    web = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": tag + "-web"}, {"Key": "role", "Value": "web"}]},
    ])["Instances"][0]["InstanceId"]
    db = ec2.run_instances(ImageId=ami, InstanceType="t3.small", MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": tag + "-db"}]},
    ])["Instances"][0]["InstanceId"]
    ec2.stop_instances(InstanceIds=[db])
    try:
        vault_file = tmp_path / "vault-password"
        vault_file.write_text("compat-vault-%s\n" % core.version)
        env = core.env(ANSIBLE_VAULT_PASSWORD_FILE=str(vault_file))
        encrypted = core.run("ansible-vault", "encrypt_string", "--name", "password", xapi.password, env=env)
        assert encrypted.returncode == 0, encrypted.stderr
        xs_password = textwrap.indent(encrypted.stdout.split(":", 1)[1].strip(), "    ").strip()
        config = tmp_path / "compat.cimi.yml"
        config.write_text(textwrap.dedent("""\
            plugin: sirocco.cimi.cimi
            providers:
              - {aws}
              - name: xs
                provider: xenserver
                uri: {xs_uri}
                username: {xs_user}
                password: {xs_password}
            """).format(aws=json.dumps(dict(ec2_connection(moto), name="aws")), xs_uri=xapi.url,
                        xs_user=xapi.username, xs_password=xs_password))
        assert xapi.password not in config.read_text()

        result = core.run("ansible-inventory", "-i", config, "--list", env=env)
        assert result.returncode == 0, result.stderr
        assert ansible_warnings(result.stderr) == []
        data = unwrap(json.loads(result.stdout))
        hostvars = data["_meta"]["hostvars"]
        hosts = set(hostvars)
        assert {tag + "-web", tag + "-db", "seed-vm-000", "seed-vm-001"} <= hosts
        assert hostvars[tag + "-web"]["cimi_id"] == web and hostvars[tag + "-web"]["cimi_provider"] == "aws"
        assert hostvars[tag + "-web"]["cimi_state"] == "STARTED"
        assert hostvars[tag + "-db"]["cimi_state"] == "STOPPED" and hostvars[tag + "-db"]["cimi_provider_type"] == "ec2"
        assert hostvars["seed-vm-000"]["cimi_provider_type"] == "xenserver"
        assert hostvars["seed-vm-000"]["cimi_state"] == "STARTED" and hostvars["seed-vm-001"]["cimi_state"] == "STOPPED"
        assert tag + "-web" in data["provider_aws"]["hosts"] and "seed-vm-000" in data["provider_xs"]["hosts"]
        for secret in (moto.secret_key, xapi.password):
            assert secret not in result.stdout + result.stderr
    finally:
        ec2.terminate_instances(InstanceIds=[web, db])


LIFECYCLE = """\
- name: A machine's lifecycle through sirocco.cimi, in check mode and for real
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    # the modules run under the Python of this ansible-core's venv, which has boto3
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  module_defaults:
    group/sirocco.cimi.cimi: "{{ compat_connection }}"
  tasks:
    - name: What the provider offers
      sirocco.cimi.provider_info:
      register: compat_provider

    - name: Create and start, in check mode
      sirocco.cimi.machine: &machine
        name: "{{ compat_name }}"
        machine_config: t3.micro
        machine_image: "{{ compat_image }}"
        properties: {role: compat}
        state: started
      check_mode: true
      register: compat_create_check

    - name: Create and start
      sirocco.cimi.machine: *machine
      register: compat_create

    - name: Create and start again, in check mode
      sirocco.cimi.machine: *machine
      check_mode: true
      register: compat_create_check_again

    - name: Create and start again
      sirocco.cimi.machine: *machine
      register: compat_create_again

    - name: The machine as the provider lists it
      sirocco.cimi.machine_info:
        filter: "name='{{ compat_name }}'"
      register: compat_listed

    - name: Delete, in check mode
      sirocco.cimi.machine: &gone
        name: "{{ compat_name }}"
        state: absent
      check_mode: true
      register: compat_delete_check

    - name: Delete
      sirocco.cimi.machine: *gone
      register: compat_delete

    - name: Delete again
      sirocco.cimi.machine: *gone
      register: compat_delete_again

    - name: What each step reported
      ansible.builtin.copy:
        dest: "{{ compat_report }}"
        mode: "0600"
        content: "{{ report | to_nice_json }}"
      vars:
        report:
          provider: "{{ compat_provider.provider | default(compat_provider) }}"
          changed:
            create_check: "{{ compat_create_check is changed }}"
            create: "{{ compat_create is changed }}"
            create_check_again: "{{ compat_create_check_again is changed }}"
            create_again: "{{ compat_create_again is changed }}"
            delete_check: "{{ compat_delete_check is changed }}"
            delete: "{{ compat_delete is changed }}"
            delete_again: "{{ compat_delete_again is changed }}"
          id: "{{ compat_create.machine.id }}"
          state: "{{ compat_create.machine.state }}"
          listed: "{{ compat_listed.machines | map(attribute='id') | list }}"
"""


def test_machine_lifecycle_on_ec2(core, moto, ec2, ami, tmp_path):
    name = "compat-%s-machine" % core.version
    playbook = tmp_path / "lifecycle.yml"
    playbook.write_text(LIFECYCLE)
    report = tmp_path / "report.json"
    variables = {"compat_connection": ec2_connection(moto), "compat_name": name, "compat_image": ami,
                 "compat_report": str(report)}
    extra = write_json(tmp_path / "vars.json", variables)
    result = core.run("ansible-playbook", "-i", "localhost,", playbook, "-e", "@%s" % extra)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert ansible_warnings(result.stderr) == []
    assert moto.secret_key not in result.stdout + result.stderr
    seen = json.loads(report.read_text())
    assert seen["changed"] == {"create_check": True, "create": True, "create_check_again": False,
                               "create_again": False, "delete_check": True, "delete": True, "delete_again": False}
    assert seen["state"] == "STARTED" and seen["listed"] == [seen["id"]]
    # the provider saw exactly one machine of that name, made running, then terminated
    (instance,) = _instances(ec2, **{"tag:Name": name})
    assert instance["InstanceId"] == seen["id"] and instance["InstanceType"] == "t3.micro"
    assert instance["State"]["Name"] == "terminated"
    assert _tags(instance).get("role") == ROLE


@pytest.mark.parametrize("provider, package", [("openstack", "openstacksdk"), ("vsphere", "pyvmomi"),
                                               ("libvirt", "libvirt-python"), ("libcloud", "apache-libcloud")])
def test_a_provider_without_its_sdk_names_what_to_install(core, provider, package):
    """The compat venvs hold only the ec2 and xenserver requirements: another provider says what it needs."""
    python = core.python
    result = core.run("ansible", "localhost", "-i", "localhost,", "-c", "local", "-m", "sirocco.cimi.provider_info",
                      "-a", "provider=%s uri=http://127.0.0.1:9/" % provider,
                      "-e", "ansible_python_interpreter=%s" % python)
    assert result.returncode != 0
    message = result.stdout + result.stderr
    assert "provider '%s' needs the Python package %s" % (provider, package) in message, message
    assert str(python) in message and "requirements/%s.txt" % provider in message, message
    assert "Traceback" not in message


def test_the_lock_decided_every_version(core):
    """The venv holds what the collection's requirements files name, each at the version of its core's lock."""
    installed = core.run("python", "-m", "pip", "list", "--format", "json")
    assert installed.returncode == 0, installed.stderr
    versions = {_canonical(p["name"]): p["version"] for p in json.loads(installed.stdout)}
    pins = {}
    for line in (REPO / "locks" / ("ansible-core-%s.txt" % core.version)).read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, version = line.split(";")[0].strip().split("==")
            pins[_canonical(name)] = version
    assert versions["ansible-core"].startswith(core.version + ".")
    assert {"boto3", "xenapi"} <= set(versions)
    assert not {"openstacksdk", "pyvmomi", "libvirt-python", "apache-libcloud"} & set(versions)
    unpinned = {name: version for name, version in versions.items()
                if name not in ("pip", "setuptools") and pins.get(name) != version}
    assert unpinned == {}, "installed at another version than the lock's (or not in it)"


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")
