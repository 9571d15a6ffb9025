"""Upstream providers: other clouds (EC2, OpenStack, vSphere, another CIMI endpoint...) the
daemon may send a machine to instead of its own hosts (see routing.py).

An upstream is configured under ``upstreams:`` (upstream_config.py), recorded in the CMDB's
``hosts`` table with provider ``upstream:<connector>`` (so a routed machine's
``host_id`` names its owner, and get/actions/delete reach it through the same
protocol as a host: backends.Backend), but it
is never one of the pool's hypervisor hosts: local placement, volumes, networks
and stock resources ignore it.

Credentials come from the file, an environment variable or a file of their own;
they stay inside the connector and are scrubbed from every message the daemon
passes on (``redact``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace

from sqlalchemy import select

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    ProviderUnavailable,
    SiroccoError,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import registry
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.registry import ConnectionParams
from ansible_collections.sirocco.cimi.plugins.module_utils.placement import match
from siroccod.backends import Backend
from siroccod.store import Host, utcnow
from siroccod.upstream_config import ROW_PREFIX, redact

log = logging.getLogger(__name__)
# A failed contact is remembered this long: listings that render routed machines do not wait on a
# provider that just failed.
FAILURE_MEMORY = 10.0
# the pseudo-method of _invoke that lists every machine (a connector's iter_machines is a generator)
LISTED = "_listed"


class UpstreamHandle(Backend):
    """One upstream: the host-like handle routed machines are reached through."""

    def __init__(self, cfg, row_id, all_cfgs):
        super().__init__(cfg, row_id, cfg.uri)
        self._all = all_cfgs
        self._failed = None  # (monotonic time, message) of the last failed contact
        self._offer = None  # (monotonic time, Offer) of the last good survey
        self._learning = False  # capabilities being asked in the background (supports)
        self._learning_lock = threading.Lock()

    def __repr__(self):
        return "<upstream %s %s>" % (self.name, self.provider)

    @property
    def label(self):
        return "upstream %s" % self.name

    def manages(self, name):
        """Only what this daemon made there (its name prefix): an upstream is a shared cloud."""
        return (name or "").startswith(self.cfg.name_prefix)

    def connector(self):
        with self.lock:
            if self._connector is None:
                try:
                    self._connector = registry.open_connection(ConnectionParams(
                        self.provider, uri=self.uri, username=self.cfg.username, password=self.cfg.password,
                        region=self.cfg.region, validate_certs=self.cfg.validate_certs, timeout=self.cfg.timeout,
                        options=self.cfg.options or None))
                except SiroccoError as exc:
                    raise ProviderUnavailable("upstream '%s' cannot be used: %s"
                                              % (self.name, self.redact(exc))) from None
                except Exception as exc:  # a provider library's error: a message without its details
                    log.warning("upstream %s: cannot connect: %s", self.name, self.redact(exc))
                    raise ProviderUnavailable("upstream '%s' cannot be reached" % self.name) from None
            return self._connector

    def _invoke(self, method, *args, **kwargs):
        """A connector method; errors come back as Sirocco errors naming the upstream, secrets scrubbed."""
        try:
            with self.lock:
                connector = self.connector()
                if method == LISTED:  # a generator: listed here, inside the error handling
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
        machines = self._invoke(LISTED)
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
            self._caps = self._invoke("capabilities")
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

    def redact(self, text):
        return redact(text, self._all)


def register(cfgs, session):
    """Record each enabled upstream in the hosts table; returns {row id: UpstreamHandle}."""
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
