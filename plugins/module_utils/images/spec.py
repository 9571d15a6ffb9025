# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The image factory's declarative spec: what an image is made of, checked before anything is built.

``parse_spec(data)`` turns a plain dict (a module option, a JSON body) into an ``ImageSpec`` or raises
``InvalidInput`` naming the field at fault. Package names are checked against the package index of the
mirror this machine's apt configuration names (``mirror.PackageIndex``), so an unknown package fails here,
not ten minutes into a build. ``ImageSpec.spec_hash()`` is the cache key: the sha256 of a canonical JSON of
the normalised spec and of the recipe version (a change to how images are made invalidates old ones).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput
from ansible_collections.sirocco.cimi.plugins.module_utils.images import mirror

# Bumped whenever the recipe (partitioning, bootloader, default packages, configuration written into the
# image) changes: it is part of every spec hash, so cached images made by an older recipe are rebuilt.
RECIPE_VERSION = 3  # 2: /etc/hosts names the host; cloud-init manages /etc/hosts; 3: e2scrub masked, no RSA host key

FORMATS = ("qcow2", "raw", "vmdk", "vhd")
MIN_SIZE_GIB = 2
MAX_SIZE_GIB = 2048

# One entry per distribution the factory knows. ``codename`` is the apt suite (the machine's apt sources are
# retargeted to it), ``kernel`` the kernel package, ``arch`` the Debian architecture and ``cpu_arch`` CIMI's.
DISTRIBUTIONS = {
    "debian-12": {"family": "debian", "codename": "bookworm", "kernel": "linux-image-cloud-amd64",
                  "arch": "amd64", "cpu_arch": "x86_64"},
}

# What every managed guest gets: a kernel, systemd with logind (and D-Bus, without which logind does not
# start: it is what turns an ACPI power-button press into a clean shutdown), udev (tags the power button),
# OpenSSH, the QEMU guest agent, sudo for the cloud user, e2fsprogs for fsck/resize2fs, DHCP networking.
BASE_PACKAGES = ("systemd-sysv", "udev", "dbus", "openssh-server", "qemu-guest-agent", "sudo", "e2fsprogs",
                 "ifupdown", "isc-dhcp-client", "iproute2", "netbase", "ca-certificates")
# cloud-init with its datasources; VMware's needs open-vm-tools (vmware-rpctool), growpart cloud-guest-utils.
CLOUD_INIT_PACKAGES = ("cloud-init", "open-vm-tools", "cloud-guest-utils")
CLOUD_INIT_DATASOURCES = ("NoCloud", "ConfigDrive", "Ec2", "OpenStack", "VMware", "None")

FIELDS = ("name", "distribution", "packages", "files", "run", "size_gib", "formats", "cloud_init")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
# Debian policy 5.6.1: lower case letters, digits, + - . ; at least two characters, starting alphanumeric
_PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_FORBIDDEN_ROOTS = ("/proc", "/sys", "/dev", "/run")


@dataclass
class ImageSpec:
    name: str
    distribution: str = "debian-12"
    packages: list = field(default_factory=list)
    files: dict = field(default_factory=dict)  # absolute path -> {"content": str, "mode": int}
    run: list = field(default_factory=list)
    size_gib: int = 4
    formats: list = field(default_factory=lambda: ["qcow2"])
    cloud_init: bool = True

    @property
    def distro(self):
        return DISTRIBUTIONS[self.distribution]

    def all_packages(self):
        """Every package the builder asks for: the kernel, the defaults, cloud-init's, then the spec's."""
        names = [self.distro["kernel"], *BASE_PACKAGES]
        if self.cloud_init:
            names.extend(CLOUD_INIT_PACKAGES)
        names.extend(self.packages)
        return sorted(set(names))

    def canonical(self):
        """The normalised spec as a JSON-ready dict (sorted lists where order means nothing)."""
        data = asdict(self)
        data["files"] = {path: {"content": f["content"], "mode": "%04o" % f["mode"]}
                         for path, f in sorted(self.files.items())}
        return data

    def spec_hash(self):
        body = {"recipe": RECIPE_VERSION, "spec": self.canonical()}
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _fail(attribute, message):
    raise InvalidInput("image spec: %s: %s" % (attribute, message), attribute=attribute)


def _str_list(data, key):
    value = data.get(key, [])
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        _fail(key, "must be a list of strings")
    return list(value)


