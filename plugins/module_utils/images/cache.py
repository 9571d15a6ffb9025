# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The image cache: one directory per spec hash, size-bounded, least recently used evicted first.

Layout under the cache directory (``$SIROCCO_IMAGE_CACHE``, else ``~/.cache/sirocco/images``)::

    <spec hash>/<name>.<format>     one file per format the spec asked for
    <spec hash>/provenance.json     written last: an entry without it is incomplete and ignored
    <spec hash>/.used               touched on every hit: the LRU clock
    index/                          the mirror's package indexes (mirror.PackageIndex), a day old at most
    tmp/                            builds under way (``clean`` removes those whose process is gone)

The bound (``$SIROCCO_IMAGE_CACHE_MAX_GIB``, default 20) counts allocated bytes (raw images are sparse).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from contextlib import contextmanager

DEFAULT_MAX_GIB = 20
PROVENANCE = "provenance.json"
USED = ".used"


def default_dir():
    return os.environ.get("SIROCCO_IMAGE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache/sirocco/images")


def default_max_bytes():
    value = os.environ.get("SIROCCO_IMAGE_CACHE_MAX_GIB")
    try:
        return int(float(value) * (1 << 30)) if value else DEFAULT_MAX_GIB << 30
    except ValueError:
        return DEFAULT_MAX_GIB << 30


def allocated(path):
    """Bytes allocated on disk under ``path`` (a file or a tree)."""
    if os.path.isfile(path):
        return os.stat(path).st_blocks * 512
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


