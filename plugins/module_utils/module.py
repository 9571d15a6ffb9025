# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one base every sirocco.cimi module uses.

A module declares only its own options and a handler; ``SiroccoModule``
merges in the provider options (documented once in the ``provider`` doc
fragment) and, when asked, the wait options (``wait`` fragment), opens the
connector through the registry, runs the handler, and turns every
``SiroccoError`` into one ``fail_json(msg=...)`` that names the option at
fault and carries no traceback and no secret.

This file and the module files are the only ones that import Ansible.

    def main():
        module = SiroccoModule(argument_spec=dict(name=dict(type="str")), wait=True)
        module.run(handler)     # handler(module) -> dict of results, or raises SiroccoError

With ``placement=True`` the module also takes ``provider: auto`` with ``providers`` (a list
of provider option dicts, each with a ``label``) and ``placement_policy`` (doc fragment
``placement``); its handler calls ``module.place(name, request)``, which surveys every listed
provider concurrently and keeps the connector of the one chosen (placement/match.py).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    InvalidInput,
    OperationTimeout,
    ProviderUnavailable,
    SiroccoError,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import registry
from ansible_collections.sirocco.cimi.plugins.module_utils.placement import match

if TYPE_CHECKING:  # names for annotations only
    from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import Machine
    from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import Connector

DEFAULT_PROVIDER = "libvirt"
AUTO = "auto"
DEFAULT_POLICY = "first"


def provider_argument_spec() -> dict[str, dict[str, Any]]:
    """The provider options, paired with doc_fragments/provider.py."""
    return dict(
        provider=dict(type="str", choices=registry.provider_names(), default=DEFAULT_PROVIDER,
                      fallback=(env_fallback, ["SIROCCO_PROVIDER"])),
        uri=dict(type="str", fallback=(env_fallback, ["SIROCCO_URI"])),
        username=dict(type="str", fallback=(env_fallback, ["SIROCCO_USERNAME"])),
        password=dict(type="str", no_log=True, fallback=(env_fallback, ["SIROCCO_PASSWORD"])),
        region=dict(type="str", fallback=(env_fallback, ["SIROCCO_REGION"])),
        validate_certs=dict(type="bool", default=True),
        timeout=dict(type="int", default=60),
        provider_options=dict(type="dict"),
    )


def wait_argument_spec() -> dict[str, dict[str, Any]]:
    """The wait options, paired with doc_fragments/wait.py."""
    return dict(
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=300),
    )


def placement_argument_spec() -> dict[str, dict[str, Any]]:
    """The options of ``provider: auto``, paired with doc_fragments/placement.py."""
    entry = dict(
        label=dict(type="str", required=True),
        provider=dict(type="str", default=DEFAULT_PROVIDER),  # checked by the registry: one list of names
        uri=dict(type="str"),
        username=dict(type="str"),
        password=dict(type="str", no_log=True),
        region=dict(type="str"),
        validate_certs=dict(type="bool", default=True),
        timeout=dict(type="int", default=60),
        provider_options=dict(type="dict"),
        prices=dict(type="dict"),
    )
    return dict(
        providers=dict(type="list", elements="dict", options=entry),
        placement_policy=dict(type="str", choices=match.policy_names(), default=DEFAULT_POLICY),
    )


PROVIDER_OPTIONS = tuple(provider_argument_spec()) + tuple(placement_argument_spec())
MASK = "********"
_URI_USERINFO = re.compile(r"(://[^/@:\s]*:)[^/@\s]*@")


