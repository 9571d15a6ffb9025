# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The image factory: a spec in, a bootable disk image in every requested format out, cached by spec hash.

    spec = parse_spec({"name": "debian-12-web", "packages": ["nginx"], "formats": ["qcow2", "vmdk"]})
    plan(spec)              # "cached" | "build" | "stale", without building (check mode)
    result = build(spec)    # BuildResult(image=DiskImage(files={"qcow2": ..., "vmdk": ...}, ...), provenance, ...)

Framework-free: imports neither Ansible nor Flask. Building needs root and the tools ``builder.preflight``
names; a cache hit needs neither.
"""

from __future__ import annotations

import os
import platform
import shutil
import time
from dataclasses import dataclass, field

from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import DiskImage
from ansible_collections.sirocco.cimi.plugins.module_utils.images import builder, convert
from ansible_collections.sirocco.cimi.plugins.module_utils.images.cache import ImageCache
from ansible_collections.sirocco.cimi.plugins.module_utils.images.spec import RECIPE_VERSION

BUILDER_NAME = "mmdebstrap+mke2fs+grub-mkimage"


@dataclass
class BuildResult:
    image: DiskImage
    provenance: dict = field(default_factory=dict)
    cached: bool = False
    stale: bool = False


def _cache(cache_dir):
    return cache_dir if isinstance(cache_dir, ImageCache) else ImageCache(cache_dir)


def plan(spec, cache_dir=None, rebuild=False, max_age_days=None):
    """What ``build`` would do, without doing it: ``cached``, ``build`` or ``stale`` (a cached image older
    than ``max_age_days``, which ``build`` replaces)."""
    return _cache(cache_dir).state(spec.spec_hash(), rebuild=rebuild, max_age_days=max_age_days)


def _result(spec, cache, spec_hash, record, cached, stale):
    files = cache.files(spec_hash)
    image = DiskImage(name=spec.name, files={fmt: files[fmt] for fmt in spec.formats if fmt in files},
                      virtual_size=int(record["virtual_size"]), arch=record.get("arch", spec.distro["cpu_arch"]),
                      boot=record.get("boot", "bios"), generic_name=spec.name,
                      description="%s built by the Sirocco image factory (spec %s)"
                      % (spec.distribution, spec_hash[:12]),
                      properties={"sirocco.image.spec_hash": spec_hash},
                      checksums={fmt: record["files"][fmt]["sha256"] for fmt in spec.formats
                                 if fmt in record.get("files", {})})
    return BuildResult(image=image, provenance=record, cached=cached, stale=stale)


def build(spec, cache_dir=None, rebuild=False, max_age_days=None, log=None):
    """Build ``spec`` (an ``ImageSpec`` from ``parse_spec``), or take it from the cache.

    ``rebuild`` forces a build; ``max_age_days`` rebuilds a cached image older than that (``stale`` is then
    true). ``log`` (a callable taking a line) hears each step and its duration.
    """
    cache = _cache(cache_dir)
    spec_hash = spec.spec_hash()
    if cache.state(spec_hash, rebuild=rebuild, max_age_days=max_age_days) != "cached":
        builder.preflight()  # before anything is written: without root or a tool, nothing happens
    with cache.lock(spec_hash):
        state = cache.state(spec_hash, rebuild=rebuild, max_age_days=max_age_days)
        if state == "cached":  # a hit, or another process built it while this one waited for the lock
            cache.touch(spec_hash)
            return _result(spec, cache, spec_hash, cache.provenance(spec_hash), cached=True, stale=False)
        started = time.time()
        workdir = cache.workdir(spec_hash)
        try:
            record = _build_into(spec, spec_hash, workdir, log)
            record["build_seconds"] = round(time.time() - started, 1)
            cache.commit(spec_hash, workdir, record)
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
    cache.evict(keep={spec_hash})
    return _result(spec, cache, spec_hash, record, cached=False, stale=state == "stale")


def _build_into(spec, spec_hash, workdir, log):
    raw, packages, steps = builder.build_raw(spec, workdir, log)
    files = {}
    mark = time.monotonic()
    for fmt in spec.formats:
        ext = convert.FORMATS[fmt][0]
        dest = os.path.join(workdir, "%s.%s" % (spec.name, ext))
        if fmt == "raw":
            os.replace(raw, dest)
            raw = dest
            convert.check(raw, fmt, dest)
        else:
            convert.convert(raw, fmt, dest)
        files[fmt] = {"file": os.path.basename(dest), "bytes": os.path.getsize(dest),
                      "allocated": os.stat(dest).st_blocks * 512, "sha256": convert.sha256(dest)}
        if log:
            log("%s: %d bytes (checked with qemu-img info and compare)" % (fmt, os.path.getsize(dest)))
    steps["convert"] = round(time.monotonic() - mark, 1)
    virtual_size = os.path.getsize(raw)
    if "raw" not in spec.formats:
        os.unlink(raw)
    sources = os.path.join(workdir, "mirror.sources")
    with open(sources, encoding="utf-8") as handle:
        mirror_sources = handle.read()
    os.unlink(sources)
    versions = builder.tool_versions()
    versions["qemu-img"] = convert.qemu_img_version()
    return {
        "name": spec.name,
        "spec_hash": spec_hash,
        "spec": spec.canonical(),
        "recipe": RECIPE_VERSION,
        "builder": {"name": BUILDER_NAME, "versions": versions, "host": platform.node(),
                    "python": platform.python_version()},
        "distribution": spec.distribution,
        "packages": packages,
        "mirror": mirror_sources,
        "built_at": time.time(),
        "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "steps_seconds": steps,
        "virtual_size": virtual_size,
        "arch": spec.distro["cpu_arch"],
        "boot": "bios",  # BIOS and UEFI both boot it; "bios" is what every provider takes
        "boot_modes": ["bios", "uefi"],
        "files": files,
    }
