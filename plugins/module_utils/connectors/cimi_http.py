# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cimi connector: any DMTF CIMI endpoint (DSP0263 2.0.0, JSON), Sirocco's own daemon included.

``uri`` is the endpoint's Cloud Entry Point (``https://cimi.example.org/cimi/cloudEntryPoint``).
The connector never builds a path: it follows hrefs, as the specification asks.

* Collections come from the Cloud Entry Point's links (``machines``, ``machineImages``, ...);
  creating posts to the ``add`` operation a collection advertises.
* Actions (start, stop, ..., capture) post an ``Action`` to the href of the operation whose
  ``rel`` is the action's URI in the machine's own ``operations``; ``edit`` and ``delete``
  likewise. An operation the resource does not offer in its current state is a Conflict.
* A Machine's disks, interfaces and volumes, a Meter's samples and a System's members are collections in
  CIMI 2.0 (``{"href"}``, 5.5.12): asked for expanded (``$expand``), followed when the endpoint does not
  expand them, and kept inline in what this connector returns; an endpoint serving them inline (CIMI 1.x)
  is read as it is.
* Volumes are attached by posting a ``locatedVolume`` to the ``add`` operation of the machine's
  volumes collection (``volumes: {href}``; ``machineVolumes: {href}`` on siroccod before 2.0's collections)
  and detached by deleting that item.
* A ``202`` reply with a ``CIMI-Job-URI`` header is followed: the Job is polled until it ends
  (option ``job_timeout``, default 300 s); a FAILED job raises the error class of its
  ``returnCode`` with its ``statusMessage``. Every method returns when the work is done.
* Native ids are the resources' ``id`` URIs, opaque. An id that is not a URI of the endpoint
  (same scheme, host and port as the Cloud Entry Point) is NotFound: credentials are never
  sent anywhere else, and redirects are followed only within the endpoint, for reads.
* Listing pages with ``$first``/``$last`` (the marker is the position of the last entry
  returned); names are looked up with ``$filter=name='...'`` on the endpoint, then checked again
  here (an endpoint that ignores ``$filter`` still gives the right answer).
* Capabilities are what the endpoint offers: an operation is advertised when the Cloud Entry
  Point links its collection (and, for creates, the collection offers ``add``); the machine
  actions (and the System ones) are those of the ResourceMetadata when the endpoint serves it. Hardware
  ranges are those of the endpoint's MachineConfigurations, metered aspects those of its
  ``meterConfigs``. Locations are the endpoint's hosts when it shows them (siroccod's ``hosts``
  link, to administrators; a machine is then pinned with the ``sirocco.host`` property), else the
  endpoint itself.
* Names are unique per kind here, as the modules identify resources by name: creating a machine,
  volume, network, captured image, credential, configuration, template or system whose name the
  endpoint already shows is a Conflict.
