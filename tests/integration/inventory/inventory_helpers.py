"""Helpers of the inventory tests (not fixtures): run ansible-inventory's environment, read its JSON."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def unwrap(value):
    """ansible-inventory's JSON with 2.19's ``{"__ansible_unsafe": "..."}`` markers replaced by their strings."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


class Result:
    def __init__(self, proc, seconds):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.seconds = seconds
        self._data = None

    @property
    def data(self):
        if self._data is None:
            # with -v..., ansible-inventory prints its version and settings before the JSON
            start = 0 if self.stdout.startswith("{") else self.stdout.index("\n{") + 1
            self._data = unwrap(json.loads(self.stdout[start:]))
        return self._data

    @property
    def hostvars(self):
        return self.data["_meta"]["hostvars"]

    @property
    def hosts(self):
        return set(self.hostvars)

    def group(self, name):
        """Hosts of a group, children groups' hosts included."""
        group = self.data.get(name)
        if group is None:
            return set()
        hosts = set(group.get("hosts", []))
        for child in group.get("children", []):
            hosts |= self.group(child)
        return hosts

    @property
    def groups(self):
        return {name for name in self.data if name != "_meta"}

    @property
    def warnings(self):
        """All of stderr on one line: what a test looks for a message in."""
        return " ".join(self.stderr.split())

    @property
    def ansible_warnings(self):
        """Only the warnings Ansible printed (the plugin's among them), not what a library printed on import."""
        return ansible_warnings(self.stderr)


def ansible_warnings(stderr):
    """The messages of ``[WARNING]: ...`` and ``[DEPRECATION WARNING]: ...`` in Ansible's stderr, continuation
    lines joined; other lines (a library's Python warning on import, say) are not Ansible's."""
    found, current = [], None
    for line in stderr.splitlines():
        if line.startswith(("[WARNING]:", "[DEPRECATION WARNING]:")):
            current = line.split(":", 1)[1].strip()
            found.append(current)
        elif current is not None and line.startswith(" ") and line.strip():
            found[-1] = found[-1] + " " + line.strip()
        else:
            current = None
    return found


def ansible_env(collections_path, tmp_path):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections_path), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_INVENTORY_UNPARSED_FAILED="1", ANSIBLE_LOCALHOST_WARNING="0",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"), ANSIBLE_DEPRECATION_WARNINGS="0",
               ANSIBLE_CONFIG=str(tmp_path / "no-ansible.cfg"))
    for name in ("SIROCCO_PROVIDER", "SIROCCO_URI", "SIROCCO_USERNAME", "SIROCCO_PASSWORD", "SIROCCO_REGION",
                 "SIROCCO_CLOUDS_FILE", "ANSIBLE_INVENTORY_CACHE", "ANSIBLE_CACHE_PLUGIN"):
        env.pop(name, None)
    return env
