"""What every request passes before any handler, and what every reply carries.

* **Where the daemon is.** Every href, Location and server URL is made from ``public_url`` when it is
  configured; otherwise the request's Host header must name one of ``allowed_hosts`` (Flask's trusted
  hosts): a forged Host is a 400 and is never copied into a reply (a cache in front would keep it).
* **Bounded requests.** A URL of at most MAX_URL characters (414), at most MAX_PARAMS query parameters,
  each name at most MAX_REPEATS times, each value at most MAX_VALUE characters (400). The server bounds
  the request line and headers before this (serving/); MAX_CONTENT_LENGTH bounds bodies (413).
* **One Authorization header.** Two (which a server hands over joined by a comma) are refused: which one
  would count is up to the server.
* **Replies** are not to be sniffed (``X-Content-Type-Options: nosniff``) nor stored by any cache
  (``Cache-Control: no-store``: they are one user's, and some carry a token or a password); under TLS
  they ask browsers to keep to HTTPS (HSTS).
"""

from __future__ import annotations

from flask import Flask, current_app, request
from werkzeug.exceptions import HTTPException, SecurityError

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput

MAX_URL = 8192
MAX_PARAMS = 32
MAX_REPEATS = 8
MAX_VALUE = 4096
HSTS = "max-age=31536000"


class UriTooLong(HTTPException):
    code = 414
    description = "the request's URL is longer than %d characters" % MAX_URL


def root_url() -> str:
    """The daemon's root as clients must see it (``https://cloud.example.org/``): ``public_url`` when set,
    else the request's own, whose Host is one of ``allowed_hosts``."""
    public = current_app.config.get("SIROCCOD_PUBLIC_URL")
    return public if public else request.host_url


def check_request() -> None:
    """before_request of the whole app (before authentication: bounds cost nothing to check)."""
    environ = request.environ
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or (
        environ.get("PATH_INFO", "") + "?" + environ.get("QUERY_STRING", ""))
    if len(raw) > MAX_URL:
        raise UriTooLong()
    args = request.args
    if len(args) > MAX_PARAMS:
        raise InvalidInput("at most %d query parameters, got %d" % (MAX_PARAMS, len(args)), attribute="query")
    for name in args:
        values = args.getlist(name)
        if len(values) > MAX_REPEATS:
            raise InvalidInput("query parameter %s: at most %d times, got %d" % (name, MAX_REPEATS, len(values)),
                               attribute=name)
        if any(len(value) > MAX_VALUE for value in values):
            raise InvalidInput("query parameter %s: at most %d characters" % (name, MAX_VALUE), attribute=name)
    if "," in environ.get("HTTP_AUTHORIZATION", ""):
        raise InvalidInput("one Authorization header only (Basic or Bearer)", attribute="Authorization")
    try:
        root_url()  # an untrusted Host is refused here, whether or not the handler makes an href
    except SecurityError:  # werkzeug's message repeats the Host: this one does not
        raise InvalidInput("the Host header names no host this daemon serves (its allowed_hosts, or set "
                           "public_url)", attribute="Host") from None


def secure_headers(response):
    """after_request: what every reply carries."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    if request.is_secure:
        response.headers["Strict-Transport-Security"] = HSTS
    return response


def install(app: Flask, public_url: str | None, allowed_hosts: list[str] | None) -> None:
    """Wire the checks into ``app``: trusted hosts unless a public URL decides (``["*"]``: any Host), the
    hooks (before any blueprint's)."""
    if public_url:
        app.config["SIROCCOD_PUBLIC_URL"] = public_url.rstrip("/") + "/"
    elif allowed_hosts != ["*"]:
        app.config["TRUSTED_HOSTS"] = list(allowed_hosts or [])
    app.before_request(check_request)
    app.after_request(secure_headers)
