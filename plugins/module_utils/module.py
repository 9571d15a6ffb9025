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
"""

from __future__ import annotations

import re
import time

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    InvalidInput,
    OperationTimeout,
    SiroccoError,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import registry

DEFAULT_PROVIDER = "libvirt"


def provider_argument_spec():
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


def wait_argument_spec():
    """The wait options, paired with doc_fragments/wait.py."""
    return dict(
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=300),
    )


PROVIDER_OPTIONS = tuple(provider_argument_spec())
MASK = "********"
_URI_USERINFO = re.compile(r"(://[^/@:\s]*:)[^/@\s]*@")


def scrub(text, secrets=()):
    """``text`` with every secret and any password written into a URI masked."""
    text = _URI_USERINFO.sub(r"\1" + MASK + "@", str(text))
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def error_message(exc, options=None, secrets=()):
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


def option_for(attribute, options=None):
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


def connect_error(exc):
    """An InvalidInput from opening a connector: unless it names a provider option, it is about
    one of the connector's own options (``sizes``, ``image_pool``...), which the user wrote
    under ``provider_options``."""
    if exc.attribute in PROVIDER_OPTIONS or re.search(r"(?<![\w$])provider_options(?!\w)", exc.message):
        return exc
    return InvalidInput("provider_options: %s" % exc.message, attribute="provider_options")


class Deadline:
    """The time left to wait, shared by every wait of one module run."""

    def __init__(self, seconds, clock=time.monotonic):
        self.seconds = seconds
        self._clock = clock
        self._end = clock() + seconds

    def remaining(self):
        return max(0.0, self._end - self._clock())

    @property
    def expired(self):
        return self.remaining() <= 0


class SiroccoModule:
    """An AnsibleModule with the provider options, a connector and one error shape.

    ``attribute_options`` maps CIMI attribute names found in errors to this
    module's option names, so that messages name what the user wrote.
    """

    def __init__(self, argument_spec=None, wait=False, supports_check_mode=True, attribute_options=None,
                 **kwargs):
        spec = provider_argument_spec()
        if wait:
            spec.update(wait_argument_spec())
        spec.update(argument_spec or {})
        self.module = AnsibleModule(argument_spec=spec, supports_check_mode=supports_check_mode, **kwargs)
        self.attribute_options = dict(attribute_options or {})
        self._connector = None
        self._deadline = None

    # -- AnsibleModule passthrough --------------------------------------------
    @property
    def params(self):
        return self.module.params

    @property
    def check_mode(self):
        return self.module.check_mode

    @property
    def diff_mode(self):
        return bool(self.module._diff)

    @property
    def provider(self):
        return self.params["provider"]

    def warn(self, message):
        self.module.warn(scrub(message, self._secrets()))

    def _secrets(self):
        return [self.params.get("password")]

    # -- connector ---------------------------------------------------------------
    @property
    def connector(self):
        """The connector of the selected provider, opened on first use."""
        if self._connector is None:
            p = self.params
            try:
                self._connector = registry.connect(
                    p["provider"], uri=p["uri"], username=p["username"], password=p["password"],
                    region=p["region"], validate_certs=p["validate_certs"], timeout=p["timeout"],
                    options=p["provider_options"] or {})
            except InvalidInput as exc:
                raise connect_error(exc) from None
        return self._connector

    def close(self):
        connector, self._connector = self._connector, None
        if connector is not None:
            try:
                connector.close()
            except Exception:  # closing must never hide the result or the real error
                pass

    # -- waiting -------------------------------------------------------------------
    @property
    def deadline(self):
        """One Deadline of ``wait_timeout`` seconds for the whole run, started on first use."""
        if self._deadline is None:
            self._deadline = Deadline(self.params.get("wait_timeout") or 0)
        return self._deadline

    def wait_for_machine(self, machine_id, wanted):
        """Wait (within ``wait_timeout``) until the machine is in one of ``wanted`` states (None: gone)."""
        try:
            return self.connector.wait_for_machine(machine_id, wanted, timeout=self.deadline.remaining())
        except OperationTimeout as exc:
            raise OperationTimeout("wait_timeout: gave up after %s s: %s"
                                   % (self.params.get("wait_timeout"), exc.message)) from None

    # -- running a handler -----------------------------------------------------------
    def run(self, handler):
        """Call ``handler(self)``; exit with its results, or fail with one message.

        The results get ``provider`` (the provider used) unless the handler set it.
        """
        result = failure = None
        try:
            result = handler(self)
        except SiroccoError as exc:
            failure = exc
        except Exception as exc:  # a provider library error the connector let through
            failure = exc
        self.close()
        if failure is None:
            result.setdefault("provider", self.provider)
            self.module.exit_json(**result)
        # Outside the except blocks on purpose: fail_json attaches the pending
        # exception's traceback when it sees one.
        self.fail(error_message(failure, self.attribute_options, self._secrets()),
                  error_kind=getattr(failure, "kind", "unexpected"))

    def fail(self, msg, **kwargs):
        kwargs.setdefault("changed", False)
        self.module.fail_json(msg=scrub(msg, self._secrets()), **kwargs)


def diff_view(doc, fields):
    """The part of a CIMI JSON document a ``--diff`` shows: ``fields`` that are set."""
    if not doc:
        return {}
    return {name: doc[name] for name in fields if doc.get(name) not in (None, {}, [])}


def string_map(value, option):
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
