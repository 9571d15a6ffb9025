"""Write the collection's requirements files from pyproject.toml's provider extras.

pyproject.toml is the one place where dependency ranges live. Ansible users who install
the collection with ansible-galaxy read requirements.txt (every provider's SDK) or
requirements/<provider>.txt (one provider's), and ansible-builder reads requirements.txt
through meta/execution-environment.yml; those files are derived here, never edited by hand.

Usage: pydeps.py            write requirements.txt and requirements/<provider>.txt
       pydeps.py --check    exit 1, naming the stale files, when they differ from pyproject.toml
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# the extra that lists every provider extra (``sirocco-cimi[libvirt,ec2,...]``)
ALL_PROVIDERS = "providers"
# what a user of a provider should know beside its Python package
NOTES = {
    "libvirt": "compiled against the system's libvirt: bindep.txt names the packages its build needs",
    "ec2": "Amazon EC2 (and CloudWatch metering)",
    "openstack": "any OpenStack cloud (clouds.yaml accepted)",
    "vsphere": "ESX hosts and vCenter",
    "xenserver": "XenServer and XCP-ng pools",
    "libcloud": "Apache Libcloud's compute drivers (vCloud and others)",
}
HEADER = """\
# Python packages the sirocco.cimi plugins need on the Ansible controller (and on the hosts
# where its modules run: usually localhost). Written by scripts/pydeps.py from pyproject.toml
# (`make requirements`): edit pyproject.toml, not this file.
"""


def provider_extras(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, list[str]]:
    """``{provider: [requirement, ...]}`` in the order of the ``providers`` extra."""
    extras = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    (meta,) = extras[ALL_PROVIDERS]
    names = re.fullmatch(r"[\w.-]+\[([\w,\s-]+)\]", meta).group(1)
    return {name.strip(): list(extras[name.strip()]) for name in names.split(",")}


def render(providers: dict[str, list[str]]) -> dict[str, str]:
    """``{relative path: content}`` of every requirements file."""
    files = {}
    everything = [HEADER, "# One section per provider; a user of one provider can install only its file,\n"
                  "# e.g. `pip install -r requirements/ec2.txt`. The cimi provider needs none.\n"]
    for name, reqs in providers.items():
        block = "# %s: %s\n%s\n" % (name, NOTES.get(name, "provider %s" % name), "\n".join(reqs))
        everything.append("\n" + block)
        files["requirements/%s.txt" % name] = HEADER + "\n" + block
    files["requirements.txt"] = "".join(everything)
    return files


def main(argv: list[str]) -> int:
    files = render(provider_extras())
    if argv == ["--check"]:
        stale = [rel for rel, text in files.items()
                 if not (ROOT / rel).is_file() or (ROOT / rel).read_text(encoding="utf-8") != text]
        extra = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "requirements").glob("*.txt")
                       if str(p.relative_to(ROOT)) not in files)
        for rel in stale + extra:
            print("%s: not what pyproject.toml says (run `make requirements`)" % rel, file=sys.stderr)
        return 1 if stale or extra else 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    (ROOT / "requirements").mkdir(exist_ok=True)
    for rel, text in files.items():
        (ROOT / rel).write_text(text, encoding="utf-8")
        print("wrote %s" % rel)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