class ImageCache:
    def __init__(self, directory=None, max_bytes=None):
        self.directory = os.path.abspath(directory or default_dir())
        self.max_bytes = default_max_bytes() if max_bytes is None else max_bytes

    # -- entries -----------------------------------------------------------------------------------
    def entry_dir(self, spec_hash):
        return os.path.join(self.directory, spec_hash)

    def provenance(self, spec_hash):
        """The provenance record of a complete entry, else None."""
        try:
            with open(os.path.join(self.entry_dir(spec_hash), PROVENANCE), encoding="utf-8") as handle:
                record = json.load(handle)
        except (OSError, ValueError):
            return None
        files = record.get("files", {})
        if not files or not all(os.path.isfile(os.path.join(self.entry_dir(spec_hash), f["file"]))
                                for f in files.values()):
            return None
        return record

    def files(self, spec_hash):
        record = self.provenance(spec_hash) or {}
        return {fmt: os.path.join(self.entry_dir(spec_hash), f["file"]) for fmt, f in record.get("files", {}).items()}

    def age_days(self, spec_hash, now=None):
        record = self.provenance(spec_hash)
        if record is None:
            return None
        return ((now or time.time()) - float(record.get("built_at", 0))) / 86400.0

    def state(self, spec_hash, rebuild=False, max_age_days=None, now=None):
        """``cached`` (a complete, fresh entry), ``stale`` (complete but older than ``max_age_days``), or
        ``build`` (none, incomplete, or ``rebuild``)."""
        if rebuild or self.provenance(spec_hash) is None:
            return "build"
        if max_age_days is not None and self.age_days(spec_hash, now) > max_age_days:
            return "stale"
        return "cached"

    def touch(self, spec_hash):
        path = os.path.join(self.entry_dir(spec_hash), USED)
        with open(path, "a", encoding="utf-8"):
            pass
        os.utime(path)

    def last_used(self, spec_hash):
        for name in (USED, PROVENANCE):
            try:
                return os.stat(os.path.join(self.entry_dir(spec_hash), name)).st_mtime
            except OSError:
                continue
        return 0.0

    def entries(self):
        """Spec hashes of every entry directory (complete or not), least recently used first."""
        try:
            names = [n for n in os.listdir(self.directory)
                     if len(n) == 64 and os.path.isdir(os.path.join(self.directory, n))]
        except OSError:
            return []
        return sorted(names, key=self.last_used)

    def commit(self, spec_hash, build_dir, record):
        """Make ``build_dir`` (holding the record's files) the entry of ``spec_hash``, then write its record."""
        dest = self.entry_dir(spec_hash)
        if os.path.exists(dest):
            shutil.rmtree(dest)
        os.replace(build_dir, dest)
        tmp = os.path.join(dest, PROVENANCE + ".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=2, sort_keys=True)
        os.replace(tmp, os.path.join(dest, PROVENANCE))
        self.touch(spec_hash)
        return dest

    def workdir(self, spec_hash):
        base = os.path.join(self.directory, "tmp")
        os.makedirs(base, exist_ok=True)
        path = os.path.join(base, "%s.%d.%d" % (spec_hash[:16], os.getpid(), int(time.time() * 1000)))
        os.makedirs(path)
        return path

    @contextmanager
    def lock(self, spec_hash):
        """An exclusive lock on one spec hash: two builds of the same spec wait for each other."""
        os.makedirs(self.directory, exist_ok=True)
        with open(os.path.join(self.directory, ".%s.lock" % spec_hash), "w", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- size bound and cleaning -------------------------------------------------------------------
    def size(self):
        return sum(allocated(self.entry_dir(h)) for h in self.entries())

    def evict(self, keep=(), max_bytes=None):
        """Remove least recently used entries until the cache fits ``max_bytes``; never those in ``keep``.
        Returns the removed hashes."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        sizes = {h: allocated(self.entry_dir(h)) for h in self.entries()}
        total = sum(sizes.values())
        removed = []
        for spec_hash in self.entries():
            if total <= limit:
                break
            if spec_hash in keep:
                continue
            shutil.rmtree(self.entry_dir(spec_hash), ignore_errors=True)
            self._unlink(os.path.join(self.directory, ".%s.lock" % spec_hash))
            total -= sizes[spec_hash]
            removed.append(spec_hash)
        return removed

    def clean(self, older_than_days=None, everything=False, now=None):
        """Remove unfinished builds, incomplete entries, entries unused for ``older_than_days`` (all of them
        with ``everything``), and the package-index cache with ``everything``. Returns the removed paths."""
        removed = []
        now = now or time.time()
        tmp = os.path.join(self.directory, "tmp")
        for name in sorted(os.listdir(tmp)) if os.path.isdir(tmp) else []:
            if not _alive(name):  # <hash>.<pid>.<ms>: a build under way is left alone
                shutil.rmtree(os.path.join(tmp, name), ignore_errors=True)
                removed.append(os.path.join(tmp, name))
        for spec_hash in self.entries():
            old = older_than_days is not None and now - self.last_used(spec_hash) > older_than_days * 86400
            if everything or old or self.provenance(spec_hash) is None:
                shutil.rmtree(self.entry_dir(spec_hash), ignore_errors=True)
                self._unlink(os.path.join(self.directory, ".%s.lock" % spec_hash))
                removed.append(self.entry_dir(spec_hash))
        index = os.path.join(self.directory, "index")
        if everything and os.path.isdir(index):
            shutil.rmtree(index, ignore_errors=True)
            removed.append(index)
        return removed

    def listing(self):
        """One dict per complete entry: hash, name, formats, size on disk, built_at, last used."""
        rows = []
        for spec_hash in self.entries():
            record = self.provenance(spec_hash)
            if record is None:
                continue
            rows.append({"spec_hash": spec_hash, "name": record.get("name"),
                         "formats": sorted(record.get("files", {})),
                         "bytes": allocated(self.entry_dir(spec_hash)), "built_at": record.get("built_at"),
                         "last_used": self.last_used(spec_hash)})
        return rows

    @staticmethod
    def _unlink(path):
        try:
            os.unlink(path)
        except OSError:
            pass


def _alive(workdir_name):
    """Whether the process that made the build directory ``workdir_name`` (``<hash>.<pid>.<ms>``) still runs."""
    parts = workdir_name.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
