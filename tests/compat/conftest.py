"""Fixtures of the compatibility suite: the built collection in one venv per ansible-core, and two providers.

`make compat` makes the venvs (.venv-compat/<core>/) the way a user would: `pip install 'ansible-core==X.*'`
plus the collection's requirements/ec2.txt and requirements/xenserver.txt, with locks/ansible-core-X.txt as
constraints. Here the collection is built once into a tarball (with the dev venv's ansible-galaxy, as
`make build` does) and installed into each core with that core's own `ansible-galaxy collection install`.
The providers are moto's EC2 server and the XAPI stand-in, both on the wire, run from the dev venv.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STANDINS = REPO / "tests" / "standins"
DEV_BIN = Path(sys.executable).parent
COMPAT_DIR = Path(os.environ.get("SIROCCO_COMPAT_DIR", REPO / ".venv-compat"))
CORES = os.environ.get("SIROCCO_COMPAT_CORES", "2.16 2.17 2.18 2.19").split()
REGION = "us-east-1"


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# how the inventory suite reads Ansible's output: its own warnings in stderr, --list's JSON without 2.19's markers
_helpers = _load("sirocco_compat_inventory_helpers",
                 REPO / "tests" / "integration" / "inventory" / "inventory_helpers.py")
ansible_warnings = _helpers.ansible_warnings
unwrap = _helpers.unwrap


def run(cmd, env=None, timeout=600, cwd=None):
    """Run a command to its end; the CompletedProcess (text), whatever its exit status."""
    return subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)


@dataclass
class Core:
    """One ansible-core venv with the collection installed from its tarball."""

    version: str
    bin: Path
    collections: Path
    home: Path

    @property
    def python(self) -> Path:
        return self.bin / "python"

    def env(self, **extra: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("ANSIBLE_", "SIROCCO_", "AWS_")) and key != "VIRTUAL_ENV"}
        env.update(PATH="%s:%s" % (self.bin, env.get("PATH", "")), HOME=str(self.home),
                   ANSIBLE_COLLECTIONS_PATH=str(self.collections), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="False",
                   ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_LOCALHOST_WARNING="0",
                   ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_LOCAL_TEMP=str(self.home / "tmp"),
                   ANSIBLE_CONFIG=str(self.home / "no-ansible.cfg"), ANSIBLE_RETRY_FILES_ENABLED="0")
        env.update(extra)
        return env

    def run(self, command: str, *args, env: dict[str, str] | None = None, timeout: int = 600):
        return run([self.bin / command, *args], env=env or self.env(), timeout=timeout)


@pytest.fixture(scope="session")
def tarball(tmp_path_factory) -> Path:
    """The collection as `make build` makes it: `ansible-galaxy collection build` of this tree."""
    out = tmp_path_factory.mktemp("dist")
    done = run([DEV_BIN / "ansible-galaxy", "collection", "build", "--output-path", out, REPO],
               env=dict(os.environ, ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="False"))
    assert done.returncode == 0, done.stdout + done.stderr
    (path,) = out.glob("sirocco-cimi-*.tar.gz")
    return path


@pytest.fixture(scope="session", params=CORES, ids=lambda core: "ansible-core-" + core)
def core(request, tarball, tmp_path_factory) -> Core:
    """The venv of one ansible-core (made by `make compat`), the tarball installed into a collections dir."""
    version = request.param
    bin_dir = COMPAT_DIR / version / "bin"
    if not (bin_dir / "ansible-galaxy").is_file():
        pytest.fail("no venv of ansible-core %s at %s: run `make compat`" % (version, bin_dir.parent),
                    pytrace=False)
    home = tmp_path_factory.mktemp("home-" + version)
    (home / "tmp").mkdir()
    found = Core(version, bin_dir, home / "collections", home)
    done = found.run("ansible-galaxy", "collection", "install", "--offline", "-p", found.collections, tarball)
    assert done.returncode == 0, done.stdout + done.stderr
    return found


@pytest.fixture(scope="session")
def moto():
    """moto's EC2 server with a secret key of this run (which must never show in any output)."""
    server = _load("sirocco_compat_moto", STANDINS / "moto" / "standin.py").MotoServer()
    server.secret_key = "sirocco-compat-%s" % secrets.token_hex(8)
    try:
        server.start()
    except (RuntimeError, OSError) as exc:
        pytest.fail("the moto stand-in cannot start: %s (run `make venv`)" % exc, pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ec2(moto):
    import boto3

    client = boto3.client("ec2", endpoint_url=moto.url, region_name=REGION, **moto.credentials)
    yield client
    client.close()


@pytest.fixture(scope="session")
def ami(ec2) -> str:
    images = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["amzn2-ami-*"]},
                                                             {"Name": "architecture", "Values": ["x86_64"]}])["Images"]
    assert images, "moto offers no x86_64 Amazon Linux 2 image"
    return sorted(images, key=lambda i: i["ImageId"])[0]["ImageId"]


@pytest.fixture(scope="session")
def xapi():
    """A two-host XAPI pool with two seed VMs (seed-vm-000 running, seed-vm-001 halted)."""
    server = _load("sirocco_compat_xapi", STANDINS / "xapi" / "control.py").start(hosts=2, seed_vms=2)
    yield server
    server.stop()


def ec2_connection(moto) -> dict:
    return {"provider": "ec2", "uri": moto.url, "region": REGION, "username": moto.access_key,
            "password": moto.secret_key, "provider_options": {"instance_types": ["t3.*"]}}


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data, indent=2))
    return path
