"""Hrefs: stored relative to the CIMI base (``machines/<uuid>``), served absolute.

The CMDB never records a host name: the base URI of each response is built from
the request (``http://host:port/cimi/``), so the same CMDB serves every name the
daemon is reached by. Clients may send back any href we gave them (absolute,
whatever host part, or relative); ``relative()`` reduces it to the stored form.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

PREFIX = "/cimi/"
_REL = re.compile(r"[A-Za-z]+/[A-Za-z0-9-]+(?:/[A-Za-z0-9-]+)*")


def ref(collection, uuid, *rest):
    return "/".join((collection, uuid) + rest)


def relative(href):
    """``http://x/cimi/machines/ab`` or ``/cimi/machines/ab`` or ``machines/ab`` -> ``machines/ab``;
    None when the href cannot be one of ours."""
    if not isinstance(href, str) or not href or len(href) > 2048:
        return None
    path = urlsplit(href).path if "://" in href else href
    if path.startswith(PREFIX):
        path = path[len(PREFIX):]
    elif path.startswith("/"):
        return None
    path = path.rstrip("/")
    return path if _REL.fullmatch(path) else None


def split(href):
    """(collection, uuid, rest...) of an href, or None."""
    rel = relative(href)
    if rel is None:
        return None
    return tuple(rel.split("/"))


def absolute(value, base):
    """A copy of a stored document (or list) with every relative ``href`` made absolute."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "href" and isinstance(item, str) and "://" not in item:
                out[key] = base + item
            else:
                out[key] = absolute(item, base) if isinstance(item, dict | list) else item
        return out
    if isinstance(value, list):
        return [absolute(item, base) if isinstance(item, dict | list) else item for item in value]
    return value


def stored(value):
    """A copy of a client document with every href of ours made relative (others left alone)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "href" and isinstance(item, str):
                out[key] = relative(item) or item
            else:
                out[key] = stored(item) if isinstance(item, dict | list) else item
        return out
    if isinstance(value, list):
        return [stored(item) if isinstance(item, dict | list) else item for item in value]
    return value
