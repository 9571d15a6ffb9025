# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The credential and credential_info modules: an SSH public key registered where the provider keeps keys.

A credential is found by name. The same key under that name (the key's data decides; its comment may differ)
is nothing to do; another key fails unless ``force`` is true, which replaces it (delete, then create). A
private key given by mistake is refused with a message that does not repeat it.
"""

from __future__ import annotations

import re

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import Conflict, InvalidInput
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import Credential
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.query import parse_filter
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import (
    USER_NAME_RE,
    key_fingerprint,
    public_key,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.module import diff_view
from ansible_collections.sirocco.cimi.plugins.module_utils.volumes import info_documents, one_named

CREATE, DELETE = "create", "delete"
DIFF_FIELDS = ("name", "userName", "key", "description")
ATTRIBUTE_OPTIONS = {"key": "public_key", "userName": "user_name", "$filter": "filter"}
# PEM ("-----BEGIN RSA PRIVATE KEY-----"), OpenSSH ("-----BEGIN OPENSSH PRIVATE KEY-----"), PuTTY files
_PRIVATE = re.compile(r"PRIVATE KEY|^\s*PuTTY-User-Key-File", re.MULTILINE)


def looks_private(text) -> bool:
    """Whether ``text`` looks like a private key (which must never be echoed back)."""
    return isinstance(text, str) and bool(_PRIVATE.search(text))


def wanted_key(params):
    """``public_key`` as one OpenSSH public key line, or InvalidInput that does not repeat what was given."""
    text = params.get("public_key")
    if looks_private(text):
        raise InvalidInput("public_key: this is a private key; give its public half (the .pub file, or the "
                           "output of ssh-keygen -y -f <private key file>)", attribute="public_key")
    return public_key(text, attribute="public_key")


def check_params(params):
    """Every option checked before the provider is asked anything; the key line (None when absent)."""
    if not params.get("name"):
        raise InvalidInput("name: a credential needs a non-empty name", attribute="name")
    user = params.get("user_name")
    if user is not None and not USER_NAME_RE.match(user):
        raise InvalidInput("user_name: '%s' is not a user name (lower-case letters, digits, _ and -, at most 32, "
                           "not starting with a digit or -)" % user, attribute="user_name")
    if params["state"] != "present":
        return None
    if params.get("public_key") is None:
        raise InvalidInput("public_key: required with state=present", attribute="public_key")
    return wanted_key(params)


def key_data(line):
    """The key's type and data, without its comment: what decides whether two lines hold the same key."""
    parts = (line or "").split()
    return tuple(parts[:2])


def plan(module, credential, key):
    """The actions from ``credential`` (the one of that name, or None) to the options."""
    p = module.params
    if p["state"] == "absent":
        return [DELETE] if credential is not None else []
    if credential is None:
        return [CREATE]
    if key_data(credential.key) != key_data(key):
        if not p.get("force"):
            raise Conflict("credential '%s' holds another key (%s, wanted %s); force=true replaces it"
                           % (credential.name, fingerprint(credential.key), key_fingerprint(key)))
        return [DELETE, CREATE]
    for option, attribute in (("user_name", "userName"), ("description", "description")):
        have = getattr(credential, attribute)
        if p.get(option) is not None and have is not None and have != p[option]:
            module.warn("credential '%s' left with its %s (%s): it holds the same key; force=true with another "
                        "key replaces it, or remove it (state=absent) first" % (credential.name, option, have))
    return []


def fingerprint(line):
    try:
        return key_fingerprint(line)
    except (IndexError, ValueError):
        return "a key that is not an OpenSSH public key"


def predicted(module, credential, key, actions):
    p = module.params
    if CREATE not in actions:
        return credential.to_json() if credential is not None and not actions else {}
    return Credential(name=p["name"], key=key, userName=p.get("user_name"),
                      description=p.get("description")).to_json()


def execute(module, credential, key, actions):
    p = module.params
    connector = module.connector
    if DELETE in actions:
        connector.delete_credential(credential.id)
    if CREATE in actions:
        made = connector.create_credential(p["name"], key, user_name=p.get("user_name"),
                                           description=p.get("description"))
        return made.to_json()
    return credential.to_json() if credential is not None and not actions else {}


def run(module):
    """The credential module."""
    p = module.params
    key = check_params(p)
    connector = module.connector
    capabilities = connector.capabilities()
    # the operation the state asks for first, so that a provider keeping no keys is named with it
    capabilities.require("credential.create" if p["state"] == "present" else "credential.delete")
    capabilities.require("credential.list")
    credential = one_named(connector.list_credentials(), p["name"], "credential", connector.name)
    actions = plan(module, credential, key)
    for action in actions:
        capabilities.require("credential." + action)
    before = credential.to_json() if credential is not None else {}
    after = predicted(module, credential, key, actions) if module.check_mode else execute(
        module, credential, key, actions)
    result = dict(changed=bool(actions), actions=actions)
    if p["state"] == "present":
        result["credential"] = after
        result["fingerprint"] = key_fingerprint(key)
    if module.diff_mode:
        result["diff"] = dict(before=diff_view(before, DIFF_FIELDS), after=diff_view(after, DIFF_FIELDS))
    return result


def run_info(module):
    """The credential_info module: the credentials the provider keeps, by name and CIMI filter."""
    p = module.params
    if p.get("filter") is not None:
        parse_filter(p["filter"])  # a bad filter fails before the provider is asked anything
    module.connector.require("credential.list")
    return dict(changed=False,
                credentials=info_documents(module.connector.list_credentials(), p.get("name"), p.get("filter")))
