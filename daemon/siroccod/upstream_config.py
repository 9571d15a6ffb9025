"""Upstream providers in the configuration: the ``upstreams:`` list of the configuration file, checked
(``parse``), and what scrubs their credentials from every message the daemon passes on (``redact``).
Read when the configuration is read (config.py), before anything connects; the handles that reach them
are in upstreams.py.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import registry
from siroccod.named_entries import named_entries

LOCAL = "local"  # the label of the daemon's own hosts among the providers a request is matched against
ROW_PREFIX = "upstream:"  # hosts.provider of an upstream's row
_KEYS = {"name", "provider", "uri", "region", "username", "username_env", "password", "password_env",
         "password_file", "options", "validate_certs", "timeout", "location", "prices", "watts_per_cpu", "images",
         "name_prefix", "survey_ttl", "enabled"}


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
