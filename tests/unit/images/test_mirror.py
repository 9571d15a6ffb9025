"""Reading the machine's apt sources (deb822 and one-line), retargeting them, and the package index."""

from __future__ import annotations

import lzma
import os
import threading
from functools import partial
from http.server import HTTPServer, SimpleHTTPRequestHandler

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput, ProviderUnavailable
from ansible_collections.sirocco.cimi.plugins.module_utils.images import mirror

DEB822 = """Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Enabled: no
Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
"""

ONE_LINE = """# comment
deb http://one.example/debian bookworm main non-free-firmware
deb [arch=amd64 signed-by=/etc/apt/keyrings/x.gpg] http://two.example/debian bookworm-backports main
deb-src http://one.example/debian bookworm main
"""


def write_root(tmp_path, deb822=DEB822, one_line=ONE_LINE, codename="bookworm", os_id="debian"):
    (tmp_path / "etc/apt/sources.list.d").mkdir(parents=True)
    (tmp_path / "etc/apt/sources.list.d/debian.sources").write_text(deb822)
    (tmp_path / "etc/apt/sources.list").write_text(one_line)
    (tmp_path / "etc/os-release").write_text('NAME="Some Linux"\nID=%s\nVERSION_CODENAME=%s\n' % (os_id, codename))
    return str(tmp_path)


def test_deb822():
    entries = mirror.parse_deb822(DEB822, "x.sources")
    assert len(entries) == 2  # the disabled stanza is left out
    assert entries[0].uris == ["http://mirror.example/debian"]
    assert entries[0].suites == ["bookworm", "bookworm-updates"]
    assert entries[0].components == ["main", "contrib"]
    assert entries[0].options["Signed-By"] == "/usr/share/keyrings/debian-archive-keyring.gpg"
    assert entries[1].types == ["deb", "deb-src"]


def test_one_line():
    entries = mirror.parse_one_line(ONE_LINE, "sources.list")
    assert [(e.types, e.uris[0], e.suites, e.components) for e in entries] == [
        (["deb"], "http://one.example/debian", ["bookworm"], ["main", "non-free-firmware"]),
        (["deb"], "http://two.example/debian", ["bookworm-backports"], ["main"]),
        (["deb-src"], "http://one.example/debian", ["bookworm"], ["main"]),
    ]
    assert entries[1].options == {"Architectures": "amd64", "Signed-By": "/etc/apt/keyrings/x.gpg"}


def test_read_and_retarget_same_release(tmp_path):
    root = write_root(tmp_path)
    entries = mirror.retarget(mirror.read_sources(root), "bookworm", mirror.host_codename(root, "debian"))
    got = [(e.uris[0], e.suites) for e in entries]
    assert got == [("http://one.example/debian", ["bookworm"]),
                   ("http://mirror.example/debian", ["bookworm", "bookworm-updates"]),
                   ("http://mirror.example/debian-security", ["bookworm-security"])]
    text = mirror.deb822(entries)
    assert "URIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main contrib" in text
    assert "backports" not in text and "deb-src" not in text and "disabled.example" not in text
    # what mmdebstrap reads back is what was written
    assert [(e.uris, e.suites) for e in mirror.parse_deb822(text)] == [(e.uris, e.suites) for e in entries]


def test_retarget_from_another_release(tmp_path):
    root = write_root(tmp_path, deb822=DEB822.replace("bookworm", "trixie"), one_line="", codename="trixie")
    text = mirror.deb822(mirror.retarget(mirror.read_sources(root), "bookworm", mirror.host_codename(root)))
    assert "trixie" not in text
    assert "Suites: bookworm bookworm-updates" in text and "Suites: bookworm-security" in text


def test_no_usable_source(tmp_path):
    root = write_root(tmp_path, deb822="", one_line="deb http://x.example/ubuntu jammy main\n", codename="jammy",
                      os_id="ubuntu")
    assert mirror.host_codename(root) == "jammy" and mirror.host_codename(root, "debian") is None
    with pytest.raises(ProviderUnavailable, match="bookworm"):
        mirror.sources_for({"codename": "bookworm", "family": "debian"}, root)


def test_this_machine_names_a_mirror():
    """The real apt configuration of this machine yields a mirror for Debian 12 (read, never hard-coded)."""
    text = mirror.sources_for({"codename": "bookworm"})
    assert "URIs: http" in text and "bookworm" in text


PACKAGES = """Package: curl
Version: 7.88.1-10
Provides: curl-bin (= 1)

Package: exim4-daemon-light
Provides: mail-transport-agent, exim4-localscanapi-6.0

Package: nginx
Version: 1.22
"""


def test_parse_packages():
    assert mirror.parse_packages(PACKAGES) == {"curl", "curl-bin", "exim4-daemon-light", "mail-transport-agent",
                                               "exim4-localscanapi-6.0", "nginx"}


@pytest.fixture
def http_mirror(tmp_path):
    """A real HTTP server holding dists/bookworm/main/binary-amd64/Packages.xz."""
    docroot = tmp_path / "www"
    index = docroot / "debian/dists/bookworm/main/binary-amd64"
    index.mkdir(parents=True)
    (index / "Packages.xz").write_bytes(lzma.compress(PACKAGES.encode()))
    server = HTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(docroot)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d/debian" % server.server_port
    server.shutdown()
    server.server_close()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # pylint: disable=arguments-differ
        pass


def test_package_index_over_http_and_cached(http_mirror, tmp_path):
    entries = [mirror.SourceEntry(["deb"], [http_mirror], ["bookworm"], ["main"])]
    cache = str(tmp_path / "index")
    index = mirror.PackageIndex.from_entries(entries, "amd64", cache_dir=cache)
    assert index.missing(["curl", "nginx", "mail-transport-agent", "nope"]) == ["nope"]
    assert "bookworm/main" in index.describe()
    assert len(os.listdir(cache)) == 1
    # from the cache: the server's file is gone, the index still answers
    os.unlink(os.path.join(http_mirror_docroot(tmp_path), "Packages.xz"))
    assert mirror.PackageIndex.from_entries(entries, "amd64", cache_dir=cache).missing(["curl"]) == []
    # a stale cache entry and no index on the server: a 404 is the distribution's fault
    with pytest.raises(InvalidInput):
        mirror.PackageIndex.from_entries(entries, "amd64", cache_dir=cache, max_age=-1)


def http_mirror_docroot(tmp_path):
    return str(tmp_path / "www/debian/dists/bookworm/main/binary-amd64")


def test_unreachable_mirror(tmp_path):
    entries = [mirror.SourceEntry(["deb"], ["http://127.0.0.1:9/debian"], ["bookworm"], ["main"])]
    with pytest.raises(ProviderUnavailable, match="package index"):
        mirror.PackageIndex.from_entries(entries, "amd64", cache_dir=str(tmp_path), timeout=5)
