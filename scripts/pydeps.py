"""Print the Python requirements declared in pyproject.toml, one per line.

pyproject.toml is the one place where dependency ranges live; the Makefile
feeds this output to `pip install -r /dev/stdin` so the dev venv gets exactly
those ranges without installing the project itself (the working tree is
symlinked into the venv instead, see `make venv`).

Usage: pydeps.py [--build] [EXTRA ...]   runtime deps plus the named optional extras
       pydeps.py [--build] --all         runtime deps plus every extra
--build adds the build-system requirements (so `pip install --no-build-isolation .`
works offline in the venv).
"""

import sys
import tomllib
from pathlib import Path


def requirements(extras: list[str], pyproject: Path, build: bool = False) -> list[str]:
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    project = data["project"]
    optional = project.get("optional-dependencies", {})
    if extras == ["--all"]:
        extras = sorted(optional)
    unknown = [e for e in extras if e not in optional]
    if unknown:
        raise SystemExit(f"unknown extra(s) {unknown}; pyproject.toml defines {sorted(optional)}")
    reqs = list(data["build-system"]["requires"]) if build else []
    reqs.extend(project.get("dependencies", []))
    for extra in extras:
        reqs.extend(optional[extra])
    return reqs


if __name__ == "__main__":
    here = Path(__file__).resolve().parent.parent / "pyproject.toml"
    args = sys.argv[1:]
    build = "--build" in args
    print("\n".join(requirements([a for a in args if a != "--build"], here, build)))
