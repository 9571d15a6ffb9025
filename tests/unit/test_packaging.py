"""Packaging: `pip install .` and `ansible-galaxy collection build` produce a usable collection.

The source tree is copied to a temporary directory first so that the builds
leave no build/ or *.egg-info behind in the working tree.
"""

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COLLECTION = Path("ansible_collections", "sirocco", "cimi")
JUNK = (".venv", ".git", "build", "output", ".pytest_cache", ".ruff_cache", ".hypothesis", "__pycache__")


def _ignore(directory: str, names: list[str]) -> list[str]:
    return [n for n in names if n in JUNK or n.startswith(".venv") or n.endswith((".egg-info", ".tar.gz", ".pyc"))]


def _run(*cmd: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    proc = subprocess.run(
        [str(c) for c in cmd],
        env={**os.environ, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout


def _files(root: Path) -> set[str]:
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".pyc")
    }


def _modules() -> list[str]:
    return sorted(p.stem for p in (REPO / "plugins" / "modules").glob("*.py") if not p.name.startswith("_"))


# Ansible must see only the copy under test, not the working tree linked into the venv.
ISOLATED = {"ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "False", "ANSIBLE_LOCAL_TEMP": "/tmp"}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dst = tmp_path_factory.mktemp("src") / "sirocco"
    shutil.copytree(REPO, dst, ignore=_ignore, symlinks=True)
    return dst


@pytest.fixture(scope="module")
def pip_target(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    # --no-build-isolation: the venv already has the build requirements (make venv), no download
    _run(
        sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
        "--target", target, source,
    )  # fmt: skip
    return target


def test_versions_agree() -> None:
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert (galaxy["namespace"], galaxy["name"]) == ("sirocco", "cimi")
    assert str(galaxy["version"]) == pyproject["project"]["version"]


def test_runtime_metadata() -> None:
    runtime = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text())
    assert runtime["requires_ansible"].startswith(">=")
    assert {"machine", "machine_info", "provider_info"} <= set(runtime["action_groups"]["cimi"])


def test_pip_install_layout(pip_target: Path) -> None:
    installed = pip_target / COLLECTION
    for rel in ("galaxy.yml", "meta/runtime.yml", "LICENSE", "README.md"):
        assert (installed / rel).is_file(), rel
    # every file under plugins/ is shipped, Python or not
    assert _files(REPO / "plugins") <= _files(installed / "plugins")
    assert (installed / "plugins/module_utils/cimi/model.py").is_file()
    # namespace packages above the collection: no __init__.py at these levels
    assert not (pip_target / "ansible_collections" / "__init__.py").exists()
    assert not (pip_target / "ansible_collections" / "sirocco" / "__init__.py").exists()
    # nothing from the development tree leaks in
    for junk in (".venv", "tests", ".git", "build", "Makefile"):
        assert not (installed / junk).exists(), junk


def test_pip_install_importable(pip_target: Path) -> None:
    code = (
        "import ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model as m, pathlib, sys;"
        "sys.stdout.write(str(pathlib.Path(m.__file__).resolve()))"
    )
    out = _run(sys.executable, "-c", code, env={"PYTHONPATH": str(pip_target)}, cwd=pip_target)
    # PYTHONPATH comes before the venv's site-packages (where the working tree is linked in)
    assert Path(out).is_relative_to(pip_target.resolve()), out


def test_ansible_finds_pip_installed_collection(pip_target: Path) -> None:
    env = {**ISOLATED, "ANSIBLE_COLLECTIONS_PATH": str(pip_target)}
    modules = _modules()
    assert modules, "plugins/modules holds no module"
    docs = json.loads(_run(BIN / "ansible-doc", "-j", "-t", "module", *[f"sirocco.cimi.{m}" for m in modules], env=env))
    assert sorted(docs) == [f"sirocco.cimi.{m}" for m in modules]


def test_galaxy_build_and_offline_install(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "dist"
    _run(BIN / "ansible-galaxy", "collection", "build", "--output-path", out, source, env=ISOLATED)
    (tarball,) = out.glob("sirocco-cimi-*.tar.gz")
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    assert "MANIFEST.json" in names and "FILES.json" in names
    assert "plugins/module_utils/cimi/model.py" in names
    # what Ansible users and ansible-builder read, and nothing of the development tree
    assert {"requirements.txt", "bindep.txt", "meta/execution-environment.yml", "requirements/ec2.txt"} <= set(names)
    tops = {n.split("/")[0] for n in names}
    development = {".git", "build", ".ci", "tests", "daemon", "scripts", "locks", "Makefile"}
    assert not {t for t in tops if t.startswith(".venv")} | (tops & development)
    assert tarball.stat().st_size < 1_000_000, tarball.stat().st_size

    dest = tmp_path / "collections"
    _run(BIN / "ansible-galaxy", "collection", "install", "--offline", "-p", dest, tarball, env=ISOLATED)
    installed = dest / COLLECTION
    manifest = json.loads((installed / "MANIFEST.json").read_text())
    assert manifest["collection_info"]["namespace"] == "sirocco"
    assert (installed / "meta/runtime.yml").is_file()
    listing = _run(BIN / "ansible-galaxy", "collection", "list", "-p", dest, "--format", "json", env=ISOLATED)
    assert "sirocco.cimi" in json.dumps(json.loads(listing))


def test_execution_environment_metadata(source: Path, tmp_path: Path) -> None:
    """ansible-builder finds the collection's Python and system requirements in the installed tarball, as
    it does when it builds an execution environment (no container runtime needed for introspection)."""
    out = tmp_path / "dist"
    _run(BIN / "ansible-galaxy", "collection", "build", "--output-path", out, source, env=ISOLATED)
    dest = tmp_path / "collections"
    _run(BIN / "ansible-galaxy", "collection", "install", "--offline", "-p", dest, *out.glob("*.tar.gz"),
         env=ISOLATED)
    found = yaml.safe_load(_run(BIN / "ansible-builder", "introspect", "--sanitize", dest).split("\n", 1)[1])
    ours = "  # from collection sirocco.cimi"
    python = {line[: -len(ours)] for line in found["python"] if line.endswith(ours)}
    wanted = {line for line in (REPO / "requirements.txt").read_text().splitlines() if line and line[0] != "#"}
    assert python == wanted and "boto3>=1.34,<2" in python
    system = {line[: -len(ours)] for line in found["system"] if line.endswith(ours)}
    assert {"libvirt-dev [platform:dpkg compile]", "libvirt-devel [platform:rpm compile]"} <= system


def test_bindep_on_debian() -> None:
    """bindep reads bindep.txt: on this Debian it names libvirt's library to run, its headers to build, and
    machine_image's tools under profile images."""
    run_time = set(_run(BIN / "bindep", "-f", REPO / "bindep.txt", "-l", "newline").split())
    build = set(_run(BIN / "bindep", "-f", REPO / "bindep.txt", "-l", "newline", "compile").split())
    images = set(_run(BIN / "bindep", "-f", REPO / "bindep.txt", "-l", "newline", "images").split())
    assert run_time == {"libvirt0"}
    assert {"gcc", "pkg-config", "libvirt-dev", "python3-dev"} <= build
    # machine_image: qemu-img, and the factory's tools; every one of them is what setup-system.sh installs
    assert {"qemu-utils", "mmdebstrap", "grub-pc-bin", "grub-efi-amd64-bin", "mtools"} <= images
    setup = (REPO / "scripts" / "setup-system.sh").read_text()
    assert all(package in setup.split() for package in images - {"libvirt0"})


def test_locks_follow_pyproject() -> None:
    """Every range of pyproject.toml is met by its lock's pin: a lock is refreshed (`make lock`) with the ranges."""
    from packaging.requirements import Requirement

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]

    def pins(core: str) -> dict[str, str]:
        found = {}
        for line in (REPO / "locks" / f"ansible-core-{core}.txt").read_text().splitlines():
            if "==" in line and line[0] not in " #":
                name, version = line.split(";")[0].strip().split("==")
                found[_canonical(name)] = version
        return found

    def ranges(names: list[str]) -> list[Requirement]:
        out = []
        for name in names:
            for text in extras[name]:
                req = Requirement(text)
                out.extend(ranges(sorted(req.extras)) if req.name == "sirocco-cimi" else [req])
        return out

    for core, names in (("2.16", ["ansible", "providers"]), ("2.17", ["ansible", "providers"]),
                        ("2.18", ["ansible", "providers"]), ("2.19", sorted(extras))):
        locked = pins(core)
        assert locked["ansible-core"].startswith(core + ".")
        for req in ranges(names):
            assert req.specifier.contains(locked[_canonical(req.name)], prereleases=False), (core, str(req))


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")
