"""The image cache: complete entries only, staleness, LRU eviction under a size bound, cleaning, and
``factory.build``/``plan`` served from it (no root and no build needed for a hit)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.images import factory
from ansible_collections.sirocco.cimi.plugins.module_utils.images.cache import ImageCache, default_dir
from ansible_collections.sirocco.cimi.plugins.module_utils.images.spec import parse_spec

MIB = 1 << 20


COLLECTION = Path(__file__).resolve().parents[3]


def fake_entry(cache, spec_hash, name="img", size=MIB, built_at=None, formats=("qcow2",)):
    """An entry as the factory leaves it: the files (really allocated bytes), then provenance.json."""
    work = cache.workdir(spec_hash)
    files = {}
    for fmt in formats:
        path = os.path.join(work, "%s.%s" % (name, fmt))
        with open(path, "wb") as handle:
            handle.write(os.urandom(size))
        files[fmt] = {"file": os.path.basename(path), "bytes": size, "sha256": "0" * 64}
    record = {"name": name, "spec_hash": spec_hash, "built_at": built_at or time.time(), "files": files,
              "virtual_size": 4 << 30, "arch": "x86_64", "boot": "bios"}
    cache.commit(spec_hash, work, record)
    return record


def h(char):
    return char * 64


def test_default_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SIROCCO_IMAGE_CACHE", str(tmp_path / "c"))
    assert default_dir() == str(tmp_path / "c")
    monkeypatch.delenv("SIROCCO_IMAGE_CACHE")
    assert default_dir() == os.path.expanduser("~/.cache/sirocco/images")


def test_states(tmp_path):
    cache = ImageCache(str(tmp_path))
    assert cache.state(h("a")) == "build"
    fake_entry(cache, h("a"), built_at=time.time() - 3 * 86400)
    assert cache.state(h("a")) == "cached"
    assert cache.state(h("a"), max_age_days=7) == "cached"
    assert cache.state(h("a"), max_age_days=2) == "stale"
    assert cache.state(h("a"), rebuild=True) == "build"
    assert 2.9 < cache.age_days(h("a")) < 3.1


def test_incomplete_entries_do_not_count(tmp_path):
    cache = ImageCache(str(tmp_path))
    fake_entry(cache, h("a"))
    os.unlink(cache.files(h("a"))["qcow2"])
    assert cache.provenance(h("a")) is None and cache.state(h("a")) == "build"
    os.makedirs(cache.entry_dir(h("b")))  # a directory without provenance.json
    assert cache.state(h("b")) == "build"
    mine = cache.workdir(h("c"))  # a build under way (this process): kept
    dead = os.path.join(cache.directory, "tmp", "%s.%d.1" % (h("d")[:16], 2**22 + 1))  # beyond pid_max
    os.makedirs(dead)
    assert sorted(cache.clean()) == sorted([dead, cache.entry_dir(h("a")), cache.entry_dir(h("b"))])
    assert os.path.isdir(mine)


def test_lru_eviction_under_the_bound(tmp_path):
    cache = ImageCache(str(tmp_path), max_bytes=int(2.5 * MIB))
    for i, char in enumerate("abc"):
        fake_entry(cache, h(char), size=MIB)
        os.utime(os.path.join(cache.entry_dir(h(char)), ".used"), (1000 + i, 1000 + i))
    cache.touch(h("a"))  # a hit: now the most recently used
    assert cache.entries() == [h("b"), h("c"), h("a")]
    assert cache.evict(keep={h("b")}) == [h("c")]
    assert cache.entries() == [h("b"), h("a")]
    assert cache.size() <= cache.max_bytes
    assert cache.evict() == []


def test_clean_everything_and_by_age(tmp_path):
    cache = ImageCache(str(tmp_path))
    fake_entry(cache, h("a"))
    fake_entry(cache, h("b"))
    os.utime(os.path.join(cache.entry_dir(h("a")), ".used"), (time.time() - 10 * 86400,) * 2)
    os.makedirs(os.path.join(cache.directory, "index"))
    assert cache.clean(older_than_days=5) == [cache.entry_dir(h("a"))]
    assert [row["spec_hash"] for row in cache.listing()] == [h("b")]
    cache.clean(everything=True)
    assert cache.entries() == [] and not os.path.exists(os.path.join(cache.directory, "index"))


def test_build_and_plan_from_the_cache_need_no_root(tmp_path):
    spec = parse_spec({"name": "web", "formats": ["qcow2", "vmdk"]}, check_packages=False)
    cache = ImageCache(str(tmp_path))
    assert factory.plan(spec, cache_dir=cache) == "build"
    record = fake_entry(cache, spec.spec_hash(), name="web", formats=("qcow2", "vmdk"),
                        built_at=time.time() - 2 * 86400)
    assert factory.plan(spec, cache_dir=str(tmp_path)) == "cached"
    assert factory.plan(spec, cache_dir=cache, max_age_days=1) == "stale"
    result = factory.build(spec, cache_dir=cache)
    assert result.cached and not result.stale
    assert result.image.files == cache.files(spec.spec_hash())
    assert result.image.generic_name == "web" and result.image.virtual_size == 4 << 30
    assert result.image.checksums == {"qcow2": "0" * 64, "vmdk": "0" * 64}
    assert result.provenance == record


def test_a_build_without_root_names_what_is_missing(tmp_path):
    """Run as an unprivileged user (a real process, setpriv): the error names root, nothing is built."""
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to another user")
    code = ("import sys\n"
            "from ansible_collections.sirocco.cimi.plugins.module_utils.images import factory\n"
            "from ansible_collections.sirocco.cimi.plugins.module_utils.images.spec import parse_spec\n"
            "from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import ProviderUnavailable\n"
            "try:\n"
            "    factory.build(parse_spec({'name': 'x'}, check_packages=False), cache_dir=sys.argv[1])\n"
            "except ProviderUnavailable as exc:\n"
            "    print(exc)\n")
    home = tempfile.mkdtemp(prefix="sirocco-images-nobody-")  # pytest's tmp_path is root's alone
    try:
        os.chmod(home, 0o755)
        # the user cannot read root's checkout or venv (/root is 0700 on a fresh machine): it gets a copy of the
        # collection's module_utils (the factory needs the standard library alone) and the system's python
        shutil.copytree(COLLECTION / "plugins" / "module_utils",
                        os.path.join(home, "ansible_collections", "sirocco", "cimi", "plugins", "module_utils"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        for sub in ("ansible_collections", "ansible_collections/sirocco", "ansible_collections/sirocco/cimi",
                    "ansible_collections/sirocco/cimi/plugins"):
            open(os.path.join(home, sub, "__init__.py"), "a").close()
        subprocess.run(["chmod", "-R", "a+rX", home], check=True)
        cache_dir = os.path.join(home, "cache")
        python = os.path.realpath(sys.executable)  # the interpreter itself, not the venv's link
        done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python, "-I",
                               "-c", "import sys; sys.path.insert(0, %r)\n" % home + code, cache_dir],
                              capture_output=True, text=True, check=False, cwd=home, env={"HOME": home})
        assert done.returncode == 0, done.stderr
        assert "missing root" in done.stdout and "become" in done.stdout
        assert not os.path.exists(cache_dir)  # nothing written
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_provenance_file_is_json(tmp_path):
    cache = ImageCache(str(tmp_path))
    fake_entry(cache, h("a"))
    with open(os.path.join(cache.entry_dir(h("a")), "provenance.json"), encoding="utf-8") as handle:
        assert json.load(handle)["spec_hash"] == h("a")
