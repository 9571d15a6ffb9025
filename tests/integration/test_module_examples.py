"""Every module's documentation renders, and its EXAMPLES run as written.

``ansible-doc`` renders each module of plugins/modules (its JSON form, no warning). Each module's EXAMPLES are
then run as the tasks of one playbook on localhost, the provider options coming from
``module_defaults: group/sirocco.cimi.cimi`` as the examples say: the real libvirtd at qemu:///system (with a
transient storage pool of the session as its volume and image pool: libvirtd has no pool of its own), or a
``siroccod serve`` over real QEMU for the modules whose examples need what only a CIMI endpoint keeps
(jobs, stored credentials, templates). Examples clean up what they make; the test then checks that no
``sirocco-doc-`` machine is left on libvirtd.

    pytest tests/integration/test_module_examples.py -k volume
"""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import libvirt
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MODULES = sorted(p.stem for p in (REPO / "plugins" / "modules").glob("*.py") if not p.stem.startswith("_"))
# modules whose examples talk to a CIMI endpoint (provider: cimi): what they show exists only there
ON_DAEMON = {"job_info", "credential", "credential_info", "machine_config", "machine_config_info",
             "machine_template", "machine_template_info", "system_template", "system_template_info"}
# modules whose examples are not run, and why (each must say)
NOT_RUN = {
    "machine_image": "its examples build a Debian image with the factory (minutes, several hundred MB; "
                     "make images and tests/integration/playbooks/test_images.py run that) and reach OpenStack "
                     "and remote endpoints by name",
}
TIMEOUT = 600
PREFIX = "sirocco-doc-"


def _env(collections_path, tmp_path):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections_path), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_LOCALHOST_WARNING="0",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
               ANSIBLE_CALLBACK_RESULT_FORMAT="yaml")
    for name in ("SIROCCO_PROVIDER", "SIROCCO_URI", "SIROCCO_USERNAME", "SIROCCO_PASSWORD", "SIROCCO_REGION"):
        env.pop(name, None)
    return env


def _tool(name):
    return str(Path(sys.executable).parent / name)


@pytest.mark.parametrize("module", MODULES)
def test_documentation_renders(module, collections_path, tmp_path):
    done = subprocess.run([_tool("ansible-doc"), "-t", "module", "--json", "sirocco.cimi." + module],
                          env=_env(collections_path, tmp_path), capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr.replace("CryptographyDeprecationWarning", ""), done.stderr
    doc = json.loads(done.stdout)["sirocco.cimi." + module]
    assert doc["doc"]["short_description"] and doc["doc"]["description"]
    tasks = yaml.safe_load(doc["examples"])
    assert isinstance(tasks, list) and tasks, "module %s has no examples" % module
    assert all(isinstance(t, dict) and t.get("name") for t in tasks), "every example task has a name"
    assert doc["return"], "module %s documents no return values" % module


def examples(module):
    """The EXAMPLES string of a module file, read without importing it."""
    tree = ast.parse((REPO / "plugins" / "modules" / (module + ".py")).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "EXAMPLES":
            return node.value.value
    raise AssertionError("module %s has no EXAMPLES" % module)


@pytest.fixture(scope="session")
def doc_pool(libvirtd, tmp_path_factory):
    """A transient dir storage pool for the examples' volumes and disks; gone with what is left in it."""
    target = tmp_path_factory.mktemp("doc-pool")
    target.chmod(0o755)
    name = "sirocco-doc-pool-%d" % os.getpid()
    conn = libvirt.open(libvirtd)
    pool = conn.storagePoolCreateXML("<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>"
                                     % (name, target), 0)
    try:
        yield name
    finally:
        for vol in pool.listAllVolumes(0):
            vol.delete(0)
        pool.destroy()
        conn.close()


def _leftovers(uri):
    conn = libvirt.open(uri)
    try:
        return sorted(d.name() for d in conn.listAllDomains(0) if d.name().startswith(PREFIX))
    finally:
        conn.close()


@pytest.mark.parametrize("module", [m for m in MODULES if m not in NOT_RUN])
def test_examples_run_as_written(module, request, collections_path, tmp_path):
    tasks = yaml.safe_load(examples(module))
    if module in ON_DAEMON:
        peer = request.getfixturevalue("siroccod_qemu")
        defaults = {"provider": "cimi", "uri": peer["sirocco_it_cimi_uri"],
                    "username": peer["sirocco_it_cimi_username"], "password": peer["sirocco_it_cimi_password"]}
    else:
        pool = request.getfixturevalue("doc_pool")
        defaults = {"provider": "libvirt", "uri": request.getfixturevalue("libvirtd"),
                    "provider_options": {"volume_pool": pool, "image_pool": pool}}
    playbook = tmp_path / "examples.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "the examples of sirocco.cimi.%s" % module, "hosts": "localhost", "connection": "local",
        "gather_facts": False, "vars": {"ansible_python_interpreter": sys.executable},
        "module_defaults": {"group/sirocco.cimi.cimi": defaults}, "tasks": tasks}], sort_keys=False))
    done = subprocess.run([_tool("ansible-playbook"), "-i", "localhost,", str(playbook)],
                          env=_env(collections_path, tmp_path), cwd=tmp_path, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)
    if done.returncode != 0:
        output = "%s\n%s" % (done.stdout, done.stderr)
        pytest.fail("the examples of %s failed (exit %d)\n%s" % (module, done.returncode, output), pytrace=False)
    recap = done.stdout[done.stdout.rfind("PLAY RECAP"):]
    assert "failed=0" in recap, done.stdout
    if module not in ON_DAEMON:
        assert _leftovers(defaults["uri"]) == [], "the examples of %s left machines behind" % module
