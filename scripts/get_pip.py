"""Offline stand-in for the get-pip.py bootstrap that ansible-test downloads.

`make sanity` copies this file to ~/.ansible/test/cache/get_pip_24_2.py, where
ansible-test looks before downloading. ansible-test runs it inside a fresh
empty venv with get-pip.py's arguments (pip options, `pip==X setuptools==Y`
pins, `--no-setuptools`, `--no-wheel`); we run `pip install` with them, using
the pip wheel that ships with ensurepip (or Debian's copy of it), so only the
pinned packages themselves come from the package index.
"""

import glob
import os
import sys


def bundled_pip_wheel() -> str:
    import ensurepip

    candidates = glob.glob(os.path.join(os.path.dirname(ensurepip.__file__), "_bundled", "pip-*.whl"))
    candidates += glob.glob("/usr/share/python-wheels/pip-*.whl")  # Debian's python3.11-venv
    if not candidates:
        raise SystemExit("get_pip stand-in: no pip wheel in ensurepip/_bundled or /usr/share/python-wheels")
    return sorted(candidates)[-1]


def main() -> int:
    # get-pip.py-only switches: plain `pip install` installs nothing implicitly anyway
    args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
    sys.path.insert(0, bundled_pip_wheel())
    from pip._internal.cli.main import main as pip_main

    return pip_main(["install", "--upgrade", "--force-reinstall", *args])


if __name__ == "__main__":
    sys.exit(main())