def scrub(text: object, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every secret and any password written into a URI masked."""
    text = _URI_USERINFO.sub(r"\1" + MASK + "@", str(text))
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def error_message(exc: BaseException, options: Mapping[str, str] | None = None,
                  secrets: Iterable[str | None] = ()) -> str:
    """The one-line ``msg`` for a failure.

    A SiroccoError's message is written for the user already; when it is an
    InvalidInput whose attribute belongs to a module option (``options`` maps
    CIMI attribute names, e.g. ``machineConfig``, to option names) and the
    message does not name that option yet, the option is put in front.
    Anything else is an error the connector did not translate: it is shown
    with its type, never with a traceback.
    """
    if isinstance(exc, SiroccoError):
        message = exc.message
        option = option_for(getattr(exc, "attribute", None), options)
        if option and not re.search(r"(?<![\w$])%s(?!\w)" % re.escape(option), message):
            message = "%s: %s" % (option, message)
    else:
        message = "unexpected %s: %s" % (type(exc).__name__, exc)
    return scrub(message, secrets)


def option_for(attribute: str | None, options: Mapping[str, str] | None = None) -> str | None:
    """The module option a CIMI attribute path (``machineConfig.cpu``, ``$filter``) belongs to."""
    if not attribute:
        return None
    head = re.split(r"[.\[]", attribute, maxsplit=1)[0]
    options = options or {}
    if head in options:
        return options[head]
    if head in PROVIDER_OPTIONS or head in options.values():
        return head
    return None


def connect_error(exc: InvalidInput) -> InvalidInput:
    """An InvalidInput from opening a connector: unless it names a provider option, it is about
    one of the connector's own options (``sizes``, ``image_pool``...), which the user wrote
    under ``provider_options``."""
    if exc.attribute in PROVIDER_OPTIONS or re.search(r"(?<![\w$])provider_options(?!\w)", exc.message):
        return exc
    return InvalidInput("provider_options: %s" % exc.message, attribute="provider_options")


class Deadline:
    """The time left to wait, shared by every wait of one module run."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._end = clock() + seconds

    def remaining(self) -> float:
        return max(0.0, self._end - self._clock())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0


class SiroccoModule:
    """An AnsibleModule with the provider options, a connector and one error shape.

    ``attribute_options`` maps CIMI attribute names found in errors to this
    module's option names, so that messages name what the user wrote.
    """

    def __init__(self, argument_spec: Mapping[str, dict[str, Any]] | None = None, wait: bool = False,
                 supports_check_mode: bool = True, attribute_options: Mapping[str, str] | None = None,
                 placement: bool = False, **kwargs: Any) -> None:
        spec = provider_argument_spec()
        if wait:
            spec.update(wait_argument_spec())
        if placement:
            spec["provider"]["choices"] = [AUTO] + spec["provider"]["choices"]
            spec.update(placement_argument_spec())
            kwargs["required_if"] = list(kwargs.get("required_if") or []) + [("provider", AUTO, ("providers",))]
        spec.update(argument_spec or {})
        self.module = AnsibleModule(argument_spec=spec, supports_check_mode=supports_check_mode, **kwargs)
        self.attribute_options = dict(attribute_options or {})
        self._connector: Connector | None = None
        self._deadline: Deadline | None = None
        self._placement: match.Placement | None = None

    # -- AnsibleModule passthrough --------------------------------------------
    @property
    def params(self) -> dict[str, Any]:
        return self.module.params

    @property
    def check_mode(self) -> bool:
        return self.module.check_mode

    @property
    def diff_mode(self) -> bool:
        return bool(self.module._diff)

    @property
    def auto(self) -> bool:
        """True when the provider is chosen by ``place()`` among ``providers``."""
        return self.params["provider"] == AUTO

    @property
    def provider(self) -> str | None:
        """The provider used: with ``provider: auto``, the label of the one chosen (None before)."""
        if self.auto:
            return self._placement.label if self._placement is not None else None
        return self.params["provider"]

    def mask(self, value: str | None) -> None:
        """Never show ``value`` again: Ansible masks it in the result, its invocation and the messages."""
        if value:
            self.module.no_log_values.add(value)

    def warn(self, message: str) -> None:
        self.module.warn(scrub(message, self._secrets()))

    def _secrets(self):
        return [self.params.get("password")] + [entry.get("password") for entry in self.params.get("providers") or []]

    # -- connector ---------------------------------------------------------------
    @property
    def connector(self) -> Connector:
        """The connector of the selected provider, opened on first use."""
        if self._connector is None:
            if self.auto:
                raise InvalidInput("provider: auto chooses a provider in place(), which was not called",
                                   attribute="provider")
            p = self.params
            try:
                self._connector = registry.open_connection(registry.ConnectionParams.from_options(p["provider"], p))
            except InvalidInput as exc:
                raise connect_error(exc) from None
        return self._connector

    # -- provider: auto ------------------------------------------------------------
    def place(self, name: str, request: match.Request | None = None) -> match.Placement:
        """Choose among ``providers`` (``provider: auto``) and use the chosen one's connector.

        Every listed provider is surveyed concurrently; the one where machine ``name`` exists wins
        (never a second machine of that name elsewhere), else ``request`` (a match.Request) is matched
        by ``placement_policy``. Without a request only an existing machine is looked for: the
        Placement then has no label when the machine exists nowhere. Returns the match.Placement.
        """
        entries = self.params["providers"] or []
        price_lists = {entry["label"]: prices(entry) for entry in entries}  # bad input fails before any connection
        connectors, failed = {}, {}
        try:
            for entry in entries:
                label = entry["label"]
                if label in connectors or label in failed:
                    raise InvalidInput("providers: label '%s' is used twice" % label, attribute="providers")
                try:
                    connectors[label] = registry.open_connection(
                        registry.ConnectionParams.from_options(entry["provider"], entry))
                except InvalidInput as exc:
                    option = exc.attribute if exc.attribute in PROVIDER_OPTIONS else "provider_options"
                    message = re.sub(r"^%s: " % option, "", connect_error(exc).message)
                    raise InvalidInput("providers[%s].%s: %s" % (label, option, message),
                                       attribute="providers") from None
                except ProviderUnavailable as exc:
                    failed[label] = match.Offer(label=label, provider=entry["provider"], error=exc.message)
            images = request is not None and request.image is not None
            surveyed = {o.label: o for o in match.survey_all(connectors, name=name, images=images)}
            offers = [surveyed.get(e["label"]) or failed[e["label"]] for e in entries]
            for offer in offers:
                offer.prices = price_lists[offer.label]
            if request is not None:
                placement = match.choose(offers, request, self.params["placement_policy"], name=name)
            else:
                placement = match.locate(offers, name) or match.Placement(
                    label=None, provider=None, size=None, policy="existing",
                    why="machine '%s' exists on none of %s" % (name, ", ".join(o.label for o in offers)))
        except BaseException:
            _close_all(connectors.values())
            raise
        self._connector = connectors.get(placement.label)
        _close_all(c for label, c in connectors.items() if label != placement.label)
        self._placement = placement
        return placement

    def close(self) -> None:
        connector, self._connector = self._connector, None
        if connector is not None:
            try:
                connector.close()
            except Exception:  # closing must never hide the result or the real error
                pass

    # -- waiting -------------------------------------------------------------------
    @property
    def deadline(self) -> Deadline:
        """One Deadline of ``wait_timeout`` seconds for the whole run, started on first use."""
        if self._deadline is None:
            self._deadline = Deadline(self.params.get("wait_timeout") or 0)
        return self._deadline

    def wait_for_machine(self, machine_id: str, wanted: str | Iterable[str | None] | None) -> Machine | None:
        """Wait (within ``wait_timeout``) until the machine is in one of ``wanted`` states (None: gone)."""
        try:
            return self.connector.wait_for_machine(machine_id, wanted, timeout=self.deadline.remaining())
        except OperationTimeout as exc:
            raise OperationTimeout("wait_timeout: gave up after %s s: %s"
                                   % (self.params.get("wait_timeout"), exc.message)) from None

    # -- running a handler -----------------------------------------------------------
    def run(self, handler: Callable[[SiroccoModule], dict[str, Any]]) -> None:
        """Call ``handler(self)``; exit with its results, or fail with one message.

        The results get ``provider`` (the provider used) unless the handler set it.
        """
        # Any: the handler's dict whenever failure is None, and exit_json never returns (mypy cannot tell)
        result: Any = None
        failure: Any = None
        try:
            result = handler(self)
        except SiroccoError as exc:
            failure = exc
        except Exception as exc:  # a provider library error the connector let through
            failure = exc
        self.close()
        if failure is None:
            result.setdefault("provider", self.provider)
            if self._placement is not None:
                result.setdefault("placement", self._placement.to_json())
            self.module.exit_json(**result)
        extra = {}
        if isinstance(failure, match.NoCandidate):  # which provider was rejected for what, as data
            extra["placement"] = dict(policy=self.params["placement_policy"], rejected=failure.rejected)
        # Outside the except blocks on purpose: fail_json attaches the pending
        # exception's traceback when it sees one.
        self.fail(error_message(failure, self.attribute_options, self._secrets()),
                  error_kind=getattr(failure, "kind", "unexpected"), **extra)

    def fail(self, msg: str, **kwargs: Any) -> None:
        kwargs.setdefault("changed", False)
        self.module.fail_json(msg=scrub(msg, self._secrets()), **kwargs)


def _close_all(connectors):
    for connector in connectors:
        try:
            connector.close()
        except Exception:  # closing must never hide the result or the real error
            pass


def prices(entry: Mapping[str, Any]) -> dict[str, Any]:
    """Prices per hour of one ``providers`` entry: ``price_per_hour`` of its own ``provider_options.sizes``,
    then its ``prices`` (size name or id -> price)."""
    found = {}
    sizes = (entry.get("provider_options") or {}).get("sizes")
    for size in sizes if isinstance(sizes, list) else ():
        if isinstance(size, dict) and size.get("price_per_hour") is not None and size.get("name") is not None:
            found[str(size["name"])] = size["price_per_hour"]
    found.update(entry.get("prices") or {})
    for size, price in found.items():
        if isinstance(price, bool) or not isinstance(price, (int, float, str)) or match.as_number(price) is None:
            raise InvalidInput("providers[%s]: the price of size '%s' must be a number (per hour), got %r"
                               % (entry.get("label"), size, price), attribute="providers")
    return found


def diff_view(doc: Mapping[str, Any] | None, fields: Iterable[str]) -> dict[str, Any]:
    """The part of a CIMI JSON document a ``--diff`` shows: ``fields`` that are set."""
    if not doc:
        return {}
    return {name: doc[name] for name in fields if doc.get(name) not in (None, {}, [])}


def string_map(value: object, option: str) -> dict[str, str] | None:

    """A dict option as CIMI ``properties``: string keys, scalar values as strings."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput("%s: expected a dictionary" % option, attribute=option)
    out = {}
    for key, item in value.items():
        if isinstance(item, (dict, list, tuple, set)) or item is None:
            raise InvalidInput("%s.%s: expected a string, got %s" % (option, key, type(item).__name__),
                               attribute=option)
        if isinstance(item, bool):
            item = "true" if item else "false"
        out[str(key)] = str(item)
    return out
