"""Where the daemon may fetch a MachineImage's bytes from (``imageLocation`` that is not one of its machines).

An administrator allows sources in the configuration::

    image_sources:
      urls: ["https://images.example.org/"]   # prefixes of http(s) URLs
      directories: ["/srv/images"]            # file:// paths under these
      max_bytes: 10737418240                  # a larger image is refused (default 10 GiB)
      timeout: 600                            # seconds for the whole transfer

Nothing else is fetched: a location outside them is a 400 before anything is recorded. An allowed URL is
still refused when its host resolves to a link-local address (169.254.0.0/16, fe80::/10: cloud metadata
services live there), to a multicast or unspecified one, or to this daemon's own listening address. The
connection goes to the address that was checked (no second lookup a DNS answer could change). A
``sirocco.checksum`` property (``sha256:<hex>``) is verified when given.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput, ProviderUnavailable

CHECKSUM_PROPERTY = "sirocco.checksum"
DEFAULT_MAX_BYTES = 10 * 1024 ** 3
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Sources:
    urls: tuple = ()
    directories: tuple = ()
    max_bytes: int = DEFAULT_MAX_BYTES
    timeout: float = 600.0
    own_port: int = 0  # the daemon's own listening port and addresses: never fetched from
    own_ips: frozenset = field(default_factory=frozenset)


def parse(raw, listen_host: str, listen_port: int) -> Sources:
    """The ``image_sources`` key of the configuration (InvalidInput naming what is wrong)."""
    raw = raw or {}
    if not isinstance(raw, dict) or set(raw) - {"urls", "directories", "max_bytes", "timeout"}:
        raise InvalidInput("config: image_sources takes urls, directories, max_bytes, timeout",
                           attribute="image_sources")
    urls = tuple(raw.get("urls") or ())
    for url in urls:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput("config: image_sources.urls: %r is not an http(s) URL prefix" % (url,),
                               attribute="image_sources.urls")
    directories = tuple(str(Path(d).resolve()) for d in raw.get("directories") or ())
    names = [listen_host, "localhost"]
    if listen_host in ("", "0.0.0.0", "::"):  # every address of this machine
        names = [socket.gethostname(), "localhost", "127.0.0.1", "::1"]
    own_ips = set()
    for name in names:
        try:
            own_ips |= {ipaddress.ip_address(info[4][0].split("%")[0]) for info in socket.getaddrinfo(name, None)}
        except OSError:
            continue
    own_ips = frozenset(own_ips)
    return Sources(urls=urls, directories=directories, max_bytes=int(raw.get("max_bytes", DEFAULT_MAX_BYTES)),
                   timeout=float(raw.get("timeout", 600.0)), own_port=listen_port, own_ips=own_ips)


def check(sources: Sources, location: str) -> str:
    """``location`` if the daemon may fetch it, else InvalidInput naming imageLocation (nothing fetched)."""
    if not isinstance(location, str) or not location:
        raise InvalidInput("imageLocation: give a machine to capture, or a source to fetch", attribute="imageLocation")
    parts = urlsplit(location)
    if parts.scheme == "file":
        path = _file_path(sources, location)
        if not path.is_file():
            raise InvalidInput("imageLocation: no such file %s" % parts.path, attribute="imageLocation")
        return location
    if parts.scheme in ("http", "https") and any(location.startswith(prefix) for prefix in sources.urls):
        # checked at the request too, so that a refusal is a 400 before anything is recorded; the job
        # checks again the address it connects to
        _checked_address(sources, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        return location
    raise InvalidInput("imageLocation: '%s' is not one of this daemon's machines nor an allowed image source "
                       "(image_sources: %s)" % (location, ", ".join(sources.urls + tuple(
                           "file://" + d for d in sources.directories)) or "none configured"),
                       attribute="imageLocation")


def _file_path(sources, location):
    path = Path(unquote(urlsplit(location).path)).resolve()
    if not any(path.is_relative_to(d) for d in sources.directories):
        raise InvalidInput("imageLocation: %s is not under an allowed directory (image_sources.directories)"
                           % path, attribute="imageLocation")
    return path


def fetch(sources: Sources, location: str, dest: Path, checksum: str | None = None) -> tuple[int, str]:
    """Copy the source to ``dest``: (bytes, sha256 hex). Bounded by max_bytes and timeout; a checksum given
    as ``sha256:<hex>`` must match. Errors say what failed, never the daemon's paths."""
    check(sources, location)
    digest, size, deadline = hashlib.sha256(), 0, time.monotonic() + sources.timeout
    if urlsplit(location).scheme == "file":
        reader = open(_file_path(sources, location), "rb")  # noqa: SIM115 (closed below)
    else:
        reader = _open_url(sources, location, deadline)
    try:
        with open(dest, "wb") as out:
            while True:
                if time.monotonic() > deadline:
                    raise ProviderUnavailable("image source: not fetched within %g s" % sources.timeout)
                chunk = reader.read(CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > sources.max_bytes:
                    raise InvalidInput("imageLocation: the image is larger than %d bytes (image_sources.max_bytes)"
                                       % sources.max_bytes, attribute="imageLocation")
                digest.update(chunk)
                out.write(chunk)
    finally:
        reader.close()
    if checksum:
        algorithm, _sep, want = checksum.partition(":")
        if algorithm != "sha256" or want.lower() != digest.hexdigest():
            raise InvalidInput("properties.%s: the image's sha256 is %s, not %s"
                               % (CHECKSUM_PROPERTY, digest.hexdigest(), checksum), attribute=CHECKSUM_PROPERTY)
    return size, digest.hexdigest()


def _open_url(sources, location, deadline):
    parts = urlsplit(location)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = _checked_address(sources, parts.hostname, port)
    timeout = max(1.0, deadline - time.monotonic())
    if parts.scheme == "https":
        conn = _PinnedHTTPS(parts.hostname, port, address, timeout)
    else:
        conn = _PinnedHTTP(parts.hostname, port, address, timeout)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        conn.request("GET", path, headers={"User-Agent": "siroccod"})
        reply = conn.getresponse()
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        raise ProviderUnavailable("image source %s: %s" % (parts.hostname, exc)) from None
    if reply.status != 200:
        conn.close()
        raise InvalidInput("imageLocation: the source answered %d %s" % (reply.status, reply.reason),
                           attribute="imageLocation")
    declared = reply.getheader("Content-Length")
    if declared and declared.isdigit() and int(declared) > sources.max_bytes:
        conn.close()
        raise InvalidInput("imageLocation: the image is larger than %d bytes (image_sources.max_bytes)"
                           % sources.max_bytes, attribute="imageLocation")
    return reply


def _checked_address(sources, host, port):
    """The one address the daemon connects to: resolved once, refused when it is link-local, multicast,
    unspecified or the daemon itself."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise InvalidInput("imageLocation: cannot resolve %s (%s)" % (host, exc.strerror or exc),
                           attribute="imageLocation") from None
    for info in infos:
        ip = ipaddress.ip_address(info[4][0].split("%")[0])
        itself = port == sources.own_port and (ip in sources.own_ips or ip.is_loopback and any(
            own.is_loopback for own in sources.own_ips))
        if ip.is_link_local or ip.is_multicast or ip.is_unspecified or itself:
            raise InvalidInput("imageLocation: %s resolves to %s, which the daemon never fetches from" % (host, ip),
                               attribute="imageLocation")
    return infos[0][4][0]


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # certificate of the host named