def _mode(path, value):
    if value is None:
        return 0o644
    if isinstance(value, bool):
        _fail("files", "%s: mode must be an octal string such as '0644'" % path)
    if isinstance(value, int):
        mode = value
    elif isinstance(value, str) and re.fullmatch(r"0?[0-7]{3,4}", value.strip()):
        mode = int(value.strip(), 8)
    else:
        _fail("files", "%s: mode %r is not an octal mode such as '0644'" % (path, value))
    if not 0 <= mode <= 0o7777:
        _fail("files", "%s: mode %o is out of range (0000-7777)" % (path, mode))
    return mode


def _files(value):
    if value is None:
        return {}
    if not isinstance(value, dict):
        _fail("files", "must be a mapping of absolute path to {content, mode}")
    files = {}
    for path, item in value.items():
        if not isinstance(path, str) or not path.startswith("/") or path.endswith("/"):
            _fail("files", "%r is not an absolute file path" % (path,))
        parts = path.split("/")
        if ".." in parts or "." in parts or "" in parts[1:]:
            _fail("files", "%s: the path must be normalised (no '.', '..' or '//')" % path)
        if any(path == root or path.startswith(root + "/") for root in _FORBIDDEN_ROOTS):
            _fail("files", "%s: %s are not files of the image" % (path, ", ".join(_FORBIDDEN_ROOTS)))
        if isinstance(item, str):
            item = {"content": item}
        if not isinstance(item, dict):
            _fail("files", "%s: must be {content, mode} or a string" % path)
        unknown = sorted(set(item) - {"content", "mode"})
        if unknown:
            _fail("files", "%s: unknown key(s) %s (expected content, mode)" % (path, ", ".join(unknown)))
        content = item.get("content", "")
        if not isinstance(content, str):
            _fail("files", "%s: content must be a string" % path)
        files[path] = {"content": content, "mode": _mode(path, item.get("mode"))}
    return files


def parse_spec(data, index=None, check_packages=True):
    """An ``ImageSpec`` from ``data``, or ``InvalidInput`` naming the field at fault.

    With ``check_packages`` (the default) every package name is looked up in ``index`` (a
    ``mirror.PackageIndex``), by default the index of the distribution's suites on this machine's mirror.
    """
    if not isinstance(data, dict):
        raise InvalidInput("image spec must be a mapping", attribute="build")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        _fail(unknown[0], "unknown field(s) %s; a spec has %s" % (", ".join(unknown), ", ".join(FIELDS)))

    name = data.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        _fail("name", "%r must be 1-63 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit"
              % (name,))

    distribution = data.get("distribution") or "debian-12"
    if distribution not in DISTRIBUTIONS:
        _fail("distribution", "%r is not one the factory builds (%s)" % (distribution, ", ".join(DISTRIBUTIONS)))

    packages = _str_list(data, "packages")
    bad = [p for p in packages if not _PACKAGE_RE.match(p)]
    if bad:
        _fail("packages", "%s: not a Debian package name" % ", ".join(bad))
    packages = sorted(set(packages))

    files = _files(data.get("files"))
    run = _str_list(data, "run")
    if any(not cmd.strip() for cmd in run):
        _fail("run", "commands must not be empty")

    size = data.get("size_gib", 4)
    if isinstance(size, bool) or not isinstance(size, int):
        _fail("size_gib", "%r is not a whole number of GiB" % (size,))
    if size < MIN_SIZE_GIB:
        _fail("size_gib", "%d GiB is too small: a bootable image needs at least %d GiB" % (size, MIN_SIZE_GIB))
    if size > MAX_SIZE_GIB:
        _fail("size_gib", "%d GiB is more than the factory builds (%d GiB)" % (size, MAX_SIZE_GIB))

    formats = _str_list(data, "formats") if "formats" in data else ["qcow2"]
    if not formats:
        _fail("formats", "at least one format is needed (%s)" % ", ".join(FORMATS))
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        _fail("formats", "%s: unknown format (the factory writes %s)" % (", ".join(bad), ", ".join(FORMATS)))
    formats = [f for f in FORMATS if f in formats]

    cloud_init = data.get("cloud_init", True)
    if not isinstance(cloud_init, bool):
        _fail("cloud_init", "must be true or false")

    spec = ImageSpec(name=name, distribution=distribution, packages=packages, files=files, run=run,
                     size_gib=size, formats=formats, cloud_init=cloud_init)
    if check_packages and packages:
        if index is None:
            index = mirror.PackageIndex.for_distribution(spec.distro)
        missing = index.missing(packages)
        if missing:
            _fail("packages", "%s: no such package in %s" % (", ".join(missing), index.describe()))
    return spec
