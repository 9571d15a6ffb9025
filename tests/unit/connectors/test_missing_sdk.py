"""A connector whose SDK cannot be imported still imports (Ansible's sanity import test loads module_utils
without third-party libraries) and, when used, fails naming the package, the Python that lacks it and what
to install. Each case runs in a fresh interpreter in which Python's import of the SDK really fails
(``sys.modules[name] = None`` makes ``import name`` raise ImportError), so no other test sees it."""

import subprocess
import sys

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import registry

CASES = {
    # provider: (its SDK's top-level modules, the package to install)
    "ec2": (("boto3", "botocore"), "boto3"),
    "libcloud": (("libcloud",), "apache-libcloud"),
    "libvirt": (("libvirt",), "libvirt-python"),
    "openstack": (("openstack", "keystoneauth1"), "openstacksdk"),
    "vsphere": (("pyVmomi", "pyVim"), "pyvmomi"),
    "xenserver": (("XenAPI",), "XenAPI"),
}

CODE = """
import sys
for name in sys.argv[2].split(","):
    sys.modules[name] = None
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import ProviderUnavailable
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import registry
try:
    registry.connect(sys.argv[1], uri="https://127.0.0.1:9/sdk", username="u", password="p")
except ProviderUnavailable as exc:
    print(exc)
else:
    print("no error")
"""


def test_every_provider_but_cimi_has_a_case():
    assert sorted(CASES) == sorted(set(registry.provider_names()) - {"cimi"})


@pytest.mark.parametrize("provider", sorted(CASES))
def test_missing_sdk_names_what_to_install(provider):
    modules, package = CASES[provider]
    done = subprocess.run([sys.executable, "-c", CODE, provider, ",".join(modules)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    message = done.stdout.strip()
    assert message.startswith("provider '%s' needs the Python package %s, which %s cannot import ("
                              % (provider, package, sys.executable)), message
    assert "pip install -r requirements/%s.txt" % provider in message
    assert "pip install 'sirocco-cimi[%s]'" % provider in message