* Stored resources (Credentials, MachineConfigurations, MachineTemplates, SystemTemplates) are
  created by posting them to their collection's ``add``, a Credential as a ``CredentialCreate``
  (DSP0263) unless the endpoint takes the Credential itself (siroccod does). References in a
  template (machineConfig, machineImage, credential; a system's template) are hrefs of the
  endpoint, or names looked up there: an unknown one is InvalidInput before anything is posted.
* Networks are created from a NetworkTemplate by value (Table 31: ``initialState`` STARTED), ``cidr`` and
  ``dhcp`` in its ``networkConfig`` (a Sirocco extension siroccod takes); an older siroccod, whose templates
  need a ``networkConfig`` and know no ``initialState`` (a 400 naming either, nothing made), gets that shape.
* Systems are created from a SystemTemplate by reference or by value, started, stopped and
  deleted through their own operations, each Job followed (nested Jobs end with their parent).

Authentication: HTTP Basic with ``username``/``password``, or a bearer token (option ``token``,
or ``password`` without ``username``). TLS certificates are verified unless ``validate_certs`` is
false. ``timeout`` bounds each request. Standard library only.

Errors: one mapping from HTTP status to the error classes, carrying the CIMI error body's
``statusMessage``: 400 InvalidInput, 401 AuthError, 403 Forbidden, 404 NotFound, 409 Conflict,
501 Unsupported, 5xx and unreachable endpoints ProviderUnavailable.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from urllib.parse import quote, urlencode, urljoin, urlsplit, urlunsplit

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model, states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.attrs import REF, action_uri, parse_datetime, type_uri
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    AuthError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    OperationTimeout,
    ProviderUnavailable,
    SiroccoError,
    Unsupported,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import (
    MAX_USER_DATA,
    SIROCCO_CAPABILITY_NS,
    SIROCCO_RESIZE,
    Credential,
    Job,
    Machine,
    MachineConfiguration,
    MachineImage,
    MachineTemplate,
    Meter,
    Network,
    Sample,
    System,
    SystemTemplate,
    Volume,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import (
    IMAGE_ARCH_PROPERTY,
    IMAGE_FORMATS,
    IMAGE_NAME_PROPERTY,
    KIB_PER_MIB,
    USER_NAME_RE,
    Capabilities,
    Connector,
    ErrorTable,
    Page,
    Range,
    check_guest_inputs,
    public_key,
)

JOB_URI_HEADER = "CIMI-Job-URI"
# siroccod's own capabilities in a ResourceMetadata (guestInputs, userDataLimit of Machine)
HOST_PROPERTY = "sirocco.host"  # siroccod's placement wish: the host a machine goes to
CHECKSUM_PROPERTY = "sirocco.checksum"  # siroccod checks a fetched image against it: sha256:<hex>
DEFAULT_JOB_TIMEOUT = 300
MAX_PAGES = 10000  # continuation requests of one listing: a bound against a looping endpoint
MAX_REPLY = 64 * 1024 * 1024  # bytes of one reply

# HTTP status -> error class; other 4xx are the request's fault, other 5xx the provider's.
STATUS_ERRORS = {
    400: InvalidInput, 401: AuthError, 403: Forbidden, 404: NotFound, 405: Unsupported, 409: Conflict,
    410: NotFound, 412: Conflict, 413: InvalidInput, 415: InvalidInput, 422: InvalidInput, 501: Unsupported,
}
# Contract operation -> the CEP collection it needs.
COLLECTION_OF = {
    "machine": "machines", "machine_config": "machineConfigs", "machine_image": "machineImages",
    "volume": "volumes", "network": "networks", "meter": "meters", "credential": "credentials",
    "machine_template": "machineTemplates", "system": "systems", "system_template": "systemTemplates", "job": "jobs",
}
# Collections of stored resources: contract prefix of their list/create/delete operations.
STORED_KINDS = (("credentials", "credential"), ("machineConfigs", "machine_config"),
                ("machineTemplates", "machine_template"), ("systemTemplates", "system_template"))
# The references of a MachineTemplate that may name a resource of the endpoint instead of giving its URI.
TEMPLATE_REFS = (("machineConfig", "get_machine_config"), ("machineImage", "get_machine_image"),
                 ("credential", "get_credential"))
# Component types a SystemTemplate holds; a short name ("Machine") stands for its type URI.
COMPONENT_TYPES = ("Machine", "Volume", "Network")


STATUS = ErrorTable(
    codes=STATUS_ERRORS, code=lambda status: status,
    rules=[(lambda status: isinstance(status, int) and 400 <= status < 500, InvalidInput)],
    message="%(subject)s (%(operation)s on cimi endpoint %(uri)s): %(detail)s",
    unsupported="provider 'cimi' (%(uri)s) does not support %(operation)s for %(subject)s: %(detail)s")


def error_class(status):
    """The Sirocco error class of an HTTP status (or a failed Job's returnCode)."""
    return STATUS.error_class(status)


def redact(uri):
    """``uri`` without any user information."""
    if not isinstance(uri, str):
        return uri
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    netloc = parts.hostname or ""
    if parts.port:
        netloc += ":%d" % parts.port
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def credential_document(credential):
    """A MachineSpec's credential as a CIMI Credential by value (DSP0263 Table 23: ``userName``, ``password``,
    ``key``). The user name is read under either spelling: ``username`` (a MachineSpec's) or ``userName``
    (a CIMI document's, and endpoints that served ``username`` before they followed the standard)."""
    user = credential.get("userName")
    if user is None:
        user = credential.get("username")
    doc = {"userName": user, "password": credential.get("password"), "key": credential.get("key")}
    return {k: v for k, v in doc.items() if v is not None}


def origin(url):
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return (parts.scheme.lower(), (parts.hostname or "").lower(), port)


def filter_literal(text):
    """``text`` as a $filter string literal, or None when it holds both kinds of quote."""
    if "'" not in text:
        return "'%s'" % text
    if '"' not in text:
        return '"%s"' % text
    return None


def absolute(value, base):
    """A copy of a JSON document with ``id`` and every ``href`` resolved against ``base``."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in ("href", "id") and isinstance(item, str) and item:
                out[key] = urljoin(base, item)
            elif isinstance(item, (dict, list)):
                out[key] = absolute(item, base)
            else:
                out[key] = item
        return out
    if isinstance(value, list):
        return [absolute(item, base) if isinstance(item, (dict, list)) else item for item in value]
    return value


def links(doc):
    """rel -> href of a document's ``operations``."""
    found = {}
    for op in doc.get("operations") or ():
        if isinstance(op, dict) and isinstance(op.get("rel"), str) and isinstance(op.get("href"), str):
            found.setdefault(op["rel"], op["href"])
    return found


def operation_href(doc, rel):
    """The href of operation ``rel`` (an action URI may also be advertised by its last part)."""
    found = links(doc)
    if rel in found:
        return found[rel]
    short = rel.rsplit("/", 1)[-1]
    return found.get(short) if short != rel else None


def collection_link(value):
    """The href of a collection attribute given as ``{"href": ...}``, else None."""
    if isinstance(value, dict) and isinstance(value.get("href"), str):
        return value["href"]
    return None


# the collections of a Machine (5.14.1.1) the model keeps inline (what modules return, what the inventory reads):
# asked for expanded ($expand), followed when the endpoint does not expand them; legacy entry keys beside the
# model's (siroccod before CIMI 2.0's collections served machineVolumes)
INLINE_COLLECTIONS = {"Machine": ("disks", "interfaces", "volumes"), "Meter": ("samples",),
                      "System": ("machines", "volumes", "networks")}
LEGACY_ENTRIES = {"locatedVolumes": ("machineVolumes", "volumes"), "networkInterfaces": ("interfaces",)}


def collection_entries(doc, entries):
    """The items of a collection document (or of an expanded collection reference), else None."""
    for key in (entries,) + LEGACY_ENTRIES.get(entries, ()):
        if isinstance(doc.get(key), list):
            return [item for item in doc[key] if isinstance(item, dict)]
    return [] if doc.get("count") == 0 else None


def parse(cls, doc, what):
    """A model object from an endpoint's document; collection links ({href} in place of a list) are
    left out, so is any write-only value (a Credential's password: never handed on), and a document the model
    refuses is the provider's fault."""
    doc = {k: v for k, v in doc.items()
           if not (k in cls.attributes and (cls.attributes[k].write_only
                                            or cls.attributes[k].many and isinstance(v, dict)))}
    try:
        return cls.from_json(doc, trusted=True)
    except InvalidInput as exc:
        raise ProviderUnavailable("the CIMI endpoint sent an invalid %s: %s" % (what, exc.message)) from None


def check_window(start: datetime | None, end: datetime | None) -> tuple | None:
    """A time window (start, end), each None or a timezone-aware datetime, start not after end; None when
    both are None. InvalidInput naming ``start`` or ``end`` otherwise."""
    for attribute, value in (("start", start), ("end", end)):
        if value is not None and (not isinstance(value, datetime) or value.utcoffset() is None):
            raise InvalidInput("%s: expected a timezone-aware datetime, got %r" % (attribute, value),
                               attribute=attribute)
    if start is not None and end is not None and start > end:
        raise InvalidInput("start (%s) is after end (%s)" % (start.isoformat(), end.isoformat()), attribute="start")
    return None if start is None and end is None else (start, end)


def sample_time(sample: Sample) -> datetime:
    """When a Sample was taken, timezone-aware (a timestamp without a zone is UTC, as in $filter)."""
    when = parse_datetime(sample.timestamp, "Sample.timestamp")
    return when if when.utcoffset() is not None else when.replace(tzinfo=UTC)


def in_window(samples: list, window: tuple) -> list:
    """The samples taken within ``window`` (start, end; either None: unbounded), in their order."""
    start, end = window
    return [s for s in samples
            if (start is None or sample_time(s) >= start) and (end is None or sample_time(s) <= end)]


class _NoForeignRedirect(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only for reads and only within the endpoint: credentials stay home."""

    def __init__(self, home):
        super().__init__()
        self.home = home

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if req.get_method() not in ("GET", "HEAD") or origin(newurl) != self.home:
            return None  # the 3xx reaches the caller as an HTTPError
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class Reply:
    def __init__(self, status, headers, doc, url):
        self.status = status
        self.headers = headers
        self.doc = doc
        self.url = url

    def header(self, name):
        return self.headers.get(name) if self.headers is not None else None


class CimiConnector(Connector):
    name = "cimi"
    option_names = ("token", "job_timeout")
    guest_inputs = frozenset({"userData", "credential"})
    user_data_limit = MAX_USER_DATA  # characters of CIMI's userData; ASCII userData is as many bytes
    # The endpoint fetches the image from its imageLocation itself (siroccod reads any of these with qemu-img).
    image_formats = IMAGE_FORMATS

    def __init__(self, uri=None, username=None, password=None, region=None, validate_certs=True,
                 timeout=60, options=None):
        super().__init__(uri=uri, username=username, password=password, region=region,
                         validate_certs=validate_certs, timeout=timeout, options=options)
        if not uri or not isinstance(uri, str):
            raise InvalidInput("uri: the cimi provider needs the URL of the endpoint's Cloud Entry Point, "
                               "like https://cimi.example.org/cimi/cloudEntryPoint", attribute="uri")
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput("uri: '%s' is not an http(s) URL of a Cloud Entry Point" % redact(uri),
                               attribute="uri")
        if parts.username is not None and self.username is None:  # credentials written into the URL
            self.username = parts.username
            self._password = self._password if self._password is not None else parts.password
        self.uri = redact(uri)
        self.shown_uri = self.uri
        self.home = origin(self.uri)
        self._token = self.options.get("token")
        if self._token is not None and (not isinstance(self._token, str) or not self._token):
            raise InvalidInput("provider_options.token: expected a non-empty string", attribute="token")
        if self._token is None and self.username is None and self._password:
            self._token = self._password  # a password without a user name is a bearer token
        job_timeout = self.options.get("job_timeout", DEFAULT_JOB_TIMEOUT)
        if isinstance(job_timeout, bool) or not isinstance(job_timeout, (int, float)) or job_timeout <= 0:
            raise InvalidInput("provider_options.job_timeout: expected a positive number of seconds",
                               attribute="job_timeout")
        self.job_timeout = job_timeout
        handlers = [_NoForeignRedirect(self.home)]
        if parts.scheme == "https":
            context = ssl.create_default_context()
            if not validate_certs:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self._opener = urllib.request.build_opener(*handlers)
        self._cep = None
        self._base = self.uri
        self._caps = None
        self._hosts = None
        self._adds = {}  # collection -> the href of its "add" operation, seen by capabilities()
        self._credential_itself = False  # the endpoint takes a Credential, not a CredentialCreate (siroccod)
        self._network_config_required = False  # a NetworkTemplate is a networkConfig only (an older siroccod)
        self._metadata_seen = {}  # type name -> its ResourceMetadata, or None

    def __repr__(self):
        return "<cimi connector uri=%r>" % self.shown_uri

    # -- HTTP ----------------------------------------------------------------------
    def _headers(self, body):
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self._token:
            headers["Authorization"] = "Bearer " + self._token
        elif self.username is not None:
            pair = "%s:%s" % (self.username, self._password or "")
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")
        return headers

    def _own(self, href):
        """Whether ``href`` (absolute) is a URI of this endpoint."""
        if not isinstance(href, str) or "://" not in href:
            return False
        try:
            return origin(href) == self.home
        except ValueError:  # e.g. a port that is not a number
            return False

    def _request(self, method, url, operation, subject, body=None, query=None, resolve=True):
        """One HTTP exchange; a Reply, or the error class of the status with the endpoint's message.
        Relative URIs in the reply are made absolute against the base URI (DSP0263 4.1.2)."""
        url = urljoin(self._base, url)
        if not self._own(url):
            raise ProviderUnavailable("%s (%s): the CIMI endpoint %s links outside itself (%s); not followed"
                                      % (subject, operation, self.shown_uri, redact(url)))
        if query:
            url += ("&" if "?" in url else "?") + urlencode(query, quote_via=quote, safe="")
        data = json.dumps(body).encode("utf-8") if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers=self._headers(body))
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                status, headers, raw = resp.status, resp.headers, resp.read(MAX_REPLY + 1)
        except urllib.error.HTTPError as exc:
            status, headers = exc.code, exc.headers
            try:
                raw = exc.read(MAX_REPLY + 1)
            except (OSError, http.client.HTTPException):
                raw = b""
            finally:
                exc.close()
        except urllib.error.URLError as exc:
            reason = exc.reason
            raise ProviderUnavailable("cannot reach the CIMI endpoint %s (%s): %s"
                                      % (self.shown_uri, operation, reason)) from None
        except TimeoutError:
            raise ProviderUnavailable("the CIMI endpoint %s did not answer within %ss (%s)"
                                      % (self.shown_uri, self.timeout, operation)) from None
        except (OSError, http.client.HTTPException) as exc:
            raise ProviderUnavailable("the CIMI endpoint %s failed (%s): %s"
                                      % (self.shown_uri, operation, exc)) from None
        if len(raw) > MAX_REPLY:
            raise ProviderUnavailable("the CIMI endpoint %s sent more than %d bytes (%s)"
                                      % (self.shown_uri, MAX_REPLY, operation))
        doc = self._decode(raw, status, operation)
        if status >= 300:
            raise self._error(status, doc, operation, subject)
        if isinstance(doc, dict) and resolve:
            doc = absolute(doc, self._base)
        return Reply(status, headers, doc, url)

    def _decode(self, raw, status, operation):
        if not raw.strip():
            return None
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            if status >= 300:
                return None  # an error page that is not JSON: the status says enough
            raise ProviderUnavailable("the CIMI endpoint %s sent a reply that is not JSON (%s)"
                                      % (self.shown_uri, operation)) from None

    def _error(self, status, doc, operation, subject, reason=None):
        """The error for an HTTP status or a failed Job's returnCode, with the endpoint's message."""
        message = reason
        attribute = None
        if isinstance(doc, dict):
            if isinstance(doc.get("statusMessage"), str) and doc["statusMessage"]:
                message = doc["statusMessage"]
            props = doc.get("properties") if isinstance(doc.get("properties"), dict) else {}
            attribute = props.get("attribute")
        if not message:
            message = http.client.responses.get(status, "HTTP %s" % status) if status >= 400 else "HTTP %s" % status
        if 300 <= status < 400:
            message = "the endpoint redirected elsewhere (%s); give that URI" % message
        return STATUS.error(status, operation, subject, self.name, attribute=attribute, uri=self.shown_uri,
                            detail=message)

    def _get(self, url, operation, subject, query=None, resolve=True):
        doc = self._request("GET", url, operation, subject, query=query, resolve=resolve).doc
        if not isinstance(doc, dict):
            raise ProviderUnavailable("%s (%s): the CIMI endpoint %s sent no JSON object"
                                      % (subject, operation, self.shown_uri))
        return doc

    # -- jobs ------------------------------------------------------------------------
    def _submit(self, method, url, operation, subject, body=None):
        """A change: the reply and, when the endpoint made it asynchronous, the Job it ended with."""
        reply = self._request(method, url, operation, subject, body=body)
        job_uri = reply.header(JOB_URI_HEADER)
        job = None
        if reply.status == 202 and job_uri:
            job = self._wait_job(urljoin(self._base, job_uri), operation, subject)
        return reply, job

    def _wait_job(self, job_uri, operation, subject):
        """Poll a Job until it ends; its document when it succeeded, else its error raised."""
        deadline = time.monotonic() + self.job_timeout
        delay = 0.02
        while True:
            job = self._get(job_uri, operation, subject)
            state = job.get("state")
            if state == "SUCCESS":
                return job
            if state in states.JOB_FINAL_STATES:
                raise self._job_error(job, operation, subject)
            if time.monotonic() + delay > deadline:
                raise OperationTimeout("%s (%s): job %s still %s after %ss on cimi endpoint %s"
                                       % (subject, operation, job_uri, state, self.job_timeout, self.shown_uri))
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    def _job_error(self, job, operation, subject):
        code = job.get("returnCode")
        if isinstance(code, bool) or not isinstance(code, int) or code < 400:
            code = 500
        error = self._error(code, job, operation, subject, reason="job %s" % job.get("state"))
        error.job = job
        return error

    # -- the Cloud Entry Point and its collections ---------------------------------------
    @property
    def cep(self):
        if self._cep is None:
            doc = self._get(self.uri, "cloudEntryPoint", "Cloud Entry Point", resolve=False)
            if doc.get("resourceURI") not in (None, type_uri("CloudEntryPoint")):
                raise ProviderUnavailable("%s is not a CIMI Cloud Entry Point (resourceURI %s)"
                                          % (self.shown_uri, doc.get("resourceURI")))
            base = doc.get("baseURI")
            if isinstance(base, str) and base and self._own(urljoin(self.uri, base)):
                self._base = urljoin(self.uri, base)
            self._cep = absolute(doc, self._base)
        return self._cep

    def _link(self, key):
        return collection_link(self.cep.get(key))

    def _collection(self, key, operation):
        href = self._link(key)
        if href is None:
            raise Unsupported(self.name, operation, "provider 'cimi' (%s) does not support %s: the endpoint "
                              "links no '%s' collection" % (self.shown_uri, operation, key))
        return href

    def _list(self, key, operation, subject, query=None):
        """Every entry of a collection (following on when the endpoint sent fewer than its count)
        and the count."""
        href = self._collection(key, operation)
        query = dict(query or {})
        doc = self._get(href, operation, subject, query=query)
        items = [i for i in doc.get(key) or [] if isinstance(i, dict)]
        count = doc.get("count")
        if "$first" in query or "$last" in query or not isinstance(count, int):
            return items, count
        for _page in range(MAX_PAGES):
            if len(items) >= count:
                break
            query["$first"] = len(items) + 1
            more = [i for i in self._get(href, operation, subject, query=query).get(key) or [] if isinstance(i, dict)]
            if not more:
                break
            items += more
        return items, count

    def _fetch(self, ref, cls, what, operation):
        """The document of the ``cls`` resource at ``ref`` (one of its ids); NotFound otherwise."""
        if not self._own(ref):
            raise NotFound("%s '%s' not found on provider cimi (%s): ids are the endpoint's resource URIs"
                           % (what, ref, self.shown_uri))
        doc = self._get(ref, operation, "%s '%s'" % (what, ref), query=self._expanded(cls))
        if doc.get("resourceURI") != type_uri(cls.type_name):
            raise NotFound("%s '%s' not found on provider cimi (%s): that URI is a %s"
                           % (what, ref, self.shown_uri, str(doc.get("resourceURI")).rsplit("/", 1)[-1]))
        return doc

    def _named(self, key, cls, name, operation, what):
        """Every ``cls`` resource called ``name`` ($filter on the endpoint, checked here again)."""
        literal = filter_literal(name) if isinstance(name, str) else None
        query = {"$filter": "name=%s" % literal} if literal else None
        query = dict(query or {}, **self._expanded(cls) or {})
        items, _count = self._list(key, operation, "%ss named '%s'" % (what, name), query=query or None)
        return [self._parse(cls, d, what, operation) for d in items if d.get("name") == name]

    @staticmethod
    def _expanded(resource_cls):
        """The $expand asking for the collections the model keeps inline, None for a type without."""
        names = INLINE_COLLECTIONS.get(resource_cls.type_name)
        return {"$expand": ",".join(names)} if names else None

    def _parse(self, cls, doc, what, operation):
        """parse(), the collections the model keeps inline first made inline: expanded by the endpoint, or
        read from their hrefs (an endpoint that ignored $expand, or one before CIMI 2.0 serving them inline)."""
        for wire in INLINE_COLLECTIONS.get(cls.type_name, ()):
            value = doc.get(wire)
            href = collection_link(value)
            if href is None:
                continue
            entries = cls.attributes[wire].collection[1]
            items = collection_entries(value, entries)
            if items is None and self._own(href):
                try:
                    items = collection_entries(self._get(href, operation, "%s of %s '%s'" % (
                        wire, what, doc.get("name") or doc.get("id"))), entries)
                except NotFound:  # a link to nothing: nothing known, rather than no resource at all
                    items = None
                if items is None:
                    doc = {k: v for k, v in doc.items() if k != wire}
                    continue
            if cls.attributes[wire].kind == REF:  # items that are resources of their own: references to them
                items = [{"href": item.get("href") or item.get("id")} for item in items or []]
            # the items as model structures read them: their own resourceURI and operations left out
            doc = dict(doc, **{wire: [{k: v for k, v in item.items() if k not in ("resourceURI", "operations")}
                                      for item in items or []]})
        return parse(cls, doc, what)

    def _by_ref(self, key, cls, ref, operation, what):
        """A resource by its id (URI) or its name."""
        if self._own(ref):
            return self._parse(cls, self._fetch(ref, cls, what, operation), what, operation)
        self._collection(key, operation)
        named = self._named(key, cls, ref, operation, what)
        if len(named) == 1:
            return named[0]
        if named:
            raise Conflict("%d %ss are named '%s' on provider 'cimi'; use an id" % (len(named), what, ref))
        raise NotFound("%s '%s' not found on provider cimi (%s)" % (what, ref, self.shown_uri))

    def _check_new_name(self, key, cls, name, operation, what):
        if not name or not isinstance(name, str):
            raise InvalidInput("%s name must be a non-empty string" % what, attribute="name")
        if self._named(key, cls, name, operation, what):
            raise Conflict("a %s named '%s' already exists on cimi endpoint %s" % (what, name, self.shown_uri))

    def _created(self, reply, job, cls, what, operation, subject):
        """The resource a create made: its Location (or the reply's own document)."""
        location = reply.header("Location")
        if location:
            return self._parse(cls, self._fetch(urljoin(reply.url, location), cls, what, operation), what, operation)
        if isinstance(reply.doc, dict) and reply.doc.get("resourceURI") == type_uri(cls.type_name):
            if job is None:
                return self._parse(cls, reply.doc, what, operation)
            return self._parse(cls, self._fetch(reply.doc["id"], cls, what, operation), what, operation)
        for ref in (job or {}).get("affectedResources") or []:
            href = collection_link(ref)
            if href and self._own(href):
                doc = self._get(href, operation, subject)
                if doc.get("resourceURI") == type_uri(cls.type_name):
                    return self._parse(cls, doc, what, operation)
        raise ProviderUnavailable("%s (%s): the CIMI endpoint %s did not say where the new %s is"
                                  % (subject, operation, self.shown_uri, what))

    def _undo(self, href, operation):
        """Best effort: delete what a failed create left behind (the original error is what counts)."""
        try:
            self._submit("DELETE", href, operation, "cleanup of %s" % href)
        except SiroccoError:
            pass

    # -- capabilities --------------------------------------------------------------------
    def _offers_add(self, key, operation):
        href = self._link(key)
        if href is None:
            return False
        doc = self._get(href, operation, "collection %s" % key, query={"$first": 1, "$last": 1})
        self._adds[key] = operation_href(doc, "add")
        return self._adds[key] is not None

    def _metadata(self, type_name):
        """The endpoint's ResourceMetadata of ``type_name`` (read once), or None where it describes none."""
        if type_name not in self._metadata_seen:
            found = None
            href = self._link("resourceMetadata")
            if href is not None:
                try:
                    doc = self._get(href, "capabilities", "resource metadata",
                                    query={"$filter": "typeURI='%s'" % type_uri(type_name)})
                except (NotFound, InvalidInput):
                    doc = {}
                found = next((m for m in doc.get("resourceMetadatas") or doc.get("resourceMetadata") or []
                              if isinstance(m, dict) and m.get("typeURI") == type_uri(type_name)), None)
            self._metadata_seen[type_name] = found
        return self._metadata_seen[type_name]

    def _actions(self, type_name, verbs):
        """Which of ``verbs`` the endpoint's ``type_name`` resources take, from their ResourceMetadata when the
        endpoint serves it; else all of them (each resource's operations will tell)."""
        meta = self._metadata(type_name)
        if meta is None:
            return tuple(verbs)
        offered = [a.get("uri", "").rsplit("/", 1)[-1] or a.get("name")
                   for a in meta.get("actions") or [] if isinstance(a, dict)]
        return tuple(v for v in verbs if v in offered)

    def _published(self):
        """The capabilities of the endpoint's Machine ResourceMetadata: uri -> value (a string)."""
        return {c.get("uri"): c.get("value") for c in (self._metadata("Machine") or {}).get("capabilities") or []
                if isinstance(c, dict) and isinstance(c.get("value"), str)}

    def _guest_fields(self):
        """guest_inputs and user_data_limit as the endpoint publishes them in the Machine ResourceMetadata
        (siroccod: SIROCCO_CAPABILITY_NS guestInputs, userDataLimit); the class's own for one that does not."""
        fields = self.guest_fields()
        published = self._published()
        inputs = published.get(SIROCCO_CAPABILITY_NS + "guestInputs")
        if inputs is not None:
            fields["guest_inputs"] = frozenset(inputs.split()) & self.guest_inputs
        limit = published.get(SIROCCO_CAPABILITY_NS + "userDataLimit")
        if limit is not None and limit.isdigit():
            fields["user_data_limit"] = min(int(limit), MAX_USER_DATA)
        return fields

    def _machine_actions(self):
        return self._actions("Machine", states.MACHINE_ACTIONS)

    def _stored_operations(self):
        """Operations on the stored kinds, systems and jobs the endpoint links."""
        ops = set()
        for key, prefix in STORED_KINDS:
            if self._link(key):
                ops |= {prefix + ".list", prefix + ".delete"}
                if self._offers_add(key, "capabilities"):
                    ops.add(prefix + ".create")
        if self._link("systems"):
            ops |= {"system.list", "system.delete"}
            if self._offers_add("systems", "capabilities"):
                ops.add("system.create")
            ops |= {"system." + verb for verb in self._actions("System", (states.START, states.STOP))}
        if self._link("jobs"):
            ops.add("job.list")
        return ops

    def _meter_aspects(self):
        href = self._link("meterConfigs")
        if href is None:
            return ()
        items, _count = self._list("meterConfigs", "capabilities", "meter configurations")
        return tuple(dict.fromkeys(i["aspect"] for i in items if isinstance(i.get("aspect"), str)))

    def hosts(self):
        """Names of the endpoint's hosts when it shows them (siroccod, to administrators), else ()."""
        if self._hosts is None:
            self._hosts = ()
            href = self._link("hosts")
            if href is not None:
                try:
                    doc = self._get(href, "capabilities", "hosts")
                except (Forbidden, NotFound, AuthError):
                    doc = {}
                self._hosts = tuple(h["name"] for h in doc.get("hosts") or []
                                    if isinstance(h, dict) and isinstance(h.get("name"), str))
        return self._hosts

    def capabilities(self):
        if self._caps is not None:
            return self._caps
        ops = set()
        has = self._link
        if has("machines"):
            ops |= {"machine.list", "machine.get", "machine.delete"}
            if self._offers_add("machines", "capabilities"):
                ops.add("machine.create")
            for verb in self._machine_actions():
                if verb != states.CAPTURE or has("machineImages"):
                    ops.add("machine." + verb)
            if self._offers_resize("Machine"):
                ops.add("machine.resize")
            if has("meters"):
                ops.add("meter.list")
        if has("machineConfigs"):
            ops.add("machine_config.list")
        if has("machineImages"):
            ops |= {"machine_image.list", "machine_image.delete"}
            if self._offers_add("machineImages", "capabilities"):
                ops.add("machine_image.import")
        if has("volumes"):
            ops |= {"volume.list", "volume.delete"}
            if self._offers_add("volumes", "capabilities"):
                ops.add("volume.create")
            if has("machines"):  # CIMI machines have a volumes collection (checked per machine)
                ops |= {"volume.attach", "volume.detach"}
            if self._offers_resize("Volume"):
                ops.add("volume.resize")
        if has("networks"):
            ops |= {"network.list", "network.delete"}
            if self._offers_add("networks", "capabilities"):
                ops.add("network.create")
        ops |= self._stored_operations()
        cpu = mhz = memory = Range()
        archs = ()
        if "machine_config.list" in ops:
            configs = self._configs()
            cpus = [c.cpu for c in configs if c.cpu]
            mibs = [-(-c.memory // KIB_PER_MIB) for c in configs if c.memory]
            speeds = [c.cpuSpeed for c in configs if c.cpuSpeed]
            if cpus:
                cpu = Range(min(cpus), max(cpus))
            if mibs:
                memory = Range(min(mibs), max(mibs))
            if speeds and len(speeds) == len(configs):
                mhz = Range(min(speeds), max(speeds))
            if configs and all(c.cpuArch for c in configs):
                archs = tuple(dict.fromkeys(c.cpuArch for c in configs))
        meters = self._meter_aspects() if "meter.list" in ops else ()
        self._caps = Capabilities(
            provider=self.name, operations=frozenset(ops), cpu=cpu, cpu_mhz=mhz, memory_mib=memory, archs=archs,
            meters=meters, locations=self.hosts() or (self.cep.get("id") or self.uri,),
            **self._guest_fields(),
            image_formats=self.import_formats() if "machine_image.import" in ops else (),
            extras={"endpoint": self.cep.get("id") or self.uri, "endpointName": self.cep.get("name")})
        return self._caps

    # -- machines ------------------------------------------------------------------------
    def _machine_doc(self, machine_id, operation):
        return self._fetch(machine_id, Machine, "machine", operation)

    @staticmethod
    def _label(doc):
        return "machine '%s'" % (doc.get("name") or doc.get("id"))

    def list_machines(self, limit=None, marker=None):
        self.require("machine.list")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise InvalidInput("limit must be a positive integer", attribute="limit")
        position = 0
        if marker is not None:
            try:
                position = int(marker)
            except (TypeError, ValueError):
                position = -1
            if position < 0:
                raise InvalidInput("marker '%s' is not a position this connector gave" % marker, attribute="marker")
        if limit is None and not position:
            items, _count = self._list("machines", "machine.list", "machines", query=self._expanded(Machine))
            return Page(items=[self._parse(Machine, d, "machine", "machine.list") for d in items])
        query = dict(self._expanded(Machine), **{"$first": position + 1})
        if limit is not None:
            query["$last"] = position + limit
        href = self._collection("machines", "machine.list")
        doc = self._get(href, "machine.list", "machines", query=query)
        items = [d for d in doc.get("machines") or [] if isinstance(d, dict)]
        if limit is not None:
            items = items[:limit]
        count = doc.get("count")
        reached = position + len(items)
        more = limit is not None and bool(items) and (reached < count if isinstance(count, int)
                                                      else len(items) == limit)
        return Page(items=[self._parse(Machine, d, "machine", "machine.list") for d in items],
                    marker=str(reached) if more else None)

    def find_machines(self, name):
        self.require("machine.list")
        return self._named("machines", Machine, name, "machine.list", "machine")

    def get_machine(self, machine_id):
        self.require("machine.get")
        return self._parse(Machine, self._machine_doc(machine_id, "machine.get"), "machine", "machine.get")

    def create_machine(self, spec):
        spec.validate()
        self.require("machine.create")
        caps = self.capabilities()
        # a CIMI endpoint takes both, a password credential included; its userData attribute holds at most
        # MAX_USER_DATA characters (refused here, before anything is created, rather than by its reply)
        if spec.user_data is not None and isinstance(spec.user_data, str) and len(spec.user_data) > MAX_USER_DATA:
            raise InvalidInput("userData is %d characters; provider 'cimi' takes at most %d"
                               % (len(spec.user_data), MAX_USER_DATA), attribute="userData")
        check_guest_inputs(spec, self.name, caps.guest_inputs, caps.user_data_limit, passwords=True)
        properties = dict(spec.properties or {})
        if spec.location:
            if spec.location in self.hosts():
                properties[HOST_PROPERTY] = spec.location
            elif spec.location not in caps.locations:
                raise InvalidInput("location '%s' is not offered by cimi endpoint %s (offers: %s)"
                                   % (spec.location, self.shown_uri, ", ".join(caps.locations)), attribute="location")
        reasons = caps.fits(cpu=spec.config.cpu, memory_mib=-(-spec.config.memory // KIB_PER_MIB),
                            arch=spec.config.cpuArch, cpu_mhz=spec.config.cpuSpeed)
        if reasons:
            raise InvalidInput("machine '%s' does not fit cimi endpoint %s: %s"
                               % (spec.name, self.shown_uri, "; ".join(reasons)), attribute="machineConfig")
        template = {"initialState": spec.initial_state, "machineConfig": self._config_ref(spec.config)}
        if spec.image:
            template["machineImage"] = {"href": self.get_machine_image(spec.image).id}
        if spec.credential:
            template["credential"] = credential_document(spec.credential)
        if spec.user_data:
            template["userData"] = spec.user_data
        if spec.volumes:
            template["volumes"] = [{"volume": {"href": self.get_volume(ref).id}} for ref in spec.volumes]
        if spec.networks:
            template["interfaceTemplates"] = [{"network": {"href": self.get_network(ref).id}}
                                              for ref in spec.networks]
        self._check_new_name("machines", Machine, spec.name, "machine.create", "machine")
        body = {"resourceURI": type_uri("MachineCreate"), "name": spec.name, "machineTemplate": template}
        if spec.description is not None:
            body["description"] = spec.description
        if properties:
            body["properties"] = properties
        return self._create("machines", body, Machine, "machine", "machine.create", "machine '%s'" % spec.name)

    def _config_ref(self, config):
        """A configuration of this endpoint by reference, any other by value."""
        if config.id and self._own(config.id):
            return {"href": config.id}
        value = {k: v for k, v in config.to_json().items() if k in model.HARDWARE}
        return value

    def _create(self, key, body, cls, what, operation, subject):
        """POST to the collection's add href, wait for the Job, return the new resource. A create whose
        Job failed leaves nothing behind: what the endpoint recorded is deleted again."""
        self.require(operation)
        self._collection(key, operation)
        add = self._adds.get(key)
        if add is None:
            raise Unsupported(self.name, operation, "provider 'cimi' (%s) does not support %s: collection %s "
                              "offers no 'add'" % (self.shown_uri, operation, key))
        reply = self._request("POST", add, operation, subject, body=body)
        job = None
        job_uri = reply.header(JOB_URI_HEADER)
        if reply.status == 202 and job_uri:
            try:
                job = self._wait_job(urljoin(self._base, job_uri), operation, subject)
            except SiroccoError as exc:
                location = reply.header("Location")
                if location and getattr(exc, "job", None) is not None:
                    self._undo(urljoin(reply.url, location), operation)
                raise
        return self._created(reply, job, cls, what, operation, subject)

    def _act(self, machine_id, verb, force=None, extra=None):
        """POST an Action to the href the machine offers for ``verb``; the final Job (or None)."""
        operation = "machine." + verb
        self.require(operation)
        doc = self._machine_doc(machine_id, operation)
        return self._invoke(doc, verb, operation, self._label(doc), force, extra)

    def _invoke(self, doc, verb, operation, label, force=None, extra=None):
        """POST an Action to the href the resource ``doc`` offers for ``verb``; the final Job (or None)."""
        href = operation_href(doc, action_uri(verb))
        if href is None:
            raise Conflict("cannot %s %s in state %s: the endpoint offers %s"
                           % (verb, label, doc.get("state"), ", ".join(sorted(
                               r.rsplit("/", 1)[-1] for r in links(doc))) or "nothing"))
        body = {"resourceURI": type_uri("Action"), "action": action_uri(verb)}
        if force is not None:
            body["force"] = bool(force)
        body.update(extra or {})
        _reply, job = self._submit("POST", href, operation, label, body=body)
        return job

    def _action(self, machine_id, verb, force=None):
        self._act(machine_id, verb, force)
        return self.get_machine(machine_id)

    def resize_machine(self, machine_id, config):
        """``config``'s cpu and memory through the endpoint's resize action (siroccod's extension,
        SIROCCO_RESIZE: the machineConfig by reference when it is the endpoint's, else by value); the Machine
        once its Job succeeded. The endpoint's refusals come back as they are (409: no room, or stop it first)."""
        self.require("machine.resize")
        self._check_resize_config(config)
        doc = self._machine_doc(machine_id, "machine.resize")
        label = self._label(doc)
        href = self._resize_href(doc, label)
        if doc.get("state") != states.STOPPED and not self._published().get(SIROCCO_CAPABILITY_NS + "resizeDryRun"):
            raise Conflict("cannot resize %s in state %s: the endpoint cannot say whether it takes this size live: "
                           "stop it first, then resize" % (label, doc.get("state")))
        body = {"resourceURI": type_uri("Action"), "action": SIROCCO_RESIZE, "machineConfig": self._config_ref(config)}
        self._submit("POST", href, "machine.resize", label, body=body)
        return self.get_machine(doc["id"])

    def _check_resize_config(self, config):
        """InvalidInput(machineConfig...) unless ``config`` is a size within the advertised ranges (as at
        create_machine)."""
        for what in ("cpu", "memory"):
            value = getattr(config, what, None)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInput("machineConfig.%s must be a positive integer" % what,
                                   attribute="machineConfig." + what)
        reasons = self.capabilities().fits(cpu=config.cpu, memory_mib=-(-config.memory // KIB_PER_MIB),
                                           arch=getattr(config, "cpuArch", None))
        if reasons:
            raise InvalidInput("cimi endpoint %s cannot resize a machine to that: %s"
                               % (self.shown_uri, "; ".join(reasons)), attribute="machineConfig")

    @staticmethod
    def _resize_href(doc, label):
        href = operation_href(doc, SIROCCO_RESIZE)
        if href is None:
            stopped = doc.get("state") == states.STOPPED
            raise Conflict("cannot resize %s in state %s: the endpoint offers no resize of it%s"
                           % (label, doc.get("state"), "" if stopped else " now: stop it first, then resize"))
        return href

    def resize_needs_stop(self, machine, config):
        """Not when stopped; else when the endpoint does not offer the machine's resize now, or its dry run of
        this resize (siroccod: POST <resize href>?dryRun=true, which asks the host's own resize_needs_stop)
        says so. An endpoint without dry runs: only a stopped machine is resized."""
        if machine.state == states.STOPPED:
            return False
        self._check_resize_config(config)
        doc = self._machine_doc(machine.id, "machine.resize")
        dry_run = self._published().get(SIROCCO_CAPABILITY_NS + "resizeDryRun")
        if operation_href(doc, SIROCCO_RESIZE) is None or not dry_run:
            return True
        body = {"resourceURI": type_uri("Action"), "action": SIROCCO_RESIZE, "machineConfig": self._config_ref(config)}
        reply = self._request("POST", operation_href(doc, SIROCCO_RESIZE), "machine.resize", self._label(doc),
                              body=body, query={dry_run: "true"})
        answer = reply.doc if reply.status == 200 and isinstance(reply.doc, dict) else {}
        return answer.get("needsStop") is not False

    def _offers_resize(self, type_name):
        """Whether the endpoint's ResourceMetadata of ``type_name`` lists the SIROCCO_RESIZE action
        (an endpoint that does not describe its types offers no extension action)."""
        meta = self._metadata(type_name) or {}
        return any(isinstance(a, dict) and a.get("uri") == SIROCCO_RESIZE for a in meta.get("actions") or [])

    def start_machine(self, machine_id):
        return self._action(machine_id, states.START)

    def stop_machine(self, machine_id, force=False):
        return self._action(machine_id, states.STOP, force=force)

    def restart_machine(self, machine_id, force=False):
        return self._action(machine_id, states.RESTART, force=force)

    def pause_machine(self, machine_id):
        return self._action(machine_id, states.PAUSE)

    def suspend_machine(self, machine_id):
        return self._action(machine_id, states.SUSPEND)

    def delete_machine(self, machine_id):
        self.require("machine.delete")
        doc = self._machine_doc(machine_id, "machine.delete")
        self._delete(doc, "machine.delete", self._label(doc))

    def _delete(self, doc, operation, label):
        href = operation_href(doc, "delete")
        if href is None:
            state = doc.get("state")
            raise Conflict("cannot delete %s%s: the endpoint does not offer it now"
                           % (label, " in state %s" % state if state else ""))
        self._submit("DELETE", href, operation, label)

    def capture_machine(self, machine_id, name=None, description=None):
        self.require("machine.capture")
        if name is not None:
            self._check_new_name("machineImages", MachineImage, name, "machine.capture", "machine image")
        image = {k: v for k, v in (("name", name), ("description", description)) if v is not None}
        subject = "capture of machine '%s'" % machine_id
        try:
            job = self._act(machine_id, states.CAPTURE, extra={"image": image} if image else None)
        except SiroccoError as exc:
            # A refused capture may leave an image in ERROR behind: it is removed again.
            for ref in (getattr(exc, "job", None) or {}).get("affectedResources") or []:
                href = collection_link(ref)
                if href and self._own(href) and href != machine_id:
                    self._remove_failed_image(href)
            raise
        for ref in (job or {}).get("affectedResources") or []:
            href = collection_link(ref)
            if href and self._own(href) and href != machine_id:
                doc = self._get(href, "machine.capture", subject)
                if doc.get("resourceURI") == type_uri("MachineImage"):
                    return parse(MachineImage, doc, "machine image")
        if name is not None:
            found = self._named("machineImages", MachineImage, name, "machine.capture", "machine image")
            if len(found) == 1:
                return found[0]
        raise ProviderUnavailable("%s: the CIMI endpoint %s did not say which image it made"
                                  % (subject, self.shown_uri))

    def _remove_failed_image(self, href):
        try:
            doc = self._get(href, "machine.capture", "image %s" % href)
            if doc.get("resourceURI") == type_uri("MachineImage") and doc.get("state") == "ERROR":
                self._delete(doc, "machine.capture", "machine image '%s'" % href)
        except SiroccoError:
            pass  # best effort: the capture's own error is what the caller sees

    # -- configurations and images ------------------------------------------------------
    def list_machine_configs(self):
        self.require("machine_config.list")
        return self._configs()

    def _configs(self):
        items, _count = self._list("machineConfigs", "machine_config.list", "machine configurations")
        return [parse(MachineConfiguration, d, "machine configuration") for d in items]

    def get_machine_config(self, ref):
        self.require("machine_config.list")
        return self._by_ref("machineConfigs", MachineConfiguration, ref, "machine_config.list", "machine configuration")

    def list_machine_images(self):
        self.require("machine_image.list")
        items, _count = self._list("machineImages", "machine_image.list", "machine images")
        return [parse(MachineImage, d, "machine image") for d in items]

    def get_machine_image(self, ref):
        self.require("machine_image.list")
        return self._by_ref("machineImages", MachineImage, ref, "machine_image.list", "machine image")

    def import_machine_image(self, image):
        """POST a MachineImage whose ``imageLocation`` is ``image.url``, else the file:// URL of its file: the
        endpoint fetches the bytes itself (siroccod: from the sources its administrator allowed, checked
        against ``sirocco.checksum``) and registers them; the image once its Job has ended."""
        self.require("machine_image.import")
        if not image.name or not isinstance(image.name, str):
            raise InvalidInput("image name must be a non-empty string", attribute="name")
        properties = dict(image.properties or {})
        location = image.url
        if not location:
            fmt, path = image.validate(self.image_formats)
            location = "file://" + quote(os.path.abspath(path))
            if image.checksums.get(fmt):
                properties.setdefault(CHECKSUM_PROPERTY, "sha256:" + image.checksums[fmt])
        properties[IMAGE_ARCH_PROPERTY] = image.arch
        if image.generic_name:
            properties[IMAGE_NAME_PROPERTY] = image.generic_name
        self._check_new_name("machineImages", MachineImage, image.name, "machine_image.import", "machine image")
        body = {"resourceURI": type_uri("MachineImage"), "name": image.name, "type": "IMAGE",
                "imageLocation": location, "properties": properties}
        if image.description is not None:
            body["description"] = image.description
        return self._create("machineImages", body, MachineImage, "machine image", "machine_image.import",
                            "machine image '%s'" % image.name)

    def delete_machine_image(self, image_id):
        self.require("machine_image.delete")
        doc = self._fetch(image_id, MachineImage, "machine image", "machine_image.delete")
        self._delete(doc, "machine_image.delete", "machine image '%s'" % (doc.get("name") or image_id))

    # -- volumes ---------------------------------------------------------------------------
    def list_volumes(self):
        self.require("volume.list")
        items, _count = self._list("volumes", "volume.list", "volumes")
        return [parse(Volume, d, "volume") for d in items]

    def get_volume(self, ref):
        self.require("volume.list")
        return self._by_ref("volumes", Volume, ref, "volume.list", "volume")

    def create_volume(self, name, capacity_kb, description=None, properties=None, volume_type=None):
        self.require("volume.create")
        if isinstance(capacity_kb, bool) or not isinstance(capacity_kb, int) or capacity_kb < 1:
            raise InvalidInput("volume capacity must be a positive number of KB", attribute="capacity")
        config = {"capacity": capacity_kb}
        if volume_type is not None:  # the endpoint's hosts decide which types they take
            if not isinstance(volume_type, str) or not volume_type:
                raise InvalidInput("volume type must be a non-empty string", attribute="type")
            config["type"] = volume_type
        self._check_new_name("volumes", Volume, name, "volume.create", "volume")
        body = {"resourceURI": type_uri("VolumeCreate"), "name": name, "volumeTemplate": {"volumeConfig": config}}
        if description is not None:
            body["description"] = description
        if properties:
            body["properties"] = dict(properties)
        return self._create("volumes", body, Volume, "volume", "volume.create", "volume '%s'" % name)

    def resize_volume(self, volume_id, capacity_kb):
        """Grow a volume through the endpoint's resize action (siroccod's extension, SIROCCO_RESIZE); the
        same capacity is a no-op."""
        self.require("volume.resize")
        if isinstance(capacity_kb, bool) or not isinstance(capacity_kb, int) or capacity_kb < 1:
            raise InvalidInput("volume capacity must be a positive number of KB", attribute="capacity")
        doc = self._fetch(volume_id, Volume, "volume", "volume.resize")
        label = "volume '%s'" % (doc.get("name") or volume_id)
        present = doc.get("capacity")
        if isinstance(present, int) and not isinstance(present, bool):
            if capacity_kb < present:
                raise InvalidInput("%s has %d KB: volumes only grow (asked for %d KB)" % (label, present, capacity_kb),
                                   attribute="capacity")
            if capacity_kb == present:
                return parse(Volume, doc, "volume")
        href = operation_href(doc, SIROCCO_RESIZE)
        if href is None:
            raise Conflict("cannot resize %s now (state %s): the endpoint offers no resize of it"
                           % (label, doc.get("state")))
        body = {"resourceURI": type_uri("Action"), "action": SIROCCO_RESIZE, "capacity": capacity_kb}
        self._submit("POST", href, "volume.resize", label, body=body)
        return parse(Volume, self._fetch(doc["id"], Volume, "volume", "volume.resize"), "volume")

    def delete_volume(self, volume_id):
        self.require("volume.delete")
        doc = self._fetch(volume_id, Volume, "volume", "volume.delete")
        label = "volume '%s'" % (doc.get("name") or volume_id)
        attached = doc.get("attachedTo")
        users = [collection_link(r) for r in attached] if isinstance(attached, list) else []
        if users:
            raise Conflict("%s is attached to machine(s) %s; detach it first" % (label, ", ".join(map(str, users))))
        self._delete(doc, "volume.delete", label)

    def _machine_volumes(self, doc, operation):
        """The href of a machine's volumes collection (CIMI ``volumes: {href}``; siroccod before it served CIMI
        2.0's collections: ``machineVolumes``)."""
        href = collection_link(doc.get("machineVolumes")) or collection_link(doc.get("volumes"))
        if href is None:
            raise Unsupported(self.name, operation, "provider 'cimi' (%s) does not support %s: %s has no volumes "
                              "collection" % (self.shown_uri, operation, self._label(doc)))
        return href

    def attach_volume(self, machine_id, volume_id, initial_location=None):
        self.require("volume.attach")
        doc = self._machine_doc(machine_id, "volume.attach")
        label = self._label(doc)
        volume = self.get_volume(volume_id)
        users = [collection_link(r) for r in volume.attachedTo or []]
        if users:
            where = "this machine" if doc["id"] in users else "machine(s) %s" % ", ".join(map(str, users))
            raise Conflict("volume '%s' is already attached to %s" % (volume.name or volume.id, where))
        collection = self._get(self._machine_volumes(doc, "volume.attach"), "volume.attach", label)
        add = operation_href(collection, "add")
        if add is None:
            raise Conflict("%s accepts no volume now (state %s)" % (label, doc.get("state")))
        body = {"resourceURI": type_uri("locatedVolume"), "volume": {"href": volume.id}}
        if initial_location:
            body["initialLocation"] = initial_location
        self._submit("POST", add, "volume.attach", label, body=body)
        return self.get_machine(doc["id"])

    def detach_volume(self, machine_id, volume_id):
        self.require("volume.detach")
        doc = self._machine_doc(machine_id, "volume.detach")
        label = self._label(doc)
        volume = self.get_volume(volume_id)
        collection = self._get(self._machine_volumes(doc, "volume.detach"), "volume.detach", label)
        for item in collection_entries(collection, "locatedVolumes") or []:
            if isinstance(item, dict) and collection_link(item.get("volume")) == volume.id:
                self._delete(item, "volume.detach", "volume '%s' of %s" % (volume.name or volume.id, label))
                return self.get_machine(doc["id"])
        raise Conflict("volume '%s' is not attached to %s" % (volume.name or volume.id, label))

    # -- networks ---------------------------------------------------------------------------
    def list_networks(self):
        self.require("network.list")
        items, _count = self._list("networks", "network.list", "networks")
        return [parse(Network, d, "network") for d in items]

    def get_network(self, ref):
        self.require("network.list")
        return self._by_ref("networks", Network, ref, "network.list", "network")

    def create_network(self, name, description=None, properties=None, cidr=None, dhcp=None):
        self.require("network.create")
        config = {}
        if cidr is not None:  # checked by the endpoint (siroccod: an IPv4 network, 400 naming cidr otherwise)
            if not isinstance(cidr, str) or not cidr:
                raise InvalidInput("cidr must be an IPv4 network such as 10.20.0.0/24", attribute="cidr")
            config["cidr"] = cidr
        if dhcp is not None:
            if not isinstance(dhcp, bool):
                raise InvalidInput("dhcp must be true or false", attribute="dhcp")
            config["dhcp"] = dhcp
        self._check_new_name("networks", Network, name, "network.create", "network")
        # Table 31: started (a spec endpoint's default is STOPPED), cidr and dhcp in Sirocco's networkConfig
        # extension, which only an endpoint with that extension takes (it cannot set them up otherwise)
        template = {"initialState": states.STARTED}
        if config:
            template["networkConfig"] = config
        if self._network_config_required:
            template = {"networkConfig": config}
        body = {"resourceURI": type_uri("NetworkCreate"), "name": name, "networkTemplate": template}
        if description is not None:
            body["description"] = description
        if properties:
            body["properties"] = dict(properties)
        args = ("networks", body, Network, "network", "network.create", "network '%s'" % name)
        try:
            return self._create(*args)
        except InvalidInput as exc:
            # an older siroccod (its NetworkTemplate a required networkConfig, no initialState) refuses the
            # request before making anything, naming either: it gets the template it takes
            legacy = exc.attribute == "initialState" or (exc.attribute == "networkConfig" and not config)
            if self._network_config_required or not legacy:
                raise
            self._network_config_required = True
            body["networkTemplate"] = {"networkConfig": config}
            return self._create(*args)

    def delete_network(self, network_id):
        self.require("network.delete")
        doc = self._fetch(network_id, Network, "network", "network.delete")
        self._delete(doc, "network.delete", "network '%s'" % (doc.get("name") or network_id))

    # -- meters -------------------------------------------------------------------------------
    def list_meters(self, machine_id, start=None, end=None):
        """The machine's Meters. Without a window each carries its newest sample; with ``start``/``end``
        (timezone-aware datetimes, either may be None) the samples its Meter document carries inside that
        window, oldest first. What a document carries is the endpoint's choice: siroccod's carry the newest
        60 samples of its stored history (one per sampling interval, 60 s by default), so a window reaching
        further back than that gets only those."""
        self.require("meter.list")
        window = check_window(start, end)
        doc = self._machine_doc(machine_id, "meter.list")
        label = self._label(doc)
        refs = doc.get("meters")
        if isinstance(refs, dict):  # CIMI 2.0: a collection of the machine's meters
            items = self._get(refs["href"], "meter.list", label).get("meters") or []
            refs = [{"href": i["id"]} for i in items if isinstance(i, dict) and i.get("id")]
        meters = []
        for ref in refs or []:
            href = collection_link(ref)
            if href:
                meter = self._parse(Meter, self._fetch(href, Meter, "meter", "meter.list"), "meter", "meter.list")
                if meter.samples:  # the contract's reading is the newest sample (an endpoint may keep many)
                    meter.samples = in_window(meter.samples, window) if window else meter.samples[-1:]
                meters.append(meter)
        return meters

    # -- stored resources: the common parts ---------------------------------------------------
    def _stored_list(self, key, cls, what, operation):
        self.require(operation)
        items, _count = self._list(key, operation, what + "s", query=self._expanded(cls))
        return [self._parse(cls, d, what, operation) for d in items]

    def _stored_delete(self, ref, cls, what, operation):
        self.require(operation)
        doc = self._fetch(ref, cls, what, operation)
        self._delete(doc, operation, "%s '%s'" % (what, doc.get("name") or ref))

    @staticmethod
    def _writable(kind, value, path):
        """``value`` (a ``kind`` object or its JSON) as a client's document, checked by the model: an
        InvalidInput naming the attribute before anything is sent. Read-only attributes are left out."""
        if isinstance(value, kind):
            doc = value.to_json()
        elif isinstance(value, dict):
            doc = dict(value)
        else:
            raise InvalidInput("%s: expected a %s" % (path, kind.type_name), attribute=path)
        doc = {k: v for k, v in doc.items() if not (k in kind.attributes and kind.attributes[k].read_only)}
        return kind.from_json(doc, path=path).to_json()

    @staticmethod
    def _resolve(getter, ref, path):
        """The resource ``getter`` finds for ``ref`` (a URI or a name), or InvalidInput naming ``path``."""
        try:
            return getter(ref)
        except (NotFound, Unsupported) as exc:
            raise InvalidInput("%s: %s" % (path, exc.message), attribute=path) from None

    def _template_refs(self, template, path):
        """A MachineTemplate's JSON with each reference that names a resource (instead of giving one of the
        endpoint's URIs) made that resource's URI; InvalidInput naming the attribute when none is so named."""
        out = dict(template)
        for attribute, getter in TEMPLATE_REFS:
            ref = out.get(attribute)
            href = ref.get("href") if isinstance(ref, dict) else None
            if href is not None and not self._own(href):
                where = "%s.%s" % (path, attribute)
                out[attribute] = dict(ref, href=self._resolve(getattr(self, getter), href, where).id)
        return out

    # -- credentials -------------------------------------------------------------------------
    def list_credentials(self):
        """The endpoint's Credentials: name, userName and key (the public key); a password never."""
        return self._stored_list("credentials", Credential, "credential", "credential.list")

    def get_credential(self, ref):
        self.require("credential.list")
        return self._by_ref("credentials", Credential, ref, "credential.list", "credential")

    def create_credential(self, name, key, user_name=None, description=None):
        """Register the SSH public key ``key`` as Credential ``name``: a CredentialCreate whose credentialTemplate
        carries it by value (DSP0263); an endpoint that refuses that type (a 400 naming resourceURI, nothing
        made) and takes the Credential itself, as siroccod does, is sent the Credential."""
        self.require("credential.create")
        key = public_key(key, attribute="key")
        if user_name is not None and (not isinstance(user_name, str) or not USER_NAME_RE.match(user_name)):
            raise InvalidInput("userName '%s' is not a user name a guest OS takes (lower-case letters, digits, "
                               "'_' and '-', at most 32)" % (user_name,), attribute="userName")
        if description is not None and not isinstance(description, str):
            raise InvalidInput("description: expected a string", attribute="description")
        self._check_new_name("credentials", Credential, name, "credential.create", "credential")
        value = {k: v for k, v in (("userName", user_name), ("key", key)) if v is not None}
        meta = {k: v for k, v in (("name", name), ("description", description)) if v is not None}
        args = ("credentials", Credential, "credential", "credential.create", "credential '%s'" % name)
        if not self._credential_itself:
            body = dict(meta, resourceURI=type_uri("CredentialCreate"), credentialTemplate=value)
            try:
                return self._create(args[0], body, *args[1:])
            except InvalidInput as exc:
                if exc.attribute != "resourceURI":
                    raise
                self._credential_itself = True
        return self._create(args[0], dict(meta, resourceURI=type_uri("Credential"), **value), *args[1:])

    def delete_credential(self, credential_id):
        self._stored_delete(credential_id, Credential, "credential", "credential.delete")

    # -- machine configurations and templates --------------------------------------------------
    def create_machine_config(self, config):
        """Store ``config`` (a named MachineConfiguration, or its JSON); the stored one."""
        self.require("machine_config.create")
        body = self._writable(MachineConfiguration, config, "machineConfig")
        what = "machine configuration"
        self._check_new_name("machineConfigs", MachineConfiguration, body.get("name"), "machine_config.create", what)
        made = self._create("machineConfigs", body, MachineConfiguration, what, "machine_config.create",
                            "%s '%s'" % (what, body["name"]))
        self._caps = None  # the hardware ranges follow the configurations
        return made

    def delete_machine_config(self, config_id):
        self._stored_delete(config_id, MachineConfiguration, "machine configuration", "machine_config.delete")
        self._caps = None

    def list_machine_templates(self):
        return self._stored_list("machineTemplates", MachineTemplate, "machine template", "machine_template.list")

    def get_machine_template(self, ref):
        self.require("machine_template.list")
        return self._by_ref("machineTemplates", MachineTemplate, ref, "machine_template.list", "machine template")

    def create_machine_template(self, template):
        """Store a MachineTemplate (object or JSON): its machineConfig, machineImage and credential by reference
        ({"href": a URI of the endpoint, or the name of one of its resources}) or by value."""
        self.require("machine_template.create")
        body = self._template_refs(self._writable(MachineTemplate, template, "machineTemplate"), "machineTemplate")
        what = "machine template"
        self._check_new_name("machineTemplates", MachineTemplate, body.get("name"), "machine_template.create", what)
        return self._create("machineTemplates", body, MachineTemplate, what, "machine_template.create",
                            "%s '%s'" % (what, body["name"]))

    def delete_machine_template(self, template_id):
        self._stored_delete(template_id, MachineTemplate, "machine template", "machine_template.delete")

    # -- system templates ----------------------------------------------------------------------
    def list_system_templates(self):
        return self._stored_list("systemTemplates", SystemTemplate, "system template", "system_template.list")

    def get_system_template(self, ref):
        self.require("system_template.list")
        return self._by_ref("systemTemplates", SystemTemplate, ref, "system_template.list", "system template")

    def create_system_template(self, template):
        """Store a SystemTemplate (object or JSON); see ``_system_template`` for its components."""
        self.require("system_template.create")
        body = self._system_template(template, "systemTemplate")
        what = "system template"
        self._check_new_name("systemTemplates", SystemTemplate, body.get("name"), "system_template.create", what)
        return self._create("systemTemplates", body, SystemTemplate, what, "system_template.create",
                            "%s '%s'" % (what, body["name"]))

    def delete_system_template(self, template_id):
        self._stored_delete(template_id, SystemTemplate, "system template", "system_template.delete")

    def _system_template(self, template, path):
        """A SystemTemplate's JSON in Table 14's shape, checked: each componentDescriptor's ``type`` a type URI
        (Machine, Volume or Network stand for theirs), its component's template under the attribute named for
        it (machineTemplate, volumeTemplate, networkTemplate; one under siroccod's former ``component`` is sent
        there), a machineTemplate by reference (a URI or a name) or by value, its references resolved as
        ``create_machine_template`` does."""
        doc = template.to_json() if isinstance(template, SystemTemplate) else template
        if isinstance(doc, dict) and isinstance(doc.get("componentDescriptors"), list):
            doc = dict(doc, componentDescriptors=[self._descriptor(d) for d in doc["componentDescriptors"]])
        body = self._writable(SystemTemplate, doc, path)
        for i, desc in enumerate(body.get("componentDescriptors") or []):
            if desc["type"] == type_uri("Machine"):
                desc["machineTemplate"] = self._machine_component(
                    desc.get("machineTemplate"), "%s.componentDescriptors[%d].machineTemplate" % (path, i))
        return body

    @staticmethod
    def _descriptor(desc):
        """A caller's componentDescriptor with its ``type`` a type URI, in Table 14's shape."""
        if not isinstance(desc, dict):
            return desc
        if desc.get("type") in COMPONENT_TYPES:
            desc = dict(desc, type=type_uri(desc["type"]))
        return model.spec_descriptor(desc)

    def _machine_component(self, component, path):
        if not isinstance(component, dict):
            raise InvalidInput("%s: expected a MachineTemplate by reference or by value" % path, attribute=path)
        out = self._template_refs(component, path)
        href = out.get("href")
        if href is not None and not self._own(href):
            out["href"] = self._resolve(self.get_machine_template, href, path).id
        return out

    # -- systems -----------------------------------------------------------------------------------
    def list_systems(self):
        """The endpoint's Systems with their state and members ({href} lists of machines, volumes, networks
        as the endpoint gives them; siroccod's state is its machines' when they agree, else MIXED)."""
        return self._stored_list("systems", System, "system", "system.list")

    def get_system(self, ref):
        self.require("system.list")
        return self._by_ref("systems", System, ref, "system.list", "system")

    def create_system(self, name, template, description=None, properties=None, initial_state=None):
        """A System from ``template``: a system template's URI or name, or a SystemTemplate (object or JSON) by
        value. The endpoint makes the members as their templates say (siroccod: machines STOPPED unless their
        template's initialState says STARTED), in a Job whose nested Jobs are the members'; ``initial_state``
        then starts or stops the whole system. A system whose Job failed is deleted again."""
        self.require("system.create")
        if initial_state is not None and initial_state not in states.INITIAL_STATES:
            raise InvalidInput("initialState must be one of %s" % ", ".join(states.INITIAL_STATES),
                               attribute="initialState")
        if isinstance(template, str):
            ref = {"href": self._resolve(self.get_system_template, template, "systemTemplate").id}
        else:
            ref = self._system_template(template, "systemTemplate")
            ref.pop("resourceURI", None)
        self._check_new_name("systems", System, name, "system.create", "system")
        body = {"resourceURI": type_uri("SystemCreate"), "name": name, "systemTemplate": ref}
        if description is not None:
            body["description"] = description
        if properties:
            body["properties"] = dict(properties)
        system = self._create("systems", body, System, "system", "system.create", "system '%s'" % name)
        if initial_state == states.STARTED and system.state != states.STARTED:
            system = self.start_system(system.id)
        elif initial_state == states.STOPPED and system.state != states.STOPPED:
            system = self.stop_system(system.id)
        return system

    def _system_action(self, system_id, verb, force=None):
        operation = "system." + verb
        self.require(operation)
        doc = self._fetch(system_id, System, "system", operation)
        self._invoke(doc, verb, operation, "system '%s'" % (doc.get("name") or doc.get("id")), force)
        return self._parse(System, self._fetch(doc["id"], System, "system", operation), "system", operation)

    def start_system(self, system_id):
        """Start the machines of a system that can start (its Job and theirs followed); the System."""
        return self._system_action(system_id, states.START)

    def stop_system(self, system_id, force=False):
        return self._system_action(system_id, states.STOP, force=bool(force))

    def delete_system(self, system_id):
        """Delete a system and its members (its Job deletes them); Conflict while a member's state forbids it."""
        self._stored_delete(system_id, System, "system", "system.delete")

    # -- jobs --------------------------------------------------------------------------------------
    def list_jobs(self):
        """The endpoint's Jobs as it serves them (siroccod: the caller's, oldest first), nested ones included:
        each names its ``parentJob``, a parent its ``nestedJobs``."""
        return self._stored_list("jobs", Job, "job", "job.list")
