"""Run every integration target (tests/integration/targets/<name>/tasks/main.yml) with ansible-playbook.

Each target is applied as a role to localhost by a playbook generated here, one pytest test per
target, against the REAL libvirtd at qemu:///system (see tests/standins/start-libvirtd.sh). Targets
named ``*_siroccod`` run against a real ``siroccod serve`` process started here instead (the daemon's
embedded default, a normal user of its own tenant), whose Cloud Entry Point and credentials they get
as the variables ``sirocco_it_cimi_uri``, ``sirocco_it_cimi_username``, ``sirocco_it_cimi_password``,
``sirocco_it_cimi_token`` (a bearer token of that user) and ``sirocco_it_cimi_image_dir`` (the directory
its ``image_sources`` allow file:// images from). Targets named ``*_siroccod_qemu`` get the same variables
for a second daemon whose one host is the real QEMU behind libvirtd (volume attach and resize, which the
test driver lacks), with a storage pool of its own. Targets named ``*_ec2`` run against a moto server
(EC2 + CloudWatch) started here: ``sirocco_it_ec2_uri``, ``sirocco_it_ec2_access_key``,
``sirocco_it_ec2_secret_key``, ``sirocco_it_ec2_region`` and ``sirocco_it_ec2_options`` (the ec2
connector's provider_options: instance types, the seed AMI). Targets named ``*_openstack`` run against
the OpenStack stand-in (real Keystone, Glance, Nova, Cinder; ``make openstack``):
``sirocco_it_openstack_options`` (cloud, clouds_yaml, image). The collection under test is this
working tree, linked into a temporary ANSIBLE_COLLECTIONS_PATH. On failure the test shows the
playbook's output.

    pytest tests/integration                     every target
    pytest tests/integration -k machine_info     one target
"""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TARGETS = Path(__file__).resolve().parent / "targets"
TIMEOUT = int(os.environ.get("SIROCCO_IT_TIMEOUT", "900"))  # seconds per target
# target name suffix -> the session fixture giving its peer's playbook variables (the longest suffix wins)
PEERS = {"_siroccod_qemu": "siroccod_qemu", "_siroccod": "siroccod", "_ec2": "moto_ec2", "_openstack": "openstack"}


def targets():
    """Test targets; setup_* targets are dependencies of others (ansible-test's convention), not tests."""
    return sorted(p.name for p in TARGETS.iterdir()
                  if (p / "tasks" / "main.yml").is_file() and not p.name.startswith("setup_"))


def peer_fixture(target):
    """The name of the fixture giving ``target``'s peer (libvirtd unless its name ends with a PEERS suffix)."""
    for suffix in sorted(PEERS, key=len, reverse=True):
        if target.endswith(suffix):
            return PEERS[suffix]
    return None


@pytest.mark.parametrize("target", targets())
def test_target(target, request, collections_path, tmp_path):
    run_id = "%s-%s" % (time.strftime("%H%M%S"), uuid.uuid4().hex[:6])
    fixture = peer_fixture(target)
    if fixture is not None:
        peer = request.getfixturevalue(fixture)
    else:
        peer = {"sirocco_it_uri": request.getfixturevalue("libvirtd")}
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "integration target %s" % target,
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "vars": {
            "ansible_python_interpreter": sys.executable,
            "sirocco_it_id": run_id,
            **peer,
        },
        "roles": [target],
    }], sort_keys=False))
    env = dict(
        os.environ,
        ANSIBLE_ROLES_PATH=str(TARGETS),
        ANSIBLE_COLLECTIONS_PATH=str(collections_path),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
        ANSIBLE_STDOUT_CALLBACK="default",
        ANSIBLE_CALLBACK_RESULT_FORMAT="yaml",
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
        # per-task durations (tests/output/junit/<target>/*.xml): where a slow target spends its time
        ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.junit",
        JUNIT_OUTPUT_DIR=str(REPO / "tests" / "output" / "junit" / target),
        JUNIT_TASK_CLASS="yes",
    )
    for name in ("SIROCCO_PROVIDER", "SIROCCO_URI", "SIROCCO_USERNAME", "SIROCCO_PASSWORD", "SIROCCO_REGION"):
        env.pop(name, None)  # the targets say what they use
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", str(playbook)]
    started = time.monotonic()
    try:
        proc = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail("target %s did not finish within %d s\n%s" % (target, TIMEOUT, _text(exc.stdout)))
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        pytest.fail("target %s failed (ansible-playbook exit %d after %.1f s)\n--- stdout ---\n%s\n--- stderr ---\n%s"
                    % (target, proc.returncode, elapsed, proc.stdout, proc.stderr), pytrace=False)
    recap = proc.stdout[proc.stdout.rfind("PLAY RECAP"):]
    assert "failed=0" in recap and "unreachable=0" in recap, proc.stdout
    print("target %s: %.1f s\n%s" % (target, elapsed, recap))


def _text(data):
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data or ""
