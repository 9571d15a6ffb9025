# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Debian mirror this machine already uses, read from its apt configuration (never a hard-coded host).

``read_sources()`` parses ``/etc/apt/sources.list``, ``sources.list.d/*.list`` (one-line style) and
``sources.list.d/*.sources`` (deb822). ``retarget(entries, codename)`` rewrites their suites for the
distribution being built (``bookworm-updates`` on a bookworm host stays; on a trixie host becomes
``bookworm-updates`` from ``trixie-updates``), and ``deb822(entries)`` writes them back as the ``.sources``
file mmdebstrap takes as its mirror argument. ``PackageIndex`` downloads each suite's ``Packages.xz`` (kept a
day under the cache directory, as the list of names) to check package names before anything is built.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import lzma
import os
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput, ProviderUnavailable

INDEX_MAX_AGE = 24 * 3600


@dataclass
class SourceEntry:
    types: list
    uris: list
    suites: list
    components: list
    options: dict = field(default_factory=dict)  # Signed-By, Architectures, ... (deb822 field names)
    origin: str = ""  # the file it came from


def parse_one_line(text, origin=""):
    """Entries of a one-line-style sources.list: ``deb [opt=val ...] URI SUITE [COMPONENT...]``."""
    entries = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        options = {}
        match = re.match(r"^(deb|deb-src)\s+\[([^\]]*)\]\s+(.*)$", line)
        if match:
            kind, opts, rest = match.groups()
            for opt in opts.split():
                if "=" in opt:
                    key, value = opt.split("=", 1)
                    options[_deb822_key(key)] = value.replace(",", " ")
        else:
            parts = line.split(None, 1)
            if len(parts) < 2 or parts[0] not in ("deb", "deb-src"):
                continue
            kind, rest = parts
        words = rest.split()
        if len(words) < 2:
            continue
        entries.append(SourceEntry([kind], [words[0]], [words[1]], words[2:], options, origin))
    return entries


def _deb822_key(key):
    return {"signed-by": "Signed-By", "arch": "Architectures", "trusted": "Trusted"}.get(key.lower(), key)


def parse_deb822(text, origin=""):
    """Entries of a deb822 ``.sources`` file (stanzas separated by blank lines; '#' comments; folded lines)."""
    entries = []
    for stanza in re.split(r"\n\s*\n", text):
        fields = {}
        last = None
        for raw in stanza.splitlines():
            if raw.startswith("#"):
                continue
            if raw[:1] in (" ", "\t") and last:
                fields[last] += "\n" + raw.strip()
                continue
            if ":" not in raw:
                continue
            key, value = raw.split(":", 1)
            last = key.strip()
            fields[last] = value.strip()
        if not fields or fields.get("Enabled", "yes").lower() == "no":
            continue
        if not fields.get("Types") or not fields.get("URIs") or not fields.get("Suites"):
            continue
        options = {k: v for k, v in fields.items()
                   if k not in ("Types", "URIs", "Suites", "Components", "Enabled")}
        entries.append(SourceEntry(fields["Types"].split(), fields["URIs"].split(), fields["Suites"].split(),
                                   fields.get("Components", "").split(), options, origin))
    return entries


def read_sources(root="/"):
    """Every enabled apt source of the machine whose file system starts at ``root``."""
    etc = os.path.join(root, "etc/apt")
    entries = []
    paths = [os.path.join(etc, "sources.list")] + sorted(glob.glob(os.path.join(etc, "sources.list.d/*.list")))
    for path in paths:
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                entries.extend(parse_one_line(handle.read(), path))
    for path in sorted(glob.glob(os.path.join(etc, "sources.list.d/*.sources"))):
        with open(path, encoding="utf-8") as handle:
            entries.extend(parse_deb822(handle.read(), path))
    return entries


def host_codename(root="/", family=None):
    """This machine's release codename (os-release); None unless its ID is ``family`` (when given): an
    Ubuntu machine's ``jammy`` suites are no Debian mirror."""
    fields = {}
    try:
        with open(os.path.join(root, "etc/os-release"), encoding="utf-8") as handle:
            for line in handle:
                if "=" in line:
                    key, value = line.rstrip("\n").split("=", 1)
                    fields[key] = value.strip().strip('"')
    except OSError:
        return None
    if family and fields.get("ID") != family:
        return None
    return fields.get("VERSION_CODENAME") or None


def retarget(entries, codename, host=None):
    """Binary (``deb``) entries with their suites rewritten for ``codename``.

    A suite ``<host>`` or ``<host>-updates``/``-security`` becomes ``<codename>...``; a suite already naming
    ``codename`` stays; others (backports, other releases) are dropped. Raises ``ProviderUnavailable`` when
    nothing is left: the machine's apt configuration names no Debian mirror the factory can use.
    """
    result = []
    prefixes = [p for p in (codename, host) if p]
    for entry in entries:
        if "deb" not in entry.types:
            continue
        suites = []
        for suite in entry.suites:
            for prefix in prefixes:
                if suite == prefix or suite in (prefix + "-updates", prefix + "-security"):
                    new = codename + suite[len(prefix):]
                    if new not in suites:
                        suites.append(new)
                    break
        if suites:
            result.append(SourceEntry(["deb"], list(entry.uris), suites, list(entry.components) or ["main"],
                                      dict(entry.options), entry.origin))
    if not result:
        raise ProviderUnavailable("no apt source of this machine names a Debian mirror for '%s' (read %s)"
                                  % (codename, ", ".join(sorted({e.origin for e in entries})) or "nothing"))
    return result


def deb822(entries):
    """The entries as the text of a deb822 ``.sources`` file."""
    stanzas = []
    for entry in entries:
        lines = ["Types: %s" % " ".join(entry.types), "URIs: %s" % " ".join(entry.uris),
                 "Suites: %s" % " ".join(entry.suites), "Components: %s" % " ".join(entry.components)]
        for key, value in sorted(entry.options.items()):
            lines.append("%s: %s" % (key, value.replace("\n", "\n ")))
        stanzas.append("\n".join(lines))
    return "\n\n".join(stanzas) + "\n"


def sources_for(distro, root="/"):
    """The deb822 sources text for building ``distro`` (a spec.DISTRIBUTIONS entry) from this machine's mirror."""
    return deb822(retarget(read_sources(root), distro["codename"], host_codename(root, distro.get("family"))))


def default_index_dir():
    base = os.environ.get("SIROCCO_IMAGE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache/sirocco/images")
    return os.path.join(base, "index")


def parse_packages(text):
    """Package names and the virtual names they provide, from a ``Packages`` index."""
    names = set()
    for line in text.splitlines():
        if line.startswith("Package:"):
            names.add(line[8:].strip())
        elif line.startswith("Provides:"):
            for item in line[9:].split(","):
                item = item.strip().split(" ", 1)[0]
                if item:
                    names.add(item)
    return names


class PackageIndex:
    """The package names of some suites of a mirror, to check a spec's packages before building."""

    def __init__(self, names, description="the mirror's package index"):
        self.names = set(names)
        self.description = description

    def missing(self, packages):
        return [p for p in packages if p not in self.names]

    def describe(self):
        return self.description

    @classmethod
    def from_entries(cls, entries, arch, cache_dir=None, max_age=INDEX_MAX_AGE, timeout=60):
        cache_dir = cache_dir or default_index_dir()
        os.makedirs(cache_dir, exist_ok=True)
        names = set()
        urls = []
        for entry in entries:
            for uri in entry.uris:
                for suite in entry.suites:
                    for component in entry.components:
                        base = "%s/dists/%s/%s/binary-%s/Packages" % (uri.rstrip("/"), suite, component, arch)
                        urls.append(base)
                        names |= _fetch_names(base, cache_dir, max_age, timeout)
        suites = sorted({"%s/%s" % (s, c) for e in entries for s in e.suites for c in e.components})
        return cls(names, "the mirror's %s index (%s)" % (arch, ", ".join(suites)))

    @classmethod
    def for_distribution(cls, distro, root="/", cache_dir=None):
        entries = retarget(read_sources(root), distro["codename"], host_codename(root, distro.get("family")))
        return cls.from_entries(entries, distro["arch"], cache_dir=cache_dir)


def _fetch_names(base, cache_dir, max_age, timeout):
    """The names ``base`` (.xz, else .gz) lists, from the cache (the names alone, one a line) when younger
    than ``max_age`` seconds."""
    key = hashlib.sha256(base.encode("utf-8")).hexdigest()[:24]
    path = os.path.join(cache_dir, key + ".names")
    try:
        if time.time() - os.stat(path).st_mtime < max_age:
            with open(path, encoding="utf-8") as handle:
                return set(handle.read().split())
    except OSError:
        pass
    errors = []
    for suffix, decompress in ((".xz", lzma.decompress), (".gz", gzip.decompress)):
        try:
            # an opener honours http_proxy & co. like urllib's default one (apt's URIs: http, https, file)
            with urllib.request.build_opener().open(base + suffix, timeout=timeout) as response:
                text = decompress(response.read()).decode("utf-8", errors="replace")
        except urllib.error.HTTPError as exc:
            errors.append("%s%s: HTTP %s" % (base, suffix, exc.code))
            continue
        except (urllib.error.URLError, OSError, lzma.LZMAError, EOFError) as exc:
            errors.append("%s%s: %s" % (base, suffix, exc))
            continue
        names = parse_packages(text)
        tmp = path + ".%d.tmp" % os.getpid()
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write("\n".join(sorted(names)) + "\n")
        os.replace(tmp, path)
        return names
    if errors and all("HTTP 404" in e for e in errors):
        raise InvalidInput("the mirror has no package index %s" % base, attribute="distribution")
    raise ProviderUnavailable("cannot read the mirror's package index: %s" % "; ".join(errors))
