"""Upstream providers: other clouds (EC2, OpenStack, vSphere, another CIMI endpoint...) the
daemon may send a machine to instead of its own hosts (see routing.py).

An upstream is configured under ``upstreams:`` (``parse``), recorded in the CMDB's
``hosts`` table with provider ``upstream:<connector>`` (so a routed machine's
``host_id`` names its owner, and get/actions/delete reach it through the same
handle interface as a host: ``call``, ``capabilities``, ``native_name``), but it
is never one of the pool's hypervisor hosts: local placement, volumes, networks
and stock resources ignore it.

Credentials come from the file, an environment variable or a file of their own;
they stay inside the connector and are scrubbed from every message the daemon
passes on (``redact``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field, replace

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    InvalidInput,
    ProviderUnavailable,
    SiroccoError,
)
from siroccod.named_entries import named_entries

log = logging.getLogger(__name__)
LOCAL = "local"  # the label of the daemon's own hosts among the providers a request is matched against
ROW_PREFIX = "upstream:"  # hosts.provider of an upstream's row
_KEYS = {"name", "provider", "uri", "region", "username", "username_env", "password", "password_env",
         "password_file", "options", "validate_certs", "timeout", "location", "prices", "watts_per_cpu", "images",
         "name_prefix", "survey_ttl", "enabled"}
# A failed contact is remembered this long: listings that render routed machines do not wait on a
# provider that just failed.
FAILURE_MEMORY = 10.0


@dataclass
class UpstreamConfig:
    name: str
    provider: str
    uri: str | None = None
    region: str | None = None
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    options: dict = field(default_factory=dict)
    validate_certs: bool = True
    timeout: float = 30.0
    location: str | None = None  # a location it serves on top of those its connector advertises
    prices: dict = field(default_factory=dict)  # size name -> price per hour
    watts_per_cpu: float | None = None  # for policy lowest-energy
    images: dict = field(default_factory=dict)  # this daemon's MachineImage name -> the upstream's image id
    name_prefix: str = "sirocco-"
    survey_ttl: float = 30.0  # seconds a survey (sizes, machine count) is reused
    enabled: bool = True

    def secrets(self):
        return [s for s in (self.password, self.username) if s and len(s) >= 4]


def redact(text, cfgs):
    """``text`` with every configured secret replaced."""
    text = str(text)
    for cfg in cfgs:
        for secret in cfg.secrets():
            text = text.replace(secret, "***")
    return text


def _secret(item, key, where, env):
    """The value of ``key`` given inline, as ``key_env`` or (passwords) as ``key_file``."""
    given = [k for k in (key, key + "_env", key + "_file") if item.get(k) is not None]
    if len(given) > 1:
        raise InvalidInput("config: %s: give one of %s" % (where, ", ".join(given)), attribute="%s.%s" % (where, key))
    if not given:
        return None
    how = given[0]
    value = item[how]
    if not isinstance(value, str) or not value:
        raise InvalidInput("config: %s.%s must be a non-empty string" % (where, how), attribute="%s.%s" % (where, how))
    if how.endswith("_env"):
        if not env.get(value):
            raise InvalidInput("config: %s.%s: environment variable %s is not set" % (where, how, value),
                               attribute="%s.%s" % (where, how))
        return env[value]
    if how.endswith("_file"):
        try:
            with open(os.path.expanduser(value), encoding="utf-8") as handle:
                content = handle.read().strip()
        except OSError as exc:
            raise InvalidInput("config: %s.%s: cannot read %s: %s" % (where, how, value, exc.strerror),
                               attribute="%s.%s" % (where, how)) from None
        if not content:
            raise InvalidInput("config: %s.%s: %s is empty" % (where, how, value), attribute="%s.%s" % (where, how))
        return content
    return value


def _number(item, key, where, minimum=0.0):
    value = item.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise InvalidInput("config: %s.%s must be a number of at least %g" % (where, key, minimum),
                           attribute="%s.%s" % (where, key))
    return float(value)


def parse(items, env, taken, name_pattern, prefix_pattern):
    """UpstreamConfigs from the file's ``upstreams`` list. ``taken``: names of the hosts (an upstream
    must not share one). Errors name the field."""
    from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import registry
    if items is None:
        return []
    out = []
    entries = named_entries(items, "upstreams", _KEYS, name_pattern,
                            duplicate="config: %(where)s.name: '%(name)s' is already a host or upstream name",
                            taken=taken, reserved={LOCAL: "names the daemon's own hosts"})
    for where, item in entries:
        name = item["name"]
        provider = item.get("provider")
        if provider not in registry.PROVIDERS:
            raise InvalidInput("config: %s.provider must be one of %s" % (where, ", ".join(registry.provider_names())),
                               attribute=where + ".provider")
        options = item.get("options") or {}
        if not isinstance(options, dict):
            raise InvalidInput("config: %s.options must be a mapping" % where, attribute=where + ".options")
        known = registry.connector_class(provider).option_names
        if set(options) - set(known):
            raise InvalidInput("config: %s.options: provider %s does not know %s (known: %s)"
                               % (where, provider, ", ".join(sorted(set(options) - set(known))),
                                  ", ".join(known) or "none"), attribute=where + ".options")
        for key in ("uri", "region", "location"):
            if item.get(key) is not None and (not isinstance(item[key], str) or not item[key]):
                raise InvalidInput("config: %s.%s must be a non-empty string" % (where, key),
                                   attribute="%s.%s" % (where, key))
        for key in ("prices", "images"):
            value = item.get(key) or {}
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                raise InvalidInput("config: %s.%s must be a mapping of names" % (where, key),
                                   attribute="%s.%s" % (where, key))
        for size, price in (item.get("prices") or {}).items():
            if isinstance(price, bool) or not isinstance(price, (int, float)) or price < 0:
                raise InvalidInput("config: %s.prices.%s must be a price per hour (a number >= 0)" % (where, size),
                                   attribute="%s.prices" % where)
        for image, native in (item.get("images") or {}).items():
            if not isinstance(native, str) or not native:
                raise InvalidInput("config: %s.images.%s must be the upstream's image id" % (where, image),
                                   attribute="%s.images" % where)
        prefix = item.get("name_prefix", "sirocco-")
        if not isinstance(prefix, str) or not prefix_pattern.fullmatch(prefix):
            raise InvalidInput("config: %s.name_prefix must be up to 32 letters, digits, . _ -" % where,
                               attribute=where + ".name_prefix")
        timeout = _number(item, "timeout", where, 1)
        ttl = _number(item, "survey_ttl", where, 0)
        out.append(UpstreamConfig(
            name=name, provider=provider, uri=item.get("uri"), region=item.get("region"),
            username=_secret(item, "username", where, env), password=_secret(item, "password", where, env),
            options=options, validate_certs=bool(item.get("validate_certs", True)),
            timeout=30.0 if timeout is None else timeout, location=item.get("location"),
            prices=dict(item.get("prices") or {}), watts_per_cpu=_number(item, "watts_per_cpu", where, 0),
            images=dict(item.get("images") or {}), name_prefix=prefix, survey_ttl=30.0 if ttl is None else ttl,
            enabled=bool(item.get("enabled", True))))
    return out


class UpstreamHandle:
    """One upstream: the host-like handle routed machines are reached through."""

    simulated = False

    def __init__(self, cfg, row_id, all_cfgs):
        self.cfg = cfg
        self.id = row_id
        self.name = cfg.name
        self.provider = cfg.provider
        self.uri = cfg.uri
        self.lock = threading.RLock()
        self._all = all_cfgs
        self._connector = None
        self._caps = None
        self._failed = None  # (monotonic time, message) of the last failed contact
        self._offer = None  # (monotonic time, Offer) of the last good survey
        self._learning = False  # capabilities being asked in the background (supports)
        self._learning_lock = threading.Lock()

    def __repr__(self):
        return "<upstream %s %s>" % (self.name, self.provider)

    @property
    def label(self):
        return "upstream %s" % self.name

    def redact(self, text):
        return redact(text, self._all)

    def native_name(self, uuid):
        return self.cfg.name_prefix + uuid

    def manages(self, name):
        """Only what this daemon made there (its name prefix): an upstream is a shared cloud."""
        return (name or "").startswith(self.cfg.name_prefix)

    def connector(self):
        with self.lock:
            if self._connector is None:
                from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import registry
                try:
                    self._connector = registry.connect(
                        self.provider, uri=self.uri, username=self.cfg.username, password=self.cfg.password,
                        region=self.cfg.region, validate_certs=self.cfg.validate_certs, timeout=self.cfg.timeout,
                        options=self.cfg.options or None)
                except SiroccoError as exc:
                    raise ProviderUnavailable("upstream '%s' cannot be used: %s"
                                              % (self.name, self.redact(exc))) from None
                except Exception as exc:  # a provider library's error: a message without its details
                    log.warning("upstream %s: cannot connect: %s", self.name, self.redact(exc))
                    raise ProviderUnavailable("upstream '%s' cannot be reached" % self.name) from None
            return self._connector

    def call(self, method, *args, **kwargs):
        """A connector method; errors come back as Sirocco errors naming the upstream, secrets scrubbed."""
        try:
            with self.lock:
                connector = self.connector()
                if method == "_listed":  # a generator: listed here, inside the error handling
                    result = list(connector.iter_machines())
                else:
                    result = getattr(connector, method)(*args, **kwargs)
        except ProviderUnavailable as exc:
            self._failed = (time.monotonic(), str(exc))
            raise ProviderUnavailable(self._where(exc)) from None  # the daemon's own words: shown as they are
        except SiroccoError as exc:
            exc.args = (self.redact(exc),) + exc.args[1:]
            if hasattr(exc, "message"):
                exc.message = self.redact(exc.message)
            exc.host = "upstream %s" % self.name
            raise
        except Exception as exc:
            log.warning("upstream %s: %s failed: %s: %s", self.name, method, type(exc).__name__, self.redact(exc))
            self._failed = (time.monotonic(), type(exc).__name__)
            raise ProviderUnavailable("upstream '%s' failed (%s)" % (self.name, type(exc).__name__)) from None
        self._failed = None
        return result

    def recently_failed(self):
        return self._failed is not None and time.monotonic() - self._failed[0] < FAILURE_MEMORY

    def all_machines(self):
        """Every machine the upstream lists (reconcile); its capabilities are learnt on the way."""
        machines = self.call("_listed")
        if self._caps is None:
            try:
                self.capabilities()
            except SiroccoError as exc:
                log.info("upstream %s: capabilities unknown: %s", self.name, exc)
        return machines

    def _where(self, exc):
        text = self.redact(exc)
        return text if text.startswith("upstream '%s'" % self.name) else "upstream '%s' cannot be reached: %s" % (
            self.name, text)

    def capabilities(self):
        if self._caps is None:
            if self.recently_failed():
                raise ProviderUnavailable(self._where(self._failed[1]))
            self._caps = self.call("capabilities")
        return self._caps

    def known_capabilities(self):
        """The capabilities already known, else None (and they are asked for in the background)."""
        if self._caps is None:
            self._learn_soon()
        return self._caps

    def supports(self, operation):
        """From the capabilities already known: rendering a machine never waits on an upstream.
        Until they are known (the upstream has not answered yet) a machine operation is offered,
        and its job says why if it cannot run (503 when the upstream is down)."""
        caps = self._caps
        if caps is None:
            self._learn_soon()
            return operation.startswith("machine.")
        return caps.supports(operation)

    def _learn_soon(self):
        with self._learning_lock:
            if self._learning or self.recently_failed():
                return
            self._learning = True
        threading.Thread(target=self._learn, name="siroccod-upstream-%s" % self.name, daemon=True).start()

    def _learn(self):
        try:
            self.capabilities()
        except SiroccoError as exc:
            log.info("upstream %s: capabilities unknown: %s", self.name, exc)
        finally:
            self._learning = False

    def offer(self):
        """This upstream's Offer (match.py), surveyed at most every ``survey_ttl`` seconds; a failed
        survey is not kept (the next request asks again)."""
        from ansible_collections.sirocco.cimi.plugins.module_utils.placement import match
        now = time.monotonic()
        cached = self._offer
        if cached is not None and now - cached[0] < self.cfg.survey_ttl:
            return cached[1]
        try:
            connector = self.connector()
        except ProviderUnavailable as exc:
            self._failed = (now, str(exc))
            return match.Offer(label=self.name, provider=self.provider, error=self.redact(exc))
        with self.lock:
            offer = match.survey(self.name, connector)
        if offer.error is not None:
            offer.error = self.redact(offer.error)
            self._failed, self._offer = (now, offer.error), None
            log.warning("upstream %s: survey failed: %s", self.name, offer.error)
            return offer
        caps = offer.capabilities
        self._caps = caps
        extras = dict(caps.extras or {})
        if self.cfg.watts_per_cpu is not None:
            extras[match.EXTRA_WATTS_PER_CPU] = self.cfg.watts_per_cpu
        locations = tuple(caps.locations) + ((self.cfg.location,) if self.cfg.location and
                                             self.cfg.location not in caps.locations else ())
        offer.capabilities = replace(caps, locations=locations, extras=extras)
        offer.prices = dict(self.cfg.prices)
        self._failed, self._offer = None, (now, offer)
        return offer

    def close(self):
        with self.lock:
            if self._connector is not None:
                try:
                    self._connector.close()
                except Exception as exc:  # closing must not stop a shutdown
                    log.debug("upstream %s: close failed: %s", self.name, self.redact(exc))
                self._connector = None
                self._caps = None


def register(cfgs, session):
    """Record each enabled upstream in the hosts table; returns {row id: UpstreamHandle}."""
    from sqlalchemy import select

    from siroccod.store import Host, utcnow
    handles = {}
    for cfg in cfgs:
        row = session.scalar(select(Host).where(Host.name == cfg.name))
        if row is None:
            row = Host(name=cfg.name)
            session.add(row)
        row.provider, row.uri, row.enabled = ROW_PREFIX + cfg.provider, cfg.uri, cfg.enabled
        row.simulated, row.cpu, row.memory_kib = False, 0, 0
        row.state, row.status_message, row.updated = "UNKNOWN", None, utcnow()
        session.flush()
        if cfg.enabled:
            handles[row.id] = UpstreamHandle(cfg, row.id, cfgs)
    return handles
